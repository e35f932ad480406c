import { ErrorCode, TickwireError } from '@tickwire/core';

/** One segment of a field path: an object key or an array index. */
export type PathSegment = string | number;

/** A problem with one field, as returned by `schema.validate`. */
export interface ValidationIssue {
  /** What is wrong, e.g. `longer than 32 bytes`. */
  readonly message: string;
  /** Where: keys and indexes from the root value. */
  readonly path: readonly PathSegment[];
}

const FIELD_ERROR = Symbol.for('@tickwire/serialization.FieldError');

/** True for a {@link FieldError}, also one thrown by another copy of this package. */
export function isFieldError(error: unknown): error is FieldError {
  return typeof error === 'object' && error !== null && FIELD_ERROR in error;
}

/**
 * Thrown inside the codec; carries no stack (cheap) and collects its path while it
 * unwinds through objects and arrays, then becomes a `TickwireError` at the top.
 */
export class FieldError {
  /** Marks a FieldError of any copy of this package (ESM and CJS builds loaded side by side). */
  readonly [FIELD_ERROR] = true;
  readonly path: PathSegment[] = [];
  constructor(
    readonly code: typeof ErrorCode.DECODE_FAILED | typeof ErrorCode.VALIDATION_FAILED,
    readonly reason: string,
  ) {}
}

/** Prepends a path segment to a `FieldError` passing through a container. */
export function addSegment(error: unknown, segment: PathSegment): unknown {
  if (isFieldError(error)) error.path.unshift(segment);
  return error;
}

/** `players[3].name`; the empty path is `(root)`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out === '' ? '(root)' : out;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case 'object':
      return 'an object';
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return `${value}n`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return String(value);
  }
}

/** Converts anything thrown inside encode/decode into a `TickwireError` with the field path. */
export function toCodecError(error: unknown, fallback: ErrorCode, prefix: string): TickwireError {
  if (isFieldError(error)) {
    const path = formatPath(error.path);
    return new TickwireError(error.code, `${prefix}${path}: ${error.reason}`, {
      details: { path: error.path.slice(), reason: error.reason },
    });
  }
  if (error instanceof TickwireError) return error;
  const text = error instanceof Error ? error.message : String(error);
  return new TickwireError(fallback, `${prefix}${text}`, { cause: error });
}

/**
 * The checks every decoder makes first: a Uint8Array (DECODE_FAILED), within the size limit
 * (plus `frameBytes` of framing around the message, such as a compression flag).
 */
export function checkDecodeInput(
  bytes: unknown,
  maxMessageBytes: number,
  frameBytes = 0,
): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new TickwireError(ErrorCode.DECODE_FAILED, `expected a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.length > maxMessageBytes + frameBytes) {
    throw new TickwireError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `${bytes.length} bytes exceed maxMessageBytes (${maxMessageBytes})`,
    );
  }
}
