// Per-address token buckets for handshake packets (each one costs the server an HMAC or an AEAD).

/** Limits of an {@link AddressRateLimiter}. */
export interface AddressRateLimiterOptions {
  /** Packets per second per address, sustained. */
  ratePerSec: number;
  /** Packets an address may send in a burst. */
  burst: number;
  /** Addresses tracked at once; beyond, new addresses share one bucket. */
  maxAddresses: number;
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

/** Token bucket per source address, bounded in memory. */
export class AddressRateLimiter {
  readonly #options: AddressRateLimiterOptions;
  readonly #buckets = new Map<string, Bucket>();
  readonly #overflow: Bucket;

  constructor(options: AddressRateLimiterOptions) {
    this.#options = options;
    this.#overflow = { tokens: options.burst, lastMs: Number.NEGATIVE_INFINITY };
  }

  /** Addresses tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token of `address`'s bucket; false if it has none. */
  allow(address: string, nowMs: number): boolean {
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#options.maxAddresses) this.sweep(nowMs);
      if (this.#buckets.size >= this.#options.maxAddresses) {
        bucket = this.#overflow;
      } else {
        bucket = { tokens: this.#options.burst, lastMs: nowMs };
        this.#buckets.set(address, bucket);
      }
    }
    this.#refill(bucket, nowMs);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets addresses whose bucket is full again (they look like new ones). */
  sweep(nowMs: number): void {
    for (const [address, bucket] of this.#buckets) {
      this.#refill(bucket, nowMs);
      if (bucket.tokens >= this.#options.burst) this.#buckets.delete(address);
    }
  }

  #refill(bucket: Bucket, nowMs: number): void {
    const elapsedMs = nowMs - bucket.lastMs;
    if (elapsedMs <= 0) return;
    bucket.lastMs = nowMs;
    bucket.tokens = Math.min(
      this.#options.burst,
      bucket.tokens + (elapsedMs * this.#options.ratePerSec) / 1000,
    );
  }
}
