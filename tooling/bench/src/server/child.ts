// A child process of the `server` suite: node with this process's loader flags (tsx, the
// @tickwire/source condition), optionally pinned to one core with `taskset`, driven over IPC
// one request at a time, every request with a deadline, always killed at the end.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { BotCommand, BotReply, RoomView } from './protocol.js';

let tasksetChecked: boolean | undefined;

/** Whether `taskset` exists (checked with `command -v taskset`) and there are 2+ cores. */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    try {
      execFileSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' });
      tasksetChecked = availableParallelism() >= 2;
    } catch {
      tasksetChecked = false;
    }
  }
  return tasksetChecked;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: never leave a child behind when the bench process exits.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

interface Waiter<R> {
  type: string;
  resolve(reply: R): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One child process speaking `C` commands and `R` replies (`{ type }` objects). */
export class Child<C extends { type: string }, R extends { type: string }> {
  readonly name: string;
  readonly pid: number;
  readonly core: number | null;
  #child: ChildProcess;
  #waiter: Waiter<R> | null = null;
  #exited = false;
  #exit: Promise<void>;

  constructor(
    name: string,
    script: string,
    core: number | null,
    extraArgv: readonly string[] = [],
  ) {
    installExitHook();
    this.name = name;
    this.core = core;
    const node = [...process.execArgv, ...extraArgv, script];
    const [command, args] =
      core === null
        ? [process.execPath, node]
        : ['taskset', ['-c', String(core), process.execPath, ...node]];
    this.#child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.pid = this.#child.pid ?? -1;
    live.add(this.#child);
    this.#exit = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exited = true;
        live.delete(this.#child);
        this.#fail(new Error(`${name} exited (code ${code}, signal ${signal})`));
        resolve();
      });
    });
    this.#child.on('error', (error) => this.#fail(error));
    this.#child.on('message', (reply: R) => {
      // @pm2/io (a peer dependency of @colyseus/core) speaks on any IPC channel it finds.
      if (typeof reply?.type !== 'string' || reply.type.startsWith('axm:')) return;
      const waiter = this.#waiter;
      if (waiter === null) return;
      this.#waiter = null;
      clearTimeout(waiter.timer);
      if (reply.type === 'failed') {
        waiter.reject(new Error(`${name}: ${(reply as unknown as { message: string }).message}`));
      } else if (reply.type !== waiter.type) {
        waiter.reject(new Error(`${name} answered ${reply.type}, expected ${waiter.type}`));
      } else waiter.resolve(reply);
    });
  }

  #fail(error: Error): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    if (waiter === null) return;
    clearTimeout(waiter.timer);
    waiter.reject(error);
  }

  /** Sends a command and resolves with the reply of type `type`; rejects after `timeoutMs`. */
  request<T extends R['type']>(
    command: C,
    type: T,
    timeoutMs: number,
  ): Promise<Extract<R, { type: T }>> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited`));
    if (this.#waiter !== null)
      return Promise.reject(new Error(`${this.name}: a request is pending`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = { type, resolve: resolve as (reply: R) => void, reject, timer };
      this.#child.send(command);
    });
  }

  /** Asks the child to stop; kills it (SIGKILL) when it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#exited) return;
    try {
      this.#child.send({ type: 'stop' });
    } catch {
      // The channel is gone: kill below.
    }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.#exit;
    clearTimeout(timer);
  }
}

/** Exits the child when its parent goes away (IPC channel closed). */
export function exitWithParent(cleanup: () => void = () => {}): void {
  process.on('disconnect', () => {
    cleanup();
    process.exit(0);
  });
}

/** p-th quantile (0–1) of the first `count` values of `samples` (sorted in place). */
export function quantile(samples: Float64Array, count: number, q: number): number {
  if (count === 0) return Number.NaN;
  const view = samples.subarray(0, count).sort();
  return view[Math.min(count - 1, Math.floor(q * count))]!;
}

/** Heap used after a full garbage collection (forced: call it after a measurement window), MiB. */
export function retainedHeapMb(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** What this process used over a measurement window. */
export interface Usage {
  elapsedMs: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Event-loop utilisation in [0, 1]. */
  elu: number;
}

/** Starts a measurement window of this process; the returned function reads it. */
export function beginUsage(): () => Usage {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  return () => {
    const used = process.cpuUsage(cpu);
    return {
      elapsedMs: performance.now() - started,
      cpuUserUs: used.user,
      cpuSystemUs: used.system,
      elu: performance.eventLoopUtilization(elu).utilization,
    };
  };
}

/**
 * One timer for every bot of a process: each of `slots` slots of a period of `periodMs` runs
 * `send` for the bots added to it. Slots follow the clock, not the timer's count (setInterval
 * drifts late): a late timer runs every slot that came due since, at most one period's worth
 * (a saturated process falls behind).
 */
export function startSlots<B>(
  periodMs: number,
  slots: number,
  send: (bot: B) => void,
): { add: (index: number, bot: B) => void; stop: () => void } {
  const groups: B[][] = Array.from({ length: slots }, () => []);
  const slotMs = periodMs / slots;
  const start = performance.now();
  let slot = 0;
  const timer = setInterval(() => {
    const due = Math.floor((performance.now() - start) / slotMs);
    if (due - slot > slots) slot = due - slots;
    for (; slot < due; slot++) for (const bot of groups[slot % slots]!) send(bot);
  }, slotMs);
  return {
    add: (index, bot) => groups[index % slots]!.push(bot),
    stop: () => clearInterval(timer),
  };
}

/**
 * A bot process's measurement window: `begin` starts it (CPU, event-loop delay, and the
 * `applied` count of snapshots), `end` reads it.
 */
export function botWindow(applied: () => number): {
  begin: () => void;
  end: () => Usage & { snapshots: number; loopDelayP99Ms: number };
} {
  let window: {
    usage: () => Usage;
    snapshots: number;
    delay: ReturnType<typeof monitorEventLoopDelay>;
  } | null = null;
  return {
    begin() {
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      window = { usage: beginUsage(), snapshots: applied(), delay };
    },
    end() {
      if (window === null) throw new Error("'end' without 'begin'");
      const usage = window.usage();
      window.delay.disable();
      const read = {
        ...usage,
        snapshots: applied() - window.snapshots,
        loopDelayP99Ms: window.delay.percentile(99) / 1e6,
      };
      window = null;
      return read;
    },
  };
}

/** An error's message (and stack, for failures the parent prints). */
export function describeError(error: unknown, withStack = false): string {
  if (!(error instanceof Error)) return String(error);
  return withStack ? (error.stack ?? error.message) : error.message;
}

/** Handles each command from the parent; a failure, thrown or rejected, is replied as `failed`. */
export function serveCommands<C>(
  handle: (command: C) => Promise<void> | void,
  reply: (message: { type: 'failed'; message: string }) => void,
): void {
  const fail = (error: unknown) => reply({ type: 'failed', message: describeError(error, true) });
  process.on('message', (command: C) => {
    try {
      handle(command)?.catch(fail);
    } catch (error) {
      fail(error);
    }
  });
}

/** Per room: how many of `bots` are in it and the fewest/most avatars they see. */
export function roomViews<B>(
  bots: Iterable<B>,
  roomOf: (bot: B) => string,
  seenOf: (bot: B) => number,
): Record<string, RoomView> {
  const rooms: Record<string, RoomView> = {};
  for (const bot of bots) {
    const seen = seenOf(bot);
    const id = roomOf(bot);
    const view = rooms[id];
    if (view === undefined) rooms[id] = { bots: 1, minSeen: seen, maxSeen: seen };
    else {
      view.bots++;
      view.minSeen = Math.min(view.minSeen, seen);
      view.maxSeen = Math.max(view.maxSeen, seen);
    }
  }
  return rooms;
}

/** What tells one kind of bot process from another (see {@link runBots}). */
export interface BotKind<B> {
  /** Connects bot `index` to the server at `url`; resolves once it can send inputs. */
  start(url: string, index: number, status: BotStatus): Promise<B>;
  /** Sends one input: true if sent, false if the connection refused it, undefined if not ready. */
  send(bot: B): boolean | undefined;
  /** Snapshots (patches, broadcasts) all `bots` have applied so far. */
  applied(bots: readonly B[]): number;
  /** The rooms the bots are in (empty without rooms). */
  rooms(bots: readonly B[]): Record<string, RoomView>;
  /** Ends a bot's connection when the process stops. */
  stop(bot: B): void;
}

/** Disconnects and errors of a bot process's bots, counted by their `start`. */
export interface BotStatus {
  /** True once the process stops: closes are expected then, not disconnects. */
  readonly stopping: boolean;
  error(message: string): void;
  /** A bot's connection closed; `message` says why, when known. */
  disconnect(message?: string): void;
}

/** Bots connecting at once. */
const BOT_CONCURRENCY = 32;
/** Inputs are spread over this many slots of one 20 Hz period. */
const BOT_SLOTS = 10;

/**
 * Runs a bot process of the `server` suite: grows its bots on `grow` (32 connecting at once,
 * giving up after 50 failures), sends every bot's input at `rateHz` in ten slots of a period,
 * and answers `begin` / `end` with a measurement window and `stop` by closing every bot.
 */
export function runBots<B>(kind: BotKind<B>, rateHz: number): void {
  const bots: B[] = [];
  let disconnects = 0;
  let errors = 0;
  let firstError: string | null = null;
  let stopping = false;
  let inputsSent = 0;
  let inputsDropped = 0;
  const status: BotStatus = {
    get stopping() {
      return stopping;
    },
    error(message) {
      errors++;
      firstError ??= message;
    },
    disconnect(message) {
      disconnects++;
      if (message !== undefined) firstError ??= message;
    },
  };
  const reply = (message: BotReply) => process.send?.(message);
  const driver = startSlots<B>(1000 / rateHz, BOT_SLOTS, (bot) => {
    const sent = kind.send(bot);
    if (sent === true) inputsSent++;
    else if (sent === false) inputsDropped++;
  });
  const window = botWindow(() => kind.applied(bots));

  const grow = async (url: string, total: number, firstIndex: number): Promise<BotReply> => {
    const started = performance.now();
    let next = firstIndex + bots.length;
    const end = firstIndex + total;
    let failed = 0;
    let growError: string | null = null;
    const worker = async () => {
      while (next < end) {
        const index = next++;
        try {
          const bot = await kind.start(url, index, status);
          bots.push(bot);
          driver.add(index, bot);
        } catch (error) {
          failed++;
          growError ??= describeError(error);
          if (failed > 50) return; // The server refuses: stop trying.
        }
      }
    };
    await Promise.all(Array.from({ length: BOT_CONCURRENCY }, worker));
    return {
      type: 'grown',
      bots: bots.length,
      failed,
      firstError: growError,
      ms: performance.now() - started,
    };
  };

  const handle = (command: BotCommand): Promise<void> | void => {
    switch (command.type) {
      case 'grow':
        return grow(command.url, command.total, command.firstIndex).then((grown) => {
          reply(grown);
        });
      case 'begin':
        window.begin();
        inputsSent = 0;
        inputsDropped = 0;
        reply({ type: 'begun' });
        return;
      case 'end':
        reply({
          type: 'report',
          report: {
            ...window.end(),
            bots: bots.length,
            inputsSent,
            inputsDropped,
            disconnects,
            errors,
            firstError,
            rooms: kind.rooms(bots),
          },
        });
        return;
      case 'stop':
        stopping = true;
        driver.stop();
        for (const bot of bots) kind.stop(bot);
        setTimeout(() => process.exit(0), 500).unref();
        return;
    }
  };

  exitWithParent();
  serveCommands(handle, reply);
}
