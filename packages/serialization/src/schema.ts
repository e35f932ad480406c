import type { StandardSchemaV1 } from '@standard-schema/spec';
import { type Codec, ErrorCode, TickwireError } from '@tickwire/core';
import { BinaryReader } from './binary-reader.js';
import { BinaryWriter } from './binary-writer.js';
import {
  checkDecodeInput,
  FieldError,
  formatPath,
  toCodecError,
  type ValidationIssue,
} from './field-error.js';
import { assertType, isPlainObject, objectType } from './fields.js';
import { fnv1a32 } from './fingerprint.js';
import type { Infer, Shape, ShapeValue, Type } from './type.js';

/** Options of {@link defineSchema}. */
export interface SchemaOptions {
  /** Largest encoded message; larger encodes throw and larger inputs are refused, with MESSAGE_TOO_LARGE. @default 16777216 (16 MiB) */
  maxMessageBytes?: number;
  /** Initial size of the reused encode buffer; it doubles when full. @default 1024 */
  initialBufferBytes?: number;
}

/** The result of `schema.validate`. */
export type ValidationResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: readonly ValidationIssue[] };

const SCHEMA = Symbol.for('tickwire.schema');

/** A compiled binary schema: a core `Codec`, a validator and a Standard Schema. */
export interface Schema<T> extends Codec<T>, StandardSchemaV1<T, T> {
  /** The root field type. */
  readonly type: Type<T>;
  /** 32-bit FNV-1a of the canonical layout; peers with different fingerprints cannot talk. */
  readonly fingerprint: number;
  /** The canonical layout the fingerprint hashes. */
  readonly signature: string;
  /** Largest encoded message in bytes. */
  readonly maxMessageBytes: number;
  /** Encodes into a fresh `Uint8Array` (a copy of the reused buffer); VALIDATION_FAILED names the bad field. */
  encode(value: T): Uint8Array;
  /** Encodes into the reused buffer and returns a view of it, valid until the next encode. */
  encodeView(value: T): Uint8Array;
  /** Appends the value to a caller's writer (to batch several values in one message). */
  encodeInto(value: T, writer: BinaryWriter): void;
  /** Decodes exactly one value; throws DECODE_FAILED (malformed) or VALIDATION_FAILED (out of bounds) with the field path. */
  decode(bytes: Uint8Array): T;
  /** Reads one value from a caller's reader (the counterpart of `encodeInto`). */
  decodeFrom(reader: BinaryReader): T;
  /** Every problem of `value`, with paths; `ok` when it can be encoded. */
  validate(value: unknown): ValidationResult<T>;
  /** True when `value` can be encoded. */
  is(value: unknown): value is T;
}

/** True for a schema made by {@link defineSchema}. */
export function isSchema(value: unknown): value is Schema<unknown> {
  return (
    typeof value === 'object' && value !== null && (value as { [SCHEMA]?: true })[SCHEMA] === true
  );
}

/** Writes with a `TickwireError` (path included) on failure. */
export function writeValue<T>(type: Type<T>, writer: BinaryWriter, value: T, prefix = ''): void {
  try {
    type.write(writer, value);
  } catch (error) {
    throw toCodecError(error, ErrorCode.VALIDATION_FAILED, prefix);
  }
}

/** Reads one value and checks that nothing is left; `TickwireError` with the path on failure. */
export function readValue<T>(type: Type<T>, reader: BinaryReader, prefix = ''): T {
  try {
    const value = type.read(reader);
    reader.end();
    return value;
  } catch (error) {
    throw toCodecError(error, ErrorCode.DECODE_FAILED, prefix);
  }
}

/** Collects validation issues of `value` against `type`. */
export function collectIssues(type: Type<unknown>, value: unknown): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  type.check(value, [], issues);
  return issues;
}

/** Formats issues as `players[3].name: longer than 32 bytes; …`. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ');
}

/**
 * Compiles a schema from an object shape (`{ id: t.varuint(), x: t.quantized(…) }`) or
 * any field type (`t.array(…)`).
 */
export function defineSchema<S extends Shape>(
  shape: S,
  options?: SchemaOptions,
): Schema<ShapeValue<S>>;
export function defineSchema<T extends Type<unknown>>(
  type: T,
  options?: SchemaOptions,
): Schema<Infer<T>>;
export function defineSchema(
  shapeOrType: Shape | Type<unknown>,
  options: SchemaOptions = {},
): Schema<unknown> {
  if (!isPlainObject(shapeOrType))
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'defineSchema: expected a shape or a field type',
    );
  const candidate = shapeOrType as Partial<Type<unknown>>;
  const type: Type<unknown> =
    typeof candidate.write === 'function'
      ? (candidate as Type<unknown>)
      : objectType(shapeOrType as Shape);
  assertType(type, 'defineSchema');
  const maxMessageBytes = options.maxMessageBytes ?? 1 << 24;
  const writerOptions = {
    maxBytes: maxMessageBytes,
    initialBytes: Math.min(options.initialBufferBytes ?? 1024, Math.max(8, maxMessageBytes)),
  };
  // The reused writer, taken while an encode runs: a getter or custom type that encodes during
  // an encode gets a fresh one instead of overwriting the shared buffer.
  let spare: BinaryWriter | undefined = new BinaryWriter(writerOptions);
  const reader = new BinaryReader();
  const signature = type.signature;
  const validate = (value: unknown): ValidationResult<unknown> => {
    const issues = collectIssues(type, value);
    return issues.length === 0 ? { ok: true, value } : { ok: false, issues };
  };
  const encodeView = (value: unknown): Uint8Array => {
    const writer = spare ?? new BinaryWriter(writerOptions);
    spare = undefined;
    writer.reset();
    writeValue(type, writer, value);
    spare = writer;
    return writer.view();
  };
  const schema: Schema<unknown> & { [SCHEMA]: true } = {
    [SCHEMA]: true,
    type,
    signature,
    fingerprint: fnv1a32(signature),
    maxMessageBytes,
    encode(value) {
      return encodeView(value).slice();
    },
    encodeView,
    encodeInto(value, target) {
      writeValue(type, target, value);
    },
    decode(bytes) {
      checkDecodeInput(bytes, maxMessageBytes);
      return readValue(type, reader.reset(bytes));
    },
    decodeFrom(source) {
      try {
        return type.read(source);
      } catch (error) {
        throw toCodecError(error, ErrorCode.DECODE_FAILED, '');
      }
    },
    validate,
    is(value): value is unknown {
      return collectIssues(type, value).length === 0;
    },
    '~standard': {
      version: 1,
      vendor: 'tickwire',
      validate(value) {
        const result = validate(value);
        return result.ok ? { value: result.value } : { issues: result.issues };
      },
    },
  };
  return schema;
}

export { FieldError };
