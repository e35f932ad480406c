import { describe, expect, it } from 'vitest';
import { defineSchema, t } from './index.js';
import * as factories from './t/index.js';

describe('the @tickwire/serialization/t entry', () => {
  it('exports every factory of t, as the same functions', () => {
    const exported = new Map(Object.entries(factories));
    expect([...exported.keys()].sort()).toEqual(Object.keys(t).sort());
    for (const [name, factory] of Object.entries(t)) expect(exported.get(name), name).toBe(factory);
  });

  it('builds the same schemas as t: same layout, same bytes', () => {
    const fromT = defineSchema({
      id: t.varuint(),
      x: t.quantized(0, 2048, 1 / 32),
      angle: t.angle(),
      kind: t.enum(['a', 'b']),
      tags: t.array(t.string({ maxBytes: 8 }), { maxLength: 4 }),
      hp: t.optional(t.u8()),
    });
    const fromEntry = defineSchema({
      id: factories.varuint(),
      x: factories.quantized(0, 2048, 1 / 32),
      angle: factories.angle(),
      kind: factories.enum(['a', 'b']),
      tags: factories.array(factories.string({ maxBytes: 8 }), { maxLength: 4 }),
      hp: factories.optional(factories.u8()),
    });
    expect(fromEntry.signature).toBe(fromT.signature);
    const value = { id: 7, x: 10.5, angle: 1, kind: 'b' as const, tags: ['x'], hp: 3 };
    expect(fromEntry.encode(value)).toEqual(fromT.encode(value));
    expect(fromT.decode(fromEntry.encode(value))).toEqual(fromEntry.decode(fromT.encode(value)));
  });

  it('names the bad field of a schema built from its factories', () => {
    const schema = defineSchema({ hp: factories.u8() });
    expect(() => schema.encode({ hp: 300 })).toThrow(
      'hp: expected an integer in [0, 255], got 300',
    );
  });
});
