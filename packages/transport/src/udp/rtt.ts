// RFC 6298 round-trip time estimation: SRTT, RTTVAR and a clamped retransmission timeout.

/** Limits of an {@link RttEstimator}, in ms. */
export interface RttEstimatorOptions {
  /** RTO before the first sample. */
  initialRtoMs: number;
  /** Smallest RTO. */
  minRtoMs: number;
  /** Largest RTO, also the cap of exponential backoff. */
  maxRtoMs: number;
  /** Clock granularity G of RFC 6298. */
  granularityMs?: number;
}

/** Smoothed RTT, its variation and the retransmission timeout of one path (RFC 6298). */
export class RttEstimator {
  /** Smoothed RTT in ms; 0 before the first sample. */
  srttMs = 0;
  /** RTT variation in ms. */
  rttVarMs = 0;
  /** Smallest sample seen, in ms; Infinity before the first sample. */
  minRttMs = Number.POSITIVE_INFINITY;
  /** Most recent sample in ms. */
  latestRttMs = 0;
  /** Largest recent sample in ms, decaying toward SRTT by 1/128 per sample (a reordering window). */
  maxRecentRttMs = 0;
  /** Current retransmission timeout in ms (includes backoff). */
  rtoMs: number;
  /** Samples taken. */
  samples = 0;
  readonly #minRtoMs: number;
  readonly #maxRtoMs: number;
  readonly #granularityMs: number;

  constructor(options: RttEstimatorOptions) {
    this.#minRtoMs = options.minRtoMs;
    this.#maxRtoMs = options.maxRtoMs;
    this.#granularityMs = options.granularityMs ?? 1;
    this.rtoMs = this.#clamp(options.initialRtoMs);
  }

  /** Adds one RTT sample in ms (negative or non-finite samples are ignored). */
  update(sampleMs: number): void {
    if (!(sampleMs >= 0) || !Number.isFinite(sampleMs)) return;
    this.latestRttMs = sampleMs;
    if (sampleMs < this.minRttMs) this.minRttMs = sampleMs;
    if (this.samples === 0) {
      this.srttMs = sampleMs;
      this.rttVarMs = sampleMs / 2;
    } else {
      // RFC 6298 2.3: beta = 1/4, alpha = 1/8; RTTVAR first, with the old SRTT.
      this.rttVarMs = 0.75 * this.rttVarMs + 0.25 * Math.abs(this.srttMs - sampleMs);
      this.srttMs = 0.875 * this.srttMs + 0.125 * sampleMs;
    }
    this.maxRecentRttMs = Math.max(
      sampleMs,
      this.maxRecentRttMs - (this.maxRecentRttMs - this.srttMs) / 128,
    );
    this.samples++;
    this.rtoMs = this.#clamp(this.srttMs + Math.max(this.#granularityMs, 4 * this.rttVarMs));
  }

  /** Widens the reordering window with the RTT of a packet acknowledged after it was deemed lost. */
  observeLate(sampleMs: number): void {
    if (sampleMs > this.maxRecentRttMs && Number.isFinite(sampleMs)) this.maxRecentRttMs = sampleMs;
  }

  /** Doubles the RTO after a retransmission timeout (RFC 6298 5.5), up to the maximum. */
  backoff(): void {
    this.rtoMs = this.#clamp(this.rtoMs * 2);
  }

  #clamp(ms: number): number {
    return Math.min(this.#maxRtoMs, Math.max(this.#minRtoMs, ms));
  }
}
