import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BinaryReader, BinaryWriter } from './index.js';

describe('BinaryReader.readUnary', () => {
  it('reads what ones-then-zero writes, mixed with other fields, and stops at the limit', () => {
    const item = fc.record({ count: fc.integer({ min: 0, max: 40 }), pad: fc.nat(7) });
    fc.assert(
      fc.property(
        fc.array(item, { maxLength: 40 }),
        fc.integer({ min: 1, max: 24 }),
        (items, limit) => {
          const writer = new BinaryWriter();
          for (const { count, pad } of items) {
            for (let i = 0; i < Math.min(count, limit); i++) writer.writeBits(1, 1);
            if (count < limit) writer.writeBits(0, 1);
            writer.writeBits(pad, 3);
          }
          expect(writer.bitLength).toBe(
            items.reduce(
              (bits, { count }) => bits + Math.min(count, limit) + (count < limit ? 1 : 0) + 3,
              0,
            ),
          );
          const reader = new BinaryReader().reset(writer.toBytes());
          for (const { count, pad } of items) {
            expect(reader.readUnary(limit)).toBe(Math.min(count, limit));
            expect(reader.readBits(3)).toBe(pad);
          }
        },
      ),
      { numRuns: 500, seed: 4 },
    );
  });

  it('throws a truncation error at the end of the input', () => {
    const reader = new BinaryReader().reset(new Uint8Array([0xff]));
    let error: unknown;
    try {
      reader.readUnary(20);
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).toBe('DECODE_FAILED');
    expect(new BinaryReader().reset(new Uint8Array([0xff, 0x01])).readUnary(20)).toBe(9);
  });
});
