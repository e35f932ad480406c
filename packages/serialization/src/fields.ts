import { ErrorCode, TickwireError, utf8Length } from '@tickwire/core';
import type { BinaryReader } from './binary-reader.js';
import type { BinaryWriter } from './binary-writer.js';
import {
  addSegment,
  describe,
  FieldError,
  type PathSegment,
  type ValidationIssue,
} from './field-error.js';
import type { Literal, OptionalType, Packed, Shape, ShapeValue, Type } from './type.js';

// Literals rather than computed values, so that bundles drop what they do not use.
const VALIDATION: typeof ErrorCode.VALIDATION_FAILED = 'VALIDATION_FAILED';
const DECODE: typeof ErrorCode.DECODE_FAILED = 'DECODE_FAILED';
const MAX_VARINT = 4_503_599_627_370_496; // 2^52

function invalidArgument(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function issue(issues: ValidationIssue[], path: PathSegment[], message: string): void {
  issues.push({ message, path: path.slice() });
}

function checkBound(name: string, value: number | undefined, max = 2 ** 32 - 1): number {
  if (value === undefined || !Number.isInteger(value) || value < 0 || value > max)
    throw invalidArgument(`${name} must be an integer in [0, ${max}], got ${describe(value)}`);
  return value;
}

/** Bits needed for the integers 0..count-1. */
function bitsFor(count: number): number {
  let bits = 0;
  while (2 ** bits < count) bits++;
  return bits;
}

/** The error `write` throws for a value that `problem` finds invalid. */
function invalidValue(problem: (value: unknown) => string | undefined, value: unknown): FieldError {
  return new FieldError(VALIDATION, problem(value)!);
}

// A leaf type whose validity is one predicate; write and read stay tiny.
function leaf<T>(
  kind: string,
  signature: string,
  minBits: number,
  problem: (value: unknown) => string | undefined,
  write: (writer: BinaryWriter, value: T) => void,
  read: (reader: BinaryReader) => T,
  packed?: Packed<T>,
): Type<T> {
  return {
    kind,
    signature,
    optional: false,
    minBits,
    write,
    read,
    ...(packed === undefined ? {} : { packed }),
    check(value, path, issues) {
      const message = problem(value);
      if (message !== undefined) issue(issues, path, message);
    },
  };
}

function boolType(): Type<boolean> {
  const problem = (v: unknown) =>
    typeof v === 'boolean' ? undefined : `expected a boolean, got ${describe(v)}`;
  return leaf<boolean>(
    'bool',
    'bool',
    1,
    problem,
    (w, v) => {
      if (v === true) w.writeBits(1, 1);
      else if (v === false) w.writeBits(0, 1);
      else throw invalidValue(problem, v);
    },
    (r) => r.readBits(1) === 1,
  );
}

/**
 * A fixed-width numeric leaf: `imageOf` validates and packs in one step, and `write`, `read`
 * and `check` follow from it (one definition of what is valid).
 */
function imageLeaf(
  kind: string,
  signature: string,
  bits: number,
  wrap: boolean,
  expected: string,
  imageOf: (value: unknown) => number,
  pack: (value: number) => number,
  unpack: (image: number, read?: 1) => number,
): Type<number> {
  const problem = (v: unknown) =>
    imageOf(v) < 0 ? `expected ${expected}, got ${describe(v)}` : undefined;
  return leaf<number>(
    kind,
    signature,
    bits,
    problem,
    (w, v) => {
      const image = imageOf(v);
      if (image < 0) throw invalidValue(problem, v);
      w.writeBits(image, bits);
    },
    (r) => unpack(r.readBits(bits), 1),
    { bits, wrap, pack, imageOf, unpack },
  );
}

/** An integer of `bits` bits; a signed one in offset binary (value + 2^(bits-1), unsigned). */
function integerType(kind: string, bits: number, signed: boolean): Type<number> {
  const offset = signed ? 2 ** (bits - 1) : 0;
  const min = -offset;
  const max = 2 ** bits - 1 - offset;
  return imageLeaf(
    kind,
    kind === 'uint' || kind === 'int' ? `${kind}(${bits})` : kind,
    bits,
    false,
    `an integer in [${min}, ${max}]`,
    (v) => (typeof v === 'number' && v >= min && v <= max && Number.isInteger(v) ? v + offset : -1),
    (v) => v + offset,
    (n) => n - offset,
  );
}

function floatType(bits: 32 | 64): Type<number> {
  const problem = (v: unknown) =>
    typeof v === 'number' ? undefined : `expected a number, got ${describe(v)}`;
  return leaf<number>(
    `f${bits}`,
    `f${bits}`,
    bits,
    problem,
    bits === 32
      ? (w, v) => {
          if (typeof v !== 'number') throw invalidValue(problem, v);
          w.writeF32(v);
        }
      : (w, v) => {
          if (typeof v !== 'number') throw invalidValue(problem, v);
          w.writeF64(v);
        },
    bits === 32 ? (r) => r.readF32() : (r) => r.readF64(),
    bits === 32 ? f32Packed : undefined,
  );
}

const f32Bytes = /* @__PURE__ */ new ArrayBuffer(4);
const f32View = /* @__PURE__ */ new Float32Array(f32Bytes);
const u32View = /* @__PURE__ */ new Uint32Array(f32Bytes);

/**
 * f32 bit patterns in numeric order: negative floats have their bits inverted, positive ones
 * their sign bit set, so adjacent floats have adjacent images (NaN payloads are kept).
 */
const f32Packed: Packed<number> = {
  bits: 32,
  wrap: true,
  pack(value) {
    f32View[0] = value;
    const raw = u32View[0]!;
    return raw >= 0x80000000 ? 0xffffffff - raw : raw + 0x80000000;
  },
  imageOf(value) {
    return typeof value === 'number' ? f32Packed.pack(value) : -1;
  },
  unpack(image) {
    u32View[0] = image >= 0x80000000 ? image - 0x80000000 : 0xffffffff - image;
    return f32View[0]!;
  },
};

function varuintType(): Type<number> {
  const problem = (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) >= 0
      ? undefined
      : `expected an integer in [0, 2^53 - 1], got ${describe(v)}`;
  return leaf<number>(
    'varuint',
    'varuint',
    8,
    problem,
    (w, v) => {
      if (!(v >= 0 && Number.isSafeInteger(v))) throw invalidValue(problem, v);
      w.writeVarUint(v);
    },
    (r) => r.readVarUint(),
  );
}

function varintType(): Type<number> {
  const problem = (v: unknown) =>
    Number.isInteger(v) && (v as number) >= -MAX_VARINT && (v as number) < MAX_VARINT
      ? undefined
      : `expected an integer in [-2^52, 2^52 - 1], got ${describe(v)}`;
  return leaf<number>(
    'varint',
    'varint',
    8,
    problem,
    (w, v) => {
      if (!(v >= -MAX_VARINT && v < MAX_VARINT && Number.isInteger(v)))
        throw invalidValue(problem, v);
      w.writeVarInt(v);
    },
    (r) => r.readVarInt(),
  );
}

/** Options of `t.quantized`. */
export interface QuantizedOptions {
  /** Clamp out-of-range values into [min, max] instead of rejecting them. @default false */
  clamp?: boolean;
}

function quantizedType(
  min: number,
  max: number,
  precision: number,
  options: QuantizedOptions = {},
): Type<number> {
  if (!Number.isFinite(min) || !Number.isFinite(max) || !(max > min))
    throw invalidArgument(`quantized: need finite min < max, got [${min}, ${max}]`);
  if (!Number.isFinite(precision) || !(precision > 0))
    throw invalidArgument(`quantized: precision must be a positive number, got ${precision}`);
  const steps = Math.ceil((max - min) / precision);
  const bits = bitsFor(steps + 1);
  if (bits > 32)
    throw invalidArgument(
      `quantized: [${min}, ${max}] at precision ${precision} needs ${bits} bits; at most 32`,
    );
  // The step is at most `precision`, so a value in range decodes within precision / 2.
  const step = (max - min) / steps;
  const clamp = options.clamp === true;
  // `read` set: called by `read` (a FieldError gets the field path); unset: by `packed.unpack`.
  const unpack = (q: number, read?: 1): number => {
    if (q >= steps) {
      if (q === steps) return max;
      const reason = `quantized step ${q} above the maximum ${steps}`;
      throw read ? new FieldError(VALIDATION, reason) : invalidArgument(reason);
    }
    return min + q * step;
  };
  return imageLeaf(
    'quantized',
    `quantized(${min},${max},${precision}${clamp ? ',clamp' : ''})`,
    bits,
    false,
    `a number in [${min}, ${max}]`,
    (v) => {
      // typeof first: a comparison would let null, booleans and numeric strings through.
      if (typeof v !== 'number') return -1;
      let x = v;
      if (!(x >= min && x <= max)) {
        if (!clamp || Number.isNaN(x)) return -1;
        x = x < min ? min : max;
      }
      return Math.round((x - min) / step) + 0; // + 0 turns −0 into 0
    },
    (v) => Math.round((Math.max(min, Math.min(v, max)) - min) / step),
    unpack,
  );
}

const TWO_PI = 6.283185307179586; // 2π (a literal: a computed value would stay in every bundle)

function angleType(bits = 10): Type<number> {
  if (!Number.isInteger(bits) || bits < 2 || bits > 24)
    throw invalidArgument(`angle: bits must be an integer in [2, 24], got ${describe(bits)}`);
  const count = 2 ** bits;
  const half = count / 2;
  const unpack = (q: number): number => ((q >= half ? q - count : q) / count) * TWO_PI;
  const pack = (v: number): number => {
    let q = Math.round((v / TWO_PI) * count);
    // Angles in [0, 2π) need no (slow, floating-point) remainder; + 0 turns −0 into 0.
    if (q >= 0 && q < count) return q + 0;
    // A finite angle so large that scaling it overflows: reduce it first.
    if (!Number.isFinite(q)) q = Math.round(((v % TWO_PI) / TWO_PI) * count);
    const r = q % count;
    return r < 0 ? r + count : r + 0;
  };
  return imageLeaf(
    'angle',
    `angle(${bits})`,
    bits,
    true,
    'a finite angle in radians',
    (v) => (Number.isFinite(v) ? pack(v as number) : -1),
    pack,
    unpack,
  );
}

/** Options of `t.string`. */
export interface StringOptions {
  /** Maximum UTF-8 length in bytes. */
  maxBytes: number;
}

function stringType(options: StringOptions): Type<string> {
  const maxBytes = checkBound('string: maxBytes', options?.maxBytes);
  const problem = (v: unknown) => {
    if (typeof v !== 'string') return `expected a string, got ${describe(v)}`;
    return utf8Length(v) > maxBytes ? `longer than ${maxBytes} bytes` : undefined;
  };
  return leaf<string>(
    'string',
    `string(${maxBytes})`,
    8,
    problem,
    (w, v) => {
      if (typeof v !== 'string') throw invalidValue(problem, v);
      const length = utf8Length(v);
      if (length > maxBytes) throw new FieldError(VALIDATION, `longer than ${maxBytes} bytes`);
      w.writeVarUint(length);
      w.writeUtf8(v, length);
    },
    (r) => {
      const length = r.readVarUint();
      if (length > maxBytes)
        throw new FieldError(VALIDATION, `longer than ${maxBytes} bytes (${length})`);
      return r.readUtf8(length);
    },
  );
}

/** Options of `t.bytes`. */
export interface BytesOptions {
  /** Maximum length in bytes. */
  maxBytes: number;
}

function bytesType(options: BytesOptions): Type<Uint8Array> {
  const maxBytes = checkBound('bytes: maxBytes', options?.maxBytes);
  const problem = (v: unknown) => {
    if (!(v instanceof Uint8Array)) return `expected a Uint8Array, got ${describe(v)}`;
    return v.length > maxBytes ? `longer than ${maxBytes} bytes` : undefined;
  };
  return leaf<Uint8Array>(
    'bytes',
    `bytes(${maxBytes})`,
    8,
    problem,
    (w, v) => {
      const message = problem(v);
      if (message !== undefined) throw new FieldError(VALIDATION, message);
      w.writeVarUint(v.length);
      w.writeBytes(v);
    },
    (r) => {
      const length = r.readVarUint();
      if (length > maxBytes)
        throw new FieldError(VALIDATION, `longer than ${maxBytes} bytes (${length})`);
      return r.readBytes(length);
    },
  );
}

function enumType<const V extends readonly Literal[]>(values: V): Type<V[number]> {
  if (!Array.isArray(values) || values.length === 0)
    throw invalidArgument('enum: needs at least one value');
  for (const [i, value] of values.entries()) {
    const ok =
      value === null ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && !Number.isNaN(value));
    if (!ok) throw invalidArgument(`enum: value ${i} is not a literal: ${describe(value)}`);
    if (values.indexOf(value) !== i)
      throw invalidArgument(`enum: duplicate value ${describe(value)}`);
  }
  const list = values.slice() as Literal[];
  const bits = bitsFor(list.length);
  const expected = list.map((v) => JSON.stringify(v)).join(', ');
  const problem = (v: unknown) =>
    list.indexOf(v as Literal) >= 0 ? undefined : `expected one of ${expected}, got ${describe(v)}`;
  return leaf<V[number]>(
    list.length === 1 ? 'literal' : 'enum',
    `enum(${expected})`,
    bits,
    problem,
    (w, v) => {
      const index = list.indexOf(v);
      if (index < 0) throw invalidValue(problem, v);
      w.writeBits(index, bits);
    },
    (r) => {
      const index = r.readBits(bits);
      if (index >= list.length)
        throw new FieldError(
          VALIDATION,
          `enum index ${index} out of range (${list.length} values)`,
        );
      return list[index] as V[number];
    },
  );
}

/** A presence bit, then the inner value when present: `optional` (undefined) and `nullable` (null). */
function presenceType<T, A extends undefined | null>(
  kind: 'optional' | 'nullable',
  inner: Type<T>,
  absent: A,
): Type<T | A> {
  assertType(inner, kind);
  return {
    kind,
    signature: `${kind}(${inner.signature})`,
    optional: kind === 'optional',
    minBits: 1,
    write(w, v) {
      if (v === absent) w.writeBits(0, 1);
      else {
        w.writeBits(1, 1);
        inner.write(w, v as T);
      }
    },
    read(r) {
      return r.readBits(1) === 1 ? inner.read(r) : absent;
    },
    check(v, path, issues) {
      if (v !== absent) inner.check(v, path, issues);
    },
  };
}

function optionalType<T>(inner: Type<T>): OptionalType<T> {
  return { ...presenceType('optional', inner, undefined), optional: true, inner };
}

function nullableType<T>(inner: Type<T>): Type<T | null> {
  return presenceType('nullable', inner, null);
}

function assertType(type: unknown, where: string): void {
  const ok =
    typeof type === 'object' &&
    type !== null &&
    typeof (type as Type<unknown>).write === 'function' &&
    typeof (type as Type<unknown>).signature === 'string';
  if (!ok) throw invalidArgument(`${where}: expected a field type (t.*), got ${describe(type)}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

// `obj.__proto__ = x` would set the prototype; define it as an own property instead.
function setProperty(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  else target[key] = value;
}

let codegenEnabled = true;

/** Test hook: turns code generation off to exercise the closure fallback (as under a strict CSP). */
export function setCodegen(enabled: boolean): void {
  codegenEnabled = enabled;
}

/**
 * Compiles per-schema functions with `new Function`, so each object and array type gets its
 * own monomorphic call sites and objects are built as literals with a fixed shape. Returns
 * undefined where code generation is forbidden (a CSP without 'unsafe-eval'); the caller
 * then uses generic closures, which are correct but slower.
 */
function compile<F>(names: string[], body: string, values: unknown[]): F | undefined {
  if (!codegenEnabled) return undefined;
  try {
    return new Function(...names, body)(...values) as F;
  } catch {
    return undefined;
  }
}

interface Compiled<T> {
  write(writer: BinaryWriter, value: T): void;
  read(reader: BinaryReader): T;
}

// A field named like a member of Object.prototype (`toString`, `constructor`, `__proto__`…) is
// read only as an own property: `{}` lacks it rather than holding the inherited member. Other
// fields are read with a plain `value[key]` (fast, and getters of class instances still work).
function inheritedName(key: string): boolean {
  return key in Object.prototype;
}

function ownField(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function objectType<S extends Shape>(shape: S): Type<ShapeValue<S>> {
  if (!isPlainObject(shape)) throw invalidArgument('object: expected an object of field types');
  const keys = Object.keys(shape);
  const types = keys.map((key) => {
    const type = shape[key];
    assertType(type, `object field '${key}'`);
    return type as Type<unknown>;
  });
  const count = keys.length;
  const optional = types.map((type) => type.optional);
  const guarded = keys.map(inheritedName);
  const anyGuarded = guarded.includes(true);
  const signature = `object{${keys.map((k, i) => `${JSON.stringify(k)}:${types[i]!.signature}`).join(',')}}`;
  const notObject = (v: unknown) => `expected an object, got ${describe(v)}`;
  const notObjectError = (v: unknown) => new FieldError(VALIDATION, notObject(v));
  const field = (record: Record<string, unknown>, i: number): unknown =>
    guarded[i] ? ownField(record, keys[i]!) : record[keys[i]!];

  // Generated code. Decoded objects keep declaration order: an object literal holds the fields
  // up to the first optional one, the rest are assigned in order (optional ones when present).
  // `__proto__` is a computed key in the literal and defined with setProperty after it, so it
  // becomes an own property rather than the prototype.
  const locals = types.map((_, i) => `const t${i} = types[${i}];`).join('\n');
  const name = (i: number) => JSON.stringify(keys[i]);
  const readField = (i: number) =>
    guarded[i]
      ? `(hasOwn(value, ${name(i)}) ? value[${name(i)}] : undefined)`
      : `value[${name(i)}]`;
  const firstOptional = optional.indexOf(true) < 0 ? count : optional.indexOf(true);
  const literalKey = (i: number) => (keys[i] === '__proto__' ? `[${name(i)}]` : name(i));
  const assign = (i: number) =>
    keys[i] === '__proto__' ? `setProperty(out, ${name(i)}, a${i});` : `out[${name(i)}] = a${i};`;
  const assignments = keys
    .map((_, i) => {
      if (i < firstOptional) return '';
      return optional[i] ? `      if (a${i} !== undefined) ${assign(i)}` : `      ${assign(i)}`;
    })
    .filter((x) => x !== '')
    .join('\n');
  const compiled = compile<Compiled<ShapeValue<S>>>(
    ['types', 'keys', 'isPlainObject', 'notObjectError', 'addSegment', 'hasOwn', 'setProperty'],
    `${locals}
return {
  write(w, value) {
    if (!isPlainObject(value)) throw notObjectError(value);
    let i = 0;
    try {
${keys.map((_, i) => `      t${i}.write(w, ${readField(i)}); i = ${i + 1};`).join('\n')}
    } catch (error) {
      throw addSegment(error, keys[i]);
    }
  },
  read(r) {
    let i = 0;
    try {
${keys.map((_, i) => `      const a${i} = t${i}.read(r); i = ${i + 1};`).join('\n')}
      const out = { ${keys
        .slice(0, firstOptional)
        .map((_, i) => `${literalKey(i)}: a${i}`)
        .join(', ')} };
${assignments}
      return out;
    } catch (error) {
      throw addSegment(error, keys[i]);
    }
  },
};`,
    [types, keys, isPlainObject, notObjectError, addSegment, Object.hasOwn, setProperty],
  );
  return {
    kind: 'object',
    signature,
    optional: false,
    minBits: types.reduce((sum, type) => sum + type.minBits, 0),
    write:
      compiled?.write ??
      ((w, value) => {
        if (!isPlainObject(value)) throw notObjectError(value);
        const record = value as Record<string, unknown>;
        let i = 0;
        try {
          if (anyGuarded) for (; i < count; i++) types[i]!.write(w, field(record, i));
          else for (; i < count; i++) types[i]!.write(w, record[keys[i]!]);
        } catch (error) {
          throw addSegment(error, keys[i]!);
        }
      }),
    read:
      compiled?.read ??
      ((r) => {
        const out: Record<string, unknown> = {};
        let i = 0;
        try {
          for (; i < count; i++) {
            const v = types[i]!.read(r);
            if (v !== undefined || !optional[i]) setProperty(out, keys[i]!, v);
          }
        } catch (error) {
          throw addSegment(error, keys[i]!);
        }
        return out as ShapeValue<S>;
      }),
    check(value, path, issues) {
      if (!isPlainObject(value)) return issue(issues, path, notObject(value));
      for (let i = 0; i < count; i++) {
        path.push(keys[i]!);
        types[i]!.check(field(value, i), path, issues);
        path.pop();
      }
    },
  };
}

/** Options of `t.array`. */
export interface ArrayOptions {
  /** Maximum number of items. */
  maxLength: number;
}

/**
 * Items of an array, record or map whose type takes no bits (`t.literal`, `t.object({})`, a
 * one-value enum…) cost nothing on the wire, so the remaining bytes cannot bound their count:
 * at most this many are encoded, decoded or validated per message (per reset of the writer or
 * reader), whatever the declared maximum.
 */
const MAX_ZERO_BIT_ITEMS = 65_536;
const zeroBitReason = (): string => `more than ${MAX_ZERO_BIT_ITEMS} zero-bit items in one message`;

function zeroBitError(total: number): FieldError {
  return new FieldError(VALIDATION, `${zeroBitReason()} (${total})`);
}

/** Encode side of the zero-bit budget: call with the count of a container of zero-bit items. */
function spendZeroBitItems(w: BinaryWriter, count: number): void {
  const total = w.addZeroBitItems(count);
  if (total > MAX_ZERO_BIT_ITEMS) throw zeroBitError(total);
}

// Validation counts per traversal: one `issues` array is one traversal (see `collectIssues`).
const zeroBitChecked = new WeakMap<ValidationIssue[], number>();

function checkZeroBitItems(count: number, path: PathSegment[], issues: ValidationIssue[]): void {
  const before = zeroBitChecked.get(issues) ?? 0;
  const total = before + count;
  zeroBitChecked.set(issues, total);
  if (total > MAX_ZERO_BIT_ITEMS && before <= MAX_ZERO_BIT_ITEMS)
    issue(issues, path, zeroBitReason());
}

/** Refuses a decoded count before anything is allocated for it. */
function checkCount(r: BinaryReader, count: number, max: number, minBits: number, what: string) {
  if (count > max) throw new FieldError(VALIDATION, `more than ${max} ${what} (${count})`);
  if (minBits === 0) {
    const total = r.addZeroBitItems(count);
    if (total > MAX_ZERO_BIT_ITEMS) throw zeroBitError(total);
  } else if (count * minBits > r.remainingBits)
    throw new FieldError(DECODE, `truncated: ${count} ${what} cannot fit in the remaining bytes`);
}

function arrayType<T>(item: Type<T>, options: ArrayOptions): Type<T[]> {
  assertType(item, 'array');
  const maxLength = checkBound('array: maxLength', options?.maxLength);
  const notArray = (v: unknown) => `expected an array, got ${describe(v)}`;
  const notArrayError = (v: unknown) => new FieldError(VALIDATION, notArray(v));
  const tooManyError = () => new FieldError(VALIDATION, `more than ${maxLength} items`);
  const zeroBit = item.minBits === 0;
  const compiled = compile<Compiled<T[]>>(
    [
      'item',
      'maxLength',
      'notArrayError',
      'tooManyError',
      'addSegment',
      'checkCount',
      'spendZeroBitItems',
    ],
    `return {
  write(w, value) {
    if (!Array.isArray(value)) throw notArrayError(value);
    const length = value.length;
    if (length > maxLength) throw tooManyError();${zeroBit ? '\n    spendZeroBitItems(w, length);' : ''}
    w.writeVarUint(length);
    let i = 0;
    try {
      for (; i < length; i++) item.write(w, value[i]);
    } catch (error) {
      throw addSegment(error, i);
    }
  },
  read(r) {
    const length = r.readVarUint();
    checkCount(r, length, maxLength, item.minBits, 'items');
    const out = new Array(length);
    let i = 0;
    try {
      for (; i < length; i++) out[i] = item.read(r);
    } catch (error) {
      throw addSegment(error, i);
    }
    return out;
  },
};`,
    [item, maxLength, notArrayError, tooManyError, addSegment, checkCount, spendZeroBitItems],
  );
  return {
    kind: 'array',
    signature: `array(${maxLength},${item.signature})`,
    optional: false,
    minBits: 8,
    write:
      compiled?.write ??
      ((w, value) => {
        if (!Array.isArray(value)) throw notArrayError(value);
        const length = value.length;
        if (length > maxLength) throw tooManyError();
        if (zeroBit) spendZeroBitItems(w, length);
        w.writeVarUint(length);
        let i = 0;
        try {
          for (; i < length; i++) item.write(w, value[i] as T);
        } catch (error) {
          throw addSegment(error, i);
        }
      }),
    read:
      compiled?.read ??
      ((r) => {
        const length = r.readVarUint();
        checkCount(r, length, maxLength, item.minBits, 'items');
        const out = new Array<T>(length);
        let i = 0;
        try {
          for (; i < length; i++) out[i] = item.read(r);
        } catch (error) {
          throw addSegment(error, i);
        }
        return out;
      }),
    check(value, path, issues) {
      if (!Array.isArray(value)) return issue(issues, path, notArray(value));
      if (value.length > maxLength) issue(issues, path, `more than ${maxLength} items`);
      if (zeroBit) checkZeroBitItems(value.length, path, issues);
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        item.check(value[i], path, issues);
        path.pop();
      }
    },
  };
}

/** Options of `t.record` and `t.map`. */
export interface RecordOptions {
  /** Maximum number of entries. */
  maxSize: number;
}

function recordType<V>(
  keyType: Type<string>,
  valueType: Type<V>,
  options: RecordOptions,
): Type<Record<string, V>> {
  assertType(keyType, 'record key');
  assertType(valueType, 'record value');
  const maxSize = checkBound('record: maxSize', options?.maxSize);
  const entryBits = keyType.minBits + valueType.minBits;
  const notObject = (v: unknown) => `expected an object, got ${describe(v)}`;
  return {
    kind: 'record',
    signature: `record(${maxSize},${keyType.signature},${valueType.signature})`,
    optional: false,
    minBits: 8,
    write(w, value) {
      if (!isPlainObject(value)) throw new FieldError(VALIDATION, notObject(value));
      const keys = Object.keys(value);
      if (keys.length > maxSize) throw new FieldError(VALIDATION, `more than ${maxSize} entries`);
      if (entryBits === 0) spendZeroBitItems(w, keys.length);
      w.writeVarUint(keys.length);
      for (const key of keys) {
        try {
          keyType.write(w, key);
          valueType.write(w, value[key] as V);
        } catch (error) {
          throw addSegment(error, key);
        }
      }
    },
    read(r) {
      const size = r.readVarUint();
      checkCount(r, size, maxSize, entryBits, 'entries');
      const out: Record<string, V> = {};
      for (let i = 0; i < size; i++) {
        let key: string | undefined;
        try {
          key = keyType.read(r);
          if (Object.hasOwn(out, key)) throw new FieldError(DECODE, 'duplicate key');
          setProperty(out, key, valueType.read(r));
        } catch (error) {
          throw addSegment(error, key ?? i);
        }
      }
      return out;
    },
    check(value, path, issues) {
      if (!isPlainObject(value)) return issue(issues, path, notObject(value));
      const keys = Object.keys(value);
      if (keys.length > maxSize) issue(issues, path, `more than ${maxSize} entries`);
      if (entryBits === 0) checkZeroBitItems(keys.length, path, issues);
      for (const key of keys) {
        path.push(key);
        keyType.check(key, path, issues);
        valueType.check(value[key], path, issues);
        path.pop();
      }
    },
  };
}

function mapType<K, V>(
  keyType: Type<K>,
  valueType: Type<V>,
  options: RecordOptions,
): Type<Map<K, V>> {
  assertType(keyType, 'map key');
  assertType(valueType, 'map value');
  const maxSize = checkBound('map: maxSize', options?.maxSize);
  const entryBits = keyType.minBits + valueType.minBits;
  const notMap = (v: unknown) => `expected a Map, got ${describe(v)}`;
  const segment = (key: unknown, i: number): PathSegment =>
    typeof key === 'string' || typeof key === 'number' ? key : i;
  return {
    kind: 'map',
    signature: `map(${maxSize},${keyType.signature},${valueType.signature})`,
    optional: false,
    minBits: 8,
    write(w, value) {
      if (!(value instanceof Map)) throw new FieldError(VALIDATION, notMap(value));
      if (value.size > maxSize) throw new FieldError(VALIDATION, `more than ${maxSize} entries`);
      if (entryBits === 0) spendZeroBitItems(w, value.size);
      w.writeVarUint(value.size);
      let i = 0;
      for (const [key, entry] of value) {
        try {
          keyType.write(w, key);
          valueType.write(w, entry);
        } catch (error) {
          throw addSegment(error, segment(key, i));
        }
        i++;
      }
    },
    read(r) {
      const size = r.readVarUint();
      checkCount(r, size, maxSize, entryBits, 'entries');
      const out = new Map<K, V>();
      for (let i = 0; i < size; i++) {
        let key: K | undefined;
        try {
          key = keyType.read(r);
          if (out.has(key)) throw new FieldError(DECODE, 'duplicate key');
          out.set(key, valueType.read(r));
        } catch (error) {
          throw addSegment(error, segment(key, i));
        }
      }
      return out;
    },
    check(value, path, issues) {
      if (!(value instanceof Map)) return issue(issues, path, notMap(value));
      if (value.size > maxSize) issue(issues, path, `more than ${maxSize} entries`);
      if (entryBits === 0) checkZeroBitItems(value.size, path, issues);
      let i = 0;
      for (const [key, entry] of value) {
        path.push(segment(key, i++));
        keyType.check(key, path, issues);
        valueType.check(entry, path, issues);
        path.pop();
      }
    },
  };
}

function sized(name: string, bits: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32)
    throw invalidArgument(`${name}: bits must be an integer in [1, 32], got ${describe(bits)}`);
  return bits;
}

export {
  angleType,
  arrayType,
  assertType,
  boolType,
  bytesType,
  enumType,
  floatType,
  integerType,
  isPlainObject,
  mapType,
  nullableType,
  objectType,
  optionalType,
  quantizedType,
  recordType,
  sized,
  stringType,
  varintType,
  varuintType,
};
