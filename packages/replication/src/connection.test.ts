import { isDeepStrictEqual } from 'node:util';
import {
  type Channel,
  type ConditionedConnection,
  type Connection,
  type ConnectionEvents,
  type ConnectionState,
  conditionConnection,
  createConnectionStats,
  createManualTime,
  createRandom,
  Emitter,
  ErrorCode,
  type LinkOptions,
  type ManualTime,
  Opcode,
  subscribable,
  TickwireError,
} from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { t } from '@tickwire/serialization';
import { describe, expect, it, vi } from 'vitest';
import {
  connectReplica,
  createReplicationHost,
  RESYNC_FLAG,
  type ReplicaConnection,
  type ReplicationHost,
} from './connection.js';
import { defineEntityType } from './entity-type.js';
import { createFilterInterest } from './interest.js';
import { createReplica, desyncDiagnosis, ownedFields, type Replica } from './replica.js';
import {
  createRpcClient,
  createRpcRegistry,
  createRpcServer,
  defineRpc,
  type RpcClient,
} from './rpc.js';
import { createReplicationServer, encodeAck } from './server.js';
import { expectedState, replicaState } from './test-support.js';
import { type ClientId, createWorld, type Entity } from './world.js';

const Unit = defineEntityType('unit', {
  x: t.quantized(-512, 512, 1 / 16),
  y: t.quantized(-512, 512, 1 / 16),
  angle: t.angle(12),
  hp: t.u8(),
});
const Marker = defineEntityType('marker', { label: t.string({ maxBytes: 8 }), score: t.varuint() });
const types = [Unit, Marker];

const TICK_MS = 50;
const frame = (opcode: number, flags: number, ...payload: number[]) =>
  new Uint8Array([opcode, flags, ...payload]);

/** Lets every queued microtask (the memory transport's deliveries) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Moves manual time in 1 ms steps, settling the transport after each. */
async function advance(time: ManualTime, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    time.advance(1);
    await settle();
  }
}

/** A connection whose `send` the test decides; `deliver` plays a received message. */
function fakeConnection(send: (data: Uint8Array, channel?: Channel) => boolean) {
  const events = new Emitter<ConnectionEvents>();
  let state: ConnectionState = 'open';
  const connection: Connection = {
    ...subscribable(events),
    id: 'fake',
    remoteAddress: 'fake',
    get state() {
      return state;
    },
    bufferedAmount: 0,
    maxMessageBytes: 1 << 20,
    stats: createConnectionStats(),
    send,
    close() {
      state = 'closed';
      events.emit('close', { code: 1000, reason: '', local: true });
    },
  };
  return { connection, deliver: (data: Uint8Array) => events.emit('message', data, 'reliable') };
}

const randomUnit = (random: ReturnType<typeof createRandom>) => ({
  x: random.range(-500, 500),
  y: random.range(-500, 500),
  angle: random.range(-3, 3),
  hp: random.int(256),
});

interface Client {
  name: ClientId;
  replica: Replica;
  link: ConditionedConnection;
  connection: ReplicaConnection;
  /** World state (as this client sees it, at wire precision) per snapshot id sent to it. */
  recorded: Map<number, Record<number, unknown>>;
  /** Applied snapshot ids, and those after which the replica differed from the recording. */
  applied: number[];
  wrong: number[];
}

/**
 * A world of about 50 moving units and markers with spawns, despawns and visibility changes,
 * served over conditioned memory links to several clients on one manual clock.
 */
function createGame(options: {
  seed: number;
  clients: number;
  link: LinkOptions;
  checksums?: boolean;
}) {
  const time = createManualTime();
  const random = createRandom(options.seed);
  const world = createWorld({ types });
  const hidden = new Map<ClientId, Set<number>>();
  const server = createReplicationServer({
    world,
    checksums: options.checksums ?? false,
    interest: createFilterInterest((client, entity) => !hidden.get(client)!.has(entity.id)),
  });
  const host = createReplicationHost({ server });
  const hostErrors: TickwireError[] = [];
  host.on('error', (_client, error) => hostErrors.push(error));
  const live: Entity[] = [];
  const spawn = () =>
    live.push(
      random.chance(0.8)
        ? world.spawn(Unit, randomUnit(random))
        : world.spawn(Marker, { label: 'm'.repeat(random.int(9)), score: random.int(1000) }),
    );
  for (let i = 0; i < 50; i++) spawn();

  const clients: Client[] = Array.from({ length: options.clients }, (_, index) => {
    const name = `c${index}`;
    hidden.set(name, new Set());
    const [serverSide, clientSide] = createMemoryConnectionPair();
    const link = conditionConnection(serverSide, {
      time,
      seed: options.seed * 10 + index,
      outbound: options.link,
      inbound: options.link,
    });
    host.attach(name, link);
    const replica = createReplica({ types });
    const connection = connectReplica(replica, clientSide);
    const client: Client = {
      name,
      replica,
      link,
      connection,
      recorded: new Map(),
      applied: [],
      wrong: [],
    };
    connection.on('snapshot', (id) => {
      client.applied.push(id);
      const expected = client.recorded.get(id);
      if (expected === undefined || !isDeepStrictEqual(replicaState(replica), expected))
        client.wrong.push(id);
    });
    return client;
  });

  /** One simulation tick: moves, spawns, despawns, visibility; then snapshots to everyone. */
  const tick = () => {
    for (const entity of live) {
      if (entity.type === (Unit as unknown)) {
        const unit = entity as Entity<typeof Unit.shape>;
        if (random.chance(0.7)) {
          unit.set('x', Math.max(-512, Math.min(512, unit.get('x') + random.range(-2, 2))));
          unit.set('y', Math.max(-512, Math.min(512, unit.get('y') + random.range(-2, 2))));
          unit.set('angle', unit.get('angle') + random.range(-0.1, 0.1));
        }
        if (random.chance(0.05)) unit.set('hp', random.int(256));
      } else if (random.chance(0.1)) {
        const marker = entity as Entity<typeof Marker.shape>;
        marker.set('score', marker.get('score') + 1);
      }
    }
    if (random.chance(0.3) && live.length > 40) {
      const index = random.int(live.length);
      world.despawn(live[index]!);
      live.splice(index, 1);
    }
    if (random.chance(0.3) && live.length < 60) spawn();
    if (random.chance(0.3)) {
      const set = hidden.get(clients[random.int(clients.length)]!.name)!;
      const id = live[random.int(live.length)]!.id;
      if (set.has(id)) set.delete(id);
      else set.add(id);
    }
    server.update();
    const state = expectedState(world);
    host.sendSnapshots();
    for (const client of clients) {
      const seen: Record<number, unknown> = {};
      for (const [id, value] of Object.entries(state))
        if (!hidden.get(client.name)!.has(Number(id))) seen[Number(id)] = value;
      client.recorded.set(server.statsOf(client.name).snapshots, seen);
    }
  };

  /** Runs `ticks` ticks, one every 50 ms. */
  const run = async (ticks: number) => {
    for (let i = 0; i < ticks; i++) {
      tick();
      await advance(time, TICK_MS);
    }
  };

  return { time, world, server, host, hostErrors, clients, run, hidden, live };
}

describe('replication over connections', () => {
  it('converges under 20 % loss, reordering, duplication and 150 ms RTT, and exactly once the loss stops', async () => {
    const lossy: LinkOptions = {
      latencyMs: 75,
      jitterMs: 10,
      lossRate: 0.2,
      duplicateRate: 0.1,
      reorderRate: 0.1,
      // Longer than the snapshot interval: a held-back snapshot arrives after the next one.
      reorderDelayMs: 60,
    };
    const game = createGame({ seed: 7, clients: 3, link: lossy });
    await game.run(70); // 3.5 s

    for (const client of game.clients) {
      // After every applied snapshot the replica was exactly the recorded world of that snapshot.
      expect(client.wrong).toEqual([]);
      expect(client.applied.length).toBeGreaterThan(25);
      expect(client.applied.length).toBeLessThan(65);
      const sent = game.server.statsOf(client.name);
      expect(sent.lost).toBeGreaterThan(0);
      expect(client.link.outbound.stats.lost).toBeGreaterThan(0);
      expect(client.link.outbound.stats.duplicated).toBeGreaterThan(0);
      expect(client.link.outbound.stats.reordered).toBeGreaterThan(0);
      expect(client.link.inbound.stats.lost).toBeGreaterThan(0);
    }

    // Stop dropping. (A reordered unreliable packet that arrives after a newer one is dropped by
    // the connection's sequencing, so "no drops" means no reordering either.)
    const firstClean = new Map<ClientId, number>();
    for (const client of game.clients) {
      client.link.configure({
        outbound: { lossRate: 0, reorderRate: 0 },
        inbound: { lossRate: 0, reorderRate: 0 },
      });
      firstClean.set(client.name, game.server.statsOf(client.name).snapshots + 1);
    }
    await game.run(3);
    await advance(game.time, 40); // the third one is 75 ± 10 ms on its way
    for (const client of game.clients) {
      const first = firstClean.get(client.name)!;
      // Within 3 snapshots sent after the switch: each one applied and equal to its recording.
      expect(client.applied.filter((id) => id >= first)).toEqual([first, first + 1, first + 2]);
      expect(replicaState(client.replica)).toEqual(client.recorded.get(first + 2));
    }
    await game.run(20);
    await advance(game.time, 200);
    for (const client of game.clients) {
      const first = firstClean.get(client.name)!;
      const last = game.server.statsOf(client.name).snapshots;
      // ...and keeps matching: nothing lost, every later snapshot applied and checked.
      expect(client.applied.filter((id) => id >= first)).toEqual(
        Array.from({ length: last - first + 1 }, (_, i) => first + i),
      );
      expect(client.wrong).toEqual([]);
      expect(client.replica.lastSnapshotId).toBe(last);
      expect(replicaState(client.replica)).toEqual(client.recorded.get(last));
      // Acks flow: the baseline is the last snapshot.
      expect(game.server.baselineOf(client.name)).toBe(last);
      expect(client.connection.stats).toMatchObject({ malformed: 0, resyncRequests: 0 });
      expect(client.connection.stats.acksSent).toBe(client.applied.length);
    }
    expect(game.hostErrors).toEqual([]);
    expect(game.host.stats.malformed).toBe(0);
    expect(game.host.stats.snapshots).toBe(93 * 3);
  });

  it('validates rpcs per client without disturbing its snapshots, acks and valid calls', async () => {
    const time = createManualTime();
    const ping = defineRpc('ping', t.varuint(), {
      direction: 'toServer',
      rateLimit: { perSecond: 2, burst: 3 },
    });
    const say = defineRpc('say', t.string({ maxBytes: 16 }), { direction: 'toServer' });
    const notice = defineRpc('notice', t.u8(), { direction: 'toClient' });
    const registry = createRpcRegistry([ping, say, notice]);
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    const rpcServer = createRpcServer({
      registry,
      clock: time,
      send: (clientId, bytes, channel) => host.sendRpc(clientId, bytes, channel),
      clients: () => host.clients(),
    });
    const host: ReplicationHost = createReplicationHost({ server, rpc: rpcServer });
    const rejected: [ClientId, string][] = [];
    rpcServer.on('rejected', (clientId, error) => rejected.push([clientId, error.code]));
    const said: string[] = [];
    const pinged: number[] = [];
    rpcServer.on(say, (clientId, text) => said.push(`${clientId}:${text}`));
    rpcServer.on(ping, (_clientId, n) => pinged.push(n));

    const [serverSide, clientSide] = createMemoryConnectionPair();
    const link = conditionConnection(serverSide, {
      time,
      seed: 3,
      outbound: { latencyMs: 20, lossRate: 0.1 },
      inbound: { latencyMs: 20, lossRate: 0.1 },
    });
    host.attach('c', link);
    const replica = createReplica({ types });
    const rpcClient = createRpcClient({
      registry,
      send: (bytes, channel) => connection.sendRpc(bytes, channel),
    });
    const connection = connectReplica(replica, clientSide, { rpc: rpcClient });
    const notices: number[] = [];
    rpcClient.on(notice, (n) => notices.push(n));

    const random = createRandom(5);
    const units = Array.from({ length: 20 }, () => world.spawn(Unit, randomUnit(random)));
    const tick = async () => {
      for (const unit of units) unit.set('x', unit.get('x') + random.range(-1, 1));
      server.update();
      host.sendSnapshots();
      await advance(time, TICK_MS);
    };
    for (let i = 0; i < 5; i++) await tick();
    const baselineBefore = server.baselineOf('c');
    expect(baselineBefore).toBeGreaterThan(0);

    // A malformed rpc frame (unknown rpc index) and a truncated call, then a flood of pings.
    clientSide.send(frame(Opcode.Rpc, 0, 0xff, 0xff, 0x03));
    clientSide.send(frame(Opcode.Rpc, 0, 1, 5, 0x61));
    // Flags rpc frames do not use: refused by the host before the rpc server sees them.
    clientSide.send(frame(Opcode.Rpc, 0x01, 1, 0));
    link.send(frame(Opcode.Rpc, 0x02, 2, 1), 'reliable');
    for (let i = 0; i < 20; i++) rpcClient.call(ping, i);
    for (let i = 0; i < 10; i++) {
      rpcClient.call(say, `hi ${i}`);
      await tick();
    }
    await advance(time, 200);
    expect(rejected.filter(([, code]) => code === ErrorCode.DECODE_FAILED)).toEqual([
      ['c', ErrorCode.DECODE_FAILED],
      ['c', ErrorCode.DECODE_FAILED],
    ]);
    expect(rejected.filter(([, code]) => code === ErrorCode.RATE_LIMITED).length).toBe(17);
    expect(rpcServer.stats.rejected).toEqual({ decode: 2, validation: 0, forbidden: 0, rate: 17 });
    expect(pinged).toEqual([0, 1, 2]);
    // Valid calls, snapshots and acks kept flowing.
    expect(said).toEqual(Array.from({ length: 10 }, (_, i) => `c:hi ${i}`));
    expect(server.baselineOf('c')).toBeGreaterThan(baselineBefore + 5);
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(host.stats.rpcs).toBe(2 + 20 + 10);
    expect(host.stats.malformed).toBe(1);
    expect(connection.stats.malformed).toBe(1);
    expect(link.state).toBe('open');

    // The refill lets pings through again; server → client calls arrive.
    await advance(time, 1_000);
    rpcClient.call(ping, 99);
    rpcServer.toClient('c', notice, 7);
    expect(rpcServer.toAll(notice, 8)).toBe(1);
    await advance(time, 200);
    expect(pinged).toEqual([0, 1, 2, 99]);
    expect(notices).toEqual([7, 8]);
    expect(connection.stats.rpcs).toBe(2);
  });

  it('counts garbage frames on both sides, never throws, and keeps the connection serving', async () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    const host = createReplicationHost({ server });
    const hostErrors: [ClientId, string][] = [];
    host.on('error', (clientId, error) => hostErrors.push([clientId, error.code]));
    const [serverSide, clientSide] = createMemoryConnectionPair();
    host.attach('c', serverSide);
    const replica = createReplica({ types });
    const connection = connectReplica(replica, clientSide);
    const clientErrors: string[] = [];
    connection.on('error', (error) => clientErrors.push(error.code));
    let lastSnapshot: Uint8Array | undefined;
    clientSide.on('message', (data) => {
      if (data[0] === Opcode.Snapshot) lastSnapshot = data;
    });
    const units = Array.from({ length: 30 }, (_, i) =>
      world.spawn(Unit, { x: i, y: -i, angle: 0, hp: i }),
    );
    const step = async () => {
      units[0]!.set('hp', units[0]!.get('hp') + 1);
      server.update();
      host.sendSnapshots();
      await settle();
    };
    await step();
    expect(replicaState(replica)).toEqual(expectedState(world));

    // To the host.
    for (const garbage of [
      new Uint8Array(0),
      new Uint8Array([Opcode.SnapshotAck]),
      frame(0x99, 0),
      frame(Opcode.SnapshotAck, 0, 1), // an ack cut short
      frame(Opcode.SnapshotAck, 0x40),
      frame(Opcode.SnapshotAck, RESYNC_FLAG, 0x80), // an unterminated snapshot id
      frame(Opcode.Snapshot, 0, 1, 2, 3), // the wrong way
      frame(Opcode.Rpc, 0, 0), // no rpc server: another layer's
      new Uint8Array([Opcode.TimeRequest, 1, 2, 3]), // another layer's
    ])
      clientSide.send(garbage);
    // Well-formed but stale: counted apart.
    clientSide.send(new Uint8Array([Opcode.SnapshotAck, 0, ...encodeAck(999, 0)]));
    await settle();
    expect(hostErrors).toEqual([
      ['c', ErrorCode.DECODE_FAILED],
      ['c', ErrorCode.DECODE_FAILED],
      ['c', ErrorCode.PROTOCOL_ERROR],
      ['c', ErrorCode.DECODE_FAILED],
      ['c', ErrorCode.PROTOCOL_ERROR],
      ['c', ErrorCode.DECODE_FAILED],
      ['c', ErrorCode.PROTOCOL_ERROR],
    ]);
    expect(host.stats).toMatchObject({ malformed: 7, other: 2, staleAcks: 1, acks: 1, resyncs: 0 });

    // To the client: the replica is left as it was.
    const before = replicaState(replica);
    const lastId = replica.lastSnapshotId;
    for (const garbage of [
      new Uint8Array(0),
      new Uint8Array([Opcode.Snapshot]),
      frame(Opcode.Snapshot, 0, 0xff, 0xff), // not a snapshot
      frame(Opcode.Snapshot, 0x01, 0),
      frame(Opcode.SnapshotAck, 0, 0), // the wrong way
      frame(0xee, 0),
      frame(Opcode.Rpc, 0, 0), // no rpc client: another layer's
      frame(Opcode.Welcome, 0), // another layer's
    ])
      serverSide.send(garbage);
    serverSide.send(lastSnapshot!); // a duplicate: ignored, not re-acknowledged
    await settle();
    expect(clientErrors).toEqual([
      ErrorCode.DECODE_FAILED,
      ErrorCode.DECODE_FAILED,
      ErrorCode.DECODE_FAILED,
      ErrorCode.PROTOCOL_ERROR,
      ErrorCode.PROTOCOL_ERROR,
      ErrorCode.PROTOCOL_ERROR,
    ]);
    expect(connection.stats).toMatchObject({
      malformed: 6,
      other: 2,
      ignored: 1,
      snapshots: 1,
      acksSent: 1,
    });
    expect(replicaState(replica)).toEqual(before);
    expect(replica.lastSnapshotId).toBe(lastId);
    // The undecodable snapshot made the client ask for a full one.
    expect(connection.stats.resyncRequests).toBe(1);
    expect(host.stats.resyncs).toBe(1);

    // Both ends still serve.
    for (let i = 0; i < 3; i++) await step();
    expect(serverSide.state).toBe('open');
    expect(clientSide.state).toBe('open');
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(connection.stats).toMatchObject({ snapshots: 4, acksSent: 4, malformed: 6 });
    expect(host.stats.acks).toBe(4);
    expect(server.baselineOf('c')).toBe(4);
  });

  it('removes the client when its connection closes, or on detach', async () => {
    const world = createWorld({ types });
    world.spawn(Unit, { x: 1, y: 2, angle: 0, hp: 3 });
    const server = createReplicationServer({ world });
    const registry = createRpcRegistry([defineRpc('noop', t.bool())]);
    const rpc = createRpcServer({
      registry,
      clock: createManualTime(),
      send: (clientId, bytes, channel) => host.sendRpc(clientId, bytes, channel),
      clients: () => host.clients(),
    });
    const removed = vi.spyOn(rpc, 'removeClient');
    const host = createReplicationHost({ server, rpc });
    const [a, aClient] = createMemoryConnectionPair();
    const [b, bClient] = createMemoryConnectionPair();
    host.attach('a', a);
    const detachB = host.attach('b', b);
    const replicaA = connectReplica(createReplica({ types }), aClient);
    expect([...host.clients()]).toEqual(['a', 'b']);
    expect([...server.clients()]).toEqual(['a', 'b']);

    aClient.close();
    await settle();
    expect([...server.clients()]).toEqual(['b']);
    expect([...host.clients()]).toEqual(['b']);
    expect(removed).toHaveBeenCalledWith('a');
    expect(replicaA.closed).toBe(true);
    expect(() => replicaA.sendRpc(new Uint8Array([0, 1]), 'reliable')).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );

    detachB();
    detachB();
    expect([...server.clients()]).toEqual([]);
    expect(removed).toHaveBeenCalledTimes(2);
    expect(b.state).toBe('open');
    // Frames after detaching are not handled; nothing is sent any more.
    bClient.send(frame(0x99, 0));
    host.sendSnapshots();
    await settle();
    expect(host.stats).toMatchObject({ malformed: 0, snapshots: 0 });
    expect(() => host.sendRpc('b', new Uint8Array([0, 0]), 'reliable')).toThrow(
      expect.objectContaining({ code: ErrorCode.NOT_FOUND }),
    );
    // The id is free again.
    host.attach('b', b);
    expect(() => host.attach('b', b)).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFLICT }),
    );
    expect(() => host.attach('a', a)).toThrow(
      expect.objectContaining({ code: ErrorCode.CONNECTION_CLOSED }),
    );
    // An rpc send to a connection that is closing detaches the client and throws.
    b.close();
    expect(() => rpc.toClient('b', registry.rpcs[0]!, true)).toThrow(
      expect.objectContaining({ code: ErrorCode.CONNECTION_CLOSED }),
    );
    expect([...host.clients()]).toEqual([]);
    expect([...server.clients()]).toEqual([]);
  });

  it('repairs a corrupted replica: checksum mismatch → resync request → full snapshot', async () => {
    const game = createGame({ seed: 11, clients: 1, link: { latencyMs: 30 }, checksums: true });
    const [client] = game.clients;
    await game.run(5);
    expect(client!.wrong).toEqual([]);
    // Corrupt a value the server will not send again soon.
    const victim = [...client!.replica.entities()].find((e) => e.is(Marker))!;
    (victim as unknown as { fieldValues: unknown[] }).fieldValues[1] = 123_456;
    const mismatches: number[] = [];
    client!.replica.on('mismatch', (id) => mismatches.push(id));
    await game.run(6);
    expect(mismatches.length).toBeGreaterThan(0);
    // One request while waiting for the answer, however many snapshots mismatch meanwhile.
    expect(client!.connection.stats.resyncRequests).toBe(1);
    expect(game.host.stats.resyncs).toBe(1);
    // Diagnosis is opt-in (`diagnosis: desyncDiagnosis`): without it the repair alone happens.
    expect(client!.connection.stats.desyncs).toBe(0);
    const repairedFrom = client!.applied.at(-1)!;
    expect(replicaState(client!.replica)).toEqual(client!.recorded.get(repairedFrom));
    const count = mismatches.length;
    await game.run(5);
    expect(mismatches.length).toBe(count);
  });

  it('asks again when mismatches persist, and not at all with resyncOnMismatch off', async () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, checksums: true });
    server.addClient('c');
    server.addClient('quiet');
    const marker = world.spawn(Marker, { label: 'a', score: 1 });
    const unit = world.spawn(Unit, { x: 0, y: 0, angle: 0, hp: 1 });
    const replica = createReplica({ types });
    const quietReplica = createReplica({ types });
    const [serverSide, clientSide] = createMemoryConnectionPair();
    const [quietServerSide, quietClientSide] = createMemoryConnectionPair();
    const connection = connectReplica(replica, clientSide);
    const quiet = connectReplica(quietReplica, quietClientSide, { resyncOnMismatch: false });
    const requests: number[] = [];
    serverSide.on('message', (data) => {
      if (data[0] === Opcode.SnapshotAck && data[1] === RESYNC_FLAG)
        requests.push(replica.lastSnapshotId);
      else if (data[0] === Opcode.SnapshotAck) server.receiveAck('c', data.subarray(2));
    });
    quietServerSide.on('message', (data) => server.receiveAck('quiet', data.subarray(2)));
    // This "server" never honours resync requests.
    const step = async () => {
      unit.set('hp', (unit.get('hp') + 1) % 256);
      server.update();
      serverSide.send(frame(Opcode.Snapshot, 0, ...server.snapshotFor('c')), 'unreliable');
      quietServerSide.send(frame(Opcode.Snapshot, 0, ...server.snapshotFor('quiet')), 'unreliable');
      await settle();
    };
    await step();
    for (const r of [replica, quietReplica])
      (r.get(marker.id) as unknown as { fieldValues: unknown[] }).fieldValues[1] = 77;
    for (let i = 0; i < 25; i++) await step();
    // Snapshot 2 mismatched first; then every 10 applied snapshots.
    expect(requests).toEqual([2, 12, 22]);
    expect(connection.stats.resyncRequests).toBe(3);
    expect(quiet.stats.resyncRequests).toBe(0);
    // A full snapshot repairs it; the next mismatch asks at once.
    server.resync('c');
    await step();
    expect(replicaState(replica)).toEqual(expectedState(world));
    await step();
    (replica.get(marker.id) as unknown as { fieldValues: unknown[] }).fieldValues[1] = 78;
    await step();
    expect(requests).toEqual([2, 12, 22, 29]);
    quiet.close();
    connection.close();
    connection.close();
    expect(connection.closed).toBe(true);
  });

  it("keeps every snapshot within the budget 'auto' computes on a dropping link", async () => {
    const time = createManualTime();
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    const host = createReplicationHost({
      server,
      budget: 'auto',
      budgetOptions: {
        initialBytesPerSecond: 12_000,
        minBytesPerSecond: 1_000,
        maxBytesPerSecond: 40_000,
      },
    });
    const sizes: [size: number, budget: number][] = [];
    const snapshotFor = server.snapshotFor;
    server.snapshotFor = (clientId) => {
      const bytes = snapshotFor(clientId);
      sizes.push([bytes.byteLength, host.budgetOf(clientId)!]);
      return bytes;
    };
    const [serverSide, clientSide] = createMemoryConnectionPair();
    // A 4 kB/s bottleneck with a short queue, and some random loss.
    const link = conditionConnection(serverSide, {
      time,
      seed: 2,
      outbound: { latencyMs: 40, lossRate: 0.05, bandwidthBytesPerSec: 4_000, maxQueueBytes: 600 },
      inbound: { latencyMs: 40 },
    });
    host.attach('c', link);
    expect(host.budgetOf('c')).toBeUndefined();
    const replica = createReplica({ types });
    const connection = connectReplica(replica, clientSide);
    const random = createRandom(8);
    // About 14 kB/s of changes for a 4 kB/s link.
    const units = Array.from({ length: 200 }, () => world.spawn(Unit, randomUnit(random)));
    for (let i = 0; i < 80; i++) {
      for (const unit of units) {
        unit.set('x', random.range(-500, 500));
        unit.set('y', random.range(-500, 500));
      }
      server.update();
      host.sendSnapshots();
      await advance(time, TICK_MS);
    }
    expect(sizes.length).toBe(80);
    for (const [size, budget] of sizes) expect(size).toBeLessThanOrEqual(budget);
    const budgets = sizes.map(([, budget]) => budget);
    expect(budgets[0]).toBe(600);
    // It backed off below the bottleneck's 200 bytes per snapshot, and ended there.
    expect(Math.min(...budgets)).toBeLessThan(200);
    expect(budgets.at(-1)).toBeLessThan(200);
    expect(budgets.some((b, i) => i > 0 && b < budgets[i - 1]!)).toBe(true);
    expect(server.statsOf('c').deferred).toBeGreaterThan(0);
    expect(link.outbound.stats.queueDropped + link.outbound.stats.lost).toBeGreaterThan(0);
    expect(connection.stats.snapshots).toBeGreaterThan(20);
  });
});

describe('authority and diagnosis over connections', () => {
  it('sends owner writes, rolls refused ones back, and names the field a desync is in', async () => {
    const Avatar = defineEntityType(
      'avatar',
      { x: t.quantized(0, 100, 0.01), hp: t.u8() },
      { owned: ['x'] },
    );
    const world = createWorld({ types: [Avatar] });
    const server = createReplicationServer({
      world,
      checksums: true,
      validateChange: (_c, _e, _f, value) => (value as number) <= 50,
    });
    const host = createReplicationHost({ server });
    const refused: string[] = [];
    host.on('rejected', (clientId, error) => refused.push(`${clientId} ${error.code}`));
    const replica = createReplica({
      types: [Avatar],
      ownership: ownedFields,
      diagnosis: desyncDiagnosis,
    });
    const [serverSide, clientSide] = createMemoryConnectionPair();
    host.attach('p', serverSide);
    const link = connectReplica(replica, clientSide);
    const rollbacks: string[] = [];
    replica.on('rollback', (_e, fields) => rollbacks.push(fields.join()));
    const desyncs: string[] = [];
    replica.on('desync', (d) => desyncs.push(d.path));
    const avatar = world.spawn(Avatar, { x: 1, hp: 10 }, { owner: 'p' });
    const step = async () => {
      server.update();
      host.sendSnapshots();
      await settle();
    };
    await step();
    const mine = replica.get(avatar.id)!;
    expect(link.sendChanges()).toBe(false);
    replica.set(mine, 'x', 20);
    expect(link.sendChanges()).toBe(true);
    await settle();
    expect(avatar.get('x')).toBe(20);
    replica.set(mine, 'x', 90); // refused by validateChange
    link.sendChanges();
    await settle();
    await settle();
    expect(refused).toEqual([`p ${ErrorCode.VALIDATION_FAILED}`]);
    expect(mine.get('x')).toBe(20);
    expect(rollbacks).toEqual(['x']);
    expect(host.stats).toMatchObject({ changes: 2, corrections: 1 });
    expect(link.stats).toMatchObject({ changesSent: 2, corrections: 1 });
    // A corrupted replica: the mismatch leads to a diagnosis naming the field, then a repair.
    (mine as unknown as { fieldValues: unknown[] }).fieldValues[1] = 99;
    await step();
    await settle();
    await settle();
    expect(desyncs).toEqual([`entity ${avatar.id} (avatar).hp`]);
    expect(link.stats.desyncs).toBe(1);
    await step();
    expect(mine.get('hp')).toBe(10);
  });
});

describe('owner changes and a throwing validateChange', () => {
  it('refuses and rolls back the one change at once; the frame is not malformed', async () => {
    const Avatar = defineEntityType(
      'avatar',
      { x: t.quantized(0, 100, 0.01), hp: t.u8() },
      { owned: ['x'] },
    );
    const world = createWorld({ types: [Avatar] });
    let faulty = -1;
    const server = createReplicationServer({
      world,
      validateChange: (_c, entity) => {
        if (entity.id === faulty) throw new Error('validator bug');
        return true;
      },
    });
    const host = createReplicationHost({ server });
    const events: string[] = [];
    host.on('rejected', (clientId, error) => events.push(`rejected ${clientId} ${error.code}`));
    host.on('error', (clientId, error) => events.push(`error ${clientId} ${error.code}`));
    const replica = createReplica({ types: [Avatar], ownership: ownedFields });
    const [serverSide, clientSide] = createMemoryConnectionPair();
    host.attach('p', serverSide);
    const link = connectReplica(replica, clientSide);
    const first = world.spawn(Avatar, { x: 1, hp: 10 }, { owner: 'p' });
    const second = world.spawn(Avatar, { x: 2, hp: 10 }, { owner: 'p' });
    server.update();
    host.sendSnapshots();
    await settle();
    faulty = first.id;
    replica.set(replica.get(first.id)!, 'x', 20);
    replica.set(replica.get(second.id)!, 'x', 30);
    link.sendChanges();
    await settle();
    await settle();
    expect(events).toEqual([`rejected p ${ErrorCode.INTERNAL}`]);
    expect(host.stats).toMatchObject({ changes: 1, corrections: 1, malformed: 0 });
    expect([first.get('x'), second.get('x')]).toEqual([1, 30]);
    // Rolled back without waiting for the next snapshot.
    expect(replica.get(first.id)!.get('x')).toBe(1);
    expect(replica.get(second.id)!.get('x')).toBe(30);
  });
});

describe('host and client edge cases', () => {
  it('check their options', () => {
    const server = createReplicationServer({ world: createWorld({ types }) });
    for (const budget of [0, 15, 16.5, 'fixed', Number.NaN])
      expect(() => createReplicationHost({ server, budget: budget as never })).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    expect(() =>
      createReplicationHost({ server, budget: 'auto', budgetOptions: { minBytesPerSecond: -1 } }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => createReplicationHost({} as never)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createReplicationHost(undefined as never)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('apply a fixed budget, report oversize snapshots and server failures, count local drops', async () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    const host = createReplicationHost({ server, budget: 40 });
    const errors: [ClientId, string][] = [];
    host.on('error', (clientId, error) => errors.push([clientId, error.code]));
    for (let i = 0; i < 40; i++) world.spawn(Unit, { x: i, y: i, angle: 0, hp: i });
    // Snapshots larger than the connection carries.
    const [small] = createMemoryConnectionPair({ maxMessageBytes: 64 });
    const unbudgeted = createReplicationHost({ server });
    const smallErrors: string[] = [];
    unbudgeted.on('error', (_clientId, error) => smallErrors.push(error.code));
    unbudgeted.attach('small', small);
    unbudgeted.sendSnapshots();
    expect(smallErrors).toEqual([ErrorCode.MESSAGE_TOO_LARGE]);
    expect(unbudgeted.stats.snapshots).toBe(0);
    expect([...unbudgeted.clients()]).toEqual(['small']);

    // A fixed budget; an unreliable send the transport drops (its buffer is over 0 bytes).
    const [tight, tightClient] = createMemoryConnectionPair({ unreliableDropThresholdBytes: 0 });
    host.attach('tight', tight);
    expect(host.budgetOf('tight')).toBe(40);
    const replica = createReplica({ types });
    connectReplica(replica, tightClient);
    host.sendSnapshots();
    host.sendSnapshots();
    await settle();
    expect(host.stats).toMatchObject({ snapshots: 1, dropped: 1 });
    expect(host.stats.bytes).toBeLessThanOrEqual(42);
    expect(replica.size).toBeGreaterThan(0);
    expect(replica.size).toBeLessThan(40);

    // The server no longer knows the client (removed behind the host's back).
    server.removeClient('tight');
    host.sendSnapshots();
    tightClient.send(frame(Opcode.SnapshotAck, RESYNC_FLAG));
    await settle();
    expect(errors).toEqual([
      ['tight', ErrorCode.NOT_FOUND],
      ['tight', ErrorCode.NOT_FOUND],
    ]);
    expect(host.stats.malformed).toBe(1);
  });

  it('handle sends that throw: closed connections detach, other failures are errors', () => {
    const server = createReplicationServer({ world: createWorld({ types }) });
    const host = createReplicationHost({ server, budget: 'auto' });
    const errors: string[] = [];
    host.on('error', (_clientId, error) => errors.push(error.code));
    let failure: Error | undefined;
    const fake = fakeConnection(() => {
      if (failure) throw failure;
      return true;
    });
    host.attach('f', fake.connection);
    host.sendSnapshots();
    expect(host.stats.snapshots).toBe(1);
    expect(host.budgetOf('f')).toBe(3_200);
    failure = new Error('boom');
    host.sendSnapshots();
    expect(errors).toEqual([ErrorCode.INTERNAL]);
    failure = toError(ErrorCode.CONNECTION_CLOSED);
    host.sendSnapshots();
    expect([...host.clients()]).toEqual([]);
    expect([...server.clients()]).toEqual([]);
    expect(errors.length).toBe(1);

    // On the client side: an ack send failing with anything but CONNECTION_CLOSED is an error.
    const world = createWorld({ types });
    const source = createReplicationServer({ world });
    source.addClient('c');
    world.spawn(Unit, { x: 0, y: 0, angle: 0, hp: 0 });
    const clientFake = fakeConnection(() => {
      throw toError(ErrorCode.MESSAGE_TOO_LARGE);
    });
    const connection = connectReplica(createReplica({ types }), clientFake.connection);
    const clientErrors: string[] = [];
    connection.on('error', (error) => clientErrors.push(error.code));
    clientFake.deliver(frame(Opcode.Snapshot, 0, ...source.snapshotFor('c')));
    expect(clientErrors).toEqual([ErrorCode.MESSAGE_TOO_LARGE]);
    expect(connection.stats).toMatchObject({ snapshots: 1, acksSent: 0 });
    // A closed connection: the ack is silently not sent, and no resync request either.
    const closedFake = fakeConnection(() => {
      throw toError(ErrorCode.CONNECTION_CLOSED);
    });
    const closed = connectReplica(createReplica({ types }), closedFake.connection);
    closedFake.deliver(frame(Opcode.Snapshot, 0, 0xff));
    source.resync('c');
    closedFake.deliver(frame(Opcode.Snapshot, 0, ...source.snapshotFor('c')));
    expect(closed.stats).toMatchObject({
      snapshots: 1,
      acksSent: 0,
      resyncRequests: 0,
      malformed: 1,
    });
    closedFake.connection.close();
    expect(closed.closed).toBe(true);
    expect(connectReplica(createReplica({ types }), closedFake.connection).closed).toBe(true);

    // A receiver that throws (it should not) is contained too.
    const throwing = fakeConnection(() => true);
    const guarded = connectReplica(createReplica({ types }), throwing.connection, {
      rpc: {
        receive: () => {
          throw new Error('boom');
        },
      } as unknown as RpcClient,
    });
    const guardedErrors: string[] = [];
    guarded.on('error', (error) => guardedErrors.push(error.code));
    throwing.deliver(frame(Opcode.Rpc, 0, 0));
    expect(guardedErrors).toEqual([ErrorCode.INTERNAL]);
  });

  it('detach a client whose corrections find the connection closed, without an error', () => {
    const Ship = defineEntityType('ship', { x: t.u16(), hp: t.u8() }, { owned: ['x'] });
    const world = createWorld({ types: [Ship] });
    const server = createReplicationServer({ world });
    const host = createReplicationHost({ server });
    const errors: string[] = [];
    host.on('error', (_clientId, error) => errors.push(error.code));
    const fake = fakeConnection(() => {
      throw toError(ErrorCode.CONNECTION_CLOSED);
    });
    host.attach('a', fake.connection);
    server.correct(world.spawn(Ship, { x: 1, hp: 1 }, { owner: 'a' }));
    server.update();
    host.sendSnapshots();
    expect([...host.clients()]).toEqual([]);
    expect([...server.clients()]).toEqual([]);
    expect(errors).toEqual([]);
  });
});

function toError(code: ErrorCode): TickwireError {
  return new TickwireError(code, code);
}
