import { ErrorCode, TickwireError } from '@tickwire/core';
import { BinaryWriter } from '@tickwire/serialization';
import { bitsFor } from './entity-type.js';
import { writeIds } from './id-coding.js';
import { type World, type WorldEntity, worldInternals } from './world.js';

/** Identifies a client to the server (a connection id, a player id…). */
export type ClientId = string | number;

/** Options of {@link createReplicationServer}. */
export interface ReplicationServerOptions {
  world: World;
  /**
   * Sent snapshots remembered per client. An ack of an older one is ignored, and a baseline
   * older than this many snapshots is dropped in favour of a full snapshot.
   * @default 32
   */
  historySize?: number;
  /** Largest snapshot in bytes; a larger one throws MESSAGE_TOO_LARGE. @default 1048576 */
  maxSnapshotBytes?: number;
}

/** Encodes per-client delta snapshots of a world. */
export interface ReplicationServer {
  /** Starts tracking a client; its first snapshot carries the full state. */
  addClient(clientId: ClientId): void;
  /** Forgets a client (its baseline no longer holds back id reuse). */
  removeClient(clientId: ClientId): void;
  /** Encodes the next snapshot for a client, delta-coded against its last acknowledged one. */
  snapshotFor(clientId: ClientId): Uint8Array;
  /**
   * Records that the client applied a snapshot: later snapshots are deltas against it.
   * Returns false (and changes nothing) for an unknown client, an unknown or stale id.
   */
  ack(clientId: ClientId, snapshotId: number): boolean;
  /** The client's acknowledged baseline snapshot id, 0 when it has none. */
  baselineOf(clientId: ClientId): number;
}

interface SentSnapshot {
  id: number;
  version: number;
}

interface ClientState {
  nextSnapshotId: number;
  baselineId: number;
  baselineVersion: number;
  readonly history: SentSnapshot[];
}

/** A snapshot's header: version 0 of the layout; bump when it changes. */
export const SNAPSHOT_FORMAT = 0;

/**
 * Creates the server side of replication. Wire layout of a snapshot (bit-packed, LSB first):
 * format (2 bits) · snapshot id (varuint) · snapshot id − baseline id (varuint, 0 = full) ·
 * despawns (ids, then a varuint generation each) · spawns (ids, then generation, type index,
 * every field) · updates (ids, then a field mask and the changed fields). Id lists are
 * sorted and Golomb-Rice coded (see id-coding.ts).
 */
export function createReplicationServer(options: ReplicationServerOptions): ReplicationServer {
  const { world } = options;
  const internals = worldInternals(world);
  const historySize = options.historySize ?? 32;
  if (!Number.isInteger(historySize) || historySize < 1 || historySize > 1024)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `historySize must be an integer in [1, 1024], got ${historySize}`,
    );
  const writer = new BinaryWriter({ maxBytes: options.maxSnapshotBytes ?? 1 << 20 });
  const clients = new Map<ClientId, ClientState>();
  const despawnIds: number[] = [];
  const despawnGenerations: number[] = [];
  const spawned: WorldEntity[] = [];
  const spawnedIds: number[] = [];
  const updated: WorldEntity[] = [];
  const updatedIds: number[] = [];
  const masks: number[] = [];

  const clientOf = (clientId: ClientId): ClientState => {
    const client = clients.get(clientId);
    if (!client)
      throw new TickwireError(
        ErrorCode.NOT_FOUND,
        `replication: unknown client ${String(clientId)}`,
      );
    return client;
  };

  // The oldest world version any client may still use as a baseline: tombstones after it stay.
  const pruneTombstones = () => {
    if (internals.tombstones.length === 0) return;
    let floor = internals.version();
    for (const client of clients.values()) {
      if (client.baselineId !== 0) floor = Math.min(floor, client.baselineVersion);
      const oldest = Math.max(client.baselineId + 1, client.nextSnapshotId - historySize);
      const entry = client.history[oldest % historySize];
      if (oldest < client.nextSnapshotId && entry && entry.id === oldest)
        floor = Math.min(floor, entry.version);
    }
    internals.pruneTombstones(floor);
  };

  const encode = (client: ClientState): Uint8Array => {
    const snapshotId = client.nextSnapshotId;
    if (client.baselineId !== 0 && snapshotId - client.baselineId > historySize)
      client.baselineId = 0;
    const hasBaseline = client.baselineId !== 0;
    const baseVersion = hasBaseline ? client.baselineVersion : -1;
    const typeBits = bitsFor(world.types.length);

    despawnIds.length = 0;
    despawnGenerations.length = 0;
    if (hasBaseline) {
      const tombstones = [...internals.tombstones]
        .filter((t) => t.spawnVersion <= baseVersion && t.despawnVersion > baseVersion)
        .sort((a, b) => a.id - b.id);
      for (const tombstone of tombstones) {
        despawnIds.push(tombstone.id);
        despawnGenerations.push(tombstone.generation);
      }
    }
    spawned.length = 0;
    spawnedIds.length = 0;
    updated.length = 0;
    updatedIds.length = 0;
    masks.length = 0;
    const slots = internals.slots;
    for (let id = 0; id < slots.length; id++) {
      const entity = slots[id];
      if (entity === undefined || entity.changeVersion <= baseVersion) continue;
      if (entity.spawnVersion > baseVersion) {
        spawned.push(entity);
        spawnedIds.push(id);
        continue;
      }
      const versions = entity.fieldVersions;
      let mask = 0;
      for (let field = 0; field < versions.length; field++)
        if (versions[field]! > baseVersion) mask |= 1 << field;
      updated.push(entity);
      updatedIds.push(id);
      masks.push(mask >>> 0);
    }

    writer.reset();
    writer.writeBits(SNAPSHOT_FORMAT, 2);
    writer.writeVarUint(snapshotId);
    writer.writeVarUint(hasBaseline ? snapshotId - client.baselineId : 0);
    writeIds(writer, despawnIds, despawnIds.length);
    for (const generation of despawnGenerations) writer.writeVarUint(generation);
    writeIds(writer, spawnedIds, spawnedIds.length);
    for (const entity of spawned) {
      writer.writeVarUint(entity.generation);
      writer.writeBits(entity.typeIndex, typeBits);
      const types = entity.type.fieldTypes;
      for (let field = 0; field < types.length; field++)
        types[field]!.write(writer, entity.fieldValues[field]);
    }
    writeIds(writer, updatedIds, updatedIds.length);
    for (let i = 0; i < updated.length; i++) {
      const entity = updated[i]!;
      const mask = masks[i]!;
      const types = entity.type.fieldTypes;
      writer.writeBits(mask, types.length);
      for (let field = 0; field < types.length; field++)
        if ((mask >>> field) & 1) types[field]!.write(writer, entity.fieldValues[field]);
    }
    const bytes = writer.toBytes();
    client.history[snapshotId % historySize] = { id: snapshotId, version: internals.version() };
    client.nextSnapshotId = snapshotId + 1;
    return bytes;
  };

  return {
    addClient(clientId) {
      if (clients.has(clientId))
        throw new TickwireError(
          ErrorCode.CONFLICT,
          `replication: client ${String(clientId)} is already added`,
        );
      clients.set(clientId, { nextSnapshotId: 1, baselineId: 0, baselineVersion: -1, history: [] });
    },
    removeClient(clientId) {
      clients.delete(clientId);
    },
    snapshotFor(clientId) {
      const client = clientOf(clientId);
      pruneTombstones();
      return encode(client);
    },
    ack(clientId, snapshotId) {
      const client = clients.get(clientId);
      if (!client || !Number.isInteger(snapshotId) || snapshotId <= client.baselineId) return false;
      const entry = client.history[snapshotId % historySize];
      if (!entry || entry.id !== snapshotId) return false;
      client.baselineId = snapshotId;
      client.baselineVersion = entry.version;
      return true;
    },
    baselineOf(clientId) {
      return clientOf(clientId).baselineId;
    },
  };
}
