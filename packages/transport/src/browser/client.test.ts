import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloseCode, ErrorCode, isTickwireError, type ServerTransport } from '@tickwire/core';
import { nextEvent, withTimeout } from '@tickwire/core/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type WebSocket, WebSocketServer, WebSocket as WsWebSocket } from 'ws';
import { FrameKind, HELLO_BODY_BYTES, writeHelloBody } from '../shared/wire.js';
import { caught, MS } from '../test-support.js';
import { createWsServer, type WsServerOptions } from '../ws/index.js';
import { createBrowserWsClient } from './index.js';

const here = dirname(fileURLToPath(import.meta.url));

function hello(): Uint8Array {
  const frame = new Uint8Array(1 + HELLO_BODY_BYTES);
  frame[0] = FrameKind.Hello;
  writeHelloBody(frame, 1, 1 << 20);
  return frame;
}

/** Every module the browser entry loads, following relative imports. */
function importsOf(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'/g)].map(
      (match) => match[1]!,
    );
    seen.set(file, specifiers);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.'))
        visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  return seen;
}

describe('browser ws client', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  const client = (options: Parameters<typeof createBrowserWsClient>[0] = {}) =>
    createBrowserWsClient({ WebSocket: WsWebSocket, ...options });

  afterEach(async () => {
    vi.unstubAllGlobals();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function real(options: WsServerOptions = {}): Promise<ServerTransport> {
    const server = createWsServer(options);
    await server.listen();
    cleanups.push(() => server.close());
    return server;
  }

  async function raw(onSocket: (ws: WebSocket, pause: () => void) => void): Promise<string> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((done) => wss.once('listening', () => done()));
    wss.on('connection', (ws, request) => {
      ws.on('error', () => {});
      onSocket(ws, () => request.socket.pause());
    });
    cleanups.push(
      () =>
        new Promise<void>((done) => {
          for (const socket of wss.clients) socket.terminate();
          wss.close(() => done());
        }),
    );
    const address = wss.address();
    return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  it('imports no Node module and not ws, directly or through shared code', () => {
    const modules = importsOf(join(here, 'index.ts'));
    expect(modules.size).toBeGreaterThan(2);
    for (const [file, specifiers] of modules) {
      for (const specifier of specifiers) {
        const allowed = specifier === '@tickwire/core' || specifier.startsWith('.');
        expect(allowed, `${file} imports ${specifier}`).toBe(true);
      }
    }
  });

  it('uses the global WebSocket by default', async () => {
    vi.stubGlobal('WebSocket', WsWebSocket);
    const server = await real();
    const connection = await createBrowserWsClient().connect(server.address()?.url ?? '', {
      timeoutMs: MS,
    });
    expect(connection.state).toBe('open');
    connection.close();
  });

  it('measures RTT with app-level pings that the server answers', async () => {
    const server = await real();
    const connection = await client({ heartbeatIntervalMs: 10 }).connect(
      server.address()?.url ?? '',
      {
        timeoutMs: MS,
      },
    );
    await vi.waitFor(() => expect(connection.stats.rttMs).toBeGreaterThan(0), { timeout: MS });
    expect(connection.state).toBe('open');
    connection.close();
  });

  it('closes with Timeout when the server stops answering its pings', async () => {
    const url = await raw((ws) => ws.send(hello()));
    const connection = await client({ heartbeatIntervalMs: 20, heartbeatTimeoutMs: 60 }).connect(
      url,
      { timeoutMs: MS },
    );
    const [info] = await nextEvent(connection, 'close', MS);
    expect(info).toMatchObject({ code: CloseCode.Timeout, local: true });
  });

  it('closes with a code browsers cannot send, and the server reports that code', async () => {
    const server = await real();
    const accepted = nextEvent(server, 'connection', MS);
    const connection = await client().connect(server.address()?.url ?? '', { timeoutMs: MS });
    const [serverSide] = await accepted;
    const atServer = nextEvent(serverSide, 'close', MS);
    const atClient = nextEvent(connection, 'close', MS);
    connection.close(CloseCode.PolicyViolation, 'cheating');
    expect((await atServer)[0]).toEqual({
      code: CloseCode.PolicyViolation,
      reason: 'cheating',
      local: false,
    });
    expect((await atClient)[0]).toEqual({
      code: CloseCode.PolicyViolation,
      reason: 'cheating',
      local: true,
    });
  });

  it('sees the close code of a verifyUpgrade rejection, and a failed HTTP upgrade', async () => {
    const server = await real({
      verifyUpgrade: (request) =>
        request.url?.includes('token=ok')
          ? true
          : request.url?.includes('token=old')
            ? { code: CloseCode.Unauthorized, reason: 'token expired' }
            : false,
    });
    const url = server.address()?.url ?? '';
    const expired = await caught(client().connect(`${url}/?token=old`, { timeoutMs: MS }));
    expect(isTickwireError(expired, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((expired as { details?: unknown }).details).toMatchObject({
      closeCode: CloseCode.Unauthorized,
      reason: 'token expired',
    });
    const refused = await caught(client().connect(`${url}/?token=bad`, { timeoutMs: MS }));
    expect(isTickwireError(refused, ErrorCode.CONNECT_FAILED)).toBe(true);
    const accepted = await client().connect(`${url}/?token=ok`, { timeoutMs: MS });
    expect(accepted.state).toBe('open');
  });

  it('rejects with TIMEOUT without a hello, CONNECT_FAILED when aborted', async () => {
    const url = await raw(() => {});
    expect(
      isTickwireError(await caught(client().connect(url, { timeoutMs: 100 })), ErrorCode.TIMEOUT),
    ).toBe(true);
    const controller = new AbortController();
    const attempt = caught(client().connect(url, { signal: controller.signal, timeoutMs: MS }));
    controller.abort();
    expect(isTickwireError(await attempt, ErrorCode.CONNECT_FAILED)).toBe(true);
  });

  it('drops and counts unreliable sends while the server does not read', async () => {
    const url = await raw((ws, pause) => {
      ws.send(hello());
      pause();
    });
    const connection = await client().connect(url, { timeoutMs: MS });
    const message = new Uint8Array(1024);
    let dropped = 0;
    for (let i = 0; i < 100_000 && dropped < 100; i++) {
      if (!connection.send(message, 'unreliable')) dropped++;
    }
    expect(dropped).toBe(100);
    expect(connection.stats.unreliableDropped).toBe(100);
    expect(connection.bufferedAmount).toBeLessThanOrEqual(65_536 + 1024 + 16);
    expect(connection.state).toBe('open');
  });

  it('answers ping messages only while its send buffer is under unreliableDropThresholdBytes', async () => {
    // A fake WebSocket: the test drives its events and sets its bufferedAmount.
    const sockets: FakeSocket[] = [];
    class FakeSocket {
      binaryType = 'blob';
      bufferedAmount = 0;
      readyState = 1;
      onopen: ((event: unknown) => void) | null = null;
      onmessage: ((event: { data: unknown }) => void) | null = null;
      onclose: ((event: { code: number; reason: string }) => void) | null = null;
      onerror: ((event: unknown) => void) | null = null;
      readonly sent: Uint8Array[] = [];
      constructor() {
        sockets.push(this);
      }
      send(data: Uint8Array): void {
        this.sent.push(data);
      }
      close(): void {
        this.readyState = 3;
      }
    }
    const connecting = createBrowserWsClient({
      WebSocket: FakeSocket,
      heartbeatIntervalMs: 0,
      unreliableDropThresholdBytes: 1_000,
    }).connect('ws://127.0.0.1:1', { timeoutMs: MS });
    const socket = sockets[0]!;
    socket.onopen?.({});
    socket.onmessage?.({ data: hello().slice().buffer });
    const connection = await connecting;
    const ping = new Uint8Array(9);
    ping[0] = FrameKind.Ping;
    const pongs = (): number => socket.sent.filter((frame) => frame[0] === FrameKind.Pong).length;
    socket.onmessage?.({ data: ping.slice().buffer });
    expect(pongs()).toBe(1);
    socket.bufferedAmount = 1_001;
    for (let i = 0; i < 100; i++) socket.onmessage?.({ data: ping.slice().buffer });
    expect(pongs()).toBe(1);
    socket.bufferedAmount = 1_000;
    socket.onmessage?.({ data: ping.slice().buffer });
    expect(pongs()).toBe(2);
    expect(connection.state).toBe('open');
    connection.close();
  });

  it('delivers messages the server sent as it accepted, to listeners attached after connect', async () => {
    const server = await real();
    server.on('connection', (connection) => {
      connection.send(Uint8Array.of(7), 'reliable');
      connection.send(Uint8Array.of(8), 'unreliable');
    });
    const connection = await client().connect(server.address()?.url ?? '', { timeoutMs: MS });
    const received: string[] = [];
    const done = new Promise<void>((settle) =>
      connection.on('message', (data, channel) => {
        received.push(`${channel} ${data[0]}`);
        if (received.length === 2) settle();
      }),
    );
    await withTimeout(done, MS, 'two messages');
    expect(received).toEqual(['reliable 7', 'unreliable 8']);
  });

  it('closes with MessageTooLarge on a message over maxMessageBytes (browsers enforce no limit)', async () => {
    const url = await raw((ws) => {
      ws.send(hello());
      const big = new Uint8Array(1 + 1_001);
      big[0] = FrameKind.Reliable;
      ws.send(big);
    });
    const connection = await client({ maxMessageBytes: 1_000 }).connect(url, { timeoutMs: MS });
    const received: Uint8Array[] = [];
    connection.on('message', (data) => received.push(data));
    const [[error], [info]] = await Promise.all([
      nextEvent(connection, 'error', MS),
      nextEvent(connection, 'close', MS),
    ]);
    expect(isTickwireError(error, ErrorCode.MESSAGE_TOO_LARGE)).toBe(true);
    expect(info).toMatchObject({ code: CloseCode.MessageTooLarge, local: true });
    expect(received).toEqual([]);
  });
});
