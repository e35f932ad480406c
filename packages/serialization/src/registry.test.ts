import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { createRandom, isTickwireError } from '@tickwire/core';
import * as v from 'valibot';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineMessages, defineSchema, fnv1a32, type Message, t } from './index.js';
import { zlibCompressor } from './node/index.js';

const move = defineSchema({
  seq: t.varuint(),
  dir: t.quantized(-1, 1, 0.01),
  jump: t.optional(t.bool()),
});
const chat = z.object({ text: z.string().max(200), to: z.array(z.number().int()).optional() });
const emote = v.object({
  name: v.picklist(['wave', 'dance']),
  at: v.pipe(
    v.string(),
    v.transform((s) => s.length),
  ),
});

const registry = defineMessages({
  move: { id: 1, schema: move },
  chat: { id: 2, schema: chat },
  emote: { id: 300, schema: emote },
});

/** A Standard Schema validator that accepts anything, as a peer skipping validation would. */
const anything: StandardSchemaV1<unknown> = {
  '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value }) },
};
const loose = defineMessages({ any: { id: 1, schema: anything } });

const utf8 = (text: string) => new TextEncoder().encode(text);
const wire = (id: number, text: string) => Uint8Array.from([id, ...utf8(text)]);

function errorOf(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    if (isTickwireError(error)) return error;
    throw error;
  }
  return expect.unreachable('no error') as never;
}

describe('message registry', () => {
  it('encodes [varuint id][payload] and decodes a discriminated union', () => {
    const bytes = registry.encode('move', { seq: 5, dir: 0.5 });
    expect(bytes[0]).toBe(1);
    expect(bytes.length).toBe(1 + move.encode({ seq: 5, dir: 0.5 }).length);
    const message = registry.decode(bytes);
    expect(message).toEqual({ type: 'move', value: { seq: 5, dir: 0.5 } });
    if (message.type === 'move')
      expectTypeOf(message.value).toEqualTypeOf<{ seq: number; dir: number; jump?: boolean }>();
    if (message.type === 'chat') expectTypeOf(message.value.text).toEqualTypeOf<string>();
    if (message.type === 'emote') expectTypeOf(message.value.at).toEqualTypeOf<number>();
    expectTypeOf<Message<typeof registry.definitions>['type']>().toEqualTypeOf<
      'move' | 'chat' | 'emote'
    >();
  });

  it('validates zod payloads on encode and decode (Standard Schema)', () => {
    const bytes = registry.encode('chat', { text: 'gg', to: [1, 2] });
    expect(registry.decode(bytes)).toEqual({ type: 'chat', value: { text: 'gg', to: [1, 2] } });
    const tooLong = errorOf(() => registry.encode('chat', { text: 'x'.repeat(201) }));
    expect(tooLong.code).toBe('VALIDATION_FAILED');
    expect(tooLong.message).toMatch(/^message 'chat': text: /);
    // A peer that skips validation sends {text: 5}: the receiver still refuses it.
    const invalid = errorOf(() => registry.decode(wire(2, '{"text":5}')));
    expect(invalid.code).toBe('VALIDATION_FAILED');
    expect(invalid.message).toMatch(/^message 'chat': text: /);
  });

  it('valibot payloads: the wire carries the input, decode returns the output', () => {
    const bytes = registry.encode('emote', { name: 'wave', at: 'abc' });
    expect(Array.from(bytes.subarray(0, 2))).toEqual([0xac, 0x02]); // varuint 300
    expect(registry.decode(bytes)).toEqual({ type: 'emote', value: { name: 'wave', at: 3 } });
    expect(
      errorOf(() => registry.encode('emote', { name: 'fly' as 'wave', at: '' })).message,
    ).toMatch(/^message 'emote': name: /);
  });

  it('schema payload errors name the message and the field', () => {
    const error = errorOf(() => registry.encode('move', { seq: 1, dir: 2 }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toBe("message 'move': dir: expected a number in [-1, 1], got 2");
    const truncated = errorOf(() => registry.decode(new Uint8Array([1, 5])));
    expect(truncated.message).toBe("message 'move': dir: truncated: unexpected end of input");
  });

  it('unknown ids, unknown types, bad bytes', () => {
    expect(errorOf(() => registry.decode(new Uint8Array([9]))).message).toBe(
      'unknown message id 9',
    );
    expect(errorOf(() => registry.decode(new Uint8Array([]))).code).toBe('DECODE_FAILED');
    expect(errorOf(() => registry.decode(new Uint8Array([0x80, 0]))).message).toBe(
      'message id: (root): overlong varint',
    );
    expect(errorOf(() => registry.decode(new Uint8Array([2, 0xc1]))).message).toBe(
      "message 'chat': invalid UTF-8",
    );
    expect(errorOf(() => registry.decode('x' as never)).code).toBe('DECODE_FAILED');
    expect(errorOf(() => registry.encode('nope' as 'move', { seq: 1, dir: 0 })).code).toBe(
      'INVALID_ARGUMENT',
    );
    const small = defineMessages({ a: { id: 0, schema: move } }, { maxMessageBytes: 2 });
    expect(errorOf(() => small.decode(new Uint8Array(3))).code).toBe('MESSAGE_TOO_LARGE');
  });

  it('rejects bad definitions', () => {
    expect(errorOf(() => defineMessages({ a: { id: -1, schema: move } })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      errorOf(() => defineMessages({ a: { id: 1, schema: move }, b: { id: 1, schema: chat } }))
        .message,
    ).toMatch(/already used by 'a'/);
    expect(
      errorOf(() => defineMessages({ a: { id: 1, schema: {} as StandardSchemaV1 } })).code,
    ).toBe('INVALID_ARGUMENT');
  });

  it('async validators: refused by encode/decode with a clear error, supported by the async variants', async () => {
    const slow = z.object({ n: z.number() }).refine(async (x) => x.n > 0, 'n must be positive');
    const async = defineMessages({ slow: { id: 1, schema: slow }, move: { id: 2, schema: move } });
    const error = errorOf(() => async.encode('slow', { n: 1 }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/asynchronous; use encodeAsync\/decodeAsync/);
    const bytes = await async.encodeAsync('slow', { n: 1 });
    expect(() => async.decode(bytes)).toThrow(/asynchronous/);
    expect(await async.decodeAsync(bytes)).toEqual({ type: 'slow', value: { n: 1 } });
    await expect(async.encodeAsync('slow', { n: -1 })).rejects.toThrow(/n must be positive/);
    const moveBytes = await async.encodeAsync('move', { seq: 1, dir: 0 });
    expect(await async.decodeAsync(moveBytes)).toEqual({ type: 'move', value: { seq: 1, dir: 0 } });
    // The promise encode/decode abandon may reject: that rejection is handled, not left to end Node.
    const rejecting: StandardSchemaV1<unknown> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => Promise.reject(new Error('stack exhausted')),
      },
    };
    const failing = defineMessages({ r: { id: 1, schema: rejecting } });
    expect(errorOf(() => failing.encode('r', 1)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => failing.decode(wire(1, '1'))).code).toBe('INVALID_ARGUMENT');
    await new Promise((resolve) => setTimeout(resolve, 0)); // vitest fails on unhandled rejections
  });

  it('fingerprint covers ids, names and schemas', () => {
    const again = defineMessages({
      move: { id: 1, schema: move },
      chat: { id: 2, schema: chat },
      emote: { id: 300, schema: emote },
    });
    expect(again.fingerprint).toBe(registry.fingerprint);
    const other = defineMessages({
      move: { id: 3, schema: move },
      chat: { id: 2, schema: chat },
      emote: { id: 300, schema: emote },
    });
    expect(other.fingerprint).not.toBe(registry.fingerprint);
    // The payload kind is part of it: peers still sending msgpack fail the handshake.
    expect(defineMessages({ chat: { id: 2, schema: chat } }).fingerprint).toBe(
      fnv1a32('2:"chat":json(standard(zod))'),
    );
  });

  it('opt-in compression of large messages', () => {
    const log = z.object({ lines: z.array(z.string()) });
    const compressed = defineMessages(
      { log: { id: 1, schema: log }, move: { id: 2, schema: move } },
      { compression: { compressor: zlibCompressor(), thresholdBytes: 64 } },
    );
    const big = { lines: Array.from({ length: 50 }, () => 'the same line again and again') };
    const bytes = compressed.encode('log', big);
    expect(bytes[0]).toBe(1);
    expect(bytes.length).toBeLessThan(200);
    expect(compressed.decode(bytes)).toEqual({ type: 'log', value: big });
    const small = compressed.encode('move', { seq: 1, dir: 0 });
    expect(small[0]).toBe(0);
    expect(compressed.decode(small)).toEqual({ type: 'move', value: { seq: 1, dir: 0 } });
  });
});

describe('compressed messages and maxMessageBytes', () => {
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (error) {
      return isTickwireError(error) ? error.code : `not a TickwireError: ${String(error)}`;
    }
    return undefined;
  };
  it('decode refuses a compressed message that inflates above maxMessageBytes (MESSAGE_TOO_LARGE)', () => {
    const zlib = zlibCompressor();
    const blob = defineSchema(t.bytes({ maxBytes: 1 << 16 }));
    const options = { compression: { compressor: zlib, thresholdBytes: 0 } };
    const small = defineMessages(
      { blob: { id: 1, schema: blob } },
      { ...options, maxMessageBytes: 100 },
    );
    const large = defineMessages({ blob: { id: 1, schema: blob } }, options);
    // encode refuses the message above maxMessageBytes...
    expect(codeOf(() => small.encode('blob', new Uint8Array(1000)))).toBe('MESSAGE_TOO_LARGE');
    // ...so decode must too, though compressed it is far below the limit on the wire.
    const wire = large.encode('blob', new Uint8Array(1000));
    expect(wire.length).toBeLessThan(100);
    expect(codeOf(() => small.decode(wire))).toBe('MESSAGE_TOO_LARGE');
    // Without inflating far past the limit: a 64 MiB bomb costs at most the limit.
    const bomb = zlibCompressor({ level: 9 }).compress(new Uint8Array(64 << 20));
    const frame = Uint8Array.from([1, ...bomb]);
    const tiny = defineMessages(
      { blob: { id: 1, schema: blob } },
      { ...options, maxMessageBytes: 4096 },
    );
    const before = process.memoryUsage().arrayBuffers;
    expect(codeOf(() => tiny.decode(frame))).toBe('MESSAGE_TOO_LARGE');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20);
    // Exactly at the limit is accepted; maxDecompressedBytes still applies below it.
    const raw = defineMessages({ blob: { id: 1, schema: blob } });
    let n = 0;
    while (raw.encode('blob', new Uint8Array(n + 1)).length <= 100) n++;
    const exact = large.encode('blob', new Uint8Array(n)); // exactly 100 bytes decompressed
    expect(exact[0]).toBe(1);
    expect(small.decode(exact).value).toEqual(new Uint8Array(n));
    expect(codeOf(() => small.decode(large.encode('blob', new Uint8Array(n + 1))))).toBe(
      'MESSAGE_TOO_LARGE',
    );
    const capped = defineMessages(
      { blob: { id: 1, schema: blob } },
      { compression: { ...options.compression, maxDecompressedBytes: 50 }, maxMessageBytes: 100 },
    );
    expect(codeOf(() => capped.decode(large.encode('blob', new Uint8Array(60))))).toBe(
      'DECODE_FAILED',
    );
    expect(codeOf(() => small.decode(Uint8Array.from([1, 0xff, 0xff])))).toBe('DECODE_FAILED');
  });
});

describe('fuzzing the registry decoder', () => {
  it('100,000 arbitrary and 100,000 mutated byte strings: each decodes or throws TickwireError', () => {
    const random = createRandom(21);
    const valid = [
      registry.encode('move', { seq: 1234, dir: -0.25, jump: true }),
      registry.encode('chat', { text: 'hello there', to: [1, 2, 3] }),
      registry.encode('emote', { name: 'dance', at: 'xyz' }),
    ];
    let decoded = 0;
    for (let run = 0; run < 200_000; run++) {
      let bytes: Uint8Array;
      if (run % 2 === 0) {
        bytes = new Uint8Array(random.int(24));
        for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
        if (bytes.length > 0 && random.chance(0.7)) bytes[0] = [1, 2][random.int(2)]!;
      } else {
        bytes = valid[run % 3]!.slice();
        const at = random.int(bytes.length);
        bytes[at] = random.chance(0.5) ? random.int(256) : bytes[at]! ^ (1 << random.int(8));
        if (random.chance(0.2)) bytes = bytes.subarray(0, random.int(bytes.length));
      }
      try {
        registry.decode(bytes);
        decoded++;
      } catch (error) {
        if (!isTickwireError(error)) throw error;
      }
    }
    expect(decoded).toBeGreaterThan(100);
  });
});

describe('JSON payloads of Standard Schema types', () => {
  it('travel as [varuint id][UTF-8 JSON of the input]', () => {
    expect(registry.encode('chat', { text: 'héllo', to: [1] })).toEqual(
      wire(2, '{"text":"héllo","to":[1]}'),
    );
    const emote = registry.encode('emote', { name: 'wave', at: 'abc' });
    expect(new TextDecoder().decode(emote.subarray(2))).toBe('{"name":"wave","at":"abc"}');
    // Undefined properties are left out, so optional fields round-trip.
    const bytes = registry.encode('chat', { text: 'gg', to: undefined });
    expect(bytes).toEqual(wire(2, '{"text":"gg"}'));
    expect(registry.decode(bytes)).toEqual({ type: 'chat', value: { text: 'gg' } });
    // toJSON runs: a Date travels as its ISO string.
    const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(loose.decode(loose.encode('any', { at })).value).toEqual({
      at: '2024-01-02T03:04:05.000Z',
    });
    expect(loose.decode(loose.encode('any', null)).value).toBe(null);
    expect(loose.decode(loose.encode('any', 'x\u{1f600}')).value).toBe('x\u{1f600}');
  });

  it('refuses values JSON cannot represent with VALIDATION_FAILED, naming the message and the field', () => {
    const cyclic: Record<string, unknown> = { b: {} };
    (cyclic.b as Record<string, unknown>).c = cyclic;
    const list: unknown[] = [1];
    list.push({ back: list });
    const cases: [unknown, string, (string | number)[]][] = [
      [undefined, '(root): undefined', []],
      [{ toJSON: () => undefined }, '(root): undefined', []],
      [() => 1, '(root): a function', []],
      [{ f: { g: [{ h() {} }] } }, 'f.g[0].h: a function', ['f', 'g', 0, 'h']],
      [{ n: 1n }, 'n: a BigInt', ['n']],
      [{ s: Symbol('s') }, 's: a symbol', ['s']],
      [{ list: [1, undefined] }, 'list[1]: undefined', ['list', 1]],
      [{ x: Number.NaN }, 'x: NaN', ['x']],
      [{ 'a b': [Number.NEGATIVE_INFINITY] }, '["a b"][0]: -Infinity', ['a b', 0]],
      [{ m: new Map() }, 'm: a Map', ['m']],
      [new Set([1]), '(root): a Set', []],
      [{ data: new Uint8Array(2) }, 'data: binary data (Uint8Array)', ['data']],
      [{ buffer: new ArrayBuffer(2) }, 'buffer: binary data (ArrayBuffer)', ['buffer']],
      [cyclic, 'b.c: a circular reference', ['b', 'c']],
      [list, '[1].back: a circular reference', [1, 'back']],
    ];
    for (const [value, text, path] of cases) {
      const error = errorOf(() => loose.encode('any', value));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.message).toBe(`message 'any': ${text} cannot be encoded as JSON`);
      expect(error.details).toMatchObject({ path });
    }
    // After the validator accepted it: a zod bigint field.
    const big = defineMessages({ big: { id: 7, schema: z.object({ n: z.bigint() }) } });
    expect(errorOf(() => big.encode('big', { n: 5n })).message).toBe(
      "message 'big': n: a BigInt cannot be encoded as JSON",
    );
    // The same object twice is no cycle.
    const shared = { x: 1 };
    expect(loose.decode(loose.encode('any', { a: shared, b: [shared] })).value).toEqual({
      a: { x: 1 },
      b: [{ x: 1 }],
    });
  });

  it('an encode that runs during an encode (a getter) corrupts neither message', () => {
    let inner: Uint8Array | undefined;
    const value = {
      seq: 5,
      get dir() {
        inner ??= registry.encode('move', { seq: 9, dir: 1 });
        return 0;
      },
    };
    const outer = registry.encode('move', value);
    expect(registry.decode(inner!)).toEqual({ type: 'move', value: { seq: 9, dir: 1 } });
    expect(registry.decode(outer)).toEqual({ type: 'move', value: { seq: 5, dir: 0 } });
  });

  it('encode failures without a field: a throwing toJSON, too deep for the stack, a value that changes', () => {
    const throwing = errorOf(() =>
      loose.encode('any', {
        toJSON() {
          throw new Error('nope');
        },
      }),
    );
    expect(throwing.code).toBe('VALIDATION_FAILED');
    expect(throwing.message).toBe("message 'any': cannot be encoded as JSON: nope");
    expect(throwing.cause).toBeInstanceOf(Error);
    let deep: unknown = 0;
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    const tooDeep = errorOf(() => loose.encode('any', deep));
    expect(tooDeep.code).toBe('VALIDATION_FAILED');
    expect(tooDeep.message).toMatch(/^message 'any': cannot be encoded as JSON: /);
    let reads = 0;
    const flaky = {
      get v() {
        return reads++ === 0 ? () => 0 : 1;
      },
    };
    expect(errorOf(() => loose.encode('any', flaky)).message).toBe(
      "message 'any': a function cannot be encoded as JSON",
    );
    expect(loose.encode('any', 1)).toEqual(wire(1, '1'));
  });

  it('toJSON may encode other messages (the shared writer is not in use yet)', () => {
    let inner: Uint8Array | undefined;
    const outer = loose.encode('any', {
      toJSON() {
        inner = registry.encode('move', { seq: 1, dir: 0 });
        return 'outer';
      },
    });
    expect(loose.decode(outer).value).toBe('outer');
    expect(registry.decode(inner!)).toEqual({ type: 'move', value: { seq: 1, dir: 0 } });
  });

  it('decoding refuses invalid UTF-8 and invalid JSON with DECODE_FAILED naming the message', () => {
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.of(2, 0x22, 0xed, 0xa0, 0x80, 0x22), /^message 'chat': invalid UTF-8$/], // a UTF-8 surrogate
      [Uint8Array.of(2, 0x22, 0xc3, 0x22), /^message 'chat': invalid UTF-8$/], // truncated sequence
      [Uint8Array.of(2), /^message 'chat': invalid JSON: /], // empty payload
      [wire(2, '{"text":'), /^message 'chat': invalid JSON: /],
      [wire(2, '{"text":"x"} x'), /^message 'chat': invalid JSON: /],
      [wire(2, "{'text':'x'}"), /^message 'chat': invalid JSON: /],
      [wire(2, '\ufeff{"text":"x"}'), /^message 'chat': invalid JSON: /], // no byte order mark
    ];
    for (const [bytes, message] of cases) {
      const error = errorOf(() => registry.decode(bytes));
      expect(error.code).toBe('DECODE_FAILED');
      expect(error.message).toMatch(message);
      expect(error.cause).toBeDefined();
    }
    expect(registry.decode(wire(2, ' {"text" : "x"}\n'))).toEqual({
      type: 'chat',
      value: { text: 'x' },
    });
  });

  it('json.maxBytes bounds the payload in UTF-8 bytes (MESSAGE_TOO_LARGE); maxMessageBytes the message', () => {
    const small = defineMessages({ chat: { id: 2, schema: chat } }, { json: { maxBytes: 20 } });
    expect(small.encode('chat', { text: 'x'.repeat(9) })).toHaveLength(21); // 20 bytes of JSON
    const over = errorOf(() => small.encode('chat', { text: 'é'.repeat(5) })); // 16 chars, 21 bytes
    expect(over.code).toBe('MESSAGE_TOO_LARGE');
    expect(over.message).toBe(
      "message 'chat': a JSON payload of 21 bytes exceeds json.maxBytes (20)",
    );
    const bytes = registry.encode('chat', { text: 'é'.repeat(5) });
    expect(errorOf(() => small.decode(bytes)).code).toBe('MESSAGE_TOO_LARGE');
    // Default: 1 MiB.
    expect(errorOf(() => loose.encode('any', 'x'.repeat(1 << 20))).message).toBe(
      "message 'any': a JSON payload of 1048578 bytes exceeds json.maxBytes (1048576)",
    );
    expect(errorOf(() => loose.decode(wire(1, `"${'x'.repeat(1 << 20)}"`))).code).toBe(
      'MESSAGE_TOO_LARGE',
    );
    const tiny = defineMessages({ any: { id: 1, schema: anything } }, { maxMessageBytes: 8 });
    expect(errorOf(() => tiny.encode('any', 'x'.repeat(20))).code).toBe('MESSAGE_TOO_LARGE');
    for (const json of [{ maxBytes: -1 }, { maxBytes: 1.5 }, { maxDepth: -1 }])
      expect(
        errorOf(() => defineMessages({ chat: { id: 2, schema: chat } }, { json })).message,
      ).toMatch(/^json\.max(Bytes|Depth) must be a non-negative integer, got /);
  });

  it('json.maxDepth bounds nesting on encode (VALIDATION_FAILED) and on decode before parsing (DECODE_FAILED)', () => {
    const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    expect(loose.decode(wire(1, nested(32))).value).toBeInstanceOf(Array);
    const decodeError = errorOf(() => loose.decode(wire(1, nested(33))));
    expect(decodeError.code).toBe('DECODE_FAILED');
    expect(decodeError.message).toBe("message 'any': JSON nested deeper than json.maxDepth (32)");
    // A million brackets cost a scan, never a parse or a recursive validation.
    const tree = z.lazy((): z.ZodType => z.array(tree));
    const trees = defineMessages(
      { tree: { id: 1, schema: tree } },
      { json: { maxBytes: 1 << 22 } },
    );
    expect(errorOf(() => trees.decode(wire(1, nested(1_000_000)))).code).toBe('DECODE_FAILED');
    // Brackets inside strings, escaped quotes included, are not nesting.
    const text = { s: '[[[{{{\\"]]]', t: ['"'] };
    const shallow = defineMessages({ any: { id: 1, schema: anything } }, { json: { maxDepth: 2 } });
    expect(shallow.decode(shallow.encode('any', text)).value).toEqual(text);
    const encodeError = errorOf(() => shallow.encode('any', [[[1]]]));
    expect(encodeError.code).toBe('VALIDATION_FAILED');
    expect(encodeError.message).toBe("message 'any': JSON nested deeper than json.maxDepth (2)");
    expect(errorOf(() => shallow.decode(wire(1, '[[[1]]]'))).code).toBe('DECODE_FAILED');
    const flat = defineMessages({ any: { id: 1, schema: anything } }, { json: { maxDepth: 0 } });
    expect(flat.decode(flat.encode('any', 'ok')).value).toBe('ok');
    expect(errorOf(() => flat.encode('any', {})).code).toBe('VALIDATION_FAILED');
  });

  it('"__proto__" keys decode as own properties and cannot pollute prototypes', () => {
    const payload =
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},' +
      '"nested":{"__proto__":{"admin":true}},"list":[{"__proto__":{"admin":true}}]}';
    const value = loose.decode(wire(1, payload)).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value, '__proto__')).toBe(true);
    expect(Object.keys(value)).toEqual(['__proto__', 'constructor', 'nested', 'list']);
    expect(value.polluted).toBeUndefined();
    const nested = value.nested as Record<string, unknown>;
    expect(Object.getPrototypeOf(nested)).toBe(Object.prototype);
    expect(Object.hasOwn(nested, '__proto__')).toBe(true);
    expect(nested.admin).toBeUndefined();
    expect(((value.list as unknown[])[0] as Record<string, unknown>).admin).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // Re-encoding keeps the own key.
    expect(loose.encode('any', value)).toEqual(wire(1, payload));
    // Validators build their output from own properties: the key is dropped or kept as data.
    const chats = defineMessages({
      strict: { id: 1, schema: chat },
      passthrough: { id: 2, schema: z.looseObject({ text: z.string() }) },
      record: { id: 3, schema: v.record(v.string(), v.unknown()) },
    });
    const attack = '{"text":"hi","__proto__":{"polluted":true}}';
    for (const id of [1, 2, 3]) {
      const output = chats.decode(wire(id, attack)).value as Record<string, unknown>;
      expect(Object.getPrototypeOf(output)).toBe(Object.prototype);
      expect(output.polluted).toBeUndefined();
      expect(output.text).toBe('hi');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('the registry does not import msgpack (browser bundles stay small)', () => {
    const src = dirname(fileURLToPath(import.meta.url));
    const reached = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      const text = readFileSync(join(src, file), 'utf8');
      for (const [, specifier] of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'([^']+)'/gm))
        if (specifier!.startsWith('./')) visit(specifier!.slice(2).replace(/\.js$/, '.ts'));
        else reached.add(specifier!);
    };
    visit('registry.ts');
    expect(reached).toContain('json.ts');
    expect(reached).toContain('schema.ts');
    expect(reached).toContain('@tickwire/core');
    expect([...reached].filter((name) => name.includes('msgpack'))).toEqual([]);
  });
});

describe('fuzzing JSON payloads', () => {
  it('50,000 mutated JSON messages: each decodes or throws TickwireError', () => {
    const random = createRandom(33);
    const valid = [
      loose.encode('any', { a: [1, 2.5, -3e10], b: { c: 'é\u{1f600}"\\', d: null }, e: true }),
      loose.encode('any', [[[[[]]]], { '': [{}] }]),
    ];
    let decoded = 0;
    for (let run = 0; run < 50_000; run++) {
      let bytes = valid[run % 2]!.slice();
      for (let k = 1 + random.int(3); k > 0; k--) {
        const at = 1 + random.int(bytes.length - 1);
        bytes[at] = random.chance(0.5) ? random.int(256) : bytes[at]! ^ (1 << random.int(8));
      }
      if (random.chance(0.2)) bytes = bytes.subarray(0, 1 + random.int(bytes.length - 1));
      try {
        loose.decode(bytes);
        decoded++;
      } catch (error) {
        if (!isTickwireError(error)) throw error;
        expect(error.code).toBe('DECODE_FAILED');
      }
    }
    expect(decoded).toBeGreaterThan(100);
  });
});
