// JSON payloads of the message registry: strict on both sides. Encoding refuses what
// `JSON.stringify` would throw on or silently drop or change, naming the field; decoding
// accepts strict UTF-8 and `JSON.parse` only. No dependency: keeps msgpack out of bundles.
import { ErrorCode, TickwireError } from '@tickwire/core';
import { formatPath, type PathSegment } from './field-error.js';

const utf8 = /* @__PURE__ */ new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Thrown by the replacer; carries no stack (cheap). */
class Unrepresentable {
  constructor(readonly reason: string) {}
}

/**
 * What JSON cannot represent faithfully, or `undefined` when `value` is fine. `undefined`
 * properties are fine (JSON drops them, as optional fields expect); `toJSON` has already run
 * (a `Date` arrives as its ISO string).
 */
function unrepresentable(holder: unknown, value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : String(value);
    case 'object':
      if (value === null || Array.isArray(value)) return undefined;
      if (value instanceof Map) return 'a Map';
      if (value instanceof Set) return 'a Set';
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer)
        return `binary data (${Object.prototype.toString.call(value).slice(8, -1)})`;
      return undefined;
    case 'undefined':
      // At the top level `JSON.stringify` returns undefined; in an array it would write null.
      return Array.isArray(holder) ? 'undefined' : undefined;
    case 'bigint':
      return 'a BigInt';
    case 'function':
      return 'a function';
    default:
      return 'a symbol';
  }
}

function strict(this: unknown, _key: string, value: unknown): unknown {
  const reason = unrepresentable(this, value);
  if (reason !== undefined) throw new Unrepresentable(reason);
  return value;
}

/**
 * Replays a failed `JSON.stringify`, tracking the path (and cycles) this time: the first
 * problem, or `undefined` when the replay finds none (a throwing `toJSON`, too deep a value).
 */
function locate(value: unknown): { path: PathSegment[]; reason: string } | undefined {
  const ancestors: { value: object; path: PathSegment[] }[] = [];
  let found: { path: PathSegment[]; reason: string } | undefined;
  try {
    JSON.stringify(value, function (this: unknown, key: string, item: unknown) {
      while (ancestors.length > 0 && ancestors[ancestors.length - 1]!.value !== this)
        ancestors.pop();
      const parent = ancestors[ancestors.length - 1];
      const path =
        parent === undefined ? [] : [...parent.path, Array.isArray(this) ? Number(key) : key];
      let reason = unrepresentable(this, item);
      if (reason === undefined && typeof item === 'object' && item !== null) {
        if (ancestors.some((ancestor) => ancestor.value === item)) reason = 'a circular reference';
        else ancestors.push({ value: item, path });
      }
      if (reason !== undefined) {
        found = { path, reason };
        throw new Unrepresentable(reason);
      }
      return item;
    });
  } catch {
    // `found` says what went wrong, if the replay could tell.
  }
  return found;
}

/**
 * `JSON.stringify` that refuses values JSON cannot represent (undefined at the top level or
 * in an array, functions, symbols, BigInts, NaN and infinities, Maps, Sets, binary data,
 * cycles) with VALIDATION_FAILED naming the field after `prefix`.
 */
export function stringifyJson(value: unknown, prefix: string): string {
  let failure: unknown;
  try {
    const text = JSON.stringify(value, strict) as string | undefined;
    if (text !== undefined) return text;
  } catch (error) {
    failure = error;
  }
  // No text without an error: the value (or what its toJSON returned) is undefined.
  const found = failure === undefined ? { path: [], reason: 'undefined' } : locate(value);
  if (found !== undefined)
    throw new TickwireError(
      ErrorCode.VALIDATION_FAILED,
      `${prefix}${formatPath(found.path)}: ${found.reason} cannot be encoded as JSON`,
      { details: { path: found.path, reason: found.reason } },
    );
  const text =
    failure instanceof Unrepresentable
      ? `${failure.reason} cannot be encoded as JSON`
      : `cannot be encoded as JSON: ${failure instanceof Error ? failure.message : String(failure)}`;
  throw new TickwireError(ErrorCode.VALIDATION_FAILED, `${prefix}${text}`, { cause: failure });
}

/**
 * Whether JSON bytes nest arrays and objects deeper than `maxDepth` (`{}` is depth 1). A
 * linear scan that skips strings; exact for valid JSON, a mere bound for anything else.
 */
export function jsonDeeperThan(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 0x22) {
      // A string: skip to its closing quote, past escapes (no ASCII byte occurs inside a
      // multi-byte UTF-8 sequence).
      for (i++; i < bytes.length; i++) {
        const d = bytes[i]!;
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Strict UTF-8 then `JSON.parse`, refusing nesting deeper than `maxDepth` first (so neither
 * the parser nor a recursive validator can exhaust the stack); DECODE_FAILED after `prefix`.
 */
export function parseJson(bytes: Uint8Array, prefix: string, maxDepth: number): unknown {
  if (jsonDeeperThan(bytes, maxDepth))
    throw new TickwireError(
      ErrorCode.DECODE_FAILED,
      `${prefix}JSON nested deeper than json.maxDepth (${maxDepth})`,
    );
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    throw new TickwireError(ErrorCode.DECODE_FAILED, `${prefix}invalid UTF-8`, { cause: error });
  }
  try {
    // `__proto__` keys become own properties (JSON.parse defines, never assigns).
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TickwireError(ErrorCode.DECODE_FAILED, `${prefix}invalid JSON: ${reason}`, {
      cause: error,
    });
  }
}
