export { BinaryReader } from './binary-reader.js';
export { BinaryWriter, type BinaryWriterOptions } from './binary-writer.js';
export { t } from './builders.js';
export {
  CompressionFlag,
  type CompressionFrame,
  type CompressionOptions,
  type Compressor,
  createCompressionFrame,
  withCompression,
} from './compression.js';
export { formatPath, type PathSegment, type ValidationIssue } from './field-error.js';
export type {
  ArrayOptions,
  BytesOptions,
  QuantizedOptions,
  RecordOptions,
  StringOptions,
} from './fields.js';
export { fnv1a32 } from './fingerprint.js';
export { type MsgpackCodecOptions, msgpackCodec } from './msgpack.js';
export {
  defineMessages,
  type Message,
  type MessageDefinition,
  type MessageDefinitions,
  type MessageInput,
  type MessageJsonOptions,
  type MessageOutput,
  type MessageRegistry,
  type MessageRegistryOptions,
} from './registry.js';
export {
  defineSchema,
  formatIssues,
  isSchema,
  type Schema,
  type SchemaOptions,
  type ValidationResult,
} from './schema.js';
export type { Infer, Literal, OptionalType, Packed, Shape, ShapeValue, Type } from './type.js';
