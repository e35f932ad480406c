import { ErrorCode, TickwireError } from './errors.js';

/** A monotonic clock in milliseconds. The origin is arbitrary; only differences matter. */
export interface Clock {
  /** Milliseconds since an arbitrary origin; never decreases. */
  now(): number;
}

/** A scheduled callback; `cancel()` stops it (idempotent). */
export interface Timer {
  /** Stops the timer; calling it again does nothing. */
  cancel(): void;
}

/** Runs callbacks later. Every time-based package takes one, so tests can use a fake. */
export interface Scheduler {
  /** Runs `callback` once after `delayMs` (0 or more). */
  setTimeout(callback: () => void, delayMs: number): Timer;
  /** Runs `callback` every `periodMs` (more than 0) until cancelled. */
  setInterval(callback: () => void, periodMs: number): Timer;
}

/** A clock and the scheduler that runs on it. */
export interface TimeSource extends Clock, Scheduler {}

function checkDelay(delayMs: number, name: string, allowZero: boolean): void {
  if (!Number.isFinite(delayMs) || delayMs < 0 || (!allowZero && delayMs === 0)) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${delayMs}`,
    );
  }
}

/** Options of {@link createSystemTime}. */
export interface SystemTimeOptions {
  /**
   * Let Node exit while timers are pending (calls `unref()` where it exists).
   * @default false
   */
  unref?: boolean;
}

type HostTimer = { unref?: () => void };

/** Hosts run a longer timer at once (Node warns, browsers overflow): longer ones are chained. */
export const MAX_HOST_TIMER_MS = 2 ** 31 - 1;

/** The real clock (`performance.now()`) and scheduler (`setTimeout`/`setInterval`). */
export function createSystemTime(options: SystemTimeOptions = {}): TimeSource {
  const perf = globalThis.performance;
  const now = perf ? () => perf.now() : () => Date.now();
  const unref = options.unref === true;
  const hostTimeout = (callback: () => void, delayMs: number) => {
    const handle = globalThis.setTimeout(callback, delayMs);
    if (unref) (handle as HostTimer).unref?.();
    return handle;
  };
  return {
    now,
    setTimeout(callback, delayMs) {
      checkDelay(delayMs, 'delayMs', true);
      const due = now() + delayMs;
      let handle: ReturnType<typeof globalThis.setTimeout>;
      const arm = (remainingMs: number): void => {
        if (remainingMs <= MAX_HOST_TIMER_MS) handle = hostTimeout(callback, remainingMs);
        else handle = hostTimeout(() => arm(due - now()), MAX_HOST_TIMER_MS);
      };
      arm(delayMs);
      return { cancel: () => globalThis.clearTimeout(handle) };
    },
    setInterval(callback, periodMs) {
      checkDelay(periodMs, 'periodMs', false);
      if (periodMs > MAX_HOST_TIMER_MS) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `periodMs must be at most ${MAX_HOST_TIMER_MS}, got ${periodMs}`,
        );
      }
      const handle = globalThis.setInterval(callback, periodMs);
      if (unref) (handle as HostTimer).unref?.();
      return { cancel: () => globalThis.clearInterval(handle) };
    },
  };
}

/** The shared real time source, the default of every package. */
export const systemTime: TimeSource = createSystemTime();

interface ManualTask {
  dueMs: number;
  seq: number;
  periodMs: number;
  callback: () => void;
  cancelled: boolean;
}

const MAX_TIMERS_PER_ADVANCE = 10_000_000;

/** A fake clock and scheduler for deterministic tests: time moves only when told to.*/
export interface ManualTime extends TimeSource {
  /** Moves time forward by `ms`, running every timer due on the way, in due order. */
  advance(ms: number): void;
  /** Moves time forward to `timeMs` (no-op if it is in the past). */
  advanceTo(timeMs: number): void;
  /** Jumps to the next due timer and runs every timer due then; false if none is pending. */
  runNext(): boolean;
  /** Runs timers until none is pending or `maxTimers` ran; returns how many ran. */
  runAll(maxTimers?: number): number;
  /** Number of pending timers. */
  readonly pending: number;
}

/**
 * A manual time source. Timers due at the same time run in the order they were set;
 * a timer set while advancing runs in the same advance if it falls due before its end.
 */
export function createManualTime(startMs = 0): ManualTime {
  let nowMs = startMs;
  let seq = 0;
  const heap: ManualTask[] = [];

  const before = (a: ManualTask, b: ManualTask) =>
    a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);

  function push(task: ManualTask): void {
    heap.push(task);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  function pop(): ManualTask | undefined {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }

  function dropCancelled(): void {
    while (heap.length > 0 && heap[0]!.cancelled) pop();
  }

  function schedule(callback: () => void, delayMs: number, periodMs: number): Timer {
    const task: ManualTask = {
      dueMs: nowMs + delayMs,
      seq: seq++,
      periodMs,
      callback,
      cancelled: false,
    };
    push(task);
    return {
      cancel: () => {
        task.cancelled = true;
      },
    };
  }

  function runTask(task: ManualTask): void {
    if (task.dueMs > nowMs) nowMs = task.dueMs;
    if (task.periodMs > 0) {
      task.dueMs += task.periodMs;
      task.seq = seq++;
      push(task);
    }
    task.callback();
  }

  function advanceTo(timeMs: number): void {
    if (!Number.isFinite(timeMs)) {
      throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `time must be finite, got ${timeMs}`);
    }
    for (let ran = 0; ; ran++) {
      dropCancelled();
      const next = heap[0];
      if (!next || next.dueMs > timeMs) break;
      // A callback that re-arms a zero delay forever would otherwise hang the test.
      if (ran >= MAX_TIMERS_PER_ADVANCE) {
        throw new TickwireError(
          ErrorCode.INTERNAL,
          `manual time: more than ${MAX_TIMERS_PER_ADVANCE} timers in one advance (a timer re-arming itself with no delay?)`,
        );
      }
      pop();
      runTask(next);
    }
    if (timeMs > nowMs) nowMs = timeMs;
  }

  return {
    now: () => nowMs,
    setTimeout(callback, delayMs) {
      checkDelay(delayMs, 'delayMs', true);
      return schedule(callback, delayMs, 0);
    },
    setInterval(callback, periodMs) {
      checkDelay(periodMs, 'periodMs', false);
      return schedule(callback, periodMs, periodMs);
    },
    advance(ms) {
      checkDelay(ms, 'ms', true);
      advanceTo(nowMs + ms);
    },
    advanceTo,
    runNext() {
      dropCancelled();
      const next = heap[0];
      if (!next) return false;
      advanceTo(next.dueMs);
      return true;
    },
    runAll(maxTimers = 100_000) {
      let ran = 0;
      while (ran < maxTimers) {
        dropCancelled();
        const next = pop();
        if (!next) break;
        runTask(next);
        ran++;
      }
      return ran;
    },
    get pending() {
      let count = 0;
      for (const task of heap) if (!task.cancelled) count++;
      return count;
    },
  };
}
