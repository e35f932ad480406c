import { createRandom, ErrorCode, isTickwireError } from '@tickwire/core';
import { t } from '@tickwire/serialization';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineEntityType } from './entity-type.js';
import { createReplica, type ReplicaEntity } from './replica.js';
import { createReplicationServer } from './server.js';
import { expectedState, replicaState } from './test-support.js';
import { createWorld, type Entity } from './world.js';

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

const errorOf = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
};

describe('snapshots', () => {
  it('replicate spawns, field changes and despawns, and emit events', () => {
    const { world, server, replica } = setup();
    const events: string[] = [];
    replica.on('spawn', (e) => events.push(`spawn ${e.id}`));
    replica.on('update', (e, fields) => events.push(`update ${e.id} ${fields.join(',')}`));
    replica.on('despawn', (e) => events.push(`despawn ${e.id}`));
    const a = world.spawn(Player, { x: 1, y: 2, angle: 0, hp: 100 });
    const b = world.spawn(Tag, { name: 'b', flag: true, score: 7 });
    expect(server.ack('c', replica.apply(server.snapshotFor('c'))!)).toBe(true);
    expect(events).toEqual([`spawn ${a.id}`, `spawn ${b.id}`]);
    const copy = replica.get(a.id)!;
    expect(copy.is(Player) && copy.get('hp')).toBe(100);
    expect(copy.is(Tag)).toBe(false);

    events.length = 0;
    a.set('hp', 90);
    world.despawn(b);
    server.ack('c', replica.apply(server.snapshotFor('c'))!);
    expect(events).toEqual([`despawn ${b.id}`, `update ${a.id} hp`]);
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(replica.size).toBe(1);
    expect(replica.lastSnapshotId).toBe(2);
  });

  it('send only the changes since the acknowledged baseline', () => {
    const { world, server, replica } = setup();
    const players: Entity<typeof Player.shape>[] = [];
    for (let i = 0; i < 1000; i++)
      players.push(world.spawn(Player, { x: i, y: 1, angle: 0, hp: 1 }));
    const full = server.snapshotFor('c');
    server.ack('c', replica.apply(full)!);
    for (let i = 0; i < 10; i++) players[i * 97]!.set('x', -i);
    const delta = server.snapshotFor('c');
    expect(delta.length).toBeLessThan(full.length / 50);
    // 10 × (x 32 bits + mask 4 + id gap 8) + a 34-bit header = 60 bytes.
    expect(delta.length).toBeLessThanOrEqual(60);
    replica.apply(delta);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('survive a lost snapshot: the next one is a delta against the older acknowledged baseline', () => {
    const { world, server, replica } = setup();
    const a = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    server.ack('c', replica.apply(server.snapshotFor('c'))!);
    a.set('x', 5);
    const lost = server.snapshotFor('c');
    a.set('hp', 2);
    const next = server.snapshotFor('c');
    expect(next.length).toBeGreaterThan(lost.length);
    expect(replica.apply(next)).toBe(3);
    expect(replicaState(replica)).toEqual(expectedState(world));
    expect(replica.apply(lost)).toBeUndefined();
    expect(replica.apply(next)).toBeUndefined();
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
    expect(server.ack('c', 5)).toBe(true);
    expect(server.baselineOf('c')).toBe(5);
    expect(server.ack('c', 4)).toBe(false);
    expect(server.baselineOf('c')).toBe(5);
  });

  it('fall back to a full snapshot when the baseline is older than the history', () => {
    const { world, server, replica } = setup(2);
    world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    const first = server.snapshotFor('c');
    server.ack('c', replica.apply(first)!);
    server.snapshotFor('c');
    server.snapshotFor('c');
    const late = server.snapshotFor('c');
    expect(server.baselineOf('c')).toBe(0);
    expect(late.length).toBe(first.length);
    replica.apply(late);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('replace an entity whose id was reused while the client missed snapshots', () => {
    const { world, server, replica } = setup();
    const other = createReplicationServer({ world });
    other.addClient('x');
    const old = world.spawn(Player, { x: 0, y: 0, angle: 0, hp: 1 });
    replica.apply(server.snapshotFor('c')); // applied, but the ack is lost
    world.despawn(old);
    other.snapshotFor('x'); // a client without a baseline lets the id go
    const reborn = world.spawn(Tag, { name: 'n', flag: false, score: 1 });
    expect(reborn.id).toBe(old.id);
    const despawned: ReplicaEntity[] = [];
    replica.on('despawn', (e) => despawned.push(e));
    replica.apply(server.snapshotFor('c'));
    expect(despawned.map((e) => e.generation)).toEqual([old.generation]);
    expect(replicaState(replica)).toEqual(expectedState(world));
  });

  it('check their options and clients', () => {
    const world = createWorld({ types });
    expect(isTickwireError(errorOf(() => createReplicationServer({ world, historySize: 0 })))).toBe(
      true,
    );
    const server = createReplicationServer({ world, maxSnapshotBytes: 16 });
    server.addClient(1);
    expect((errorOf(() => server.addClient(1)) as { code: string }).code).toBe(ErrorCode.CONFLICT);
    expect((errorOf(() => server.snapshotFor(2)) as { code: string }).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    for (let i = 0; i < 10; i++) world.spawn(Player, { x: i, y: 0, angle: 0, hp: 1 });
    expect((errorOf(() => server.snapshotFor(1)) as { code: string }).code).toBe(
      ErrorCode.MESSAGE_TOO_LARGE,
    );
    server.removeClient(1);
    expect((errorOf(() => server.baselineOf(1)) as { code: string }).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect(isTickwireError(errorOf(() => createReplica({ types: [Player, Player] })))).toBe(true);
  });
});

interface InFlight {
  bytes: Uint8Array;
}

/**
 * Random spawn/update/despawn ticks for two clients over lossy, reordering links (all from
 * one seed); after every applied snapshot the replica must equal the world at that snapshot.
 */
function simulate(seed: number, ticks: number, lossRate: number, historySize: number): number {
  const random = createRandom(seed);
  const pick = (n: number) => Math.floor(random.next() * n);
  const world = createWorld({ types });
  const server = createReplicationServer({ world, historySize });
  const clients = ['a', 'b'].map((name, index) => {
    server.addClient(name);
    return {
      name,
      replica: createReplica({ types }),
      loss: index === 0 ? lossRate : lossRate / 2,
      delayed: [] as InFlight[],
      acks: [] as number[],
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
      if (roll < 0.25 || live.length === 0) {
        live.push(
          random.next() < 0.7 ? world.spawn(Player, randomPlayer()) : world.spawn(Tag, randomTag()),
        );
      } else if (roll < 0.4) {
        const index = pick(live.length);
        world.despawn(live[index]!);
        live.splice(index, 1);
      } else {
        const entity = live[pick(live.length)]!;
        const values = (
          entity.type === (Player as unknown) ? randomPlayer() : randomTag()
        ) as Record<string, unknown>;
        const field = entity.type.fieldNames[pick(entity.type.fieldNames.length)]!;
        entity.set(field, values[field] as never);
      }
    }
    for (const client of clients) {
      const bytes = server.snapshotFor(client.name);
      const state = expectedState(world);
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
      const id = tick + 1;
      client.expected.set(id, state);
      for (const delivery of deliveries) {
        const before = client.replica.lastSnapshotId;
        const acked = client.replica.apply(delivery.bytes);
        if (acked === undefined) {
          expect(client.replica.lastSnapshotId).toBe(before);
          continue;
        }
        expect(replicaState(client.replica)).toEqual(client.expected.get(acked));
        checks++;
        if (random.next() >= client.loss) client.acks.push(acked);
      }
      // Acks travel too: some arrive at once, some a few ticks late, out of order.
      client.acks = client.acks.filter((ack) => {
        if (random.next() < 0.5) return true;
        server.ack(client.name, ack);
        return false;
      });
      for (const old of client.expected.keys())
        if (old < id - historySize - 2) client.expected.delete(old);
    }
  }
  return checks;
}

describe('replication under loss (property)', () => {
  it('keeps every replica equal to the world after each applied snapshot', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(0, 0.2, 0.5),
        fc.constantFrom(4, 32),
        (seed, loss, historySize) => {
          expect(simulate(seed, 60, loss, historySize)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 100, seed: 6 },
    );
  });
});
