import { randomBytes } from 'node:crypto';
import { createManualTime, Opcode } from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { expect, it } from 'vitest';
import {
  createRoomManager,
  createSessionRegistry,
  createTokenSigner,
  defineRoom,
} from './index.js';

// The README's examples on a manual clock, with assertions instead of logging.
it('runs the tokens and sessions examples', async () => {
  const time = createManualTime();
  const signer = createTokenSigner({ secret: randomBytes(32) });
  const token = signer.sign({ sid: 'session-1', exp: Date.now() + 60_000, jti: 'a1', gen: 0 });
  expect(signer.verify(token).sid).toBe('session-1');

  const sessions = createSessionRegistry({ signer, graceMs: 30_000, time });
  const { session, token: first } = await sessions.create({
    userId: 'ada',
    auth: { role: 'player' },
  });
  sessions.detached(session.id);
  const expired: string[] = [];
  sessions.on('expired', (sessionId) => expired.push(sessionId));
  const resumed = await sessions.resume(first);
  expect(resumed.session.gen).toBe(1);
  await sessions.confirm(session.id, resumed.session.gen);
  await sessions.update(session.id, { roomId: 'r1' });
  time.advance(60_000);
  await new Promise((resolve) => setTimeout(resolve, 0));
  expect(expired).toEqual([]);
  expect((await sessions.get(session.id))?.roomId).toBe('r1');
  await expect(sessions.resume(first)).rejects.toMatchObject({ details: { reason: 'replayed' } });
});

it('runs the rooms example', async () => {
  const messages = {
    client: defineMessages({ move: { id: 0, schema: defineSchema({ dx: t.i8() }) } }),
    server: defineMessages({ moved: { id: 0, schema: defineSchema({ x: t.i32() }) } }),
  };
  const ticks: number[] = [];
  const arena = defineRoom({
    capacity: 8,
    tickRateHz: 20,
    messages,
    options: defineSchema({ map: t.enum(['dust', 'aztec']) }),
    state: (_room, options) => ({ map: options.map, x: 0 }),
    onMessage: {
      move(room, _member, { dx }) {
        room.state.x += dx;
        room.broadcast('moved', { x: room.state.x });
      },
    },
    onTick: (_room, _dtMs, tick) => {
      ticks.push(tick);
    },
  });

  const time = createManualTime();
  const rooms = createRoomManager({ time });
  rooms.define('arena', arena);
  const [connection, clientEnd] = createMemoryConnectionPair();
  const received: unknown[] = [];
  clientEnd.on('message', (data) => {
    expect(data[0]).toBe(Opcode.RoomMessage);
    received.push(messages.server.decode(data.subarray(2)));
  });
  const sessionId = 'session-1';
  const room = await rooms.joinOrCreate('arena', { sessionId, connection }, { map: 'dust' });
  const payload = messages.client.encode('move', { dx: 3 });
  rooms.receive(sessionId, payload, 'reliable');
  await new Promise((resolve) => setTimeout(resolve, 0));
  expect(room.state).toEqual({ map: 'dust', x: 3 });
  expect(received).toEqual([{ type: 'moved', value: { x: 3 } }]);
  time.advance(100);
  expect(ticks).toEqual([1, 2]);
  await rooms.close();
});

it('runs the session link example: every reliable frame once across a reconnection', async () => {
  const { createSessionLink } = await import('./protocol/index.js');
  const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
  const server = createSessionLink({ id: 'session-1', role: 'server' });
  const client = createSessionLink({ id: 'session-1', role: 'client' });
  const received: string[] = [];
  client.on('message', (data) => received.push(new TextDecoder().decode(data.subarray(2))));

  let [c, s] = createMemoryConnectionPair();
  server.attach(s, 0);
  client.attach(c, 0);
  server.send(new Uint8Array([0x24, 0, 0x61]));
  await flush();
  s.close();
  server.send(new Uint8Array([0x24, 0, 0x62]));
  [c, s] = createMemoryConnectionPair();
  server.attach(s, client.counters.received);
  client.attach(c, server.counters.received);
  await flush();
  expect(received).toEqual(['a', 'b']);
  server.close();
  client.close();
});
