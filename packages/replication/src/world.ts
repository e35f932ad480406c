import { ErrorCode, TickwireError } from '@tickwire/core';
import type { PathSegment, Shape, ValidationIssue } from '@tickwire/serialization';
import { formatPath } from '@tickwire/serialization';
import {
  checkTypes,
  defineEntityType,
  type EntityType,
  type EntityTypeOptions,
  type EntityValues,
  type FieldName,
  type FieldValue,
} from './entity-type.js';
import { frozenCopy, valuesEqual } from './values.js';

/** Identifies a client to the server (a connection id, a player id…). */
export type ClientId = string | number;

/** A live entity of a world: read and write its fields; every write is tracked. */
export interface Entity<S extends Shape = Shape> {
  /** Index of the entity in its world; reused (with a new generation) after a despawn. */
  readonly id: number;
  /** Incremented each time `id` is reused, so a stale handle never names a new entity. */
  readonly generation: number;
  readonly type: EntityType<S>;
  /** False after `world.despawn`. */
  readonly alive: boolean;
  /** The client that owns the entity's `owned` fields, if any. */
  readonly owner: ClientId | undefined;
  /**
   * A field's value. Objects and arrays come back frozen (copy them to change them and write
   * the copy back with `set`), byte arrays and maps as copies.
   */
  get<K extends FieldName<S>>(field: K): FieldValue<S, K>;
  /**
   * Writes a field (validated against its type; the value is copied). Writing a value equal
   * to the current one is not a change.
   */
  set<K extends FieldName<S>>(field: K, value: FieldValue<S, K>): void;
  /** Gives the entity's `owned` fields to a client (or back to the server with undefined). */
  setOwner(owner: ClientId | undefined): void;
  /** Every field (see `get`). */
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
  defineType<S extends Shape>(
    name: string,
    shape: S,
    options?: EntityTypeOptions<S>,
  ): EntityType<S>;
  /** Creates an entity with every field set (values are validated and copied). */
  spawn<S extends Shape>(
    type: EntityType<S>,
    values: EntityValues<S>,
    options?: { owner?: ClientId },
  ): Entity<S>;
  /** Removes an entity. Its id is reused later, with the next generation. */
  despawn(entity: Entity): void;
  /** The live entity with this id. */
  get(id: number): Entity | undefined;
  /** Live entities in id order. */
  entities(): IterableIterator<Entity>;
}

/**
 * A world's version counter and, by entity id, the version of each live entity's last change
 * (+Infinity for a free id): the encoder skips unchanged entities reading only this array.
 */
export class WorldVersions {
  version = 0;
  readonly changed: number[] = [];
  /**
   * Ids whose `changed` moved, in order: entry `logStart + i` is `log[i]`. An encoder that read
   * up to entry p finds every id changed since among the entries from p on, so it can skip a
   * scan of every id. An id is logged once between two reads (`readMark`); when the log is
   * full, its older half is dropped, and a reader left before `logStart` scans every id again.
   */
  log = new Int32Array(256);
  logLength = 0;
  logStart = 0;
  /** The furthest entry any reader has read up to. */
  readMark = 0;
  /** By id: one past the id's last entry (0: never logged). */
  private loggedAt = new Float64Array(64);

  /** Makes room for id `id` (spawns call it; ids are allocated there). */
  reserve(id: number): void {
    if (id < this.loggedAt.length) return;
    const grown = new Float64Array(Math.max(id + 1, this.loggedAt.length * 2));
    grown.set(this.loggedAt);
    this.loggedAt = grown;
  }

  /** Sets `changed[id]` to `version` and logs the id (`reserve` made room for it). */
  touch(id: number, version: number): void {
    this.changed[id] = version;
    // Logged since the furthest read: every reader will still come across that entry.
    if (this.loggedAt[id]! > this.readMark) return;
    if (this.logLength === this.log.length) this.makeRoom();
    this.log[this.logLength++] = id;
    this.loggedAt[id] = this.logStart + this.logLength;
  }

  /** One past the last entry. */
  get logEnd(): number {
    return this.logStart + this.logLength;
  }

  private makeRoom(): void {
    if (this.log.length < MAX_LOG_ENTRIES) {
      const grown = new Int32Array(this.log.length * 2);
      grown.set(this.log);
      this.log = grown;
      return;
    }
    const half = this.logLength >> 1;
    this.log.copyWithin(0, half, this.logLength);
    this.logStart += half;
    this.logLength -= half;
  }
}

/** Entries the change log grows to before it drops its older half. */
const MAX_LOG_ENTRIES = 1 << 16;

/** What the server encoder reads from a world; not part of the public API. */
export interface WorldInternals {
  readonly slots: readonly (WorldEntity | undefined)[];
  readonly versions: WorldVersions;
  typeIndex(type: EntityType): number;
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

/** Values that `get` hands out as copies because they cannot be frozen. */
const copyOut = (value: unknown): unknown =>
  typeof value === 'object' && value !== null && (ArrayBuffer.isView(value) || value instanceof Map)
    ? structuredClone(value)
    : value;

/** A world's entity; fields are stored by wire index. */
export class WorldEntity<S extends Shape = Shape> implements Entity<S> {
  alive = true;
  owner: ClientId | undefined;
  /** World version of the spawn. */
  readonly spawnVersion: number;
  /** World version at which each field last changed. */
  readonly fieldVersions: number[];
  /** Integer images of fields whose type has one (`type.packed`), 0 for the others. */
  readonly fieldImages: number[];
  /** Largest of `fieldVersions` and `metaVersion`: skips an unchanged entity in one compare. */
  changeVersion: number;
  /** Version of the last change clients must see as a full respawn (spawn, owner change). */
  metaVersion: number;

  constructor(
    readonly id: number,
    readonly generation: number,
    readonly type: EntityType<S>,
    readonly typeIndex: number,
    readonly fieldValues: unknown[],
    spawnVersion: number,
    owner: ClientId | undefined,
    private readonly versions: WorldVersions,
  ) {
    this.spawnVersion = spawnVersion;
    this.fieldVersions = new Array<number>(fieldValues.length).fill(spawnVersion);
    // Integer images of the numeric fields, computed once per write (every client's encoder
    // reads them; see field-coding.ts).
    this.fieldImages = new Array<number>(fieldValues.length).fill(0);
    for (let i = 0; i < fieldValues.length; i++) {
      const packed = type.fieldTypes[i]!.packed;
      if (packed !== undefined) this.fieldImages[i] = packed.pack(fieldValues[i]);
    }
    this.changeVersion = spawnVersion;
    this.metaVersion = spawnVersion;
    this.owner = owner;
    versions.reserve(id);
    versions.touch(id, spawnVersion);
  }

  get<K extends FieldName<S>>(field: K): FieldValue<S, K> {
    return copyOut(this.fieldValues[this.index(field)]) as FieldValue<S, K>;
  }

  set<K extends FieldName<S>>(field: K, value: FieldValue<S, K>): void {
    const index = this.index(field);
    // The message is built only when it is thrown (set is the hot path of every game loop).
    if (!this.alive) this.checkAlive(`set '${field}'`);
    this.write(index, value);
  }

  /** Writes a field by wire index; returns false when the value did not change. */
  write(index: number, value: unknown, author?: ClientId): boolean {
    const current = this.fieldValues[index];
    if (Object.is(current, value)) return false;
    const packed = this.type.fieldTypes[index]!.packed;
    // A numeric field validates and packs in one call (the hot path); -1 means invalid.
    const image = packed?.imageOf !== undefined ? packed.imageOf(value) : -1;
    if (image >= 0) {
      this.fieldValues[index] = value;
      this.fieldImages[index] = image;
    } else {
      const primitive = typeof value !== 'object' || value === null;
      checkField(this.type as unknown as EntityType, index, value);
      if (!primitive && valuesEqual(current, value)) return false;
      this.fieldValues[index] = primitive ? value : frozenCopy(value);
      if (packed !== undefined) this.fieldImages[index] = packed.pack(value);
    }
    const version = ++this.versions.version;
    this.fieldVersions[index] = version;
    this.changeVersion = version;
    this.versions.touch(this.id, version);
    // Owned fields remember who wrote them last (undefined: the server), for conflicts.
    if (this.type.ownedMask !== 0 && ((this.type.ownedMask >>> index) & 1) === 1) {
      this.authors ??= [];
      this.authors[index] = author;
    }
    return true;
  }

  /** Who last wrote each owned field: a client id, or undefined for the server. */
  authors: (ClientId | undefined)[] | undefined;

  setOwner(owner: ClientId | undefined): void {
    this.checkAlive('set the owner');
    if (owner !== undefined && typeof owner !== 'string' && typeof owner !== 'number')
      throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'owner must be a client id');
    if (owner === this.owner) return;
    this.owner = owner;
    const version = ++this.versions.version;
    this.metaVersion = version;
    this.changeVersion = version;
    this.versions.touch(this.id, version);
  }

  values(): EntityValues<S> {
    const out: Record<string, unknown> = {};
    const names = this.type.fieldNames;
    for (let i = 0; i < names.length; i++) out[names[i]!] = copyOut(this.fieldValues[i]);
    return out as EntityValues<S>;
  }

  private checkAlive(what: string): void {
    if (!this.alive)
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        `entity ${this.id} (${this.type.name}) was despawned; cannot ${what}`,
      );
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

/** Throws VALIDATION_FAILED with the field path when `value` does not fit field `index`. */
export function checkField(type: EntityType, index: number, value: unknown): void {
  const fieldType = type.fieldTypes[index]!;
  // Numeric leaves share one (normally empty) issue list; other types get their own, since
  // serialization keys per-message validation budgets by the list.
  const found = fieldType.packed !== undefined ? issues : [];
  fieldType.check(value, noPath, found);
  if (found.length === 0) return;
  const issue = found[0]!;
  const field = type.fieldNames[index]!;
  const path = issue.path.length > 0 ? `${field}.${formatPath(issue.path)}` : field;
  found.length = 0;
  throw new TickwireError(
    ErrorCode.VALIDATION_FAILED,
    `entity type '${type.name}': field '${path}': ${issue.message}`,
    { details: { type: type.name, path } },
  );
}

/** Creates an empty world. */
export function createWorld(options: WorldOptions = {}): World {
  const types = checkTypes(options.types ?? [], 'createWorld');
  const typeIndices = new Map<EntityType, number>(types.map((type, index) => [type, index]));
  const slots: (WorldEntity | undefined)[] = [];
  const generations: number[] = [];
  // Freed ids wait in a queue, so an id is reused as late as possible (easier debugging).
  let freeIds: number[] = [];
  let freeHead = 0;
  const versions = new WorldVersions();
  let size = 0;

  const typeIndex = (type: EntityType): number => {
    const index = typeIndices.get(type);
    if (index === undefined)
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `entity type '${type?.name}' is not registered in this world`,
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
      return versions.version;
    },
    defineType(name, shape, typeOptions) {
      const type = defineEntityType(name, shape, typeOptions);
      checkTypes([...types, type as unknown as EntityType], 'defineType');
      typeIndices.set(type as unknown as EntityType, types.length);
      types.push(type as unknown as EntityType);
      return type;
    },
    spawn(type, values, spawnOptions) {
      const index = typeIndex(type as unknown as EntityType);
      if (typeof values !== 'object' || values === null)
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'spawn: values must be an object');
      const owner = spawnOptions?.owner;
      if (owner !== undefined && typeof owner !== 'string' && typeof owner !== 'number')
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'spawn: owner must be a client id');
      const source = values as Record<string, unknown>;
      const fieldValues = type.fieldNames.map((field) =>
        Object.hasOwn(source, field) ? source[field] : undefined,
      );
      for (let i = 0; i < fieldValues.length; i++) {
        checkField(type as unknown as EntityType, i, fieldValues[i]);
        fieldValues[i] = frozenCopy(fieldValues[i]);
      }
      let id: number;
      let generation = 0;
      if (freeHead < freeIds.length) {
        id = freeIds[freeHead++]!;
        generation = generations[id]! + 1;
        if (freeHead > 64 && freeHead * 2 > freeIds.length) {
          freeIds = freeIds.slice(freeHead);
          freeHead = 0;
        }
      } else {
        id = slots.length;
      }
      generations[id] = generation;
      const entity = new WorldEntity(
        id,
        generation,
        type,
        index,
        fieldValues,
        ++versions.version,
        owner,
        versions,
      );
      slots[id] = entity as unknown as WorldEntity;
      size++;
      return entity;
    },
    despawn(entity) {
      const live = slots[entity?.id];
      if (live === undefined || live !== entity)
        throw new TickwireError(
          ErrorCode.NOT_FOUND,
          `despawn: entity ${entity?.id} (generation ${entity?.generation}) is not alive in this world`,
        );
      live.alive = false;
      slots[entity.id] = undefined;
      versions.touch(entity.id, Number.POSITIVE_INFINITY);
      size--;
      versions.version++;
      freeIds.push(entity.id);
    },
    get(id) {
      return slots[id];
    },
    *entities() {
      for (const entity of slots) if (entity !== undefined) yield entity;
    },
  };

  internalsOf.set(world, { slots, versions, typeIndex });
  return world;
}
