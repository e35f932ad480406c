import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ErrorCode, TickwireError, utf8Length } from '@tickwire/core';
import { BinaryReader } from './binary-reader.js';
import { BinaryWriter } from './binary-writer.js';
import { type CompressionOptions, createCompressionFrame } from './compression.js';
import { checkDecodeInput, formatPath, toCodecError } from './field-error.js';
import { fnv1a32 } from './fingerprint.js';
import { jsonDeeperThan, parseJson, stringifyJson } from './json.js';
import { isSchema, readValue, type Schema, writeValue } from './schema.js';

/** One message type: a small numeric id and a binary schema or any Standard Schema validator. */
export interface MessageDefinition {
  /** Wire id, an integer in [0, 2^31 - 1]; ids below 128 take one byte. */
  readonly id: number;
  /** A `defineSchema` schema (binary payload) or a Standard Schema validator (JSON payload). */
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

/** Limits of the JSON payloads of Standard Schema message types. */
export interface MessageJsonOptions {
  /**
   * Largest JSON payload in UTF-8 bytes, on encode and decode (MESSAGE_TOO_LARGE beyond);
   * `maxMessageBytes` still bounds the whole message. @default 1048576
   */
  maxBytes?: number;
  /**
   * Deepest nesting of arrays and objects, on encode and decode (`{}` is 1): decoding refuses
   * deeper input before parsing, so recursive validators cannot exhaust the stack. @default 32
   */
  maxDepth?: number;
}

/** Options of {@link defineMessages}. */
export interface MessageRegistryOptions {
  /** Limits of the JSON payloads of Standard Schema message types. */
  json?: MessageJsonOptions;
  /** Opt-in compression of whole messages above a threshold (adds a flag byte in front). */
  compression?: CompressionOptions;
  /**
   * Largest message, on encode and decode; with compression, also decompressed (inflating stops
   * there, MESSAGE_TOO_LARGE). @default 16777216
   */
  maxMessageBytes?: number;
}

/** Typed messages with numeric ids; wire format `[varuint id][payload]`. */
export interface MessageRegistry<M extends MessageDefinitions> {
  /** The definitions it was made from. */
  readonly definitions: M;
  /**
   * Hash of every id, name and payload layout (a binary schema's signature, or JSON and the
   * validator's vendor), for a handshake check.
   */
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
 * payloads (zod, valibot, arktype…) travel as UTF-8 JSON and are validated on encode and decode.
 */
export function defineMessages<const M extends MessageDefinitions>(
  definitions: M,
  options: MessageRegistryOptions = {},
): MessageRegistry<M> {
  const maxMessageBytes = options.maxMessageBytes ?? 1 << 24;
  const maxJsonBytes = options.json?.maxBytes ?? 1 << 20;
  const maxJsonDepth = options.json?.maxDepth ?? 32;
  for (const [name, value] of [
    ['maxBytes', maxJsonBytes],
    ['maxDepth', maxJsonDepth],
  ] as const)
    if (!Number.isInteger(value) || value < 0)
      throw invalidArgument(`json.${name} must be a non-negative integer, got ${value}`);
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
      `${id}:${JSON.stringify(type)}:${binary ? binary.signature : `json(standard(${validator!['~standard'].vendor}))`}`,
    );
  }
  const frame =
    options.compression === undefined ? undefined : createCompressionFrame(options.compression);
  // The reused writer, taken while an encode runs: a getter or custom type that encodes during
  // an encode gets a fresh one instead of overwriting the shared buffer.
  const newWriter = () => new BinaryWriter({ maxBytes: maxMessageBytes });
  let spare: BinaryWriter | undefined = newWriter();
  const reader = new BinaryReader();

  const jsonTooLarge = (prefix: string, length: number): TickwireError =>
    new TickwireError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `${prefix}a JSON payload of ${length} bytes exceeds json.maxBytes (${maxJsonBytes})`,
      { details: { bytes: length, maxBytes: maxJsonBytes } },
    );

  const entryOf = (type: string): Entry => {
    const entry = byType.get(type);
    if (entry === undefined) throw invalidArgument(`unknown message type '${type}'`);
    return entry;
  };

  const validateSync = (entry: Entry, value: unknown): unknown => {
    const result = entry.validator!['~standard'].validate(value);
    if (result instanceof Promise) {
      result.catch(() => {}); // abandoned: a rejection must not go unhandled (it would end Node)
      throw invalidArgument(
        `message '${entry.type}': its validator is asynchronous; use encodeAsync/decodeAsync`,
      );
    }
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
    const prefix = `message '${entry.type}': `;
    // Stringified before touching the shared writer: toJSON methods may encode messages too.
    const json = entry.schema === undefined ? stringifyJson(value, prefix) : '';
    const jsonBytes = utf8Length(json);
    if (jsonBytes > maxJsonBytes) throw jsonTooLarge(prefix, jsonBytes);
    const writer = spare ?? newWriter();
    spare = undefined;
    writer.reset();
    writer.writeVarUint(entry.id);
    const start = writer.byteLength;
    if (entry.schema !== undefined) writeValue(entry.schema.type, writer, value, prefix);
    else writer.writeUtf8(json, jsonBytes);
    const bytes = writer.view();
    spare = writer;
    if (entry.schema === undefined && jsonDeeperThan(bytes.subarray(start), maxJsonDepth))
      throw new TickwireError(
        ErrorCode.VALIDATION_FAILED,
        `${prefix}JSON nested deeper than json.maxDepth (${maxJsonDepth})`,
      );
    return frame === undefined ? bytes.slice() : frame.wrap(bytes);
  };

  // Returns the entry and its decoded payload, not yet validated for Standard Schema entries.
  const read = (bytes: Uint8Array): { entry: Entry; value: unknown } => {
    checkDecodeInput(bytes, maxMessageBytes, frame === undefined ? 0 : 1);
    const body = frame === undefined ? bytes : frame.unwrap(bytes, maxMessageBytes);
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
    const prefix = `message '${entry.type}': `;
    if (entry.schema !== undefined)
      return { entry, value: readValue(entry.schema.type, reader, prefix) };
    const payload = reader.readRest();
    if (payload.length > maxJsonBytes) throw jsonTooLarge(prefix, payload.length);
    return { entry, value: parseJson(payload, prefix, maxJsonDepth) };
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
