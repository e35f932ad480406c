// Token-bucket send pacing: packets leave at the configured rate in small bursts, never thousands
// in one tick (an unpaced burst overflows the receiver's socket buffer even on loopback).

/** Limits of a {@link Pacer}. */
export interface PacerOptions {
  /** Initial rate in bytes per second. */
  rateBytesPerSec: number;
  /** The bucket holds this many ms of sending at the current rate… */
  burstMs: number;
  /** …but never less than this many bytes. */
  minBurstBytes: number;
}

/** A token bucket in bytes; sending may overdraw it by one packet (the debt delays the next). */
export class Pacer {
  #rateBytesPerSec: number;
  #capacityBytes = 0;
  #tokens: number;
  #lastMs = Number.NaN;
  readonly #burstMs: number;
  readonly #minBurstBytes: number;

  constructor(options: PacerOptions) {
    this.#burstMs = options.burstMs;
    this.#minBurstBytes = options.minBurstBytes;
    this.#rateBytesPerSec = options.rateBytesPerSec;
    this.#updateCapacity();
    this.#tokens = this.#capacityBytes;
  }

  /** Current rate in bytes per second. */
  get rateBytesPerSec(): number {
    return this.#rateBytesPerSec;
  }

  /** Bytes that may be sent now (negative while in debt). */
  get tokens(): number {
    return this.#tokens;
  }

  /** Changes the rate (the bucket keeps its tokens, capped to the new capacity). */
  setRate(rateBytesPerSec: number): void {
    this.#rateBytesPerSec = rateBytesPerSec;
    this.#updateCapacity();
    if (this.#tokens > this.#capacityBytes) this.#tokens = this.#capacityBytes;
  }

  /** Adds the tokens earned since the last refill. */
  refill(nowMs: number): void {
    if (Number.isNaN(this.#lastMs)) {
      this.#lastMs = nowMs;
      return;
    }
    const elapsedMs = nowMs - this.#lastMs;
    if (elapsedMs <= 0) return;
    this.#lastMs = nowMs;
    this.#tokens = Math.min(
      this.#capacityBytes,
      this.#tokens + (this.#rateBytesPerSec * elapsedMs) / 1000,
    );
  }

  /** True if a packet may leave now. */
  canSend(): boolean {
    return this.#tokens > 0;
  }

  /** Takes `bytes` from the bucket (may go into debt). */
  consume(bytes: number): void {
    this.#tokens -= bytes;
  }

  /** Ms until a packet may leave (0 if it may now). */
  delayMs(): number {
    if (this.#tokens > 0) return 0;
    return ((1 - this.#tokens) * 1000) / this.#rateBytesPerSec;
  }

  #updateCapacity(): void {
    this.#capacityBytes = Math.max(
      this.#minBurstBytes,
      (this.#rateBytesPerSec * this.#burstMs) / 1000,
    );
  }
}
