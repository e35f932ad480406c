// 16-bit sequence numbers with wrap-around comparison (RFC 1982 serial number arithmetic).

/** Number of distinct 16-bit sequence numbers. */
export const SEQUENCE_MODULO = 0x1_0000;

/** Mask that wraps a number into the 16-bit sequence space. */
export const SEQUENCE_MASK = 0xffff;

const HALF = 0x8000;

/** True if 16-bit sequence `a` is newer than `b`, across wrap-around. */
export function sequenceGreaterThan(a: number, b: number): boolean {
  return (a > b && a - b <= HALF) || (a < b && b - a > HALF);
}

/** True if 16-bit sequence `a` is older than `b`, across wrap-around. */
export function sequenceLessThan(a: number, b: number): boolean {
  return sequenceGreaterThan(b, a);
}

/** Signed distance `a - b` of two 16-bit sequences, in [-32768, 32767]. */
export function sequenceDiff(a: number, b: number): number {
  const d = (a - b) & SEQUENCE_MASK;
  return d >= HALF ? d - SEQUENCE_MODULO : d;
}

/** `sequence + delta`, wrapped into the 16-bit space. */
export function sequenceAdd(sequence: number, delta: number): number {
  return (sequence + delta) & SEQUENCE_MASK;
}
