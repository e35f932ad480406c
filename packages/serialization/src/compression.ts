import { type Codec, ErrorCode, TickwireError } from '@tickwire/core';

/**
 * A synchronous compressor. `decompress` must stop and throw once the output would exceed
 * `maxOutputBytes` (the bomb guard), never inflate further.
 */
export interface Compressor {
  /** Short name for errors and logs, e.g. `deflate-raw`. */
  readonly name: string;
  /** Compresses a payload. */
  compress(bytes: Uint8Array): Uint8Array;
  /**
   * Decompresses, throwing once the output exceeds `maxOutputBytes` (a `RangeError` for that
   * lets the message registry report MESSAGE_TOO_LARGE rather than DECODE_FAILED).
   */
  decompress(bytes: Uint8Array, maxOutputBytes: number): Uint8Array;
}

/** Options of {@link withCompression} and the registry's `compression`. */
export interface CompressionOptions {
  /** The compressor: `zlibCompressor()` from `@tickwire/serialization/node`, or your own. */
  compressor: Compressor;
  /** Payloads at least this long are compressed (when that makes them smaller). @default 512 */
  thresholdBytes?: number;
  /** Hard cap on a decompressed payload; above it decoding fails with DECODE_FAILED. @default 1048576 */
  maxDecompressedBytes?: number;
}

/** The first byte of a compression frame. */
export const CompressionFlag = {
  /** The payload follows as is. */
  NONE: 0,
  /** The payload follows compressed. */
  COMPRESSED: 1,
} as const;

/** A frame encoder/decoder: `[flag byte][payload]`. */
export interface CompressionFrame {
  /** Wraps a payload, compressing it when at least `thresholdBytes` long and smaller compressed. */
  wrap(payload: Uint8Array): Uint8Array;
  /**
   * Unwraps a frame; DECODE_FAILED on an unknown flag, a bad stream or a payload above the cap.
   * Given `maxMessageBytes` below the cap (the registry's limit), a compressed payload is not
   * inflated past it and one above it is MESSAGE_TOO_LARGE.
   */
  unwrap(frame: Uint8Array, maxMessageBytes?: number): Uint8Array;
}

function failure(message: string, cause?: unknown): TickwireError {
  return new TickwireError(ErrorCode.DECODE_FAILED, message, cause === undefined ? {} : { cause });
}

/** Builds the frame logic shared by {@link withCompression} and the message registry. */
export function createCompressionFrame(options: CompressionOptions): CompressionFrame {
  const { compressor } = options;
  const thresholdBytes = options.thresholdBytes ?? 512;
  const maxDecompressedBytes = options.maxDecompressedBytes ?? 1 << 20;
  if (typeof compressor?.compress !== 'function' || typeof compressor.decompress !== 'function')
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'compression: a compressor is required');
  for (const [name, value] of [
    ['thresholdBytes', thresholdBytes],
    ['maxDecompressedBytes', maxDecompressedBytes],
  ] as const)
    if (!Number.isInteger(value) || value < 0)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `compression: ${name} must be a non-negative integer`,
      );
  const frame = (flag: number, payload: Uint8Array) => {
    const out = new Uint8Array(payload.length + 1);
    out[0] = flag;
    out.set(payload, 1);
    return out;
  };
  return {
    wrap(payload) {
      if (payload.length >= thresholdBytes) {
        const compressed = compressor.compress(payload);
        if (compressed.length < payload.length)
          return frame(CompressionFlag.COMPRESSED, compressed);
      }
      return frame(CompressionFlag.NONE, payload);
    },
    unwrap(bytes, maxMessageBytes = maxDecompressedBytes) {
      if (bytes.length === 0) throw failure('empty frame: missing the compression flag');
      const flag = bytes[0];
      const body = bytes.subarray(1);
      // A registry's message is bounded by its maxMessageBytes, compressed or not, as on encode.
      const limit = Math.min(maxMessageBytes, maxDecompressedBytes);
      let out: Uint8Array | undefined = body;
      if (flag === CompressionFlag.COMPRESSED) {
        try {
          out = compressor.decompress(body, limit);
        } catch (error) {
          // A RangeError is the overflow (zlib's maxOutputLength), anything else a bad stream.
          if (!(error instanceof RangeError)) {
            const text = error instanceof Error ? error.message : String(error);
            throw failure(`${compressor.name}: cannot decompress: ${text}`, error);
          }
          out = undefined;
        }
      } else if (flag !== CompressionFlag.NONE) throw failure(`unknown compression flag ${flag}`);
      if (!out || out.length > limit)
        throw new TickwireError(
          limit < maxDecompressedBytes ? ErrorCode.MESSAGE_TOO_LARGE : ErrorCode.DECODE_FAILED,
          `payload exceeds ${limit} bytes`,
        );
      return out;
    },
  };
}

/** Wraps a codec so large payloads are compressed, flagged in a leading byte. */
export function withCompression<T>(codec: Codec<T>, options: CompressionOptions): Codec<T> {
  const frame = createCompressionFrame(options);
  return {
    encode: (value) => frame.wrap(codec.encode(value)),
    decode: (bytes) => codec.decode(frame.unwrap(bytes)),
  };
}
