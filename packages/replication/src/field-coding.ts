import type { BinaryReader, BinaryWriter, Type } from '@tickwire/serialization';
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

/** The integer image of a fixed-width numeric type (see serialization's `Type.packed`). */
export interface Packed {
  /** Width of the image in bits (1..32). */
  readonly bits: number;
  /** True when the image is a ring (angles, f32 patterns): differences wrap around. */
  readonly wrap: boolean;
  pack(value: unknown): number;
  unpack(image: number): unknown;
}

/** `k` value meaning "this field is written plainly in this snapshot". */
export const PLAIN = 31;
/** Bits of a `k` value in the snapshot header. */
export const K_BITS = 5;
/** A unary quotient this long means the plain value follows. */
const ESCAPE = 12;

/** The integer image of `type`, if it has one. */
export function packedOf(type: Type<unknown>): Packed | undefined {
  const packed = (type as { packed?: Packed }).packed;
  return packed !== undefined && packed.bits >= 1 && packed.bits <= 32 ? packed : undefined;
}

/** Signed difference `current − reference` of two images, wrapped into the ring when needed. */
export function imageDelta(packed: Packed, current: number, reference: number): number {
  let delta = current - reference;
  if (packed.wrap) {
    const size = 2 ** packed.bits;
    const half = size / 2;
    if (delta >= half) delta -= size;
    else if (delta < -half) delta += size;
  }
  return delta;
}

/** Zigzag: 0, −1, 1, −2… → 0, 1, 2, 3… (exact up to 2^52). */
export const zigzag = (delta: number): number => (delta >= 0 ? delta * 2 : -delta * 2 - 1);
const unzigzag = (code: number): number => (code % 2 === 0 ? code / 2 : -(code + 1) / 2);

/** Writes a zigzagged difference with parameter `k`, or the escape and `image` plainly. */
export function writeDelta(
  writer: BinaryWriter,
  code: number,
  k: number,
  bits: number,
  image: number,
): void {
  const quotient = Math.floor(code / 2 ** k);
  if (quotient >= ESCAPE) {
    writer.writeBits((1 << ESCAPE) - 1, ESCAPE);
    writer.writeBits(image, bits);
    return;
  }
  // `quotient` ones and the terminating zero in one call (LSB first).
  writer.writeBits((1 << quotient) - 1, quotient + 1);
  if (k > 0) writer.writeBits(code - quotient * 2 ** k, k);
}

/** Bits {@link writeDelta} takes for `code`. */
export function deltaBits(code: number, k: number, bits: number): number {
  const quotient = Math.floor(code / 2 ** k);
  return quotient >= ESCAPE ? ESCAPE + bits : quotient + 1 + k;
}

/** Reads what {@link writeDelta} wrote; returns the current image. */
export function readDelta(
  reader: BinaryReader,
  packed: Packed,
  k: number,
  reference: number,
): number {
  let quotient = 0;
  while (reader.readBits(1) === 1) {
    if (++quotient === ESCAPE) return reader.readBits(packed.bits);
  }
  const code = quotient * 2 ** k + (k > 0 ? reader.readBits(k) : 0);
  let image = reference + unzigzag(code);
  const size = 2 ** packed.bits;
  if (packed.wrap) {
    if (image >= size) image -= size;
    else if (image < 0) image += size;
  } else if (image < 0 || image >= size) {
    throw decodeError(`delta leaves the field's range (${image})`);
  }
  return image;
}

/**
 * Running statistics of one field's differences (a decayed histogram of their bit lengths)
 * and the `k` they call for.
 */
export class FieldStats {
  private readonly histogram = new Float64Array(34);
  private samples = 0;
  /** The parameter for the next snapshots ({@link PLAIN} until differences were seen). */
  k = PLAIN;

  constructor(readonly bits: number) {}

  /** Records one zigzagged difference. */
  add(code: number): void {
    this.histogram[code === 0 ? 0 : Math.min(33, Math.floor(Math.log2(code)) + 1)]! += 1;
    this.samples++;
  }

  /** Picks the cheapest `k` for the recorded differences, then ages them. */
  update(): void {
    if (this.samples === 0) return;
    const histogram = this.histogram;
    let best = this.bits;
    let bestK = PLAIN;
    let total = 0;
    for (let b = 0; b < histogram.length; b++) total += histogram[b]!;
    for (let k = 0; k <= Math.min(this.bits, 30); k++) {
      let cost = 0;
      for (let b = 0; b < histogram.length; b++) {
        const weight = histogram[b]!;
        if (weight === 0) continue;
        // A typical code of this bit length: 1.5 × 2^(b−1).
        const code = b === 0 ? 0 : 1.5 * 2 ** (b - 1);
        cost += weight * deltaBits(code, k, this.bits);
      }
      cost /= total;
      if (cost < best) {
        best = cost;
        bestK = k;
      }
    }
    this.k = bestK;
    // Halve the weights: recent snapshots count most.
    for (let b = 0; b < histogram.length; b++) histogram[b]! *= 0.5;
    this.samples = 0;
  }
}
