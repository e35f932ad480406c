import type { BinaryReader, BinaryWriter, Packed, Type } from '@tickwire/serialization';
import { decodeError } from './decode-error.js';

/**
 * Per-field numeric delta coding against the client's baseline value.
 *
 * A field whose type has a fixed-width integer image (`type.packed`: quantized numbers,
 * angles, integers, f32 bit patterns in monotonic order) can travel as the difference from the
 * value the client held in the baseline snapshot: zigzag-mapped, then Rice-coded with a
 * parameter `k` chosen by the server for each (type, field) and written in the snapshot, so
 * decoding needs no state beyond the baseline. Large differences escape to the plain value.
 */

/** `k` value meaning "this field is written plainly in this snapshot". */
export const PLAIN = 31;
/** Bits of a `k` value in the snapshot header. */
export const K_BITS = 5;
/** A unary quotient this long means the plain value follows. */
const ESCAPE = 12;

const POW2 = Array.from({ length: 33 }, (_, k) => 2 ** k);

/** Zigzag: 0, −1, 1, −2… → 0, 1, 2, 3… (exact up to 2^52). */
export const zigzag = (delta: number): number => (delta >= 0 ? delta * 2 : -delta * 2 - 1);

/** Bits a code takes with parameter `k` (escape included) in a field of `bits` bits. */
export function deltaBits(code: number, k: number, bits: number): number {
  const quotient = Math.floor(code / 2 ** k);
  return quotient >= ESCAPE ? ESCAPE + bits : quotient + 1 + k;
}

/** Delta coding of one numeric field: images, differences and their Rice codes. */
export class DeltaCoder {
  readonly bits: number;
  private readonly size: number;
  private readonly half: number;
  private readonly wrap: boolean;

  constructor(readonly packed: Packed<unknown>) {
    this.bits = packed.bits;
    this.size = 2 ** packed.bits;
    this.half = this.size / 2;
    this.wrap = packed.wrap;
  }

  /** The zigzagged difference `current − reference` of two images (wrapped in a ring). */
  code(current: number, reference: number): number {
    let delta = current - reference;
    if (this.wrap) {
      if (delta >= this.half) delta -= this.size;
      else if (delta < -this.half) delta += this.size;
    }
    return delta >= 0 ? delta * 2 : -delta * 2 - 1;
  }

  /** Writes a code with parameter `k`, or the escape and the plain `image`. */
  write(writer: BinaryWriter, code: number, k: number, image: number): void {
    const scale = POW2[k]!;
    const quotient = Math.floor(code / scale);
    if (quotient >= ESCAPE) {
      writer.writeBits((1 << ESCAPE) - 1, ESCAPE);
      writer.writeBits(image, this.bits);
      return;
    }
    const remainder = code - quotient * scale;
    if (quotient + 1 + k <= 24) {
      // `quotient` ones, the terminating zero and the remainder in one call (LSB first).
      writer.writeBits(((1 << quotient) - 1) | (remainder << (quotient + 1)), quotient + 1 + k);
      return;
    }
    writer.writeBits((1 << quotient) - 1, quotient + 1);
    if (k > 0) writer.writeBits(remainder, k);
  }

  /** Reads what {@link write} wrote; returns the current image. */
  read(reader: BinaryReader, k: number, reference: number): number {
    const quotient = reader.readUnary(ESCAPE);
    if (quotient === ESCAPE) return reader.readBits(this.bits);
    const code = quotient * POW2[k]! + (k > 0 ? reader.readBits(k) : 0);
    let image = reference + (code % 2 === 0 ? code / 2 : -(code + 1) / 2);
    if (this.wrap) {
      if (image >= this.size) image -= this.size;
      else if (image < 0) image += this.size;
    } else if (image < 0 || image >= this.size) {
      throw decodeError(`delta leaves the field's range (${image})`);
    }
    return image;
  }
}

/** The delta coder of `type`, when it has a fixed-width integer image of at most 32 bits. */
export function deltaCoderOf(type: Type<unknown>): DeltaCoder | undefined {
  const packed = type.packed;
  return packed !== undefined && packed.bits >= 1 && packed.bits <= 32
    ? new DeltaCoder(packed)
    : undefined;
}

/**
 * Running statistics of one field's differences (a decayed histogram of their bit lengths and
 * their mean) and the `k` they call for.
 */
export class FieldStats {
  private readonly histogram = new Float64Array(34);
  private sum = 0;
  private count = 0;
  private samples = 0;
  /** The parameter for the next snapshots ({@link PLAIN} until differences were seen). */
  k = PLAIN;

  constructor(readonly bits: number) {}

  /** Records one zigzagged difference. */
  add(code: number): void {
    this.histogram[code === 0 ? 0 : code < 0x100000000 ? 32 - Math.clz32(code) : 33]! += 1;
    this.sum += code;
    this.count++;
    this.samples++;
  }

  /**
   * Picks the cheapest `k` for the recorded differences once enough were seen since the last
   * choice, then ages them. Only the parameters next to the one the mean suggests are tried.
   */
  update(): void {
    if (this.samples < 1024) return;
    const histogram = this.histogram;
    const bits = this.bits;
    const mean = this.sum / this.count;
    const guess = mean < 2 ? 0 : Math.min(30, bits, Math.floor(Math.log2(mean * Math.LN2)));
    let best = bits * this.count;
    let bestK = PLAIN;
    for (let k = Math.max(0, guess - 2); k <= Math.min(30, bits, guess + 2); k++) {
      const scale = 2 ** k;
      let cost = 0;
      for (let b = 0; b < histogram.length; b++) {
        const weight = histogram[b]!;
        if (weight === 0) continue;
        // A typical code of this bit length: 1.5 × 2^(b−1).
        const quotient = b === 0 ? 0 : Math.floor((1.5 * 2 ** (b - 1)) / scale);
        cost += weight * (quotient >= ESCAPE ? ESCAPE + bits : quotient + 1 + k);
      }
      if (cost < best) {
        best = cost;
        bestK = k;
      }
    }
    this.k = bestK;
    // Halve the weights: recent snapshots count most.
    for (let b = 0; b < histogram.length; b++) histogram[b]! *= 0.5;
    this.sum *= 0.5;
    this.count *= 0.5;
    this.samples = 0;
  }
}
