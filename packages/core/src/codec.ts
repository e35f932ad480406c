/** Turns values into bytes and back. `decode` throws a `TickwireError` (DECODE_FAILED or VALIDATION_FAILED) on bad bytes. */
export interface Codec<T> {
  /** Encodes a value. The returned bytes may be a view of a reused buffer only if `reusesBuffer` is true. */
  encode(value: T): Uint8Array;
  /** Decodes bytes; throws `TickwireError` on malformed or invalid input, never anything else. */
  decode(bytes: Uint8Array): T;
  /** True if `encode` returns a view of an internal buffer valid only until the next call. */
  readonly reusesBuffer?: boolean;
}
