// Loss- and delay-driven send rate: slow start, then AIMD (multiplicative decrease when an epoch
// loses more than the tolerated share of packets or shows queueing delay, additive increase
// otherwise). Random loss below the tolerance is not taken for congestion: games run on lossy
// links where a TCP-style halving on every loss would starve them.

/** Settings of a {@link CongestionController}. */
export interface CongestionOptions {
  /** Starting rate in bytes per second. */
  initialRateBytesPerSec: number;
  /** The rate never goes below this many bytes per second. */
  minRateBytesPerSec: number;
  /** The rate never goes above this many bytes per second. */
  maxRateBytesPerSec: number;
  /** Largest packet in bytes (the additive step is at least one packet per epoch). */
  packetBytes: number;
  /** Loss share in [0, 1] of an epoch above which the rate is cut. @default 0.25 */
  lossTolerance?: number;
}

/** Multiplicative decrease factor. */
const DECREASE = 0.7;
/** Additive increase per epoch, as a share of the rate (at least one packet per epoch). */
const INCREASE_SHARE = 0.08;
/** Resolved packets needed before an epoch's loss share is trusted. */
const MIN_EPOCH_SAMPLES = 16;
/** Epoch length bounds in ms (an epoch is about one smoothed RTT). */
const MIN_EPOCH_MS = 10;
const MAX_EPOCH_MS = 500;

/** Chooses the send rate from acks, losses and RTT, once per epoch of about one RTT. */
export class CongestionController {
  /** Current rate in bytes per second. */
  rateBytesPerSec: number;
  /** True until the first congestion event. */
  slowStart = true;
  /** Times the rate was cut. */
  decreases = 0;
  readonly #options: Required<CongestionOptions>;
  #epochStartMs = Number.NaN;
  #epochAcked = 0;
  #epochLost = 0;
  #epochSentBytes = 0;

  constructor(options: CongestionOptions) {
    this.#options = { lossTolerance: 0.25, ...options };
    this.rateBytesPerSec = Math.min(
      options.maxRateBytesPerSec,
      Math.max(options.minRateBytesPerSec, options.initialRateBytesPerSec),
    );
  }

  /** Counts bytes sent (to tell a rate-limited sender from an idle one). */
  onSent(bytes: number): void {
    this.#epochSentBytes += bytes;
  }

  /** Counts an acknowledged packet. */
  onAcked(): void {
    this.#epochAcked++;
  }

  /** Counts a lost packet. */
  onLost(): void {
    this.#epochLost++;
  }

  /** A packet counted lost was acknowledged after all: takes the loss back (this epoch). */
  onLossUndone(): void {
    if (this.#epochLost > 0) this.#epochLost--;
    this.#epochAcked++;
  }

  /**
   * Ends the epoch if it is due and adapts the rate; returns true if the rate changed.
   * `srttMs` / `minRttMs` are 0 / Infinity while unknown.
   */
  update(nowMs: number, srttMs: number, minRttMs: number): boolean {
    if (Number.isNaN(this.#epochStartMs)) {
      this.#epochStartMs = nowMs;
      return false;
    }
    const epochMs = Math.min(MAX_EPOCH_MS, Math.max(MIN_EPOCH_MS, srttMs));
    const elapsedMs = nowMs - this.#epochStartMs;
    if (elapsedMs < epochMs) return false;
    const resolved = this.#epochAcked + this.#epochLost;
    if (resolved < MIN_EPOCH_SAMPLES && elapsedMs < 4 * epochMs) return false;
    const options = this.#options;
    const lossShare = resolved === 0 ? 0 : this.#epochLost / resolved;
    const queueing =
      Number.isFinite(minRttMs) && srttMs - minRttMs > Math.max(minRttMs, 50) && resolved > 0;
    const usedBytes = (this.rateBytesPerSec * elapsedMs) / 1000;
    const appLimited = this.#epochSentBytes < usedBytes * 0.5;
    const before = this.rateBytesPerSec;
    if ((lossShare > options.lossTolerance && resolved >= MIN_EPOCH_SAMPLES) || queueing) {
      this.rateBytesPerSec *= DECREASE;
      this.slowStart = false;
      this.decreases++;
    } else if (!appLimited) {
      if (this.slowStart) this.rateBytesPerSec *= 2;
      else {
        this.rateBytesPerSec += Math.max(
          (options.packetBytes * 1000) / epochMs,
          this.rateBytesPerSec * INCREASE_SHARE,
        );
      }
    }
    this.rateBytesPerSec = Math.min(
      options.maxRateBytesPerSec,
      Math.max(options.minRateBytesPerSec, this.rateBytesPerSec),
    );
    this.#epochStartMs = nowMs;
    this.#epochAcked = 0;
    this.#epochLost = 0;
    this.#epochSentBytes = 0;
    return this.rateBytesPerSec !== before;
  }
}
