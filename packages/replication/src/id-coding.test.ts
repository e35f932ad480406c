import { isTickwireError } from '@tickwire/core';
import { BinaryReader, BinaryWriter } from '@tickwire/serialization';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readIds, writeIds } from './id-coding.js';

const roundTrip = (ids: number[]) => {
  const writer = new BinaryWriter();
  writeIds(writer, ids, ids.length);
  const bytes = writer.toBytes();
  const out: number[] = [];
  readIds(new BinaryReader().reset(bytes), out);
  return { out, bytes };
};

describe('id lists', () => {
  it('round-trip any sorted set of ids', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { maxLength: 200 }),
        (raw) => {
          const ids = [...raw].sort((a, b) => a - b);
          expect(roundTrip(ids).out).toEqual(ids);
        },
      ),
    );
  });

  it('name 100 of 1000 ids in under 7 bits each', () => {
    const ids = Array.from({ length: 100 }, (_, i) => i * 10 + (i % 7));
    const { bytes } = roundTrip(ids);
    expect(bytes.length * 8).toBeLessThan(700);
  });

  it('reject a count larger than the input', () => {
    const writer = new BinaryWriter();
    writer.writeBool(true);
    writer.writeVarUint(999);
    const error = (() => {
      try {
        readIds(new BinaryReader().reset(writer.toBytes()), []);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isTickwireError(error) && error.code).toBe('DECODE_FAILED');
  });

  it('reject a coding parameter above 30 and ids above 2^31 - 1', () => {
    const bad = new BinaryWriter();
    bad.writeBool(true);
    bad.writeVarUint(0);
    bad.writeBits(31, 5);
    bad.writeBits(0, 32);
    expect(() => readIds(new BinaryReader().reset(bad.toBytes()), [])).toThrow(/parameter 31/);
    const huge = new BinaryWriter();
    huge.writeBool(true);
    huge.writeVarUint(0);
    huge.writeBits(30, 5);
    huge.writeBits(0b11, 2);
    huge.writeBits(0, 1);
    huge.writeBits(0, 30);
    expect(() => readIds(new BinaryReader().reset(huge.toBytes()), [])).toThrow(/above/);
    const long = new BinaryWriter();
    long.writeBool(true);
    long.writeVarUint(0);
    long.writeBits(30, 5);
    long.writeBits(0b111, 3);
    expect(() => readIds(new BinaryReader().reset(long.toBytes()), [])).toThrow(/too large/);
  });
});
