import { systemTime, type TimeSource } from './clock.js';
import { ErrorCode, TickwireError } from './errors.js';
import { createRandom, type Random } from './random.js';

/** Shape of the random part of the delay. */
export type JitterDistribution = 'uniform' | 'normal' | 'exponential';

/** Conditions of one direction of a simulated link. */
export interface LinkOptions {
  /**
   * Base one-way delay in ms.
   * @default 0
   */
  latencyMs?: number;
  /**
   * Random delay in ms: uniform in ±jitterMs, normal with this standard deviation (clamped to
   * ±3σ), or exponential with this mean (added; models queueing). The delay is never below 0.
   * @default 0
   */
  jitterMs?: number;
  /** @default 'uniform' */
  jitterDistribution?: JitterDistribution;
  /**
   * Probability in [0, 1] that a packet is lost. On ordered (reliable) traffic a loss becomes a
   * retransmission delay instead, as on TCP.
   * @default 0
   */
  lossRate?: number;
  /**
   * Probability in [0, 1] that a packet is delivered twice (unordered traffic only).
   * @default 0
   */
  duplicateRate?: number;
  /**
   * Probability in [0, 1] that a packet is held back by `reorderDelayMs`, so later ones pass it.
   * @default 0
   */
  reorderRate?: number;
  /**
   * Extra delay of a reordered packet in ms.
   * @default 20
   */
  reorderDelayMs?: number;
  /**
   * Bandwidth cap in bytes per second; 0 means unlimited.
   * @default 0
   */
  bandwidthBytesPerSec?: number;
  /**
   * Bytes that may wait for the bandwidth cap; unordered packets beyond it are dropped (tail drop).
   * @default 65536
   */
  maxQueueBytes?: number;
}

/** Options of {@link createLinkConditioner}. */
export interface LinkConditionerOptions extends LinkOptions {
  /** Clock and scheduler that delays run on. @default systemTime */
  time?: TimeSource;
  /** Random source; use a seeded one for repeatable runs. Ignored if `seed` is given. */
  random?: Random;
  /** Seed of a private `createRandom(seed)`. @default 1 */
  seed?: number;
}

/** Counters of a conditioner since creation or `resetStats()`. */
export interface LinkStats {
  /** Packets handed to the link. */
  sent: number;
  bytesSent: number;
  /** Deliveries made (a duplicated packet counts twice). */
  delivered: number;
  bytesDelivered: number;
  /** Packets lost at random (unordered traffic). */
  lost: number;
  /** Unordered packets dropped because the bandwidth queue was full. */
  queueDropped: number;
  /** Extra copies created. */
  duplicated: number;
  /** Packets held back to be reordered. */
  reordered: number;
  /** Retransmissions simulated for ordered traffic. */
  retransmitted: number;
  /** Delay of deliveries (ms): sum, min and max (0 before the first delivery). */
  delaySumMs: number;
  delayMinMs: number;
  delayMaxMs: number;
  /** Deliveries scheduled and not yet made. */
  inFlight: number;
}

/** Simulates one direction of a network link for packets of any kind. */
export interface LinkConditioner {
  /**
   * Puts a packet of `sizeBytes` on the link; `deliver` runs at its arrival time (twice if it is
   * duplicated, never if it is lost). `ordered` traffic is never lost, duplicated or reordered:
   * losses become retransmission delays and delivery keeps the sending order.
   */
  transmit(sizeBytes: number, deliver: () => void, ordered?: boolean): void;
  /** Changes conditions from now on (packets in flight keep their schedule). */
  configure(options: LinkOptions): void;
  /** Current conditions, with defaults filled in. */
  readonly options: Readonly<Required<LinkOptions>>;
  readonly stats: Readonly<LinkStats>;
  resetStats(): void;
  /** Drops every packet in flight. */
  clear(): void;
}

const DEFAULTS: Required<LinkOptions> = {
  latencyMs: 0,
  jitterMs: 0,
  jitterDistribution: 'uniform',
  lossRate: 0,
  duplicateRate: 0,
  reorderRate: 0,
  reorderDelayMs: 20,
  bandwidthBytesPerSec: 0,
  maxQueueBytes: 65_536,
};

function validate(options: Required<LinkOptions>): void {
  const fail = (message: string): never => {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `link conditioner: ${message}`);
  };
  for (const key of [
    'latencyMs',
    'jitterMs',
    'reorderDelayMs',
    'bandwidthBytesPerSec',
    'maxQueueBytes',
  ] as const) {
    const value = options[key];
    if (!Number.isFinite(value) || value < 0)
      fail(`${key} must be a finite number >= 0, got ${value}`);
  }
  for (const key of ['lossRate', 'duplicateRate', 'reorderRate'] as const) {
    const value = options[key];
    if (!(value >= 0 && value <= 1)) fail(`${key} must be in [0, 1], got ${value}`);
  }
  if (!['uniform', 'normal', 'exponential'].includes(options.jitterDistribution)) {
    fail(
      `jitterDistribution must be 'uniform', 'normal' or 'exponential', got ${options.jitterDistribution}`,
    );
  }
}

function emptyStats(): LinkStats {
  return {
    sent: 0,
    bytesSent: 0,
    delivered: 0,
    bytesDelivered: 0,
    lost: 0,
    queueDropped: 0,
    duplicated: 0,
    reordered: 0,
    retransmitted: 0,
    delaySumMs: 0,
    delayMinMs: 0,
    delayMaxMs: 0,
    inFlight: 0,
  };
}

// Up to this many consecutive losses of one ordered packet are simulated, then it gets through.
const MAX_RETRANSMISSIONS = 16;

/**
 * Creates a link conditioner: latency, jitter, loss, duplication, reordering and a bandwidth cap,
 * driven by the given time source and seeded random source, so equal seeds give equal runs.
 */
export function createLinkConditioner(options: LinkConditionerOptions = {}): LinkConditioner {
  const time = options.time ?? systemTime;
  const random: Random =
    options.seed !== undefined || options.random === undefined
      ? createRandom(options.seed ?? 1)
      : options.random;
  let current: Required<LinkOptions> = { ...DEFAULTS };
  let stats = emptyStats();
  let generation = 0;
  // When the simulated wire is next free (bandwidth cap), and the last ordered arrival time.
  let wireFreeAt = 0;
  let lastOrderedArrival = Number.NEGATIVE_INFINITY;
  let orderedQueue: { due: boolean; deliver: () => void }[] = [];
  let orderedHead = 0;

  const jitter = (): number => {
    const j = current.jitterMs;
    if (j === 0) return 0;
    switch (current.jitterDistribution) {
      case 'exponential':
        return -j * Math.log(1 - random.next());
      case 'normal': {
        const u = 1 - random.next();
        const v = random.next();
        const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
        return j * Math.max(-3, Math.min(3, z));
      }
      default:
        return j * (2 * random.next() - 1);
    }
  };

  const schedule = (
    sizeBytes: number,
    sentAt: number,
    arrival: number,
    deliver: () => void,
  ): void => {
    const gen = generation;
    const delay = arrival - time.now();
    stats.inFlight++;
    const run = () => {
      if (gen !== generation) return;
      stats.inFlight--;
      const took = time.now() - sentAt;
      stats.delivered++;
      stats.bytesDelivered += sizeBytes;
      stats.delaySumMs += took;
      if (stats.delivered === 1 || took < stats.delayMinMs) stats.delayMinMs = took;
      if (took > stats.delayMaxMs) stats.delayMaxMs = took;
      deliver();
    };
    // Nothing to wait for: a microtask, not a timer (a real timer costs a millisecond or more).
    if (delay <= 0) queueMicrotask(run);
    else time.setTimeout(run, delay);
  };

  const conditioner: LinkConditioner = {
    transmit(sizeBytes, deliver, ordered = false) {
      if (!(Number.isFinite(sizeBytes) && sizeBytes >= 0)) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `link conditioner: sizeBytes must be a finite number >= 0, got ${sizeBytes}`,
        );
      }
      const now = time.now();
      stats.sent++;
      stats.bytesSent += sizeBytes;
      // Bandwidth cap: the packet leaves when the wire is free and takes size/rate to serialize.
      let departure = now;
      const rate = current.bandwidthBytesPerSec;
      if (rate > 0) {
        const start = Math.max(now, wireFreeAt);
        const queuedBytes = ((start - now) * rate) / 1000;
        if (!ordered && queuedBytes + sizeBytes > current.maxQueueBytes && start > now) {
          stats.queueDropped++;
          return;
        }
        wireFreeAt = start + (sizeBytes * 1000) / rate;
        departure = wireFreeAt;
      }
      const base = departure + current.latencyMs;
      if (ordered) {
        let arrival = base + Math.max(-current.latencyMs, jitter());
        // A lost segment is resent after about one RTO (here: 2× the one-way delay, at least 1 ms).
        const rtoMs = Math.max(1, 2 * (current.latencyMs + current.jitterMs));
        for (let i = 0; i < MAX_RETRANSMISSIONS && random.next() < current.lossRate; i++) {
          stats.retransmitted++;
          arrival += rtoMs;
        }
        arrival = Math.max(arrival, lastOrderedArrival);
        lastOrderedArrival = arrival;
        // Real timers with equal due times may fire out of order: release through a FIFO.
        const entry = { due: false, deliver };
        orderedQueue.push(entry);
        schedule(sizeBytes, now, arrival, () => {
          entry.due = true;
          while (orderedHead < orderedQueue.length && orderedQueue[orderedHead]!.due) {
            orderedQueue[orderedHead++]!.deliver();
          }
          if (orderedHead === orderedQueue.length) {
            orderedQueue.length = 0;
            orderedHead = 0;
          }
        });
        return;
      }
      if (random.next() < current.lossRate) {
        stats.lost++;
        return;
      }
      let arrival = base + Math.max(-current.latencyMs, jitter());
      if (random.next() < current.reorderRate) {
        stats.reordered++;
        arrival += current.reorderDelayMs;
      }
      schedule(sizeBytes, now, arrival, deliver);
      if (random.next() < current.duplicateRate) {
        stats.duplicated++;
        schedule(sizeBytes, now, base + Math.max(-current.latencyMs, jitter()), deliver);
      }
    },
    configure(next) {
      const merged = { ...current };
      // An option set to undefined is left out, as its type allows.
      for (const [key, value] of Object.entries(next))
        if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
      validate(merged);
      current = merged;
    },
    get options() {
      return current;
    },
    get stats() {
      return stats;
    },
    resetStats() {
      const inFlight = stats.inFlight;
      stats = emptyStats();
      stats.inFlight = inFlight;
    },
    clear() {
      generation++;
      stats.inFlight = 0;
      wireFreeAt = 0;
      lastOrderedArrival = Number.NEGATIVE_INFINITY;
      orderedQueue = [];
      orderedHead = 0;
    },
  };
  const { time: _t, random: _r, seed: _s, ...linkOptions } = options;
  conditioner.configure(linkOptions);
  return conditioner;
}
