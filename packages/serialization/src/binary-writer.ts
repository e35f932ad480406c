import { ErrorCode, TickwireError } from '@tickwire/core';

/** Options of a {@link BinaryWriter}. */
export interface BinaryWriterOptions {
  /** Initial buffer size; it doubles when full. @default 1024 */
  initialBytes?: number;
  /** Hard cap on the encoded size; beyond it `MESSAGE_TOO_LARGE` is thrown. @default 16777216 (16 MiB) */
  maxBytes?: number;
}

const scratch = /* @__PURE__ */ new DataView(new ArrayBuffer(8));

/**
 * A reusable bit writer (least significant bit first) over a growing byte buffer.
 * Strings and byte arrays are byte-aligned; everything else is packed bit by bit.
 */
export class BinaryWriter {
  /** The cap on the encoded size in bytes. */
  readonly maxBytes: number;
  #buffer: Uint8Array;
  #position = 0;
  #bitBuffer = 0;
  #bitCount = 0;
  #zeroBitItems = 0;

  constructor(options: BinaryWriterOptions = {}) {
    const initial = options.initialBytes ?? 1024;
    this.maxBytes = options.maxBytes ?? 1 << 24;
    if (!Number.isInteger(initial) || initial < 8)
      throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'initialBytes must be an integer >= 8');
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1)
      throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'maxBytes must be a positive integer');
    this.#buffer = new Uint8Array(Math.min(initial, this.maxBytes + 8));
  }

  /** Forgets what was written; keeps the buffer. */
  reset(): void {
    this.#position = 0;
    this.#bitBuffer = 0;
    this.#bitCount = 0;
    this.#zeroBitItems = 0;
  }

  /**
   * Counts `count` more container items that take no bits on the wire (`t.literal`,
   * `t.object({})`…) and returns the total since `reset`; the codec caps it per message.
   */
  addZeroBitItems(count: number): number {
    this.#zeroBitItems += count;
    return this.#zeroBitItems;
  }

  /** Bits written so far. */
  get bitLength(): number {
    return this.#position * 8 + this.#bitCount;
  }

  /** Bytes written so far, counting a partly filled last byte. */
  get byteLength(): number {
    return this.#position + (this.#bitCount > 0 ? 1 : 0);
  }

  /** Writes the low `bits` (0..32) bits of a non-negative integer. */
  writeBits(value: number, bits: number): void {
    if (bits > 24) {
      this.writeBits(value & 0xffff, 16);
      this.writeBits(value >>> 16, bits - 16);
      return;
    }
    if (this.#position + 4 > this.#buffer.length) this.#grow(4);
    const buffer = this.#buffer;
    let acc = this.#bitBuffer | ((value & ((1 << bits) - 1)) << this.#bitCount);
    let count = this.#bitCount + bits;
    while (count >= 8) {
      buffer[this.#position++] = acc & 0xff;
      acc >>>= 8;
      count -= 8;
    }
    this.#bitBuffer = acc;
    this.#bitCount = count;
  }

  /** One bit. */
  writeBool(value: boolean): void {
    this.writeBits(value ? 1 : 0, 1);
  }

  /** LEB128 in 8-bit groups; `value` is a safe non-negative integer. */
  writeVarUint(value: number): void {
    if (value < 0x80000000) {
      while (value > 0x7f) {
        this.writeBits((value & 0x7f) | 0x80, 8);
        value >>>= 7;
      }
      this.writeBits(value, 8);
      return;
    }
    while (value > 0x7f) {
      this.writeBits((value % 128) | 0x80, 8);
      value = Math.floor(value / 128);
    }
    this.writeBits(value, 8);
  }

  /** Zig-zag signed varint; `value` is an integer in [-2^52, 2^52 - 1]. */
  writeVarInt(value: number): void {
    this.writeVarUint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  /** IEEE 754 single precision. */
  writeF32(value: number): void {
    scratch.setFloat32(0, value, true);
    this.writeBits(scratch.getUint32(0, true), 32);
  }

  /** IEEE 754 double precision. */
  writeF64(value: number): void {
    scratch.setFloat64(0, value, true);
    this.writeBits(scratch.getUint32(0, true), 32);
    this.writeBits(scratch.getUint32(4, true), 32);
  }

  /** Pads with zero bits to the next byte boundary. */
  align(): void {
    if (this.#bitCount > 0) this.writeBits(0, 8 - this.#bitCount);
  }

  /** Aligns, then copies raw bytes (no length prefix). */
  writeBytes(bytes: Uint8Array): void {
    this.align();
    if (this.#position + bytes.length > this.#buffer.length) this.#grow(bytes.length);
    this.#buffer.set(bytes, this.#position);
    this.#position += bytes.length;
  }

  /** Aligns, then writes `text` as UTF-8; `byteLength` must be its UTF-8 length (see `utf8Length`). */
  writeUtf8(text: string, byteLength: number): void {
    this.align();
    if (this.#position + byteLength > this.#buffer.length) this.#grow(byteLength);
    const buffer = this.#buffer;
    let pos = this.#position;
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        buffer[pos++] = c;
        continue;
      }
      if (c < 0x800) {
        buffer[pos++] = 0xc0 | (c >> 6);
        buffer[pos++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          buffer[pos++] = 0xf0 | (c >> 18);
          buffer[pos++] = 0x80 | ((c >> 12) & 0x3f);
          buffer[pos++] = 0x80 | ((c >> 6) & 0x3f);
          buffer[pos++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // a lone surrogate becomes U+FFFD, as TextEncoder does
      }
      buffer[pos++] = 0xe0 | (c >> 12);
      buffer[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buffer[pos++] = 0x80 | (c & 0x3f);
    }
    this.#position = pos;
  }

  /** The bytes written, as a view of the internal buffer valid until the next write or reset. */
  view(): Uint8Array {
    this.#flush();
    return this.#buffer.subarray(0, this.#position);
  }

  /** A copy of the bytes written. */
  toBytes(): Uint8Array {
    this.#flush();
    return this.#buffer.slice(0, this.#position);
  }

  #flush(): void {
    if (this.byteLength > this.maxBytes)
      throw new TickwireError(
        ErrorCode.MESSAGE_TOO_LARGE,
        `encoded value exceeds maxBytes (${this.maxBytes} bytes)`,
        { details: { maxBytes: this.maxBytes } },
      );
    if (this.#bitCount > 0) {
      this.#buffer[this.#position++] = this.#bitBuffer & 0xff;
      this.#bitBuffer = 0;
      this.#bitCount = 0;
    }
  }

  #grow(extra: number): void {
    const needed = this.#position + extra;
    if (needed > this.maxBytes + 4)
      throw new TickwireError(
        ErrorCode.MESSAGE_TOO_LARGE,
        `encoded value exceeds maxBytes (${this.maxBytes} bytes)`,
        { details: { maxBytes: this.maxBytes } },
      );
    let size = this.#buffer.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(Math.min(size, this.maxBytes + 8));
    next.set(this.#buffer.subarray(0, this.#position));
    this.#buffer = next;
  }
}
