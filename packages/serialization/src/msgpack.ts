import { DecodeError, Decoder, Encoder, type ExtensionCodecType } from '@msgpack/msgpack';
import { type Codec, copyBytes, ErrorCode, TickwireError } from '@tickwire/core';
import { checkDecodeInput } from './field-error.js';

/** Options of {@link msgpackCodec}. */
export interface MsgpackCodecOptions {
  /** Deepest nesting of arrays and maps, on encode and decode. @default 32 */
  maxDepth?: number;
  /** Longest string in bytes on decode. @default 1048576 */
  maxStrLength?: number;
  /** Longest binary on decode. @default 1048576 */
  maxBinLength?: number;
  /** Most items of one array on decode. @default 65536 */
  maxArrayLength?: number;
  /** Most entries of one map on decode. @default 65536 */
  maxMapLength?: number;
  /** Longest extension payload on decode. @default 1048576 */
  maxExtLength?: number;
  /** Largest message, encoded or decoded (MESSAGE_TOO_LARGE beyond). @default 16777216 */
  maxMessageBytes?: number;
  /** Extension types (dates, custom classes), passed to `@msgpack/msgpack`. */
  extensionCodec?: ExtensionCodecType<undefined>;
  /** Decode 64-bit integers as `bigint`, encode `bigint` as 64-bit integers. @default false */
  useBigInt64?: boolean;
  /** Drop object properties whose value is `undefined` instead of encoding `nil`. @default false */
  ignoreUndefined?: boolean;
}

function checkLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be a non-negative integer, got ${value}`,
    );
  return value;
}

class Malformed extends Error {}

// Container headers: [byte, size bytes of the count, children per count unit].
function readUint(bytes: Uint8Array, at: number, size: number): number {
  if (at + size > bytes.length) throw new Malformed('truncated');
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + bytes[at + i]!;
  return value;
}

/**
 * One pass over the headers before `@msgpack/msgpack` decodes: enforces `maxDepth` (the
 * library has no decode depth limit) and that every array/map count fits in the bytes
 * that remain, so a 5-byte input can never make the decoder allocate a huge array.
 */
function scan(bytes: Uint8Array, maxDepth: number): void {
  const pending: number[] = [1];
  let at = 0;
  while (pending.length > 0) {
    const top = pending.length - 1;
    if (pending[top] === 0) {
      pending.pop();
      continue;
    }
    pending[top]!--;
    if (at >= bytes.length) throw new Malformed('truncated');
    const head = bytes[at++]!;
    let children = -1;
    let skip = 0;
    if (head < 0x80 || head >= 0xe0) skip = 0;
    else if (head < 0x90) children = (head & 0x0f) * 2;
    else if (head < 0xa0) children = head & 0x0f;
    else if (head < 0xc0) skip = head & 0x1f;
    else {
      switch (head) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          break;
        case 0xc4:
        case 0xd9:
          skip = 1 + readUint(bytes, at, 1);
          break;
        case 0xc5:
        case 0xda:
          skip = 2 + readUint(bytes, at, 2);
          break;
        case 0xc6:
        case 0xdb:
          skip = 4 + readUint(bytes, at, 4);
          break;
        case 0xc7:
          skip = 2 + readUint(bytes, at, 1);
          break;
        case 0xc8:
          skip = 3 + readUint(bytes, at, 2);
          break;
        case 0xc9:
          skip = 5 + readUint(bytes, at, 4);
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xd4:
          skip = 2;
          break;
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xdc:
          children = readUint(bytes, at, 2);
          at += 2;
          break;
        case 0xdd:
          children = readUint(bytes, at, 4);
          at += 4;
          break;
        case 0xde:
          children = readUint(bytes, at, 2) * 2;
          at += 2;
          break;
        case 0xdf:
          children = readUint(bytes, at, 4) * 2;
          at += 4;
          break;
        default:
          throw new Malformed(`invalid type byte 0x${head.toString(16)}`);
      }
    }
    if (children >= 0) {
      if (children > bytes.length - at)
        throw new Malformed(
          `a container of ${children} values cannot fit in ${bytes.length - at} bytes`,
        );
      if (children > 0) {
        if (pending.length > maxDepth)
          throw new Malformed(`nested deeper than maxDepth (${maxDepth})`);
        pending.push(children);
      }
    } else {
      at += skip;
      if (at > bytes.length) throw new Malformed('truncated');
    }
  }
}

function mapKeyConverter(key: unknown): string | number {
  if (key === '__proto__') throw new DecodeError('the map key "__proto__" is not allowed');
  if (typeof key === 'string' || typeof key === 'number') return key;
  throw new DecodeError(`map keys must be strings or numbers, got ${typeof key}`);
}

/**
 * A core `Codec` on `@msgpack/msgpack` with reused encoder and decoder instances. Typed
 * arrays are encoded as msgpack `bin` and decode as `Uint8Array` copies (never views of
 * the input). The generic `T` is the caller's assertion: msgpack does not validate shapes
 * (use a schema or the message registry with a validator for that).
 */
export function msgpackCodec<T = unknown>(options: MsgpackCodecOptions = {}): Codec<T> {
  const maxDepth = checkLimit('maxDepth', options.maxDepth ?? 32);
  const maxMessageBytes = checkLimit('maxMessageBytes', options.maxMessageBytes ?? 1 << 24);
  const encoder = new Encoder({
    maxDepth,
    extensionCodec: options.extensionCodec,
    useBigInt64: options.useBigInt64 ?? false,
    ignoreUndefined: options.ignoreUndefined ?? false,
  });
  const decoder = new Decoder({
    extensionCodec: options.extensionCodec,
    useBigInt64: options.useBigInt64 ?? false,
    maxStrLength: checkLimit('maxStrLength', options.maxStrLength ?? 1 << 20),
    maxBinLength: checkLimit('maxBinLength', options.maxBinLength ?? 1 << 20),
    maxArrayLength: checkLimit('maxArrayLength', options.maxArrayLength ?? 65536),
    maxMapLength: checkLimit('maxMapLength', options.maxMapLength ?? 65536),
    maxExtLength: checkLimit('maxExtLength', options.maxExtLength ?? 1 << 20),
    mapKeyConverter,
  });
  return {
    encode(value) {
      let bytes: Uint8Array;
      try {
        bytes = encoder.encode(value);
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        throw new TickwireError(
          ErrorCode.VALIDATION_FAILED,
          `msgpack cannot encode the value: ${text}`,
          {
            cause: error,
          },
        );
      }
      if (bytes.length > maxMessageBytes)
        throw new TickwireError(
          ErrorCode.MESSAGE_TOO_LARGE,
          `encoded ${bytes.length} bytes, above maxMessageBytes (${maxMessageBytes})`,
        );
      return bytes;
    },
    decode(bytes) {
      checkDecodeInput(bytes, maxMessageBytes);
      try {
        scan(bytes, maxDepth);
        return decoder.decode(copyBytes(bytes)) as T;
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        throw new TickwireError(ErrorCode.DECODE_FAILED, `invalid msgpack: ${text}`, {
          cause: error,
        });
      }
    },
  };
}
