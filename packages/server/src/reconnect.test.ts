import type { Client } from '@tickwire/client';
import { type ClientTransport, CloseCode, type Connection, ErrorCode } from '@tickwire/core';
import type { SessionLink } from '@tickwire/rooms/protocol';
import { describe, expect, it } from 'vitest';
import {
  type ArenaState,
  cleanupAfterEach,
  clientTransport,
  connectClient,
  roomOptions,
  startServer,
  type TransportName,
  until,
} from './test-game.js';

const cleanup = cleanupAfterEach();

/** A client transport that records its connections and can refuse new ones. */
function recording(name: TransportName) {
  const inner = clientTransport(name);
  const connections: Connection[] = [];
  let blocked = false;
  const transport: ClientTransport = {
    async connect(url, options) {
      if (blocked)
        throw Object.assign(new Error('blocked by the test'), { code: 'CONNECT_FAILED' });
      const connection = await inner.connect(url, options);
      connections.push(connection);
      return connection;
    },
  };
  return {
    transport,
    connections,
    block: (value: boolean) => {
      blocked = value;
    },
  };
}

describe.each<TransportName>(['ws', 'tcp', 'udp'])('reconnection over %s', (name) => {
  it('resumes the same seat after a cut mid-burst; every reliable message arrives once, in order', async () => {
    const { server, url } = await startServer({ session: { graceMs: 10_000 } });
    cleanup.push(() => server.close());
    const rec = recording(name);
    const c: Client = connectClientWith(url(name), rec.transport);
    cleanup.push(async () => c.close());
    await c.connect();
    const sessionId = c.session!.sessionId;
    const room = await c.joinOrCreate('arena', {}, roomOptions);
    const seqs: number[] = [];
    room.onMessage('seq', (value) => seqs.push(value.n));
    const chats: string[] = [];
    room.onMessage('chat', (value) => chats.push(value.text));

    // The server cuts the transport connection halfway through a burst of 400 messages.
    const state = server.rooms.get(room.id)!.state as ArenaState;
    state.onBurst = (n) => {
      if (n !== 200) return;
      const member = server.rooms.get(room.id)!.clients.get(sessionId)!;
      (member.connection as SessionLink).transport?.close(CloseCode.GoingAway, 'cut');
    };
    room.send('burst', { count: 400 });
    await until(() => c.state === 'reconnecting' || seqs.length === 400, 5000, 'the cut');
    // Sent while cut off: delivered after the resume.
    room.send('chat', { text: 'while away' });
    await until(() => seqs.length >= 400 && chats.length >= 1, 10_000, 'the replayed burst');
    await new Promise((resolve) => setTimeout(resolve, 100)); // nothing more arrives
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(chats).toEqual(['while away']);
    expect(c.session!.sessionId).toBe(sessionId);
    expect(c.session!.resume).toBe('resumed');
    expect(c.stats().connections).toBe(2);
    expect(rec.connections.length).toBe(2);
    expect(server.rooms.get(room.id)!.clients.has(sessionId)).toBe(true);
    expect(c.room?.id).toBe(room.id);

    // A client-side cut mid-game: the replica keeps receiving after the resume.
    rec.connections[1]!.close(CloseCode.GoingAway, 'cut');
    await until(() => c.state === 'open' && c.stats().connections === 3, 10_000, 'second resume');
    room.send('move', { x: 500, y: 500 });
    await until(
      () => [...room.replica!.entities()].some((entity) => entity.get('x' as never) === 500),
      5000,
      'replication after resume',
    );
  });
});

function connectClientWith(url: string, transport: ClientTransport): Client {
  return connectClient(url, 'ws', {
    endpoints: [{ url, transport }],
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
  });
}

describe('grace period', () => {
  it('frees the seat when the grace period ends, and the client gets SESSION_EXPIRED', async () => {
    const { server, url } = await startServer({ session: { graceMs: 300 } });
    cleanup.push(() => server.close());
    const rec = recording('ws');
    const c = connectClientWith(url('ws'), rec.transport);
    cleanup.push(async () => c.close());
    await c.connect();
    const room = await c.joinOrCreate('arena', {}, roomOptions);
    const roomId = room.id;
    const closed = new Promise<{ code: string | undefined }>((resolve) =>
      c.on('close', (_info, error) => resolve({ code: error?.code })),
    );
    const left: number[] = [];
    room.on('leave', (code) => left.push(code));
    rec.block(true);
    rec.connections[0]!.close(CloseCode.GoingAway, 'cut');
    expect((await closed).code).toBe(ErrorCode.SESSION_EXPIRED);
    await until(
      () => server.rooms.get(roomId) === undefined || server.rooms.get(roomId)!.clients.size === 0,
      3000,
      'seat freed',
    );
    expect(server.stats().sessions).toBe(0);
    expect(left.length).toBe(1);
  });
});

describe('rate limits and replay', () => {
  it('never drops a reliable frame over the rate limit: a replay stays exactly once', async () => {
    const { server, url } = await startServer({
      limits: { messagesPerSecond: 5, messageBurst: 5, rateLimitWarnings: 1000 },
    });
    cleanup.push(() => server.close());
    const rec = recording('ws');
    const c = connectClientWith(url('ws'), rec.transport);
    cleanup.push(async () => c.close());
    await c.connect();
    const room = await c.joinOrCreate('arena', {}, roomOptions);
    const heard: string[] = [];
    room.onMessage('chat', (value) => heard.push(value.text));
    const warnings: string[] = [];
    room.on('error', (error) => warnings.push(error.code));
    for (let i = 0; i < 30; i++) room.send('chat', { text: `m${i}` });
    await until(() => heard.length === 30, 5000, '30 chats over the limit');
    expect(warnings).toContain(ErrorCode.RATE_LIMITED);
    rec.connections[0]!.close(CloseCode.GoingAway, 'cut');
    await until(() => c.state === 'open' && c.stats().connections === 2, 10_000, 'resume');
    room.send('chat', { text: 'after' });
    await until(() => heard.length === 31, 5000, 'the chat after the resume');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard).toEqual([...Array.from({ length: 30 }, (_, i) => `m${i}`), 'after']);
  });

  it('ends a session whose Welcome cannot be sent, instead of leaking it', async () => {
    const { server, url } = await startServer({
      auth: () => ({ userData: 'x'.repeat(20_000) }), // over the 16 KB of a frame value
    });
    cleanup.push(() => server.close());
    const c = connectClient(url('ws'), 'ws', { reconnect: false });
    await expect(c.connect()).rejects.toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
    await until(() => server.stats().sessions === 0, 3000, 'no session left');
    expect(server.stats().rejections['welcome-failed']).toBe(1);
  });
});
