// Resumes that fail or are abandoned while the session is still connected elsewhere: the live
// session must keep its connection and must not start (and later lose to) a grace timer. And
// resumes that succeed: the connection they replace can no longer reach (or end) the session.
import {
  CloseCode,
  createManualTime,
  type ManualTime,
  Opcode,
  PROTOCOL_VERSION,
  type Store,
} from '@tickwire/core';
import { createMemoryStore } from '@tickwire/core/memory';
import { holdWrites } from '@tickwire/core/testing';
import {
  decodeRoomJoined,
  decodeWelcome,
  encodeHello,
  encodeJoinRoom,
  encodeLeaveRoom,
  JoinMode,
  type WelcomeFrame,
} from '@tickwire/rooms/protocol';
import { describe, expect, it } from 'vitest';
import type { LimitsConfig } from './config.js';
import type { TickwireServer } from './server.js';
import { arena, cleanupAfterEach, type MemoryPeer, startMemoryServer, until } from './test-game.js';

const cleanup = cleanupAfterEach();
const GRACE_MS = 1000;

type Peer = MemoryPeer;

async function start(
  store?: Store,
  limits?: LimitsConfig,
): Promise<{ server: TickwireServer; time: ManualTime; connect: () => Promise<Peer> }> {
  const time = createManualTime(1_000_000);
  const { server, connect } = await startMemoryServer(
    {
      time,
      rooms: { arena },
      session: { graceMs: GRACE_MS },
      ...(store === undefined ? {} : { store }),
      ...(limits === undefined ? {} : { limits }),
    },
    cleanup,
  );
  return { server, time, connect };
}

const hello = (peer: Peer, token: string, received: number): void => {
  peer.connection.send(
    encodeHello({ version: PROTOCOL_VERSION, token, received, auth: undefined }),
  );
};

async function welcomed(peer: Peer): Promise<WelcomeFrame> {
  await until(() => peer.frames.some((data) => data[0] === Opcode.Welcome), 3000, 'Welcome');
  return decodeWelcome(peer.frames.find((data) => data[0] === Opcode.Welcome)!);
}

/** Lets the store's promise chains (grace expiry) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

/** Well past the grace period, `peer`'s session is still connected and in the store. */
async function stillConnectedPastGrace(
  server: TickwireServer,
  time: ManualTime,
  peer: Peer,
  sessionId: string,
): Promise<void> {
  time.advance(GRACE_MS * 3);
  await settle();
  expect(peer.closed()).toBeUndefined();
  expect(peer.connection.state).toBe('open');
  expect(server.stats().sessions).toBe(1);
  expect(await server.sessions.get(sessionId)).not.toBeNull();
}

describe('resume attempts while the session is connected', () => {
  it('a refused resume (received count above what was sent) leaves the live connection alone', async () => {
    const { server, time, connect } = await start();
    const first = await connect();
    hello(first, '', 0);
    const welcome = await welcomed(first);

    const bogus = await connect();
    hello(bogus, welcome.token, 999);
    await until(() => bogus.closed() !== undefined, 3000, 'the refusal');
    expect(bogus.closed()!.code).toBe(CloseCode.ProtocolError);
    expect(server.stats().rejections['bad-resume']).toBe(1);

    // Well past the grace period: the connected session must not have been expired.
    await stillConnectedPastGrace(server, time, first, welcome.sessionId);
  });

  it('a resume whose connection closes before its Welcome leaves the live connection alone', async () => {
    // A store whose writes wait for the test: the resume is held mid-way.
    const held = holdWrites(createMemoryStore());
    const { server, time, connect } = await start(held.store);
    const first = await connect();
    hello(first, '', 0);
    const welcome = await welcomed(first);

    held.hold();
    const late = await connect();
    hello(late, welcome.token, 0);
    await until(() => server.stats().connections === 2, 3000, 'the second connection');
    // Give the Hello time to reach the held store write, then drop the connection.
    await settle();
    late.connection.close(CloseCode.GoingAway, 'gone');
    await until(() => server.stats().connections === 1, 3000, 'the close seen by the server');
    held.release();
    await settle();

    await stillConnectedPastGrace(server, time, first, welcome.sessionId);
  });
});

describe('two resumes racing with one token', () => {
  it('one wins; the other is refused as replayed (Unauthorized), not welcomed then Replaced', async () => {
    // Writes are held until both resumes have read the record: their compare-and-sets overlap.
    const held = holdWrites(createMemoryStore());
    const { server, connect } = await start(held.store);
    const first = await connect();
    hello(first, '', 0);
    const welcome = await welcomed(first);
    first.connection.close(CloseCode.GoingAway, 'gone');
    await until(() => server.stats().connections === 0, 3000, 'the close');

    const genBefore = (await server.sessions.get(welcome.sessionId))!.gen;
    held.hold();
    const racers = [await connect(), await connect()];
    for (const racer of racers) hello(racer, welcome.token, 0);
    await until(() => held.waiting === 2, 3000, 'both resumes at their store write');
    held.release();
    await until(
      () =>
        racers.every(
          (racer) =>
            racer.closed() !== undefined || racer.frames.some((d) => d[0] === Opcode.Welcome),
        ),
      3000,
      'both handshakes to end',
    );
    await settle();
    const winners = racers.filter((racer) => racer.frames.some((d) => d[0] === Opcode.Welcome));
    const losers = racers.filter((racer) => racer.closed()?.code === CloseCode.Unauthorized);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(1);
    expect(winners[0]!.closed()).toBeUndefined();
    expect(server.stats().rejections['token-replayed']).toBe(1);
    expect(server.stats().sessions).toBe(1);
    expect((await server.sessions.get(welcome.sessionId))?.gen).toBe(genBefore + 1);
  });
});

describe('a connection replaced by a resume', () => {
  it('cannot flood the session on the new connection: its late frames are dropped unseen', async () => {
    // No warning allowed: the first frame over the burst closes; the manual clock never refills.
    const { server, connect } = await start(undefined, {
      messagesPerSecond: 10,
      messageBurst: 10,
      rateLimitWarnings: 0,
    });
    const first = await connect();
    hello(first, '', 0);
    const welcome = await welcomed(first);

    // The moment the resume replaces `first`, `first` floods: frames it sent before it learnt
    // of the replacement, which still reach the server while its connection closes.
    let flooded = 0;
    server.on('session', (_id, kind) => {
      if (kind !== 'resumed') return;
      for (let i = 0; i < 40; i++) {
        first.connection.send(encodeLeaveRoom());
        flooded++;
      }
    });
    const second = await connect();
    hello(second, welcome.token, 0);
    await welcomed(second);
    expect(flooded).toBe(40);
    await until(() => first.closed() !== undefined, 3000, 'the replaced connection to close');
    expect(first.closed()!.code).toBe(CloseCode.Replaced);
    await settle();

    expect(server.stats().rejections['rate-limit']).toBeUndefined();
    expect(server.stats().rejections['rate-limit-warning']).toBeUndefined();
    expect(second.closed()).toBeUndefined();
    expect(second.connection.state).toBe('open');
    expect(server.stats().sessions).toBe(1);
    expect(await server.sessions.get(welcome.sessionId)).not.toBeNull();
    // No rate-limit Error frame reached the new connection either.
    expect(second.frames.some((data) => data[0] === Opcode.Error)).toBe(false);

    // The session keeps working on the new connection.
    second.connection.send(
      encodeJoinRoom({ requestId: 7, mode: JoinMode.JoinOrCreate, target: 'arena', options: {} }),
    );
    await until(
      () => second.frames.some((data) => data[0] === Opcode.RoomJoined),
      3000,
      'RoomJoined',
    );
    const joined = decodeRoomJoined(second.frames.find((data) => data[0] === Opcode.RoomJoined)!);
    expect(joined.requestId).toBe(7);
    expect(second.connection.state).toBe('open');
  });
});
