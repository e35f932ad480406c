import { kMaxLength } from 'node:buffer';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Compressor } from '../compression.js';

/** Options of {@link zlibCompressor}. */
export interface ZlibCompressorOptions {
  /** zlib level, 1 (fast) to 9 (small). @default 1 */
  level?: number;
}

/**
 * Raw deflate on `node:zlib`. Decompression passes `maxOutputLength`, so zlib itself stops
 * inflating once the cap is exceeded (a compression bomb costs at most the cap in memory).
 */
export function zlibCompressor(options: ZlibCompressorOptions = {}): Compressor {
  const level = options.level ?? 1;
  return {
    name: 'deflate-raw',
    compress(bytes) {
      const out = deflateRawSync(bytes, { level });
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    },
    decompress(bytes, maxOutputBytes) {
      // +1 so that exactly maxOutputBytes is allowed and one more byte is detected.
      const out = inflateRawSync(bytes, {
        maxOutputLength: Math.min(maxOutputBytes + 1, kMaxLength),
      });
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    },
  };
}
