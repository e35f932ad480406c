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

/**
 * A field's coding parameter in a snapshot (6 bits): 0–30 Rice with that `k`; 32–62
 * Exp-Golomb of order `param − 32` (robust when differences spread over many magnitudes, as
 * f32 patterns do); {@link PLAIN}: the image is written as it is.
 */
export const PLAIN = 63;
/** Bits of a parameter in the snapshot header. */
export const K_BITS = 6;
/** First Exp-Golomb parameter. */
const EXP_GOLOMB = 32;
/** A Rice quotient this long means the plain value follows. */
const ESCAPE = 12;
/** An Exp-Golomb prefix this long means the plain value follows. */
const EG_ESCAPE = 20;

const POW2 = /* @__PURE__ */ Array.from({ length: 34 }, (_, k) => 2 ** k);
/** About one difference in this many (a power of two) is recorded in the statistics. */
const SAMPLE_EVERY = 4;
/** Recorded differences between two choices of a field's parameter. */
const SAMPLES_PER_CHOICE = 256;
/** Histogram buckets per octave of the statistics. */
const SUB_BUCKETS = 4;
const BUCKETS = 1 + 34 * SUB_BUCKETS;
/** A typical code of each bucket: its geometric middle (0 for the zero bucket). */
const BUCKET_CODES = /* @__PURE__ */ Array.from({ length: BUCKETS }, (_, i) =>
  i === 0 ? 0 : 2 ** ((i - 1 + 0.5) / SUB_BUCKETS),
);
const usedBuckets = /* @__PURE__ */ new Int32Array(BUCKETS);
/** 2^shift for the shifts f32 references produce (−130…130), from a table. */
const SHIFT_BASE = 160;
const POW2_SHIFT = /* @__PURE__ */ Array.from(
  { length: 2 * SHIFT_BASE + 1 },
  (_, i) => 2 ** (i - SHIFT_BASE),
);
const POW2_SIGNED = (shift: number): number => POW2_SHIFT[shift + SHIFT_BASE] ?? 2 ** shift;

/** True for a parameter a snapshot may carry. */
export const validParam = (param: number): boolean =>
  param === PLAIN || param <= 30 || (param >= EXP_GOLOMB && param <= EXP_GOLOMB + 30);

/** Zigzag: 0, −1, 1, −2… → 0, 1, 2, 3… (exact up to 2^52). */
export const zigzag = (delta: number): number => (delta >= 0 ? delta * 2 : -delta * 2 - 1);

/** ⌊log2 w⌋ for w ≥ 1. */
const log2Floor = (w: number): number =>
  w < 0x100000000 ? 31 - Math.clz32(w) : Math.floor(Math.log2(w));

/** Bits a code takes with a parameter (escape included) in a field of `bits` bits. */
export function deltaBits(code: number, param: number, bits: number): number {
  if (param === PLAIN) return bits;
  if (param < EXP_GOLOMB) {
    const quotient = Math.floor(code / POW2[param]!);
    return quotient >= ESCAPE ? ESCAPE + bits : quotient + 1 + param;
  }
  const k = param - EXP_GOLOMB;
  const n = log2Floor(Math.floor(code / POW2[k]!) + 1);
  return n >= EG_ESCAPE ? EG_ESCAPE + bits : 2 * n + 1 + k;
}

/**
 * Delta decoding of one numeric field: what a replica needs. {@link DeltaCoder} adds the
 * server's side, so client bundles leave it out.
 */
export class DeltaDecoder {
  // Declared, not class fields: the constructor sets them all, and `declare` emits no field
  // definitions (smaller bundles; the shape is the same for every decoder).
  declare readonly packed: Packed<unknown>;
  declare readonly relative: boolean;
  declare readonly bits: number;
  declare protected readonly size: number;
  declare protected readonly half: number;
  declare protected readonly wrap: boolean;

  /**
   * @param relative f32 patterns: the parameter is scaled by the reference's exponent, so one
   *   parameter fits small and large values alike (a move of 4 units is 2^16 steps at 1000
   *   but 2^22 at 3).
   */
  constructor(packed: Packed<unknown>, relative = false) {
    this.packed = packed;
    this.relative = relative;
    this.bits = packed.bits;
    this.size = 2 ** packed.bits;
    this.half = this.size / 2;
    this.wrap = packed.wrap;
  }

  /**
   * How many bits the parameter moves for this reference: 0, or for f32 patterns 130 minus
   * the reference's biased exponent (both sides know the reference, so nothing is sent).
   */
  shiftOf(reference: number): number {
    if (!this.relative) return 0;
    const raw = reference >= 0x80000000 ? reference - 0x80000000 : 0xffffffff - reference;
    return 130 - ((raw >>> 23) & 0xff);
  }

  /** The parameter's `k` for this reference (see {@link shiftOf}). */
  protected order(k: number, reference: number): number {
    if (!this.relative) return k;
    const shifted = k + this.shiftOf(reference);
    return Math.max(0, Math.min(shifted, 30));
  }

  /** Reads what {@link DeltaCoder.write} wrote; returns the current image. */
  read(reader: BinaryReader, param: number, reference: number): number {
    let code: number;
    if (param >= EXP_GOLOMB) {
      const k = this.order(param - EXP_GOLOMB, reference);
      const n = reader.readUnary(EG_ESCAPE);
      if (n === EG_ESCAPE) return reader.readBits(this.bits);
      const w = POW2[n]! + (n > 0 ? reader.readBits(n) : 0);
      code = (w - 1) * POW2[k]! + (k > 0 ? reader.readBits(k) : 0);
    } else {
      const k = this.order(param, reference);
      const quotient = reader.readUnary(ESCAPE);
      if (quotient === ESCAPE) return reader.readBits(this.bits);
      code = quotient * POW2[k]! + (k > 0 ? reader.readBits(k) : 0);
    }
    // Un-zigzag without `%`: codes reach 2^33, where a remainder is a slow float operation.
    const half = Math.floor(code / 2);
    let image = reference + (code === half * 2 ? half : -half - 1);
    if (this.wrap) {
      if (image >= this.size) image -= this.size;
      else if (image < 0) image += this.size;
    } else if (image < 0 || image >= this.size) {
      throw decodeError(`delta leaves the field's range (${image})`);
    }
    return image;
  }
}

/** Delta coding of one numeric field, both ways: images, differences and their codes. */
export class DeltaCoder extends DeltaDecoder {
  /** The zigzagged difference `current − reference` of two images (wrapped in a ring). */
  code(current: number, reference: number): number {
    let delta = current - reference;
    if (this.wrap) {
      if (delta >= this.half) delta -= this.size;
      else if (delta < -this.half) delta += this.size;
    }
    return delta >= 0 ? delta * 2 : -delta * 2 - 1;
  }

  /** Bits {@link write} takes. */
  bitsOf(code: number, param: number, reference: number): number {
    if (param === PLAIN) return this.bits;
    const family = param >= EXP_GOLOMB ? EXP_GOLOMB : 0;
    return deltaBits(code, family + this.order(param - family, reference), this.bits);
  }

  /** Writes a code with a (non-PLAIN) parameter, or the escape and the plain `image`. */
  write(writer: BinaryWriter, code: number, param: number, image: number, reference: number): void {
    if (param >= EXP_GOLOMB) {
      this.writeExpGolomb(writer, code, this.order(param - EXP_GOLOMB, reference), image);
      return;
    }
    const k = this.order(param, reference);
    // Shifts while the code fits 31 bits (most do; k is at most 30); a float division beyond.
    const small = code < 0x80000000;
    const quotient = small ? code >>> k : Math.floor(code / POW2[k]!);
    if (quotient >= ESCAPE) {
      writer.writeBits((1 << ESCAPE) - 1, ESCAPE);
      writer.writeBits(image, this.bits);
      return;
    }
    const remainder = small ? code & ((1 << k) - 1) : code - quotient * POW2[k]!;
    if (quotient + 1 + k <= 24) {
      // `quotient` ones, the terminating zero and the remainder in one call (LSB first).
      writer.writeBits(((1 << quotient) - 1) | (remainder << (quotient + 1)), quotient + 1 + k);
      return;
    }
    writer.writeBits((1 << quotient) - 1, quotient + 1);
    if (k > 0) writer.writeBits(remainder, k);
  }

  private writeExpGolomb(writer: BinaryWriter, code: number, k: number, image: number): void {
    const scale = POW2[k]!;
    const high = code < 0x80000000 ? code >>> k : Math.floor(code / scale);
    const w = high + 1;
    const n = log2Floor(w);
    if (n >= EG_ESCAPE) {
      writer.writeBits((1 << EG_ESCAPE) - 1, EG_ESCAPE);
      writer.writeBits(image, this.bits);
      return;
    }
    // n ones and a zero, then the n bits of w below its leading 1, then k low bits of code.
    const prefixAndBody = ((1 << n) - 1) | ((w - POW2[n]!) * POW2[n + 1]!);
    if (2 * n + 1 <= 24) writer.writeBits(prefixAndBody, 2 * n + 1);
    else {
      writer.writeBits((1 << n) - 1, n + 1);
      writer.writeBits(w - POW2[n]!, n);
    }
    if (k > 0) writer.writeBits(code - high * scale, k);
  }
}

/** Whether `type` has a fixed-width integer image of at most 32 bits (delta-codable). */
const deltaCodable = (type: Type<unknown>): boolean => {
  const packed = type.packed;
  return packed !== undefined && packed.bits >= 1 && packed.bits <= 32;
};

/** The delta decoder of `type` (a replica's), when it is delta-codable. */
export function deltaDecoderOf(type: Type<unknown>): DeltaDecoder | undefined {
  return deltaCodable(type) ? new DeltaDecoder(type.packed!, type.kind === 'f32') : undefined;
}

/** The delta coder of `type` (the server's), when it is delta-codable. */
export function deltaCoderOf(type: Type<unknown>): DeltaCoder | undefined {
  return deltaCodable(type) ? new DeltaCoder(type.packed!, type.kind === 'f32') : undefined;
}

/**
 * Cost rows by field width, then parameter: filled as parameters are tried, and shared by every
 * server of the process (they depend on nothing else). At most 33 × 63 rows of 137 bytes.
 */
const costRowsByBits: (Uint8Array | undefined)[][] = [];

/**
 * Running statistics of one field's differences (a decayed histogram of their bit lengths and
 * their mean) and the `k` they call for.
 */
export class FieldStats {
  /** Bucket 0: zero; bucket i > 0: normalized codes in [2^((i−1)/4), 2^(i/4)). */
  private readonly histogram = new Float64Array(BUCKETS);
  private sum = 0;
  private count = 0;
  private samples = 0;
  /** State of the generator that picks the recorded differences (see {@link sample}). */
  private pick = 0x9e3779b9;
  /** The coding parameter for the next snapshots ({@link PLAIN} until differences were seen). */
  k = PLAIN;
  /** Per parameter, the bits each bucket's typical code takes (shared by every field of this width). */
  private readonly costRows: (Uint8Array | undefined)[];

  constructor(readonly bits: number) {
    let rows = costRowsByBits[bits];
    if (rows === undefined) rows = costRowsByBits[bits] = [];
    this.costRows = rows;
  }

  private costRow(param: number): Uint8Array {
    let row = this.costRows[param];
    if (row === undefined) {
      row = new Uint8Array(BUCKETS);
      for (let i = 0; i < BUCKETS; i++) row[i] = deltaBits(BUCKET_CODES[i]!, param, this.bits);
      this.costRows[param] = row;
    }
    return row;
  }

  /**
   * True for about one difference in {@link SAMPLE_EVERY}: only those are recorded. The
   * parameter depends on the spread of the differences, which a sample shows as well as all of
   * them. The pick is pseudo-random (a fixed-seed xorshift, so runs repeat): a fixed stride
   * would see the same entities every tick when their count is a multiple of it.
   */
  sample(): boolean {
    let x = this.pick;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.pick = x;
    return (x & (SAMPLE_EVERY - 1)) === 0;
  }

  /** Records one zigzagged difference, scaled down by `shift` bits (see `DeltaCoder.shiftOf`). */
  add(code: number, shift: number): void {
    let bucket = 0;
    if (code !== 0) {
      // Bit length and the two bits after the leading one: a quarter-octave, without log2.
      const length = code < 0x100000000 ? 32 - Math.clz32(code) : 33;
      const quarter =
        length >= 3 && code < 0x100000000
          ? (code >>> (length - 3)) & 3
          : length === 2
            ? (code & 1) * 2
            : 0;
      bucket = 1 + (length - 1 - shift) * SUB_BUCKETS + quarter;
      if (bucket < 1) bucket = 1;
      else if (bucket >= this.histogram.length) bucket = this.histogram.length - 1;
    }
    this.histogram[bucket]! += 1;
    this.sum += shift === 0 ? code : code / POW2_SIGNED(shift);
    this.count++;
    this.samples++;
  }

  /**
   * Picks the cheapest parameter for the recorded differences once enough were seen since the
   * last choice, then ages them. Only parameters near the one the mean suggests are tried.
   */
  update(): void {
    if (this.samples < SAMPLES_PER_CHOICE) return;
    const histogram = this.histogram;
    const bits = this.bits;
    const mean = this.sum / this.count;
    const guess = mean < 2 ? 0 : Math.min(30, bits, Math.floor(Math.log2(mean * Math.LN2)));
    let best = bits * this.count;
    let bestK = PLAIN;
    // The occupied buckets, once.
    let used = 0;
    for (let i = 0; i < histogram.length; i++) {
      if (histogram[i] === 0) continue;
      usedBuckets[used] = i;
      used++;
    }
    const consider = (param: number) => {
      const row = this.costRow(param);
      let cost = 0;
      for (let j = 0; j < used; j++) {
        const i = usedBuckets[j]!;
        cost += histogram[i]! * row[i]!;
      }
      if (cost < best) {
        best = cost;
        bestK = param;
      }
    };
    for (let k = Math.max(0, guess - 3); k <= Math.min(30, bits, guess + 3); k++) {
      consider(k);
      consider(EXP_GOLOMB + k);
    }
    // Exp-Golomb shines with a smaller order than Rice's best.
    for (let k = Math.max(0, guess - 8); k < Math.max(0, guess - 3); k++) consider(EXP_GOLOMB + k);
    this.k = bestK;
    // Halve the weights: recent snapshots count most.
    for (let i = 0; i < histogram.length; i++) histogram[i]! *= 0.5;
    this.sum *= 0.5;
    this.count *= 0.5;
    this.samples = 0;
  }
}
