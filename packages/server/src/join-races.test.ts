// Room messages that arrive while their sender's join runs: no handler sees them before the join
// completes; then they are handled in order, or dropped with an Error frame when it fails.
import { createManualTime, ErrorCode, Opcode, PROTOCOL_VERSION } from '@tickwire/core';
import { defineRoom, MAX_MESSAGES_WHILE_JOINING } from '@tickwire/rooms';
import {
  decodeError,
  decodeRoomJoined,
  type ErrorFrame,
  encodeHello,
  encodeJoinRoom,
  encodeRoomMessage,
  JoinMode,
} from '@tickwire/rooms/protocol';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, startMemoryServer, until } from './test-game.js';

const cleanup = cleanupAfterEach();

const clientMessages = defineMessages({
  chat: { id: 1, schema: defineSchema({ text: t.string({ maxBytes: 16 }) }) },
});

async function start() {
  const gates: Record<string, (ok: boolean) => void> = {};
  const joined = new Set<string>();
  const seen: string[] = [];
  const slow = defineRoom({
    tickRateHz: 0,
    autoDispose: false,
    messages: { client: clientMessages },
    options: defineSchema({ name: t.string({ maxBytes: 16 }) }),
    onJoin: (_room, _member, options) =>
      new Promise<void>((resolve, reject) => {
        gates[options.name] = (ok) => (ok ? resolve() : reject(new Error('refused')));
      }),
    onMessage: {
      chat(_room, member, value) {
        seen.push(`${value.text}${joined.has(member.sessionId) ? '' : ' (joining)'}`);
      },
    },
  });
  const started = await startMemoryServer(
    { time: createManualTime(1_000_000), rooms: { slow } },
    cleanup,
  );
  const { server } = started;
  server.rooms.on('joined', (client) => joined.add(client.sessionId));
  const connect = async () => {
    const peer = await started.connect();
    const { connection, frames } = peer;
    connection.send(encodeHello({ version: PROTOCOL_VERSION, token: '', received: 0, auth: null }));
    await until(() => frames.some((data) => data[0] === Opcode.Welcome), 3000, 'Welcome');
    const errors = (): ErrorFrame[] =>
      frames.filter((data) => data[0] === Opcode.Error).map((data) => decodeError(data));
    return { connection, frames, errors };
  };
  return { server, gates, seen, connect };
}

const join = (name: string) =>
  encodeJoinRoom({ requestId: 1, mode: JoinMode.JoinOrCreate, target: 'slow', options: { name } });
const chat = (text: string) => encodeRoomMessage(clientMessages.encode('chat', { text }));

describe('room messages sent while joining', () => {
  it('are handled after the join completed, in order, after RoomJoined', async () => {
    const { gates, seen, connect } = await start();
    const peer = await connect();
    peer.connection.send(join('a'));
    peer.connection.send(chat('one'));
    peer.connection.send(chat('two'));
    await until(() => gates.a !== undefined, 3000, 'onJoin');
    peer.connection.send(chat('three'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual([]);
    gates.a!(true);
    await until(() => seen.length === 3, 3000, 'the held messages');
    expect(seen).toEqual(['one', 'two', 'three']);
    const roomJoined = peer.frames.find((data) => data[0] === Opcode.RoomJoined)!;
    expect(decodeRoomJoined(roomJoined).requestId).toBe(1);
    peer.connection.send(chat('four'));
    await until(() => seen.length === 4, 3000, 'a message after the join');
    expect(seen[3]).toBe('four');
    expect(peer.errors()).toEqual([]);
  });

  it('are never handled when the join fails: the client gets its join error and NOT_FOUND', async () => {
    const { server, gates, seen, connect } = await start();
    const peer = await connect();
    peer.connection.send(join('b'));
    peer.connection.send(chat('one'));
    await until(() => gates.b !== undefined, 3000, 'onJoin');
    peer.connection.send(chat('two'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    gates.b!(false);
    await until(() => peer.errors().length === 2, 3000, 'two Error frames');
    // The join's answer (its request id) and the notice of what was dropped (none).
    const joinError = peer.errors().find((error) => error.requestId === 1);
    const dropped = peer.errors().find((error) => error.requestId === 0);
    expect(joinError).toMatchObject({ requestId: 1, code: ErrorCode.INTERNAL });
    expect(dropped).toMatchObject({ requestId: 0, code: ErrorCode.NOT_FOUND });
    expect(dropped!.message).toMatch(/2 room message\(s\) sent during it were dropped/);
    expect(seen).toEqual([]);
    expect(server.stats().rejections['invalid-message']).toBe(1);
    expect(peer.connection.state).toBe('open');
  });

  it(`holds at most ${MAX_MESSAGES_WHILE_JOINING}: the next is refused with LIMIT_EXCEEDED`, async () => {
    const { gates, seen, connect } = await start();
    const peer = await connect();
    peer.connection.send(join('c'));
    for (let i = 0; i <= MAX_MESSAGES_WHILE_JOINING; i++) peer.connection.send(chat(`m${i}`));
    await until(() => peer.errors().length === 1, 3000, 'the refusal');
    expect(peer.errors()[0]).toMatchObject({ requestId: 0, code: ErrorCode.LIMIT_EXCEEDED });
    await until(() => gates.c !== undefined, 3000, 'onJoin');
    gates.c!(true);
    await until(() => seen.length === MAX_MESSAGES_WHILE_JOINING, 3000, 'the held messages');
    expect(seen).toEqual(Array.from({ length: MAX_MESSAGES_WHILE_JOINING }, (_, i) => `m${i}`));
  });
});
