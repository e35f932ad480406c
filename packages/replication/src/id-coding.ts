import type { BinaryReader, BinaryWriter } from '@tickwire/serialization';
import { decodeError } from './decode-error.js';

// Golomb-Rice coding of the gaps between sorted ids: with k = floor(log2(mean gap)) the
// unary parts total at most about 2 bits per id, so a few bits above the gap entropy.
const MAX_ID = 2 ** 31 - 1;
const POW2 = Array.from({ length: 32 }, (_, k) => 2 ** k);

/** Writes `count` strictly increasing ids from `ids` (ids in [0, 2^31 - 1]): a non-empty bit, count − 1 (varuint), k (5 bits), then each gap as unary quotient + k-bit remainder. */
export function writeIds(writer: BinaryWriter, ids: ArrayLike<number>, count: number): void {
  // Most lists are empty (despawns, spawns): one bit says so.
  writer.writeBool(count > 0);
  if (count === 0) return;
  writer.writeVarUint(count - 1);
  const total = ids[count - 1]! - count + 1;
  const meanGap = total / count;
  const k = meanGap < 2 ? 0 : Math.min(30, Math.floor(Math.log2(meanGap)));
  writer.writeBits(k, 5);
  const scale = POW2[k]!;
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    const gap = id - previous - 1;
    if (gap < 0) throw new RangeError(`writeIds: ids must increase (${previous} then ${id})`);
    previous = id;
    const quotient = Math.floor(gap / scale);
    const remainder = gap - quotient * scale;
    if (quotient + 1 + k <= 24) {
      // Ones, the terminating zero and the remainder in one write (LSB first).
      writer.writeBits((POW2[quotient]! - 1) | (remainder << (quotient + 1)), quotient + 1 + k);
      continue;
    }
    if (quotient < 24) writer.writeBits(POW2[quotient]! - 1, quotient + 1);
    else {
      for (let q = 0; q < quotient; q++) writer.writeBits(1, 1);
      writer.writeBits(0, 1);
    }
    if (k > 0) writer.writeBits(remainder, k);
  }
}

/** Reads ids written by {@link writeIds} into `out` (from index 0); returns how many. */
export function readIds(reader: BinaryReader, out: number[]): number {
  if (!reader.readBool()) return 0;
  const count = reader.readVarUint() + 1;
  // Every id takes at least one bit: a larger count is a lie that would make us allocate.
  if (count > reader.remainingBits) throw decodeError(`id count ${count} exceeds the input`);
  const k = reader.readBits(5);
  if (k > 30) throw decodeError(`id coding parameter ${k} above 30`);
  const scale = POW2[k]!;
  const maxQuotient = Math.ceil((MAX_ID + 1) / scale);
  let previous = -1;
  for (let i = 0; i < count; i++) {
    const quotient = reader.readUnary(maxQuotient + 1);
    if (quotient > maxQuotient) throw decodeError('id gap too large');
    const gap = quotient * scale + (k > 0 ? reader.readBits(k) : 0);
    const id = previous + 1 + gap;
    if (id > MAX_ID) throw decodeError(`entity id ${id} above ${MAX_ID}`);
    out[i] = id;
    previous = id;
  }
  return count;
}
