import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setCodegen, t } from './fields.js';
import { defineSchema } from './index.js';

// Under a CSP without 'unsafe-eval' `new Function` throws; the closure fallback must behave the same.
describe('without code generation', () => {
  beforeAll(() => setCodegen(false));
  afterAll(() => setCodegen(true));

  const make = () =>
    defineSchema({
      players: t.array(
        t.object({ name: t.string({ maxBytes: 4 }), hp: t.u8(), tag: t.optional(t.bool()) }),
        { maxLength: 2 },
      ),
    });

  it('round-trips, and reports paths on encode and decode', () => {
    const schema = make();
    const value = {
      players: [
        { name: 'ann', hp: 3, tag: true },
        { name: 'bo', hp: 4 },
      ],
    };
    expect(schema.decode(schema.encode(value))).toEqual(value);
    expect(() => schema.encode({ players: [value.players[0]!, { name: 'x', hp: 256 }] })).toThrow(
      'players[1].hp: expected an integer in [0, 255], got 256',
    );
    expect(() => schema.encode({ players: {} as never })).toThrow('players: expected an array');
    expect(() => schema.encode({ players: [1 as never] })).toThrow(
      'players[0]: expected an object',
    );
    expect(() =>
      schema.encode({ players: [value.players[0]!, value.players[0]!, value.players[0]!] }),
    ).toThrow('players: more than 2 items');
    expect(() => schema.decode(new Uint8Array([1, 9, 0, 0]))).toThrow(
      'players[0].name: longer than 4 bytes',
    );
    expect(() => schema.decode(new Uint8Array([3]))).toThrow('players: more than 2 items (3)');
  });

  it('encodes the same bytes as generated code', () => {
    const value = { players: [{ name: 'ann', hp: 3, tag: false }] };
    const fallback = make().encode(value);
    setCodegen(true);
    const generated = make().encode(value);
    setCodegen(false);
    expect(fallback).toEqual(generated);
  });
});
