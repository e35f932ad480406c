import { ErrorCode } from '@tickwire/core';
import { FieldError } from './field-error.js';

const scratch = /* @__PURE__ */ new DataView(new ArrayBuffer(8));
const utf8 = /* @__PURE__ */ new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function truncated(): FieldError {
  return new FieldError(ErrorCode.DECODE_FAILED, 'truncated: unexpected end of input');
}

/**
 * Reads what a {@link BinaryWriter} wrote (bits least significant first). Every read is
 * bounds-checked; failures throw an internal error that the codec turns into a
 * `TickwireError` with the field path.
 */
export class BinaryReader {
  #bytes: Uint8Array = new Uint8Array(0);
  #position = 0;
  #bitBuffer = 0;
  #bitCount = 0;
  #zeroBitItems = 0;

  /** Starts reading `bytes` from the beginning. */
  reset(bytes: Uint8Array): this {
    this.#bytes = bytes;
    this.#position = 0;
    this.#bitBuffer = 0;
    this.#bitCount = 0;
    this.#zeroBitItems = 0;
    return this;
  }

  /**
   * Counts `count` more container items that take no bits on the wire (`t.literal`,
   * `t.object({})`…) and returns the total since `reset`; the codec caps it per message.
   */
  addZeroBitItems(count: number): number {
    this.#zeroBitItems += count;
    return this.#zeroBitItems;
  }

  /** Unread bits, including those buffered from a partly read byte. */
  get remainingBits(): number {
    return (this.#bytes.length - this.#position) * 8 + this.#bitCount;
  }

  /** Reads `bits` (0..32) bits as a non-negative integer. */
  readBits(bits: number): number {
    if (bits > 24) {
      const low = this.readBits(16);
      return this.readBits(bits - 16) * 0x10000 + low;
    }
    let acc = this.#bitBuffer;
    let count = this.#bitCount;
    const bytes = this.#bytes;
    while (count < bits) {
      if (this.#position >= bytes.length) throw truncated();
      acc |= bytes[this.#position++]! << count;
      count += 8;
    }
    this.#bitBuffer = acc >>> bits;
    this.#bitCount = count - bits;
    return acc & ((1 << bits) - 1);
  }

  /**
   * Reads a unary count: the number of 1 bits before the next 0 bit, which is consumed too.
   * Stops after `limit` ones (consuming no 0 bit then) and returns `limit`.
   */
  readUnary(limit: number): number {
    let count = 0;
    const bytes = this.#bytes;
    for (;;) {
      if (this.#bitCount === 0) {
        if (this.#position >= bytes.length) throw truncated();
        this.#bitBuffer = bytes[this.#position++]!;
        this.#bitCount = 8;
      }
      // Trailing ones of the buffer = trailing zeros of its complement.
      const inverted = ~this.#bitBuffer;
      let ones = 31 - Math.clz32(inverted & -inverted);
      if (ones > this.#bitCount) ones = this.#bitCount;
      if (count + ones >= limit) {
        const take = limit - count;
        this.#bitBuffer >>>= take;
        this.#bitCount -= take;
        return limit;
      }
      count += ones;
      if (ones < this.#bitCount) {
        this.#bitBuffer >>>= ones + 1;
        this.#bitCount -= ones + 1;
        return count;
      }
      this.#bitBuffer = 0;
      this.#bitCount = 0;
    }
  }

  /** One bit. */
  readBool(): boolean {
    return this.readBits(1) === 1;
  }

  /** LEB128 in 8-bit groups; rejects overlong encodings and values above 2^53 - 1. */
  readVarUint(): number {
    let byte = this.readBits(8);
    if (byte < 0x80) return byte;
    let value = byte & 0x7f;
    let scale = 0x80;
    for (let group = 1; group < 8; group++) {
      byte = this.readBits(8);
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0) throw new FieldError(ErrorCode.DECODE_FAILED, 'overlong varint');
        if (value > Number.MAX_SAFE_INTEGER)
          throw new FieldError(ErrorCode.DECODE_FAILED, 'varint above 2^53 - 1');
        return value;
      }
      scale *= 0x80;
    }
    throw new FieldError(ErrorCode.DECODE_FAILED, 'varint longer than 8 bytes');
  }

  /** Zig-zag signed varint. */
  readVarInt(): number {
    const zigzag = this.readVarUint();
    return zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2;
  }

  /** IEEE 754 single precision. */
  readF32(): number {
    scratch.setUint32(0, this.readBits(32), true);
    return scratch.getFloat32(0, true);
  }

  /** IEEE 754 double precision. */
  readF64(): number {
    const low = this.readBits(32);
    scratch.setUint32(4, this.readBits(32), true);
    scratch.setUint32(0, low, true);
    return scratch.getFloat64(0, true);
  }

  /** Skips to the next byte boundary; the padding bits must be zero. */
  align(): void {
    if (this.#bitCount > 0) {
      if (this.#bitBuffer !== 0)
        throw new FieldError(ErrorCode.DECODE_FAILED, 'non-zero padding bits');
      this.#bitBuffer = 0;
      this.#bitCount = 0;
    }
  }

  /** Aligns and returns a copy of the next `length` bytes. */
  readBytes(length: number): Uint8Array {
    this.align();
    if (length > this.#bytes.length - this.#position) throw truncated();
    const start = this.#position;
    this.#position += length;
    return this.#bytes.slice(start, this.#position);
  }

  /** Aligns and returns a view of all the remaining bytes. */
  readRest(): Uint8Array {
    this.align();
    const rest = this.#bytes.subarray(this.#position);
    this.#position = this.#bytes.length;
    return rest;
  }

  /** Aligns and decodes the next `length` bytes as strict UTF-8. */
  readUtf8(length: number): string {
    this.align();
    const bytes = this.#bytes;
    const start = this.#position;
    const end = start + length;
    if (length > bytes.length - start) throw truncated();
    this.#position = end;
    if (length <= 32) {
      let ascii = '';
      let i = start;
      for (; i < end; i++) {
        const c = bytes[i]!;
        if (c >= 0x80) break;
        ascii += String.fromCharCode(c);
      }
      if (i === end) return ascii;
    }
    try {
      return utf8.decode(bytes.subarray(start, end));
    } catch {
      throw new FieldError(ErrorCode.DECODE_FAILED, 'invalid UTF-8');
    }
  }

  /** Throws unless every byte was consumed and the final padding bits are zero. */
  end(): void {
    this.align();
    if (this.#position !== this.#bytes.length)
      throw new FieldError(
        ErrorCode.DECODE_FAILED,
        `${this.#bytes.length - this.#position} trailing bytes`,
      );
  }
}
