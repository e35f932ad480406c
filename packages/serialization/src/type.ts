import type { BinaryReader } from './binary-reader.js';
import type { BinaryWriter } from './binary-writer.js';
import type { PathSegment, ValidationIssue } from './field-error.js';

/**
 * A field type: how one value is validated, written and read. Built by the `t.*`
 * factories; `read`/`write` are the low-level codec used by schemas.
 */
export interface Type<T> {
  /** The factory that made it: `u8`, `quantized`, `object`… */
  readonly kind: string;
  /** Canonical description of the wire layout; the schema fingerprint hashes it. */
  readonly signature: string;
  /** True only for `t.optional(...)`: the property may be missing from an object. */
  readonly optional: boolean;
  /** The fewest bits a value takes on the wire (bounds allocation on decode). */
  readonly minBits: number;
  /** Writes a value, validating it; throws on an invalid value. */
  write(writer: BinaryWriter, value: T): void;
  /** Reads and validates a value. */
  read(reader: BinaryReader): T;
  /** Appends every problem of `value` (at `path`) to `issues`. */
  check(value: unknown, path: PathSegment[], issues: ValidationIssue[]): void;
  /**
   * The value's fixed-width integer image, for numeric types that have one (integers,
   * quantized numbers, angles, f32): lets a delta coder send differences between values.
   */
  readonly packed?: Packed<T>;
}

/**
 * A bijection between the valid encoded values of a fixed-width numeric type and the integers
 * `[0, 2^bits)`. `unpack(pack(v))` is `v` at the type's precision; `pack(unpack(n)) === n`.
 */
export interface Packed<T> {
  /** Width of the image (1..32). */
  readonly bits: number;
  /**
   * True when the images form a ring (angles wrap around; f32 bit patterns are ordered so
   * neighbouring floats have neighbouring images): a difference may be taken modulo 2^bits.
   */
  readonly wrap: boolean;
  /** The image of a valid value (the one `write` would write, as an integer). */
  pack(value: T): number;
  /**
   * Validates and packs in one call: the image of `value` when `write` would accept it (as
   * `write` would write it, clamped for a clamping type), −1 when `write` would throw. For hot
   * paths that must validate every value (a world's `set`); `check` then gives the reason.
   * Optional: a type without it is validated with `check`, then packed.
   */
  imageOf?(value: unknown): number;
  /** The value of an image; INVALID_ARGUMENT for an image `read` would reject. */
  unpack(image: number): T;
}

/** A `Type` whose property may be absent in an object. */
export interface OptionalType<T> extends Type<T | undefined> {
  readonly optional: true;
  /** The type of a present value. */
  readonly inner: Type<T>;
}

/** The fields of an object type. */
export type Shape = { readonly [key: string]: Type<unknown> };

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends { readonly optional: true } ? K : never;
}[keyof S];

/** The value type of an object shape: optional fields become optional properties. */
export type ShapeValue<S extends Shape> = Simplify<
  { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & {
    [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined>;
  }
>;

/** The TypeScript type of the values of a schema or field type. */
export type Infer<S> = S extends { readonly type: Type<infer T>; readonly fingerprint: number }
  ? T
  : S extends Type<infer T>
    ? T
    : never;

/** A literal an enum may hold. */
export type Literal = string | number | boolean | null;
