import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sequenceAdd, sequenceDiff, sequenceGreaterThan, sequenceLessThan } from './sequence.js';

describe('16-bit sequence numbers', () => {
  it('compare across wrap-around', () => {
    expect(sequenceGreaterThan(1, 0)).toBe(true);
    expect(sequenceGreaterThan(0, 65_535)).toBe(true);
    expect(sequenceGreaterThan(5, 65_530)).toBe(true);
    expect(sequenceGreaterThan(65_530, 5)).toBe(false);
    expect(sequenceLessThan(65_535, 0)).toBe(true);
    expect(sequenceGreaterThan(7, 7)).toBe(false);
    expect(sequenceLessThan(7, 7)).toBe(false);
    // Exactly half the space apart: the larger one counts as newer.
    expect(sequenceGreaterThan(32_768, 0)).toBe(true);
    expect(sequenceGreaterThan(0, 32_768)).toBe(false);
  });

  it('compute signed distances and wrapped sums', () => {
    expect(sequenceDiff(2, 65_534)).toBe(4);
    expect(sequenceDiff(65_534, 2)).toBe(-4);
    expect(sequenceDiff(100, 100)).toBe(0);
    expect(sequenceAdd(65_535, 1)).toBe(0);
    expect(sequenceAdd(0, -1)).toBe(65_535);
  });

  it('agree with plain integer order for any distance under half the space', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 65_535 }),
        fc.integer({ min: 1, max: 32_767 }),
        (a, d) => {
          const b = sequenceAdd(a, d);
          expect(sequenceGreaterThan(b, a)).toBe(true);
          expect(sequenceLessThan(a, b)).toBe(true);
          expect(sequenceDiff(b, a)).toBe(d);
          expect(sequenceDiff(a, b)).toBe(-d);
        },
      ),
    );
  });
});
