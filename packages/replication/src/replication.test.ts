import { createRandom, ErrorCode, isTickwireError } from '@tickwire/core';
import { createMemoryMetrics } from '@tickwire/core/memory';
import { BinaryReader, t } from '@tickwire/serialization';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineEntityType, type EntityType } from './entity-type.js';
import { createFilterInterest, createGridInterest, type Interest } from './interest.js';
import { encodeOwned } from './ownership.js';
import {
  createReplica,
  desyncDiagnosis,
  ownedFields,
  type Replica,
  type ReplicaEntity,
} from './replica.js';
import {
  createReplicationServer,
  type ReplicationServer,
  type ReplicationServerOptions,
} from './server.js';
import { atPrecision, expectedState, replicaState } from './test-support.js';
import { type ClientId, createWorld, type Entity, worldInternals } from './world.js';

const Player = defineEntityType('player', {
  x: t.f32(),
  y: t.quantized(0, 1024, 1 / 64),
  angle: t.angle(16),
  hp: t.u8(),
});
const Tag = defineEntityType('tag', {
  name: t.string({ maxBytes: 8 }),
  flag: t.bool(),
  score: t.varuint(),
  bonus: t.optional(t.u16()),
});
const types = [Player, Tag];

const setup = (historySize?: number) => {
  const world = createWorld({ types });
  const server = createReplicationServer({ world, historySize });
  const replica = createReplica({ types });
  server.addClient('c');
  return { world, server, replica };
};

/** Encodes, applies and acknowledges one snapshot; returns its size. */
const deliver = (server: ReplicationServer, replica: Replica, clientId: ClientId = 'c') => {
  const bytes = server.snapshotFor(clientId);
  if (replica.apply(bytes) !== undefined) server.receiveAck(clientId, replica.ack());
  return bytes.length;
};

const errorOf = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
};
const codeOf = (fn: () => unknown) => (errorOf(fn) as { code: string }).code;

describe('snapshots', () => {
  it('replicate spawns, field changes and despawns, and emit events', () => {
    const { world, server, replica } = setup();
    const events: string[] = [];
    replica.on('spawn', (e) => events.push(`spawn ${e.id}`));
    replica.on('update', (e, fields) => events.push(`update ${e.id} ${fields.join(',')}`));
    replica.on('despawn', (e) => events.push(`despawn ${e.id}`));
    const a = world.spawn(Player, { x: 1, y: 2, angle: 0, hp: 100 });
    const b = world.spawn(Tag, { name: 'b', flag: true, score: 7 });
    deliver(server, replica);
    expect(events).toEqual([`spawn ${a.id}`, `spawn ${b.id}`]);
    const copy = replica.get(a.id)!;
    expect(copy.is(Player) && copy.get('hp')).toBe(100);
    expect(copy.is(Tag)).toBe(false);

    events.length = 0;
    a.set('hp', 90);
    world.despawn(b);
    deliver(server, replica);
    expect(events).toEqual([`despawn ${b.id}`, `update ${a.id} hp`]);
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(replica.size).toBe(1);
    expect(replica.lastSnapshotId).toBe(2);
    expect(server.statsOf('c')).toMatchObject({ snapshots: 2, acks: 2, lost: 0, visible: 1 });
  });

  it('send only the changes since the acknowledged baseline', () => {
    const { world, server, replica } = setup();
    const players: Entity<typeof Player.shape>[] = [];
    for (let i = 0; i < 1000; i++)
      players.push(world.spawn(Player, { x: i, y: 1, angle: 0, hp: 1 }));
    const full = deliver(server, replica);
    for (let i = 0; i < 10; i++) players[i * 97]!.set('x', -i);
    const delta = deliver(server, replica);
    expect(delta).toBeLessThan(full / 50);
    // 10 × (x ≤ 32 bits + mask ≤ 5 + id gap 8) + header and parameters.
    expect(delta).toBeLessThanOrEqual(64);
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(deliver(server, replica)).toBeLessThanOrEqual(6); // nothing changed
  });

  it('code small numeric changes as differences from the baseline', () => {
    const world = createWorld({ types });
    const plain = createReplicationServer({ world, deltaFields: false });
    const delta = createReplicationServer({ world });
    const replicas = [createReplica({ types }), createReplica({ types })];
    plain.addClient('c');
    delta.addClient('c');
    const random = createRandom(3);
    const players = Array.from({ length: 200 }, (_, i) =>
      world.spawn(Player, { x: i * 3.25, y: 512, angle: 1, hp: 50 }),
    );
    let plainBytes = 0;
    let deltaBytes = 0;
    for (let tick = 0; tick < 40; tick++) {
      for (const p of players) {
        p.set('x', p.get('x') + random.next() * 2 - 1);
        p.set('y', Math.min(1024, Math.max(0, p.get('y') + random.next() * 4 - 2)));
        p.set('angle', p.get('angle') + random.next() * 0.1 - 0.05);
      }
      plain.update();
      delta.update();
      const a = deliver(plain, replicas[0]!);
      const b = deliver(delta, replicas[1]!);
      if (tick >= 10) {
        plainBytes += a;
        deltaBytes += b;
      }
      expect(replicaState(replicas[1]!)).toEqual(expectedState(world));
    }
    expect(replicaState(replicas[0]!)).toEqual(expectedState(world));
    expect(deltaBytes).toBeLessThan(plainBytes * 0.7);
  });

  it('decode differences against the baseline even when newer snapshots are in flight', () => {
    const { world, server, replica } = setup();
    const p = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    deliver(server, replica);
    // Five snapshots applied, acks lost: each is a delta against snapshot 1.
    for (let i = 1; i <= 5; i++) {
      p.set('x', i * 0.5);
      p.set('y', i);
      server.update();
      expect(replica.apply(server.snapshotFor('c'))).toBe(i + 1);
      expect(replica.get(p.id)!.get('x')).toBe(i * 0.5);
    }
    expect(server.baselineOf('c')).toBe(1);
    server.receiveAck('c', replica.ack());
    expect(server.baselineOf('c')).toBe(6);
    p.set('y', 100);
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('keep the replica undo log bounded while acks lag behind, and drop it when they catch up', () => {
    const { world, server, replica } = setup();
    const p = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    deliver(server, replica);
    const acks: Uint8Array[] = [];
    const undoOf = () => replica.get(p.id) as unknown as { undo: number[]; undoEnd: number };
    let largest = 0;
    for (let i = 1; i <= 3000; i++) {
      p.set('x', i * 0.25);
      p.set('y', (i * 7) % 1024);
      server.update();
      expect(replica.apply(server.snapshotFor('c'))).toBe(i + 1);
      acks.push(replica.ack());
      // Each ack arrives four snapshots late: every snapshot is a delta against an older one.
      if (acks.length > 4) server.receiveAck('c', acks.shift()!);
      largest = Math.max(largest, undoOf().undo.length);
      if (i % 500 === 0) expect(replicaState(replica)).toEqual(expectedState(world));
    }
    // Two fields a snapshot, four snapshots in flight: 8 live entries (24 slots); the log
    // compacts once its dropped front reaches 96 slots, so it never holds more than ~2x that.
    expect(largest).toBeLessThanOrEqual(200);
    for (const ack of acks) server.receiveAck('c', ack);
    p.set('x', -1);
    deliver(server, replica);
    expect(undoOf().undoEnd).toBe(3);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('keep the replica undo log bounded when no ack ever reaches the server', () => {
    const { world, server, replica } = setup();
    const p = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    // One that changes rarely, one not until the end: their updates reach back to the baseline.
    const rare = world.spawn(Player, { x: 5, y: 5, angle: 0, hp: 1 });
    const late = world.spawn(Player, { x: 9, y: 9, angle: 0, hp: 1 });
    deliver(server, replica);
    const undoOf = () => (replica.get(p.id) as unknown as { undo: number[] }).undo;
    let largest = 0;
    for (let i = 1; i <= 5000; i++) {
      p.set('x', i * 0.25);
      p.set('y', (i * 7) % 1024);
      if (i % 1500 === 0) rare.set('x', rare.get('x') + 1);
      if (i === 4990) late.set('y', 10);
      server.update();
      // Applied, acknowledged by the replica, but the acks are all lost.
      expect(replica.apply(server.snapshotFor('c'))).toBe(i + 1);
      largest = Math.max(largest, undoOf().length);
      if (i % 500 === 0 || i >= 4990) expect(replicaState(replica)).toEqual(expectedState(world));
    }
    // Two fields a snapshot, no baseline further back than the largest history (1024
    // snapshots): at most ~2,050 live entries (6,150 slots), twice that before compacting.
    expect(largest).toBeLessThanOrEqual(12_400);
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('survive a lost snapshot: the next one is a delta against the older acknowledged baseline', () => {
    const { world, server, replica } = setup();
    const a = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    deliver(server, replica);
    a.set('x', 5);
    const lost = server.snapshotFor('c');
    a.set('hp', 2);
    const next = server.snapshotFor('c');
    expect(next.length).toBeGreaterThan(lost.length);
    expect(replica.apply(next)).toBe(3);
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(replica.apply(lost)).toBeUndefined();
    expect(replica.apply(next)).toBeUndefined();
    server.receiveAck('c', replica.ack());
    expect(server.statsOf('c').lost).toBe(1);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('advance the baseline only on acks of sent, newer snapshots', () => {
    const { world, server } = setup(4);
    world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    expect(server.baselineOf('c')).toBe(0);
    for (let i = 0; i < 6; i++) server.snapshotFor('c');
    expect(server.ack('c', 1)).toBe(false); // overwritten in the history of 4
    expect(server.ack('c', 7)).toBe(false); // never sent
    expect(server.ack('c', 1.5)).toBe(false);
    expect(server.ack('nobody', 5)).toBe(false);
    expect(server.receiveAck('nobody', new Uint8Array(5))).toBe(false);
    expect(server.ack('c', 5)).toBe(true);
    expect(server.baselineOf('c')).toBe(5);
    expect(server.ack('c', 4)).toBe(false);
    expect(server.baselineOf('c')).toBe(5);
    expect(codeOf(() => server.receiveAck('c', new Uint8Array([1])))).toBe(ErrorCode.DECODE_FAILED);
  });

  it('resend what an unacknowledged, forgotten snapshot carried', () => {
    const { world, server, replica } = setup(4);
    const p = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    deliver(server, replica);
    p.set('hp', 9);
    // Applied, but every ack is lost until the history wraps: the server no longer knows.
    for (let i = 0; i < 6; i++) replica.apply(server.snapshotFor('c'));
    p.set('hp', 10);
    const late = server.snapshotFor('c');
    replica.apply(late);
    server.receiveAck('c', replica.ack());
    expect(replicaState(replica)).toEqual(expectedState(world));
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('replace an entity whose id was reused while the client missed snapshots', () => {
    const { world, server, replica } = setup();
    const old = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    deliver(server, replica);
    world.despawn(old);
    const reborn = world.spawn(Tag, { name: 'n', flag: false, score: 1 });
    expect(reborn.id).toBe(old.id);
    expect(reborn.generation).toBe(old.generation + 1);
    const despawned: ReplicaEntity[] = [];
    const spawned: ReplicaEntity[] = [];
    replica.on('despawn', (e) => despawned.push(e));
    replica.on('spawn', (e) => spawned.push(e));
    deliver(server, replica);
    expect(despawned.map((e) => e.generation)).toEqual([old.generation]);
    expect(spawned.map((e) => e.generation)).toEqual([reborn.generation]);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('check their options and clients', () => {
    const world = createWorld({ types });
    expect(codeOf(() => createReplicationServer({ world, historySize: 1 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    const server = createReplicationServer({ world, maxSnapshotBytes: 16 });
    server.addClient(1);
    expect(codeOf(() => server.addClient(1))).toBe(ErrorCode.CONFLICT);
    expect(codeOf(() => server.addClient({} as never))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => server.snapshotFor(2))).toBe(ErrorCode.NOT_FOUND);
    expect(codeOf(() => server.setBudget(1, 3))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => server.update(-1))).toBe(ErrorCode.INVALID_ARGUMENT);
    for (let i = 0; i < 10; i++) world.spawn(Player, { x: i, y: 0, angle: 0, hp: 1 });
    expect(codeOf(() => server.snapshotFor(1))).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect([...server.clients()]).toEqual([1]);
    server.removeClient(1);
    expect(codeOf(() => server.baselineOf(1))).toBe(ErrorCode.NOT_FOUND);
    expect(isTickwireError(errorOf(() => createReplica({ types: [Player, Player] })))).toBe(true);
  });

  it('refuse a types option that is not a list of entity types, naming the bad entry', () => {
    const messageOf = (fn: () => unknown) => {
      const error = errorOf(fn);
      expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      return (error as Error).message;
    };
    expect(messageOf(() => createReplica({ types: undefined as never }))).toBe(
      'createReplica: types must be an array of entity types',
    );
    expect(messageOf(() => createReplica(undefined as never))).toBe(
      'createReplica: types must be an array of entity types',
    );
    expect(messageOf(() => createReplica({ types: [Player, { name: 'x' } as never] }))).toBe(
      'createReplica: types[1] is not an entity type (defineEntityType makes one)',
    );
    expect(messageOf(() => createWorld({ types: [null as never] }))).toBe(
      'createWorld: types[0] is not an entity type (defineEntityType makes one)',
    );
    expect(messageOf(() => createWorld({ types: 'player' as never }))).toBe(
      'createWorld: types must be an array of entity types',
    );
  });

  it('wrap an encoder failure in a typed error', () => {
    const Broken = defineEntityType('broken', {
      v: {
        ...t.string({ maxBytes: 4 }),
        write: () => {
          throw new RangeError('boom');
        },
      },
    });
    const world = createWorld({ types: [Broken] });
    const server = createReplicationServer({ world });
    server.addClient('c');
    world.spawn(Broken, { v: 'a' });
    const error = errorOf(() => server.snapshotFor('c'));
    expect(isTickwireError(error) && error.code).toBe(ErrorCode.INTERNAL);
  });
});

describe('interest and visibility', () => {
  it('sends only what a client sees, and removes what leaves its view', () => {
    const world = createWorld({ types });
    const sees = new Map<ClientId, Set<number>>([['c', new Set([0, 2])]]);
    const server = createReplicationServer({
      world,
      interest: createFilterInterest((client, entity) => sees.get(client)!.has(entity.id)),
    });
    server.addClient('c');
    const replica = createReplica({ types });
    const players = [0, 1, 2].map((i) => world.spawn(Player, { x: i, y: 0, angle: 0, hp: 1 }));
    deliver(server, replica);
    expect([...replica.entities()].map((e) => e.id).sort()).toEqual([0, 2]);
    expect(server.observersOf(0)).toEqual(['c']);
    expect(server.observersOf(1)).toEqual([]);
    sees.set('c', new Set([1, 2]));
    players[2]!.set('hp', 7);
    const events: string[] = [];
    replica.on('despawn', (e, reason) => events.push(`${reason} ${e.id}`));
    replica.on('spawn', (e, reason) => events.push(`${reason} ${e.id}`));
    deliver(server, replica);
    expect(events).toEqual(['leave 0', 'enter 1']);
    events.length = 0;
    world.despawn(players[1]!);
    const fresh = world.spawn(Player, { x: 9, y: 0, angle: 0, hp: 1 });
    expect(fresh.id).toBe(players[1]!.id); // the freed id, next generation
    sees.set('c', new Set([2]));
    deliver(server, replica);
    expect(events).toEqual(['despawn 1']);
    events.length = 0;
    // It existed when the client acknowledged its last snapshot: it enters the view.
    const newer = world.spawn(Player, { x: 8, y: 0, angle: 0, hp: 1 });
    sees.set('c', new Set([1, 2, newer.id]));
    deliver(server, replica);
    expect(events).toEqual(['enter 1', `spawn ${newer.id}`]);
    expect(replica.get(2)!.get('hp')).toBe(7);
    expect(server.statsOf('c').visible).toBe(3);
  });

  it('works with a spatial grid, whose ids come in cell order', () => {
    const Dot = defineEntityType('dot', {
      x: t.quantized(0, 100, 0.01),
      y: t.quantized(0, 100, 0.01),
    });
    const world = createWorld({ types: [Dot] });
    const view = { x: 50, y: 50, radius: 30 };
    const server = createReplicationServer({
      world,
      interest: createGridInterest({
        cellSize: 10,
        position: (entity, out) => {
          out.x = entity.get('x' as never) as number;
          out.y = entity.get('y' as never) as number;
          return true;
        },
        view: () => view,
      }),
    });
    server.addClient('c');
    const replica = createReplica({ types: [Dot] });
    const random = createRandom(8);
    const dots = Array.from({ length: 200 }, () =>
      world.spawn(Dot, { x: random.next() * 100, y: random.next() * 100 }),
    );
    for (let tick = 0; tick < 30; tick++) {
      for (const dot of dots) {
        dot.set('x', Math.min(100, Math.max(0, dot.get('x') + random.next() * 6 - 3)));
        dot.set('y', Math.min(100, Math.max(0, dot.get('y') + random.next() * 6 - 3)));
      }
      view.x = 30 + tick;
      server.update();
      deliver(server, replica);
      const inside = dots
        .filter((d) => (d.get('x') - view.x) ** 2 + (d.get('y') - view.y) ** 2 <= view.radius ** 2)
        .map((d) => d.id);
      expect([...replica.entities()].map((e) => e.id).sort((a, b) => a - b)).toEqual(inside);
    }
  });

  it('hides fields per client and never sends owners their own fields', () => {
    const Avatar = defineEntityType(
      'avatar',
      { x: t.u16(), secret: t.u8(), aim: t.u8() },
      { owned: ['aim'] },
    );
    const world = createWorld({ types: [Avatar] });
    const server = createReplicationServer({
      world,
      fieldFilter: (client) => (client === 'spy' ? undefined : 0b101),
    });
    const replicas = new Map(
      ['me', 'other', 'spy'].map((c) => [
        c,
        createReplica({ types: [Avatar], ownership: ownedFields }),
      ]),
    );
    for (const c of replicas.keys()) server.addClient(c);
    const mine = world.spawn(Avatar, { x: 1, secret: 2, aim: 3 }, { owner: 'me' });
    for (const [c, r] of replicas) deliver(server, r, c);
    // The owner gets its own fields once, at spawn.
    expect(replicas.get('me')!.get(mine.id)!.values()).toEqual({
      x: 1,
      secret: undefined,
      aim: 3,
    });
    expect(replicas.get('me')!.get(mine.id)!.owned).toBe(true);
    expect(replicas.get('other')!.get(mine.id)!.values()).toEqual({
      x: 1,
      secret: undefined,
      aim: 3,
    });
    expect(replicas.get('other')!.get(mine.id)!.owned).toBe(false);
    expect(replicas.get('spy')!.get(mine.id)!.values()).toEqual({ x: 1, secret: 2, aim: 3 });
    mine.set('aim', 4);
    mine.set('secret', 5);
    const sizes = [...replicas].map(([c, r]) => deliver(server, r, c));
    expect(sizes[0]).toBeLessThanOrEqual(6); // nothing the owner may see changed
    expect(replicas.get('other')!.get(mine.id)!.get('aim')).toBe(4);
    expect(replicas.get('spy')!.get(mine.id)!.get('secret')).toBe(5);
    // Ownership moves: both sides get the entity again with the right fields.
    mine.setOwner('other');
    for (const [c, r] of replicas) deliver(server, r, c);
    expect(replicas.get('me')!.get(mine.id)!.values()).toEqual({ x: 1, secret: undefined, aim: 4 });
    expect(replicas.get('other')!.get(mine.id)!.owned).toBe(true);
  });
});

describe('field visibility changing while snapshots are in flight', () => {
  const Unit = defineEntityType('unit', { a: t.u16(), b: t.u16() });
  const setupHiding = () => {
    const world = createWorld({ types: [Unit] });
    const hide = { b: false };
    const server = createReplicationServer({
      world,
      checksums: true,
      fieldFilter: () => (hide.b ? 0b01 : undefined),
    });
    server.addClient('c');
    const replica = createReplica({ types: [Unit] });
    const mismatches: number[] = [];
    replica.on('mismatch', (id) => mismatches.push(id));
    const unit = world.spawn(Unit, { a: 1, b: 2 });
    deliver(server, replica);
    return { server, replica, mismatches, unit, hide };
  };

  it('shows a field again that was hidden and shown before the hiding was acknowledged', () => {
    const { server, replica, mismatches, unit, hide } = setupHiding();
    hide.b = true;
    server.update();
    replica.apply(server.snapshotFor('c')); // applied; its ack is late
    expect(replica.get(unit.id)!.values()).toEqual({ a: 1, b: undefined });
    const late = replica.ack();
    hide.b = false;
    server.update();
    replica.apply(server.snapshotFor('c'));
    expect(replica.get(unit.id)!.values()).toEqual({ a: 1, b: 2 });
    expect(mismatches).toEqual([]);
    server.receiveAck('c', late);
    deliver(server, replica);
    expect(replica.get(unit.id)!.values()).toEqual({ a: 1, b: 2 });
    expect(mismatches).toEqual([]);
  });

  it('shows it again when the snapshot that showed it again was lost', () => {
    const { server, replica, mismatches, unit, hide } = setupHiding();
    hide.b = true;
    server.update();
    replica.apply(server.snapshotFor('c')); // applied; its ack is late
    hide.b = false;
    server.update();
    server.snapshotFor('c'); // lost
    server.update();
    replica.apply(server.snapshotFor('c'));
    expect(replica.get(unit.id)!.values()).toEqual({ a: 1, b: 2 });
    expect(mismatches).toEqual([]);
  });

  it('stops sending an entity whole once its spawn is acknowledged, acks a snapshot late', () => {
    const world = createWorld({ types: [Unit] });
    const server = createReplicationServer({ world, fieldFilter: () => 0b11 });
    server.addClient('c');
    const replica = createReplica({ types: [Unit] });
    const unit = world.spawn(Unit, { a: 1, b: 2 });
    let late: Uint8Array | undefined;
    const spawned: number[] = [];
    replica.on('spawn', () => spawned.push(replica.lastSnapshotId));
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) {
      unit.set('a', 10 + i);
      server.update();
      const bytes = server.snapshotFor('c');
      sizes.push(bytes.length);
      replica.apply(bytes);
      if (late !== undefined) server.receiveAck('c', late);
      late = replica.ack();
    }
    expect(spawned).toEqual([1]);
    // Whole in the two snapshots sent before the first ack, then only `a`.
    expect(sizes.slice(2).every((size) => size < sizes[0]!)).toBe(true);
  });
});

describe('ownership and authority', () => {
  const Avatar = defineEntityType(
    'avatar',
    { x: t.quantized(0, 100, 0.01), y: t.quantized(0, 100, 0.01), hp: t.u8() },
    { owned: ['x', 'y'] },
  );
  const setupOwned = (options: Partial<ReplicationServerOptions> = {}) => {
    const world = createWorld({ types: [Avatar] });
    const server = createReplicationServer({ world, ...options });
    const owner = createReplica({ types: [Avatar], ownership: ownedFields });
    const other = createReplica({ types: [Avatar], ownership: ownedFields });
    server.addClient('owner');
    server.addClient('other');
    const avatar = world.spawn(Avatar, { x: 1, y: 1, hp: 100 }, { owner: 'owner' });
    const tick = () => {
      server.update();
      deliver(server, owner, 'owner');
      deliver(server, other, 'other');
    };
    tick();
    const mine = owner.get(avatar.id)!;
    return { world, server, owner, other, avatar, mine, tick };
  };

  it('applies the owner writes locally at once and replicates them to the others', () => {
    const { server, owner, other, avatar, mine, tick } = setupOwned();
    expect(mine.owned).toBe(true);
    owner.set(mine, 'x', 5);
    expect(mine.get('x')).toBe(5);
    expect(server.receiveChanges('owner', owner.takeChanges()!)).toEqual({
      accepted: 1,
      rejected: [],
    });
    expect(owner.takeChanges()).toBeUndefined();
    expect(avatar.get('x')).toBe(5);
    tick();
    expect(other.get(avatar.id)!.get('x')).toBe(5);
    expect(server.takeCorrections('owner')).toBeUndefined();
    expect(server.statsOf('owner')).toMatchObject({ changesAccepted: 1, changesRejected: 0 });
  });

  it('rolls back a change refused by validation, keeping later local writes', () => {
    const { server, owner, avatar, mine } = setupOwned({
      // Moves of more than 10 units per change are refused.
      validateChange: (_c, _e, _f, value, previous) =>
        Math.abs((value as number) - (previous as number)) <= 10,
    });
    const rollbacks: string[][] = [];
    owner.on('rollback', (_e, fields) => rollbacks.push([...fields]));
    owner.set(mine, 'x', 50);
    owner.set(mine, 'y', 2);
    const result = server.receiveChanges('owner', owner.takeChanges()!);
    expect(result.accepted).toBe(0);
    expect(result.rejected.map((e) => [e.code, e.details])).toEqual([
      [ErrorCode.VALIDATION_FAILED, { entity: avatar.id, field: 'x' }],
    ]);
    expect(avatar.get('y')).toBe(1); // refused whole
    owner.set(mine, 'y', 3); // written after the refused change: kept
    owner.applyCorrections(server.takeCorrections('owner')!);
    expect(mine.get('x')).toBe(1);
    expect(mine.get('y')).toBe(3);
    expect(rollbacks).toEqual([['x']]);
    expect(server.statsOf('owner').changesRejected).toBe(1);
  });

  it('lets the server win a conflict by default, or the last writer when asked', () => {
    for (const conflict of ['server-wins', 'last-writer-wins'] as const) {
      const { server, owner, avatar, mine } = setupOwned({ conflict });
      owner.set(mine, 'x', 7); // based on a snapshot from before the server's write
      avatar.set('x', 40);
      const result = server.receiveChanges('owner', owner.takeChanges()!);
      if (conflict === 'server-wins') {
        expect(result.rejected.map((e) => e.code)).toEqual([ErrorCode.CONFLICT]);
        owner.applyCorrections(server.takeCorrections('owner')!);
        expect(mine.get('x')).toBe(40);
        expect(avatar.get('x')).toBe(40);
      } else {
        expect(result.accepted).toBe(1);
        expect(avatar.get('x')).toBe(7);
      }
    }
  });

  it('refuses writes to entities and fields the client does not own', () => {
    const { server, owner, other, avatar, mine, world } = setupOwned();
    const theirs = other.get(avatar.id)!;
    expect(codeOf(() => other.set(theirs, 'x', 3))).toBe(ErrorCode.FORBIDDEN);
    expect(codeOf(() => owner.set(mine, 'hp', 3))).toBe(ErrorCode.FORBIDDEN);
    expect(codeOf(() => owner.set(mine, 'x', 300))).toBe(ErrorCode.VALIDATION_FAILED);
    expect(codeOf(() => owner.set(mine, 'nope' as 'x', 3))).toBe(ErrorCode.INVALID_ARGUMENT);
    // A forged message from another client, and one naming a field it does not own.
    owner.set(mine, 'x', 9);
    const bytes = owner.takeChanges()!;
    expect(server.receiveChanges('other', bytes).rejected.map((e) => e.code)).toEqual([
      ErrorCode.FORBIDDEN,
    ]);
    expect(server.receiveChanges('nobody', bytes)).toEqual({ accepted: 0, rejected: [] });
    expect(avatar.get('x')).toBe(1);
    const forged = encodeOwned(world.types, {
      sequence: 1,
      snapshotId: 1,
      entries: [{ id: avatar.id, generation: 0, typeIndex: 0, mask: 0b100, values: [0, 0, 1] }],
    });
    expect(server.receiveChanges('owner', forged).rejected.map((e) => e.code)).toEqual([
      ErrorCode.FORBIDDEN,
    ]);
    expect(codeOf(() => server.receiveChanges('owner', new Uint8Array([1, 1, 1, 0])))).toBe(
      ErrorCode.DECODE_FAILED,
    );
    world.despawn(avatar);
    expect(server.receiveChanges('owner', bytes).rejected.map((e) => e.code)).toEqual([
      ErrorCode.NOT_FOUND,
    ]);
    expect(codeOf(() => owner.applyCorrections(new Uint8Array([5])))).toBe(ErrorCode.DECODE_FAILED);
  });

  it('refuses the one change a throwing validateChange was asked about, and handles the others', () => {
    const boom = new Error('validator bug');
    let faulty = -1;
    const { world, server, owner, avatar, tick } = setupOwned({
      validateChange: (_c, entity) => {
        if (entity.id === faulty) throw boom;
        return true;
      },
    });
    const second = world.spawn(Avatar, { x: 2, y: 2, hp: 100 }, { owner: 'owner' });
    const third = world.spawn(Avatar, { x: 3, y: 3, hp: 100 }, { owner: 'owner' });
    tick();
    faulty = second.id;
    for (const entity of [avatar, second, third]) owner.set(owner.get(entity.id)!, 'x', 9);
    const result = server.receiveChanges('owner', owner.takeChanges()!);
    expect(result.accepted).toBe(2);
    expect(result.rejected.map((e) => [e.code, e.details, e.cause])).toEqual([
      [ErrorCode.INTERNAL, { entity: second.id, field: 'x' }, boom],
    ]);
    expect(result.rejected[0]!.message).toBe(
      `change to entity ${second.id}: validateChange threw on 'x': validator bug`,
    );
    expect([avatar.get('x'), second.get('x'), third.get('x')]).toEqual([9, 2, 9]);
    expect(server.statsOf('owner')).toMatchObject({ changesAccepted: 2, changesRejected: 1 });
    // The refused change is rolled back on the owner like any refusal.
    owner.applyCorrections(server.takeCorrections('owner')!);
    expect(owner.get(second.id)!.get('x')).toBe(2);
    expect(owner.get(third.id)!.get('x')).toBe(9);
  });

  it('applies nothing from a changes message that does not decode', () => {
    const { world, server, owner, avatar, tick } = setupOwned();
    const second = world.spawn(Avatar, { x: 2, y: 2, hp: 100 }, { owner: 'owner' });
    tick();
    for (const entity of [avatar, second]) owner.set(owner.get(entity.id)!, 'x', 9);
    const bytes = owner.takeChanges()!;
    const broken = [
      bytes.subarray(0, bytes.length - 1), // truncated in the last entry
      new Uint8Array([...bytes, 0xff]), // trailing bytes
      new Uint8Array(0),
      'not bytes' as never,
    ];
    for (const malformed of broken)
      expect(codeOf(() => server.receiveChanges('owner', malformed))).toBe(ErrorCode.DECODE_FAILED);
    expect([avatar.get('x'), second.get('x')]).toEqual([1, 2]);
    expect(server.statsOf('owner')).toMatchObject({ changesAccepted: 0, changesRejected: 0 });
    expect(server.takeCorrections('owner')).toBeUndefined();
    // Well-formed entries naming a dead entity, a wrong generation or a field not owned are
    // refused one by one (typed), and the others applied.
    const gone = world.spawn(Avatar, { x: 4, y: 4, hp: 100 }, { owner: 'owner' });
    world.despawn(gone);
    const forged = encodeOwned(world.types, {
      sequence: 9,
      snapshotId: owner.lastSnapshotId,
      entries: [
        { id: avatar.id, generation: 0, typeIndex: 0, mask: 0b001, values: [5] },
        { id: second.id, generation: 1, typeIndex: 0, mask: 0b001, values: [5] },
        { id: gone.id, generation: 0, typeIndex: 0, mask: 0b001, values: [5] },
        { id: 500, generation: 0, typeIndex: 0, mask: 0b001, values: [5] },
      ],
    });
    const result = server.receiveChanges('owner', forged);
    expect(result.accepted).toBe(1);
    expect(result.rejected.map((e) => e.code)).toEqual([
      ErrorCode.NOT_FOUND,
      ErrorCode.NOT_FOUND,
      ErrorCode.NOT_FOUND,
    ]);
    expect([avatar.get('x'), second.get('x')]).toEqual([5, 2]);
  });

  it('ignores a late ack or changes message from the previous life of a re-added client', () => {
    const world = createWorld({ types: [Avatar] });
    const server = createReplicationServer({ world });
    server.addClient('owner');
    const avatar = world.spawn(Avatar, { x: 1, y: 1, hp: 100 }, { owner: 'owner' });
    const before = createReplica({ types: [Avatar], ownership: ownedFields });
    server.update();
    before.apply(server.snapshotFor('owner'));
    const lateAck = before.ack(); // still in flight when the client leaves
    before.set(before.get(avatar.id)!, 'x', 7); // based on snapshot 1
    const lateChanges = before.takeChanges()!;
    avatar.set('x', 40); // the server's write, which that client never saw
    server.removeClient('owner');
    server.addClient('owner');
    const after = createReplica({ types: [Avatar], ownership: ownedFields });
    server.update();
    server.snapshotFor('owner'); // lost: the new replica never applies it
    expect(server.receiveAck('owner', lateAck)).toBe(false);
    expect(server.baselineOf('owner')).toBe(0);
    expect(server.statsOf('owner').acks).toBe(0);
    // Not based on anything the new life was sent: the server's write wins.
    expect(server.receiveChanges('owner', lateChanges).rejected.map((e) => e.code)).toEqual([
      ErrorCode.CONFLICT,
    ]);
    expect(avatar.get('x')).toBe(40);
    // The new replica still gets the avatar whole.
    server.update();
    expect(after.apply(server.snapshotFor('owner'))).toBeDefined();
    expect(replicaState(after)).toEqual(expectedState(world));
    server.receiveAck('owner', after.ack());
    expect(server.baselineOf('owner')).toBeGreaterThan(0);
  });

  it('needs the ownership option exactly when a type has owned fields', () => {
    const error = errorOf(() => createReplica({ types: [Player, Avatar] })) as Error;
    expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(error.message).toBe(
      "createReplica: entity type 'avatar' has owned fields: pass ownership: ownedFields",
    );
    // Without owned fields a replica needs none: nothing is ever its own to write.
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    server.addClient('c');
    const replica = createReplica({ types });
    const player = world.spawn(Player, { x: 1, y: 1, angle: 0, hp: 1 });
    deliver(server, replica);
    const held = replica.get(player.id)!;
    expect(codeOf(() => replica.set(held, 'hp', 3))).toBe(ErrorCode.FORBIDDEN);
    expect(codeOf(() => replica.set(held, 'nope' as 'hp', 3))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(replica.takeChanges()).toBeUndefined();
    const correction = encodeOwned(types, {
      sequence: 1,
      snapshotId: 1,
      entries: [{ id: player.id, generation: 0, typeIndex: 0, mask: 0b1000, values: [0, 0, 0, 9] }],
    });
    expect(codeOf(() => replica.applyCorrections(correction))).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(held.get('hp')).toBe(1);
  });

  it('sends the server-written values of owned fields to the owner with correct()', () => {
    const { server, owner, avatar, mine, tick } = setupOwned();
    avatar.set('x', 60); // a teleport
    tick();
    expect(mine.get('x')).toBe(1); // owned fields are not in the owner's snapshots
    server.correct(avatar);
    owner.applyCorrections(server.takeCorrections('owner')!);
    expect(mine.get('x')).toBe(60);
    avatar.setOwner(undefined);
    server.correct(avatar); // no owner: nothing to send
    expect(server.takeCorrections('owner')).toBeUndefined();
  });

  it('ignores corrections to entities and fields the client does not own', () => {
    const { world, owner, avatar, mine, tick } = setupOwned();
    const theirs = world.spawn(Avatar, { x: 3, y: 3, hp: 50 }, { owner: 'other' });
    tick();
    const held = owner.get(theirs.id)!;
    const rollbacks: number[] = [];
    owner.on('rollback', (entity) => rollbacks.push(entity.id));
    // hp is not an owned field; the other avatar is not this client's.
    const correction = encodeOwned([Avatar], {
      sequence: 0,
      snapshotId: owner.lastSnapshotId,
      entries: [
        { id: mine.id, generation: 0, typeIndex: 0, mask: 0b101, values: [7, 0, 1] },
        { id: theirs.id, generation: 0, typeIndex: 0, mask: 0b111, values: [9, 9, 9] },
      ],
    });
    owner.applyCorrections(correction);
    expect(mine.values()).toEqual({ x: 7, y: 1, hp: 100 });
    expect(held.values()).toEqual({ x: 3, y: 3, hp: 50 });
    expect(rollbacks).toEqual([avatar.id]);
    // The snapshots' differences still decode against the right images.
    for (let i = 1; i <= 5; i++) {
      avatar.set('hp', 100 - i);
      theirs.set('x', 3 + i * 0.5);
      theirs.set('hp', 50 - i);
      tick();
    }
    expect(mine.get('hp')).toBe(95);
    expect(held.values()).toEqual({ x: 5.5, y: 3, hp: 45 });
  });
});

describe('budgets and priority', () => {
  it('never exceed the byte budget and update every visible entity within maxInterval', () => {
    const Unit = defineEntityType(
      'unit',
      { x: t.f32(), y: t.f32(), hp: t.u8() },
      { maxInterval: 12 },
    );
    const Flag = defineEntityType('flag', { owner: t.u8() }, { priority: 5 });
    const world = createWorld({ types: [Unit, Flag] });
    const server = createReplicationServer({ world });
    server.addClient('c');
    const replica = createReplica({ types: [Unit, Flag] });
    const budget = 120;
    server.setBudget('c', budget);
    const random = createRandom(11);
    const units = Array.from({ length: 100 }, () =>
      world.spawn(Unit, { x: random.next() * 100, y: random.next() * 100, hp: 100 }),
    );
    const flags = Array.from({ length: 5 }, () => world.spawn(Flag, { owner: 0 }));
    const lastSeen = new Map<number, number>();
    replica.on('update', (e) => lastSeen.set(e.id, replica.lastSnapshotId));
    replica.on('spawn', (e) => lastSeen.set(e.id, replica.lastSnapshotId));
    let maxSize = 0;
    for (let tick = 1; tick <= 300; tick++) {
      for (const u of units) u.set('x', random.next() * 100);
      if (tick % 10 === 0) flags[tick % 5]!.set('owner', tick % 256);
      server.update();
      maxSize = Math.max(maxSize, deliver(server, replica));
      if (tick > 40)
        for (const u of units) expect(tick - lastSeen.get(u.id)!).toBeLessThanOrEqual(12);
    }
    expect(maxSize).toBeLessThanOrEqual(budget);
    expect(server.statsOf('c').deferred).toBeGreaterThan(0);
    // Removing the budget lets the replica catch up completely.
    server.setBudget('c', undefined);
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('pass over an entity larger than the budget instead of starving every other', () => {
    const Unit = defineEntityType('unit', { x: t.u16() }, { maxInterval: 5 });
    const Banner = defineEntityType('banner', { text: t.string({ maxBytes: 200 }) });
    const world = createWorld({ types: [Unit, Banner] });
    const server = createReplicationServer({ world });
    server.addClient('c');
    const budget = 40;
    server.setBudget('c', budget);
    const replica = createReplica({ types: [Unit, Banner] });
    // First in id order, and the longest waiting once every entity is overdue.
    world.spawn(Banner, { text: 'x'.repeat(100) });
    const units = Array.from({ length: 4 }, (_, i) => world.spawn(Unit, { x: i }));
    const lastSeen = new Map<number, number>();
    replica.on('update', (e) => lastSeen.set(e.id, replica.lastSnapshotId));
    replica.on('spawn', (e) => lastSeen.set(e.id, replica.lastSnapshotId));
    for (let tick = 1; tick <= 100; tick++) {
      for (const u of units) u.set('x', tick * 10 + u.id);
      server.update();
      expect(deliver(server, replica)).toBeLessThanOrEqual(budget);
      for (const u of units) expect(tick - (lastSeen.get(u.id) ?? 0)).toBeLessThanOrEqual(5);
    }
    expect(server.statsOf('c').deferred).toBeGreaterThan(0);
  });

  it('update low-rate types every updateInterval snapshots', () => {
    const Slow = defineEntityType('slow', { v: t.u16() }, { updateInterval: 4 });
    const world = createWorld({ types: [Slow] });
    const server = createReplicationServer({ world });
    server.addClient('c');
    const replica = createReplica({ types: [Slow] });
    const e = world.spawn(Slow, { v: 0 });
    let updates = 0;
    replica.on('update', () => updates++);
    for (let i = 1; i <= 20; i++) {
      e.set('v', i);
      deliver(server, replica);
    }
    // Spawned in snapshot 1, then updated in snapshots 5, 9, 13 and 17.
    expect(updates).toBe(4);
  });
});

describe('dead reckoning', () => {
  it('skips updates the client can extrapolate within the threshold', () => {
    const Ball = defineEntityType(
      'ball',
      { x: t.f32(), vx: t.f32() },
      {
        deadReckoning: {
          extrapolate: (v, ticks) => ({ x: v.x + v.vx * ticks, vx: v.vx }),
          error: (a, p) => Math.abs(a.x - p.x) + Math.abs(a.vx - p.vx),
          threshold: 0.5,
        },
      },
    );
    const world = createWorld({ types: [Ball] });
    const server = createReplicationServer({ world });
    server.addClient('c');
    const replica = createReplica({ types: [Ball] });
    const ball = world.spawn(Ball, { x: 0, vx: 1 });
    deliver(server, replica);
    let sent = 0;
    for (let tick = 1; tick <= 20; tick++) {
      // Constant speed with a small wobble: extrapolation stays within 0.5.
      ball.set('x', tick + (tick % 2) * 0.25);
      server.update();
      if (deliver(server, replica) > 6) sent++;
      const predicted = replica.extrapolate(replica.get(ball.id)!, server.tick);
      expect(Math.abs((predicted as { x: number }).x - ball.get('x'))).toBeLessThanOrEqual(0.5);
    }
    expect(sent).toBe(0);
    ball.set('vx', -1); // a turn: must be sent
    server.update();
    expect(deliver(server, replica)).toBeGreaterThan(6);
  });
});

describe('checksums', () => {
  it('detect a corrupted replica and let a full snapshot repair it', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, checksums: true });
    server.addClient('c');
    const replica = createReplica({ types, diagnosis: desyncDiagnosis });
    const players = Array.from({ length: 5 }, (_, i) =>
      world.spawn(Player, { x: i, y: i, angle: 0, hp: 1 }),
    );
    const mismatches: number[] = [];
    replica.on('mismatch', (id) => mismatches.push(id));
    for (let i = 0; i < 5; i++) {
      players[i]!.set('hp', 10 + i);
      deliver(server, replica);
    }
    expect(mismatches).toEqual([]);
    // Corrupt the replica behind its back.
    (replica.get(players[3]!.id) as unknown as { fieldValues: unknown[] }).fieldValues[3] = 99;
    players[0]!.set('hp', 50);
    deliver(server, replica);
    expect(mismatches).toEqual([replica.lastSnapshotId]);
    expect(replica.mismatchedSnapshot).toBe(replica.lastSnapshotId);
    // The client asks for a resync; the server answers with what it expected.
    const desyncs: unknown[] = [];
    replica.on('desync', (d) => desyncs.push(d));
    const expected = server.resync('c', replica.mismatchedSnapshot)!;
    const desync = replica.diagnose(expected);
    expect(desync).toEqual({
      snapshotId: mismatches[0],
      entityId: players[3]!.id,
      path: `entity ${players[3]!.id} (player).hp`,
      field: 'hp',
      expected: 13,
      actual: 99,
    });
    expect(desyncs).toEqual([desync]);
    expect(replica.mismatchedSnapshot).toBe(0);
    expect(replica.diagnose(expected)).toBeUndefined();
    expect(server.resync('c', 999)).toBeUndefined();
    expect(codeOf(() => replica.diagnose(new Uint8Array([1])))).toBe(ErrorCode.DECODE_FAILED);
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('name an entity of another generation, and a field the replica lacks', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, checksums: true });
    server.addClient('c');
    const replica = createReplica({ types, diagnosis: desyncDiagnosis });
    const a = world.spawn(Player, { x: 1, y: 1, angle: 0, hp: 1 });
    const b = world.spawn(Player, { x: 2, y: 2, angle: 0, hp: 2 });
    deliver(server, replica);
    const corrupt = (change: () => void) => {
      change();
      a.set('x', a.get('x') + 1);
      deliver(server, replica);
      return replica.diagnose(server.resync('c', replica.mismatchedSnapshot)!);
    };
    const record = (id: number) =>
      replica.get(id) as unknown as { generation: number; mask: number };
    const generation = record(b.id).generation;
    expect(corrupt(() => (record(b.id).generation = generation + 1))).toMatchObject({
      entityId: b.id,
      path: `entity ${b.id}`,
      expected: `player#${generation}`,
      actual: `player#${generation + 1}`,
    });
    deliver(server, replica); // the resync repairs it
    const hidden = corrupt(() => (record(b.id).mask &= ~(1 << 3)));
    expect(hidden).toMatchObject({ path: `entity ${b.id} (player).hp`, expected: 2 });
    expect(hidden).toHaveProperty('actual', undefined);
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('name an entity only one side holds, in id order (the diagnosis plug-in on its own)', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    server.addClient('c');
    const replica = createReplica({ types });
    const a = world.spawn(Player, { x: 1, y: 1, angle: 0, hp: 1 });
    const b = world.spawn(Player, { x: 2, y: 2, angle: 0, hp: 2 });
    deliver(server, replica);
    const held = desyncDiagnosis.capture(replica.entities());
    const entry = (id: number) => {
      const values = Object.values(replica.get(id)!.values());
      return { id, generation: replica.get(id)!.generation, typeIndex: 0, mask: 0b1111, values };
    };
    const same = [entry(a.id), entry(b.id)];
    expect(desyncDiagnosis.compare(held, same, types, 7)).toBeUndefined();
    expect(desyncDiagnosis.compare(held, [entry(b.id)], types, 7)).toEqual({
      snapshotId: 7,
      entityId: a.id,
      path: `entity ${a.id}`,
      expected: 'absent',
      actual: 'present',
    });
    const extra = { ...entry(b.id), id: b.id + 5 };
    expect(desyncDiagnosis.compare(held, [...same, extra], types, 7)).toMatchObject({
      entityId: b.id + 5,
      expected: 'present',
      actual: 'absent',
    });
    // Ids compare as numbers, not strings: 9 comes before 10.
    const tens = [9, 10].map((id) => ({ ...entry(b.id), id }));
    expect(desyncDiagnosis.compare(held, [...same, ...tens].reverse(), types, 7)).toMatchObject({
      entityId: 9,
    });
    // The same id and generation as another type.
    expect(
      desyncDiagnosis.compare(held, [entry(a.id), { ...entry(b.id), typeIndex: 1 }], types, 7),
    ).toEqual({
      snapshotId: 7,
      entityId: b.id,
      path: `entity ${b.id}`,
      expected: `tag#${entry(b.id).generation}`,
      actual: `player#${entry(b.id).generation}`,
    });
  });

  it('keep nothing without the diagnosis option: diagnose finds nothing, the resync repairs', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, checksums: true });
    server.addClient('c');
    const replica = createReplica({ types });
    const player = world.spawn(Player, { x: 1, y: 1, angle: 0, hp: 1 });
    deliver(server, replica);
    const desyncs: unknown[] = [];
    replica.on('desync', (d) => desyncs.push(d));
    (replica.get(player.id) as unknown as { fieldValues: unknown[] }).fieldValues[3] = 99;
    player.set('x', 2);
    deliver(server, replica);
    const mismatched = replica.mismatchedSnapshot;
    expect(mismatched).toBe(replica.lastSnapshotId);
    expect(replica.diagnose(server.resync('c', mismatched)!)).toBeUndefined();
    expect(desyncs).toEqual([]);
    expect(replica.mismatchedSnapshot).toBe(0);
    expect(codeOf(() => replica.diagnose(new Uint8Array([1])))).toBe(ErrorCode.DECODE_FAILED);
    deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });
});

describe('resync', () => {
  it('repairs every entity under a byte budget too', () => {
    const Tag = defineEntityType('tag', { v: t.u16() });
    const world = createWorld({ types: [Tag] });
    const server = createReplicationServer({ world, checksums: true });
    server.addClient('c');
    const replica = createReplica({ types: [Tag] });
    const tags = Array.from({ length: 50 }, (_, i) => world.spawn(Tag, { v: i }));
    deliver(server, replica);
    server.setBudget('c', 40);
    for (const tag of tags)
      (replica.get(tag.id) as unknown as { fieldValues: unknown[] }).fieldValues[0] = 9999;
    server.resync('c');
    for (let i = 0; i < 20; i++) deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });
});

describe('shared encodings', () => {
  /** A world of players moving every tick, and a server with three clients (a, b, lagging). */
  const room = (shareEncodings: boolean) => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, shareEncodings });
    const replicas = new Map<ClientId, Replica>();
    for (const id of ['a', 'b', 'lagging']) {
      server.addClient(id);
      replicas.set(id, createReplica({ types }));
    }
    const players = Array.from({ length: 6 }, (_, i) =>
      world.spawn(Player, { x: i, y: i, angle: 0, hp: 100 }),
    );
    world.spawn(Tag, { name: 'flag', flag: false, score: 0 });
    return { world, server, replicas, players };
  };

  const move = (
    world: ReturnType<typeof createWorld>,
    players: Entity<typeof Player.shape>[],
    tick: number,
  ) => {
    for (const [i, p] of players.entries()) {
      p.set('x', tick * 1.5 + i);
      p.set('y', (tick * 3 + i) % 1000);
      p.set('angle', tick / 10);
    }
    if (tick === 7) world.despawn(players.pop()!);
    if (tick === 9) players.push(world.spawn(Player, { x: 1, y: 1, angle: 1, hp: 5 }));
  };

  it('encode a body once for clients with the same changes and baseline values', () => {
    const shared = room(true);
    const plain = room(false);
    for (let tick = 1; tick <= 20; tick++) {
      move(shared.world, shared.players, tick);
      move(plain.world, plain.players, tick);
      for (const r of [shared, plain]) r.server.update(tick);
      for (const id of ['a', 'b', 'lagging']) {
        const bytes = shared.server.snapshotFor(id);
        // Byte for byte what the encoder writes for that client on its own.
        expect(bytes).toEqual(plain.server.snapshotFor(id));
        const replica = shared.replicas.get(id)!;
        const applied = replica.apply(bytes);
        // The lagging client acknowledges one snapshot in four: its baselines differ.
        if (applied !== undefined && (id !== 'lagging' || tick % 4 === 0)) {
          const ack = replica.ack();
          shared.server.receiveAck(id, ack);
          plain.server.receiveAck(id, ack);
        }
        expect(replicaState(replica)).toEqual(expectedState(shared.world));
      }
    }
    // b reuses a's body on every tick (the first one too: the full state); the lagging
    // client only right after its acks (ticks 1, 5, 9, 13, 17), when its baseline is the
    // snapshot of the tick before like everyone's.
    expect(shared.server.statsOf('a').shared).toBe(0);
    expect(shared.server.statsOf('b').shared).toBe(20);
    expect(shared.server.statsOf('lagging').shared).toBe(5);
    for (const id of ['a', 'b', 'lagging']) expect(plain.server.statsOf(id).shared).toBe(0);

    // A client removed in the middle of a tick takes its sent records with it; the others'
    // snapshots (and the records they share) stay right.
    for (let tick = 21; tick <= 30; tick++) {
      move(shared.world, shared.players, tick);
      shared.server.update(tick);
      for (const id of ['a', 'b', 'lagging']) {
        if (tick === 25 && id === 'b') shared.server.removeClient('a');
        if (tick >= 25 && id === 'a') continue;
        const replica = shared.replicas.get(id)!;
        if (replica.apply(shared.server.snapshotFor(id)) !== undefined)
          shared.server.receiveAck(id, replica.ack());
        expect(replicaState(replica)).toEqual(expectedState(shared.world));
      }
    }
    expect(shared.server.statsOf('lagging').shared).toBeGreaterThan(5);
  });

  it('stay right when the coding parameters retune between two clients of a tick', () => {
    // 300 ticks: each field's statistics pass 1,024 differences many times, so parameters
    // change mid-tick (a shared body keeps the parameters it was encoded with).
    const { world, server, replicas, players } = room(true);
    for (let tick = 1; tick <= 300; tick++) {
      move(world, players, tick);
      server.update(tick);
      for (const id of ['a', 'b', 'lagging']) {
        const replica = replicas.get(id)!;
        if (replica.apply(server.snapshotFor(id)) !== undefined && (id !== 'lagging' || tick % 3))
          server.receiveAck(id, replica.ack());
        expect(replicaState(replica)).toEqual(expectedState(world));
      }
    }
    expect(server.statsOf('b').shared).toBe(300);
  });

  it('pause for a while after a tick in which no client shared a body', () => {
    const world = createWorld({ types });
    let split = true;
    // While split, each client sees only its own player: no two bodies are alike.
    const interest = createFilterInterest(
      (client, entity) => !split || (entity.id % 2 === 0) === (client === 'even'),
    );
    const server = createReplicationServer({ world, interest });
    const players = Array.from({ length: 4 }, (_, i) =>
      world.spawn(Player, { x: i, y: i, angle: 0, hp: 1 }),
    );
    const replicas = new Map<ClientId, Replica>();
    for (const id of ['even', 'odd']) {
      server.addClient(id);
      replicas.set(id, createReplica({ types }));
    }
    const run = (from: number, to: number) => {
      for (let tick = from; tick <= to; tick++) {
        for (const p of players) p.set('x', tick + p.id);
        server.update(tick);
        for (const id of ['even', 'odd']) {
          const replica = replicas.get(id)!;
          if (replica.apply(server.snapshotFor(id)) !== undefined)
            server.receiveAck(id, replica.ack());
        }
      }
    };
    run(1, 2);
    expect(server.statsOf('odd').shared).toBe(0);
    split = false; // now both see everything: their bodies are alike again
    run(3, 51); // tick 2 had no hit: paused until tick 52
    expect(server.statsOf('odd').shared).toBe(0);
    run(52, 60);
    expect(server.statsOf('odd').shared).toBeGreaterThan(0);
    for (const replica of replicas.values())
      expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('send every client what a private encoding would, with owners and hidden fields', () => {
    const Avatar = defineEntityType(
      'avatar',
      { x: t.u16(), secret: t.u8(), aim: t.u8() },
      { owned: ['aim'] },
    );
    const clients = ['me', 'other', 'also', 'spy'];
    const make = (shareEncodings: boolean) => {
      const world = createWorld({ types: [Avatar] });
      const server = createReplicationServer({
        world,
        shareEncodings,
        fieldFilter: (client) => (client === 'spy' ? undefined : 0b101),
      });
      for (const c of clients) server.addClient(c);
      const avatars = [
        world.spawn(Avatar, { x: 1, secret: 2, aim: 3 }, { owner: 'me' }),
        world.spawn(Avatar, { x: 5, secret: 6, aim: 7 }),
      ];
      const replicas = new Map(
        clients.map((c) => [c, createReplica({ types: [Avatar], ownership: ownedFields })]),
      );
      return { world, server, avatars, replicas };
    };
    const shared = make(true);
    const plain = make(false);
    for (let tick = 1; tick <= 15; tick++) {
      for (const r of [shared, plain]) {
        for (const [i, avatar] of r.avatars.entries()) {
          avatar.set('x', tick * 3 + i);
          if (tick % 4 === 0) avatar.set('secret', tick);
        }
        if (tick === 6) r.avatars[1]!.setOwner('other');
        r.server.update(tick);
      }
      for (const c of clients) {
        const bytes = shared.server.snapshotFor(c);
        expect(bytes).toEqual(plain.server.snapshotFor(c));
        const replica = shared.replicas.get(c)!;
        if (replica.apply(bytes) !== undefined) {
          const ack = replica.ack();
          shared.server.receiveAck(c, ack);
          plain.server.receiveAck(c, ack);
        }
      }
    }
    // 'other' and 'also' see the same fields and own nothing until tick 6: they share.
    expect(shared.server.statsOf('also').shared).toBeGreaterThan(0);
    expect(shared.replicas.get('spy')!.get(shared.avatars[0]!.id)!.get('secret')).toBe(12);
  });

  it('match private encodings byte for byte under random loss, late acks, respawns, resyncs and departures', () => {
    // Few enough ticks that no coding parameter retunes (under 1,024 differences per field), so
    // a shared snapshot must be exactly what a server that never shares writes for that client.
    let followed = 0;
    for (let seed = 1; seed <= 80; seed++) {
      const random = createRandom(seed);
      const deltaFields = seed % 2 === 0;
      let ids = ['a', 'b', 'c', 'd'];
      let nextId = 0;
      const make = (shareEncodings: boolean) => {
        const world = createWorld({ types });
        const server = createReplicationServer({
          world,
          shareEncodings,
          deltaFields,
          historySize: 8,
        });
        for (const id of ids) server.addClient(id);
        const players = Array.from({ length: 6 }, (_, i) =>
          world.spawn(Player, { x: i, y: i, angle: 0, hp: 100 }),
        );
        return { world, server, players };
      };
      const shared = make(true);
      const plain = make(false);
      const replicas = new Map(ids.map((id) => [id, createReplica({ types })]));
      const late: [ClientId, Uint8Array][] = [];
      // One client at a time stops acknowledging for a while (past the history: unknown fates).
      let silent: ClientId | undefined;
      const tick = (t: number, deliverAll: boolean) => {
        const moves = Array.from({ length: 3 }, () => random.int(6));
        const respawn = !deliverAll && random.chance(0.1) ? random.int(6) : -1;
        const owner = !deliverAll && random.chance(0.05) ? ids[random.int(ids.length)] : undefined;
        for (const r of [shared, plain]) {
          for (const i of moves) r.players[i]!.set('x', (t * 7 + i) % 1000);
          if (respawn >= 0) {
            r.world.despawn(r.players[respawn]!);
            r.players[respawn] = r.world.spawn(
              Player,
              { x: t, y: t, angle: 1, hp: 1 },
              owner === undefined ? {} : { owner },
            );
          }
          r.server.update(t);
        }
        if (!deliverAll && silent === undefined && random.chance(0.05))
          silent = ids[random.int(ids.length)];
        else if (silent !== undefined && (deliverAll || random.chance(0.1))) silent = undefined;
        for (const id of [...ids]) {
          if (!deliverAll && random.chance(0.03)) {
            shared.server.resync(id);
            plain.server.resync(id);
          }
          const bytes = shared.server.snapshotFor(id);
          expect(bytes).toEqual(plain.server.snapshotFor(id));
          // A departure in the middle of the tick, and a newcomer in its place.
          if (!deliverAll && random.chance(0.02)) {
            for (const r of [shared, plain]) r.server.removeClient(id);
            replicas.delete(id);
            const newcomer = `n${nextId++}`;
            ids = ids.map((other) => (other === id ? newcomer : other));
            replicas.set(newcomer, createReplica({ types }));
            for (const r of [shared, plain]) r.server.addClient(newcomer);
            continue;
          }
          const fate = deliverAll ? 1 : random.next();
          if (fate < 0.1 || id === silent) continue; // lost
          const replica = replicas.get(id)!;
          if (replica.apply(bytes) === undefined) continue;
          const ack = replica.ack();
          if (fate < 0.2) late.push([id, ack]);
          else for (const r of [shared, plain]) r.server.receiveAck(id, ack);
        }
        // Some late acks arrive now, in any order.
        while (late.length > 0 && (deliverAll || random.chance(0.5))) {
          const [id, ack] = late.splice(random.int(late.length), 1)[0]!;
          if (!ids.includes(id as string)) continue;
          for (const r of [shared, plain]) r.server.receiveAck(id, ack);
        }
      };
      for (let t = 1; t <= 40; t++) tick(t, false);
      for (let t = 41; t <= 46; t++) tick(t, true);
      for (const [id, replica] of replicas) {
        expect(replicaState(replica)).toEqual(expectedState(shared.world));
        followed += shared.server.statsOf(id).followed;
      }
    }
    // Clients that converge to the same state after losses take each other's snapshots.
    expect(followed).toBeGreaterThan(1500);
  });

  it.each([
    'budgets',
    'paced types',
    'shared encodings',
    'a second server reading the log every third tick',
  ] as const)('skip unchanged ids from the change log exactly as a scan would (%s)', (variant) => {
    let followed = 0;
    for (let seed = 1; seed <= 24; seed++) followed += compareWithScan(seed, variant);
    if (variant === 'shared encodings') expect(followed).toBeGreaterThan(60);
  });

  it('look only at logged and not yet clean ids, not at every id', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world });
    const replica = createReplica({ types });
    server.addClient('c');
    const players = Array.from({ length: 500 }, (_, i) =>
      world.spawn(Player, { x: i, y: 1, angle: 0, hp: 1 }),
    );
    deliver(server, replica);
    deliver(server, replica);
    // Count the reads of the per-id change versions.
    const versions = worldInternals(world).versions as unknown as { changed: number[] };
    let reads = 0;
    versions.changed = new Proxy(versions.changed, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    players[3]!.set('x', 9);
    players[400]!.set('hp', 2);
    server.update();
    deliver(server, replica);
    expect(reads).toBe(2);
    // The next snapshot looks at them once more (now acknowledged) and drops them.
    reads = 0;
    server.update();
    deliver(server, replica);
    expect(reads).toBe(2);
    reads = 0;
    server.update();
    deliver(server, replica);
    expect(reads).toBe(0);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('scan every id after a callback threw mid-collect, losing nothing', () => {
    const world = createWorld({ types });
    let failOn: number | undefined;
    const server = createReplicationServer({
      world,
      priority: (_client, entity) => {
        if (entity.id === failOn) throw new Error('priority failed');
        return 1;
      },
    });
    server.addClient('c');
    server.setBudget('c', 2000);
    const replica = createReplica({ types });
    const players = Array.from({ length: 6 }, (_, i) =>
      world.spawn(Player, { x: i, y: 1, angle: 0, hp: 1 }),
    );
    deliver(server, replica);
    deliver(server, replica);
    for (const player of players) player.set('hp', 100 + player.id);
    failOn = players[2]!.id;
    server.update();
    expect(() => server.snapshotFor('c')).toThrow(/priority failed/);
    failOn = undefined;
    for (let i = 0; i < 3; i++) deliver(server, replica);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('send a paced update it skipped, without another change', () => {
    const world = createWorld({ types: [Slow] });
    const server = createReplicationServer({ world });
    const replica = createReplica({ types: [Slow] });
    server.addClient('c');
    const slow = world.spawn(Slow, { v: 0, w: 0 });
    deliver(server, replica);
    deliver(server, replica);
    slow.set('v', 7); // within updateInterval of the spawn: skipped for now
    for (let i = 0; i < 4; i++) deliver(server, replica);
    expect(replica.get(slow.id)!.get('v')).toBe(7);
  });

  it('scan every id for a client that fell behind the change log', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, shareEncodings: false });
    const players = Array.from({ length: 400 }, (_, i) =>
      world.spawn(Player, { x: i, y: 1, angle: 0, hp: 1 }),
    );
    const fast = createReplica({ types });
    const slow = createReplica({ types });
    server.addClient('fast');
    server.addClient('slow');
    // Twice: the second snapshot finds everything clean (nothing left to look at next time).
    for (let i = 0; i < 2; i++) {
      deliver(server, fast, 'fast');
      deliver(server, slow, 'slow');
    }
    const versions = worldInternals(world).versions;
    // 'fast' reads the log every tick, so a changed id is logged again each tick; 'slow' is not
    // sent anything until the log has dropped every entry of the first 200 ids' changes.
    for (let tick = 0; tick < 340; tick++) {
      const changed = tick < 20 ? players.slice(0, 200) : players.slice(200);
      for (const player of changed) player.set('x', tick * 2 + player.id);
      server.update();
      deliver(server, fast, 'fast');
    }
    expect(versions.logStart).toBeGreaterThan(20 * 200);
    server.update();
    deliver(server, slow, 'slow');
    expect(replicaState(slow)).toEqual(expectedState(world));
    expect(replicaState(fast)).toEqual(expectedState(world));
    // And back to reading the log.
    players[7]!.set('hp', 9);
    server.update();
    deliver(server, slow, 'slow');
    expect(slow.get(players[7]!.id)!.get('hp')).toBe(9);
  });

  it('let clients in the same state skip collecting, and take a resynced client back in', () => {
    const { world, server, replicas, players } = room(true);
    const followedOf = (id: string) => server.statsOf(id).followed;
    const run = (from: number, to: number) => {
      for (let tick = from; tick <= to; tick++) {
        move(world, players, tick);
        server.update(tick);
        for (const id of ['a', 'b', 'lagging']) {
          const replica = replicas.get(id)!;
          if (replica.apply(server.snapshotFor(id)) !== undefined)
            server.receiveAck(id, replica.ack());
          expect(replicaState(replica)).toEqual(expectedState(world));
        }
      }
    };
    run(1, 5);
    // a encodes; b and lagging are clean at the same version and follow it every tick.
    expect([followedOf('a'), followedOf('b'), followedOf('lagging')]).toEqual([0, 5, 5]);
    server.resync('b');
    run(6, 6); // b holds nothing it can vouch for: encoded for it alone (whole)
    expect(followedOf('b')).toBe(5);
    run(7, 10); // its whole snapshot was acknowledged: clean again, following again
    expect(followedOf('b')).toBe(9);
  });

  it('are not used with checksums or a byte budget', () => {
    const world = createWorld({ types });
    const server = createReplicationServer({ world, checksums: true });
    const budgeted = createReplicationServer({ world });
    for (const s of [server, budgeted]) {
      s.addClient('a');
      s.addClient('b');
    }
    budgeted.setBudget('a', 200);
    budgeted.setBudget('b', 200);
    world.spawn(Player, { x: 1, y: 2, angle: 0, hp: 1 });
    for (const s of [server, budgeted]) {
      s.snapshotFor('a');
      s.snapshotFor('b');
      expect(s.statsOf('b').shared).toBe(0);
    }
  });
});

describe('bandwidth profile', () => {
  it('counts bytes per type and field', () => {
    const world = createWorld({ types });
    const metrics = createMemoryMetrics();
    const server = createReplicationServer({ world, profile: true, metrics });
    server.addClient('c');
    const replica = createReplica({ types });
    const p = world.spawn(Player, { x: 1, y: 2, angle: 0, hp: 1 });
    world.spawn(Tag, { name: 'abc', flag: true, score: 3 });
    deliver(server, replica);
    p.set('hp', 2);
    deliver(server, replica);
    const profile = server.profile();
    expect(profile.player!.fields).toMatchObject({ x: 4, hp: 2 });
    expect(profile.tag!.fields.name).toBeGreaterThan(3);
    expect(profile.player!.bytes).toBeGreaterThan(
      Object.values(profile.player!.fields).reduce((a, b) => a + b, 0),
    );
    // Published to the metrics once per tick, as a counter (bytes/s is its rate).
    server.update();
    const name = 'tickwire_replication_field_bytes_total';
    expect(metrics.value(name, { type: 'player', field: 'hp' })).toBe(2);
    expect(metrics.value(name, { type: 'player', field: 'x' })).toBe(4);
    p.set('x', 3);
    deliver(server, replica);
    server.update();
    expect(metrics.value(name, { type: 'player', field: 'x' })).toBeGreaterThan(4);
  });
});

interface InFlight {
  bytes: Uint8Array;
}

/**
 * Random spawn/update/despawn/visibility ticks for two clients over lossy, reordering,
 * duplicating links with lost and late acks (all from one seed). After every applied snapshot
 * the replica must equal the part of the world the client saw at that snapshot.
 */
function simulate(seed: number, ticks: number, lossRate: number, historySize: number): number {
  const random = createRandom(seed);
  const pick = (n: number) => Math.floor(random.next() * n);
  const world = createWorld({ types });
  const hidden = new Map<ClientId, Set<number>>([
    ['a', new Set()],
    ['b', new Set()],
  ]);
  const server = createReplicationServer({
    world,
    historySize,
    interest: createFilterInterest((client, entity) => !hidden.get(client)!.has(entity.id)),
  });
  const clients = ['a', 'b'].map((name, index) => {
    server.addClient(name);
    return {
      name,
      replica: createReplica({ types }),
      loss: index === 0 ? lossRate : lossRate / 2,
      delayed: [] as InFlight[],
      acks: [] as Uint8Array[],
      expected: new Map<number, Record<number, unknown>>(),
    };
  });
  const live: Entity[] = [];
  let checks = 0;
  const randomPlayer = () => ({
    x: (random.next() - 0.5) * 1e6,
    y: random.next() * 1024,
    angle: (random.next() - 0.5) * 20,
    hp: pick(256),
  });
  const randomTag = () => ({
    name: 'abcdefgh'.slice(0, pick(9)),
    flag: random.next() < 0.5,
    score: pick(1e9),
    bonus: random.next() < 0.5 ? undefined : pick(65536),
  });
  for (let tick = 0; tick < ticks; tick++) {
    const operations = pick(8);
    for (let op = 0; op < operations; op++) {
      const roll = random.next();
      if (roll < 0.2 || live.length === 0) {
        live.push(
          random.next() < 0.7 ? world.spawn(Player, randomPlayer()) : world.spawn(Tag, randomTag()),
        );
      } else if (roll < 0.32) {
        const index = pick(live.length);
        world.despawn(live[index]!);
        live.splice(index, 1);
      } else if (roll < 0.45) {
        const set = hidden.get(random.next() < 0.5 ? 'a' : 'b')!;
        const id = live[pick(live.length)]!.id;
        if (set.has(id)) set.delete(id);
        else set.add(id);
      } else {
        const entity = live[pick(live.length)]!;
        const values = (
          entity.type === (Player as unknown) ? randomPlayer() : randomTag()
        ) as Record<string, unknown>;
        // Small moves too, so differences from the baseline are exercised.
        if (entity.type === (Player as unknown) && random.next() < 0.5) {
          values.x = (entity.get('x' as never) as number) + random.next() - 0.5;
          values.angle = (entity.get('angle' as never) as number) + random.next() * 0.2;
        }
        const field = entity.type.fieldNames[pick(entity.type.fieldNames.length)]!;
        entity.set(field, values[field] as never);
      }
    }
    server.update();
    for (const client of clients) {
      const bytes = server.snapshotFor(client.name);
      const seen = hidden.get(client.name)!;
      const state = expectedState(world);
      for (const id of Object.keys(state)) if (seen.has(Number(id))) delete state[Number(id)];
      const inFlight = { bytes };
      const deliveries: InFlight[] = [];
      const roll = random.next();
      if (roll < client.loss) {
        // lost
      } else if (roll < client.loss + 0.1) {
        client.delayed.push(inFlight);
      } else {
        deliveries.push(inFlight);
      }
      if (client.delayed.length > 0 && random.next() < 0.3)
        deliveries.push(client.delayed.shift()!);
      if (random.next() < 0.05) deliveries.push(inFlight); // duplicate
      const id = server.statsOf(client.name).snapshots;
      client.expected.set(id, state);
      for (const delivery of deliveries) {
        const before = client.replica.lastSnapshotId;
        const applied = client.replica.apply(delivery.bytes);
        if (applied === undefined) {
          expect(client.replica.lastSnapshotId).toBe(before);
          continue;
        }
        expect(replicaState(client.replica)).toEqual(client.expected.get(applied));
        checks++;
        if (random.next() >= client.loss) client.acks.push(client.replica.ack());
      }
      // Acks travel too: some arrive at once, some a few ticks late, out of order.
      client.acks = client.acks.filter((ack) => {
        if (random.next() < 0.5) return true;
        server.receiveAck(client.name, ack);
        return false;
      });
      for (const old of client.expected.keys())
        if (old < id - historySize - 2) client.expected.delete(old);
    }
  }
  return checks;
}

const Slow = defineEntityType('slow', { v: t.u16(), w: t.u8() }, { updateInterval: 3 });

type LogVariant =
  | 'budgets'
  | 'paced types'
  | 'shared encodings'
  | 'a second server reading the log every third tick';

/**
 * A server without interest looks only at the ids not clean last time and the ones the world
 * logged since; one with an interest that sees everything scans every visible id. Both must
 * write the same bytes under spawns, despawns, id reuse, every field type, owner changes,
 * resyncs, loss, late and duplicate acks and departures (and the variant's twist). Returns the
 * snapshots the logged server's clients followed.
 */
function compareWithScan(seed: number, variant: LogVariant): number {
  const random = createRandom(seed);
  const budget = variant === 'budgets' && seed % 2 === 0 ? 60 + random.int(200) : undefined;
  const allTypes = variant === 'paced types' ? [Player, Tag, Slow] : types;
  let ids = ['a', 'b', 'c'];
  let nextId = 0;
  const make = (scan: boolean) => {
    const world = createWorld({ types: allTypes });
    const server = createReplicationServer({
      world,
      shareEncodings: variant === 'shared encodings' && !scan,
      historySize: 6,
      ...(scan ? { interest: createFilterInterest(() => true) } : {}),
    });
    for (const id of ids) {
      server.addClient(id);
      server.setBudget(id, budget);
    }
    return { world, server, live: [] as Entity[] };
  };
  const logged = make(false);
  const scanned = make(true);
  const replicas = new Map(ids.map((id) => [id, createReplica({ types: allTypes })]));
  // The twist of the last variant: another server of the logged world, behind its log.
  const second = createReplicationServer({ world: logged.world, shareEncodings: false });
  const secondReplica = createReplica({ types: allTypes });
  second.addClient('z');
  const late: [ClientId, Uint8Array][] = [];
  const tick = (t: number, quiet: boolean) => {
    // The same random operations on both worlds.
    const operations = quiet ? 0 : random.int(6);
    for (let op = 0; op < operations; op++) {
      const roll = random.next();
      const count = logged.live.length;
      const index = count === 0 ? -1 : random.int(count);
      const values = {
        x: random.range(-1e4, 1e4),
        y: random.range(0, 1024),
        angle: random.range(-7, 7),
        hp: random.int(256),
        name: 'abcdefgh'.slice(0, random.int(9)),
        flag: random.chance(0.5),
        score: random.int(1e6),
        v: random.int(65536),
        w: random.int(256),
      };
      const owner = random.chance(0.2) ? ids[random.int(ids.length)] : undefined;
      const written = Object.keys(values).filter(() => random.chance(0.5));
      const kind: EntityType = allTypes[random.int(allTypes.length)]!;
      for (const side of [logged, scanned]) {
        if (roll < 0.25 || index < 0) {
          const fields = Object.fromEntries(
            kind.fieldNames.map((name) => [name, values[name as keyof typeof values]]),
          );
          side.live.push(
            side.world.spawn(kind, fields as never, owner === undefined ? {} : { owner }),
          );
        } else if (roll < 0.4) {
          side.world.despawn(side.live[index]!);
          side.live.splice(index, 1);
        } else if (roll < 0.45) {
          side.live[index]!.setOwner(owner);
        } else {
          const entity = side.live[index]!;
          for (const field of written)
            if (entity.type.fieldNames.includes(field))
              entity.set(field as never, values[field as keyof typeof values] as never);
        }
      }
    }
    for (const side of [logged, scanned]) side.server.update(t);
    for (const id of [...ids]) {
      if (!quiet && random.chance(0.03))
        for (const side of [logged, scanned]) side.server.resync(id);
      const bytes = logged.server.snapshotFor(id);
      expect(bytes).toEqual(scanned.server.snapshotFor(id));
      expect(logged.server.statsOf(id).visible).toBe(scanned.server.statsOf(id).visible);
      if (!quiet && random.chance(0.02)) {
        for (const side of [logged, scanned]) side.server.removeClient(id);
        replicas.delete(id);
        const newcomer = `n${nextId++}`;
        ids = ids.map((other) => (other === id ? newcomer : other));
        replicas.set(newcomer, createReplica({ types: allTypes }));
        for (const side of [logged, scanned]) {
          side.server.addClient(newcomer);
          side.server.setBudget(newcomer, budget);
        }
        continue;
      }
      const fate = quiet ? 1 : random.next();
      if (fate < 0.15) continue; // lost
      const replica = replicas.get(id)!;
      if (replica.apply(bytes) === undefined) continue;
      const ack = replica.ack();
      if (fate < 0.3) late.push([id, ack]);
      else for (const side of [logged, scanned]) side.server.receiveAck(id, ack);
      if (fate > 0.95) for (const side of [logged, scanned]) side.server.receiveAck(id, ack);
    }
    while (late.length > 0 && (quiet || random.chance(0.5))) {
      const [id, ack] = late.splice(random.int(late.length), 1)[0]!;
      if (!ids.includes(id as string)) continue;
      for (const side of [logged, scanned]) side.server.receiveAck(id, ack);
    }
    if (variant === 'a second server reading the log every third tick' && t % 3 === 0) {
      second.update(t);
      if (secondReplica.apply(second.snapshotFor('z')) !== undefined)
        second.receiveAck('z', secondReplica.ack());
      expect(replicaState(secondReplica)).toEqual(expectedState(logged.world));
    }
  };
  for (let t = 1; t <= 50; t++) tick(t, false);
  // Quiet ticks with every snapshot delivered: everyone converges (a budget may need many).
  for (let t = 51; t <= 120; t++) tick(t, true);
  for (const replica of replicas.values())
    expect(replicaState(replica)).toEqual(expectedState(logged.world));
  let followed = 0;
  for (const id of ids) followed += logged.server.statsOf(id).followed;
  return followed;
}

describe('replication under loss (property)', () => {
  it('keeps every replica equal to what its client sees after each applied snapshot', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(0, 0.2, 0.5),
        fc.constantFrom(4, 64),
        (seed, loss, historySize) => {
          expect(simulate(seed, 60, loss, historySize)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });
});

const Mover = defineEntityType('mover', {
  x: t.quantized(0, 100, 1 / 16),
  y: t.quantized(0, 100, 1 / 16),
  hp: t.u8(),
  tag: t.string({ maxBytes: 6 }),
});
const Crate = defineEntityType('crate', { v: t.varuint(), f: t.f32() });

interface VisibilityRun {
  checksums: boolean;
  hysteresis: number;
  historySize: number;
  shareEncodings: boolean;
  budget: boolean;
}

/**
 * Three clients of a grid with per-client hidden fields over lossy, reordering, duplicating
 * links: entities move across cell borders, views move, fields are hidden and shown, ids are
 * reused, clients are resynced mid-flight and replaced. Without a budget, after every applied
 * snapshot the replica must equal what its client saw then (and no checksum mismatches); with
 * one, it must converge once the world is quiet.
 */
/** The id in a snapshot's header (after the 2-bit format). */
function snapshotIdOf(bytes: Uint8Array): number {
  const reader = new BinaryReader().reset(bytes);
  reader.readBits(2);
  return reader.readVarUint();
}

function simulateVisibility(seed: number, run: VisibilityRun): number {
  const random = createRandom(seed);
  const visibilityTypes = [Mover, Crate] as EntityType[];
  const world = createWorld({ types: visibilityTypes });
  const views = new Map<ClientId, { x: number; y: number; radius: number }>();
  const grid = createGridInterest({
    cellSize: 10,
    hysteresis: run.hysteresis,
    position: (entity, out) => {
      if (entity.type !== (Mover as unknown)) return false;
      out.x = entity.get('x' as never) as number;
      out.y = entity.get('y' as never) as number;
      return true;
    },
    view: (client) => views.get(client),
  });
  const seen = new Map<ClientId, number[]>();
  const interest: Interest = {
    prepare: (w) => grid.prepare(w),
    visible(client, out) {
      const start = out.length;
      grid.visible(client, out);
      seen.set(client, out.slice(start));
    },
  };
  const hidden = new Map<string, number>();
  const server = createReplicationServer({
    world,
    interest,
    checksums: run.checksums,
    historySize: run.historySize,
    shareEncodings: run.shareEncodings,
    fieldFilter: (client, entity) => {
      const mask = hidden.get(`${client}:${entity.id}`);
      return mask === undefined ? undefined : ~mask >>> 0;
    },
  });
  interface Peer {
    name: string;
    replica: Replica;
    expected: Map<number, Record<number, unknown>>;
    delayed: Uint8Array[];
    acks: Uint8Array[];
    mismatches: number;
  }
  let count = 0;
  const join = (): Peer => {
    const name = `c${count++}`;
    server.addClient(name);
    if (run.budget) server.setBudget(name, 30 + random.int(200));
    views.set(name, {
      x: random.range(0, 100),
      y: random.range(0, 100),
      radius: random.range(15, 35),
    });
    const peer: Peer = {
      name,
      replica: createReplica({ types: visibilityTypes }),
      expected: new Map(),
      delayed: [],
      acks: [],
      mismatches: 0,
    };
    peer.replica.on('mismatch', () => peer.mismatches++);
    return peer;
  };
  let peers = [join(), join(), join()];
  const live: Entity[] = [];
  let checks = 0;
  const valuesFor = (type: EntityType): Record<string, unknown> =>
    type === (Mover as unknown)
      ? {
          x: random.range(0, 100),
          y: random.range(0, 100),
          hp: random.int(256),
          tag: 'abcdef'.slice(0, random.int(7)),
        }
      : { v: random.int(1e6), f: random.range(-500, 500) };
  const lastTick = 200;
  for (let tick = 1; tick <= lastTick; tick++) {
    const quiet = tick > 60;
    const operations = quiet ? 0 : random.int(8);
    for (let op = 0; op < operations; op++) {
      const roll = random.next();
      if (roll < 0.15 || live.length === 0) {
        const type = (random.chance(0.7) ? Mover : Crate) as EntityType;
        live.push(world.spawn(type, valuesFor(type) as never));
      } else if (roll < 0.27) {
        const index = random.int(live.length);
        world.despawn(live[index]!);
        live.splice(index, 1);
      } else if (roll < 0.4) {
        const entity = live[random.int(live.length)]!;
        const key = `${peers[random.int(peers.length)]!.name}:${entity.id}`;
        if (random.chance(0.4)) hidden.delete(key);
        else hidden.set(key, random.int(1 << entity.type.fieldNames.length));
      } else if (roll < 0.5) {
        const name = peers[random.int(peers.length)]!.name;
        const view = views.get(name)!;
        views.set(name, { ...view, x: Math.max(0, Math.min(100, view.x + random.range(-5, 5))) });
      } else {
        const entity = live[random.int(live.length)]!;
        const field = entity.type.fieldNames[random.int(entity.type.fieldNames.length)]!;
        // Positions jitter, so entities cross cell borders and view edges back and forth.
        const value =
          field === 'x' || field === 'y'
            ? Math.max(
                0,
                Math.min(100, (entity.get(field as never) as number) + random.range(-1, 1)),
              )
            : valuesFor(entity.type)[field];
        entity.set(field as never, value as never);
      }
    }
    server.update();
    for (const peer of [...peers]) {
      if (!quiet && random.chance(0.02)) {
        server.removeClient(peer.name);
        peers = peers.map((other) => (other === peer ? join() : other));
        continue;
      }
      if (!quiet && random.chance(0.04)) server.resync(peer.name);
      const bytes = server.snapshotFor(peer.name);
      const state: Record<number, unknown> = {};
      for (const id of seen.get(peer.name)!) {
        const entity = world.get(id)!;
        const mask = hidden.get(`${peer.name}:${id}`) ?? 0;
        const values: Record<string, unknown> = {};
        entity.type.fieldNames.forEach((name, field) => {
          values[name] =
            (mask >>> field) & 1
              ? undefined
              : atPrecision(entity.type.fieldTypes[field]!, entity.get(name as never));
        });
        state[id] = { type: entity.type.name, generation: entity.generation, values };
      }
      peer.expected.set(snapshotIdOf(bytes), state);
      const deliveries: Uint8Array[] = [];
      const fate = random.next();
      if (quiet || fate >= 0.3) deliveries.push(bytes);
      else if (fate >= 0.2) peer.delayed.push(bytes);
      if (!quiet && peer.delayed.length > 0 && random.chance(0.3))
        deliveries.push(peer.delayed.shift()!);
      if (!quiet && random.chance(0.05)) deliveries.push(bytes);
      for (const delivery of deliveries) {
        const applied = peer.replica.apply(delivery);
        if (applied === undefined) continue;
        if (!run.budget || tick === lastTick) {
          expect(replicaState(peer.replica)).toEqual(peer.expected.get(applied));
          checks++;
        }
        if (quiet || random.chance(0.8)) peer.acks.push(peer.replica.ack());
      }
      // Acks are late, out of order and sometimes twice.
      peer.acks = peer.acks.filter((ack) => {
        if (!quiet && random.chance(0.4)) return true;
        server.receiveAck(peer.name, ack);
        if (random.chance(0.1)) server.receiveAck(peer.name, ack);
        return false;
      });
      if (!run.budget) expect(peer.mismatches).toBe(0);
    }
  }
  return checks;
}

describe('visibility under loss (property)', () => {
  it('keeps replicas equal to what their clients see as views, fields and ids change', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.record({
          checksums: fc.boolean(),
          hysteresis: fc.constantFrom(0, 3),
          historySize: fc.constantFrom(4, 32),
          shareEncodings: fc.boolean(),
          budget: fc.boolean(),
        }),
        (seed, run) => {
          expect(simulateVisibility(seed, run)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });
});
