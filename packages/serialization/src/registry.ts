import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ErrorCode, TickwireError } from '@tickwire/core';
import { BinaryReader } from './binary-reader.js';
import { BinaryWriter } from './binary-writer.js';
import { type CompressionOptions, createCompressionFrame } from './compression.js';
import { formatPath, toCodecError } from './field-error.js';
import { fnv1a32 } from './fingerprint.js';
import { type MsgpackCodecOptions, msgpackCodec } from './msgpack.js';
import { isSchema, readValue, type Schema, writeValue } from './schema.js';

/** One message type: a small numeric id and a binary schema or any Standard Schema validator. */
export interface MessageDefinition {
  /** Wire id, an integer in [0, 2^31 - 1]; ids below 128 take one byte. */
  readonly id: number;
  /** A `defineSchema` schema (binary) or a Standard Schema validator (msgpack payload). */
  readonly schema: Schema<unknown> | StandardSchemaV1;
}

/** Message definitions by name. */
export type MessageDefinitions = { readonly [type: string]: MessageDefinition };

/** What `encode` accepts for a message type. */
export type MessageInput<D extends MessageDefinition> =
  D['schema'] extends Schema<infer T> ? T : StandardSchemaV1.InferInput<D['schema']>;

/** What `decode` returns for a message type. */
export type MessageOutput<D extends MessageDefinition> =
  D['schema'] extends Schema<infer T> ? T : StandardSchemaV1.InferOutput<D['schema']>;

/** The decoded message: a union discriminated by `type`. */
export type Message<M extends MessageDefinitions> = {
  [K in keyof M & string]: { readonly type: K; readonly value: MessageOutput<M[K]> };
}[keyof M & string];

/** Options of {@link defineMessages}. */
export interface MessageRegistryOptions {
  /** Limits of the msgpack codec used for Standard Schema payloads. */
  msgpack?: MsgpackCodecOptions;
  /** Opt-in compression of whole messages above a threshold (adds a flag byte in front). */
  compression?: CompressionOptions;
  /** Largest message on the wire. @default 16777216 */
  maxMessageBytes?: number;
}

/** Typed messages with numeric ids; wire format `[varuint id][payload]`. */
export interface MessageRegistry<M extends MessageDefinitions> {
  /** The definitions it was made from. */
  readonly definitions: M;
  /** Hash of every id, name and binary schema fingerprint, for a handshake check. */
  readonly fingerprint: number;
  /** Validates and encodes one message; VALIDATION_FAILED names the message and the field. */
  encode<K extends keyof M & string>(type: K, value: MessageInput<M[K]>): Uint8Array;
  /** Decodes and validates; DECODE_FAILED on an unknown id or bad bytes, VALIDATION_FAILED on an invalid payload. */
  decode(bytes: Uint8Array): Message<M>;
  /** Like `encode`, also for asynchronous Standard Schema validators. */
  encodeAsync<K extends keyof M & string>(type: K, value: MessageInput<M[K]>): Promise<Uint8Array>;
  /** Like `decode`, also for asynchronous Standard Schema validators. */
  decodeAsync(bytes: Uint8Array): Promise<Message<M>>;
}

interface Entry {
  readonly type: string;
  readonly id: number;
  readonly schema: Schema<unknown> | undefined;
  readonly validator: StandardSchemaV1 | undefined;
}

function invalidArgument(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function issuesError(type: string, issues: readonly StandardSchemaV1.Issue[]): TickwireError {
  const text = issues
    .map((issue) => {
      const path = (issue.path ?? []).map((segment) =>
        typeof segment === 'object' ? segment.key : segment,
      ) as (string | number)[];
      return `${formatPath(path)}: ${issue.message}`;
    })
    .join('; ');
  return new TickwireError(ErrorCode.VALIDATION_FAILED, `message '${type}': ${text}`, {
    details: { type, issues },
  });
}

/**
 * A registry of typed messages. Schema payloads use the binary codec; Standard Schema
 * payloads (zod, valibot, arktype…) travel as msgpack and are validated on encode and decode.
 */
export function defineMessages<const M extends MessageDefinitions>(
  definitions: M,
  options: MessageRegistryOptions = {},
): MessageRegistry<M> {
  const maxMessageBytes = options.maxMessageBytes ?? 1 << 24;
  const byType = new Map<string, Entry>();
  const byId = new Map<number, Entry>();
  const signature: string[] = [];
  for (const [type, definition] of Object.entries(definitions)) {
    const { id, schema } = definition ?? ({} as MessageDefinition);
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff)
      throw invalidArgument(`message '${type}': id must be an integer in [0, 2^31 - 1], got ${id}`);
    if (byId.has(id))
      throw invalidArgument(
        `message '${type}': id ${id} is already used by '${byId.get(id)!.type}'`,
      );
    const binary = isSchema(schema) ? schema : undefined;
    const validator = binary === undefined ? (schema as StandardSchemaV1 | undefined) : undefined;
    if (binary === undefined && typeof validator?.['~standard']?.validate !== 'function')
      throw invalidArgument(
        `message '${type}': schema must be a defineSchema schema or a Standard Schema validator`,
      );
    const entry: Entry = { type, id, schema: binary, validator };
    byType.set(type, entry);
    byId.set(id, entry);
    signature.push(
      `${id}:${JSON.stringify(type)}:${binary ? binary.signature : `standard(${validator!['~standard'].vendor})`}`,
    );
  }
  const msgpack = msgpackCodec(options.msgpack);
  const frame =
    options.compression === undefined ? undefined : createCompressionFrame(options.compression);
  const writer = new BinaryWriter({ maxBytes: maxMessageBytes });
  const reader = new BinaryReader();

  const entryOf = (type: string): Entry => {
    const entry = byType.get(type);
    if (entry === undefined) throw invalidArgument(`unknown message type '${type}'`);
    return entry;
  };

  const validateSync = (entry: Entry, value: unknown): unknown => {
    const result = entry.validator!['~standard'].validate(value);
    if (result instanceof Promise)
      throw invalidArgument(
        `message '${entry.type}': its validator is asynchronous; use encodeAsync/decodeAsync`,
      );
    if (result.issues !== undefined) throw issuesError(entry.type, result.issues);
    return result.value;
  };

  const validateAsync = async (entry: Entry, value: unknown): Promise<unknown> => {
    const result = await entry.validator!['~standard'].validate(value);
    if (result.issues !== undefined) throw issuesError(entry.type, result.issues);
    return result.value;
  };

  // The wire carries the validator's input form; decode returns its output.
  const write = (entry: Entry, value: unknown): Uint8Array => {
    writer.reset();
    writer.writeVarUint(entry.id);
    if (entry.schema !== undefined)
      writeValue(entry.schema.type, writer, value, `message '${entry.type}': `);
    else writer.writeBytes(msgpack.encode(value));
    const bytes = writer.view();
    return frame === undefined ? bytes.slice() : frame.wrap(bytes);
  };

  // Returns the entry and its decoded payload, not yet validated for Standard Schema entries.
  const read = (bytes: Uint8Array): { entry: Entry; value: unknown } => {
    if (!(bytes instanceof Uint8Array))
      throw new TickwireError(
        ErrorCode.DECODE_FAILED,
        `expected a Uint8Array, got ${typeof bytes}`,
      );
    if (bytes.length > maxMessageBytes + (frame === undefined ? 0 : 1))
      throw new TickwireError(
        ErrorCode.MESSAGE_TOO_LARGE,
        `${bytes.length} bytes exceed maxMessageBytes (${maxMessageBytes})`,
      );
    const body = frame === undefined ? bytes : frame.unwrap(bytes);
    reader.reset(body);
    let id: number;
    try {
      id = reader.readVarUint();
    } catch (error) {
      throw toCodecError(error, ErrorCode.DECODE_FAILED, 'message id: ');
    }
    const entry = byId.get(id);
    if (entry === undefined)
      throw new TickwireError(ErrorCode.DECODE_FAILED, `unknown message id ${id}`, {
        details: { id },
      });
    if (entry.schema !== undefined)
      return { entry, value: readValue(entry.schema.type, reader, `message '${entry.type}': `) };
    try {
      return { entry, value: msgpack.decode(reader.readRest()) };
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      throw new TickwireError(ErrorCode.DECODE_FAILED, `message '${entry.type}': ${text}`, {
        cause: error,
      });
    }
  };

  return {
    definitions,
    fingerprint: fnv1a32(signature.join(';')),
    encode(type, value) {
      const entry = entryOf(type);
      if (entry.validator !== undefined) validateSync(entry, value);
      return write(entry, value);
    },
    decode(bytes) {
      const { entry, value } = read(bytes);
      const output = entry.validator === undefined ? value : validateSync(entry, value);
      return { type: entry.type, value: output } as Message<M>;
    },
    async encodeAsync(type, value) {
      const entry = entryOf(type);
      if (entry.validator !== undefined) await validateAsync(entry, value);
      return write(entry, value);
    },
    async decodeAsync(bytes) {
      const { entry, value } = read(bytes);
      const output = entry.validator === undefined ? value : await validateAsync(entry, value);
      return { type: entry.type, value: output } as Message<M>;
    },
  };
}
