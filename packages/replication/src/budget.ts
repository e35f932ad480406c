import { type ConnectionStats, ErrorCode, TickwireError } from '@tickwire/core';

/** Options of {@link createBandwidthBudget}. */
export interface BandwidthBudgetOptions {
  /** The starting rate in bytes per second. @default 64000 */
  initialBytesPerSecond?: number;
  /** The rate never falls below this. @default 8000 */
  minBytesPerSecond?: number;
  /** The rate never rises above this. @default 1000000 */
  maxBytesPerSecond?: number;
  /** How often `update` is called (once per snapshot), to turn the rate into bytes per snapshot. @default 20 */
  snapshotsPerSecond?: number;
}

/** A per-connection snapshot budget that adapts to what the connection reports. */
export interface BandwidthBudget {
  /**
   * Feeds the connection's current figures (call it once per snapshot, just before encoding
   * it) and returns the bytes allowed for that snapshot: an integer of at least
   * {@link MIN_SNAPSHOT_BUDGET_BYTES}, fit for `ReplicationServer.setBudget`. Throws
   * INVALID_ARGUMENT for a negative or non-finite `bufferedAmount`, `lossRate` outside [0, 1]
   * or a negative `unreliableDropped`.
   */
  update(stats: Readonly<ConnectionStats>, bufferedAmount: number): number;
  /** The current rate in bytes per second. */
  readonly bytesPerSecond: number;
}

/** The smallest budget `update` returns: room for a snapshot header and a few removals. */
export const MIN_SNAPSHOT_BUDGET_BYTES = 16;

/** A loss rate at or below this counts as a clean link (the rate may grow). */
const LOW_LOSS_RATE = 0.02;
/** Loss must rise this much above its lowest value since the last decrease to count as rising. */
const LOSS_RISE = 0.01;
/** Multiplicative decrease. */
const DECREASE = 0.7;
/** Additive increase: bytes per second gained per second of clean link. */
const INCREASE_PER_SECOND = 16_000;

function option(
  options: BandwidthBudgetOptions,
  name: keyof BandwidthBudgetOptions,
  fallback: number,
) {
  const value = options[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createBandwidthBudget: ${name} must be a finite number > 0, got ${String(value)}`,
    );
  return value;
}

/**
 * Creates an AIMD (additive increase, multiplicative decrease) bandwidth budget driven by
 * what core's `ConnectionStats` measure, one `update` per snapshot:
 *
 * - **decrease** (rate × 0.7) when the link shows congestion: new `unreliableDropped` (the
 *   transport dropped sends locally), a `bufferedAmount` that grew since the last update and
 *   holds more than one snapshot's budget, or a `lossRate` above 2 % that rose more than one
 *   point above its lowest value since the last decrease. After a decrease, further decreases
 *   wait about one round trip (`rttMs`, in updates) so one congestion event is not counted twice.
 * - **increase** (+16 kB/s per second of updates) while the link is clean: loss at most 2 %, no
 *   new drops and no more than one snapshot's budget waiting in the send buffer.
 * - **hold** otherwise (steady loss above 2 %, a buffer that is full but not growing).
 *
 * The rate stays within [min, max]; the first `update` only records the figures. Throws
 * INVALID_ARGUMENT for a non-positive or non-finite option, or unless min ≤ initial ≤ max.
 */
export function createBandwidthBudget(options: BandwidthBudgetOptions = {}): BandwidthBudget {
  if (typeof options !== 'object' || options === null)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'createBandwidthBudget: options must be an object',
    );
  const min = option(options, 'minBytesPerSecond', 8_000);
  const max = option(options, 'maxBytesPerSecond', 1_000_000);
  const initial = option(options, 'initialBytesPerSecond', 64_000);
  const perSecond = option(options, 'snapshotsPerSecond', 20);
  if (!(min <= initial && initial <= max))
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `createBandwidthBudget: need minBytesPerSecond <= initialBytesPerSecond <= maxBytesPerSecond, got ${min}, ${initial}, ${max}`,
    );
  const step = INCREASE_PER_SECOND / perSecond;
  let rate = initial;
  let started = false;
  let lastDropped = 0;
  let lastBuffered = 0;
  let lossFloor = 0;
  /** Updates left during which no further decrease is made. */
  let holdoff = 0;

  const perSnapshot = () => Math.max(MIN_SNAPSHOT_BUDGET_BYTES, Math.floor(rate / perSecond));

  const check = (stats: Readonly<ConnectionStats>, bufferedAmount: number) => {
    const fail = (what: string) => {
      throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `bandwidth budget: ${what}`);
    };
    if (!(Number.isFinite(bufferedAmount) && bufferedAmount >= 0))
      fail(`bufferedAmount must be a finite number >= 0, got ${bufferedAmount}`);
    if (!(stats.lossRate >= 0 && stats.lossRate <= 1))
      fail(`stats.lossRate must be in [0, 1], got ${stats.lossRate}`);
    if (!(Number.isFinite(stats.unreliableDropped) && stats.unreliableDropped >= 0))
      fail(`stats.unreliableDropped must be a finite number >= 0, got ${stats.unreliableDropped}`);
  };

  return {
    update(stats, bufferedAmount) {
      check(stats, bufferedAmount);
      const loss = stats.lossRate;
      const dropped = stats.unreliableDropped;
      if (!started) {
        started = true;
        lastDropped = dropped;
        lastBuffered = bufferedAmount;
        lossFloor = loss;
        return perSnapshot();
      }
      const budget = perSnapshot();
      // A counter that went backwards was reset: start counting again from it.
      const newDrops = dropped > lastDropped;
      const growing = bufferedAmount > lastBuffered && bufferedAmount > budget;
      const lossRising = loss > LOW_LOSS_RATE && loss > lossFloor + LOSS_RISE;
      lastDropped = dropped;
      lastBuffered = bufferedAmount;
      lossFloor = Math.min(lossFloor, loss);
      if (holdoff > 0) holdoff--;
      if (newDrops || growing || lossRising) {
        if (holdoff === 0) {
          rate = Math.max(min, rate * DECREASE);
          lossFloor = loss;
          const rtt = Number.isFinite(stats.rttMs) ? Math.max(0, stats.rttMs) : 0;
          holdoff = Math.ceil((rtt * perSecond) / 1000);
        }
      } else if (loss <= LOW_LOSS_RATE && bufferedAmount <= budget) {
        rate = Math.min(max, rate + step);
      }
      return perSnapshot();
    },
    get bytesPerSecond() {
      return rate;
    },
  };
}
