import { encode as referenceEncode } from '@msgpack/msgpack';
import { createRandom, isTickwireError } from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msgpackCodec } from './index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(isTickwireError(error)).toBe(true);
    return (error as { code: string }).code;
  }
  return undefined;
}

describe('msgpackCodec', () => {
  const codec = msgpackCodec();

  it('round-trips JSON-like values and binaries', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        fc.pre(!JSON.stringify(value).includes('"__proto__"')); // refused on purpose, tested below
        expect(codec.decode(codec.encode(value))).toEqual(JSON.parse(JSON.stringify(value))); // -0 travels as 0
      }),
      { numRuns: 500 },
    );
    const value = {
      a: new Uint8Array([1, 2, 3]),
      f: new Float32Array([1.5]),
      n: null,
      big: 2 ** 40,
    };
    const decoded = codec.decode(codec.encode(value)) as Record<string, unknown>;
    expect(decoded.a).toEqual(new Uint8Array([1, 2, 3]));
    expect(decoded.f).toEqual(new Uint8Array(new Float32Array([1.5]).buffer)); // typed arrays travel as bin
    expect(decoded.big).toBe(2 ** 40);
  });

  it('decoded binaries are copies, not views of the input', () => {
    const input = codec.encode({ b: new Uint8Array([9, 9]) });
    const decoded = codec.decode(input) as { b: Uint8Array };
    input.fill(0);
    expect(Array.from(decoded.b)).toEqual([9, 9]);
  });

  it('enforces decode limits with DECODE_FAILED', () => {
    const strict = msgpackCodec({
      maxDepth: 3,
      maxStrLength: 4,
      maxBinLength: 2,
      maxArrayLength: 3,
      maxMapLength: 1,
    });
    const deep = referenceEncode([[[[1]]]]);
    expect(codeOf(() => strict.decode(deep))).toBe('DECODE_FAILED');
    expect(strict.decode(referenceEncode([[[1]]]))).toEqual([[[1]]]);
    expect(codeOf(() => strict.decode(referenceEncode('hello')))).toBe('DECODE_FAILED');
    expect(codeOf(() => strict.decode(referenceEncode(new Uint8Array(3))))).toBe('DECODE_FAILED');
    expect(codeOf(() => strict.decode(referenceEncode([1, 2, 3, 4])))).toBe('DECODE_FAILED');
    expect(codeOf(() => strict.decode(referenceEncode({ a: 1, b: 2 })))).toBe('DECODE_FAILED');
    expect(codeOf(() => strict.encode([[[[[1]]]]]))).toBe('VALIDATION_FAILED');
  });

  it('refuses counts that cannot fit, trailing bytes, __proto__ keys, bad input', () => {
    // array32 claiming 2^32 - 1 items in 5 bytes: refused before any allocation.
    expect(codeOf(() => codec.decode(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])))).toBe(
      'DECODE_FAILED',
    );
    expect(codeOf(() => codec.decode(new Uint8Array([0xdf, 0, 0, 0, 9, 1])))).toBe('DECODE_FAILED');
    expect(codeOf(() => codec.decode(new Uint8Array([1, 2])))).toBe('DECODE_FAILED');
    expect(codeOf(() => codec.decode(new Uint8Array([0xc1])))).toBe('DECODE_FAILED');
    expect(codeOf(() => codec.decode(new Uint8Array([])))).toBe('DECODE_FAILED');
    expect(codeOf(() => codec.decode(referenceEncode(JSON.parse('{"__proto__": {"x": 1}}'))))).toBe(
      'DECODE_FAILED',
    );
    expect(codeOf(() => codec.decode(new Uint8Array([0x81, 0x91, 0x01, 0x02])))).toBe(
      'DECODE_FAILED',
    ); // {[1]: 2}
    expect(codeOf(() => codec.decode('x' as never))).toBe('DECODE_FAILED');
  });

  it('enforces maxMessageBytes both ways and validates options', () => {
    const small = msgpackCodec({ maxMessageBytes: 4 });
    expect(codeOf(() => small.encode('hello'))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => small.decode(new Uint8Array(5)))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => msgpackCodec({ maxDepth: -1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => codec.encode(() => 1))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => codec.encode(Symbol('x')))).toBe('VALIDATION_FAILED');
  });

  it('every header type scans and decodes like the reference', () => {
    const samples: unknown[] = [
      null,
      true,
      false,
      1,
      -1,
      -33,
      200,
      70000,
      2 ** 33,
      -200,
      -70000,
      -(2 ** 33),
      1.5,
      'é',
      'x'.repeat(40),
      'x'.repeat(300),
      'x'.repeat(70000),
      new Uint8Array(300),
      new Uint8Array(70000),
      Array.from({ length: 20 }, (_, i) => i),
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
      Array.from({ length: 70000 }, () => 0),
    ];
    const wide = msgpackCodec({ maxArrayLength: 1e6 });
    for (const sample of samples) expect(wide.decode(referenceEncode(sample))).toEqual(sample);
    const extensions = [
      [0xd4, 1, 0],
      [0xd5, 1, 0, 0],
      [0xd6, 1, 0, 0, 0, 0],
      [0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0],
      [0xd8, 1, ...new Array(16).fill(0)],
      [0xc7, 1, 1, 0],
      [0xc8, 0, 1, 1, 0],
      [0xc9, 0, 0, 0, 1, 1, 0],
      [0xca, 0, 0, 0, 0],
      [0xd0, 1],
      [0xd1, 0, 1],
      [0xd2, 0, 0, 0, 1],
      [0xd3, 0, 0, 0, 0, 0, 0, 0, 1],
      [0xcf, 0, 0, 0, 0, 0, 0, 0, 1],
    ];
    for (const bytes of extensions)
      expect(codeOf(() => codec.decode(Uint8Array.from(bytes)))).toBeUndefined();
  });
});

describe('fuzzing the msgpack decoder', () => {
  const codec = msgpackCodec();

  it('100,000 arbitrary byte strings: each decodes or throws TickwireError', () => {
    const random = createRandom(11);
    let decoded = 0;
    for (let run = 0; run < 100_000; run++) {
      const bytes = new Uint8Array(1 + random.int(32));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
      try {
        codec.decode(bytes);
        decoded++;
      } catch (error) {
        if (!isTickwireError(error, 'DECODE_FAILED')) throw error;
      }
    }
    expect(decoded).toBeGreaterThan(100);
  });

  it('100,000 mutations of valid messages: each decodes or throws TickwireError', () => {
    const random = createRandom(12);
    const valid = [
      { type: 'move', dx: 1.5, dy: -2, seq: 1234 },
      { chat: 'hello world', to: [1, 2, 3], meta: { a: null, b: true, c: new Uint8Array([1, 2]) } },
      [1, [2, [3, [4, 'deep']]], -70000, 2 ** 40],
    ].map((v) => codec.encode(v));
    for (let run = 0; run < 100_000; run++) {
      const bytes = valid[run % valid.length]!.slice();
      const at = random.int(bytes.length);
      bytes[at] = random.chance(0.5) ? random.int(256) : bytes[at]! ^ (1 << random.int(8));
      const input = random.chance(0.2) ? bytes.subarray(0, random.int(bytes.length)) : bytes;
      try {
        codec.decode(input);
      } catch (error) {
        if (!isTickwireError(error, 'DECODE_FAILED')) throw error;
      }
    }
  });
});
