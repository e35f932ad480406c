import { isTickwireError } from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineSchema, type Schema, type Type, t, type ValidationIssue } from './index.js';

function roundTrip<T>(type: Type<T>, arbitrary: fc.Arbitrary<T>, numRuns = 300): void {
  const schema = defineSchema(type);
  fc.assert(
    fc.property(arbitrary, (value) => {
      expect(schema.decode(schema.encode(value))).toEqual(value);
      expect(schema.validate(value).ok).toBe(true);
    }),
    { numRuns },
  );
}

function expectCode(fn: () => unknown, code: string, message?: string | RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(isTickwireError(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    if (message !== undefined) expect((error as Error).message).toMatch(message);
    return;
  }
  expect.unreachable('expected a TickwireError');
}

describe('round trips of every field type', () => {
  it('bool', () => roundTrip(t.bool(), fc.boolean()));
  it('u8, u16, u32', () => {
    roundTrip(t.u8(), fc.integer({ min: 0, max: 255 }));
    roundTrip(t.u16(), fc.integer({ min: 0, max: 65535 }));
    roundTrip(t.u32(), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
  });
  it('i8, i16, i32', () => {
    roundTrip(t.i8(), fc.integer({ min: -128, max: 127 }));
    roundTrip(t.i16(), fc.integer({ min: -32768, max: 32767 }));
    roundTrip(t.i32(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
  });
  it('uint(bits) and int(bits) of every width', () => {
    for (let bits = 1; bits <= 32; bits++) {
      roundTrip(t.uint(bits), fc.integer({ min: 0, max: 2 ** bits - 1 }), 30);
      roundTrip(t.int(bits), fc.integer({ min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 }), 30);
    }
  });
  it('f32 (single-precision values exactly, NaN and ±0 included)', () =>
    roundTrip(t.f32(), fc.float()));
  it('f64 exactly', () => roundTrip(t.f64(), fc.double()));
  it('varuint up to 2^53 - 1', () => {
    roundTrip(t.varuint(), fc.maxSafeNat());
    roundTrip(t.varuint(), fc.constantFrom(0, 127, 128, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1));
  });
  it('varint (zig-zag) in [-2^52, 2^52 - 1]', () => {
    roundTrip(t.varint(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }));
    roundTrip(t.varint(), fc.constantFrom(-(2 ** 52), 2 ** 52 - 1, -1, 0, 63, -64, 64));
  });
  it('string (any Unicode) and bytes', () => {
    roundTrip(t.string({ maxBytes: 64 }), fc.string({ unit: 'grapheme', maxLength: 10 }));
    roundTrip(t.string({ maxBytes: 400 }), fc.string({ unit: 'binary', maxLength: 100 }));
    roundTrip(t.bytes({ maxBytes: 32 }), fc.uint8Array({ maxLength: 32 }));
  });
  it('enum and literal', () => {
    roundTrip(
      t.enum(['idle', 'run', 1, true, null]),
      fc.constantFrom('idle', 'run', 1, true, null),
    );
    roundTrip(t.literal('only'), fc.constant('only'));
    expect(defineSchema(t.literal('only')).encode('only').length).toBe(0);
  });
  it('array, optional, nullable, object, record, map', () => {
    roundTrip(t.array(t.u8(), { maxLength: 10 }), fc.array(fc.nat(255), { maxLength: 10 }));
    roundTrip(t.nullable(t.u8()), fc.option(fc.nat(255), { nil: null }));
    roundTrip(
      t.object({ a: t.optional(t.bool()), b: t.varint() }),
      fc.record({ a: fc.boolean(), b: fc.integer() }, { requiredKeys: ['b'] }),
    );
    roundTrip(
      t.record(t.string({ maxBytes: 8 }), t.u16(), { maxSize: 5 }),
      fc.dictionary(fc.string({ maxLength: 8, unit: 'grapheme-ascii' }), fc.nat(65535), {
        maxKeys: 5,
      }),
    );
    roundTrip(
      t.map(t.varuint(), t.bool(), { maxSize: 5 }),
      fc
        .uniqueArray(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 5, selector: (e) => e[0] })
        .map((entries) => new Map(entries)),
    );
  });
  it('records keep a __proto__ key as an own property', () => {
    const schema = defineSchema(t.record(t.string({ maxBytes: 16 }), t.u8(), { maxSize: 4 }));
    const value = JSON.parse('{"__proto__": 7, "a": 1}') as Record<string, number>;
    const decoded = schema.decode(schema.encode(value));
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['__proto__', 'a']);
  });
});

describe('quantized floats and angles', () => {
  it('decode within precision / 2 of any value in range (max error asserted)', () => {
    const cases: [number, number, number][] = [
      [0, 1000, 0.01],
      [-1024, 1024, 0.01],
      [-1, 1, 1 / 3],
      [0, 1, 0.001],
      [-5e6, 5e6, 0.01],
    ];
    for (const [min, max, precision] of cases) {
      const schema = defineSchema(t.quantized(min, max, precision));
      let maxError = 0;
      fc.assert(
        fc.property(fc.double({ min, max, noNaN: true }), (value) => {
          const decoded = schema.decode(schema.encode(value));
          expect(decoded).toBeGreaterThanOrEqual(min);
          expect(decoded).toBeLessThanOrEqual(max);
          maxError = Math.max(maxError, Math.abs(decoded - value));
        }),
        { numRuns: 2000 },
      );
      for (const edge of [min, max]) expect(schema.decode(schema.encode(edge))).toBe(edge);
      expect(maxError).toBeLessThanOrEqual((precision / 2) * (1 + 1e-9) + Math.abs(max) * 1e-15);
      expect(maxError).toBeGreaterThan(precision / 10); // the bound is tight, not vacuous
    }
  });

  it('derives the bit count from range and precision', () => {
    expect(t.quantized(0, 1000, 0.01).minBits).toBe(17); // 100001 levels
    expect(t.quantized(0, 1, 0.5).minBits).toBe(2);
    expect(defineSchema(t.quantized(0, 1000, 0.01)).encode(500).length).toBe(3);
  });

  it('rejects out-of-range values with the path, or clamps them', () => {
    const strict = defineSchema({ pos: t.object({ x: t.quantized(0, 10, 0.1) }) });
    expectCode(
      () => strict.encode({ pos: { x: 10.5 } }),
      'VALIDATION_FAILED',
      /^pos\.x: expected a number in \[0, 10\], got 10.5$/,
    );
    expectCode(() => strict.encode({ pos: { x: Number.NaN } }), 'VALIDATION_FAILED', /pos\.x/);
    const clamped = defineSchema(t.quantized(0, 10, 0.1, { clamp: true }));
    expect(clamped.decode(clamped.encode(99))).toBe(10);
    expect(clamped.decode(clamped.encode(-5))).toBe(0);
    expectCode(() => clamped.encode(Number.NaN), 'VALIDATION_FAILED');
    expect(clamped.validate(99).ok).toBe(true);
  });

  it('rejects a quantized step above the maximum on decode', () => {
    const schema = defineSchema(t.quantized(0, 2, 1)); // 3 levels in 2 bits
    expectCode(() => schema.decode(new Uint8Array([3])), 'VALIDATION_FAILED', /above the maximum/);
  });

  it('packed.unpack of an out-of-range quantized image throws a TickwireError (INVALID_ARGUMENT)', () => {
    const packed = t.quantized(0, 2, 1).packed!; // 3 levels in 2 bits
    expect(packed.unpack(2)).toBe(2);
    expectCode(() => packed.unpack(3), 'INVALID_ARGUMENT', /quantized step 3 above the maximum 2/);
  });

  it('angles decode into [-π, π) within π / 2^bits, modulo 2π', () => {
    for (const bits of [8, 10, 16]) {
      const schema = defineSchema(t.angle(bits));
      let maxError = 0;
      fc.assert(
        fc.property(fc.double({ min: -100, max: 100, noNaN: true }), (angle) => {
          const decoded = schema.decode(schema.encode(angle));
          expect(decoded).toBeGreaterThanOrEqual(-Math.PI);
          expect(decoded).toBeLessThan(Math.PI);
          let diff = Math.abs(decoded - angle) % (2 * Math.PI);
          if (diff > Math.PI) diff = 2 * Math.PI - diff;
          maxError = Math.max(maxError, diff);
        }),
        { numRuns: 2000 },
      );
      expect(maxError).toBeLessThanOrEqual((Math.PI / 2 ** bits) * (1 + 1e-9));
      expect(schema.encode(1).length).toBe(Math.ceil(bits / 8));
    }
    expectCode(() => defineSchema(t.angle()).encode(Number.POSITIVE_INFINITY), 'VALIDATION_FAILED');
  });

  it('huge angles decode within π / 2^bits + |angle| · 2^-52 of the angle modulo 2π', () => {
    // The angle modulo 2π, reduced exactly (400 digits, mpmath), in [-π, π).
    const exact: [number, number][] = [
      [1e6, -0.357564167085735],
      [1e9, 0.5773954235013852],
      [1e12, -0.6576247591367864],
      [1e15, 2.1096981170701126],
      [-1e15, -2.1096981170701126],
      [1e18, -1.4521461422284583],
    ];
    for (const bits of [10, 16, 24]) {
      const schema = defineSchema(t.angle(bits));
      for (const [angle, reduced] of exact) {
        let diff = Math.abs(schema.decode(schema.encode(angle)) - reduced);
        if (diff > Math.PI) diff = 2 * Math.PI - diff;
        expect(diff).toBeLessThanOrEqual(Math.PI / 2 ** bits + Math.abs(angle) * 2 ** -52);
      }
    }
  });
});

describe('validation on encode names the field', () => {
  const player = t.object({
    name: t.string({ maxBytes: 32 }),
    team: t.enum(['red', 'blue']),
    hp: t.u8(),
    inventory: t.optional(t.array(t.u16(), { maxLength: 3 })),
    stats: t.record(t.string({ maxBytes: 8 }), t.i16(), { maxSize: 2 }),
    bag: t.map(t.u8(), t.bytes({ maxBytes: 2 }), { maxSize: 2 }),
  });
  const schema = defineSchema({ players: t.array(player, { maxLength: 8 }), flag: t.bool() });
  type Value = Parameters<typeof schema.encode>[0];
  const good = (): Value => ({
    players: [
      { name: 'ann', team: 'red', hp: 1, stats: {}, bag: new Map() },
      {
        name: 'bob',
        team: 'blue',
        hp: 2,
        stats: { k: -1 },
        bag: new Map([[1, new Uint8Array([1])]]),
      },
      { name: 'cy', team: 'red', hp: 3, inventory: [1], stats: {}, bag: new Map() },
      { name: 'dee', team: 'blue', hp: 4, stats: {}, bag: new Map() },
    ],
    flag: true,
  });
  type Loose = { players: Record<string, unknown>[]; flag?: unknown };
  const bad = (mutate: (v: Value) => void): Value => {
    const v = good();
    mutate(v);
    return v;
  };

  it.each([
    ['players[3].name: longer than 32 bytes', (v: Value) => (v.players[3]!.name = 'x'.repeat(33))],
    ['players[0].name: expected a string, got 5', (v: Loose) => (v.players[0]!.name = 5)],
    [
      'players[1].team: expected one of "red", "blue", got "green"',
      (v: Loose) => (v.players[1]!.team = 'green'),
    ],
    [
      'players[2].inventory: more than 3 items',
      (v: Value) => (v.players[2]!.inventory = [1, 2, 3, 4]),
    ],
    [
      'players[2].inventory[0]: expected an integer in [0, 65535], got -1',
      (v: Value) => (v.players[2]!.inventory = [-1]),
    ],
    [
      'players[1].stats.k: expected an integer in [-32768, 32767], got 40000',
      (v: Value) => (v.players[1]!.stats.k = 40000),
    ],
    [
      'players[0].stats: more than 2 entries',
      (v: Value) => (v.players[0]!.stats = { a: 1, b: 2, c: 3 }),
    ],
    ['players[0].stats: expected an object, got null', (v: Loose) => (v.players[0]!.stats = null)],
    [
      'players[1].bag[1]: longer than 2 bytes',
      (v: Value) => v.players[1]!.bag.set(1, new Uint8Array(3)),
    ],
    ['players[0].bag: expected a Map, got an object', (v: Loose) => (v.players[0]!.bag = {})],
    [
      'players[0].bag: more than 2 entries',
      (v: Value) =>
        (v.players[0]!.bag = new Map([
          [1, new Uint8Array()],
          [2, new Uint8Array()],
          [3, new Uint8Array()],
        ])),
    ],
    ['players: expected an array, got an object', (v: Loose) => (v.players = {} as never)],
    [
      'players: more than 8 items',
      (v: Value) => (v.players = Array.from({ length: 9 }, () => good().players[0]!)),
    ],
    ['players[0]: expected an object, got an array', (v: Loose) => (v.players[0] = [] as never)],
    ['flag: expected a boolean, got undefined', (v: Loose) => delete v.flag],
  ])('%s', (message, mutate) => {
    const value = bad(mutate as (v: Value) => void);
    expectCode(() => schema.encode(value), 'VALIDATION_FAILED', message);
    const result = schema.validate(value);
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues.map((i) => i.message)).toContain(
        message.split(': ').slice(1).join(': '),
      );
    expect(schema.is(value)).toBe(false);
  });

  it('validate collects every issue with its path', () => {
    const result = schema.validate({
      players: [{ name: 1, team: 'x', hp: -1, stats: {}, bag: new Map() }],
      flag: 0,
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => i.path)).toEqual([
      ['players', 0, 'name'],
      ['players', 0, 'team'],
      ['players', 0, 'hp'],
      ['flag'],
    ]);
    expect(schema.validate(good())).toEqual({ ok: true, value: good() });
    expect(schema.is(good())).toBe(true);
  });

  it('other scalar types reject wrong values', () => {
    const cases: [Type<unknown>, unknown][] = [
      [t.i8(), 128],
      [t.u32(), 1.5],
      [t.f32(), '1'],
      [t.f64(), null],
      [t.varuint(), -1],
      [t.varuint(), 2 ** 53],
      [t.varint(), 2 ** 52],
      [t.bytes({ maxBytes: 4 }), [1, 2]],
      [t.bytes({ maxBytes: 1 }), new Uint8Array(2)],
      [t.literal(3), 4],
      [t.nullable(t.u8()), undefined],
      [t.object({}), 'x'],
    ];
    for (const [type, value] of cases) {
      const s: Schema<unknown> = defineSchema(type);
      expectCode(() => s.encode(value), 'VALIDATION_FAILED', /^\(root\): /);
      expect(s.validate(value).ok).toBe(false);
    }
  });
});

describe('factories reject bad declarations', () => {
  it.each([
    () => t.quantized(1, 1, 0.1),
    () => t.quantized(0, 1, 0),
    () => t.quantized(0, 1e12, 1e-6),
    () => t.angle(1),
    () => t.uint(0),
    () => t.int(33),
    () => t.string({ maxBytes: -1 }),
    () => t.bytes({} as { maxBytes: number }),
    () => t.array(t.u8(), { maxLength: 1.5 }),
    () => t.array({} as Type<number>, { maxLength: 1 }),
    () => t.enum([]),
    () => t.enum(['a', 'a']),
    () => t.enum([{}] as never),
    () => t.object(null as never),
    () => t.record(t.string({ maxBytes: 1 }), t.u8(), { maxSize: -1 }),
    () => t.map(t.u8(), t.u8(), { maxSize: Number.NaN }),
    () => defineSchema(5 as never),
  ])('%#', (make) => expectCode(make, 'INVALID_ARGUMENT'));
});

describe('containers of zero-bit items (DoS guard)', () => {
  const huge = 2 ** 32 - 1;
  const claim = [0xff, 0xff, 0xff, 0x7f]; // varuint 2^28 - 1

  // A zero-bit item type that counts its reads: a refused count must read (and allocate) nothing.
  function counting(): { type: Type<null>; reads: () => number } {
    let reads = 0;
    const type: Type<null> = {
      ...t.literal(null),
      read: () => {
        reads++;
        return null;
      },
    };
    return { type, reads: () => reads };
  }

  it('refuses 4 bytes that claim 2^28 - 1 items before reading or allocating any', () => {
    const item = counting();
    const schemas: Schema<unknown>[] = [
      defineSchema(t.array(item.type, { maxLength: huge })),
      defineSchema(t.array(t.object({}), { maxLength: huge })),
      defineSchema(t.array(t.literal('x'), { maxLength: huge })),
      defineSchema(t.array(t.enum([7]), { maxLength: huge })),
      defineSchema(t.record(t.literal('k'), t.object({}), { maxSize: huge })),
      defineSchema(t.map(t.object({}), item.type, { maxSize: huge })),
    ];
    for (const schema of schemas)
      expectCode(
        () => schema.decode(Uint8Array.from(claim)),
        'VALIDATION_FAILED',
        /^\(root\): more than 65536 zero-bit items in one message \(268435455\)$/,
      );
    expect(item.reads()).toBe(0);
  });

  it('counts every container of one message against the same budget', () => {
    const nested = defineSchema(
      t.array(t.array(t.object({}), { maxLength: 65_536 }), { maxLength: 4 }),
    );
    // Outer count 2; each inner array claims 40,000 items (varuint 0xc0 0xb8 0x02).
    const bytes = Uint8Array.from([2, 0xc0, 0xb8, 0x02, 0xc0, 0xb8, 0x02]);
    expectCode(
      () => nested.decode(bytes),
      'VALIDATION_FAILED',
      /^\[1\]: more than 65536 zero-bit items in one message \(80000\)$/,
    );
    const value = [
      Array.from({ length: 40_000 }, () => ({})),
      Array.from({ length: 40_000 }, () => ({})),
    ];
    expectCode(
      () => nested.encode(value),
      'VALIDATION_FAILED',
      /^\[1\]: more than 65536 zero-bit items in one message \(80000\)$/,
    );
    const result = nested.validate(value);
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues).toEqual([
        { path: [1], message: 'more than 65536 zero-bit items in one message' },
      ]);
    expect(nested.is(value)).toBe(false);
  });

  it('keeps legitimate schemas and values working, up to 65,536 items per message', () => {
    const schema = defineSchema(t.array(t.literal(0), { maxLength: huge }));
    const full = new Array(65_536).fill(0);
    const bytes = schema.encode(full);
    expect(bytes.length).toBe(3); // the count only
    // The budget is per message: the same reader and writer serve the next one afresh.
    for (let run = 0; run < 3; run++) {
      expect(schema.decode(schema.encode(full))).toEqual(full);
      expect(schema.validate(full).ok).toBe(true);
    }
    expectCode(() => schema.encode([...full, 0]), 'VALIDATION_FAILED', /zero-bit items/);
    expect(schema.is([...full, 0])).toBe(false);
    const shapes = defineSchema({
      empties: t.array(t.object({}), { maxLength: 100 }),
      tags: t.record(t.literal('only'), t.literal(true), { maxSize: 1 }),
      set: t.map(t.literal(1), t.object({}), { maxSize: 1 }),
    });
    const value = {
      empties: [{}, {}, {}],
      tags: { only: true as const },
      set: new Map([[1 as const, {}]]),
    };
    expect(shapes.decode(shapes.encode(value))).toEqual(value);
  });
});

describe('integer images of numeric types (packed)', () => {
  const cases: [string, Type<number>, fc.Arbitrary<number>][] = [
    ['u8', t.u8(), fc.integer({ min: 0, max: 255 })],
    ['u32', t.u32(), fc.integer({ min: 0, max: 2 ** 32 - 1 })],
    ['i16', t.i16(), fc.integer({ min: -32768, max: 32767 })],
    ['quantized', t.quantized(-10, 10, 0.01), fc.double({ min: -10, max: 10, noNaN: true })],
    ['angle', t.angle(12), fc.double({ min: -100, max: 100, noNaN: true })],
    ['f32', t.f32(), fc.float({ noNaN: true })],
  ];
  it.each(cases)('%s: pack is the written value and unpack inverts it', (_, type, values) => {
    const packed = type.packed!;
    expect(packed.bits).toBeGreaterThan(0);
    fc.assert(
      fc.property(values, (value) => {
        const schema = defineSchema(type);
        const decoded = schema.decode(schema.encode(value));
        const image = packed.pack(value);
        expect(Number.isInteger(image) && image >= 0 && image < 2 ** packed.bits).toBe(true);
        expect(Object.is(packed.unpack(image), decoded)).toBe(true);
        expect(packed.pack(decoded)).toBe(image);
      }),
      { numRuns: 2000, seed: 5 },
    );
  });

  const anything = fc.oneof(
    fc.double(),
    fc.integer({ min: -(2 ** 33), max: 2 ** 33 }),
    fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 2 ** 53, 0.5, -1, 1024, 6.3),
    fc.string(),
    fc.constantFrom(null, undefined, true, '1', [1], { x: 1 }, 1n),
  );
  const imaged: [string, Type<number>][] = [
    ...cases.map(([name, type]): [string, Type<number>] => [name, type]),
    ['quantized with clamp', t.quantized(0, 1024, 1 / 64, { clamp: true })],
    ['i8', t.i8()],
  ];
  it.each(imaged)(
    '%s: imageOf is −1 exactly when write rejects, else the written image',
    (_, type) => {
      const packed = type.packed!;
      const schema = defineSchema(type);
      fc.assert(
        fc.property(anything, (value) => {
          const issues: ValidationIssue[] = [];
          type.check(value, [], issues);
          const image = packed.imageOf!(value);
          if (issues.length > 0) {
            expect(image).toBe(-1);
            expect(() => schema.encode(value as number)).toThrow();
          } else {
            const decoded = schema.decode(schema.encode(value as number));
            expect(image).toBe(packed.pack(decoded));
            expect(Object.is(packed.unpack(image), decoded)).toBe(true);
          }
        }),
        { numRuns: 3000, seed: 11 },
      );
    },
  );

  it('quantized write rejects null, booleans and numeric strings (comparisons coerce them)', () => {
    for (const type of [t.quantized(-10, 10, 0.01), t.quantized(0, 1, 0.5, { clamp: true })]) {
      const schema = defineSchema(type);
      for (const value of [null, true, false, '1', [0]])
        expect(() => schema.encode(value as unknown as number)).toThrow(/expected a number/);
    }
  });

  it('packs angles outside [0, 2π) and −0 like write does', () => {
    const packed = t.angle(8).packed!;
    for (const value of [-0, -1e-9, 2 * Math.PI, 7 * Math.PI, -1e12, 1e305, -Number.MAX_VALUE]) {
      const schema = defineSchema(t.angle(8));
      const image = packed.pack(value);
      expect(Object.is(image, packed.pack(schema.decode(schema.encode(value))))).toBe(true);
      expect(image >= 0 && image < 256 && !Object.is(image, -0)).toBe(true);
    }
  });

  it('orders f32 images like the floats, across zero and signs', () => {
    const packed = t.f32().packed!;
    const floats = [-Infinity, -1e30, -2, -1.5, -1e-40, -0, 0, 1e-40, 1, 1.5, 3e38, Infinity];
    const images = floats.map((f) => packed.pack(f));
    expect([...images].sort((a, b) => a - b)).toEqual(images);
    expect(packed.pack(1.5) - packed.pack(1)).toBe(2 ** 22);
  });

  it('is absent for types without a fixed-width numeric image', () => {
    expect(t.f64().packed).toBeUndefined();
    expect(t.varint().packed).toBeUndefined();
    expect(t.string({ maxBytes: 4 }).packed).toBeUndefined();
    expect(() => t.quantized(0, 1, 0.5).packed!.unpack(3)).toThrow();
  });
});
