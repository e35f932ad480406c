import type { Client } from '@tickwire/client';
import { ErrorCode } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { replicate, replicationOf } from './replicate.js';
import {
  type ArenaState,
  cleanupAfterEach,
  connectClient,
  Player,
  roomOptions,
  startServer,
  type TransportName,
  until,
} from './test-game.js';

const cleanup = cleanupAfterEach();

async function setup(transport: TransportName, count: number) {
  const { server, url } = await startServer();
  cleanup.push(() => server.close());
  const clients: Client[] = [];
  for (let i = 0; i < count; i++) {
    const client = connectClient(url(transport), transport, { reconnect: false });
    cleanup.push(async () => client.close());
    await client.connect();
    clients.push(client);
  }
  return { server, clients };
}

describe.each<TransportName>(['ws', 'tcp', 'udp'])('engine over %s', (transport) => {
  it('creates, joins and leaves a room; messages and replicated state reach 3 clients', async () => {
    const { server, clients } = await setup(transport, 3);
    const [a, b, c] = clients as [Client, Client, Client];
    const roomA = await a.create('arena', {}, roomOptions);
    const roomB = await b.joinById(roomA.id, {}, roomOptions);
    const roomC = await c.join('arena', {}, roomOptions);
    expect(roomB.id).toBe(roomA.id);
    expect(roomC.id).toBe(roomA.id);
    expect(server.rooms.get(roomA.id)?.clients.size).toBe(3);

    // Room messages: a chat from C reaches everyone, validated both ways.
    const heard: string[] = [];
    for (const room of [roomA, roomB, roomC])
      room.onMessage('chat', (value) =>
        heard.push(`${value.from === c.session?.sessionId}:${value.text}`),
      );
    roomC.send('chat', { text: 'hello' });
    await until(() => heard.length === 3, 5000, 'chat on 3 clients');
    expect(heard).toEqual(['true:hello', 'true:hello', 'true:hello']);

    // Replicated state: A moves; every replica sees A's player at the new position.
    roomA.send('move', { x: 321.5, y: 77.25 });
    const xs = () =>
      [roomA, roomB, roomC].map((room) =>
        [...room.replica!.entities()]
          .map((entity) => entity.get('x' as never) as number)
          .sort((p, q) => p - q),
      );
    await until(
      () => xs().every((list) => list.length === 3 && list.includes(321.5)),
      5000,
      'replicated move',
    );
    expect(xs()).toEqual([
      [100, 100, 321.5],
      [100, 100, 321.5],
      [100, 100, 321.5],
    ]);

    // Time sync: an offset estimate exists on every client (same machine: near 0).
    await until(
      () => clients.every((client) => (client.time?.stats().samples ?? 0) >= 2),
      5000,
      'timesync samples',
    );
    for (const client of clients) {
      const stats = client.time!.stats();
      expect(Math.abs(stats.offsetMs)).toBeLessThan(50);
      expect(client.time!.serverNow()).toBeGreaterThan(0);
    }

    // Leave: the seat is freed and the others see the player despawn.
    await roomC.leave();
    expect(roomC.state).toBe('left');
    expect(c.room).toBeNull();
    expect(server.rooms.get(roomA.id)?.clients.size).toBe(2);
    await until(() => [...roomA.replica!.entities()].length === 2, 5000, 'despawn after leave');
  });
});

describe('replicate', () => {
  it('gives a room one replication, found again with replicationOf', async () => {
    const { server, clients } = await setup('ws', 1);
    const joined = await clients[0]!.joinOrCreate('arena', {}, roomOptions);
    const room = server.rooms.get(joined.id)!;
    const state = room.state as ArenaState;
    expect(replicationOf(room)).toBe(state.replication);
    expect(() => replicate(room, { types: [Player] })).toThrow(
      expect.objectContaining({ code: ErrorCode.CONFLICT }),
    );
  });
});
