// The server and client READMEs' examples, run against each other over WebSocket (ports 0).
import { createClient, interpolateEntities } from '@tickwire/client';
import { silentLogger } from '@tickwire/core';
import { defineEntityType } from '@tickwire/replication';
import { defineRoom } from '@tickwire/rooms';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { createWsClient } from '@tickwire/transport/ws';
import { expect, it } from 'vitest';
import { createServer, replicate } from './index.js';
import { until } from './test-game.js';

const Player = defineEntityType('player', {
  x: t.quantized(0, 1024, 1 / 64),
  y: t.quantized(0, 1024, 1 / 64),
});
const messages = {
  client: defineMessages({ move: { id: 1, schema: defineSchema({ dx: t.i8(), dy: t.i8() }) } }),
  server: defineMessages({
    hello: { id: 1, schema: defineSchema({ text: t.string({ maxBytes: 200 }) }) },
  }),
};

it('runs the server and client examples', async () => {
  const arena = defineRoom({
    capacity: 16,
    tickRateHz: 20,
    messages,
    state: (room) => ({ replication: replicate(room, { types: [Player] }), players: new Map() }),
    onJoin(room, member) {
      const player = room.state.replication.world.spawn(Player, { x: 512, y: 512 });
      room.state.players.set(member.sessionId, player);
      room.send(member, 'hello', { text: `welcome, ${member.sessionId}` });
    },
    onLeave(room, member) {
      room.state.replication.world.despawn(room.state.players.get(member.sessionId));
      room.state.players.delete(member.sessionId);
    },
    onMessage: {
      move(room, member, { dx, dy }) {
        const player = room.state.players.get(member.sessionId);
        player.set('x', Math.min(1024, Math.max(0, player.get('x') + dx)));
        player.set('y', Math.min(1024, Math.max(0, player.get('y') + dy)));
      },
    },
  });
  const server = createServer({
    port: 0,
    transports: { ws: true, tcp: { port: 0 }, udp: { port: 0 } },
    rooms: { arena },
    auth: ({ auth }) => (typeof auth === 'string' && auth.length > 0 ? { userId: auth } : false),
    logger: silentLogger,
  });
  const { http, transports } = await server.listen();
  expect(http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(Object.keys(transports).sort()).toEqual(['tcp', 'udp', 'ws']);

  try {
    const client = createClient({
      endpoints: [{ url: transports.ws!.url, transport: createWsClient() }],
      auth: 'ada',
    });
    const session = await client.connect();

    expect(session.userData).toBeUndefined();
    const room = await client.joinOrCreate(
      'arena',
      {},
      { messages, replication: { types: [Player] } },
    );
    const hello = new Promise<string>((resolve) =>
      room.onMessage('hello', ({ text }) => resolve(text)),
    );
    expect(await hello).toBe(`welcome, ${session.sessionId}`);
    room.send('move', { dx: 1, dy: 0 }, { reliable: false });
    const others = interpolateEntities(room, {
      type: Player,
      tickRateHz: session.tickRateHz,
      fields: { x: 'linear', y: 'linear' },
    });
    await until(() => others.sample().entities.size === 1, 5000, 'an interpolated player');
    await until(() => [...others.sample().entities.values()][0]!.x === 513, 5000, 'the move');
    expect(client.time?.serverNow()).toBeGreaterThan(0);
    others.close();
    client.close();

    // The auth hook refuses an empty name.
    const refused = createClient({
      endpoints: [{ url: transports.ws!.url, transport: createWsClient() }],
      auth: '',
    });
    await expect(refused.connect()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  } finally {
    await server.close();
  }
});
