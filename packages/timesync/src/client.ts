import {
  Emitter,
  ErrorCode,
  isTickwireError,
  type Subscribable,
  subscribable,
  systemTime,
  TickwireError,
  type Timer,
  type TimeSource,
} from '@tickwire/core';
import {
  type Estimate,
  estimateWithSlope,
  fitSlope,
  hull,
  type Point,
  type TimeSample,
} from './estimator.js';
import type { TimeRequest, TimeResponse } from './messages.js';

/** Figures for debugging and overlays; see {@link TimeSyncClient.stats}. */
export interface TimeSyncStats {
  /** Current estimate of server minus local time, in ms (the target `serverNow()` slews to). */
  offsetMs: number;
  /** Offset `serverNow()` uses right now (lags `offsetMs` while slewing). */
  displayOffsetMs: number;
  /** Drift of the local clock against the server's in ppm (positive: the local clock runs fast). */
  driftPpm: number;
  /** Smallest round trip in the window, ms (0 before the first sample). */
  rttMinMs: number;
  /** Mean round trip over the window, ms. */
  rttMeanMs: number;
  /** Samples in the window. */
  samples: number;
  /** Half-width of the interval every sample in the window allows for the offset, ms. */
  confidenceMs: number;
  /** Requests sent (those whose `send()` threw included). */
  requests: number;
  /** Requests that got no reply within `requestTimeoutMs`. */
  timeouts: number;
  /**
   * Responses and frames rejected (malformed, unknown or late ids, impossible timestamps: a
   * server processing time t2 − t1 longer than the round trip t3 − t0 included; a reply
   * that contradicts the whole window right after one that agreed with it), and requests
   * whose `send()` threw. Each also emits `rejected`.
   */
  rejected: number;
  /** Times `serverNow()` stepped instead of slewing (the first estimate included). */
  steps: number;
  /** True once the first sample arrived. */
  synced: boolean;
}

/** A sample as reported by the `sample` event. */
export interface SampleEvent {
  /** The exchange's timestamps. */
  sample: Readonly<TimeSample>;
  /** Its round trip minus server processing time, ms. */
  rttMs: number;
  /** The estimate after taking it in, ms. */
  offsetMs: number;
}

/** A step of `serverNow()`, as reported by the `step` event. */
export interface StepEvent {
  /** Offset shown before the step; null for the first estimate. */
  previousOffsetMs: number | null;
  /** Offset shown after it. */
  offsetMs: number;
}

/** Events of a {@link TimeSyncClient}. */
export interface TimeSyncEvents {
  [event: string]: unknown[];
  /** A response was taken into the window. */
  sample: [event: SampleEvent];
  /** A request got no reply in time. */
  timeout: [request: TimeRequest];
  /** `serverNow()` was re-stepped (first estimate, or error beyond `stepThresholdMs`). */
  step: [event: StepEvent];
  /** A response or frame was rejected, or `send()` threw (never thrown to the caller). */
  rejected: [error: TickwireError];
  /**
   * A callback given to `at()` threw; later events still fire. Without a listener the error is
   * rethrown in a microtask, as an uncaught error.
   */
  error: [error: unknown, event: ScheduledEvent];
}

/** A cancelable event scheduled at a server time. */
export interface ScheduledEvent {
  /** The server time it fires at. */
  readonly serverTimeMs: number;
  /** Stops it; idempotent. */
  cancel(): void;
}

/** Options of {@link createTimeSyncClient} (all but `send`) and of the connection adapter. */
export interface TimeSyncOptions {
  /** Local clock and scheduler. @default systemTime */
  time?: TimeSource;
  /** A request without reply after this many ms counts as lost. @default 1000 */
  requestTimeoutMs?: number;
  /** Samples wanted from the initial burst. @default 10 */
  burstSize?: number;
  /** Spacing of burst requests, ms. @default 100 */
  burstIntervalMs?: number;
  /** Most requests a burst sends before giving up on the missing replies. @default 2 × burstSize */
  maxBurstAttempts?: number;
  /** Interval after the burst and after an instability, ms. @default 500 */
  minIntervalMs?: number;
  /** Longest interval in steady state, ms (1250: 0.8 requests/s). @default 1250 */
  maxIntervalMs?: number;
  /** Factor the interval grows by after each stable sample. @default 1.25 */
  intervalGrowth?: number;
  /** A change of the estimate larger than this (ms) counts as instability. @default 3 */
  unstableThresholdMs?: number;
  /** Most samples in the window. @default 128 */
  windowSize?: number;
  /** Oldest sample kept for the offset estimate, ms (drift uses a longer history). @default 45000 */
  windowMs?: number;
  /** Largest drift searched, ppm. @default 500 */
  maxDriftPpm?: number;
  /** Drift is fitted once the history spans this many ms (before: none assumed). @default 30000 */
  minDriftSpanMs?: number;
  /** History the drift is fitted over, ms (only its extreme points are kept). @default 900000 */
  driftWindowMs?: number;
  /** `serverNow()` steps instead of slewing when off by more than this, ms. @default 50 */
  stepThresholdMs?: number;
  /** Largest rate correction while slewing (0.05: the shown clock runs at most 5 % fast or slow). @default 0.05 */
  maxSlewRate?: number;
  /** Time constant of the slew toward the estimate, ms. @default 500 */
  slewTimeConstantMs?: number;
  /** Server tick rate for `currentTick()` / `tickAt()`, Hz. @default 60 */
  tickRateHz?: number;
  /** Server time of tick 0, ms. @default 0 */
  tickOriginMs?: number;
  /** Start the initial burst at creation (else at the first `sync()`). @default true */
  autoStart?: boolean;
}

/** Options of {@link createTimeSyncClient}. */
export interface TimeSyncClientOptions extends TimeSyncOptions {
  /** Sends a request to the server; its response goes to `receive`. */
  send(request: TimeRequest): void;
}

/** The client side of time sync. */
export interface TimeSyncClient extends Subscribable<TimeSyncEvents> {
  /** Takes a response from the server in; bad or unknown ones are counted, never thrown. */
  receive(response: TimeResponse): void;
  /**
   * Resolves with the stats once the current burst is over (starting one if none runs);
   * bounded by `maxBurstAttempts` and `requestTimeoutMs`. Rejects with TIMEOUT if no reply came
   * at all, CLOSED after `close()` (or, over a connection, once it closed).
   */
  sync(): Promise<TimeSyncStats>;
  /**
   * Estimated server time, ms: never decreases, slews smoothly, steps only beyond the threshold.
   * Throws `TickwireError` INVALID_STATE before the first sample (see `stats().synced`, or
   * await `sync()`): until then there is no server time to give.
   */
  serverNow(): number;
  /** The server tick at `serverTimeMs`; a non-finite time throws INVALID_ARGUMENT. */
  tickAt(serverTimeMs: number): number;
  /** The server time tick `tick` starts at; a non-finite tick throws INVALID_ARGUMENT. */
  tickTime(tick: number): number;
  /** The current server tick, `tickAt(serverNow())`; throws INVALID_STATE before the first sample. */
  currentTick(): number;
  /**
   * Runs `fn` once `serverNow()` reaches `serverTimeMs`; events fire in time order (ties: FIFO).
   * Events scheduled before the first sample wait for it. An event that a callback schedules
   * at a time already reached fires in the next scheduler turn, not in the running one; a
   * callback that throws is reported by the `error` event and does not stop the others.
   */
  at(serverTimeMs: number, fn: () => void): ScheduledEvent;
  /** Current figures. */
  stats(): TimeSyncStats;
  /** Stops sampling and scheduled events; idempotent. */
  close(): void;
}

interface Pending {
  request: TimeRequest;
  timer: Timer;
  burst: boolean;
}

interface AtEvent {
  serverTimeMs: number;
  fn: () => void;
  /** Cancelled or already fired. */
  cancelled: boolean;
  handle: ScheduledEvent;
}

/** Internal hooks for adapters. */
export interface ClientInternals {
  client: TimeSyncClient;
  /** Counts a frame that could not be decoded. */
  reject(error: TickwireError): void;
  /** Closes the client; pending and later `sync()` calls reject with CLOSED and `reason`. */
  shutdown(reason: string): void;
}

const DEFAULTS = {
  requestTimeoutMs: 1000,
  burstSize: 10,
  burstIntervalMs: 100,
  minIntervalMs: 500,
  maxIntervalMs: 1250,
  intervalGrowth: 1.25,
  unstableThresholdMs: 3,
  windowSize: 128,
  windowMs: 45_000,
  maxDriftPpm: 500,
  minDriftSpanMs: 30_000,
  driftWindowMs: 900_000,
  stepThresholdMs: 50,
  maxSlewRate: 0.05,
  slewTimeConstantMs: 500,
  tickRateHz: 60,
  tickOriginMs: 0,
};

type Resolved = typeof DEFAULTS & { maxBurstAttempts: number; autoStart: boolean };

function invalid(message: string): never {
  throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `timesync: ${message}`);
}

type NumericOption = Exclude<keyof TimeSyncOptions, 'time' | 'maxBurstAttempts' | 'autoStart'>;

/** Options that must pass `valid`, or the error says they must be `expected`. */
type Rule = [keys: readonly NumericOption[], valid: (value: number) => boolean, expected: string];

const finite = Number.isFinite;

// Checked in this order; `maxBurstAttempts` (which depends on `burstSize`) between the two.
const RULES: readonly Rule[] = [
  [
    [
      'requestTimeoutMs',
      'burstIntervalMs',
      'minIntervalMs',
      'maxIntervalMs',
      'windowMs',
      'driftWindowMs',
      'slewTimeConstantMs',
      'tickRateHz',
    ],
    (v) => finite(v) && v > 0,
    'a finite number > 0',
  ],
  [
    ['unstableThresholdMs', 'maxDriftPpm', 'minDriftSpanMs', 'stepThresholdMs'],
    (v) => finite(v) && v >= 0,
    'a finite number >= 0',
  ],
  [['burstSize', 'windowSize'], (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
];

const LATER_RULES: readonly Rule[] = [
  [['intervalGrowth'], (v) => finite(v) && v >= 1, 'a finite number >= 1'],
  [['maxSlewRate'], (v) => v > 0 && v < 1, 'in (0, 1)'],
  [['tickOriginMs'], finite, 'finite'],
];

function applyRules(options: TimeSyncOptions, out: Resolved, rules: readonly Rule[]): void {
  for (const [keys, valid, expected] of rules) {
    for (const key of keys) {
      const value = options[key];
      if (value === undefined) continue;
      if (!valid(value)) invalid(`${key} must be ${expected}, got ${value}`);
      out[key] = value;
    }
  }
}

function resolveOptions(options: TimeSyncOptions): Resolved {
  const out = { ...DEFAULTS } as Resolved;
  applyRules(options, out, RULES);
  out.maxBurstAttempts = options.maxBurstAttempts ?? 2 * out.burstSize;
  if (!(Number.isInteger(out.maxBurstAttempts) && out.maxBurstAttempts >= out.burstSize)) {
    invalid(
      `maxBurstAttempts must be an integer >= burstSize (${out.burstSize}), got ${out.maxBurstAttempts}`,
    );
  }
  applyRules(options, out, LATER_RULES);
  if (out.minIntervalMs > out.maxIntervalMs) {
    invalid(`minIntervalMs (${out.minIntervalMs}) must be <= maxIntervalMs (${out.maxIntervalMs})`);
  }
  out.autoStart = options.autoStart ?? true;
  return out;
}

/** The vertices of both hulls of `points`, sorted by t: all a drift fit needs of them. */
function hulls(points: Point[]): Point[] {
  points.sort((x, y) => x.t - y.t);
  const lower = hull(points, true);
  const upper = hull(points, false);
  return points.filter((p) => lower.includes(p) || upper.includes(p));
}

// Below this remaining distance (ms of server time) an `at()` event counts as due.
const AT_EPSILON_MS = 1e-3;

/** @internal Builds a client and the hooks its adapters use. */
export function createClientInternals(options: TimeSyncClientOptions): ClientInternals {
  if (typeof options?.send !== 'function') invalid('send must be a function');
  const time = options.time ?? systemTime;
  if (typeof time.now !== 'function' || typeof time.setTimeout !== 'function') {
    invalid('time must be a TimeSource');
  }
  const config = resolveOptions(options);
  const send = options.send;
  const emitter = new Emitter<TimeSyncEvents>();
  const maxSlope = config.maxDriftPpm * 1e-6;

  let closed = false;
  let closedReason = '';
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const window: TimeSample[] = [];
  let current: Estimate | null = null;
  let slope = 0;
  /** The last reply agreed with the window: a reply contradicting it is then held back. */
  let agreed = true;
  // Drift history: only the hull vertices (lower and upper) of each direction's one-way
  // differences matter.
  let hullUp: Point[] = [];
  let hullDown: Point[] = [];
  let originMs: number | null = null;
  const counters = { requests: 0, timeouts: 0, rejected: 0, steps: 0 };

  // Sampling schedule.
  let loopTimer: Timer | null = null;
  let intervalMs = config.minIntervalMs;
  let burst: { attempts: number; replies: number } | null = null;
  let waiters: { resolve: (s: TimeSyncStats) => void; reject: (e: unknown) => void }[] = [];

  // Slewing: shown offset = estimate(L) − error(L); error decays from `slewError` at `slewFromMs`.
  let slewFromMs = 0;
  let slewError = 0;
  let lastServerNow = Number.NEGATIVE_INFINITY;

  // Events at server times, sorted by time, FIFO on ties.
  const atEvents: AtEvent[] = [];
  let atTimer: Timer | null = null;

  const estimateAt = (localMs: number): number =>
    current ? current.offsetMs + current.slope * (localMs - current.referenceMs) : 0;

  /** Remaining slew error at local time `localMs` (closed form of de/dt = −clamp(e/τ, ±s)). */
  const slewErrorAt = (localMs: number): number => {
    const tau = config.slewTimeConstantMs;
    const limit = config.maxSlewRate * tau;
    let elapsed = Math.max(0, localMs - slewFromMs);
    let e = slewError;
    const magnitude = Math.abs(e);
    if (magnitude > limit) {
      const linearMs = (magnitude - limit) / config.maxSlewRate;
      if (elapsed <= linearMs) return Math.sign(e) * (magnitude - config.maxSlewRate * elapsed);
      elapsed -= linearMs;
      e = Math.sign(e) * limit;
    }
    return e * Math.exp(-elapsed / tau);
  };

  const displayOffsetAt = (localMs: number): number => estimateAt(localMs) - slewErrorAt(localMs);

  const rtts = (): { min: number; mean: number } => {
    if (window.length === 0) return { min: 0, mean: 0 };
    let min = Number.POSITIVE_INFINITY;
    let sum = 0;
    for (const s of window) {
      const rtt = s.t3 - s.t0 - (s.t2 - s.t1);
      min = Math.min(min, rtt);
      sum += rtt;
    }
    return { min, mean: sum / window.length };
  };

  const stats = (): TimeSyncStats => {
    const now = time.now();
    const rtt = rtts();
    return {
      offsetMs: estimateAt(now),
      displayOffsetMs: current ? displayOffsetAt(now) : 0,
      driftPpm: current ? -current.slope * 1e6 : 0,
      rttMinMs: rtt.min,
      rttMeanMs: rtt.mean,
      samples: window.length,
      confidenceMs: current ? current.confidenceMs : Number.POSITIVE_INFINITY,
      ...counters,
      synced: current !== null,
    };
  };

  const reject = (error: TickwireError): void => {
    counters.rejected++;
    emitter.emit('rejected', error);
  };

  // --- scheduling of requests ---

  const armLoop = (delayMs: number): void => {
    loopTimer?.cancel();
    loopTimer = closed ? null : time.setTimeout(tick, delayMs);
  };

  /** Requests of the burst waiting for a reply. */
  const inFlight = (): number => {
    let count = 0;
    for (const p of pending.values()) if (p.burst) count++;
    return count;
  };

  const finishBurstIfDone = (): void => {
    if (!burst) return;
    const done =
      burst.replies >= config.burstSize ||
      (burst.attempts >= config.maxBurstAttempts && inFlight() === 0);
    if (!done) return;
    burst = null;
    intervalMs = config.minIntervalMs;
    armLoop(config.minIntervalMs);
    const settled = waiters;
    waiters = [];
    const snapshot = stats();
    for (const w of settled) {
      if (snapshot.synced) w.resolve(snapshot);
      else
        w.reject(
          new TickwireError(
            ErrorCode.TIMEOUT,
            `timesync: no reply to ${config.maxBurstAttempts} requests (timeout ${config.requestTimeoutMs} ms each)`,
          ),
        );
    }
  };

  function sendRequest(inBurst: boolean): void {
    const id = nextId;
    nextId = nextId >= 0xffffffff ? 1 : nextId + 1;
    const request: TimeRequest = { id, t0: time.now() };
    const timer = time.setTimeout(() => onTimeout(id), config.requestTimeoutMs);
    pending.set(id, { request, timer, burst: inBurst });
    counters.requests++;
    try {
      send(request);
    } catch (error) {
      // A send that throws (connection closing…) lost its request at once: no reply to wait
      // for. Counted as rejected; the schedule goes on (a burst may end here).
      pending.delete(id);
      timer.cancel();
      const message = error instanceof Error ? error.message : String(error);
      reject(
        new TickwireError(
          isTickwireError(error) ? error.code : ErrorCode.INTERNAL,
          `timesync: send() threw: ${message}`,
          { cause: error },
        ),
      );
      if (inBurst) finishBurstIfDone();
    }
  }

  function tick(): void {
    loopTimer = null;
    if (closed) return;
    if (burst) {
      if (
        burst.replies + inFlight() < config.burstSize &&
        burst.attempts < config.maxBurstAttempts
      ) {
        burst.attempts++;
        sendRequest(true);
      }
      // Keep polling while attempts remain; a finished burst re-arms the steady loop itself.
      if (burst && burst.attempts < config.maxBurstAttempts) armLoop(config.burstIntervalMs);
      return;
    }
    sendRequest(false);
    armLoop(intervalMs);
  }

  function startBurst(): void {
    if (burst || closed) return;
    burst = { attempts: 0, replies: 0 };
    armLoop(0);
  }

  function onTimeout(id: number): void {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    counters.timeouts++;
    emitter.emit('timeout', entry.request);
    if (entry.burst) finishBurstIfDone();
  }

  // --- estimation ---

  function update(sample: TimeSample): number {
    const previous = current ? estimateAt(sample.t3) : null;
    window.push(sample);
    const oldest = sample.t3 - config.windowMs;
    while (window.length > config.windowSize || (window.length > 1 && window[0]!.t3 < oldest)) {
      window.shift();
    }
    originMs ??= sample.t0;
    const horizon = sample.t3 - originMs - config.driftWindowMs;
    const keep = (p: Point) => p.t >= horizon;
    hullUp = hulls([...hullUp.filter(keep), { t: sample.t0 - originMs, v: sample.t1 - sample.t0 }]);
    hullDown = hulls([
      ...hullDown.filter(keep),
      { t: sample.t3 - originMs, v: sample.t2 - sample.t3 },
    ]);
    const span = sample.t3 - originMs - Math.max(horizon, Math.min(hullUp[0]!.t, hullDown[0]!.t));
    const slopeBefore = slope;
    if (span >= config.minDriftSpanMs) {
      slope = fitSlope(hullUp, hullDown, maxSlope, current?.midrangeWeight ?? 0);
    }
    let next = estimateWithSlope(window, slope);
    let unstable = false;
    // Bounds that cross mean the clock model broke (a step, a changed rate): drop old samples.
    while (next.confidenceMs < 0 && window.length > 1) {
      unstable = true;
      window.splice(0, Math.max(1, window.length >> 1));
      // The drift history broke too, and a slope fitted across the break is meaningless: keep
      // the one from before it, and start the history again from the samples kept.
      slope = slopeBefore;
      originMs = window[0]!.t0;
      const origin = originMs;
      hullUp = hulls(window.map((s) => ({ t: s.t0 - origin, v: s.t1 - s.t0 })));
      hullDown = hulls(window.map((s) => ({ t: s.t3 - origin, v: s.t2 - s.t3 })));
      next = estimateWithSlope(window, slope);
    }
    const showing = current ? displayOffsetAt(sample.t3) : null;
    current = next;
    const target = estimateAt(sample.t3);
    if (previous !== null && Math.abs(target - previous) > config.unstableThresholdMs) {
      unstable = true;
    }
    if (showing === null || Math.abs(target - showing) > config.stepThresholdMs) {
      counters.steps++;
      slewError = 0;
      slewFromMs = sample.t3;
      emitter.emit('step', { previousOffsetMs: showing, offsetMs: target });
    } else {
      slewError = target - showing;
      slewFromMs = sample.t3;
    }
    if (!burst) {
      intervalMs = unstable
        ? config.minIntervalMs
        : Math.min(config.maxIntervalMs, intervalMs * config.intervalGrowth);
      if (unstable) armLoop(intervalMs);
    }
    rearmAt();
    return target;
  }

  function receive(response: TimeResponse): void {
    if (closed) return;
    const t3 = time.now();
    const id = response?.id;
    const entry = typeof id === 'number' ? pending.get(id) : undefined;
    if (!entry) {
      reject(
        new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          `timesync: response to unknown or expired request ${String(id)}`,
        ),
      );
      return;
    }
    const { t1, t2 } = response;
    const t0 = entry.request.t0;
    // The server cannot have held the request longer than the round trip took: such a reply
    // (bad clocks, a forged reply) has crossing bounds and would wreck the window.
    if (!(Number.isFinite(t1) && Number.isFinite(t2) && t2 >= t1 && t2 - t1 <= t3 - t0)) {
      reject(
        new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          `timesync: response ${id} has impossible timestamps`,
          { details: { t0, t1, t2, t3 } },
        ),
      );
      return;
    }
    pending.delete(id);
    entry.timer.cancel();
    const sample: TimeSample = { t0, t1, t2, t3 };
    // A reply whose bounds cross the whole window's is a clock step or a forged reply: held
    // back after one that agreed, so one reply cannot move the estimate by more than its round
    // trip; taken after one that did not (a step confirmed, or a window forged replies took).
    const held = agreed;
    agreed = !current || !(estimateWithSlope([...window, sample], slope).confidenceMs < 0);
    if (held && !agreed) {
      reject(
        new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          `timesync: response ${id} contradicts the window`,
        ),
      );
      if (entry.burst) finishBurstIfDone();
      return;
    }
    const offsetMs = update(sample);
    emitter.emit('sample', { sample, rttMs: t3 - t0 - (t2 - t1), offsetMs });
    if (entry.burst && burst) {
      burst.replies++;
      finishBurstIfDone();
    }
  }

  // --- server time, ticks, timed events ---

  function serverNow(): number {
    if (!current) {
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        'timesync: no server time before the first sample (await sync())',
      );
    }
    const local = time.now();
    const value = Math.max(local + displayOffsetAt(local), lastServerNow);
    lastServerNow = value;
    return value;
  }

  const tickAt = (serverTimeMs: number): number => {
    if (!Number.isFinite(serverTimeMs)) {
      invalid(`serverTimeMs must be finite, got ${String(serverTimeMs)}`);
    }
    return Math.floor(((serverTimeMs - config.tickOriginMs) * config.tickRateHz) / 1000);
  };

  const tickTime = (tick: number): number => {
    if (!Number.isFinite(tick)) invalid(`tick must be finite, got ${String(tick)}`);
    return config.tickOriginMs + (tick * 1000) / config.tickRateHz;
  };

  const reportCallbackError = (error: unknown, handle: ScheduledEvent): void => {
    if (emitter.emit('error', error, handle)) return;
    queueMicrotask(() => {
      throw error;
    });
  };

  function fireDueEvents(): void {
    atTimer = null;
    if (closed) return;
    try {
      // Cut-off: this pass runs only the events due when it starts. What their callbacks
      // schedule (even in the past) waits for the next scheduler turn, so a callback that
      // re-schedules itself at serverNow() cannot spin here forever.
      const now = serverNow();
      let count = 0;
      while (count < atEvents.length && atEvents[count]!.serverTimeMs - now <= AT_EPSILON_MS) {
        count++;
      }
      const due = atEvents.splice(0, count);
      for (const event of due) {
        // A callback before it may have cancelled it, or closed the client.
        if (closed) return;
        if (event.cancelled) continue;
        event.cancelled = true;
        try {
          event.fn();
        } catch (error) {
          reportCallbackError(error, event.handle);
        }
      }
    } finally {
      rearmAt();
    }
  }

  function rearmAt(): void {
    atTimer?.cancel();
    atTimer = null;
    while (atEvents.length > 0 && atEvents[0]!.cancelled) atEvents.shift();
    const head = atEvents[0];
    // Before the first sample there is no server time: update() arms the events then.
    if (!head || closed || !current) return;
    const remaining = head.serverTimeMs - serverNow();
    // The shown clock runs at most (1 + drift + maxSlewRate) times local time: never fire late.
    const fastest = 1 + Math.abs(current.slope) + config.maxSlewRate;
    atTimer = time.setTimeout(fireDueEvents, Math.max(0, remaining / fastest));
  }

  function at(serverTimeMs: number, fn: () => void): ScheduledEvent {
    if (!Number.isFinite(serverTimeMs)) invalid(`serverTimeMs must be finite, got ${serverTimeMs}`);
    if (typeof fn !== 'function') invalid('at() takes a function');
    const handle: ScheduledEvent = {
      serverTimeMs,
      cancel() {
        event.cancelled = true;
      },
    };
    const event: AtEvent = { serverTimeMs, fn, cancelled: false, handle };
    if (closed) {
      event.cancelled = true;
      return handle;
    }
    let index = atEvents.length;
    while (index > 0 && atEvents[index - 1]!.serverTimeMs > serverTimeMs) index--;
    atEvents.splice(index, 0, event);
    if (index === 0) rearmAt();
    return handle;
  }

  function shutdown(reason: string): void {
    if (closed) return;
    closed = true;
    closedReason = reason;
    loopTimer?.cancel();
    atTimer?.cancel();
    for (const p of pending.values()) p.timer.cancel();
    pending.clear();
    atEvents.length = 0;
    const settled = waiters;
    waiters = [];
    for (const w of settled) {
      w.reject(new TickwireError(ErrorCode.CLOSED, `timesync: sync aborted, ${reason}`));
    }
  }

  const client: TimeSyncClient = {
    ...subscribable(emitter),
    receive,
    sync() {
      if (closed) {
        return Promise.reject(new TickwireError(ErrorCode.CLOSED, `timesync: ${closedReason}`));
      }
      return new Promise<TimeSyncStats>((resolve, rejectPromise) => {
        waiters.push({ resolve, reject: rejectPromise });
        startBurst();
      });
    },
    serverNow,
    tickAt,
    tickTime,
    currentTick: () => tickAt(serverNow()),
    at,
    stats,
    close: () => shutdown('client closed'),
  };
  if (config.autoStart) startBurst();
  return { client, reject, shutdown };
}

/**
 * Creates a transport-agnostic time sync client: it calls `send(request)`, you deliver each
 * response to `receive(response)`. Sampling starts at once (a burst, then an adaptive pace).
 */
export function createTimeSyncClient(options: TimeSyncClientOptions): TimeSyncClient {
  return createClientInternals(options).client;
}
