import { createRandom, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import {
  type Compressor,
  createCompressionFrame,
  defineSchema,
  msgpackCodec,
  t,
  withCompression,
} from './index.js';
import { zlibCompressor } from './node/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(isTickwireError(error)).toBe(true);
    return (error as { code: string }).code;
  }
  return undefined;
}

describe('compression', () => {
  const zlib = zlibCompressor();

  it('compresses above the threshold only, flagged in the first byte', () => {
    const codec = withCompression(msgpackCodec<string[]>(), {
      compressor: zlib,
      thresholdBytes: 100,
    });
    const big = Array.from({ length: 100 }, () => 'repeated text');
    const bytes = codec.encode(big);
    expect(bytes[0]).toBe(1);
    expect(bytes.length).toBeLessThan(msgpackCodec().encode(big).length / 5);
    expect(codec.decode(bytes)).toEqual(big);
    const small = codec.encode(['a']);
    expect(small[0]).toBe(0);
    expect(codec.decode(small)).toEqual(['a']);
  });

  it('keeps incompressible payloads raw', () => {
    const schema = defineSchema(t.bytes({ maxBytes: 4096 }));
    const codec = withCompression(schema, { compressor: zlib, thresholdBytes: 0 });
    const random = createRandom(3);
    const noise = new Uint8Array(1000).map(() => random.int(256));
    const bytes = codec.encode(noise);
    expect(bytes[0]).toBe(0);
    expect(codec.decode(bytes)).toEqual(noise);
  });

  it('stops inflating a bomb at maxDecompressedBytes (DECODE_FAILED)', () => {
    const bomb = zlibCompressor({ level: 9 }).compress(new Uint8Array(64 << 20)); // 64 MiB of zeros, ~64 KB
    expect(bomb.length).toBeLessThan(100_000);
    const frame = new Uint8Array(bomb.length + 1);
    frame[0] = 1;
    frame.set(bomb, 1);
    const codec = withCompression(msgpackCodec(), {
      compressor: zlib,
      maxDecompressedBytes: 1 << 20,
    });
    const before = process.memoryUsage().arrayBuffers;
    expect(codeOf(() => codec.decode(frame))).toBe('DECODE_FAILED');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 << 20);
    // Exactly at the cap is allowed.
    const exact = createCompressionFrame({
      compressor: zlib,
      maxDecompressedBytes: 1000,
      thresholdBytes: 0,
    });
    expect(exact.unwrap(exact.wrap(new Uint8Array(1000))).length).toBe(1000);
    const over = createCompressionFrame({ compressor: zlib, maxDecompressedBytes: 999 });
    expect(codeOf(() => over.unwrap(exact.wrap(new Uint8Array(1000))))).toBe('DECODE_FAILED');
    expect(codeOf(() => over.unwrap(Uint8Array.from([0, ...new Uint8Array(1000)])))).toBe(
      'DECODE_FAILED',
    );
  });

  it('a compressor that ignores the cap is still caught', () => {
    const careless: Compressor = {
      name: 'careless',
      compress: (b) => b.subarray(0, 1),
      decompress: () => new Uint8Array(50),
    };
    const frame = createCompressionFrame({
      compressor: careless,
      maxDecompressedBytes: 10,
      thresholdBytes: 2,
    });
    expect(codeOf(() => frame.unwrap(frame.wrap(new Uint8Array(5))))).toBe('DECODE_FAILED');
  });

  it('rejects bad frames and options', () => {
    const frame = createCompressionFrame({ compressor: zlib });
    expect(codeOf(() => frame.unwrap(new Uint8Array([])))).toBe('DECODE_FAILED');
    expect(codeOf(() => frame.unwrap(new Uint8Array([7, 1])))).toBe('DECODE_FAILED');
    expect(codeOf(() => frame.unwrap(new Uint8Array([1, 0xff, 0xff])))).toBe('DECODE_FAILED');
    expect(codeOf(() => createCompressionFrame({} as never))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createCompressionFrame({ compressor: zlib, thresholdBytes: -1 }))).toBe(
      'INVALID_ARGUMENT',
    );
  });
});
