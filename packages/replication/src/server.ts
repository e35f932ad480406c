import {
  ErrorCode,
  isTickwireError,
  type Metrics,
  noopMetrics,
  TickwireError,
} from '@tickwire/core';
import { BinaryReader, BinaryWriter, type Shape } from '@tickwire/serialization';
import { bitsFor, type EntityType, type EntityValues } from './entity-type.js';
import { type DeltaCoder, deltaCoderOf, FieldStats, K_BITS, PLAIN } from './field-coding.js';
import { writeIds } from './id-coding.js';
import type { Interest } from './interest.js';
import { KnownTable } from './known.js';
import { decodeOwned, encodeOwned, type OwnedEntry, type OwnedMessage } from './ownership.js';
import {
  type ClientId,
  type Entity,
  type World,
  type WorldEntity,
  worldInternals,
} from './world.js';

export type { ClientId } from './world.js';

/** Options of {@link createReplicationServer}. */
export interface ReplicationServerOptions {
  world: World;
  /**
   * Which entities each client sees (see `createGridInterest`, `createFilterInterest`).
   * @default every entity is visible to every client
   */
  interest?: Interest;
  /**
   * The fields of `entity` that `clientId` may see, as a bit mask by wire index, or undefined
   * for all. Hidden fields are never sent to that client. The owner never receives the fields
   * it owns (they are its own writes).
   */
  fieldFilter?(clientId: ClientId, entity: WorldEntity): number | undefined;
  /** Multiplies an entity type's priority for one client (e.g. by distance). @default 1 */
  priority?(clientId: ClientId, entity: WorldEntity): number;
  /**
   * Sent snapshots remembered per client, waiting for acknowledgement. @default 64
   */
  historySize?: number;
  /** Largest snapshot in bytes; a larger one throws MESSAGE_TOO_LARGE. @default 1048576 */
  maxSnapshotBytes?: number;
  /**
   * Delta-code numeric fields against the client's baseline values (see field-coding.ts).
   * @default true
   */
  deltaFields?: boolean;
  /**
   * Count bytes per entity type and field in `profile()` and in `metrics` (counter
   * `tickwire_replication_field_bytes_total{type,field}`). Costs a little encode time.
   * @default false
   */
  profile?: boolean;
  /** Where the bandwidth profile is published when `profile` is on. @default noopMetrics */
  metrics?: Metrics;
  /** Add a checksum of the client's expected state to every snapshot (debugging). @default false */
  checksums?: boolean;
  /**
   * Reuse one encoded snapshot body for every client of a tick that is sent the same changes
   * against the same baseline values (in a room where everyone sees everything, that is most
   * of them): each client still gets its own header and its own acknowledgement bookkeeping.
   * Not used with checksums, profiling or a byte budget. @default true
   */
  shareEncodings?: boolean;
  /**
   * Accepts or refuses one client write to a field it owns (after type validation). Return
   * false to refuse: the change is rolled back on that client. A throw refuses the change too
   * (an INTERNAL rejection with the thrown value as `cause`): the other entities of the message
   * are handled as usual.
   */
  validateChange?(
    clientId: ClientId,
    entity: WorldEntity,
    field: string,
    value: unknown,
    previous: unknown,
  ): boolean;
  /**
   * When the server (or another owner) wrote an owned field after the snapshot the owner's
   * change was based on: `'server-wins'` refuses the change and rolls it back on the owner;
   * `'last-writer-wins'` accepts it. @default 'server-wins'
   */
  conflict?: 'server-wins' | 'last-writer-wins';
}

/** What {@link ReplicationServer.receiveChanges} did with a client's owned-field writes. */
export interface ChangesResult {
  /** Entities whose changes were applied. */
  accepted: number;
  /**
   * One typed error per refused entity (FORBIDDEN, NOT_FOUND, VALIDATION_FAILED, CONFLICT;
   * INTERNAL when `validateChange` threw, with the thrown value as `cause`).
   */
  rejected: TickwireError[];
}

/** Byte figures of one entity type in the bandwidth profile. */
export interface TypeProfile {
  /** Snapshot bytes spent on entities of this type: ids, masks and fields. */
  bytes: number;
  /** Bytes per field, by field name. */
  fields: Record<string, number>;
}

/** Per-client figures. */
export interface ClientStats {
  /** Snapshots encoded for the client. */
  snapshots: number;
  /** Snapshot bytes encoded for the client. */
  bytes: number;
  /** Acks accepted. */
  acks: number;
  /** Snapshots known lost (the client acknowledged a later one first). */
  lost: number;
  /** Entities the client currently sees. */
  visible: number;
  /** Entities that wanted to be sent in the last snapshot but did not fit the budget. */
  deferred: number;
  /**
   * Snapshots whose body was not encoded for this client but reused from another client's
   * snapshot of the same tick (same changes against the same baseline values).
   */
  shared: number;
  /**
   * Of those, the ones taken whole from a client in the same state (clean at the same world
   * version), without even working out what changed.
   */
  followed: number;
  /** Owned-field changes applied and refused. */
  changesAccepted: number;
  changesRejected: number;
}

/** Encodes per-client delta snapshots of a world. */
export interface ReplicationServer {
  /**
   * Starts tracking a client; its first snapshot carries the full state it may see. Snapshot
   * ids of a client added after a removal start past every id sent to the removed one, so a
   * late ack or changes message of a client's previous life (same id) is ignored.
   */
  addClient(clientId: ClientId): void;
  /** Forgets a client. */
  removeClient(clientId: ClientId): void;
  /** Clients in the order they were added. */
  clients(): IterableIterator<ClientId>;
  /**
   * Advances the server tick (written in snapshots for interpolation and dead reckoning).
   * Call it once per simulation tick, before encoding that tick's snapshots.
   */
  update(tick?: number): void;
  /** The current tick. */
  readonly tick: number;
  /**
   * Sets a client's byte budget per snapshot (undefined for none). Under a budget, entities
   * are chosen by accumulated priority; one that waited `maxInterval` snapshots goes first.
   */
  setBudget(clientId: ClientId, bytes: number | undefined): void;
  /** Encodes the next snapshot for a client, delta-coded against its last acknowledged one. */
  snapshotFor(clientId: ClientId): Uint8Array;
  /**
   * Applies an acknowledgement from the client (the bytes of `replica.ack()`). Returns false
   * (and changes nothing) for an unknown client or a stale ack; throws DECODE_FAILED on
   * malformed bytes.
   */
  receiveAck(clientId: ClientId, bytes: Uint8Array): boolean;
  /**
   * Acknowledges by number: `snapshotId` applied, and bit i of `earlier` set when snapshot
   * `snapshotId − 1 − i` was applied too.
   */
  ack(clientId: ClientId, snapshotId: number, earlier?: number): boolean;
  /** The client's acknowledged baseline snapshot id, 0 when it has none. */
  baselineOf(clientId: ClientId): number;
  /** Clients that see an entity (as of their last snapshot). */
  observersOf(entityId: number): ClientId[];
  /**
   * Sends everything the client sees whole again, from the next snapshot on (after the client
   * reported a checksum mismatch; under a byte budget it takes several snapshots). Given
   * the mismatched snapshot id, also returns what the client should have held after it (with
   * checksums on, while the snapshot is in the history), for `replica.diagnose`.
   */
  resync(clientId: ClientId, snapshotId?: number): Uint8Array | undefined;
  statsOf(clientId: ClientId): Readonly<ClientStats>;
  /**
   * Applies a client's writes to fields it owns (the bytes of `replica.takeChanges()`). Each
   * entity's change is validated (ownership, field, type, `validateChange`, conflict policy)
   * and applied whole or refused whole; refused ones are rolled back on the client by the
   * next `takeCorrections`. A `validateChange` that throws refuses only the change it was asked
   * about (INTERNAL). Throws DECODE_FAILED on malformed bytes (nothing applied); ignores a
   * message from an unknown client.
   */
  receiveChanges(clientId: ClientId, bytes: Uint8Array): ChangesResult;
  /**
   * Sends the current values of an entity's owned fields to its owner (after the server wrote
   * them itself: the owner's snapshots leave its own fields out).
   */
  correct(entity: Entity): void;
  /**
   * The corrections waiting for a client (rollbacks and `correct` calls), to send reliably
   * and apply with `replica.applyCorrections`; undefined when there are none.
   */
  takeCorrections(clientId: ClientId): Uint8Array | undefined;
  /** Bytes per entity type and field since the server started (with `profile: true`). */
  profile(): Record<string, TypeProfile>;
}

/** Version of the snapshot layout, in its first two bits. */
export const SNAPSHOT_FORMAT = 1;
/** Snapshots named by one ack: the acked one and the 32 before it. */
export const ACK_WINDOW = 32;

/**
 * The largest `historySize`. A sent snapshot is acknowledged, or dropped (its entities then sent
 * whole until acknowledged again), within this many snapshots: replicas rely on it.
 */
export const MAX_HISTORY = 1024;

const KIND_REMOVE = 0;
const KIND_SPAWN = 1;
const KIND_UPDATE = 2;

/**
 * What a sent snapshot carried, kept until the client acknowledges it (or it is known lost):
 * one entry per entity, in parallel arrays. Clients that were sent the same body share one
 * record (it does not change once filled); it goes back to the pool when no history refers
 * to it, and its arrays are reused.
 */
class SentRecord {
  tick = 0;
  /** The world's version when it was encoded. */
  worldVersion = 0;
  /** With checksums: the state the client should hold after applying it. */
  expected: OwnedEntry[] | undefined;
  /** History entries referring to it. */
  users = 0;
  /** Counts resets: a body that links this record names the filling it linked. */
  fillings = 0;
  /** Entries in the arrays below (which are never shrunk, to avoid reallocating). */
  count = 0;
  readonly ids: number[] = [];
  readonly kinds: number[] = [];
  readonly generations: number[] = [];
  readonly typeIndexes: number[] = [];
  /** The entity's change version when sent. */
  readonly versions: number[] = [];
  readonly masks: number[] = [];
  readonly fieldMasks: number[] = [];
  /** Sent values of the fields without an integer image (in entry and field order; the others stay undefined). */
  readonly values: unknown[] = [];
  /** Their integer images, where the field has one. */
  readonly images: number[] = [];
  valueCount = 0;
  /** One past the last entry of `values` that holds a value (numeric fields leave none). */
  valuesEnd = 0;

  reset(tick: number, worldVersion: number): void {
    this.fillings++;
    this.tick = tick;
    this.worldVersion = worldVersion;
    this.expected = undefined;
    this.count = 0;
    // Drop references to old values so they can be collected.
    if (this.valuesEnd > 0) this.values.fill(undefined, 0, this.valuesEnd);
    this.valueCount = 0;
    this.valuesEnd = 0;
  }

  add(
    id: number,
    kind: number,
    generation: number,
    typeIndex: number,
    version: number,
    mask: number,
    fieldMask: number,
  ): void {
    const i = this.count++;
    this.ids[i] = id;
    this.kinds[i] = kind;
    this.generations[i] = generation;
    this.typeIndexes[i] = typeIndex;
    this.versions[i] = version;
    this.masks[i] = mask;
    this.fieldMasks[i] = fieldMask;
  }
}

/** One slot of a client's history: a sent snapshot, whether its fate is known, what it carried. */
interface SentSnapshot {
  id: number;
  resolved: boolean;
  record: SentRecord;
  /** Encoded against a clean state, with every change in it: applying it leaves the client clean. */
  complete: boolean;
  /** The client's `resets` when it was encoded. */
  resets: number;
}

/** Records no history refers to, kept for reuse (a bounded number). */
const MAX_POOLED_RECORDS = 256;

interface Candidate {
  entity: WorldEntity;
  kind: number;
  mask: number;
  fieldMask: number;
  score: number;
}

interface ClientState {
  readonly clientId: ClientId;
  nextSnapshotId: number;
  /**
   * A world version the client is clean at (it holds exactly the world's state as of it, see
   * the clean states section), or −1 when that is not known.
   */
  cleanAt: number;
  /** Snapshots filed and not yet resolved (acknowledged, known lost or forgotten). */
  unresolved: number;
  /** Counts the times what the client holds became unknown (resync, snapshot of unknown fate). */
  resets: number;
  ackedId: number;
  readonly known: KnownTable;
  /** Unresolved snapshots that spawn / remove each id. */
  pendingSpawns: Int32Array;
  pendingRemovals: Int32Array;
  /**
   * The field mask of the last spawn sent of each id, and the last snapshot that sent the id
   * before spawns with that mask began: until it is acknowledged, a spawn with another mask
   * may be what the client holds.
   */
  spawnMask: Uint32Array;
  spawnMaskAfter: Int32Array;
  /** Ids whose state on the client is unknown (an ack never came for a snapshot naming them). */
  readonly uncertain: Set<number>;
  /** Ids the client may hold: known, spawned in flight or uncertain. */
  readonly held: Set<number>;
  readonly visibleIds: number[];
  /** Snapshot id at which each entity was last sent, and how long it has waited since. */
  lastSent: Int32Array;
  waited: Int32Array;
  accumulated: Float64Array;
  /** Snapshot id of the last snapshot each entity was visible in. */
  stamp: Int32Array;
  /**
   * Without interest: a bit per id not clean at the last collect (see `collect`), and the
   * world's change-log entry read up to (−1: none; the next collect scans every id).
   */
  dirty: Uint32Array;
  logPosition: number;
  /** The dirty ids of the current collect, ascending. */
  dirtyList: Int32Array;
  readonly history: (SentSnapshot | undefined)[];
  budget: number | undefined;
  /** Owned fields to send back to the client, by entity id (a mask of fields). */
  readonly corrections: Map<number, number>;
  /** The client's latest owned-field write the server processed. */
  changeSequence: number;
  readonly stats: ClientStats;
}

interface FieldCoder {
  readonly delta: DeltaCoder | undefined;
  readonly stats: FieldStats | undefined;
}

const ALL = 0xffffffff;

/** Update masks of types with at most 10 fields are counted in an array of this size. */
const SMALL_MASKS = 1 << 10;

/** Set bits of a 32-bit mask. */

function bitCount(mask: number): number {
  let bits = mask - ((mask >>> 1) & 0x55555555);
  bits = (bits & 0x33333333) + ((bits >>> 2) & 0x33333333);
  return (((bits + (bits >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

const byId = (a: { entity: WorldEntity }, b: { entity: WorldEntity }) => a.entity.id - b.entity.id;

/** Sorts the first `count` items of `items` in place (insertion sort when short). */
function sortPrefix<T>(items: T[], count: number, compare: (a: T, b: T) => number): void {
  if (count > 24) {
    const sorted = items.slice(0, count).sort(compare);
    for (let i = 0; i < count; i++) items[i] = sorted[i]!;
    return;
  }
  for (let i = 1; i < count; i++) {
    const item = items[i]!;
    let j = i - 1;
    while (j >= 0 && compare(items[j]!, item) > 0) {
      items[j + 1] = items[j]!;
      j--;
    }
    items[j + 1] = item;
  }
}

function fullMask(count: number): number {
  return count === 32 ? ALL : (1 << count) - 1;
}

/**
 * Creates the server side of replication. Wire layout of a snapshot (bit-packed, LSB first):
 * format (2 bits) · snapshot id (varuint) · snapshot id − baseline id (varuint, 0 = none) ·
 * tick (varuint) · checksum flag (1 bit) · per type: 1 bit "has updates", then a Rice
 * parameter per delta-coded field · removals (ids) · spawns (ids, then per entity generation,
 * type index, owned bit, field-presence, fields) · updates (ids, then per entity a field mask
 * — 1 bit when it repeats the previous mask of its type — and the fields, numeric ones as
 * differences from the baseline) · checksum (32 bits, when flagged). Id lists are sorted and
 * Golomb-Rice coded (see id-coding.ts).
 */
export function createReplicationServer(options: ReplicationServerOptions): ReplicationServer {
  const { world, interest, fieldFilter } = options;
  const validate = options.validateChange;
  const priorityOf = options.priority;
  const internals = worldInternals(world);
  const historySize = options.historySize ?? 64;
  if (!Number.isInteger(historySize) || historySize < 2 || historySize > MAX_HISTORY)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `historySize must be an integer in [2, 1024], got ${historySize}`,
    );
  const deltaFields = options.deltaFields ?? true;
  const profiling = options.profile === true;
  const checksums = options.checksums === true;
  const profileCounter = (options.metrics ?? noopMetrics).counter(
    'tickwire_replication_field_bytes_total',
    { help: 'Snapshot bytes per entity type and field' },
  );
  const writer = new BinaryWriter({ maxBytes: options.maxSnapshotBytes ?? 1 << 20 });
  const scratch = new BinaryWriter({ maxBytes: options.maxSnapshotBytes ?? 1 << 20 });
  const clients = new Map<ClientId, ClientState>();
  const coders: FieldCoder[][] = [];
  const profileBits: number[][] = [];
  let tick = 0;
  let preparedVersion = -1;
  /**
   * The last snapshot id sent to a removed client. A client added later numbers its snapshots
   * past it, so an ack or changes message still in flight from a removed client's life names
   * no snapshot of a later one (of the same client id).
   */
  let retiredId = 0;

  const codersOf = (typeIndex: number): FieldCoder[] => {
    let list = coders[typeIndex];
    if (list === undefined) {
      list = world.types[typeIndex]!.fieldTypes.map((type) => {
        const delta = deltaCoderOf(type);
        return { delta, stats: delta ? new FieldStats(delta.bits) : undefined };
      });
      coders[typeIndex] = list;
      profileBits[typeIndex] = new Array<number>(list.length + 1).fill(0);
    }
    return list;
  };

  /** Bits already published to `metrics`, per type and field (the last slot: ids and masks). */
  const publishedBits: number[][] = [];
  /** Adds the bytes counted since the last call to the metrics counter (once per tick). */
  const publishProfile = () => {
    world.types.forEach((type, typeIndex) => {
      const bits = profileBits[typeIndex];
      if (bits === undefined) return;
      let published = publishedBits[typeIndex];
      if (published === undefined) {
        published = new Array<number>(bits.length).fill(0);
        publishedBits[typeIndex] = published;
      }
      for (let field = 0; field < bits.length; field++) {
        const fresh = bits[field]! - published[field]!;
        if (fresh <= 0) continue;
        published[field] = bits[field]!;
        profileCounter.inc(fresh / 8, {
          type: type.name,
          field: field < type.fieldNames.length ? type.fieldNames[field]! : '(ids and masks)',
        });
      }
    });
  };

  const clientOf = (clientId: ClientId): ClientState => {
    const client = clients.get(clientId);
    if (!client)
      throw new TickwireError(
        ErrorCode.NOT_FOUND,
        `replication: unknown client ${String(clientId)}`,
      );
    return client;
  };

  const prepare = () => {
    if (interest !== undefined && preparedVersion !== world.version) {
      interest.prepare(world);
      preparedVersion = world.version;
    }
  };

  // ---- clean states -------------------------------------------------------------------------
  //
  // A client is clean at world version V when it holds exactly the world's state as of V (every
  // entity then alive, at its values then, nothing else) and has no snapshot in flight and no
  // entity of unknown fate. Two clients clean at the same V are in the same state, so within a
  // tick they are sent the same snapshot: the later ones skip `collect` and the sharing key
  // (see `cleanBodies`). A new client is clean at 0 (it holds the world of version 0: nothing);
  // applying a snapshot encoded against a clean state, with every change in it, leaves the
  // client clean at the snapshot's world version; losing one changes nothing it holds; a
  // snapshot of unknown fate or a resync makes its state unknown.

  /** The version the client is clean at now, or −1. */
  const cleanStateOf = (client: ClientState): number =>
    client.unresolved === 0 && client.uncertain.size === 0 ? client.cleanAt : -1;

  // ---- acknowledgement bookkeeping -------------------------------------------------------

  const forgetPending = (client: ClientState, kind: number, id: number) => {
    if (kind === KIND_SPAWN) client.pendingSpawns[id]!--;
    else if (kind === KIND_REMOVE) client.pendingRemovals[id]!--;
  };

  const refreshHeld = (client: ClientState, id: number) => {
    if (client.known.has(id) || client.pendingSpawns[id]! > 0 || client.uncertain.has(id))
      client.held.add(id);
    else client.held.delete(id);
  };

  const merge = (client: ClientState, snapshot: SentSnapshot) => {
    const record = snapshot.record;
    const { ids, kinds, generations, typeIndexes, versions, masks, fieldMasks, values, images } =
      record;
    const known = client.known;
    let offset = 0;
    for (let i = 0; i < record.count; i++) {
      const id = ids[i]!;
      const kind = kinds[i]!;
      forgetPending(client, kind, id);
      if (kind === KIND_REMOVE) {
        known.clear(id);
        client.uncertain.delete(id);
        refreshHeld(client, id);
        continue;
      }
      const typeIndex = typeIndexes[i]!;
      const isSpawn = kind === KIND_SPAWN;
      if (isSpawn) {
        client.uncertain.delete(id);
        known.hold(id);
        known.generation[id] = generations[i]!;
        known.typeIndex[id] = typeIndex;
        known.fieldMask[id] = fieldMasks[i]!;
        known.values[id] = undefined;
      } else if (known.present[id] !== 1 || known.generation[id] !== generations[i]) {
        offset += bitCount(masks[i]!);
        continue;
      }
      known.version[id] = versions[i]!;
      known.tick[id] = record.tick;
      const typeCoders = codersOf(typeIndex);
      const base = known.at(id, 0);
      for (let field = 0, mask = masks[i]!; mask !== 0; field++, mask >>>= 1) {
        if ((mask & 1) === 0) continue;
        if (typeCoders[field]!.delta !== undefined) known.images[base + field] = images[offset]!;
        else {
          let stored = known.values[id];
          if (stored === undefined) {
            stored = [];
            known.values[id] = stored;
          }
          stored[field] = values[offset];
        }
        offset++;
      }
      // An update changes nothing about what the client holds.
      if (isSpawn) refreshHeld(client, id);
    }
  };

  const drop = (client: ClientState, snapshot: SentSnapshot, applied: boolean | undefined) => {
    snapshot.resolved = true;
    client.unresolved--;
    if (applied === undefined) {
      client.cleanAt = -1;
      client.resets++;
    }
    if (applied === true) {
      merge(client, snapshot);
      return;
    }
    if (applied === false) client.stats.lost++;
    const { ids, kinds, count } = snapshot.record;
    for (let i = 0; i < count; i++) {
      const id = ids[i]!;
      forgetPending(client, kinds[i]!, id);
      // Unknown fate: the client may or may not hold what this snapshot carried.
      if (applied === undefined) {
        client.uncertain.add(id);
        client.known.clear(id);
      }
      refreshHeld(client, id);
    }
  };

  const ack = (client: ClientState, snapshotId: number, earlier: number): boolean => {
    if (
      !Number.isInteger(snapshotId) ||
      snapshotId <= client.ackedId ||
      snapshotId >= client.nextSnapshotId
    )
      return false;
    const acked = client.history[snapshotId % historySize];
    if (acked === undefined || acked.id !== snapshotId || acked.resolved) return false;
    // Resolve every unresolved snapshot up to the acked one, oldest first.
    for (
      let id = Math.max(client.ackedId + 1, snapshotId - historySize + 1);
      id <= snapshotId;
      id++
    ) {
      const snapshot = client.history[id % historySize];
      if (snapshot === undefined || snapshot.id !== id || snapshot.resolved) continue;
      const distance = snapshotId - id;
      const applied =
        distance === 0
          ? true
          : distance <= ACK_WINDOW
            ? ((earlier >>> (distance - 1)) & 1) === 1
            : undefined;
      drop(client, snapshot, applied);
    }
    client.ackedId = snapshotId;
    // Complete and encoded since the last time what the client holds became unknown.
    client.cleanAt =
      acked.complete && acked.resets === client.resets ? acked.record.worldVersion : -1;
    client.stats.acks++;
    return true;
  };

  // ---- encoding ----------------------------------------------------------------------------

  let typeMaskCache: number[] = [];
  /** Every field's bit, by type index. */
  const fullMasks = (): number[] => {
    if (typeMaskCache.length !== world.types.length) {
      typeMaskCache = world.types.map((type) => fullMask(type.fieldNames.length));
      anyOwned = world.types.some((type) => type.ownedMask !== 0);
      // What collect decides for these types depends on per-client counters (lastSent) and
      // the ticks values came from, not only on what the client holds.
      anyPaced = world.types.some(
        (type) => type.updateInterval > 1 || type.deadReckoning !== undefined,
      );
    }
    return typeMaskCache;
  };
  let anyOwned = false;
  let anyPaced = false;
  /** The most fields any type has (the stride of the known-value tables). */
  const maxFields = (): number => {
    let most = 1;
    for (const type of world.types) most = Math.max(most, type.fieldNames.length);
    return most;
  };

  /** The fields of `entity` the client may see (the owner's own fields included). */
  const visibleMaskFor = (client: ClientState, entity: WorldEntity): number => {
    let mask = fullMask(entity.type.fieldNames.length);
    if (fieldFilter !== undefined) {
      const allowed = fieldFilter(client.clientId, entity);
      if (allowed !== undefined) mask &= allowed;
    }
    return mask >>> 0;
  };

  const deadReckoned = (known: KnownTable, entity: WorldEntity): boolean => {
    const model = entity.type.deadReckoning!;
    const names = entity.type.fieldNames;
    const base: Record<string, unknown> = {};
    const actual: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) {
      base[names[i]!] = known.value(entity.id, i);
      actual[names[i]!] = entity.fieldValues[i];
    }
    const predicted = model.extrapolate(base as EntityValues<Shape>, tick - known.tick[entity.id]!);
    return model.error(actual as EntityValues<Shape>, predicted) <= model.threshold;
  };

  // Per-snapshot work lists, reused: arrays with explicit counts (never truncated, so V8 keeps
  // their storage).
  const candidates: Candidate[] = [];
  let candidateCount = 0;
  const removals: number[] = [];
  let removalCount = 0;
  const spawns: Candidate[] = [];
  let spawnCount = 0;
  const updates: Candidate[] = [];
  let updateCount = 0;
  const ids: number[] = [];
  let sortedIds = new Int32Array(64);
  const typeHasUpdates: number[] = [];
  const defaultMasks: number[] = [];
  const maskCounts = new Map<number, number>();
  const smallMaskCounts = new Int32Array(SMALL_MASKS);

  /** Per type with updates: the union of their masks and the commonest mask. */
  const chooseDefaultMasks = () => {
    typeHasUpdates.fill(0);
    for (let i = 0; i < updateCount; i++) {
      const update = updates[i]!;
      const typeIndex = update.entity.typeIndex;
      typeHasUpdates[typeIndex] = ((typeHasUpdates[typeIndex] ?? 0) | update.mask) >>> 0;
    }
    for (let typeIndex = 0; typeIndex < typeHasUpdates.length; typeIndex++) {
      const union = typeHasUpdates[typeIndex] ?? 0;
      if (union === 0) continue;
      // Masks below SMALL_MASKS are counted in an array (reset after), others in a map.
      const small = union < SMALL_MASKS;
      if (!small) maskCounts.clear();
      let best = 0;
      let bestCount = 0;
      for (let i = 0; i < updateCount; i++) {
        const update = updates[i]!;
        if (update.entity.typeIndex !== typeIndex) continue;
        const mask = update.mask;
        let count: number;
        if (small) count = ++smallMaskCounts[mask]!;
        else {
          count = (maskCounts.get(mask) ?? 0) + 1;
          maskCounts.set(mask, count);
        }
        if (count > bestCount) {
          bestCount = count;
          best = mask;
        }
      }
      if (small)
        for (let i = 0; i < updateCount; i++)
          smallMaskCounts[updates[i]!.mask & (SMALL_MASKS - 1)] = 0;
      defaultMasks[typeIndex] = best;
    }
  };
  /** Some entity that wanted to be sent was left out (then no checksum can be exact). */
  let skipped = false;

  /**
   * Picks what a snapshot for `client` carries: `candidates` (spawns and updates) and
   * `removals`.
   *
   * Without interest, field filters or owned fields, it does not look at every id. What it
   * relies on: between two collects of a client, every id that may need sending is either in
   * `client.dirty` (not clean at the last collect: sent and not yet acknowledged, deferred,
   * paced, a despawned id the client holds) or in the world's change log from
   * `client.logPosition` on — every change to `versions.changed` goes through
   * `WorldVersions.touch`, and what the client knows shrinks only by acknowledged removals
   * (nothing left to send) or with `uncertain` ids (resync, unknown fates: then it scans every
   * id). A client behind the log's start, or one whose last collect threw, also scans.
   */
  const collect = (client: ClientState) => {
    const snapshotId = client.nextSnapshotId;
    const slots = internals.slots;
    const visible = client.visibleIds;
    visible.length = 0;
    let visibleIds: ArrayLike<number> = visible;
    if (interest !== undefined) {
      interest.visible(client.clientId, visible);
      // The id lists on the wire are sorted: sort the ids once, as numbers.
      if (sortedIds.length < visible.length) sortedIds = new Int32Array(visible.length * 2);
      for (let i = 0; i < visible.length; i++) sortedIds[i] = visible[i]!;
      visibleIds = sortedIds.subarray(0, visible.length).sort();
    }
    candidateCount = 0;
    removalCount = 0;
    skipped = false;
    const budgeted = client.budget !== undefined;
    reserve(client, slots.length);
    const { known } = client;
    const {
      present,
      generation: knownGeneration,
      fieldMask: knownFieldMask,
      version: knownVersion,
    } = known;
    const { stamp, pendingRemovals, pendingSpawns, lastSent, waited, accumulated, uncertain } =
      client;
    const anyUncertain = uncertain.size > 0;
    let heldSeen = 0;
    const typeMasks = fullMasks();
    const simpleMasks = fieldFilter === undefined && !anyOwned;
    const everything = interest === undefined;
    const versions = internals.versions;
    const changedAt = versions.changed;
    // Without interest, filters or owned fields, the ids worth a look are the ones not clean
    // last time (`client.dirty`) and the ones the world logged since: no scan of every id.
    const tracked = everything && simpleMasks;
    const dirty = client.dirty;
    let logEnd = -1;
    let listed = !everything;
    let count = everything ? slots.length : visible.length;
    if (tracked) {
      const end = versions.logEnd;
      if (!anyUncertain && client.logPosition >= versions.logStart) {
        const log = versions.log;
        for (let p = client.logPosition - versions.logStart; p < versions.logLength; p++) {
          const id = log[p]!;
          dirty[id >>> 5]! |= 1 << (id & 31);
        }
        visibleIds = dirtyIds(client);
        count = visibleIds.length;
        listed = true;
      } else dirty.fill(0);
      if (end > versions.readMark) versions.readMark = end;
      // The log is read and the bits cleared: until the loop below has set them again, a
      // throw (from a priority or dead-reckoning callback) must leave a full scan for next time.
      logEnd = end;
    }
    client.logPosition = -1;
    let deadHeld = false;
    let seen = 0;
    for (let i = 0; i < count; i++) {
      const id = listed ? visibleIds[i]! : i;
      // Unchanged since the client's copy, with the same fields: decided from dense arrays
      // alone, without touching the entity (most entities of a large world, most ticks). The
      // client holds this very entity: an id it does not hold has version 0 or −1, and a
      // respawn at this id happened after anything the client knows of the old generation.
      if (simpleMasks && changedAt[id]! <= knownVersion[id]! && pendingRemovals[id] === 0) {
        if (!everything) stamp[id] = snapshotId;
        seen++;
        heldSeen++;
        continue;
      }
      const entity = slots[id];
      if (entity === undefined) {
        // A despawned entity the client may hold: its removal goes out below.
        if (tracked && client.held.has(id)) {
          dirty[id >>> 5]! |= 1 << (id & 31);
          deadHeld = true;
        }
        continue;
      }
      // Not clean: looked at again next time (until an ack makes it clean).
      if (tracked) dirty[id >>> 5]! |= 1 << (id & 31);
      // Without interest every live entity is seen: the removal pass below needs no stamps.
      if (!everything) stamp[id] = snapshotId;
      seen++;
      const isKnown = present[id] === 1;
      if (isKnown || pendingSpawns[id]! > 0 || (anyUncertain && uncertain.has(id))) heldSeen++;
      const visibleMask = simpleMasks
        ? typeMasks[entity.typeIndex]!
        : visibleMaskFor(client, entity);
      // The owner gets its own fields only when the entity is (re)spawned: after that they
      // are its writes, and server-side values reach it as corrections.
      const fieldMask =
        simpleMasks || entity.owner !== client.clientId
          ? visibleMask
          : (visibleMask & ~entity.type.ownedMask) >>> 0;
      let kind: number;
      let mask: number;
      const since = knownVersion[id]!;
      if (
        !isKnown ||
        knownGeneration[id] !== entity.generation ||
        knownFieldMask[id] !== fieldMask ||
        entity.metaVersion > since ||
        pendingRemovals[id]! > 0 ||
        // A spawn in flight with other fields (hidden, then shown again) may be what it holds.
        (pendingSpawns[id]! > 0 &&
          (client.spawnMask[id] !== fieldMask || client.spawnMaskAfter[id]! > client.ackedId))
      ) {
        kind = KIND_SPAWN;
        mask = visibleMask;
      } else {
        if (entity.changeVersion <= since) continue;
        mask = 0;
        const versions = entity.fieldVersions;
        for (let field = 0; field < versions.length; field++)
          if (versions[field]! > since) mask |= 1 << field;
        mask = (mask & fieldMask) >>> 0;
        if (mask === 0) continue;
        const type = entity.type;
        if (
          (type.updateInterval > 1 && snapshotId - lastSent[id]! < type.updateInterval) ||
          (type.deadReckoning !== undefined && deadReckoned(known, entity))
        ) {
          skipped = true;
          continue;
        }
        kind = KIND_UPDATE;
      }
      let score = 0;
      if (budgeted) {
        const weight =
          entity.type.priority *
          (priorityOf === undefined ? 1 : priorityOf(client.clientId, entity));
        accumulated[id] = accumulated[id]! + weight;
        waited[id] = waited[id]! + 1;
        // Entities that waited their type's maxInterval go first, longest wait first.
        score = waited[id]! >= entity.type.maxInterval ? 1e12 + waited[id]! : accumulated[id]!;
      }
      let candidate = candidates[candidateCount];
      if (candidate === undefined)
        candidate = candidates[candidateCount] = { entity, kind, mask, fieldMask, score };
      else {
        candidate.entity = entity;
        candidate.kind = kind;
        candidate.mask = mask;
        candidate.fieldMask = fieldMask;
        candidate.score = score;
      }
      candidateCount++;
    }
    if (tracked) client.logPosition = logEnd;
    // Only the listed ids were counted: without interest, the client sees every live entity.
    client.stats.visible = listed && everything ? world.size : seen;
    // Whatever the client may hold and no longer sees (despawned, out of view) is removed.
    // When every id the client may hold was seen above, nothing needs removing (without
    // interest: when no id the client may hold was found despawned).
    if (listed && everything ? deadHeld : heldSeen !== client.held.size)
      for (const id of client.held) {
        const entity = slots[id];
        if (entity !== undefined && (everything || stamp[id] === snapshotId)) continue;
        removals[removalCount++] = id;
      }
    if (removalCount > 1) sortPrefix(removals, removalCount, (a, b) => a - b);
  };

  /** The client's dirty ids in ascending order; clears their bits (collect sets them again). */
  const dirtyIds = (client: ClientState): Int32Array => {
    const dirty = client.dirty;
    let list = client.dirtyList;
    let n = 0;
    for (let w = 0; w < dirty.length; w++) {
      let word = dirty[w]!;
      if (word === 0) continue;
      dirty[w] = 0;
      do {
        const low = word & -word;
        if (n === list.length) {
          const grown = new Int32Array(Math.max(64, list.length * 2));
          grown.set(list);
          list = client.dirtyList = grown;
        }
        list[n++] = (w << 5) | (31 - Math.clz32(low));
        word ^= low;
      } while (word !== 0);
    }
    return list.subarray(0, n);
  };

  /** Makes the client's per-id arrays hold at least `size` ids. */
  const reserve = (client: ClientState, size: number) => {
    client.known.reserve(size, maxFields());
    if (client.stamp.length >= size) return;
    const capacity = Math.max(64, size * 2);
    const grow = <A extends Int32Array | Uint32Array | Float64Array>(
      old: A,
      make: (n: number) => A,
    ): A => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    client.pendingSpawns = grow(client.pendingSpawns, (n) => new Int32Array(n));
    client.pendingRemovals = grow(client.pendingRemovals, (n) => new Int32Array(n));
    client.spawnMask = grow(client.spawnMask, (n) => new Uint32Array(n));
    client.spawnMaskAfter = grow(client.spawnMaskAfter, (n) => new Int32Array(n));
    client.lastSent = grow(client.lastSent, (n) => new Int32Array(n));
    client.waited = grow(client.waited, (n) => new Int32Array(n));
    client.accumulated = grow(client.accumulated, (n) => new Float64Array(n));
    client.stamp = grow(client.stamp, (n) => new Int32Array(n));
    client.dirty = grow(client.dirty, () => new Uint32Array(Math.ceil(capacity / 32)));
  };

  /** Writes an entity's masked fields; numeric ones as differences when `known` is given. */
  const writeEntityFields = (candidate: Candidate, known: KnownTable | undefined) => {
    const entity = candidate.entity;
    const base = known === undefined ? 0 : known.at(entity.id, 0);
    const typeIndex = entity.typeIndex;
    const fieldTypes = entity.type.fieldTypes;
    const typeCoders = codersOf(typeIndex);
    const bits = profileBits[typeIndex]!;
    for (let field = 0, mask = candidate.mask; mask !== 0; field++, mask >>>= 1) {
      if ((mask & 1) === 0) continue;
      const start = profiling ? writer.bitLength : 0;
      const coder = typeCoders[field]!;
      const delta = coder.delta;
      if (delta === undefined) {
        fieldTypes[field]!.write(writer, entity.fieldValues[field]);
      } else {
        const image = entity.fieldImages[field]!;
        if (known === undefined) {
          writer.writeBits(image, delta.bits);
        } else {
          const reference = known.images[base + field]!;
          const stats = coder.stats!;
          const k = deltaFields ? stats.k : PLAIN;
          const sampled = stats.sample();
          // A plain field not sampled needs no difference.
          if (k === PLAIN && !sampled) writer.writeBits(image, delta.bits);
          else {
            const code = delta.code(image, reference);
            if (sampled) stats.add(code, delta.shiftOf(reference));
            if (k === PLAIN) writer.writeBits(image, delta.bits);
            else delta.write(writer, code, k, image, reference);
          }
        }
      }
      if (profiling) bits[field]! += writer.bitLength - start;
    }
  };

  const typeBitsOf = () => bitsFor(world.types.length);

  /** The world version of the client's baseline snapshot (−1: none). */
  const basisVersionOf = (client: ClientState): number => {
    const basis = client.history[client.ackedId % historySize];
    return client.ackedId !== 0 && basis !== undefined && basis.id === client.ackedId
      ? basis.record.worldVersion
      : -1;
  };

  /** Why a removal goes: true = it left the client's view (the entity lives on), false = despawned. */
  const leftView = (client: ClientState, id: number): boolean => {
    const entity = internals.slots[id];
    const known = client.known;
    return entity !== undefined && (!known.has(id) || known.generation[id] === entity.generation);
  };

  /** A spawn's per-client flags: entered the view (older than the baseline), owned by the client. */
  const enteredView = (entity: WorldEntity, basisVersion: number): boolean =>
    entity.spawnVersion <= basisVersion;
  const ownedBy = (client: ClientState, entity: WorldEntity): boolean =>
    entity.owner !== undefined && entity.owner === client.clientId;

  /** The per-client start of a snapshot: format, snapshot id, baseline distance, tick. */
  const writeHeader = (client: ClientState, exact: boolean) => {
    const snapshotId = client.nextSnapshotId;
    writer.writeBits(SNAPSHOT_FORMAT, 2);
    writer.writeVarUint(snapshotId);
    writer.writeVarUint(client.ackedId !== 0 ? snapshotId - client.ackedId : 0);
    writer.writeVarUint(tick);
    writer.writeBool(exact);
  };

  const writeSnapshot = (client: ClientState): Uint8Array => {
    const typeBits = typeBitsOf();
    writer.reset();
    // A checksum is exact only when nothing that wanted to be sent was left out.
    const exact = checksums && !skipped && deferred === 0;
    writeHeader(client, exact);
    // Everything after this point depends on the client only through what `shareKey` lists.
    bodyStart = writer.bitLength;
    // Per type: the fields any update carries, and the coding parameter of each numeric one.
    // Field masks: per type a default (the commonest mask of its updates) and the exceptions,
    // by position among that type's updates; no mask bits per entity.
    chooseDefaultMasks();
    for (let typeIndex = 0; typeIndex < world.types.length; typeIndex++) {
      const union = typeHasUpdates[typeIndex] ?? 0;
      writer.writeBool(union !== 0);
      if (union === 0) continue;
      const typeCoders = codersOf(typeIndex);
      // Retune each field's parameter once enough differences were seen.
      for (const coder of typeCoders) coder.stats?.update();
      writer.writeBits(union, typeCoders.length);
      for (let field = 0; field < typeCoders.length; field++)
        if ((union >>> field) & 1 && typeCoders[field]!.delta !== undefined)
          writer.writeBits(deltaFields ? typeCoders[field]!.stats!.k : PLAIN, K_BITS);
      // The default mask: 1 bit when it is the union, else its bits.
      const defaultMask = defaultMasks[typeIndex]!;
      writer.writeBool(defaultMask === union);
      if (defaultMask !== union) writer.writeBits(defaultMask, typeCoders.length);
      let exceptions = 0;
      for (let i = 0; i < updateCount; i++) {
        const update = updates[i]!;
        if (update.entity.typeIndex === typeIndex && update.mask !== defaultMask) exceptions++;
      }
      writer.writeBool(exceptions > 0);
      if (exceptions > 0) writer.writeVarUint(exceptions - 1);
      let position = 0;
      let previous = -1;
      for (let i = 0; i < updateCount && exceptions > 0; i++) {
        const update = updates[i]!;
        if (update.entity.typeIndex !== typeIndex) continue;
        if (update.mask !== defaultMasks[typeIndex]) {
          writer.writeVarUint(position - previous - 1);
          writer.writeBits(update.mask, typeCoders.length);
          previous = position;
          exceptions--;
        }
        position++;
      }
    }
    writeIds(writer, removals, removalCount);
    for (let i = 0; i < removalCount; i++) writer.writeBool(leftView(client, removals[i]!));
    for (let i = 0; i < spawnCount; i++) ids[i] = spawns[i]!.entity.id;
    writeIds(writer, ids, spawnCount);
    // Spawns of entities older than the client's baseline entered its view.
    const basisVersion = basisVersionOf(client);
    for (let i = 0; i < spawnCount; i++) {
      const spawn = spawns[i]!;
      const entity = spawn.entity;
      codersOf(entity.typeIndex);
      const start = profiling ? writer.bitLength : 0;
      writer.writeVarUint(entity.generation);
      writer.writeBits(entity.typeIndex, typeBits);
      writer.writeBool(enteredView(entity, basisVersion));
      writer.writeBool(ownedBy(client, entity));
      const all = fullMask(entity.type.fieldNames.length);
      writer.writeBool(spawn.mask === all);
      if (spawn.mask !== all) writer.writeBits(spawn.mask, entity.type.fieldNames.length);
      if (profiling)
        profileBits[entity.typeIndex]![entity.type.fieldNames.length]! += writer.bitLength - start;
      writeEntityFields(spawn, undefined);
    }
    for (let i = 0; i < updateCount; i++) ids[i] = updates[i]!.entity.id;
    writeIds(writer, ids, updateCount);
    for (let i = 0; i < updateCount; i++) {
      const update = updates[i]!;
      const entity = update.entity;
      const start = profiling ? writer.bitLength : 0;
      const typeIndex = entity.typeIndex;
      if (profiling)
        profileBits[typeIndex]![entity.type.fieldNames.length]! += writer.bitLength - start;
      writeEntityFields(update, client.known);
    }
    if (exact) writer.writeBits(expectedChecksum(client), 32);
    return writer.toBytes();
  };

  /**
   * Checksum of the state the client holds after applying this snapshot: its state as of the
   * baseline with this snapshot's removals, spawns and updates applied. Exact only when every
   * change since the baseline is in the snapshot (see `exact` in writeSnapshot).
   */
  const expectedChecksum = (client: ClientState): number => {
    let sum = 0;
    const expected: OwnedEntry[] = [];
    lastExpected = expected;
    const changed = new Map<number, Candidate | null>();
    for (let i = 0; i < removalCount; i++) changed.set(removals[i]!, null);
    for (let i = 0; i < spawnCount; i++) {
      const spawn = spawns[i]!;
      const entity = spawn.entity;
      changed.set(entity.id, null);
      const values = entity.fieldValues;
      sum =
        (sum +
          entityChecksum(entity.id, entity.generation, entity.type, values, spawn.fieldMask)) >>>
        0;
      expected.push({
        id: entity.id,
        generation: entity.generation,
        typeIndex: entity.typeIndex,
        mask: spawn.fieldMask,
        values: [...values],
      });
    }
    for (let i = 0; i < updateCount; i++) changed.set(updates[i]!.entity.id, updates[i]!);
    const known = client.known;
    for (const id of known.ids()) {
      const update = changed.get(id);
      if (update === null) continue;
      const type = world.types[known.typeIndex[id]!]!;
      const values = known.valuesOf(id);
      if (update !== undefined)
        for (let field = 0, mask = update.mask; mask !== 0; field++, mask >>>= 1)
          if (mask & 1) values[field] = update.entity.fieldValues[field];
      const generation = known.generation[id]!;
      const fieldMask = known.fieldMask[id]!;
      sum = (sum + entityChecksum(id, generation, type, values, fieldMask)) >>> 0;
      expected.push({ id, generation, typeIndex: known.typeIndex[id]!, mask: fieldMask, values });
    }
    return sum;
  };

  /** The expected client state computed with the last checksum (kept for diagnosis). */
  let lastExpected: OwnedEntry[] | undefined;

  /** Splits the first `candidateCount` candidates into spawns and updates. */
  const split = (count: number) => {
    spawnCount = 0;
    updateCount = 0;
    for (let i = 0; i < count; i++) {
      const candidate = candidates[i]!;
      if (candidate.kind === KIND_SPAWN) spawns[spawnCount++] = candidate;
      else updates[updateCount++] = candidate;
    }
  };

  // ---- shared encodings --------------------------------------------------------------------
  //
  // A snapshot is a per-client header (snapshot id, baseline distance, tick) and a body. The
  // body depends on the client only through its removals (and why each goes), its spawns (and
  // their per-client flags), its updates with their field masks, and the baseline images the
  // numeric fields are coded against: `shareKey` lists exactly those. Clients of one tick with
  // equal keys get the same body, so it is encoded once and spliced behind each header.

  const sharing = options.shareEncodings !== false && !checksums && !profiling;
  /** Bit where the body of the snapshot being written starts. */
  let bodyStart = 0;
  interface SharedBody {
    hash: number;
    key: number[];
    keyLength: number;
    /** The body, from the byte holding its first bit. */
    bytes: Uint8Array;
    byteLength: number;
    /** Bit offset of the body in its first byte. */
    phase: number;
    /** What it carried, filed in the history of the client it was encoded for. */
    record: SentRecord | undefined;
    /** The record's filling when linked (it may have been released and reused since). */
    recordFilling: number;
    /** Counts the times the slot was filled (a clean-state entry names the filling it used). */
    fills: number;
  }

  /** What a client clean at some version was sent this tick, for the others clean at it. */
  interface CleanEntry {
    body: SharedBody;
    fills: number;
    visible: number;
    complete: boolean;
    removals: number[];
    spawns: Candidate[];
    updates: Candidate[];
  }
  const cleanBodies = new Map<number, CleanEntry>();
  /** The body the snapshot just written used (shared or new), for `cleanBodies`. */
  let usedBody: SharedBody | undefined;
  const MAX_SHARED = 8;
  const shared: SharedBody[] = [];
  let sharedCount = 0;
  let sharedNext = 0;
  let sharedVersion = -1;
  let sharedTick = -1;
  let sharedTypes = -1;
  /** Hits and lookups of the current tick; a tick without a hit pauses sharing for a while. */
  let sharedHits = 0;
  let sharedLookups = 0;
  let pausedUntilTick = -1;
  /** Ticks sharing stays off after a tick in which no body was shared (interest, filters…). */
  const SHARING_PAUSE_TICKS = 50;
  const key: number[] = [];
  let keyLength = 0;
  /** For `record`: the record of the shared body just used, or the body just encoded. */
  let shareRecord: SentRecord | undefined;
  let newBody: SharedBody | undefined;
  /** For `record`: the snapshot just written was encoded against a clean known state, whole. */
  let encodedComplete = false;
  /** The client being encoded is in a clean state no other client of this tick was in. */
  let cleanLeader = false;

  /** Fills `key` with what the body depends on; returns its hash. */
  const shareKey = (client: ClientState): number => {
    const known = client.known;
    let n = 0;
    key[n++] = removalCount;
    for (let i = 0; i < removalCount; i++) {
      const id = removals[i]!;
      key[n++] = id;
      key[n++] = leftView(client, id) ? 1 : 0;
    }
    const basisVersion = basisVersionOf(client);
    key[n++] = spawnCount;
    for (let i = 0; i < spawnCount; i++) {
      const spawn = spawns[i]!;
      const entity = spawn.entity;
      key[n++] = entity.id;
      key[n++] = spawn.mask;
      key[n++] = spawn.fieldMask;
      key[n++] = (enteredView(entity, basisVersion) ? 1 : 0) | (ownedBy(client, entity) ? 2 : 0);
    }
    key[n++] = updateCount;
    const images = known.images;
    for (let i = 0; i < updateCount; i++) {
      const update = updates[i]!;
      const entity = update.entity;
      key[n++] = entity.id;
      key[n++] = update.mask;
      key[n++] = update.fieldMask;
      const base = known.at(entity.id, 0);
      const typeCoders = codersOf(entity.typeIndex);
      for (let field = 0, mask = update.mask; mask !== 0; field++, mask >>>= 1)
        if ((mask & 1) === 1 && typeCoders[field]!.delta !== undefined)
          key[n++] = images[base + field]!;
    }
    keyLength = n;
    let hash = 0x811c9dc5;
    for (let i = 0; i < n; i++) hash = Math.imul(hash ^ (key[i]! | 0), 0x01000193);
    return hash >>> 0;
  };

  const sameKey = (body: SharedBody, hash: number): boolean => {
    if (body.hash !== hash || body.keyLength !== keyLength) return false;
    const stored = body.key;
    for (let i = 0; i < keyLength; i++) if (stored[i] !== key[i]) return false;
    return true;
  };

  /** The client's snapshot: a body encoded earlier this tick behind its header, or a new one. */
  /** Starts a new set of shared bodies when the tick, the world or its types changed. */
  const sharingEpoch = () => {
    if (
      sharedVersion !== world.version ||
      sharedTick !== tick ||
      sharedTypes !== world.types.length
    ) {
      // Clients of different views rarely share a body: then the key is only a cost.
      if (sharedTick !== tick && sharedLookups > 1 && sharedHits === 0)
        pausedUntilTick = tick + SHARING_PAUSE_TICKS;
      sharedVersion = world.version;
      sharedTick = tick;
      sharedTypes = world.types.length;
      sharedCount = 0;
      sharedNext = 0;
      sharedHits = 0;
      sharedLookups = 0;
      cleanBodies.clear();
    }
  };

  const sharedSnapshot = (client: ClientState): Uint8Array => {
    sharingEpoch();
    // The first client in a clean state leaves a body for the others in it: never paused, and
    // not counted as a lookup that found nothing.
    if (!cleanLeader) {
      if (tick < pausedUntilTick) return writeSnapshot(client);
      sharedLookups++;
    }
    const hash = shareKey(client);
    for (let i = 0; i < sharedCount; i++) {
      const body = shared[i]!;
      if (!sameKey(body, hash)) continue;
      const bytes = splice(client, body);
      if (bytes !== undefined) {
        tookShared(client, body);
        usedBody = body;
        return bytes;
      }
    }
    const bytes = writeSnapshot(client);
    const slot = sharedNext;
    sharedNext = (sharedNext + 1) % MAX_SHARED;
    sharedCount = Math.max(sharedCount, slot + 1);
    let body = shared[slot];
    if (body === undefined)
      body = shared[slot] = {
        hash: 0,
        key: [],
        keyLength: 0,
        bytes: new Uint8Array(0),
        byteLength: 0,
        phase: 0,
        record: undefined,
        recordFilling: 0,
        fills: 0,
      };
    body.hash = hash;
    for (let i = 0; i < keyLength; i++) body.key[i] = key[i]!;
    body.keyLength = keyLength;
    const from = bodyStart >>> 3;
    body.byteLength = bytes.byteLength - from;
    if (body.bytes.length < body.byteLength) body.bytes = new Uint8Array(body.byteLength);
    body.bytes.set(bytes.subarray(from));
    body.phase = bodyStart & 7;
    body.record = undefined;
    body.fills++;
    newBody = body;
    usedBody = body;
    return bytes;
  };

  /**
   * The client's header followed by a stored body, meeting inside one byte: the header ends at
   * the bit phase the body started at, since its varints are whole bytes. Undefined when the
   * result would pass maxSnapshotBytes (another client's header may be a byte longer): the
   * caller encodes, and fails as the encoder does.
   */
  const splice = (client: ClientState, body: SharedBody): Uint8Array | undefined => {
    writer.reset();
    writeHeader(client, false);
    const headerBits = writer.bitLength;
    const header = writer.view();
    const whole = headerBits >>> 3;
    if (whole + body.byteLength > writer.maxBytes) return undefined;
    // A new array, like the encoder's: the caller may keep the snapshot.
    const spliced = new Uint8Array(whole + body.byteLength);
    spliced.set(header.subarray(0, whole));
    spliced.set(body.bytes.subarray(0, body.byteLength), whole);
    if (body.phase !== 0) {
      // The shared byte: the header's low bits, the body's high bits (bits go LSB first).
      const low = (1 << body.phase) - 1;
      spliced[whole] = (header[whole]! & low) | (body.bytes[0]! & ~low);
    }
    return spliced;
  };

  /** Whether the client can be sent what another client in its state was sent this tick. */
  const cleanSharing = (client: ClientState): boolean => {
    fullMasks(); // refreshes anyOwned and anyPaced
    return (
      sharing &&
      clients.size > 1 &&
      client.budget === undefined &&
      interest === undefined &&
      fieldFilter === undefined &&
      !anyOwned &&
      !anyPaced
    );
  };

  /** Collects and encodes; notes whether the snapshot leaves the client clean once applied. */
  const encodeFor = (client: ClientState): Uint8Array => {
    // What it holds is world@cleanAt, or nothing (a new or resynced client: all is sent whole).
    const cleanKnown =
      (client.cleanAt !== -1 && client.uncertain.size === 0) || client.known.size === 0;
    collect(client);
    const bytes = select(client);
    encodedComplete = cleanKnown && !skipped && deferred === 0;
    return bytes;
  };

  /** The record a body carried, unless it went back to the pool since (then `record` fills one). */
  const linkedRecord = (body: SharedBody): SentRecord | undefined => {
    const record = body.record;
    return record !== undefined && record.users > 0 && record.fillings === body.recordFilling
      ? record
      : undefined;
  };

  /** Counts a body taken from another client and passes its record on to `record`. */
  const tookShared = (client: ClientState, body: SharedBody) => {
    client.stats.shared++;
    sharedHits++;
    shareRecord = linkedRecord(body);
  };

  /** The entry for clients clean at `state`, unless its body slot was refilled since. */
  const currentClean = (state: number): CleanEntry | undefined => {
    const entry = cleanBodies.get(state);
    return entry !== undefined && entry.body.fills === entry.fills ? entry : undefined;
  };

  /** The snapshot of another client clean at `state` this tick, behind this client's header. */
  const followClean = (client: ClientState, state: number): Uint8Array | undefined => {
    sharingEpoch();
    const entry = currentClean(state);
    if (entry === undefined) return undefined;
    const bytes = splice(client, entry.body);
    if (bytes === undefined) return undefined;
    // What collect would have done besides choosing: room in the client's per-id arrays.
    reserve(client, internals.slots.length);
    removalCount = entry.removals.length;
    for (let i = 0; i < removalCount; i++) removals[i] = entry.removals[i]!;
    spawnCount = entry.spawns.length;
    for (let i = 0; i < spawnCount; i++) spawns[i] = entry.spawns[i]!;
    updateCount = entry.updates.length;
    for (let i = 0; i < updateCount; i++) updates[i] = entry.updates[i]!;
    tookShared(client, entry.body);
    encodedComplete = entry.complete;
    client.stats.followed++;
    client.stats.visible = entry.visible;
    client.stats.deferred = 0;
    return bytes;
  };

  const copyCandidate = (c: Candidate): Candidate => ({
    entity: c.entity,
    kind: c.kind,
    mask: c.mask,
    fieldMask: c.fieldMask,
    score: c.score,
  });

  /** Files what clients clean at `state` are sent this tick (not when a spawn carries an owner bit). */
  const rememberClean = (state: number, body: SharedBody, visible: number) => {
    for (let i = 0; i < spawnCount; i++) if (spawns[i]!.entity.owner !== undefined) return;
    cleanBodies.set(state, {
      body,
      fills: body.fills,
      visible,
      complete: encodedComplete,
      removals: removals.slice(0, removalCount),
      spawns: spawns.slice(0, spawnCount).map(copyCandidate),
      updates: updates.slice(0, updateCount).map(copyCandidate),
    });
  };

  let deferred = 0;
  const select = (client: ClientState): Uint8Array => {
    const budget = client.budget;
    deferred = 0;
    if (budget === undefined) {
      split(candidateCount);
      client.stats.deferred = 0;
      return sharing && clients.size > 1 ? sharedSnapshot(client) : writeSnapshot(client);
    }
    // Highest score first; take what fits, then verify the exact size and trim if needed.
    sortPrefix(candidates, candidateCount, (a, b) => b.score - a.score);
    let estimate = 16 + removalCount * 2;
    // One that does not fit is passed over (up to 16), not a stop: an entity larger than the
    // whole budget would otherwise hold back every other one for good. The taken move to the
    // front of `ranked`, in score order.
    const ranked = candidates.slice(0, candidateCount);
    let taken = 0;
    for (let i = 0; i < candidateCount && i - taken < 16; i++) {
      const candidate = ranked[i]!;
      const cost = estimateBytes(client, candidate);
      if (estimate + cost > budget) continue;
      estimate += cost;
      ranked[i] = ranked[taken]!;
      ranked[taken++] = candidate;
    }
    for (;;) {
      deferred = candidateCount - taken;
      const chosen = ranked.slice(0, taken).sort(byId);
      for (let i = 0; i < taken; i++) candidates[i] = chosen[i]!;
      for (let i = taken; i < candidateCount; i++) candidates[i] = ranked[i]!;
      split(taken);
      const bytes = writeSnapshot(client);
      if (bytes.byteLength <= budget || taken === 0) {
        // With nothing taken the removals are sent anyway: they are what frees the budget.
        client.stats.deferred = deferred;
        return bytes;
      }
      taken = Math.max(0, taken - Math.max(1, Math.ceil(taken / 8)));
    }
  };

  const estimateBytes = (client: ClientState, candidate: Candidate): number => {
    scratch.reset();
    const entity = candidate.entity;
    const known = candidate.kind === KIND_UPDATE ? client.known : undefined;
    const fieldTypes = entity.type.fieldTypes;
    const typeCoders = codersOf(entity.typeIndex);
    let bits = 8 + entity.type.fieldNames.length + (candidate.kind === KIND_SPAWN ? 16 : 1);
    for (let field = 0, mask = candidate.mask; mask !== 0; field++, mask >>>= 1) {
      if ((mask & 1) === 0) continue;
      const coder = typeCoders[field]!;
      const value = entity.fieldValues[field];
      if (
        known !== undefined &&
        coder.delta !== undefined &&
        deltaFields &&
        coder.stats!.k !== PLAIN
      ) {
        const delta = coder.delta;
        const reference = known.images[known.at(entity.id, field)]!;
        bits += delta.bitsOf(
          delta.code(entity.fieldImages[field]!, reference),
          coder.stats!.k,
          reference,
        );
      } else {
        fieldTypes[field]!.write(scratch, value);
      }
    }
    return Math.ceil((bits + scratch.bitLength) / 8);
  };

  const recordPool: SentRecord[] = [];
  const release = (record: SentRecord) => {
    if (--record.users > 0) return;
    record.reset(0, 0);
    if (recordPool.length < MAX_POOLED_RECORDS) recordPool.push(record);
  };

  /** Files the snapshot just written in the client's history (reusing `shareRecord` if set). */
  const record = (client: ClientState) => {
    const snapshotId = client.nextSnapshotId;
    const slot = snapshotId % historySize;
    let sent = client.history[slot];
    const shared = shareRecord;
    shareRecord = undefined;
    // The new record is taken before the slot's old one is released: they may be one record.
    const filled = shared ?? recordPool.pop() ?? new SentRecord();
    filled.users++;
    if (sent !== undefined) {
      if (!sent.resolved) drop(client, sent, undefined);
      release(sent.record);
    }
    if (sent === undefined)
      sent = client.history[slot] = {
        id: 0,
        resolved: true,
        record: filled,
        complete: false,
        resets: 0,
      };
    sent.id = snapshotId;
    sent.resolved = false;
    sent.record = filled;
    if (shared === undefined) {
      filled.reset(tick, world.version);
      filled.expected = lastExpected;
      fillRecord(filled);
      // The next clients of this tick that get the same body get this record too.
      if (newBody !== undefined) {
        newBody.record = filled;
        newBody.recordFilling = filled.fillings;
      }
    }
    newBody = undefined;
    lastExpected = undefined;
    sent.complete = encodedComplete;
    sent.resets = client.resets;
    client.unresolved++;
    for (let i = 0; i < removalCount; i++) {
      const id = removals[i]!;
      client.pendingRemovals[id] = client.pendingRemovals[id]! + 1;
    }
    for (let i = 0; i < spawnCount; i++) {
      const id = spawns[i]!.entity.id;
      client.pendingSpawns[id] = client.pendingSpawns[id]! + 1;
      client.held.add(id);
      const fieldMask = spawns[i]!.fieldMask;
      if (client.spawnMask[id] !== fieldMask) {
        client.spawnMask[id] = fieldMask;
        client.spawnMaskAfter[id] = client.lastSent[id]!;
      }
    }
    for (let list = 0; list < 2; list++) {
      const chosen = list === 0 ? spawns : updates;
      const count = list === 0 ? spawnCount : updateCount;
      for (let i = 0; i < count; i++) {
        const id = chosen[i]!.entity.id;
        client.lastSent[id] = snapshotId;
        client.waited[id] = 0;
        client.accumulated[id] = 0;
      }
    }
    client.nextSnapshotId = snapshotId + 1;
  };

  /** What the removals, spawns and updates of the snapshot just written carried. */
  const fillRecord = (sent: SentRecord) => {
    for (let i = 0; i < removalCount; i++) sent.add(removals[i]!, KIND_REMOVE, 0, 0, 0, 0, 0);
    for (let list = 0; list < 2; list++) {
      const chosen = list === 0 ? spawns : updates;
      const count = list === 0 ? spawnCount : updateCount;
      for (let i = 0; i < count; i++) {
        const candidate = chosen[i]!;
        const entity = candidate.entity;
        const id = entity.id;
        sent.add(
          id,
          candidate.kind,
          entity.generation,
          entity.typeIndex,
          entity.changeVersion,
          candidate.mask,
          candidate.fieldMask,
        );
        // Numeric fields are known by their image; only the others keep their value.
        const fieldValues = entity.fieldValues;
        const typeCoders = codersOf(entity.typeIndex);
        const { values, images: sentImages } = sent;
        const fieldImages = entity.fieldImages;
        for (let field = 0, mask = candidate.mask; mask !== 0; field++, mask >>>= 1) {
          if ((mask & 1) === 0) continue;
          const at = sent.valueCount++;
          if (typeCoders[field]!.delta === undefined) {
            sentImages[at] = 0;
            values[at] = fieldValues[field];
            sent.valuesEnd = at + 1;
          } else sentImages[at] = fieldImages[field]!;
        }
      }
    }
  };

  const conflictPolicy = options.conflict ?? 'server-wins';
  if (conflictPolicy !== 'server-wins' && conflictPolicy !== 'last-writer-wins')
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `conflict must be 'server-wins' or 'last-writer-wins', got ${String(conflictPolicy)}`,
    );

  const receiveChanges = (client: ClientState, message: OwnedMessage): ChangesResult => {
    const clientId = client.clientId;
    const result: ChangesResult = { accepted: 0, rejected: [] };
    client.changeSequence = Math.max(client.changeSequence, message.sequence);
    // The world version the owner saw: what its writes were based on (−1: too old to know).
    const basis = client.history[message.snapshotId % historySize];
    const basisVersion =
      basis !== undefined && basis.id === message.snapshotId ? basis.record.worldVersion : -1;
    for (const entry of message.entries) {
      const entity = internals.slots[entry.id];
      const refuse = (
        code: ErrorCode,
        reason: string,
        field?: string,
        rollback = true,
        cause?: unknown,
      ) => {
        result.rejected.push(
          new TickwireError(code, `change to entity ${entry.id}: ${reason}`, {
            cause,
            details: { entity: entry.id, ...(field === undefined ? {} : { field }) },
          }),
        );
        client.stats.changesRejected++;
        if (rollback && entity !== undefined) {
          const mask = (entry.mask & entity.type.ownedMask) >>> 0;
          if (mask !== 0)
            client.corrections.set(entry.id, (client.corrections.get(entry.id) ?? 0) | mask);
        }
      };
      if (entity === undefined || entity.generation !== entry.generation) {
        refuse(ErrorCode.NOT_FOUND, 'no such entity', undefined, false);
        continue;
      }
      const type = entity.type;
      if (entity.typeIndex !== entry.typeIndex || entity.owner !== clientId) {
        refuse(ErrorCode.FORBIDDEN, 'not owned by this client', undefined, false);
        continue;
      }
      if ((entry.mask & ~type.ownedMask) !== 0) {
        refuse(ErrorCode.FORBIDDEN, 'writes a field the client does not own');
        continue;
      }
      let refused = false;
      for (let field = 0; field < type.fieldNames.length && !refused; field++) {
        if (((entry.mask >>> field) & 1) === 0) continue;
        const name = type.fieldNames[field]!;
        let valid = true;
        // A throwing hook refuses this entity's change only: the message's other entities get
        // their usual handling, and this one is rolled back like any refusal.
        if (validate !== undefined)
          try {
            valid = validate(
              clientId,
              entity,
              name,
              entry.values[field],
              entity.fieldValues[field],
            );
          } catch (error) {
            const text = error instanceof Error ? error.message : String(error);
            refuse(
              ErrorCode.INTERNAL,
              `validateChange threw on '${name}': ${text}`,
              name,
              true,
              error,
            );
            refused = true;
            continue;
          }
        if (!valid) {
          refuse(ErrorCode.VALIDATION_FAILED, `'${name}' refused by validateChange`, name);
          refused = true;
        } else if (
          conflictPolicy === 'server-wins' &&
          entity.authors?.[field] !== clientId &&
          entity.fieldVersions[field]! > basisVersion
        ) {
          refuse(ErrorCode.CONFLICT, `'${name}' was written by the server meanwhile`, name);
          refused = true;
        }
      }
      if (refused) continue;
      for (let field = 0; field < type.fieldNames.length; field++)
        if ((entry.mask >>> field) & 1) entity.write(field, entry.values[field], clientId);
      client.stats.changesAccepted++;
      result.accepted++;
    }
    return result;
  };

  const server: ReplicationServer = {
    addClient(clientId) {
      if (typeof clientId !== 'string' && typeof clientId !== 'number')
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'client id must be a string or number');
      if (clients.has(clientId))
        throw new TickwireError(
          ErrorCode.CONFLICT,
          `replication: client ${String(clientId)} is already added`,
        );
      clients.set(clientId, {
        clientId,
        nextSnapshotId: retiredId + 1,
        // Every new client holds the world of version 0 (nothing), and nothing is in flight.
        cleanAt: 0,
        unresolved: 0,
        resets: 0,
        ackedId: 0,
        known: new KnownTable(world.types, maxFields()),
        pendingSpawns: new Int32Array(0),
        pendingRemovals: new Int32Array(0),
        spawnMask: new Uint32Array(0),
        spawnMaskAfter: new Int32Array(0),
        uncertain: new Set(),
        held: new Set(),
        visibleIds: [],
        lastSent: new Int32Array(0),
        waited: new Int32Array(0),
        accumulated: new Float64Array(0),
        stamp: new Int32Array(0),
        dirty: new Uint32Array(0),
        logPosition: -1,
        dirtyList: new Int32Array(0),
        history: new Array(historySize),
        budget: undefined,
        corrections: new Map(),
        changeSequence: 0,
        stats: {
          snapshots: 0,
          bytes: 0,
          acks: 0,
          lost: 0,
          visible: 0,
          deferred: 0,
          shared: 0,
          followed: 0,
          changesAccepted: 0,
          changesRejected: 0,
        },
      });
    },
    removeClient(clientId) {
      const client = clients.get(clientId);
      if (client === undefined) return;
      clients.delete(clientId);
      retiredId = Math.max(retiredId, client.nextSnapshotId - 1);
      for (const sent of client.history) if (sent !== undefined) release(sent.record);
      // Bodies of this tick may have carried its records: encode afresh.
      sharedCount = 0;
      sharedNext = 0;
      cleanBodies.clear();
    },
    clients: () => clients.keys(),
    update(next) {
      if (next !== undefined && (!Number.isSafeInteger(next) || next < tick))
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `tick must be a safe integer >= the current tick ${tick}, got ${next}`,
        );
      tick = next ?? tick + 1;
      prepare();
      if (profiling) publishProfile();
    },
    get tick() {
      return tick;
    },
    setBudget(clientId, bytes) {
      const client = clientOf(clientId);
      if (bytes !== undefined && !(Number.isInteger(bytes) && bytes >= 16))
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `budget must be an integer >= 16 bytes or undefined, got ${bytes}`,
        );
      client.budget = bytes;
    },
    snapshotFor(clientId) {
      const client = clientOf(clientId);
      prepare();
      shareRecord = undefined;
      newBody = undefined;
      usedBody = undefined;
      encodedComplete = false;
      try {
        const state = cleanSharing(client) ? cleanStateOf(client) : -1;
        const followed = state !== -1 ? followClean(client, state) : undefined;
        cleanLeader = state !== -1 && followed === undefined;
        const bytes = followed ?? encodeFor(client);
        if (state !== -1 && usedBody !== undefined && !currentClean(state))
          rememberClean(state, usedBody, client.stats.visible);
        record(client);
        client.stats.snapshots++;
        client.stats.bytes += bytes.byteLength;
        return bytes;
      } catch (error) {
        if (isTickwireError(error)) throw error;
        throw new TickwireError(
          ErrorCode.INTERNAL,
          `replication: encoding a snapshot for ${String(clientId)} failed: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
    },
    receiveAck(clientId, bytes) {
      const client = clients.get(clientId);
      if (client === undefined) return false;
      const snapshotId = decodeAck(bytes);
      return ack(client, snapshotId, ackEarlier);
    },
    ack(clientId, snapshotId, earlier = 0) {
      const client = clients.get(clientId);
      if (client === undefined) return false;
      return ack(client, snapshotId, earlier >>> 0);
    },
    baselineOf(clientId) {
      return clientOf(clientId).ackedId;
    },
    observersOf(entityId) {
      const out: ClientId[] = [];
      for (const client of clients.values())
        if (client.held.has(entityId) || client.known.has(entityId)) out.push(client.clientId);
      return out;
    },
    resync(clientId, snapshotId) {
      const client = clientOf(clientId);
      // Forget what the client holds: every entity it may hold is sent whole (or removed)
      // until a snapshot carrying it is acknowledged — under a byte budget too.
      for (const id of [...client.known.ids()]) {
        client.known.clear(id);
        client.uncertain.add(id);
      }
      client.cleanAt = -1;
      client.resets++;
      if (snapshotId === undefined) return undefined;
      const sent = client.history[snapshotId % historySize];
      const expected = sent?.id === snapshotId ? sent.record.expected : undefined;
      if (expected === undefined) return undefined;
      return encodeOwned(world.types, { sequence: 0, snapshotId, entries: expected });
    },
    statsOf(clientId) {
      return clientOf(clientId).stats;
    },
    receiveChanges(clientId, bytes) {
      const client = clients.get(clientId);
      if (client === undefined) return { accepted: 0, rejected: [] };
      return receiveChanges(client, decodeOwned(world.types, bytes));
    },
    correct(entity) {
      const live = internals.slots[entity?.id];
      if (live === undefined || live !== entity)
        throw new TickwireError(ErrorCode.NOT_FOUND, 'correct: the entity is not alive');
      const client = live.owner === undefined ? undefined : clients.get(live.owner);
      if (client === undefined || live.type.ownedMask === 0) return;
      client.corrections.set(live.id, (client.corrections.get(live.id) ?? 0) | live.type.ownedMask);
    },
    takeCorrections(clientId) {
      const client = clientOf(clientId);
      if (client.corrections.size === 0) return undefined;
      const entries: OwnedEntry[] = [];
      for (const [id, mask] of client.corrections) {
        const entity = internals.slots[id];
        if (entity === undefined || entity.owner !== clientId) continue;
        entries.push({
          id,
          generation: entity.generation,
          typeIndex: entity.typeIndex,
          mask,
          values: entity.fieldValues,
        });
      }
      client.corrections.clear();
      if (entries.length === 0) return undefined;
      return encodeOwned(world.types, {
        sequence: client.changeSequence,
        snapshotId: client.nextSnapshotId - 1,
        entries,
      });
    },
    profile() {
      const out: Record<string, TypeProfile> = {};
      world.types.forEach((type, typeIndex) => {
        const bits = profileBits[typeIndex];
        if (bits === undefined) return;
        const fields: Record<string, number> = {};
        let total = 0;
        type.fieldNames.forEach((name, index) => {
          fields[name] = bits[index]! / 8;
          total += bits[index]!;
        });
        total += bits[type.fieldNames.length]!;
        out[type.name] = { bytes: total / 8, fields };
      });
      return out;
    },
  };

  return server;
}

const ackReader = /* @__PURE__ */ new BinaryReader();

let ackEarlier = 0;

/**
 * Decodes `replica.ack()` bytes: varuint snapshot id, then 32 bits of earlier snapshots (left
 * in `ackEarlier`, to spare an object per ack).
 */
function decodeAck(bytes: Uint8Array): number {
  try {
    ackReader.reset(bytes);
    const snapshotId = ackReader.readVarUint();
    ackEarlier = ackReader.readBits(32) >>> 0;
    ackReader.end();
    return snapshotId;
  } catch (error) {
    throw new TickwireError(ErrorCode.DECODE_FAILED, 'replication: malformed ack', {
      cause: error,
    });
  }
}

/** Encodes an ack (see {@link decodeAck}). */
export function encodeAck(snapshotId: number, earlier: number): Uint8Array {
  const writer = new BinaryWriter({ initialBytes: 16 });
  writer.writeVarUint(snapshotId);
  writer.writeBits(earlier >>> 0, 32);
  return writer.toBytes();
}

/** FNV-1a-style mix of an entity's id, generation and visible field values at wire precision. */
export function entityChecksum(
  id: number,
  generation: number,
  type: EntityType,
  values: readonly unknown[],
  fieldMask: number,
): number {
  checksumWriter.reset();
  checksumWriter.writeVarUint(id);
  checksumWriter.writeVarUint(generation);
  for (let field = 0; field < type.fieldTypes.length; field++)
    if ((fieldMask >>> field) & 1) type.fieldTypes[field]!.write(checksumWriter, values[field]);
  const bytes = checksumWriter.view();
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}

const checksumWriter = /* @__PURE__ */ new BinaryWriter();
