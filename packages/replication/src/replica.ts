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
import { ACK_WINDOW, encodeAck, entityChecksum, MAX_HISTORY, SNAPSHOT_FORMAT } from './server.js';
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
  /**
   * The client side of owned fields, opt-in: pass {@link ownedFields} for `set`, `takeChanges`
   * and `applyCorrections` to write the fields this client owns. Required when a type has
   * `owned` fields (createReplica throws INVALID_ARGUMENT without it); bundles without it are
   * smaller.
   * @default none
   */
  ownership?: ReplicaOwnership;
  /**
   * Desync diagnosis, opt-in: pass {@link desyncDiagnosis} and the replica keeps a copy of its
   * state at each checksum mismatch, for `diagnose` to name the first difference. Without it
   * nothing is kept and `diagnose` returns undefined (bundles without it are smaller).
   * @default none
   */
  diagnosis?: DesyncDiagnosis;
}

/**
 * The client side of owned fields, given to createReplica as `ownership`: starts the
 * owned-field bookkeeping of one replica. The implementation is {@link ownedFields}.
 */
export type ReplicaOwnership = (replica: OwnershipContext) => OwnedFieldWrites;

/** What a replica gives its {@link ReplicaOwnership}. */
interface OwnershipContext {
  readonly types: readonly EntityType[];
  /** Per type and field, the delta decoder of a numeric field (its image), else undefined. */
  readonly coders: readonly (readonly (DeltaDecoder | undefined)[])[];
  /** The record of `id`, if the replica holds it. */
  get(id: number): ReplicaRecord | undefined;
  readonly lastSnapshotId: number;
  readonly emitter: Emitter<ReplicaEvents>;
}

/** The owned-field half of a replica (see {@link Replica}'s methods of the same names). */
interface OwnedFieldWrites {
  /** `set` once the replica checked that the entity is its own and `field` an owned one. */
  set(record: ReplicaRecord, index: number, field: string, value: unknown): void;
  takeChanges(): Uint8Array | undefined;
  applyCorrections(bytes: Uint8Array): void;
}

/**
 * How a replica diagnoses a desync; the implementation is {@link desyncDiagnosis}, given as
 * `createReplica({ types, diagnosis: desyncDiagnosis })`.
 */
export interface DesyncDiagnosis {
  /** A copy of what `entities` hold (the fields checksums cover), taken at a mismatch. */
  capture(entities: Iterable<ReplicaEntity>): unknown;
  /**
   * The first difference, in id order, between a copy `capture` took after snapshot
   * `snapshotId` and `expected`, what the server expected then (decoded `server.resync` bytes).
   */
  compare(
    held: unknown,
    expected: readonly ExpectedEntity[],
    types: readonly EntityType[],
    snapshotId: number,
  ): Desync | undefined;
}

/** An entity as the server expected a replica to hold it (see {@link DesyncDiagnosis}). */
export interface ExpectedEntity {
  id: number;
  generation: number;
  /** Index in the replica's `types`. */
  typeIndex: number;
  /** The fields the replica holds (the others are hidden from it or its own). */
  mask: number;
  /** Values by field index (only the masked ones are set). */
  values: readonly unknown[];
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
   * `owned`; the `ownership` option): applied at once locally, sent with the next
   * `takeChanges`. Throws FORBIDDEN for a field the client does not own, VALIDATION_FAILED for
   * a bad value.
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
   * fields, except those this client wrote again since; emits `rollback`. Entries for entities
   * or fields this client does not own are ignored. Throws DECODE_FAILED on malformed bytes
   * (nothing applied), PROTOCOL_ERROR when created without `ownership`.
   */
  applyCorrections(bytes: Uint8Array): void;
  /**
   * After a `mismatch`: compares the state this replica held after the mismatched snapshot
   * with what the server expected (the bytes `server.resync(clientId, snapshotId)` returned),
   * returns the first difference and emits `desync`. Undefined when there is nothing to compare,
   * and always without the `diagnosis` option (which keeps that state).
   */
  diagnose(bytes: Uint8Array): Desync | undefined;
  /** The snapshot id of the last checksum mismatch not yet diagnosed, 0 when none. */
  readonly mismatchedSnapshot: number;
}

/** Undo-log slots (3 per entry) dropped at its front before the live entries move down. */
const UNDO_COMPACT_AT = 96;

class ReplicaRecord<S extends Shape = Shape> implements ReplicaEntity<S> {
  // Declared, not class fields: the constructor sets them all, and `declare` emits no field
  // definitions (smaller bundles; the shape is the same for every record).
  declare readonly id: number;
  declare generation: number;
  declare type: EntityType<S>;
  declare readonly typeIndex: number;
  declare readonly fieldValues: unknown[];
  /** Integer images of the numeric fields (NaN for the others and for hidden fields). */
  declare readonly images: number[];
  /** Fields the server sent (the others are hidden from this client). */
  declare mask: number;
  declare owned: boolean;
  declare tick: number;
  /** The snapshot that created this record: before it the client did not hold it. */
  declare since: number;
  /**
   * Changes of numeric fields since the oldest baseline the server may still use, oldest
   * first, as flat triples (snapshot id, field index, previous image) from `undoHead` to
   * `undoEnd`: differences are decoded against the image as of the baseline.
   */
  declare undo: number[] | undefined;
  declare undoHead: number;
  declare undoEnd: number;
  /**
   * Snapshot id of the newest entry in `undo` (0: none). Entries are in snapshot order, so a
   * baseline at or after it predates none of them: the common case reads no entry (`undo` is
   * another object, often out of the cache).
   */
  declare undoNewest: number;

  constructor(
    id: number,
    generation: number,
    type: EntityType<S>,
    typeIndex: number,
    fieldValues: unknown[],
    images: number[],
    mask: number,
    owned: boolean,
    tick: number,
    since: number,
  ) {
    this.id = id;
    this.generation = generation;
    this.type = type;
    this.typeIndex = typeIndex;
    this.fieldValues = fieldValues;
    this.images = images;
    this.mask = mask;
    this.owned = owned;
    this.tick = tick;
    this.since = since;
    this.undo = undefined;
    this.undoHead = 0;
    this.undoEnd = 0;
    this.undoNewest = 0;
  }

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
    let image = this.images[field]!;
    if (this.undoNewest <= baseline) return image;
    const undo = this.undo!;
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
    // A change more than the largest history back is needed by no later snapshot, even while
    // no ack reaches the server and its baseline stays put: by then the server has either had
    // that snapshot acknowledged (a baseline at or after it) or dropped it unacknowledged,
    // and sends the entity whole from then on until a newer baseline holds it. That bounds
    // the log.
    if (baseline < snapshotId - MAX_HISTORY - 1) baseline = snapshotId - MAX_HISTORY - 1;
    let undo = this.undo;
    if (undo === undefined) undo = this.undo = [];
    else if (this.undoNewest <= baseline) {
      // Every entry predates the baseline: drop them all without reading them.
      this.undoHead = 0;
      this.undoEnd = 0;
    } else {
      // The newest entry is after the baseline, so at least one entry stays.
      let head = this.undoHead;
      const end = this.undoEnd;
      while ((undo[head] as number) <= baseline) head += 3;
      // Acks that keep lagging would otherwise grow the log without bound: once the dropped
      // front is half of it, move the live entries to the front (the array keeps its storage).
      if (head >= UNDO_COMPACT_AT && head * 2 >= end) {
        undo.copyWithin(0, head, end);
        this.undoEnd = end - head;
        head = 0;
      }
      this.undoHead = head;
    }
    const end = this.undoEnd;
    undo[end] = snapshotId;
    undo[end + 1] = field;
    undo[end + 2] = this.images[field]!;
    this.undoEnd = end + 3;
    this.undoNewest = snapshotId;
    this.images[field] = image;
  }
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
  const types = checkTypes(options?.types, 'createReplica', options?.ownership !== undefined);
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
  /**
   * Per type in the snapshot being read: default mask, updates seen so far, and the exceptions
   * not yet met, as flat pairs (mask, position among the type's updates), the next one last.
   */
  const defaultMasks: number[] = [];
  const positions: number[] = [];
  const exceptionPairs: number[][] = [];
  const unions: number[] = [];
  let lastSnapshotId = 0;
  let lastTick = 0;
  const { diagnosis } = options;
  /** The last mismatched snapshot not yet diagnosed, with what `diagnosis` kept of the state. */
  let mismatch: { snapshotId: number; held: unknown } | undefined;
  /** Bit i: snapshot `lastSnapshotId − 1 − i` was applied. */
  let earlier = 0;
  const owned = options.ownership?.({
    types,
    coders: packedFields,
    get: (id) => entities.get(id),
    get lastSnapshotId() {
      return lastSnapshotId;
    },
    emitter,
  });

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
      const pairs: number[] = [];
      exceptionPairs[typeIndex] = pairs;
      let position = -1;
      for (let i = 0; i < exceptionCount; i++) {
        position += reader.readVarUint() + 1;
        pairs.push(position, reader.readBits(packed.length) >>> 0);
      }
      pairs.reverse();
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
      // Updates come in position order: only the first exception not yet met can be this one.
      const pairs = exceptionPairs[typeIndex]!;
      let mask = defaultMasks[typeIndex]!;
      if (pairs.length > 0 && pairs[pairs.length - 1] === position) {
        pairs.pop();
        mask = pairs.pop()!;
      }
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
      mismatch = { snapshotId, held: diagnosis?.capture(entities.values()) };
      emitter.emit('mismatch', snapshotId);
    }
    return snapshotId;
  };

  const diagnose = (bytes: Uint8Array): Desync | undefined => {
    const expected = decodeOwned(types, bytes, true);
    if (mismatch === undefined || expected.snapshotId !== mismatch.snapshotId) return undefined;
    const { snapshotId, held } = mismatch;
    mismatch = undefined;
    const desync = diagnosis?.compare(held, expected.entries, types, snapshotId);
    if (desync !== undefined) emitter.emit('desync', desync);
    return desync;
  };

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
      if (owned === undefined || !record.owned || ((record.type.ownedMask >>> index) & 1) === 0)
        throw new TickwireError(
          ErrorCode.FORBIDDEN,
          `field '${field}' of entity ${record.id} is not owned by this client`,
        );
      owned.set(record, index, field, value);
    },
    takeChanges: () => owned?.takeChanges(),
    applyCorrections(bytes) {
      if (owned === undefined)
        throw new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          'corrections: this replica was created without the ownership option',
        );
      owned.applyCorrections(bytes);
    },
    // decodeOwned throws DECODE_FAILED for malformed bytes.
    diagnose,
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

/**
 * The client side of owned fields for {@link createReplica} (`ownership: ownedFields`): a write
 * is validated, applied at once and numbered; `takeChanges` encodes the writes since the last
 * call; `applyCorrections` takes the server's authoritative values, except for fields written
 * again after the server processed them, and emits `rollback`.
 */
export const ownedFields: ReplicaOwnership = (replica) => {
  const { types, coders, emitter } = replica;
  /** A sequence number per write, the pending fields per entity id, the last write per field. */
  let writeSequence = 0;
  const pendingWrites = new Map<number, { record: ReplicaRecord; mask: number }>();
  const writeSequences = new WeakMap<ReplicaRecord, number[]>();
  /** Sets a field written locally (or corrected), with its image. */
  const store = (record: ReplicaRecord, field: number, value: unknown): void => {
    record.fieldValues[field] = value;
    const coder = coders[record.typeIndex]![field];
    record.images[field] = coder === undefined ? Number.NaN : coder.packed.pack(value);
  };
  return {
    set(record, index, field, value) {
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
        if (replica.get(record.id) === record && record.owned)
          entries.push({
            id: record.id,
            generation: record.generation,
            typeIndex: record.typeIndex,
            mask: (mask & record.type.ownedMask) >>> 0,
            values: record.fieldValues,
          });
      pendingWrites.clear();
      if (entries.length === 0) return undefined;
      return encodeOwned(types, {
        sequence: writeSequence,
        snapshotId: replica.lastSnapshotId,
        entries,
      });
    },
    applyCorrections(bytes) {
      const message = decodeOwned(types, bytes);
      for (const entry of message.entries) {
        const record = replica.get(entry.id);
        if (record === undefined || record.generation !== entry.generation) continue;
        // Only fields this client owns: the server sends it no others, and the snapshots'
        // differences are decoded against the images of the rest (a correction racing an
        // ownership change is dropped, the next snapshot carries the value).
        if (record.typeIndex !== entry.typeIndex || !record.owned) continue;
        const mask = entry.mask & record.type.ownedMask;
        const sequences = writeSequences.get(record);
        const fields: string[] = [];
        for (let field = 0; field < record.type.fieldNames.length; field++) {
          if (((mask >>> field) & 1) === 0) continue;
          // A write made after the server processed this client's changes wins locally.
          if ((sequences?.[field] ?? 0) > message.sequence) continue;
          store(record, field, entry.values[field]);
          fields.push(record.type.fieldNames[field]!);
        }
        if (fields.length > 0) emitter.emit('rollback', record, fields);
      }
    },
  };
};

/** The fields that count in checksums: what the server sent, less the owner's own fields. */
function checkedMask(entity: ReplicaRecord): number {
  return entity.owned ? (entity.mask & ~entity.type.ownedMask) >>> 0 : entity.mask;
}

/** What {@link desyncDiagnosis} keeps of an entity. */
interface HeldEntity {
  generation: number;
  type: EntityType;
  mask: number;
  values: unknown[];
}

/**
 * Desync diagnosis for {@link createReplica} (`diagnosis: desyncDiagnosis`): at a checksum
 * mismatch the replica keeps a copy of its state (the fields checksums cover);
 * `replica.diagnose` compares it with the server's expectation, entity by entity in id order,
 * then field by field.
 */
export const desyncDiagnosis: DesyncDiagnosis = {
  capture(entities) {
    const held = new Map<number, HeldEntity>();
    for (const entity of entities as Iterable<ReplicaRecord>)
      held.set(entity.id, {
        generation: entity.generation,
        type: entity.type,
        mask: checkedMask(entity),
        values: [...entity.fieldValues],
      });
    return held;
  },
  compare(held, expected, types, snapshotId) {
    const state = held as Map<number, HeldEntity>;
    const byId = new Map(expected.map((entry) => [entry.id, entry]));
    // The first difference in id order, as the server's checksum saw it.
    for (const id of [...new Set([...state.keys(), ...byId.keys()])].sort((a, b) => a - b)) {
      const want = byId.get(id);
      const have = state.get(id);
      const desync: Desync = {
        snapshotId,
        entityId: id,
        path: `entity ${id}`,
        expected: want ? 'present' : 'absent',
        actual: have ? 'present' : 'absent',
      };
      if (want === undefined || have === undefined) return desync;
      const type = types[want.typeIndex]!;
      if (have.type !== type || have.generation !== want.generation) {
        desync.expected = `${type.name}#${want.generation}`;
        desync.actual = `${have.type.name}#${have.generation}`;
        return desync;
      }
      for (let field = 0; field < type.fieldNames.length; field++) {
        // A field hidden from one side reads undefined there.
        desync.expected = (want.mask >>> field) & 1 ? want.values[field] : undefined;
        desync.actual = (have.mask >>> field) & 1 ? have.values[field] : undefined;
        if (!valuesEqual(desync.expected, desync.actual)) {
          desync.field = type.fieldNames[field]!;
          desync.path += ` (${type.name}).${desync.field}`;
          return desync;
        }
      }
    }
    return undefined;
  },
};

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
