import { createRandom } from '@tickwire/core';
import { BinaryReader, BinaryWriter, t } from '@tickwire/serialization';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deltaBits, deltaCoderOf, FieldStats, PLAIN } from './field-coding.js';

describe('numeric delta coding', () => {
  it('round-trips any image against any reference, with every parameter', () => {
    const coder = deltaCoderOf(t.quantized(0, 1024, 1 / 64))!;
    const size = 2 ** coder.bits;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: size - 1 }),
        fc.integer({ min: 0, max: size - 1 }),
        fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 32, max: 62 })),
        (image, reference, param) => {
          const writer = new BinaryWriter();
          const code = coder.code(image, reference);
          coder.write(writer, code, param, image, reference);
          const bits = writer.bitLength;
          expect(bits).toBe(coder.bitsOf(code, param, reference));
          expect(coder.read(new BinaryReader().reset(writer.toBytes()), param, reference)).toBe(
            image,
          );
        },
      ),
    );
  });

  it('round-trips f32 patterns, whose parameter scales with the reference', () => {
    const coder = deltaCoderOf(t.f32())!;
    const random = createRandom(5);
    for (let i = 0; i < 2000; i++) {
      const before = random.range(-1000, 1000);
      const after = Math.fround(before + random.range(-4, 4));
      const reference = coder.packed.pack(before);
      const image = coder.packed.pack(after);
      const param = 32 + random.int(31);
      const writer = new BinaryWriter();
      coder.write(writer, coder.code(image, reference), param, image, reference);
      const read = coder.read(new BinaryReader().reset(writer.toBytes()), param, reference);
      expect(coder.packed.unpack(read)).toBe(after);
    }
  });
});

describe('field statistics', () => {
  it('record about one difference in four, from every position of a repeating order', () => {
    const stats = new FieldStats(16);
    // Four writes a tick in a fixed order (four entities): a fixed stride would see one only.
    const taken = [0, 0, 0, 0];
    for (let tick = 0; tick < 1000; tick++)
      for (let position = 0; position < 4; position++) if (stats.sample()) taken[position]!++;
    const total = taken.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(900);
    expect(total).toBeLessThan(1100);
    for (const count of taken) expect(count).toBeGreaterThan(200);
  });

  it('pick a parameter close to the cheapest for the differences seen, from a sample', () => {
    const bits = 16;
    const stats = new FieldStats(bits);
    const random = createRandom(9);
    // Differences of about ±40 steps: zigzag codes up to ~80.
    const codes = Array.from({ length: 4096 }, () => {
      const delta = Math.round(random.range(-40, 40));
      return delta >= 0 ? delta * 2 : -delta * 2 - 1;
    });
    expect(stats.k).toBe(PLAIN);
    for (const code of codes) if (stats.sample()) stats.add(code, 0);
    stats.update();
    expect(stats.k).not.toBe(PLAIN);
    const cost = (param: number) =>
      codes.reduce((sum, code) => sum + deltaBits(code, param, bits), 0);
    let best = Number.POSITIVE_INFINITY;
    for (let param = 0; param <= 62; param++)
      if (param <= 30 || param >= 32) best = Math.min(best, cost(param));
    // Within 3 % of the best parameter over all the differences, and far below plain.
    expect(cost(stats.k)).toBeLessThanOrEqual(best * 1.03);
    expect(cost(stats.k)).toBeLessThan(cost(PLAIN) / 2);
  });
});
