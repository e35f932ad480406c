import { createManualTime, createRandom, ErrorCode, type ManualTime, Opcode } from '@tickwire/core';
import { createMemoryClient, createMemoryNetwork } from '@tickwire/core/memory';
import {
  createReplicationServer,
  createWorld,
  defineEntityType,
  type ReplicationServer,
} from '@tickwire/replication';
import { t } from '@tickwire/serialization';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type Client, createClient } from './client.js';
import { type FakeServer, type FakeSession, flush, startFakeServer } from './fake-server.js';
import { interpolateEntities } from './state.js';

const Player = defineEntityType('player', { x: t.u16(), y: t.u16() });
const Bullet = defineEntityType('bullet', { x: t.u16() });

let time: ManualTime;
let server: FakeServer;
let client: Client;
let session: FakeSession;
let replication: ReplicationServer;
let world: ReturnType<typeof createWorld>;

function sendSnapshot(tick: number): void {
  replication.update(tick);
  const snapshot = replication.snapshotFor('c');
  const frame = new Uint8Array(2 + snapshot.byteLength);
  frame[0] = Opcode.Snapshot;
  frame.set(snapshot, 2);
  session.link.send(frame, 'unreliable');
}

beforeEach(async () => {
  const network = createMemoryNetwork();
  time = createManualTime(1000);
  server = await startFakeServer({ network, time, name: 'state', echo: false });
  client = createClient({
    endpoints: [{ url: server.url, transport: createMemoryClient({ network }) }],
    time,
    random: createRandom(1),
    timesync: false,
  });
  await client.connect();
  session = server.session();
  world = createWorld({ types: [Player, Bullet] });
  replication = createReplicationServer({ world });
  replication.addClient('c');
});
afterEach(() => client.close());

it('interpolates the entities of one type between snapshots, on the server tick timeline', async () => {
  const room = await client.join('arena', undefined, { replication: { types: [Player, Bullet] } });
  const mine = world.spawn(Player, { x: 0, y: 0 });
  const other = world.spawn(Player, { x: 100, y: 10 });
  world.spawn(Bullet, { x: 5 });
  const others = interpolateEntities(room, {
    type: Player,
    tickRateHz: 20,
    fields: { x: 'linear', y: 'linear' },
    filter: (entity) => entity.id !== mine.id,
    clock: time,
    minDelayMs: 100,
    maxDelayMs: 100,
  });
  for (let tick = 1; tick <= 6; tick++) {
    other.set('x', 100 + tick * 10);
    sendSnapshot(tick);
    await flush();
    replication.receiveAck('c', room.replica!.ack());
    time.advance(50);
  }
  const frame = others.sample();
  expect([...frame.entities.keys()]).toEqual([other.id]); // no bullet, not mine
  const x = frame.entities.get(other.id)!.x;

  // 100 ms behind the newest snapshot, blended between two ticks.
  expect(x).toBeGreaterThan(100);
  expect(x).toBeLessThan(160);
  expect(others.interpolator.stats().receivedSnapshots).toBe(6);

  // Leaving the room stops the feed.
  server.kick(session);
  await flush();
  sendSnapshot(7);
  await flush();
  expect(others.interpolator.stats().receivedSnapshots).toBe(6);
  others.close(); // idempotent
});

it('needs a replicated room and a positive tick rate', async () => {
  const room = await client.join('plain');
  expect(() =>
    interpolateEntities(room, {
      type: Player,
      tickRateHz: 20,
      fields: { x: 'linear', y: 'linear' },
    }),
  ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
  await room.leave();
  const replicated = await client.join('arena', undefined, { replication: { types: [Player] } });
  expect(() =>
    interpolateEntities(replicated, {
      type: Player,
      tickRateHz: 0,
      fields: { x: 'linear', y: 'linear' },
    }),
  ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
});

it('fits the tick timeline to the fastest recent snapshot, forgetting a slow first one', async () => {
  const room = await client.join('arena', undefined, { replication: { types: [Player, Bullet] } });
  const other = world.spawn(Player, { x: 0, y: 0 });
  const others = interpolateEntities(room, {
    type: Player,
    tickRateHz: 20,
    fields: { x: 'linear', y: 'linear' },
    clock: time,
    timelineWindow: 4,
  });
  // Local time 1000 is tick time 0. Tick k is due at 1000 + 50 k; tick 1 arrives 200 ms late.
  for (let tick = 1; tick <= 8; tick++) {
    time.advanceTo(1000 + 50 * tick + (tick === 1 ? 200 : 0));
    other.set('x', tick * 10);
    sendSnapshot(tick);
    await flush();
    replication.receiveAck('c', room.replica!.ack());
    if (tick === 1) expect(others.tickTime()).toBe(50); // the only sample so far: late by 200
  }
  // The on-time snapshots define the timeline: local 1400 is tick time 400.
  expect(others.tickTime()).toBe(400);
  // The path gets 30 ms slower for good: once the window holds only slow samples, it follows.
  for (let tick = 9; tick <= 12; tick++) {
    time.advanceTo(1000 + 50 * tick + 30);
    sendSnapshot(tick);
    await flush();
    replication.receiveAck('c', room.replica!.ack());
  }
  expect(others.tickTime()).toBe(600);
  expect(() =>
    interpolateEntities(room, {
      type: Player,
      tickRateHz: 20,
      fields: { x: 'linear', y: 'linear' },
      timelineWindow: 0,
    }),
  ).toThrow(/timelineWindow/);
  others.close();
});

it('runs on a given timeline when it knows one, and on the fit while it returns NaN', async () => {
  const room = await client.join('arena', undefined, { replication: { types: [Player, Bullet] } });
  world.spawn(Player, { x: 1, y: 1 });
  let known = Number.NaN;
  const others = interpolateEntities(room, {
    type: Player,
    tickRateHz: 20,
    fields: { x: 'linear', y: 'linear' },
    clock: time,
    timeline: () => known,
  });
  time.advanceTo(1050);
  sendSnapshot(1);
  await flush();
  expect(others.tickTime()).toBe(50); // the fit
  known = 77;
  expect(others.tickTime()).toBe(77);
  expect(others.sample().renderTime).toBe(77 - others.interpolator.delayMs);
  others.close();
});

it('does not blend an entity into another that reuses its id (despawn and spawn in one tick)', async () => {
  const room = await client.join('arena', undefined, { replication: { types: [Player, Bullet] } });
  const first = world.spawn(Player, { x: 0, y: 0 });
  const others = interpolateEntities(room, {
    type: Player,
    tickRateHz: 20,
    fields: { x: 'linear', y: 'linear' },
    clock: time,
    minDelayMs: 100,
    maxDelayMs: 100,
  });
  for (let tick = 1; tick <= 4; tick++) {
    sendSnapshot(tick);
    await flush();
    replication.receiveAck('c', room.replica!.ack());
  }
  world.despawn(first);
  const second = world.spawn(Player, { x: 1000, y: 0 });
  expect(second.id).toBe(first.id);
  sendSnapshot(5);
  await flush();
  expect(room.replica!.get(second.id)!.generation).toBe(second.generation);
  // Render time 225 ms, halfway between tick 4 (the first entity) and tick 5 (the second).
  const x = others.sample(325).entities.get(first.id)?.x;
  expect(x === undefined || x === 0).toBe(true);
  expect(others.sample(350).entities.get(second.id)?.x).toBe(1000);
  others.close();
});
