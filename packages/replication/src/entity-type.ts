import { ErrorCode, TickwireError } from '@tickwire/core';
import type { Infer, Shape, ShapeValue, Type } from '@tickwire/serialization';

/** The prototype of field lookups: an empty object with no prototype of its own. */
const NO_FIELDS: object = /* @__PURE__ */ Object.freeze(Object.create(null));
/** The most fields an entity type may have: a field mask is one 32-bit word. */
export const MAX_ENTITY_FIELDS = 32;

/** The values of every field of an entity of shape `S`. */
export type EntityValues<S extends Shape> = ShapeValue<S>;

/** The name of a field of shape `S`. */
export type FieldName<S extends Shape> = keyof S & string;

/** The value type of field `K` of shape `S`. */
export type FieldValue<S extends Shape, K extends FieldName<S>> = Infer<S[K]>;

/**
 * Predictive replication: the server skips sending an entity to a client while the client's
 * extrapolation of its last acknowledged state stays within `threshold` of the truth. The
 * client runs the same `extrapolate` (see `replica.extrapolate`).
 */
export interface DeadReckoning<S extends Shape = Shape> {
  /** The expected values `ticks` ticks after `values` were current (return a new object). */
  extrapolate(values: EntityValues<S>, ticks: number): EntityValues<S>;
  /** How far the actual values are from the extrapolated ones, in the game's units. */
  error(actual: EntityValues<S>, predicted: EntityValues<S>): number;
  /** The largest error that is not worth a send. */
  threshold: number;
}

/** Options of {@link defineEntityType}. */
export interface EntityTypeOptions<S extends Shape = Shape> {
  /**
   * Priority weight added each snapshot an entity waits to be sent under a byte budget;
   * higher is sent sooner. A per-client `priority` hook on the server multiplies it. @default 1
   */
  priority?: number;
  /**
   * Send an entity of this type at most once every this many snapshots (lower update rate
   * for unimportant entities). Spawns and removals are not delayed. @default 1
   */
  updateInterval?: number;
  /**
   * Under a byte budget, a changed entity waits at most this many snapshots: after that it
   * goes before every entity that has waited less. @default 30
   */
  maxInterval?: number;
  /** Optional dead-reckoning model (see {@link DeadReckoning}). */
  deadReckoning?: DeadReckoning<S>;
  /**
   * Fields the entity's owner (a client, see `entity.owner`) writes; the server validates
   * each change and the owner's snapshots leave these fields out. @default []
   */
  owned?: readonly FieldName<S>[];
}

/**
 * A kind of entity: its name and its fields, each a `@tickwire/serialization` `t.*` type.
 * Server and client must list the same types in the same order.
 */
export interface EntityType<S extends Shape = Shape> {
  /** A name for messages and debugging. */
  readonly name: string;
  /** The fields as given. */
  readonly shape: S;
  /** Field names in wire order (the order of the shape's keys). */
  readonly fieldNames: readonly string[];
  /** Field types in wire order. */
  readonly fieldTypes: readonly Type<unknown>[];
  /** The wire index of a field, or undefined for an unknown name. */
  fieldIndex(name: string): number | undefined;
  /** Priority weight under a byte budget. */
  readonly priority: number;
  /** Snapshots between two updates of one entity (1 = every snapshot). */
  readonly updateInterval: number;
  /** Longest wait, in snapshots, of a changed entity under a byte budget. */
  readonly maxInterval: number;
  readonly deadReckoning: DeadReckoning<S> | undefined;
  /** Bit mask (by wire index) of the fields the owner writes. */
  readonly ownedMask: number;
}

/** Describes an entity type; register it with `createWorld({ types })` and `createReplica({ types })`. */
export function defineEntityType<S extends Shape>(
  name: string,
  shape: S,
  options: EntityTypeOptions<S> = {},
): EntityType<S> {
  if (typeof name !== 'string' || name.length === 0)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'entity type name must be a non-empty string',
    );
  const fieldNames = Object.keys(shape) as FieldName<S>[];
  if (fieldNames.length === 0 || fieldNames.length > MAX_ENTITY_FIELDS)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `entity type '${name}' must have 1 to ${MAX_ENTITY_FIELDS} fields, got ${fieldNames.length}`,
    );
  const fieldTypes = fieldNames.map((field) => shape[field] as Type<unknown>);
  // An object in V8's fast mode (a prototype-less one is a slower dictionary) whose prototype
  // chain ends before Object.prototype, so inherited names (`toString`, anything added to
  // Object.prototype) are not fields. Fields are defined, not assigned, so one named
  // `__proto__` is an own property.
  const lookup: Record<string, number | undefined> = Object.create(NO_FIELDS);
  fieldNames.forEach((field, index) => {
    Object.defineProperty(lookup, field, { value: index, enumerable: true });
  });
  const priority = positive(name, 'priority', options.priority ?? 1, false);
  const updateInterval = positive(name, 'updateInterval', options.updateInterval ?? 1, true);
  const maxInterval = positive(name, 'maxInterval', options.maxInterval ?? 30, true);
  const model = options.deadReckoning;
  if (
    model !== undefined &&
    (typeof model.extrapolate !== 'function' ||
      typeof model.error !== 'function' ||
      !(model.threshold >= 0))
  )
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `entity type '${name}': deadReckoning needs extrapolate, error and a threshold >= 0`,
    );
  let ownedMask = 0;
  for (const field of options.owned ?? []) {
    const index = lookup[field];
    if (index === undefined)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `entity type '${name}': owned field '${field}' is not a field`,
      );
    ownedMask |= 1 << index;
  }
  return {
    name,
    shape,
    fieldNames,
    fieldTypes,
    fieldIndex: (field) => lookup[field],
    priority,
    updateInterval,
    maxInterval,
    deadReckoning: model,
    ownedMask: ownedMask >>> 0,
  };
}

function positive(type: string, name: string, value: number, integer: boolean): number {
  if (!(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value)))
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `entity type '${type}': ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`,
    );
  return value;
}

/**
 * Checks a list of types given to a world or a replica and returns a copy; with `owned` false,
 * types with owned fields are refused too (a replica without the `ownership` option).
 */
export function checkTypes(types: unknown, owner: string, owned = true): EntityType[] {
  if (!Array.isArray(types))
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${owner}: types must be an array of entity types`,
    );
  const names = new Set<string>();
  for (let i = 0; i < types.length; i++) {
    const type = types[i] as EntityType | undefined;
    if (typeof type?.fieldIndex !== 'function' || !Array.isArray(type.fieldTypes))
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${owner}: types[${i}] is not an entity type (defineEntityType makes one)`,
      );
    if (names.has(type.name))
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${owner}: entity type '${type.name}' is listed twice`,
      );
    if (!owned && type.ownedMask !== 0)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${owner}: entity type '${type.name}' has owned fields: pass ownership: ownedFields`,
      );
    names.add(type.name);
  }
  return [...types];
}

/** Bits needed to write an index below `count`. */
export function bitsFor(count: number): number {
  let bits = 0;
  while (2 ** bits < count) bits++;
  return bits;
}
