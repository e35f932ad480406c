import type { StandardSchemaV1 } from '@standard-schema/spec';
import { createRandom, isTickwireError } from '@tickwire/core';
import * as v from 'valibot';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineMessages, defineSchema, type Message, t } from './index.js';
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
    const unvalidated = Uint8Array.from([2, 0x81, 0xa4, 0x74, 0x65, 0x78, 0x74, 0x05]); // {text: 5}
    const invalid = errorOf(() => registry.decode(unvalidated));
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
    expect(errorOf(() => registry.decode(new Uint8Array([2, 0xc1]))).code).toBe('DECODE_FAILED');
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
