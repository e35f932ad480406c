import { Emitter, ErrorCode, type Subscribable, subscribable, TickwireError } from '@tickwire/core';
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
import { type DeltaDecoder, deltaDecoderOf, K_BITS, PLAIN, validParam } from './field-coding.js';
import { readIds } from './id-coding.js';
import { decodeOwned, encodeOwned, type OwnedEntry } from './ownership.js';
import { ACK_WINDOW, encodeAck, entityChecksum, SNAPSHOT_FORMAT } from './server.js';
import { frozenCopy, valuesEqual } from './values.js';
import { checkField } from './world.js';

/** A client's copy of a server entity. */
export interface ReplicaEntity<S extends Shape = Shape> {
  readonly id: number;
  readonly generation: number;
  readonly type: EntityType<S>;
  /** True when the server gave this client the entity's `owned` fields. */
  readonly owned: boolean;
  /** Server tick of the last snapshot that carried this entity. */
  readonly tick: number;
  /** A field's value; undefined for a field the server hides from this client. */
  get<K extends FieldName<S>>(field: K): FieldValue<S, K>;
  /** A copy of every field. */
  values(): EntityValues<S>;
  /** Narrows the entity to a type. */
  is<T extends Shape>(type: EntityType<T>): this is ReplicaEntity<T>;
}

/** Events of a {@link Replica}, emitted after a snapshot is fully applied. */
export type ReplicaEvents = {
  /** `reason`: `'spawn'`, created since this client's last acknowledged snapshot, or `'enter'`, an older entity that came into view (or whose fields the client may see changed). */
  spawn: [entity: ReplicaEntity, reason: 'spawn' | 'enter'];
  /** `fields` lists the fields whose values changed. */
  update: [entity: ReplicaEntity, fields: readonly string[]];
  /** `reason`: `'despawn'`, gone from the world, or `'leave'`, out of this client's view. */
  despawn: [entity: ReplicaEntity, reason: 'despawn' | 'leave'];
  /**
   * A snapshot's checksum did not match the replica's state (checksums on): the replica asks
   * for a full snapshot (see `takeResyncRequest`).
   */
  mismatch: [snapshotId: number];
  /** What a diagnosis found (see `replica.diagnose`). */
  desync: [desync: Desync];
  /** The server refused this client's write to an owned field, or overrode it. */
  rollback: [entity: ReplicaEntity, fields: readonly string[]];
};

/** The first difference between a replica and the server's expectation. */
export interface Desync {
  snapshotId: number;
  entityId: number;
  /** `entity 12 (player).hp`, or `entity 12` when the entity itself differs. */
  path: string;
  /** The field, when one field differs. */
  field?: string;
  expected: unknown;
  actual: unknown;
}

/** Options of {@link createReplica}. */
export interface ReplicaOptions {
  /** The server's entity types in the same order. */
  types: readonly EntityType[];
}

/** The client side of replication: applies snapshots and holds the replicated entities. */
export interface Replica extends Subscribable<ReplicaEvents> {
  /**
   * Applies a snapshot. Returns its id (acknowledge with `ack()`), or undefined when it is
   * not newer than the last applied one and was ignored. Throws DECODE_FAILED on malformed
   * bytes, leaving the replica unchanged.
   */
  apply(bytes: Uint8Array): number | undefined;
  /**
   * The acknowledgement to send to the server after `apply`: the last applied snapshot and
   * which of the 32 before it were applied (send it unreliably after every snapshot).
   */
  ack(): Uint8Array;
  /** The id of the last applied snapshot, 0 before the first. */
  readonly lastSnapshotId: number;
  /** Server tick of the last applied snapshot. */
  readonly tick: number;
  /** Number of entities. */
  readonly size: number;
  get(id: number): ReplicaEntity | undefined;
  /** Entities in no particular order. */
  entities(): IterableIterator<ReplicaEntity>;
  /**
   * The entity's values extrapolated to `tick` by its type's dead-reckoning model (its plain
   * values when the type has none).
   */
  extrapolate<S extends Shape>(entity: ReplicaEntity<S>, tick: number): EntityValues<S>;
  /**
   * Writes a field this client owns (`entity.owned` and the field listed in the type's
   * `owned`): applied at once locally, sent with the next `takeChanges`. Throws FORBIDDEN for
   * a field the client does not own, VALIDATION_FAILED for a bad value.
   */
  set<S extends Shape, K extends FieldName<S>>(
    entity: ReplicaEntity<S>,
    field: K,
    value: FieldValue<S, K>,
  ): void;
  /** The owned-field writes since the last call, to send reliably; undefined when none. */
  takeChanges(): Uint8Array | undefined;
  /**
   * Applies the server's corrections (`server.takeCorrections`): authoritative values of owned
   * fields, except those this client wrote again since; emits `rollback`. Throws DECODE_FAILED
   * on malformed bytes (nothing applied).
   */
  applyCorrections(bytes: Uint8Array): void;
  /**
   * After a `mismatch`: compares the state this replica held after the mismatched snapshot
   * with what the server expected (the bytes `server.resync(clientId, snapshotId)` returned),
   * returns the first difference and emits `desync`. Undefined when there is nothing to compare.
   */
  diagnose(bytes: Uint8Array): Desync | undefined;
  /** The snapshot id of the last checksum mismatch not yet diagnosed, 0 when none. */
  readonly mismatchedSnapshot: number;
}

class ReplicaRecord<S extends Shape = Shape> implements ReplicaEntity<S> {
  /**
   * Changes of numeric fields since the oldest baseline the server may still use, oldest
   * first, as flat triples (snapshot id, field index, previous image) from `undoHead` to
   * `undoEnd`: differences are decoded against the image as of the baseline.
   */
  undo: number[] | undefined;
  undoHead = 0;
  undoEnd = 0;

  constructor(
    readonly id: number,
    public generation: number,
    public type: EntityType<S>,
    readonly typeIndex: number,
    readonly fieldValues: unknown[],
    /** Integer images of the numeric fields (NaN for the others and for hidden fields). */
    readonly images: number[],
    /** Fields the server sent (the others are hidden from this client). */
    public mask: number,
    public owned: boolean,
    public tick: number,
    /** The snapshot that created this record: before it the client did not hold it. */
    public since: number,
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

  /** A numeric field's image as of snapshot `baseline` (the current one if unchanged since). */
  imageAt(field: number, baseline: number): number {
    const undo = this.undo;
    let image = this.images[field]!;
    if (undo === undefined) return image;
    for (let i = this.undoEnd - 3; i >= this.undoHead; i -= 3) {
      if (undo[i]! <= baseline) break;
      if (undo[i + 1] === field) image = undo[i + 2]!;
    }
    return image;
  }

  /**
   * Sets a field from snapshot `snapshotId`; a numeric field (`image` not NaN) logs its
   * previous image, dropping log entries no future baseline can predate.
   */
  change(field: number, value: unknown, image: number, snapshotId: number, baseline: number): void {
    this.fieldValues[field] = value;
    if (Number.isNaN(image)) {
      this.images[field] = image;
      return;
    }
    let undo = this.undo;
    if (undo === undefined) undo = this.undo = [];
    else {
      let head = this.undoHead;
      const end = this.undoEnd;
      while (head < end && (undo[head] as number) <= baseline) head += 3;
      // Everything dropped: start over at the front (the array keeps its storage).
      if (head === end) {
        this.undoEnd = 0;
        head = 0;
      }
      this.undoHead = head;
    }
    const end = this.undoEnd;
    undo[end] = snapshotId;
    undo[end + 1] = field;
    undo[end + 2] = this.images[field]!;
    this.undoEnd = end + 3;
    this.images[field] = image;
  }
}

interface Captured {
  generation: number;
  type: EntityType;
  mask: number;
  values: unknown[];
}

interface DecodedSpawn {
  id: number;
  generation: number;
  type: EntityType;
  typeIndex: number;
  entered: boolean;
  owned: boolean;
  mask: number;
  values: unknown[];
  images: number[];
}

/** Creates a client replica. */
export function createReplica(options: ReplicaOptions): Replica {
  const types = [...options.types];
  checkTypes(types, 'createReplica');
  const typeBits = bitsFor(types.length);
  const packedFields: (DeltaDecoder | undefined)[][] = types.map((type) =>
    type.fieldTypes.map((fieldType) => deltaDecoderOf(fieldType)),
  );
  const entities = new RecordTable();
  const emitter = new Emitter<ReplicaEvents>();
  const reader = new BinaryReader();
  const ids: number[] = [];
  const kTable: (number[] | undefined)[] = [];
  const updateEntities: ReplicaRecord[] = [];
  const updateMasks: number[] = [];
  const updateValues: unknown[] = [];
  const updateImages: number[] = [];
  /** Per type in the snapshot being read: default mask, exceptions, updates seen so far. */
  const defaultMasks: number[] = [];
  const exceptionMasks: (Map<number, number> | undefined)[] = [];
  const positions: number[] = [];
  const unions: number[] = [];
  let lastSnapshotId = 0;
  let lastTick = 0;
  /** Owned-field writes: a sequence number per write, pending fields per entity id. */
  let writeSequence = 0;
  let mismatch: { snapshotId: number; state: Map<number, Captured> } | undefined;
  const pendingWrites = new Map<number, { record: ReplicaRecord; mask: number }>();
  const writeSequences = new WeakMap<ReplicaRecord, number[]>();
  /** Bit i: snapshot `lastSnapshotId − 1 − i` was applied. */
  let earlier = 0;

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
    const tick = reader.readVarUint();
    const hasChecksum = reader.readBool();
    for (let typeIndex = 0; typeIndex < types.length; typeIndex++) {
      if (!reader.readBool()) {
        kTable[typeIndex] = undefined;
        unions[typeIndex] = 0;
        continue;
      }
      const packed = packedFields[typeIndex]!;
      const union = reader.readBits(packed.length) >>> 0;
      const ks: number[] = [];
      for (let field = 0; field < packed.length; field++) {
        if (packed[field] === undefined || ((union >>> field) & 1) === 0) continue;
        const k = reader.readBits(K_BITS);
        if (!validParam(k)) throw decodeError(`coding parameter ${k}`);
        ks[field] = k;
      }
      // The default mask, then the exceptions by position among this type's updates.
      defaultMasks[typeIndex] = reader.readBool() ? union : reader.readBits(packed.length) >>> 0;
      const exceptionCount = reader.readBool() ? reader.readVarUint() + 1 : 0;
      if (exceptionCount > reader.remainingBits)
        throw decodeError(`${exceptionCount} mask exceptions exceed the input`);
      let exceptions = exceptionMasks[typeIndex];
      if (exceptions === undefined) exceptions = exceptionMasks[typeIndex] = new Map();
      else exceptions.clear();
      let position = -1;
      for (let i = 0; i < exceptionCount; i++) {
        position += reader.readVarUint() + 1;
        exceptions.set(position, reader.readBits(packed.length) >>> 0);
      }
      positions[typeIndex] = 0;
      kTable[typeIndex] = ks;
      unions[typeIndex] = union;
    }

    const removalCount = readIds(reader, ids);
    const removals = removalCount === 0 ? NONE : ids.slice(0, removalCount);
    const leaving = removalCount === 0 ? NONE_LEAVING : new Array<boolean>(removalCount);
    for (let i = 0; i < removalCount; i++) (leaving as boolean[])[i] = reader.readBool();

    const spawnCount = readIds(reader, ids);
    const spawns: DecodedSpawn[] = spawnCount === 0 ? NO_SPAWNS : [];
    const spawnedIds = spawnCount === 0 ? NO_IDS : new Set<number>();
    const addSpawned = spawnedIds as Set<number>;
    for (let i = 0; i < spawnCount; i++) {
      const id = ids[i]!;
      const generation = reader.readVarUint();
      const typeIndex = reader.readBits(typeBits);
      const type = types[typeIndex];
      if (type === undefined) throw decodeError(`entity ${id}: unknown type index ${typeIndex}`);
      const entered = reader.readBool();
      const owned = reader.readBool();
      const count = type.fieldNames.length;
      const mask = reader.readBool() ? fullMaskOf(count) : reader.readBits(count) >>> 0;
      const values: unknown[] = new Array(count);
      const images: number[] = new Array<number>(count).fill(Number.NaN);
      const coders = packedFields[typeIndex]!;
      for (let field = 0; field < count; field++) {
        if (((mask >>> field) & 1) === 0) continue;
        const coder = coders[field];
        if (coder === undefined) values[field] = type.fieldTypes[field]!.read(reader);
        else {
          const image = reader.readBits(coder.bits);
          values[field] = coder.packed.unpack(image);
          images[field] = image;
        }
      }
      spawns.push({ id, generation, type, typeIndex, entered, owned, mask, values, images });
      addSpawned.add(id);
    }

    // Decoded updates, flat: entity, mask and the offset of its values in `updateValues`.
    let updateCount = 0;
    let valueCount = 0;
    const idCount = readIds(reader, ids);
    for (let i = 0; i < idCount; i++) {
      const id = ids[i]!;
      const entity = entities.get(id);
      if (entity === undefined || baselineId === 0 || entity.since > baselineId)
        throw decodeError(`update of entity ${id}, which is not in baseline ${baselineId}`);
      if (spawnedIds.size > 0 && spawnedIds.has(id))
        throw decodeError(`entity ${id} is both spawned and updated`);
      const typeIndex = entity.typeIndex;
      const fieldTypes = entity.type.fieldTypes;
      const ks = kTable[typeIndex];
      if (ks === undefined)
        throw decodeError(`type ${entity.type.name} has updates but no parameters`);
      const position = positions[typeIndex]!;
      positions[typeIndex] = position + 1;
      const exceptions = exceptionMasks[typeIndex]!;
      const mask =
        (exceptions.size > 0 ? exceptions.get(position) : undefined) ?? defaultMasks[typeIndex]!;
      if ((mask & ~unions[typeIndex]!) !== 0)
        throw decodeError(`entity ${id}: a mask outside its type's update fields`);
      if (mask === 0) throw decodeError(`update of entity ${id} with no fields`);
      const coders = packedFields[typeIndex]!;
      updateEntities[updateCount] = entity;
      updateMasks[updateCount++] = mask;
      for (let field = 0, bits = mask; bits !== 0; field++, bits >>>= 1) {
        if ((bits & 1) === 0) continue;
        const coder = coders[field];
        const k = ks[field];
        if (coder === undefined) {
          updateImages[valueCount] = Number.NaN;
          updateValues[valueCount++] = fieldTypes[field]!.read(reader);
          continue;
        }
        let image: number;
        if (k === PLAIN) image = reader.readBits(coder.bits);
        else {
          if (k === undefined)
            throw decodeError(`entity ${id}: field ${field} is outside its type's update fields`);
          const reference = entity.imageAt(field, baselineId);
          if (Number.isNaN(reference)) throw decodeError(`entity ${id}: no baseline value`);
          image = coder.read(reader, k, reference);
        }
        updateImages[valueCount] = image;
        updateValues[valueCount++] = coder.packed.unpack(image);
      }
    }
    if (removals.length > 0) {
      const removed = new Set(removals);
      for (let i = 0; i < updateCount; i++)
        if (removed.has(updateEntities[i]!.id))
          throw decodeError(`entity ${updateEntities[i]!.id} is both removed and updated`);
    }
    const checksum = hasChecksum ? reader.readBits(32) >>> 0 : undefined;
    reader.end();

    // Commit.
    const listening = emitter.listenerCount('update') > 0;
    const spawnEvents: [ReplicaRecord, 'spawn' | 'enter'][] = [];
    const updateEvents: [ReplicaRecord, string[]][] = [];
    const despawnEvents: [ReplicaRecord, 'despawn' | 'leave'][] = [];
    const remove = (entity: ReplicaRecord, reason: 'despawn' | 'leave') => {
      entities.delete(entity.id);
      despawnEvents.push([entity, reason]);
    };
    for (let i = 0; i < removals.length; i++) {
      const entity = entities.get(removals[i]!);
      if (entity !== undefined) remove(entity, leaving[i] ? 'leave' : 'despawn');
    }
    for (const spawn of spawns) {
      const existing = entities.get(spawn.id);
      if (existing && existing.generation === spawn.generation && existing.type === spawn.type) {
        let mask = 0;
        // An owner keeps its own writes to the fields it owns.
        const keep = existing.owned && spawn.owned ? existing.type.ownedMask : 0;
        for (let field = 0; field < spawn.values.length; field++) {
          if ((keep >>> field) & 1) continue;
          const image = spawn.images[field]!;
          // Values, not images: a spawn also repairs a value that went wrong (resync).
          if (
            Object.is(existing.fieldValues[field], spawn.values[field]) &&
            (Number.isNaN(image) || existing.images[field] === image)
          )
            continue;
          mask |= 1 << field;
          existing.change(field, spawn.values[field], image, snapshotId, baselineId);
        }
        existing.owned = spawn.owned;
        existing.mask = (spawn.mask | keep) >>> 0;
        existing.tick = tick;
        if (mask !== 0 && listening) updateEvents.push([existing, namesOf(existing.type, mask)]);
        continue;
      }
      if (existing) remove(existing, 'despawn');
      const entity = new ReplicaRecord(
        spawn.id,
        spawn.generation,
        spawn.type,
        spawn.typeIndex,
        spawn.values,
        spawn.images,
        spawn.mask,
        spawn.owned,
        tick,
        snapshotId,
      );
      entities.set(spawn.id, entity);
      spawnEvents.push([entity, spawn.entered ? 'enter' : 'spawn']);
    }
    let offset = 0;
    for (let i = 0; i < updateCount; i++) {
      const entity = updateEntities[i]!;
      let changed = 0;
      for (let field = 0, mask = updateMasks[i]!; mask !== 0; field++, mask >>>= 1) {
        if ((mask & 1) === 0) continue;
        const image = updateImages[offset]!;
        const value = updateValues[offset++];
        if (
          Number.isNaN(image)
            ? Object.is(entity.fieldValues[field], value)
            : entity.images[field] === image
        )
          continue;
        changed |= 1 << field;
        entity.change(field, value, image, snapshotId, baselineId);
      }
      entity.tick = tick;
      if (changed !== 0 && listening) updateEvents.push([entity, namesOf(entity.type, changed)]);
    }
    earlier = shiftApplied(earlier, snapshotId - lastSnapshotId, lastSnapshotId !== 0);
    lastSnapshotId = snapshotId;
    lastTick = tick;

    for (const [entity, reason] of despawnEvents) emitter.emit('despawn', entity, reason);
    for (const [entity, reason] of spawnEvents) emitter.emit('spawn', entity, reason);
    for (const [entity, fields] of updateEvents) emitter.emit('update', entity, fields);
    if (checksum !== undefined && checksum !== stateChecksum()) {
      // Keep what this replica held, to diagnose against the server's expectation.
      mismatch = { snapshotId, state: captureState() };
      emitter.emit('mismatch', snapshotId);
    }
    return snapshotId;
  };

  const captureState = (): Map<number, Captured> => {
    const state = new Map<number, Captured>();
    for (const entity of entities.values())
      state.set(entity.id, {
        generation: entity.generation,
        type: entity.type,
        mask: checkedMask(entity),
        values: [...entity.fieldValues],
      });
    return state;
  };

  const diagnose = (bytes: Uint8Array): Desync | undefined => {
    const expected = decodeOwned(types, bytes, true);
    if (mismatch === undefined || expected.snapshotId !== mismatch.snapshotId) return undefined;
    const { snapshotId, state } = mismatch;
    const found = (
      entityId: number,
      expectedValue: unknown,
      actual: unknown,
      type?: EntityType,
      field?: string,
    ): Desync => ({
      snapshotId,
      entityId,
      path:
        field === undefined ? `entity ${entityId}` : `entity ${entityId} (${type!.name}).${field}`,
      ...(field === undefined ? {} : { field }),
      expected: expectedValue,
      actual,
    });
    const ids = new Set<number>([...state.keys(), ...expected.entries.map((e) => e.id)]);
    const byId = new Map(expected.entries.map((e) => [e.id, e]));
    let desync: Desync | undefined;
    for (const id of [...ids].sort((a, b) => a - b)) {
      const want = byId.get(id);
      const have = state.get(id);
      if (want === undefined || have === undefined) {
        desync = found(
          id,
          want === undefined ? 'absent' : 'present',
          have === undefined ? 'absent' : 'present',
        );
        break;
      }
      const type = types[want.typeIndex]!;
      if (have.type !== type || have.generation !== want.generation) {
        desync = found(
          id,
          `${type.name}#${want.generation}`,
          `${have.type.name}#${have.generation}`,
        );
        break;
      }
      for (let field = 0; field < type.fieldNames.length && desync === undefined; field++) {
        const expectedValue = ((want.mask >>> field) & 1) === 1 ? want.values[field] : undefined;
        const actual = ((have.mask >>> field) & 1) === 1 ? have.values[field] : undefined;
        if (!valuesEqual(expectedValue, actual))
          desync = found(id, expectedValue, actual, type, type.fieldNames[field]!);
      }
      if (desync !== undefined) break;
    }
    mismatch = undefined;
    if (desync !== undefined) emitter.emit('desync', desync);
    return desync;
  };

  /** The fields that count in checksums: what the server sent, less the owner's own fields. */
  const checkedMask = (entity: ReplicaRecord): number =>
    entity.owned ? (entity.mask & ~entity.type.ownedMask) >>> 0 : entity.mask;

  const stateChecksum = (): number => {
    let sum = 0;
    for (const entity of entities.values()) {
      const mask = checkedMask(entity);
      sum =
        (sum +
          entityChecksum(entity.id, entity.generation, entity.type, entity.fieldValues, mask)) >>>
        0;
    }
    return sum;
  };

  /** Sets a field written locally (or corrected), with its image. */
  const store = (record: ReplicaRecord, field: number, value: unknown): void => {
    record.fieldValues[field] = value;
    const coder = packedFields[record.typeIndex]![field];
    record.images[field] = coder === undefined ? Number.NaN : coder.packed.pack(value);
  };

  return {
    apply(bytes) {
      try {
        return apply(bytes);
      } catch (error) {
        throw toDecodeError(error);
      }
    },
    ack: () => encodeAck(lastSnapshotId, earlier),
    get lastSnapshotId() {
      return lastSnapshotId;
    },
    get tick() {
      return lastTick;
    },
    get size() {
      return entities.size;
    },
    get: (id) => (Number.isInteger(id) && id >= 0 ? entities.get(id) : undefined),
    entities: () => entities.values(),
    set(entity, field, value) {
      const record = entities.get(entity?.id);
      if (record === undefined || (record as unknown) !== entity)
        throw new TickwireError(ErrorCode.NOT_FOUND, 'set: the entity is not in this replica');
      const index = record.type.fieldIndex(field);
      if (index === undefined)
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `entity type '${record.type.name}' has no field '${field}'`,
        );
      if (!record.owned || ((record.type.ownedMask >>> index) & 1) === 0)
        throw new TickwireError(
          ErrorCode.FORBIDDEN,
          `field '${field}' of entity ${record.id} is not owned by this client`,
        );
      checkField(record.type, index, value);
      let sequences = writeSequences.get(record);
      if (sequences === undefined) {
        sequences = [];
        writeSequences.set(record, sequences);
      }
      sequences[index] = ++writeSequence;
      const pending = pendingWrites.get(record.id);
      if (pending !== undefined && pending.record === record) pending.mask |= 1 << index;
      else pendingWrites.set(record.id, { record, mask: 1 << index });
      if (Object.is(record.fieldValues[index], value)) return;
      store(record, index, frozenCopy(value));
      emitter.emit('update', record, [field]);
    },
    takeChanges() {
      if (pendingWrites.size === 0) return undefined;
      const entries: OwnedEntry[] = [];
      for (const { record, mask } of pendingWrites.values())
        if (entities.get(record.id) === record && record.owned)
          entries.push({
            id: record.id,
            generation: record.generation,
            typeIndex: record.typeIndex,
            mask: (mask & record.type.ownedMask) >>> 0,
            values: record.fieldValues,
          });
      pendingWrites.clear();
      if (entries.length === 0) return undefined;
      return encodeOwned(types, { sequence: writeSequence, snapshotId: lastSnapshotId, entries });
    },
    applyCorrections(bytes) {
      const message = decodeOwned(types, bytes);
      for (const entry of message.entries) {
        const record = entities.get(entry.id);
        if (record === undefined || record.generation !== entry.generation) continue;
        if (record.typeIndex !== entry.typeIndex) continue;
        const sequences = writeSequences.get(record);
        const fields: string[] = [];
        for (let field = 0; field < record.type.fieldNames.length; field++) {
          if (((entry.mask >>> field) & 1) === 0) continue;
          // A write made after the server processed this client's changes wins locally.
          if ((sequences?.[field] ?? 0) > message.sequence) continue;
          store(record, field, entry.values[field]);
          fields.push(record.type.fieldNames[field]!);
        }
        if (fields.length > 0) emitter.emit('rollback', record, fields);
      }
    },
    diagnose(bytes) {
      try {
        return diagnose(bytes);
      } catch (error) {
        throw toDecodeError(error);
      }
    },
    get mismatchedSnapshot() {
      return mismatch?.snapshotId ?? 0;
    },
    extrapolate(entity, tick) {
      const values = entity.values();
      const model = entity.type.deadReckoning;
      return model === undefined ? values : model.extrapolate(values, tick - entity.tick);
    },
    ...subscribable(emitter),
  };
}

/** Ids below this live in a dense array; larger ones (legal, but rare) in a map. */
const DENSE_IDS = 1 << 20;

/** Records by id: a dense array for the small, dense ids a world hands out, with a count. */
class RecordTable {
  private readonly slots: (ReplicaRecord | undefined)[] = [];
  private readonly sparse = new Map<number, ReplicaRecord>();
  size = 0;

  get(id: number): ReplicaRecord | undefined {
    return id < DENSE_IDS ? this.slots[id] : this.sparse.get(id);
  }

  set(id: number, record: ReplicaRecord): void {
    if (this.get(id) === undefined) this.size++;
    if (id >= DENSE_IDS) {
      this.sparse.set(id, record);
      return;
    }
    // Fill any gap first so the array stays packed.
    while (this.slots.length < id) this.slots.push(undefined);
    this.slots[id] = record;
  }

  delete(id: number): void {
    if (this.get(id) === undefined) return;
    if (id >= DENSE_IDS) this.sparse.delete(id);
    else this.slots[id] = undefined;
    this.size--;
  }

  *values(): IterableIterator<ReplicaRecord> {
    for (const record of this.slots) if (record !== undefined) yield record;
    yield* this.sparse.values();
  }
}

// Shared empty lists for the common snapshot without removals or spawns (never written to).
const NONE: readonly number[] = [];
const NO_SPAWNS: DecodedSpawn[] = [];
const NO_IDS: ReadonlySet<number> = new Set();
const NONE_LEAVING: readonly boolean[] = [];

function fullMaskOf(count: number): number {
  return count === 32 ? 0xffffffff : (1 << count) - 1;
}

/** Slides the "earlier applied" bits by `distance` snapshots and marks the previous one. */
function shiftApplied(bits: number, distance: number, previousApplied: boolean): number {
  if (distance > ACK_WINDOW) return 0;
  const shifted = distance >= 32 ? 0 : (bits << distance) >>> 0;
  return previousApplied ? (shifted | (1 << (distance - 1))) >>> 0 : shifted;
}
