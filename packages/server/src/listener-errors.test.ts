// A game's listener of the server's own events (`session`, `sessionEnd`, `rejected`) that throws
// is logged, like a room's: never rethrown as an uncaught error that would end the process.
import { CloseCode, createManualTime, Opcode, PROTOCOL_VERSION } from '@tickwire/core';
import { createMemoryLogger } from '@tickwire/core/memory';
import { catchMicrotaskErrors } from '@tickwire/core/testing';
import {
  decodeWelcome,
  encodeGoodbye,
  encodeHello,
  encodeJoinRoom,
  JoinMode,
} from '@tickwire/rooms/protocol';
import { describe, expect, it } from 'vitest';
import { arena, cleanupAfterEach, type MemoryPeer, startMemoryServer, until } from './test-game.js';

const cleanup = cleanupAfterEach();

interface Peer extends MemoryPeer {
  sessionId: string;
}

async function start() {
  // Keeps what a listener's error rethrown in a microtask would be (an uncaught error otherwise).
  const caught = catchMicrotaskErrors();
  cleanup.push(async () => caught.restore());
  const logger = createMemoryLogger();
  const started = await startMemoryServer(
    { logger, time: createManualTime(1_000_000), rooms: { arena } },
    cleanup,
  );
  const { server } = started;
  const connect = async (): Promise<Peer> => {
    const peer = await started.connect();
    peer.connection.send(
      encodeHello({ version: PROTOCOL_VERSION, token: '', received: 0, auth: undefined }),
    );
    const { frames } = peer;
    await until(() => frames.some((data) => data[0] === Opcode.Welcome), 3000, 'Welcome');
    const welcome = decodeWelcome(frames.find((data) => data[0] === Opcode.Welcome)!);
    return { ...peer, sessionId: welcome.sessionId };
  };
  return { server, logger, caught, connect };
}

/** Lets the memory transport's deliveries and any queued microtask run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

describe('a server event listener that throws', () => {
  it('a throwing sessionEnd listener is logged, not rethrown; other sessions keep working', async () => {
    const { server, logger, caught, connect } = await start();
    const failure = new Error('game bug in sessionEnd');
    const ended: string[] = [];
    server.on('sessionEnd', () => {
      throw failure;
    });
    server.on('sessionEnd', (sessionId) => ended.push(sessionId));
    const leaving = await connect();
    const staying = await connect();

    leaving.connection.send(encodeGoodbye({ code: CloseCode.Normal, reason: 'bye' }));
    await until(() => ended.length === 1, 3000, 'the sessionEnd');
    await settle();

    expect(ended).toEqual([leaving.sessionId]);
    expect(caught.thrown).toEqual([]);
    const logged = logger.records.filter((record) => record.fields.err === failure);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 'error', fields: { event: 'sessionEnd' } });
    expect(logged[0]!.message).toMatch(/'sessionEnd' listener threw/);

    // The other session goes on, and new sessions open.
    expect(server.stats().sessions).toBe(1);
    expect(staying.closed()).toBeUndefined();
    staying.connection.send(
      encodeJoinRoom({ requestId: 1, mode: JoinMode.JoinOrCreate, target: 'arena', options: {} }),
    );
    await until(
      () => staying.frames.some((data) => data[0] === Opcode.RoomJoined),
      3000,
      'RoomJoined',
    );
    const next = await connect();
    expect(server.stats().sessions).toBe(2);
    expect(await server.kick(next.sessionId)).toBe(true);
    await settle();
    expect(ended).toEqual([leaving.sessionId, next.sessionId]);
    expect(caught.thrown).toEqual([]);
    expect(staying.connection.state).toBe('open');
  });

  it('throwing session and rejected listeners are logged too; the handshake completes', async () => {
    const { server, logger, caught, connect } = await start();
    server.on('session', () => {
      throw new Error('game bug in session');
    });
    server.on('rejected', () => {
      throw new Error('game bug in rejected');
    });
    const peer = await connect();
    // An unknown opcode: rejected, answered with an Error frame; the session goes on.
    peer.connection.send(new Uint8Array([0xee, 0]));
    await until(() => peer.frames.some((data) => data[0] === Opcode.Error), 3000, 'the Error');
    await settle();

    expect(caught.thrown).toEqual([]);
    const events = logger.records
      .filter((record) => record.level === 'error' && record.fields.err instanceof Error)
      .map((record) => record.fields.event);
    expect(events).toEqual(['session', 'rejected']);
    expect(peer.closed()).toBeUndefined();
    expect(server.stats().sessions).toBe(1);
  });
});
