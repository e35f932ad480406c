import { ErrorCode, TickwireError } from '@tickwire/core';
import type { Infer, Shape, ShapeValue, Type } from '@tickwire/serialization';

/** The most fields an entity type may have: a field mask is one 32-bit word. */
export const MAX_ENTITY_FIELDS = 32;

/** The values of every field of an entity of shape `S`. */
export type EntityValues<S extends Shape> = ShapeValue<S>;

/** The name of a field of shape `S`. */
export type FieldName<S extends Shape> = keyof S & string;

/** The value type of field `K` of shape `S`. */
export type FieldValue<S extends Shape, K extends FieldName<S>> = Infer<S[K]>;

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
}

/** Describes an entity type; register it with `createWorld({ types })` and `createReplica({ types })`. */
export function defineEntityType<S extends Shape>(name: string, shape: S): EntityType<S> {
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
  const indices = new Map<string, number>(fieldNames.map((field, index) => [field, index]));
  return {
    name,
    shape,
    fieldNames,
    fieldTypes,
    fieldIndex: (field) => indices.get(field),
  };
}

/** Checks a list of types given to a world or a replica. */
export function checkTypes(types: readonly EntityType[], owner: string): void {
  const names = new Set<string>();
  for (const type of types) {
    if (names.has(type.name))
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `${owner}: entity type '${type.name}' is listed twice`,
      );
    names.add(type.name);
  }
}

/** Bits needed to write an index below `count`. */
export function bitsFor(count: number): number {
  let bits = 0;
  while (2 ** bits < count) bits++;
  return bits;
}
