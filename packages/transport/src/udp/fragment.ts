// Fragmentation of messages larger than one packet, and bounded reassembly of their fragments.

/** What {@link Reassembler.add} did with a fragment. */
export const FragmentResult = {
  /** Stored; the message is not complete yet. */
  Pending: 0,
  /** The message is complete: read it from `Reassembler.message`. */
  Complete: 1,
  /** This fragment was already stored. */
  Duplicate: 2,
  /** Not stored: over the count or byte limit (the sender must resend it later). */
  Refused: 3,
  /** Inconsistent with the other fragments: the whole message is dropped. */
  Invalid: 4,
  /** Over `maxMessageBytes`: the whole message is dropped. */
  TooLarge: 5,
} as const;

/** One of the {@link FragmentResult} values. */
export type FragmentResult = (typeof FragmentResult)[keyof typeof FragmentResult];

/** Limits of a {@link Reassembler}. */
export interface ReassemblerOptions {
  /** Messages being reassembled at once. */
  maxMessages: number;
  /** Bytes held by incomplete messages. */
  maxBytes: number;
  /** Largest complete message in bytes. */
  maxMessageBytes: number;
  /** Largest fragment count of one message. */
  maxFragments: number;
  /** An incomplete message this many ms old is dropped by `expire` (Infinity: never). */
  timeoutMs: number;
  /** When full: drop the oldest incomplete message (true) or refuse the new fragment (false). */
  evictOldest: boolean;
}

interface Partial {
  count: number;
  received: number;
  bytes: number;
  startedMs: number;
  parts: (Uint8Array | undefined)[];
}

/** Reassembles fragmented messages keyed by a number, within bounds of count, bytes and age. */
export class Reassembler {
  /** The message completed by the last `add` that returned Complete. */
  message: Uint8Array = new Uint8Array(0);
  /** Incomplete messages dropped by eviction or timeout. */
  dropped = 0;
  readonly #options: ReassemblerOptions;
  readonly #partials = new Map<number, Partial>();
  #bytes = 0;

  constructor(options: ReassemblerOptions) {
    this.#options = options;
  }

  /** Incomplete messages held. */
  get size(): number {
    return this.#partials.size;
  }

  /** Bytes held by incomplete messages. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True if message `key` is being reassembled. */
  has(key: number): boolean {
    return this.#partials.has(key);
  }

  /**
   * Stores a copy of fragment `index` of `count` of message `key` (a view would pin the whole
   * datagram it came in, beyond what the byte limits count).
   * `force` bypasses the count and byte limits (a reliable receiver's next expected message).
   */
  add(
    key: number,
    index: number,
    count: number,
    data: Uint8Array,
    nowMs: number,
    force = false,
  ): FragmentResult {
    const options = this.#options;
    if (count < 2 || index >= count || count > options.maxFragments) {
      this.delete(key);
      return FragmentResult.Invalid;
    }
    let partial = this.#partials.get(key);
    if (partial && partial.count !== count) {
      this.delete(key);
      return FragmentResult.Invalid;
    }
    if (partial?.parts[index] !== undefined) return FragmentResult.Duplicate;
    if (!force && !this.#makeRoom(partial === undefined, data.length, key)) {
      return FragmentResult.Refused;
    }
    if (!partial) {
      partial = { count, received: 0, bytes: 0, startedMs: nowMs, parts: new Array(count) };
      this.#partials.set(key, partial);
    }
    partial.parts[index] = data.slice();
    partial.received++;
    partial.bytes += data.length;
    this.#bytes += data.length;
    if (partial.bytes > options.maxMessageBytes) {
      this.delete(key);
      return FragmentResult.TooLarge;
    }
    if (partial.received < count) return FragmentResult.Pending;
    const message = new Uint8Array(partial.bytes);
    let at = 0;
    for (const part of partial.parts) {
      message.set(part!, at);
      at += part!.length;
    }
    this.delete(key);
    this.message = message;
    return FragmentResult.Complete;
  }

  /** Drops message `key` and its fragments. */
  delete(key: number): void {
    const partial = this.#partials.get(key);
    if (!partial) return;
    this.#bytes -= partial.bytes;
    this.#partials.delete(key);
  }

  /** Drops incomplete messages older than the timeout; returns how many. */
  expire(nowMs: number): number {
    const timeoutMs = this.#options.timeoutMs;
    if (timeoutMs === Number.POSITIVE_INFINITY) return 0;
    let expired = 0;
    // Map order is insertion order: the oldest come first.
    for (const [key, partial] of this.#partials) {
      if (nowMs - partial.startedMs < timeoutMs) break;
      this.delete(key);
      expired++;
    }
    this.dropped += expired;
    return expired;
  }

  /** Drops everything. */
  clear(): void {
    this.#partials.clear();
    this.#bytes = 0;
  }

  #makeRoom(isNew: boolean, length: number, key: number): boolean {
    const options = this.#options;
    const fits = (): boolean =>
      (!isNew || this.#partials.size < options.maxMessages) &&
      this.#bytes + length <= options.maxBytes;
    if (fits()) return true;
    if (!options.evictOldest) return false;
    for (const oldest of this.#partials.keys()) {
      if (fits()) break;
      if (oldest === key) continue;
      this.delete(oldest);
      this.dropped++;
    }
    return fits();
  }
}
