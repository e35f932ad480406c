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

describe('BinaryWriter.writeBits and BinaryReader.peekBits32 / skipBits', () => {
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

  it('peeks the next 32 bits (zeros past the end) and skips like a read', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 60 }), (fields) => {
        const writer = new BinaryWriter();
        for (const { bits, value } of fields) writer.writeBits(value, bits);
        const bytes = writer.toBytes();
        const reader = new BinaryReader().reset(bytes);
        let offset = 0;
        for (const { bits, value } of fields) {
          // The expected peek, bit by bit from the bytes.
          let expected = 0;
          for (let i = 0; i < 32; i++) {
            const at = offset + i;
            const bit = at < bytes.length * 8 ? (bytes[at >>> 3]! >>> (at & 7)) & 1 : 0;
            expected |= bit << i;
          }
          expect(reader.peekBits32()).toBe(expected);
          expect(bits === 32 ? expected >>> 0 : expected & ((1 << bits) - 1)).toBe(value);
          expect(reader.remainingBits).toBe(bytes.length * 8 - offset);
          reader.skipBits(bits);
          offset += bits;
        }
        reader.end();
      }),
      { numRuns: 1000, seed: 12 },
    );
  });

  it('skipBits throws a truncation error past the end and reads on correctly after a skip', () => {
    const reader = new BinaryReader().reset(new Uint8Array([0xab, 0xcd, 0xef]));
    reader.skipBits(4);
    expect(reader.readBits(8)).toBe(0xda);
    reader.skipBits(9);
    expect(reader.readBits(3)).toBe(0b111);
    const codeOf = (skip: () => void) => {
      try {
        skip();
      } catch (error) {
        return (error as { code?: string }).code;
      }
      return undefined;
    };
    expect(codeOf(() => reader.skipBits(1))).toBe('DECODE_FAILED');
    const short = new BinaryReader().reset(new Uint8Array([0xff, 0xff]));
    expect(codeOf(() => short.skipBits(17))).toBe('DECODE_FAILED');
    short.skipBits(16);
    short.end();
  });
});
