import { CloseCode, ErrorCode, isTickwireError, type ServerTransport } from '@tickwire/core';
import { nextEvent } from '@tickwire/core/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { FrameKind, HELLO_BODY_BYTES, writeHelloBody } from '../shared/wire.js';
import { caught, MS } from '../test-support.js';
import { createWsClient, createWsServer } from './index.js';

function hello(): Uint8Array {
  const frame = new Uint8Array(1 + HELLO_BODY_BYTES);
  frame[0] = FrameKind.Hello;
  writeHelloBody(frame, 1, 1 << 20);
  return frame;
}

describe('ws client (Node)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A plain `ws` server whose behaviour the test decides. */
  async function raw(
    onSocket: (ws: WebSocket) => void,
    options: { autoPong?: boolean } = {},
  ): Promise<string> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: options.autoPong });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      onSocket(ws);
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const client of wss.clients) client.terminate();
          wss.close(() => resolve());
        }),
    );
    const address = wss.address();
    return `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async function real(): Promise<ServerTransport> {
    const server = createWsServer();
    await server.listen();
    cleanups.push(() => server.close());
    return server;
  }

  it('rejects with CONNECT_FAILED when nothing listens', async () => {
    const server = createWsServer();
    const { url } = await server.listen();
    await server.close();
    const error = await caught(createWsClient().connect(url, { timeoutMs: MS }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
  });

  it('rejects with TIMEOUT when the server never sends its hello', async () => {
    const url = await raw(() => {});
    const error = await caught(createWsClient().connect(url, { timeoutMs: 100 }));
    expect(isTickwireError(error, ErrorCode.TIMEOUT)).toBe(true);
  });

  it('rejects with CONNECT_FAILED when aborted', async () => {
    const url = await raw(() => {});
    const controller = new AbortController();
    const attempt = caught(
      createWsClient().connect(url, { signal: controller.signal, timeoutMs: MS }),
    );
    controller.abort();
    expect(isTickwireError(await attempt, ErrorCode.CONNECT_FAILED)).toBe(true);
  });

  it('rejects a URL that is not ws:// or wss:// with INVALID_ARGUMENT', async () => {
    for (const url of ['http://127.0.0.1:80', 'not a url', 'tcp://127.0.0.1:80']) {
      const error = await caught(createWsClient().connect(url));
      expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
  });

  it('rejects a server that sends user messages before its hello', async () => {
    const url = await raw((ws) => ws.send(Uint8Array.of(FrameKind.Reliable, 1)));
    const error = await caught(createWsClient().connect(url, { timeoutMs: MS }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
  });

  it('closes with Timeout when the server stops answering pings', async () => {
    const url = await raw((ws) => ws.send(hello()), { autoPong: false });
    const connection = await createWsClient({
      heartbeatIntervalMs: 20,
      heartbeatTimeoutMs: 60,
    }).connect(url, { timeoutMs: MS });
    const [info] = await nextEvent(connection, 'close', MS);
    expect(info).toMatchObject({ code: CloseCode.Timeout, local: true });
  });

  it('measures the round-trip time from its pings', async () => {
    const server = await real();
    const connection = await createWsClient({ heartbeatIntervalMs: 10 }).connect(
      server.address()?.url ?? '',
      { timeoutMs: MS },
    );
    await vi.waitFor(() => expect(connection.stats.rttMs).toBeGreaterThan(0), { timeout: MS });
    connection.close();
  });

  it('delivers messages the server sent as it accepted, to listeners attached after connect', async () => {
    const server = await real();
    server.on('connection', (connection) => {
      for (let i = 0; i < 3; i++) connection.send(Uint8Array.of(i), 'unreliable');
      connection.close(CloseCode.Kicked, 'bye');
    });
    const connection = await createWsClient().connect(server.address()?.url ?? '', {
      timeoutMs: MS,
    });
    const events: string[] = [];
    connection.on('message', (data, channel) => events.push(`${channel} ${data[0]}`));
    const [info] = await nextEvent(connection, 'close', MS);
    events.push(`close ${info.code} ${info.reason} ${info.local}`);
    expect(events).toEqual([
      'unreliable 0',
      'unreliable 1',
      'unreliable 2',
      `close ${CloseCode.Kicked} bye false`,
    ]);
  });
});
