// Replicated state for a room: a world, a replication server and a host wired to the room's
// lifecycle (members attach when they join, snapshots go out after every tick).
import { ErrorCode, TickwireError, type TimeSource } from '@tickwire/core';
import {
  type BandwidthBudgetOptions,
  type ClientId,
  createReplicationHost,
  createReplicationServer,
  createWorld,
  type EntityType,
  type ReplicationHost,
  type ReplicationServer,
  type ReplicationServerOptions,
  type RpcServer,
  type World,
} from '@tickwire/replication';
import type { Room } from '@tickwire/rooms';

/**
 * Options of {@link replicate}: `createReplicationServer`'s, except that `historySize`
 * defaults to about 0.8 s of snapshots at the room's tick rate (16 at 20 Hz, 24 at 30 Hz).
 */
export interface RoomReplicationOptions extends Omit<ReplicationServerOptions, 'world'> {
  /** Entity types in wire order (the client lists the same ones). */
  types: readonly EntityType[];
  /** Receives the clients' rpc frames. */
  rpc?: RpcServer;
  /** Byte budget per snapshot, see `createReplicationHost`. @default undefined (every change) */
  budget?: 'auto' | number;
  budgetOptions?: BandwidthBudgetOptions;
}

/** A room's replicated state. */
export interface RoomReplication {
  readonly world: World;
  readonly server: ReplicationServer;
  readonly host: ReplicationHost;
}

/** How the engine times the replication phase of a tick (set per room by the server). */
export interface PhaseTimer {
  readonly time: TimeSource;
  record(phase: 'replicate', ms: number): void;
}

const timers = new WeakMap<object, PhaseTimer>();
const replications = new WeakMap<object, RoomReplication>();

/** @internal The server registers how a room's phases are timed. */
export function setPhaseTimer(room: object, timer: PhaseTimer): void {
  timers.set(room, timer);
}

/** The replication `replicate` gave a room, if any. */
export function replicationOf(room: Room<unknown>): RoomReplication | undefined {
  return replications.get(room);
}

/**
 * Gives a room replicated entities: call it in the room's `state` or `onCreate`. Every member
 * is attached when it joins (its session link carries the snapshots, on the unreliable
 * channel, and survives reconnection), and detached when it leaves; after each tick the world
 * is diffed and one snapshot per member goes out. Throws CONFLICT when the room already has
 * replication.
 */
export function replicate(room: Room<unknown>, options: RoomReplicationOptions): RoomReplication {
  if (replications.has(room))
    throw new TickwireError(ErrorCode.CONFLICT, `room ${room.id} is already replicated`);
  const { types, rpc, budget, budgetOptions, ...serverOptions } = options;
  const world = createWorld({ types });
  // Sent snapshots remembered per member: about 0.8 s of them (an ack later than that is lost
  // anyway, and the entities concerned are sent whole). Each one holds what the snapshot
  // carried (members sent the same body share that record), which is much of the server's
  // memory per player.
  const historySize =
    serverOptions.historySize ?? Math.min(64, Math.max(8, Math.ceil(room.tickRateHz * 0.8)));
  const server = createReplicationServer({ ...serverOptions, historySize, world });
  const host = createReplicationHost({
    server,
    ...(rpc === undefined ? {} : { rpc }),
    ...(budget === undefined ? {} : { budget }),
    ...(budgetOptions === undefined ? {} : { budgetOptions }),
  });
  const detach = new Map<ClientId, () => void>();
  const offJoin = room.on('join', (member) => {
    if (member.connection.state !== 'open') return;
    detach.set(member.sessionId, host.attach(member.sessionId, member.connection));
  });
  const offLeave = room.on('leave', (member) => {
    detach.get(member.sessionId)?.();
    detach.delete(member.sessionId);
  });
  const offTick = room.on('tick', (tick) => {
    const timer = timers.get(room);
    const start = timer?.time.now() ?? 0;
    server.update(tick);
    host.sendSnapshots();
    if (timer) timer.record('replicate', timer.time.now() - start);
  });
  const offDispose = room.on('dispose', () => {
    for (const off of detach.values()) off();
    detach.clear();
    offJoin();
    offLeave();
    offTick();
    offDispose();
  });
  const replication: RoomReplication = { world, server, host };
  replications.set(room, replication);
  return replication;
}
