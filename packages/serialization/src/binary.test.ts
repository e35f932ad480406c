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

describe('BinaryWriter.writeBits and BinaryReader.readBits', () => {
  const field = fc.integer({ min: 0, max: 32 }).chain((bits) =>
    fc.record({
      bits: fc.constant(bits),
      value: bits === 0 ? fc.constant(0) : fc.integer({ min: 0, max: 2 ** bits - 1 }),
    }),
  );

  it('reads back fields of every width from 0 to 32 bits, at every bit offset', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 60 }), (fields) => {
        const writer = new BinaryWriter({ initialBytes: 8 });
        for (const { bits, value } of fields) writer.writeBits(value, bits);
        expect(writer.bitLength).toBe(fields.reduce((sum, { bits }) => sum + bits, 0));
        const bytes = writer.toBytes();
        const reader = new BinaryReader().reset(bytes);
        for (const { bits, value } of fields) expect(reader.readBits(bits)).toBe(value);
        reader.end();
      }),
      { numRuns: 1000, seed: 11 },
    );
  });
});
