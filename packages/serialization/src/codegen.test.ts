import { isTickwireError, type TickwireError } from '@tickwire/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setCodegen } from './fields.js';
import { defineSchema, t } from './index.js';

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

// Fields named like Object.prototype members, and the order of decoded keys: generated code and
// the closure fallback must agree, so every case runs in both modes.
describe.each([
  ['generated code', true],
  ['closure fallback', false],
])('object fields (%s)', (_, codegen) => {
  beforeAll(() => setCodegen(codegen));
  afterAll(() => setCodegen(true));

  const reserved = () =>
    defineSchema({
      toString: t.u8(),
      constructor: t.optional(t.string({ maxBytes: 8 })),
      ['__proto__']: t.bool(),
      valueOf: t.optional(t.u8()),
    });
  type Reserved = { toString: number; constructor?: string; __proto__: boolean; valueOf?: number };

  it('round-trips fields named toString, constructor and __proto__ as own properties', () => {
    const schema = reserved();
    const value = JSON.parse('{"toString":1,"constructor":"c","__proto__":true}') as Reserved;
    const decoded = schema.decode(schema.encode(value as never)) as unknown as Reserved;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['toString', 'constructor', '__proto__']);
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toBe(true);
    expect(decoded.toString).toBe(1);
    expect(decoded.constructor).toBe('c');
    expect(Object.hasOwn(decoded, 'valueOf')).toBe(false);
    // Still a plain object: spread and JSON keep the own __proto__ property.
    expect(JSON.stringify({ ...decoded })).toBe(
      '{"toString":1,"constructor":"c","__proto__":true}',
    );
  });

  it('treats inherited members as absent: optional fields are skipped', () => {
    const schema = reserved();
    const value = JSON.parse('{"toString":2,"__proto__":false}') as Reserved;
    const bytes = schema.encode(value as never);
    const decoded = schema.decode(bytes);
    expect(Object.keys(decoded)).toEqual(['toString', '__proto__']);
    expect(Object.hasOwn(decoded, 'constructor')).toBe(false);
    expect(schema.validate(value).ok).toBe(true);
  });

  it('treats inherited members as absent: required fields are missing, with their path', () => {
    const schema = reserved();
    for (const [value, message, path] of [
      [{}, 'toString: expected an integer in [0, 255], got undefined', ['toString']],
      [{ toString: 1 }, '__proto__: expected a boolean, got undefined', ['__proto__']],
    ] as const) {
      let error: unknown;
      try {
        schema.encode(value as never);
      } catch (e) {
        error = e;
      }
      expect(isTickwireError(error)).toBe(true);
      expect((error as TickwireError).code).toBe('VALIDATION_FAILED');
      expect((error as TickwireError).message).toBe(message);
      expect((error as TickwireError).details).toMatchObject({ path });
    }
    const result = schema.validate({});
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues).toEqual([
        { path: ['toString'], message: 'expected an integer in [0, 255], got undefined' },
        { path: ['__proto__'], message: 'expected a boolean, got undefined' },
      ]);
  });

  it('decodes keys in declaration order, optional ones included', () => {
    const schema = defineSchema({
      a: t.u8(),
      b: t.optional(t.u8()),
      c: t.u8(),
      d: t.optional(t.u8()),
      e: t.u8(),
    });
    const all = schema.decode(schema.encode({ e: 5, d: 4, c: 3, b: 2, a: 1 }));
    expect(Object.keys(all)).toEqual(['a', 'b', 'c', 'd', 'e']);
    const some = schema.decode(schema.encode({ e: 5, d: 4, c: 3, a: 1 }));
    expect(Object.keys(some)).toEqual(['a', 'c', 'd', 'e']);
    const leading = defineSchema({ o: t.optional(t.bool()), r: t.bool() });
    expect(Object.keys(leading.decode(leading.encode({ r: true, o: false })))).toEqual(['o', 'r']);
    expect(Object.keys(leading.decode(leading.encode({ r: true })))).toEqual(['r']);
  });
});

it('generated code and the fallback encode fields named like prototype members alike', () => {
  const value = JSON.parse('{"__proto__":true,"toString":3,"constructor":"x"}');
  const make = () =>
    defineSchema({
      ['__proto__']: t.bool(),
      constructor: t.optional(t.string({ maxBytes: 8 })),
      toString: t.u8(),
      hasOwnProperty: t.optional(t.bool()),
    });
  const generated = make();
  setCodegen(false);
  const fallback = make();
  setCodegen(true);
  const bytes = generated.encode(value);
  expect(fallback.encode(value)).toEqual(bytes);
  expect(Object.keys(generated.decode(bytes))).toEqual(Object.keys(fallback.decode(bytes)));
  expect(Object.keys(generated.decode(bytes))).toEqual(['__proto__', 'constructor', 'toString']);
  expect(generated.decode(bytes)).toEqual(fallback.decode(bytes));
});
