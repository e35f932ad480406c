import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import {
  CloseCode,
  type Connection,
  createManualTime,
  ErrorCode,
  isTickwireError,
  type ServerTransport,
  type TickwireError,
} from '@tickwire/core';
import { catchMicrotaskErrors, nextEvent, withTimeout } from '@tickwire/core/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { FrameKind } from '../shared/wire.js';
import { caught, MS } from '../test-support.js';
import { createWsClient, createWsServer, type WsServerOptions } from './index.js';

/** A plain `ws` client: speaks WebSocket but not necessarily our message layout. */
async function rawWs(url: string, options: { autoPong?: boolean } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { autoPong: options.autoPong ?? true });
  ws.on('error', () => {});
  await onceEvent(ws, 'open', 'raw ws open');
  return ws;
}

function rawClose(ws: WebSocket): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))),
    MS,
    'raw ws close',
  );
}

/** A socket that completes a WebSocket upgrade by hand, then reads nothing. */
async function stalledUpgrade(url: string): Promise<Socket> {
  const socket = await idleSocket(url);
  socket.write(
    'GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  return socket;
}

/** A TCP socket to the server that sends nothing. */
async function idleSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = netConnect({ host: hostname, port: Number(port) });
  socket.on('error', () => {});
  await onceEvent(socket, 'connect', 'connect');
  return socket;
}

/** Everything `socket` receives from now on, as latin1 text. */
function received(socket: Socket): () => string {
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
  });
  return () => text;
}

/** Resolves at the emitter's next `event`; fails after MS. */
function onceEvent(
  emitter: { once(event: string, listener: () => void): unknown },
  event: string,
  what: string,
): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => emitter.once(event, () => resolve())),
    MS,
    what,
  );
}

function socketClosed(socket: Socket): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      if (socket.destroyed) resolve();
      else socket.once('close', () => resolve());
    }),
    MS,
    'socket close',
  );
}

describe('ws server', () => {
  let server: ServerTransport;
  const cleanups: Array<() => void | Promise<void>> = [];

  async function start(options: WsServerOptions = {}): Promise<string> {
    server = createWsServer(options);
    return (await server.listen()).url;
  }

  /**
   * Starts a server with `limits` whose verifyUpgrade answers `accept()`, except for one client
   * it never answers (sent once here): that upgrade stays in progress.
   */
  async function startWithStalledUpgrade(
    limits: WsServerOptions,
    accept: () => boolean | Promise<boolean>,
  ): Promise<string> {
    let pending = 0;
    const url = await start({
      ...limits,
      handshakeTimeoutMs: 30_000,
      verifyUpgrade: (request) =>
        request.headers['x-stall'] === undefined ? accept() : new Promise<boolean>(() => pending++),
    });
    const stalled = createWsClient({ headers: { 'x-stall': '1' } }).connect(url, { timeoutMs: MS });
    stalled.catch(() => {});
    const deadline = Date.now() + MS;
    while (pending === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(pending).toBe(1);
    return url;
  }

  /** A peer that completed its upgrade and reads nothing (paused), with the server's side. */
  async function acceptStalled(url: string): Promise<{ socket: Socket; connection: Connection }> {
    const accepted = nextEvent(server, 'connection', MS);
    const socket = await stalledUpgrade(url);
    cleanups.push(() => {
      socket.destroy();
    });
    const [connection] = await accepted;
    socket.pause();
    return { socket, connection };
  }

  /** An idle socket (see idleSocket) destroyed after the test. */
  async function idleSocketHere(url: string): Promise<Socket> {
    const socket = await idleSocket(url);
    cleanups.push(() => {
      socket.destroy();
    });
    return socket;
  }

  /** An HTTP server of the test's own (answering `ok`), listening, closed after the test. */
  async function yourHttpServer(): Promise<HttpServer> {
    return listenHere(createHttpServer((_request, response) => response.end('ok')));
  }

  async function listenHere(http: HttpServer): Promise<HttpServer> {
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => {
      http.closeAllConnections();
      return new Promise<void>((resolve) => http.close(() => resolve()));
    });
    return http;
  }

  async function acceptRaw(
    url: string,
    options: { autoPong?: boolean } = {},
  ): Promise<{ ws: WebSocket; connection: Connection }> {
    const accepted = nextEvent(server, 'connection', MS);
    const ws = await rawWs(url, options);
    cleanups.push(() => ws.terminate());
    const [connection] = await accepted;
    return { ws, connection };
  }

  async function stillServes(url: string): Promise<void> {
    const accepted = nextEvent(server, 'connection', MS);
    const client = await createWsClient().connect(url, { timeoutMs: MS });
    const [serverSide] = await accepted;
    const got = nextEvent(serverSide, 'message', MS);
    client.send(Uint8Array.of(4, 5, 6), 'unreliable');
    const [data, channel] = await got;
    expect([...data]).toEqual([4, 5, 6]);
    expect(channel).toBe('unreliable');
    client.close();
  }

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await withTimeout(server.close(), MS, 'server.close()');
  });

  it('closes a peer that sends an oversize message with MessageTooLarge and keeps serving', async () => {
    const url = await start({ maxMessageBytes: 1024 });
    const { ws, connection } = await acceptRaw(url);
    const errors: TickwireError[] = [];
    connection.on('error', (error) => errors.push(error));
    const closed = nextEvent(connection, 'close', MS);
    const rawClosed = rawClose(ws);
    ws.send(new Uint8Array(1 + 1025));
    const [info] = await closed;
    expect(info.code).toBe(CloseCode.MessageTooLarge);
    expect(info.local).toBe(true);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.MESSAGE_TOO_LARGE]);
    expect(await rawClosed).toBe(CloseCode.MessageTooLarge);
    expect(server.connections.size).toBe(0);
    await stillServes(url);
  });

  it('enforces a maxMessageBytes smaller than a control message', async () => {
    const url = await start({ maxMessageBytes: 10 });
    const { ws, connection } = await acceptRaw(url);
    const closed = nextEvent(connection, 'close', MS);
    const rawClosed = rawClose(ws);
    ws.send(new Uint8Array(1 + 50));
    expect((await closed)[0].code).toBe(CloseCode.MessageTooLarge);
    expect(await rawClosed).toBe(CloseCode.MessageTooLarge);
  });

  it('accepts a message of exactly maxMessageBytes', async () => {
    const url = await start({ maxMessageBytes: 1024 });
    const { ws, connection } = await acceptRaw(url);
    const got = nextEvent(connection, 'message', MS);
    const message = new Uint8Array(1 + 1024).fill(3);
    message[0] = FrameKind.Reliable;
    ws.send(message);
    const [data] = await got;
    expect(data.byteLength).toBe(1024);
  });

  it.each([
    ['without', false],
    ['with', true],
  ])('sends every length intact and in order, %s permessage-deflate', async (_, deflate) => {
    const url = await start({ perMessageDeflate: deflate });
    const { ws, connection } = await acceptRaw(url);
    // Each size of the WebSocket length field: 7 bits, 16 bits (from 126), 64 bits (from 65536).
    const sizes = [0, 1, 124, 125, 126, 1000, 65_534, 65_535, 65_536, 70_000];
    const frames: Buffer[] = [];
    const all = new Promise<void>((resolve) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        expect(isBinary).toBe(true);
        if (data[0] === FrameKind.Reliable || data[0] === FrameKind.Unreliable) frames.push(data);
        if (frames.length === sizes.length) resolve();
      });
    });
    // Unreliable sends are dropped while compression queues the big ones: reliable only then.
    const kindOf = (i: number) =>
      deflate || i % 2 === 0 ? FrameKind.Reliable : FrameKind.Unreliable;
    sizes.forEach((size, i) => {
      const channel = kindOf(i) === FrameKind.Reliable ? 'reliable' : 'unreliable';
      connection.send(new Uint8Array(size).fill(i + 1), channel);
    });
    await withTimeout(all, MS, 'every message');
    expect(frames.map((frame) => frame.length - 1)).toEqual(sizes);
    frames.forEach((frame, i) => {
      expect(frame[0]).toBe(kindOf(i));
      expect(frame.subarray(1).every((byte) => byte === i + 1)).toBe(true);
    });
  });

  it('calls message listeners in order, once ones once, as they were when delivery started', async () => {
    const url = await start();
    const accepted = nextEvent(server, 'connection', MS);
    const client = await createWsClient().connect(url, { timeoutMs: MS });
    cleanups.push(() => client.close());
    const [connection] = await accepted;
    const calls: string[] = [];
    const failure = new Error('listener bug');
    const first = (data: Uint8Array) => {
      calls.push(`first ${data[0]}`);
      // Added during delivery: hears the next message, not this one.
      if (data[0] === 1) connection.on('message', (next) => calls.push(`added ${next[0]}`));
    };
    const removedOnce = () => calls.push('never');
    connection.on('message', first);
    connection.once('message', (data) => calls.push(`once ${data[0]}`));
    connection.once('message', removedOnce);
    connection.off('message', removedOnce);
    const offThrowing = connection.on('message', () => {
      throw failure;
    });
    const caught = catchMicrotaskErrors();
    try {
      const got = nextEvent(connection, 'message', MS);
      client.send(Uint8Array.of(1), 'reliable');
      await got;
      await Promise.resolve();
    } finally {
      caught.restore();
    }
    offThrowing();
    connection.off('message', first);
    const again = nextEvent(connection, 'message', MS);
    client.send(Uint8Array.of(2), 'unreliable');
    await again;
    expect(calls).toEqual(['first 1', 'once 1', 'added 2']);
    expect(caught.thrown).toEqual([failure]);
  });

  it('closes a peer that sends an unknown kind with ProtocolError, or text with 1003', async () => {
    const url = await start();
    const first = await acceptRaw(url);
    const error = nextEvent(first.connection, 'error', MS);
    const rawClosed = rawClose(first.ws);
    first.ws.send(Uint8Array.of(0x7f, 1, 2));
    expect((await error)[0].code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(await rawClosed).toBe(CloseCode.ProtocolError);

    const second = await acceptRaw(url);
    const closed = nextEvent(second.connection, 'close', MS);
    second.ws.send('hello');
    expect((await closed)[0].code).toBe(CloseCode.UnsupportedData);
    await stillServes(url);
  });

  it('refuses upgrades that verifyUpgrade rejects, with a typed error on the client', async () => {
    const url = await start({
      verifyUpgrade: async (request) => {
        const token = request.headers['x-token'];
        if (token === 'good') return true;
        if (token === 'expired') return { code: CloseCode.Unauthorized, reason: 'token expired' };
        if (token === 'banned') return { code: 403, reason: 'banned' };
        return false;
      },
    });
    const connectWith = (token: string) =>
      createWsClient({ headers: { 'x-token': token } }).connect(url, { timeoutMs: MS });

    const missing = await caught(connectWith('none'));
    expect(isTickwireError(missing, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((missing as TickwireError).details).toMatchObject({ statusCode: 401 });

    const banned = await caught(connectWith('banned'));
    expect((banned as TickwireError).details).toMatchObject({ statusCode: 403, reason: 'banned' });

    const expired = await caught(connectWith('expired'));
    expect(isTickwireError(expired, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((expired as TickwireError).details).toMatchObject({
      closeCode: CloseCode.Unauthorized,
      reason: 'token expired',
    });

    const good = await connectWith('good');
    expect(good.state).toBe('open');
    expect(server.connections.size).toBe(1);
  });

  it('reports a throwing verifyUpgrade as a server error and answers HTTP 500', async () => {
    const url = await start({
      verifyUpgrade: () => {
        throw new Error('database down');
      },
    });
    const serverError = nextEvent(server, 'error', MS);
    const error = await caught(createWsClient().connect(url, { timeoutMs: MS }));
    expect((error as TickwireError).details).toMatchObject({ statusCode: 500 });
    expect((await serverError)[0].message).toContain('database down');
  });

  it('checks the Origin header against allowedOrigins', async () => {
    const url = await start({ allowedOrigins: ['https://game.example'] });
    const foreign = await caught(
      createWsClient({ origin: 'https://evil.example' }).connect(url, { timeoutMs: MS }),
    );
    expect((foreign as TickwireError).details).toMatchObject({ statusCode: 403 });
    const allowed = await createWsClient({ origin: 'https://game.example' }).connect(url, {
      timeoutMs: MS,
    });
    expect(allowed.state).toBe('open');
  });

  it('attaches to an existing HTTP server on a path and leaves it running on close', async () => {
    const http = await yourHttpServer();
    const url = await start({ server: http, path: '/game' });
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/game$/);
    const client = await createWsClient().connect(url, { timeoutMs: MS });
    expect(client.state).toBe('open');
    const elsewhere = await caught(
      createWsClient().connect(url.replace('/game', '/other'), { timeoutMs: MS }),
    );
    expect((elsewhere as TickwireError).details).toMatchObject({ statusCode: 404 });
    const closed = nextEvent(client, 'close', MS);
    await server.close();
    expect((await closed)[0].code).toBe(CloseCode.GoingAway);
    expect(http.listening).toBe(true);
  });

  it('refuses clients beyond maxConnections with ServerFull', async () => {
    const url = await start({ maxConnections: 1 });
    const first = await createWsClient().connect(url, { timeoutMs: MS });
    const error = await caught(createWsClient().connect(url, { timeoutMs: MS }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((error as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
    expect(first.state).toBe('open');
  });

  it('counts upgrades still being verified toward maxConnections', async () => {
    const url = await startWithStalledUpgrade({ maxConnections: 1 }, () => true);
    const error = await caught(createWsClient().connect(url, { timeoutMs: MS }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((error as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
    expect(server.connections.size).toBe(0);
  });

  it('refuses upgrades from one address beyond maxHandshakesPerAddress while verifying', async () => {
    const url = await startWithStalledUpgrade({ maxHandshakesPerAddress: 1 }, () =>
      Promise.resolve(true),
    );
    const error = await caught(createWsClient().connect(url, { timeoutMs: MS }));
    expect((error as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
  });

  it.each([
    ['maxHandshakesPerAddress', { maxHandshakesPerAddress: 2 }],
    ['maxConnections', { maxConnections: 2 }],
  ] as const)(
    'counts sockets that sent no upgrade request yet toward %s, dropping those beyond',
    async (_, limits) => {
      const url = await start({ ...limits, handshakeTimeoutMs: 30_000 });
      const idle: Socket[] = [];
      cleanups.push(() => {
        for (const socket of idle) socket.destroy();
      });
      // Two idle sockets fill the limit: a client over it is told ServerFull.
      for (let i = 0; i < 2; i++) idle.push(await idleSocket(url));
      const refused = await caught(createWsClient().connect(url, { timeoutMs: MS }));
      expect((refused as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
      // A third is let in (its upgrade would be told ServerFull), a fourth is dropped at once.
      for (let i = 0; i < 2; i++) idle.push(await idleSocket(url));
      await socketClosed(idle[3]!);
      expect(idle.slice(0, 3).map((socket) => socket.destroyed)).toEqual([false, false, false]);
    },
  );

  it('drops a socket that sends no request within handshakeTimeoutMs', async () => {
    const url = await start({ handshakeTimeoutMs: 200 });
    const socket = await idleSocketHere(url);
    await socketClosed(socket);
    await stillServes(url);
  });

  it('with limitIdleSockets, limits and times out the idle sockets of a server of yours, and releases those that make a request', async () => {
    const http = await yourHttpServer();
    const url = await start({
      server: http,
      path: '/game',
      limitIdleSockets: true,
      maxHandshakesPerAddress: 2,
      handshakeTimeoutMs: 300,
    });
    const base = url.replace(/^ws:/, 'http:').replace('/game', '');
    const idle: Socket[] = [];
    cleanups.push(() => {
      for (const socket of idle) socket.destroy();
    });
    // Plain requests on kept-alive sockets leave them uncounted: they fill no limit.
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${base}/health`)).text()).toBe('ok');
    // Two idle sockets fill the per-address limit, a third is let in, a fourth dropped at once.
    for (let i = 0; i < 4; i++) idle.push(await idleSocket(url));
    await socketClosed(idle[3]!);
    expect(idle.slice(0, 3).map((socket) => socket.destroyed)).toEqual([false, false, false]);
    // The idle ones are dropped after handshakeTimeoutMs; then the server serves again.
    for (const socket of idle.slice(0, 3)) await socketClosed(socket);
    const client = await createWsClient().connect(url, { timeoutMs: MS });
    expect(client.state).toBe('open');
    client.close();
  });

  it('with limitIdleSockets, close() leaves the sockets of a server of yours that sent no request yet to it', async () => {
    const http = await yourHttpServer();
    const time = createManualTime();
    const url = await start({
      server: http,
      limitIdleSockets: true,
      handshakeTimeoutMs: 100,
      time,
    });
    // Our 'connection' listener runs after the transport's: the socket is counted by then.
    const connected = onceEvent(http, 'connection', 'connection');
    const socket = await idleSocketHere(url);
    await connected;
    await server.close();
    // The transport is gone: neither its close nor its idle timer may cut the socket off.
    time.advance(1_000);
    const response = received(socket);
    socket.write('GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    await socketClosed(socket);
    expect(response()).toMatch(/^HTTP\/1\.1 200 /);
    expect(response().endsWith('ok')).toBe(true);
  });

  it('with limitIdleSockets, releases a socket whose request your server takes through checkContinue', async () => {
    const http = createHttpServer((_request, response) => response.end('ok'));
    let continued = (): void => {};
    const gotContinue = new Promise<void>((resolve) => {
      continued = resolve;
    });
    http.on('checkContinue', (request, response) => {
      response.writeContinue();
      continued();
      request.resume();
      request.on('end', () => response.end('ok'));
    });
    await listenHere(http);
    const time = createManualTime();
    const url = await start({
      server: http,
      limitIdleSockets: true,
      handshakeTimeoutMs: 100,
      time,
    });
    const socket = await idleSocketHere(url);
    const response = received(socket);
    socket.write(
      'POST /upload HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n' +
        'Connection: close\r\n\r\n',
    );
    await gotContinue;
    // The body takes longer than handshakeTimeoutMs: the request has begun, the socket is not idle.
    time.advance(1_000);
    socket.write('hi');
    await socketClosed(socket);
    expect(response()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(response().endsWith('ok')).toBe(true);
  });

  it('refuses a second listen() while the first is under way, and a close() meanwhile leaves nothing listening', async () => {
    server = createWsServer();
    const first = server.listen();
    await expect(server.listen()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
    await stillServes((await first).url);
    const other = createWsServer();
    const starting = other.listen();
    await other.close();
    await expect(starting).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(other.address()).toBeNull();
  });

  it('after a failed listen() on a server of yours, listens again with its listeners attached once', async () => {
    const blocker = await yourHttpServer();
    const { port } = blocker.address() as AddressInfo;
    const http = createHttpServer((_request, response) => response.end('ok'));
    http.on('error', () => {});
    server = createWsServer({
      server: http,
      limitIdleSockets: true,
      maxHandshakesPerAddress: 1,
      handshakeTimeoutMs: 30_000,
    });
    const failing = server.listen();
    http.listen(port, '127.0.0.1');
    await expect(failing).rejects.toMatchObject({ code: ErrorCode.ADDRESS_IN_USE });
    await listenHere(http);
    const url = (await server.listen()).url;
    // Counted once each: the first fills the limit, the second is the one let in over it.
    const idle = [await idleSocketHere(url), await idleSocketHere(url)];
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(idle.map((socket) => socket.destroyed)).toEqual([false, false]);
  });

  it('without limitIdleSockets, leaves the sockets of a server of yours alone', async () => {
    const http = await yourHttpServer();
    const url = await start({ server: http, maxHandshakesPerAddress: 1, handshakeTimeoutMs: 100 });
    const idle: Socket[] = [];
    cleanups.push(() => {
      for (const socket of idle) socket.destroy();
    });
    for (let i = 0; i < 3; i++) idle.push(await idleSocket(url));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(idle.map((socket) => socket.destroyed)).toEqual([false, false, false]);
  });

  it('closes a peer that stops answering pings with Timeout', async () => {
    const url = await start({ heartbeatIntervalMs: 20, heartbeatTimeoutMs: 60 });
    const { connection } = await acceptRaw(url, { autoPong: false });
    const [info] = await nextEvent(connection, 'close', MS);
    expect(info).toMatchObject({ code: CloseCode.Timeout, local: true });
    expect(connection.stats.rttMs).toBe(0);
  });

  it('measures RTT from the pongs of its pings', async () => {
    const url = await start({ heartbeatIntervalMs: 20, heartbeatTimeoutMs: MS });
    const { connection } = await acceptRaw(url);
    await vi.waitFor(() => expect(connection.stats.rttMs).toBeGreaterThan(0), { timeout: MS });
    expect(connection.state).toBe('open');
  });

  it('drops and counts unreliable sends while the peer does not read, never queueing them', async () => {
    const url = await start();
    const { connection } = await acceptStalled(url);
    const message = new Uint8Array(1024);
    let dropped = 0;
    for (let i = 0; i < 100_000 && dropped < 100; i++) {
      if (!connection.send(message, 'unreliable')) dropped++;
      expect(connection.bufferedAmount).toBeLessThanOrEqual(65_536 + 1024 + 16);
    }
    expect(dropped).toBe(100);
    expect(connection.stats.unreliableDropped).toBe(100);
    expect(connection.state).toBe('open');
  });

  it('answers ping messages without growing the send buffer of a peer that does not read', async () => {
    const url = await start();
    const { socket, connection } = await acceptStalled(url);
    // A masked binary frame (mask key 0) carrying a kind-2 ping, as browsers send them.
    const ping = Uint8Array.of(0x82, 0x80 | 9, 0, 0, 0, 0, FrameKind.Ping, 0, 0, 0, 0, 0, 0, 0, 0);
    const chunk = new Uint8Array(ping.length * 100_000);
    for (let i = 0; i < 100_000; i++) chunk.set(ping, i * ping.length);
    let most = 0;
    // 15 MB of pings: far more than the kernel's buffers take, so unread pongs pile up here.
    for (let i = 0; i < 10; i++) {
      // Each chunk is 100,000 frames for the server to read: on a CI machine busy with other
      // packages' tests, more than MS.
      await withTimeout(
        new Promise<void>((resolve) => socket.write(chunk, () => resolve())),
        4 * MS,
        'write pings',
      );
      most = Math.max(most, connection.bufferedAmount);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    most = Math.max(most, connection.bufferedAmount);
    expect(most).toBeLessThanOrEqual(65_536 + 16);
    expect(connection.state).toBe('open');
  });

  it('closes with Backpressure when reliable sends outgrow maxBufferedBytes', async () => {
    const url = await start({ maxBufferedBytes: 256 * 1024, maxMessageBytes: 16 * 1024 });
    const { connection } = await acceptStalled(url);
    const closed = nextEvent(connection, 'close', MS);
    const message = new Uint8Array(16 * 1024);
    let accepting = true;
    for (let i = 0; i < 20_000 && accepting; i++) accepting = connection.send(message);
    expect(accepting).toBe(false);
    expect((await closed)[0]).toMatchObject({ code: CloseCode.Backpressure, local: true });
    expect(server.connections.size).toBe(0);
  });

  it('fails listen with ADDRESS_IN_USE on a taken port', async () => {
    const url = await start();
    const second = createWsServer({ port: Number(new URL(url).port) });
    await expect(second.listen()).rejects.toMatchObject({ code: ErrorCode.ADDRESS_IN_USE });
    await second.close();
  });
});
