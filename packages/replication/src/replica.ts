import { Emitter, type Subscribable, subscribable } from '@tickwire/core';
import { BinaryReader, type Shape } from '@tickwire/serialization';
import { decodeError, toDecodeError } from './decode-error.js';
import {
  bitsFor,
  checkTypes,
  type EntityType,
  type EntityValues,
  type FieldName,
  type FieldValue,
} from './entity-type.js';
import { readIds } from './id-coding.js';
import { SNAPSHOT_FORMAT } from './server.js';

/** A client's copy of a server entity. */
export interface ReplicaEntity<S extends Shape = Shape> {
  readonly id: number;
  readonly generation: number;
  readonly type: EntityType<S>;
  get<K extends FieldName<S>>(field: K): FieldValue<S, K>;
  /** A copy of every field. */
  values(): EntityValues<S>;
  /** Narrows the entity to a type. */
  is<T extends Shape>(type: EntityType<T>): this is ReplicaEntity<T>;
}

/** Events of a {@link Replica}, emitted after a snapshot is fully applied. */
export type ReplicaEvents = {
  spawn: [entity: ReplicaEntity];
  /** `fields` lists the fields the snapshot carried. */
  update: [entity: ReplicaEntity, fields: readonly string[]];
  despawn: [entity: ReplicaEntity];
};

/** Options of {@link createReplica}. */
export interface ReplicaOptions {
  /** The server's entity types in the same order. */
  types: readonly EntityType[];
}

/** The client side of replication: applies snapshots and holds the replicated entities. */
export interface Replica extends Subscribable<ReplicaEvents> {
  /**
   * Applies a snapshot. Returns the snapshot id to acknowledge to the server, or undefined
   * when the snapshot is older than (or the same as) the last applied one and was ignored.
   * Throws DECODE_FAILED on malformed bytes, leaving the replica unchanged.
   */
  apply(bytes: Uint8Array): number | undefined;
  /** The id of the last applied snapshot, 0 before the first. */
  readonly lastSnapshotId: number;
  /** Number of entities. */
  readonly size: number;
  get(id: number): ReplicaEntity | undefined;
  /** Entities in no particular order. */
  entities(): IterableIterator<ReplicaEntity>;
}

class ReplicaRecord<S extends Shape = Shape> implements ReplicaEntity<S> {
  constructor(
    readonly id: number,
    readonly generation: number,
    readonly type: EntityType<S>,
    readonly fieldValues: unknown[],
    /** The first snapshot this entity was in: it was in every baseline since then. */
    readonly firstSnapshotId: number,
  ) {}

  get<K extends FieldName<S>>(field: K): FieldValue<S, K> {
    const index = this.type.fieldIndex(field);
    return (index === undefined ? undefined : this.fieldValues[index]) as FieldValue<S, K>;
  }

  values(): EntityValues<S> {
    const out: Record<string, unknown> = {};
    const names = this.type.fieldNames;
    for (let i = 0; i < names.length; i++) out[names[i]!] = this.fieldValues[i];
    return out as EntityValues<S>;
  }

  is<T extends Shape>(type: EntityType<T>): this is ReplicaEntity<T> {
    return (this.type as unknown) === type;
  }
}

interface DecodedSpawn {
  id: number;
  generation: number;
  type: EntityType;
  values: unknown[];
}

interface DecodedUpdate {
  entity: ReplicaRecord;
  mask: number;
  values: unknown[];
}

/** Creates a client replica. */
export function createReplica(options: ReplicaOptions): Replica {
  const types = [...options.types];
  checkTypes(types, 'createReplica');
  const typeBits = bitsFor(types.length);
  const entities = new Map<number, ReplicaRecord>();
  const emitter = new Emitter<ReplicaEvents>();
  const reader = new BinaryReader();
  const ids: number[] = [];
  let lastSnapshotId = 0;

  const namesOf = (type: EntityType, mask: number): string[] => {
    const names: string[] = [];
    for (let field = 0; field < type.fieldNames.length; field++)
      if ((mask >>> field) & 1) names.push(type.fieldNames[field]!);
    return names;
  };

  const apply = (bytes: Uint8Array): number | undefined => {
    // Decode everything first, touching nothing: a malformed snapshot must leave no trace.
    reader.reset(bytes);
    const format = reader.readBits(2);
    if (format !== SNAPSHOT_FORMAT) throw decodeError(`unknown format ${format}`);
    const snapshotId = reader.readVarUint();
    if (snapshotId === 0) throw decodeError('snapshot id 0');
    const baselineDistance = reader.readVarUint();
    if (baselineDistance > snapshotId - 1)
      throw decodeError(`baseline distance ${baselineDistance} before snapshot 1`);
    const baselineId = baselineDistance === 0 ? 0 : snapshotId - baselineDistance;
    if (snapshotId <= lastSnapshotId) return undefined;
    if (baselineId > lastSnapshotId)
      throw decodeError(
        `baseline ${baselineId} was never applied (last applied ${lastSnapshotId})`,
      );

    const despawns: [number, number][] = [];
    readIds(reader, ids);
    for (const id of ids) despawns.push([id, reader.readVarUint()]);

    const spawns: DecodedSpawn[] = [];
    const spawnedIds = new Set<number>();
    readIds(reader, ids);
    for (const id of ids) {
      const generation = reader.readVarUint();
      const typeIndex = reader.readBits(typeBits);
      const type = types[typeIndex];
      if (type === undefined) throw decodeError(`entity ${id}: unknown type index ${typeIndex}`);
      const values = type.fieldTypes.map((fieldType) => fieldType.read(reader));
      spawns.push({ id, generation, type, values });
      spawnedIds.add(id);
    }

    const updates: DecodedUpdate[] = [];
    readIds(reader, ids);
    for (const id of ids) {
      const entity = entities.get(id);
      if (entity === undefined || (baselineId === 0 ? true : entity.firstSnapshotId > baselineId))
        throw decodeError(`update of entity ${id}, which is not in baseline ${baselineId}`);
      if (spawnedIds.has(id)) throw decodeError(`entity ${id} is both spawned and updated`);
      const fieldTypes = entity.type.fieldTypes;
      const mask = reader.readBits(fieldTypes.length) >>> 0;
      if (mask === 0) throw decodeError(`update of entity ${id} with no fields`);
      const values: unknown[] = [];
      for (let field = 0; field < fieldTypes.length; field++)
        if ((mask >>> field) & 1) values[field] = fieldTypes[field]!.read(reader);
      updates.push({ entity, mask, values });
    }
    for (const [id] of despawns)
      if (updates.some((update) => update.entity.id === id))
        throw decodeError(`entity ${id} is both despawned and updated`);
    reader.end();

    // Commit.
    const spawnEvents: ReplicaRecord[] = [];
    const updateEvents: [ReplicaRecord, string[]][] = [];
    const despawnEvents: ReplicaRecord[] = [];
    const remove = (entity: ReplicaRecord) => {
      entities.delete(entity.id);
      despawnEvents.push(entity);
    };
    for (const [id, generation] of despawns) {
      const entity = entities.get(id);
      if (entity !== undefined && entity.generation === generation) remove(entity);
    }
    // Entities the client first saw after the baseline are absent unless spawned again here.
    for (const entity of entities.values())
      if ((baselineId === 0 || entity.firstSnapshotId > baselineId) && !spawnedIds.has(entity.id))
        remove(entity);
    for (const spawn of spawns) {
      const existing = entities.get(spawn.id);
      if (existing && existing.generation === spawn.generation && existing.type === spawn.type) {
        let mask = 0;
        for (let field = 0; field < spawn.values.length; field++) {
          if (!Object.is(existing.fieldValues[field], spawn.values[field])) mask |= 1 << field;
          existing.fieldValues[field] = spawn.values[field];
        }
        if (mask !== 0) updateEvents.push([existing, namesOf(existing.type, mask)]);
        continue;
      }
      if (existing) remove(existing);
      const entity = new ReplicaRecord(
        spawn.id,
        spawn.generation,
        spawn.type,
        spawn.values,
        snapshotId,
      );
      entities.set(spawn.id, entity);
      spawnEvents.push(entity);
    }
    for (const update of updates) {
      const { entity, mask, values } = update;
      for (let field = 0; field < entity.fieldValues.length; field++)
        if ((mask >>> field) & 1) entity.fieldValues[field] = values[field];
      updateEvents.push([entity, namesOf(entity.type, mask)]);
    }
    lastSnapshotId = snapshotId;

    for (const entity of despawnEvents) emitter.emit('despawn', entity);
    for (const entity of spawnEvents) emitter.emit('spawn', entity);
    for (const [entity, fields] of updateEvents) emitter.emit('update', entity, fields);
    return snapshotId;
  };

  return {
    apply(bytes) {
      try {
        return apply(bytes);
      } catch (error) {
        throw toDecodeError(error);
      }
    },
    get lastSnapshotId() {
      return lastSnapshotId;
    },
    get size() {
      return entities.size;
    },
    get: (id) => entities.get(id),
    entities: () => entities.values(),
    ...subscribable(emitter),
  };
}
