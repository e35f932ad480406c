import { createRandom, isTickwireError, type TickwireError } from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BinaryReader, BinaryWriter, defineSchema, type Schema, type Type, t } from './index.js';

// A random schema as data: built into a field type and a generator of exactly representable values.
type Spec =
  | {
      kind:
        | 'bool'
        | 'u8'
        | 'u16'
        | 'u32'
        | 'i8'
        | 'i16'
        | 'i32'
        | 'f32'
        | 'f64'
        | 'varuint'
        | 'varint';
    }
  | { kind: 'uint' | 'int' | 'angle'; bits: number }
  | { kind: 'quantized'; min: number; span: number; precision: number }
  | { kind: 'string' | 'bytes'; max: number }
  | { kind: 'enum'; values: (string | number | boolean | null)[] }
  | { kind: 'array'; item: Spec; max: number }
  | { kind: 'nullable'; item: Spec }
  | { kind: 'object'; fields: { key: string; optional: boolean; spec: Spec }[] }
  | { kind: 'record'; value: Spec; max: number }
  | { kind: 'map'; value: Spec; max: number };

const leafSpec: fc.Arbitrary<Spec> = fc.oneof(
  fc
    .constantFrom(
      ...([
        'bool',
        'u8',
        'u16',
        'u32',
        'i8',
        'i16',
        'i32',
        'f32',
        'f64',
        'varuint',
        'varint',
      ] as const),
    )
    .map((kind) => ({ kind }) as Spec),
  fc.record({
    kind: fc.constantFrom('uint' as const, 'int' as const),
    bits: fc.integer({ min: 1, max: 32 }),
  }),
  fc.record({ kind: fc.constant('angle' as const), bits: fc.integer({ min: 2, max: 24 }) }),
  fc.record({
    kind: fc.constant('quantized' as const),
    min: fc.integer({ min: -1000, max: 1000 }),
    span: fc.integer({ min: 1, max: 5000 }),
    precision: fc.constantFrom(0.001, 0.01, 0.1, 0.5, 1, 3),
  }),
  fc.record({
    kind: fc.constantFrom('string' as const, 'bytes' as const),
    max: fc.integer({ min: 0, max: 20 }),
  }),
  fc.record({
    kind: fc.constant('enum' as const),
    values: fc.uniqueArray(
      fc.oneof(fc.string({ maxLength: 3 }), fc.integer(), fc.boolean(), fc.constant(null)),
      {
        minLength: 1,
        maxLength: 9,
      },
    ),
  }),
);

const { spec: specArbitrary } = fc.letrec<{ spec: Spec }>((tie) => ({
  spec: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafSpec,
    fc.record({
      kind: fc.constant('array' as const),
      item: tie('spec'),
      max: fc.integer({ min: 0, max: 4 }),
    }),
    fc.record({ kind: fc.constant('nullable' as const), item: tie('spec') }),
    fc.record({
      kind: fc.constant('object' as const),
      fields: fc.uniqueArray(
        fc.record({
          key: fc.string({ minLength: 1, maxLength: 6 }),
          optional: fc.boolean(),
          spec: tie('spec'),
        }),
        { maxLength: 5, selector: (f) => f.key },
      ),
    }),
    fc.record({
      kind: fc.constant('record' as const),
      value: tie('spec'),
      max: fc.integer({ min: 0, max: 3 }),
    }),
    fc.record({
      kind: fc.constant('map' as const),
      value: tie('spec'),
      max: fc.integer({ min: 0, max: 3 }),
    }),
  ),
}));

function build(spec: Spec): Type<unknown> {
  switch (spec.kind) {
    case 'uint':
    case 'int':
      return t[spec.kind](spec.bits);
    case 'angle':
      return t.angle(spec.bits);
    case 'quantized':
      return t.quantized(spec.min, spec.min + spec.span, spec.precision);
    case 'string':
    case 'bytes':
      return t[spec.kind]({ maxBytes: spec.max });
    case 'enum':
      return t.enum(spec.values);
    case 'array':
      return t.array(build(spec.item), { maxLength: spec.max });
    case 'nullable':
      return t.nullable(build(spec.item));
    case 'object':
      return t.object(
        Object.fromEntries(
          spec.fields.map((f) => [f.key, f.optional ? t.optional(build(f.spec)) : build(f.spec)]),
        ),
      );
    case 'record':
      return t.record(t.string({ maxBytes: 4 }), build(spec.value), { maxSize: spec.max });
    case 'map':
      return t.map(t.varuint(), build(spec.value), { maxSize: spec.max });
    default:
      return t[spec.kind]();
  }
}

function utf8Max(max: number) {
  return fc
    .string({ unit: 'grapheme', maxLength: max })
    .filter((s) => new TextEncoder().encode(s).length <= max);
}

function values(spec: Spec): fc.Arbitrary<unknown> {
  switch (spec.kind) {
    case 'bool':
      return fc.boolean();
    case 'u8':
    case 'u16':
    case 'u32':
      return fc.integer({ min: 0, max: 2 ** Number(spec.kind.slice(1)) - 1 });
    case 'i8':
    case 'i16':
    case 'i32': {
      const half = 2 ** (Number(spec.kind.slice(1)) - 1);
      return fc.integer({ min: -half, max: half - 1 });
    }
    case 'uint':
      return fc.integer({ min: 0, max: 2 ** spec.bits - 1 });
    case 'int':
      return fc.integer({ min: -(2 ** (spec.bits - 1)), max: 2 ** (spec.bits - 1) - 1 });
    case 'f32':
      return fc.float();
    case 'f64':
      return fc.double();
    case 'varuint':
      return fc.maxSafeNat();
    case 'varint':
      return fc.integer({ min: -(2 ** 52), max: 2 ** 52 - 1 });
    case 'angle': {
      // Exactly the values the decoder produces.
      const count = 2 ** spec.bits;
      return fc.nat(count - 1).map((q) => ((q >= count / 2 ? q - count : q) / count) * 2 * Math.PI);
    }
    case 'quantized': {
      const steps = Math.ceil(spec.span / spec.precision);
      const step = spec.span / steps;
      return fc.nat(steps).map((q) => (q === steps ? spec.min + spec.span : spec.min + q * step));
    }
    case 'string':
      return utf8Max(spec.max);
    case 'bytes':
      return fc.uint8Array({ maxLength: spec.max });
    case 'enum':
      return fc.constantFrom(...spec.values);
    case 'array':
      return fc.array(values(spec.item), { maxLength: spec.max });
    case 'nullable':
      return fc.option(values(spec.item), { nil: null });
    case 'object':
      return fc.record(Object.fromEntries(spec.fields.map((f) => [f.key, values(f.spec)])), {
        requiredKeys: spec.fields.filter((f) => !f.optional).map((f) => f.key),
      });
    case 'record':
      return fc.dictionary(utf8Max(4), values(spec.value), { maxKeys: spec.max });
    case 'map':
      return fc
        .uniqueArray(fc.tuple(fc.maxSafeNat(), values(spec.value)), {
          maxLength: spec.max,
          selector: (e) => e[0],
        })
        .map((entries) => new Map(entries));
  }
}

const specAndValue = specArbitrary.chain((spec) => values(spec).map((value) => ({ spec, value })));

function expectDecodedOrTickwireError(schema: Schema<unknown>, bytes: Uint8Array): void {
  try {
    const value = schema.decode(bytes);
    expect(schema.validate(value).ok).toBe(true);
  } catch (error) {
    if (!isTickwireError(error)) throw error;
    expect(['DECODE_FAILED', 'VALIDATION_FAILED']).toContain(error.code);
  }
}

describe('random nested schemas', () => {
  it('decode(encode(v)) equals v and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(specAndValue, ({ spec, value }) => {
        const schema = defineSchema(build(spec));
        const bytes = schema.encode(value);
        const decoded = schema.decode(bytes);
        expect(decoded).toEqual(value);
        expect(schema.encode(decoded)).toEqual(bytes);
        expect(schema.validate(value).ok).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('every mutation of a valid encoding decodes to a valid value or throws TickwireError', () => {
    fc.assert(
      fc.property(specAndValue, fc.nat(), fc.nat(255), ({ spec, value }, at, byte) => {
        const schema = defineSchema(build(spec));
        const bytes = schema.encode(value);
        expectDecodedOrTickwireError(
          schema,
          bytes.subarray(0, bytes.length === 0 ? 0 : at % bytes.length),
        );
        const mutated = Uint8Array.from([...bytes, byte]);
        if (bytes.length > 0) mutated[at % bytes.length] = byte;
        expectDecodedOrTickwireError(schema, mutated);
      }),
      { numRuns: 1000 },
    );
  });
});

const entity = t.object({
  id: t.varuint(),
  x: t.quantized(-1024, 1024, 0.01),
  y: t.quantized(-1024, 1024, 0.01),
  angle: t.angle(10),
  hp: t.u8(),
});
const snapshot = defineSchema({
  tick: t.varuint(),
  entities: t.array(entity, { maxLength: 64 }),
  names: t.record(t.string({ maxBytes: 8 }), t.string({ maxBytes: 16 }), { maxSize: 4 }),
  mode: t.enum(['lobby', 'play', 'end']),
  extra: t.optional(t.bytes({ maxBytes: 16 })),
});

describe('fuzzing the schema decoder', () => {
  it('100,000 arbitrary byte strings: each decodes or throws TickwireError', () => {
    const random = createRandom(5);
    const small = defineSchema(t.array(t.string({ maxBytes: 4 }), { maxLength: 3 }));
    let decoded = 0;
    for (let run = 0; run < 100_000; run++) {
      const bytes = new Uint8Array(random.int(48));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
      for (const schema of [snapshot, small] as Schema<unknown>[]) {
        try {
          schema.decode(bytes);
          decoded++;
        } catch (error) {
          if (!isTickwireError(error)) throw error;
        }
      }
    }
    expect(decoded).toBeGreaterThan(0);
  });

  it('100,000 mutations of valid snapshots: each decodes or throws TickwireError', () => {
    const random = createRandom(9);
    const valid = Array.from({ length: 20 }, (_, n) =>
      snapshot.encode({
        tick: n * 1000,
        entities: Array.from({ length: n % 5 }, (_, i) => ({
          id: i,
          x: i,
          y: -i,
          angle: i,
          hp: 100,
        })),
        names: n % 2 ? { a: 'ann', bé: 'bob' } : {},
        mode: 'play',
        extra: n % 3 ? new Uint8Array(n % 7) : undefined,
      }),
    );
    let errors = 0;
    for (let run = 0; run < 100_000; run++) {
      const source = valid[run % valid.length]!;
      const bytes = source.slice();
      const flips = 1 + random.int(3);
      for (let f = 0; f < flips; f++) {
        const at = random.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << random.int(8));
      }
      const cut = random.chance(0.2) ? bytes.subarray(0, random.int(bytes.length)) : bytes;
      try {
        expect(snapshot.is(snapshot.decode(cut))).toBe(true);
      } catch (error) {
        if (!isTickwireError(error)) throw error;
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(1000);
  });
});

function decodeError(schema: Schema<unknown>, bytes: number[]): TickwireError {
  try {
    schema.decode(Uint8Array.from(bytes));
  } catch (error) {
    if (isTickwireError(error)) return error;
    throw error;
  }
  return expect.unreachable('decoded') as never;
}

describe('decode errors name the field', () => {
  const players = defineSchema({
    players: t.array(t.object({ name: t.string({ maxBytes: 4 }), team: t.enum(['a', 'b', 'c']) }), {
      maxLength: 4,
    }),
  });

  it('a declared length above the maximum is refused before reading it', () => {
    const e = decodeError(players, [1, 9, 0x61]);
    expect(e.code).toBe('VALIDATION_FAILED');
    expect(e.message).toBe('players[0].name: longer than 4 bytes (9)');
    expect(e.details).toEqual({ path: ['players', 0, 'name'], reason: 'longer than 4 bytes (9)' });
  });

  it('a count beyond the maximum or beyond the remaining bytes is refused before allocating', () => {
    expect(decodeError(players, [5]).message).toBe('players: more than 4 items (5)');
    const big = defineSchema(t.array(t.u32(), { maxLength: 2 ** 32 - 1 }));
    const e = decodeError(big, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(e.code).toBe('DECODE_FAILED');
    expect(e.message).toMatch(/^\(root\): truncated: 4294967295 items cannot fit/);
    const map = defineSchema(t.map(t.u8(), t.u8(), { maxSize: 1000 }));
    expect(decodeError(map, [100, 1, 2]).message).toMatch(/100 entries cannot fit/);
  });

  it('an unknown enum index', () => {
    const e = decodeError(players, [1, 0, 3]);
    expect(e.code).toBe('VALIDATION_FAILED');
    expect(e.message).toBe('players[0].team: enum index 3 out of range (3 values)');
  });

  it('truncated input, trailing bytes, non-zero padding', () => {
    expect(decodeError(players, [1, 2, 0x61]).message).toBe(
      'players[0].name: truncated: unexpected end of input',
    );
    expect(decodeError(players, [0, 0]).message).toBe('(root): 1 trailing bytes');
    expect(decodeError(players, [1, 0, 0xfc]).message).toBe('(root): non-zero padding bits');
    expect(decodeError(players, []).code).toBe('DECODE_FAILED');
  });

  it('invalid UTF-8 and malformed varints', () => {
    expect(decodeError(players, [1, 2, 0xc3, 0x28, 0]).message).toBe(
      'players[0].name: invalid UTF-8',
    );
    const long = defineSchema(t.string({ maxBytes: 64 }));
    expect(decodeError(long, [40, ...new Array(39).fill(0x61), 0xff]).message).toBe(
      '(root): invalid UTF-8',
    );
    const v = defineSchema(t.varuint());
    expect(decodeError(v, [0x80, 0x00]).message).toBe('(root): overlong varint');
    expect(decodeError(v, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).message).toBe(
      '(root): varint above 2^53 - 1',
    );
    expect(decodeError(v, new Array(9).fill(0xff)).message).toBe(
      '(root): varint longer than 8 bytes',
    );
  });

  it('duplicate keys in records and maps', () => {
    const rec = defineSchema(t.record(t.string({ maxBytes: 2 }), t.u8(), { maxSize: 3 }));
    expect(decodeError(rec, [2, 1, 0x61, 1, 1, 0x61, 2]).message).toBe('a: duplicate key');
    const map = defineSchema(t.map(t.u8(), t.u8(), { maxSize: 3 }));
    expect(decodeError(map, [2, 7, 1, 7, 2]).message).toBe('[7]: duplicate key');
  });

  it('non-Uint8Array input and oversized input', () => {
    expect(() => players.decode('x' as never)).toThrow(/expected a Uint8Array/);
    const tiny = defineSchema(t.bytes({ maxBytes: 100 }), { maxMessageBytes: 8 });
    expect(decodeError(tiny as Schema<unknown>, new Array(9).fill(0)).code).toBe(
      'MESSAGE_TOO_LARGE',
    );
    try {
      tiny.encode(new Uint8Array(20));
      expect.unreachable();
    } catch (error) {
      expect(isTickwireError(error, 'MESSAGE_TOO_LARGE')).toBe(true);
    }
    expect(tiny.encode(new Uint8Array(7)).length).toBe(8);
  });
});

describe('fingerprint', () => {
  const make = () =>
    defineSchema({
      id: t.varuint(),
      pos: t.object({ x: t.quantized(0, 100, 0.1) }),
      tag: t.optional(t.string({ maxBytes: 8 })),
    });
  it('is stable for equal layouts', () => {
    expect(make().fingerprint).toBe(make().fingerprint);
    expect(make().fingerprint).toBe(0x24f695b2); // pinned: a change here breaks old peers
    expect(make().signature).toBe(
      'object{"id":varuint,"pos":object{"x":quantized(0,100,0.1)},"tag":optional(string(8))}',
    );
  });
  it('differs when anything on the wire differs', () => {
    const variants = [
      defineSchema({
        id: t.varuint(),
        pos: t.object({ x: t.quantized(0, 100, 0.01) }),
        tag: t.optional(t.string({ maxBytes: 8 })),
      }),
      defineSchema({
        id: t.varuint(),
        pos: t.object({ x: t.quantized(0, 100, 0.1) }),
        tag: t.optional(t.string({ maxBytes: 9 })),
      }),
      defineSchema({
        pos: t.object({ x: t.quantized(0, 100, 0.1) }),
        id: t.varuint(),
        tag: t.optional(t.string({ maxBytes: 8 })),
      }),
      defineSchema({
        id: t.varint(),
        pos: t.object({ x: t.quantized(0, 100, 0.1) }),
        tag: t.optional(t.string({ maxBytes: 8 })),
      }),
      defineSchema({
        id: t.varuint(),
        pos: t.object({ x: t.quantized(0, 100, 0.1) }),
        tag: t.string({ maxBytes: 8 }),
      }),
      defineSchema({
        id: t.varuint(),
        pos: t.object({ x: t.quantized(0, 100, 0.1, { clamp: true }) }),
        tag: t.optional(t.string({ maxBytes: 8 })),
      }),
    ];
    const prints = new Set([make().fingerprint, ...variants.map((s) => s.fingerprint)]);
    expect(prints.size).toBe(variants.length + 1);
    for (const p of prints) expect(Number.isInteger(p) && p >= 0 && p < 2 ** 32).toBe(true);
  });
});

describe('buffers and writers', () => {
  it('encode returns a copy; encodeView a view of the reused buffer', () => {
    const schema = defineSchema({ n: t.u32() });
    const copy = schema.encode({ n: 1 });
    const view = schema.encodeView({ n: 2 });
    expect(Array.from(schema.encodeView({ n: 3 }))).toEqual([3, 0, 0, 0]);
    expect(Array.from(view)).toEqual([3, 0, 0, 0]); // overwritten by the next call
    expect(Array.from(copy)).toEqual([1, 0, 0, 0]);
  });

  it('the writer grows geometrically from a small initial buffer', () => {
    const schema = defineSchema(t.array(t.u32(), { maxLength: 10_000 }), { initialBufferBytes: 8 });
    const value = Array.from({ length: 5000 }, (_, i) => i * 7919);
    expect(schema.decode(schema.encode(value))).toEqual(value);
    const bytes = new Uint8Array(3000).fill(7);
    const blob = defineSchema(t.bytes({ maxBytes: 4000 }), { initialBufferBytes: 8 });
    expect(blob.decode(blob.encode(bytes))).toEqual(bytes);
  });

  it('encodeInto / decodeFrom batch several values in one buffer', () => {
    const a = defineSchema({ x: t.u8(), ok: t.bool() });
    const b = defineSchema(t.string({ maxBytes: 10 }));
    const writer = new BinaryWriter({ initialBytes: 8 });
    a.encodeInto({ x: 5, ok: true }, writer);
    b.encodeInto('héllo', writer);
    a.encodeInto({ x: 6, ok: false }, writer);
    const reader = new BinaryReader().reset(writer.toBytes());
    expect(a.decodeFrom(reader)).toEqual({ x: 5, ok: true });
    expect(b.decodeFrom(reader)).toBe('héllo');
    expect(a.decodeFrom(reader)).toEqual({ x: 6, ok: false });
    expect(() => a.decodeFrom(reader)).toThrow(/truncated/);
    expect(() => a.encodeInto({ x: 300, ok: true }, writer)).toThrow(/^x: expected an integer/);
  });

  it('an encode that runs during an encode of the same schema (a getter) corrupts neither', () => {
    const schema = defineSchema({ a: t.u8(), b: t.u8() });
    let inner: Uint8Array | undefined;
    const value = {
      a: 1,
      get b() {
        inner ??= schema.encode({ a: 7, b: 8 });
        return 2;
      },
    };
    const outer = schema.encode(value);
    expect(Array.from(inner!)).toEqual([7, 8]);
    expect(Array.from(outer)).toEqual([1, 2]);
  });

  it('rejects bad writer options', () => {
    expect(() => new BinaryWriter({ initialBytes: 2 })).toThrow(/initialBytes/);
    expect(() => new BinaryWriter({ maxBytes: 0 })).toThrow(/maxBytes/);
  });

  it('is a Standard Schema', async () => {
    const schema = defineSchema({ hp: t.u8() });
    expect(schema['~standard'].vendor).toBe('tickwire');
    expect(await schema['~standard'].validate({ hp: 3 })).toEqual({ value: { hp: 3 } });
    const result = await schema['~standard'].validate({ hp: 300 });
    expect('issues' in result && result.issues?.[0]?.path).toEqual(['hp']);
  });
});
