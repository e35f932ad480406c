// What operators rely on: /metrics, /health, /debug and a shutdown that loses no session.
import { type Client, createClient } from '@tickwire/client';
import { CloseCode, ErrorCode } from '@tickwire/core';
import { createMemoryStore } from '@tickwire/core/memory';
import type { SessionLink } from '@tickwire/rooms/protocol';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { cleanupAfterEach, connectClient, roomOptions, startServer, until } from './test-game.js';

const cleanup = cleanupAfterEach();

/** Parses Prometheus text: `name{labels} value` lines into a map keyed by `name{labels}`. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    values.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return values;
}

describe('operations', () => {
  it('serves /metrics in Prometheus text format, /health and /debug', async () => {
    const { server, url, http } = await startServer({ http: { debug: true } });
    cleanup.push(() => server.close());
    const client = connectClient(url('ws'), 'ws', { reconnect: false });
    cleanup.push(async () => client.close());
    await client.connect();
    const room = await client.joinOrCreate('arena', {}, roomOptions);
    room.send('chat', { text: 'metrics' });
    await until(() => room.replica!.size === 1, 5000, 'first snapshot');
    await new Promise((resolve) => setTimeout(resolve, 200)); // a few ticks

    const response = await fetch(`${http}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/plain/);
    const metrics = parseMetrics(await response.text());
    expect(metrics.get('tickwire_connections{transport="ws"}')).toBe(1);
    expect(metrics.get('tickwire_sessions')).toBe(1);
    expect(metrics.get('tickwire_rooms')).toBe(1);
    expect(metrics.get('tickwire_messages_received_total{type="Hello"}')).toBe(1);
    expect(
      metrics.get('tickwire_messages_received_total{type="RoomMessage"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(metrics.get('tickwire_messages_sent_total{type="Snapshot"}')).toBeGreaterThan(0);
    expect(metrics.get('tickwire_sent_bytes_total{type="Snapshot"}')).toBeGreaterThan(0);
    expect(
      metrics.get('tickwire_tick_duration_milliseconds_count{phase="replicate"}'),
    ).toBeGreaterThan(0);

    const health = await fetch(`${http}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'ok',
      connections: 1,
      rooms: 1,
      sessions: 1,
    });

    const debug = (await (await fetch(`${http}/debug`)).json()) as {
      sessions: { id: string; connected: boolean }[];
      rooms: { id: string; clients: number }[];
    };
    expect(debug.sessions).toEqual([
      expect.objectContaining({ id: client.session!.sessionId, connected: true }),
    ]);
    expect(debug.rooms).toEqual([expect.objectContaining({ id: room.id, clients: 1 })]);
  });

  it('graceful shutdown with a persistent store: clients resume after the restart', async () => {
    const store = createMemoryStore();
    const secret = 'a-secret-that-is-at-least-32-bytes-long!';
    const first = await startServer({ store, session: { secret }, transports: { ws: true } });
    const port = Number(new URL(first.http).port);
    const client: Client = connectClient(first.url('ws'), 'ws', {
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    cleanup.push(async () => client.close());
    await client.connect();
    const sessionId = client.session!.sessionId;
    const room = await client.joinOrCreate('arena', {}, roomOptions);
    const left: number[] = [];
    room.on('leave', (code) => left.push(code));
    const disconnected = new Promise<number>((resolve) =>
      client.on('disconnected', (info) => resolve(info.code)),
    );
    await first.server.close();
    expect(await disconnected).toBe(CloseCode.ServiceRestart);

    const second = await startServer({
      store,
      session: { secret },
      port,
      transports: { ws: true },
    });
    cleanup.push(() => second.server.close());
    await until(() => client.state === 'open', 10_000, 'resume after restart');
    expect(client.session!.sessionId).toBe(sessionId);
    expect(client.session!.resume).toBe('restored');
    expect(left).toEqual([CloseCode.ServiceRestart]); // the room lived in the old process
    const again = await client.joinOrCreate('arena', {}, roomOptions);
    await until(() => again.replica!.size === 1, 5000, 'state in the new room');
  });

  it('graceful shutdown with the memory store: clients get a clear SESSION_EXPIRED', async () => {
    const secret = 'a-secret-that-is-at-least-32-bytes-long!';
    const first = await startServer({ session: { secret }, transports: { ws: true } });
    const port = Number(new URL(first.http).port);
    const client = connectClient(first.url('ws'), 'ws', {
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    cleanup.push(async () => client.close());
    await client.connect();
    const closed = new Promise<string | undefined>((resolve) =>
      client.on('close', (_info, error) => resolve(error?.code)),
    );
    expect(first.server.stats().status).toBe('ok');
    const shutdown = first.server.close();
    expect(first.server.stats().status).toBe('draining');
    await shutdown;
    const second = await startServer({ session: { secret }, port, transports: { ws: true } });
    cleanup.push(() => second.server.close());
    expect(await closed).toBe(ErrorCode.SESSION_EXPIRED);
  });

  it('refuses WebSocket upgrades from origins not in allowedOrigins (HTTP 403)', async () => {
    const { server, url } = await startServer({
      allowedOrigins: ['https://game.example'],
      transports: { ws: true },
    });
    cleanup.push(() => server.close());
    const status = (origin: string) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(url('ws'), { origin });
        socket.once('open', () => {
          socket.close();
          resolve(101);
        });
        socket.once('unexpected-response', (_request, response) =>
          resolve(response.statusCode ?? 0),
        );
        socket.once('error', () => undefined);
      });
    expect(await status('https://evil.example')).toBe(403);
    expect(await status('https://game.example')).toBe(101);
  });
});

describe('moderation and several processes', () => {
  it('kick ends a session at once: the client gets FORBIDDEN and the seat is free', async () => {
    const { server, url } = await startServer({ transports: { ws: true } });
    cleanup.push(() => server.close());
    const client = connectClient(url('ws'), 'ws');
    cleanup.push(async () => client.close());
    await client.connect();
    const room = await client.joinOrCreate('arena', {}, roomOptions);
    const closed = new Promise<string | undefined>((resolve) =>
      client.on('close', (_info, error) => resolve(error?.code)),
    );
    expect(await server.kick(client.session!.sessionId, 'behave')).toBe(true);
    expect(await closed).toBe(ErrorCode.FORBIDDEN);
    await until(() => server.rooms.get(room.id) === undefined, 3000, 'room disposed');
    expect(server.stats().sessions).toBe(0);
    expect(await server.kick('no-such-session')).toBe(false);
  });

  it('a session resumed on another process frees its seat on the first one', async () => {
    const store = createMemoryStore();
    const secret = 'a-secret-that-is-at-least-32-bytes-long!';
    const a = await startServer({
      store,
      session: { secret, graceMs: 200 },
      transports: { ws: true },
    });
    const b = await startServer({
      store,
      session: { secret, graceMs: 200 },
      transports: { ws: true },
    });
    cleanup.push(() => a.server.close());
    cleanup.push(() => b.server.close());
    let target = a.url('ws');
    const { createWsClient } = await import('@tickwire/transport/ws');
    const inner = createWsClient();
    // A transport that goes to whichever server `target` names (a load balancer's choice).
    const client = createClient({
      endpoints: [
        {
          url: 'ws://balancer',
          transport: { connect: (_url, options) => inner.connect(target, options) },
        },
      ],
      reconnect: { initialDelayMs: 20, maxDelayMs: 50 },
    });
    cleanup.push(async () => client.close());
    await client.connect();
    await client.joinOrCreate('arena', {}, roomOptions);
    expect(a.server.stats().sessions).toBe(1);
    target = b.url('ws');
    const sessionId = client.session!.sessionId;
    // Cut the connection on A: the client comes back through the balancer, to B.
    const member = [...a.server.rooms.rooms()][0]!.clients.get(sessionId)!;
    (member.connection as SessionLink).transport?.close(1001, 'cut');
    await until(
      () => client.state === 'open' && client.session!.resume === 'restored',
      5000,
      'restored on B',
    );
    expect(client.session!.sessionId).toBe(sessionId);
    // A's grace period ends: it sees the session moved and frees the seat, keeping the record.
    await until(() => a.server.stats().sessions === 0, 3000, 'A lets go');
    expect(a.server.rooms.rooms()).toHaveLength(0);
    expect(b.server.stats().sessions).toBe(1);
  });
});
