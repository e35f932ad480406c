// The field type factories, one export each. `t` groups them; `@tickwire/serialization/t`
// re-exports them one by one, because esbuild keeps every member of an object (and of a
// re-exported namespace) but drops the unused exports of a module imported with `import * as`.
// A factory with the signature of its implementation is that function, not a wrapper of it, and
// `t` holds the implementation itself: the same function, without an alias in bundles.
import {
  type ArrayOptions,
  angleType,
  arrayType,
  type BytesOptions,
  boolType,
  bytesType,
  enumType,
  floatType,
  integerType,
  mapType,
  nullableType,
  objectType,
  optionalType,
  type QuantizedOptions,
  quantizedType,
  type RecordOptions,
  recordType,
  type StringOptions,
  sized,
  stringType,
  varintType,
  varuintType,
} from './fields.js';
import type { Infer, Literal, OptionalType, Shape, ShapeValue, Type } from './type.js';

/** `true`/`false` in 1 bit. */
export const bool: () => Type<boolean> = boolType;
/** Unsigned 8-bit integer. */
export const u8 = (): Type<number> => integerType('u8', 8, false);
/** Unsigned 16-bit integer. */
export const u16 = (): Type<number> => integerType('u16', 16, false);
/** Unsigned 32-bit integer. */
export const u32 = (): Type<number> => integerType('u32', 32, false);
/** Signed 8-bit integer. */
export const i8 = (): Type<number> => integerType('i8', 8, true);
/** Signed 16-bit integer. */
export const i16 = (): Type<number> => integerType('i16', 16, true);
/** Signed 32-bit integer. */
export const i32 = (): Type<number> => integerType('i32', 32, true);
/** Unsigned integer of any width from 1 to 32 bits (`t.uint(7)` holds 0..127). */
export const uint = (bits: number): Type<number> => integerType('uint', sized('uint', bits), false);
/** Signed integer of any width from 1 to 32 bits. */
export const int = (bits: number): Type<number> => integerType('int', sized('int', bits), true);
/** 32-bit float (values are rounded to single precision). */
export const f32 = (): Type<number> => floatType(32);
/** 64-bit float (exact). */
export const f64 = (): Type<number> => floatType(64);
/** Unsigned integer up to 2^53 - 1 as a varint (1 byte below 128). */
export const varuint: () => Type<number> = varuintType;
/** Signed integer in [-2^52, 2^52 - 1] as a zig-zag varint. */
export const varint: () => Type<number> = varintType;
/** A number in [min, max] stored in the fewest bits for `precision`; decodes within precision / 2. */
export const quantized: (
  min: number,
  max: number,
  precision: number,
  options?: QuantizedOptions,
) => Type<number> = quantizedType;
/**
 * An angle in radians, any finite value; decodes into [-π, π) within π / 2^bits of it modulo 2π,
 * plus |angle| · 2^-52 (the rounding of so large a double and of 2π: beyond ~1e9 rad at 24
 * bits, ~1e13 rad at 10 bits). @default bits 10
 */
export const angle: (bits?: number) => Type<number> = angleType;
/** A UTF-8 string of at most `maxBytes` bytes. */
export const string: (options: StringOptions) => Type<string> = stringType;
/** A `Uint8Array` of at most `maxBytes` bytes. */
export const bytes: (options: BytesOptions) => Type<Uint8Array> = bytesType;
/** An array of at most `maxLength` items. */
export const array = <T extends Type<unknown>>(item: T, options: ArrayOptions): Type<Infer<T>[]> =>
  arrayType(item as Type<Infer<T>>, options);
/** A value that may be `undefined`; in an object, an optional property (1 presence bit). */
export const optional = <T extends Type<unknown>>(type: T): OptionalType<Infer<T>> =>
  optionalType(type as Type<Infer<T>>);
/** A value that may be `null` (1 presence bit). */
export const nullable = <T extends Type<unknown>>(type: T): Type<Infer<T> | null> =>
  nullableType(type as Type<Infer<T>>);
/** One of a list of literals, as an index in ceil(log2(n)) bits (exported as `enum`). */
export const enumOf: <const V extends readonly Literal[]>(values: V) => Type<V[number]> = enumType;
/** Exactly one literal value; takes no bits. */
export const literal = <const V extends Literal>(value: V): Type<V> => enumType([value] as const);
/** A nested object with the given fields. */
export const object: <S extends Shape>(shape: S) => Type<ShapeValue<S>> = objectType;
/** A plain object with string keys (of `keyType`) and at most `maxSize` entries. */
export const record = <K extends Type<string>, V extends Type<unknown>>(
  keyType: K,
  valueType: V,
  options: RecordOptions,
): Type<Record<Infer<K>, Infer<V>>> =>
  recordType(keyType, valueType as Type<Infer<V>>, options) as Type<Record<Infer<K>, Infer<V>>>;
/** A `Map` with keys of any type and at most `maxSize` entries. */
export const map = <K extends Type<unknown>, V extends Type<unknown>>(
  keyType: K,
  valueType: V,
  options: RecordOptions,
): Type<Map<Infer<K>, Infer<V>>> =>
  mapType(keyType as Type<Infer<K>>, valueType as Type<Infer<V>>, options);

/**
 * Field type factories: `t.u8()`, `t.quantized(0, 100, 0.01)`, `t.array(item, { maxLength })`…
 * In browser bundles prefer `import * as t from '@tickwire/serialization/t'`: the same
 * factories, and only those the game calls are bundled.
 */
export const t = {
  /** `true`/`false` in 1 bit. */
  bool: boolType,
  /** Unsigned 8-bit integer. */
  u8,
  /** Unsigned 16-bit integer. */
  u16,
  /** Unsigned 32-bit integer. */
  u32,
  /** Signed 8-bit integer. */
  i8,
  /** Signed 16-bit integer. */
  i16,
  /** Signed 32-bit integer. */
  i32,
  /** Unsigned integer of any width from 1 to 32 bits (`t.uint(7)` holds 0..127). */
  uint,
  /** Signed integer of any width from 1 to 32 bits. */
  int,
  /** 32-bit float (values are rounded to single precision). */
  f32,
  /** 64-bit float (exact). */
  f64,
  /** Unsigned integer up to 2^53 - 1 as a varint (1 byte below 128). */
  varuint: varuintType,
  /** Signed integer in [-2^52, 2^52 - 1] as a zig-zag varint. */
  varint: varintType,
  /** A number in [min, max] stored in the fewest bits for `precision`; decodes within precision / 2. */
  quantized: quantizedType,
  /**
   * An angle in radians, any finite value; decodes into [-π, π) within π / 2^bits of it modulo 2π,
   * plus |angle| · 2^-52 (the rounding of so large a double and of 2π: beyond ~1e9 rad at 24
   * bits, ~1e13 rad at 10 bits). @default bits 10
   */
  angle: angleType,
  /** A UTF-8 string of at most `maxBytes` bytes. */
  string: stringType,
  /** A `Uint8Array` of at most `maxBytes` bytes. */
  bytes: bytesType,
  /** An array of at most `maxLength` items. */
  array,
  /** A value that may be `undefined`; in an object, an optional property (1 presence bit). */
  optional,
  /** A value that may be `null` (1 presence bit). */
  nullable,
  /** One of a list of literals, as an index in ceil(log2(n)) bits. */
  enum: enumType,
  /** Exactly one literal value; takes no bits. */
  literal,
  /** A nested object with the given fields. */
  object: objectType,
  /** A plain object with string keys (of `keyType`) and at most `maxSize` entries. */
  record,
  /** A `Map` with keys of any type and at most `maxSize` entries. */
  map,
} as const;
