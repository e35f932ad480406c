import { ErrorCode, TickwireError } from '@tickwire/core';
import type { PathSegment, Shape, ValidationIssue } from '@tickwire/serialization';
import { formatPath } from '@tickwire/serialization';
import {
  checkTypes,
  defineEntityType,
  type EntityType,
  type EntityValues,
  type FieldName,
  type FieldValue,
} from './entity-type.js';

/** A live entity of a world: read and write its fields; every write is tracked. */
export interface Entity<S extends Shape = Shape> {
  /** Index of the entity in its world; reused after a despawn once every client has seen it. */
  readonly id: number;
  /** Incremented each time `id` is reused, so a stale handle never names a new entity. */
  readonly generation: number;
  readonly type: EntityType<S>;
  /** False after `world.despawn`. */
  readonly alive: boolean;
  get<K extends FieldName<S>>(field: K): FieldValue<S, K>;
  /** Writes a field (validated against its type). Writing the same value again is not a change. */
  set<K extends FieldName<S>>(field: K, value: FieldValue<S, K>): void;
  /** A copy of every field. */
  values(): EntityValues<S>;
}

/** Options of {@link createWorld}. */
export interface WorldOptions {
  /** Entity types, in wire order; more can be added with `defineType`. @default [] */
  types?: readonly EntityType[];
}

/** The server's set of entities. */
export interface World {
  /** Registered types in wire order (the index is what travels). */
  readonly types: readonly EntityType[];
  /** Number of live entities. */
  readonly size: number;
  /** Increases on every spawn, despawn and field change. */
  readonly version: number;
  /** Defines and registers a type (the client must list the same types in the same order). */
  defineType<S extends Shape>(name: string, shape: S): EntityType<S>;
  /** Creates an entity with every field set. */
  spawn<S extends Shape>(type: EntityType<S>, values: EntityValues<S>): Entity<S>;
  /** Removes an entity; its id is reused only after every client acknowledged the removal. */
  despawn(entity: Entity): void;
  /** The live entity with this id. */
  get(id: number): Entity | undefined;
  /** Live entities in id order. */
  entities(): IterableIterator<Entity>;
}

/** A removed entity kept until no client's baseline predates the removal. */
export interface Tombstone {
  readonly id: number;
  readonly generation: number;
  readonly spawnVersion: number;
  readonly despawnVersion: number;
}

/** What the server encoder reads from a world; not part of the public API. */
export interface WorldInternals {
  readonly slots: readonly (WorldEntity | undefined)[];
  readonly tombstones: readonly Tombstone[];
  typeIndex(type: EntityType): number;
  /** Drops tombstones no baseline needs (despawned at or before `version`) and frees their ids. */
  pruneTombstones(version: number): void;
  version(): number;
}

const internalsOf = new WeakMap<World, WorldInternals>();

/** The encoder's view of a world. */
export function worldInternals(world: World): WorldInternals {
  const internals = internalsOf.get(world);
  if (!internals)
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'not a world made by createWorld');
  return internals;
}

const noPath: PathSegment[] = [];
const issues: ValidationIssue[] = [];

/** A world's entity; fields are stored by wire index. */
export class WorldEntity<S extends Shape = Shape> implements Entity<S> {
  alive = true;
  /** World version at which each field last changed. */
  readonly fieldVersions: number[];
  /** Largest of `fieldVersions`: lets the encoder skip an unchanged entity in one compare. */
  changeVersion: number;

  constructor(
    readonly id: number,
    readonly generation: number,
    readonly type: EntityType<S>,
    readonly typeIndex: number,
    readonly fieldValues: unknown[],
    readonly spawnVersion: number,
    private readonly bump: () => number,
  ) {
    this.fieldVersions = new Array<number>(fieldValues.length).fill(spawnVersion);
    this.changeVersion = spawnVersion;
  }

  get<K extends FieldName<S>>(field: K): FieldValue<S, K> {
    return this.fieldValues[this.index(field)] as FieldValue<S, K>;
  }

  set<K extends FieldName<S>>(field: K, value: FieldValue<S, K>): void {
    const index = this.index(field);
    if (!this.alive)
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        `entity ${this.id} (${this.type.name}) was despawned; cannot set '${field}'`,
      );
    if (Object.is(this.fieldValues[index], value)) return;
    checkField(this.type as unknown as EntityType, index, value);
    this.fieldValues[index] = value;
    const version = this.bump();
    this.fieldVersions[index] = version;
    this.changeVersion = version;
  }

  values(): EntityValues<S> {
    const out: Record<string, unknown> = {};
    const names = this.type.fieldNames;
    for (let i = 0; i < names.length; i++) out[names[i]!] = this.fieldValues[i];
    return out as EntityValues<S>;
  }

  private index(field: string): number {
    const index = this.type.fieldIndex(field);
    if (index === undefined)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `entity type '${this.type.name}' has no field '${field}'`,
      );
    return index;
  }
}

function checkField(type: EntityType, index: number, value: unknown): void {
  issues.length = 0;
  type.fieldTypes[index]!.check(value, noPath, issues);
  if (issues.length === 0) return;
  const issue = issues[0]!;
  const field = type.fieldNames[index]!;
  const path = issue.path.length > 0 ? `${field}.${formatPath(issue.path)}` : field;
  issues.length = 0;
  throw new TickwireError(
    ErrorCode.VALIDATION_FAILED,
    `entity type '${type.name}': field '${path}': ${issue.message}`,
    { details: { type: type.name, path } },
  );
}

/** Creates an empty world. */
export function createWorld(options: WorldOptions = {}): World {
  const types: EntityType[] = [...(options.types ?? [])];
  checkTypes(types, 'createWorld');
  const typeIndices = new Map<EntityType, number>(types.map((type, index) => [type, index]));
  const slots: (WorldEntity | undefined)[] = [];
  const generations: number[] = [];
  const freeIds: number[] = [];
  let freeHead = 0;
  let tombstones: Tombstone[] = [];
  let version = 0;
  let size = 0;
  const bump = () => ++version;

  const typeIndex = (type: EntityType): number => {
    const index = typeIndices.get(type);
    if (index === undefined)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `entity type '${type.name}' is not registered in this world`,
      );
    return index;
  };

  const world: World = {
    get types() {
      return types;
    },
    get size() {
      return size;
    },
    get version() {
      return version;
    },
    defineType(name, shape) {
      const type = defineEntityType(name, shape);
      checkTypes([...types, type as unknown as EntityType], 'defineType');
      typeIndices.set(type as unknown as EntityType, types.length);
      types.push(type as unknown as EntityType);
      return type;
    },
    spawn(type, values) {
      const index = typeIndex(type as unknown as EntityType);
      if (typeof values !== 'object' || values === null)
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'spawn: values must be an object');
      const source = values as Record<string, unknown>;
      const fieldValues = type.fieldNames.map((field) => source[field]);
      for (let i = 0; i < fieldValues.length; i++)
        checkField(type as unknown as EntityType, i, fieldValues[i]);
      let id: number;
      let generation = 0;
      if (freeHead < freeIds.length) {
        id = freeIds[freeHead++]!;
        generation = generations[id]! + 1;
        if (freeHead === freeIds.length) {
          freeIds.length = 0;
          freeHead = 0;
        }
      } else {
        id = slots.length;
      }
      generations[id] = generation;
      const entity = new WorldEntity(id, generation, type, index, fieldValues, ++version, bump);
      slots[id] = entity as unknown as WorldEntity;
      size++;
      return entity;
    },
    despawn(entity) {
      const live = slots[entity.id];
      if (live === undefined || live !== entity)
        throw new TickwireError(
          ErrorCode.NOT_FOUND,
          `despawn: entity ${entity.id} (generation ${entity.generation}) is not alive in this world`,
        );
      live.alive = false;
      slots[entity.id] = undefined;
      size--;
      tombstones.push({
        id: live.id,
        generation: live.generation,
        spawnVersion: live.spawnVersion,
        despawnVersion: ++version,
      });
    },
    get(id) {
      return slots[id];
    },
    *entities() {
      for (const entity of slots) if (entity !== undefined) yield entity;
    },
  };

  internalsOf.set(world, {
    slots,
    get tombstones() {
      return tombstones;
    },
    typeIndex,
    pruneTombstones(upTo) {
      if (tombstones.length === 0 || tombstones[0]!.despawnVersion > upTo) return;
      // Tombstones are appended in despawn order, so the prunable ones are a prefix.
      let cut = 0;
      while (cut < tombstones.length && tombstones[cut]!.despawnVersion <= upTo) {
        freeIds.push(tombstones[cut]!.id);
        cut++;
      }
      tombstones = tombstones.slice(cut);
    },
    version: () => version,
  });
  return world;
}
