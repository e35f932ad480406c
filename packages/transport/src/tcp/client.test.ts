import { createServer, type Server, type Socket } from 'node:net';
import { CloseCode, ErrorCode, isTickwireError, type ServerTransport } from '@tickwire/core';
import { nextEvent, withTimeout } from '@tickwire/core/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FrameKind, HELLO_BODY_BYTES } from '../shared/wire.js';
import { caught, MS } from '../test-support.js';
import { encodeFrame } from './frame.js';
import { createTcpClient, createTcpServer } from './index.js';

/** A raw TCP server whose reaction to each new socket the test decides. */
async function rawServer(
  onSocket: (socket: Socket) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `tcp://127.0.0.1:${port}` };
}

function hello(version = 1): Uint8Array {
  const body = new Uint8Array(HELLO_BODY_BYTES);
  body[0] = version;
  new DataView(body.buffer).setUint32(1, 1 << 20);
  return encodeFrame(FrameKind.Hello, body);
}

describe('tcp client', () => {
  const cleanups: Array<() => Promise<void> | void> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function raw(onSocket: (socket: Socket) => void): Promise<string> {
    const sockets = new Set<Socket>();
    const { server, url } = await rawServer((socket) => {
      sockets.add(socket);
      onSocket(socket);
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    );
    return url;
  }

  async function real(
    options: Parameters<typeof createTcpServer>[0] = {},
  ): Promise<ServerTransport> {
    const server = createTcpServer(options);
    await server.listen();
    cleanups.push(() => server.close());
    return server;
  }

  it('rejects with CONNECT_FAILED when nothing listens', async () => {
    const server = createTcpServer();
    const { url } = await server.listen();
    await server.close();
    const error = await caught(createTcpClient().connect(url, { timeoutMs: MS }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
  });

  it('rejects with TIMEOUT when the server never completes the handshake', async () => {
    const url = await raw(() => {});
    const error = await caught(createTcpClient().connect(url, { timeoutMs: 100 }));
    expect(isTickwireError(error, ErrorCode.TIMEOUT)).toBe(true);
  });

  it('rejects with CONNECT_FAILED when aborted, before or during the attempt', async () => {
    const url = await raw(() => {});
    const client = createTcpClient();
    const early = new AbortController();
    early.abort();
    expect(
      isTickwireError(
        await caught(client.connect(url, { signal: early.signal })),
        ErrorCode.CONNECT_FAILED,
      ),
    ).toBe(true);
    const late = new AbortController();
    const attempt = caught(client.connect(url, { signal: late.signal, timeoutMs: MS }));
    late.abort();
    expect(isTickwireError(await attempt, ErrorCode.CONNECT_FAILED)).toBe(true);
  });

  it('rejects a URL that is not tcp://host:port with INVALID_ARGUMENT', async () => {
    for (const url of ['http://127.0.0.1:80', 'tcp://127.0.0.1', 'tcp://127.0.0.1:99999']) {
      const error = await caught(createTcpClient().connect(url));
      expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
  });

  it('rejects a server that speaks another wire version', async () => {
    const url = await raw((socket) => socket.write(hello(9)));
    const error = await caught(createTcpClient().connect(url, { timeoutMs: MS }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((error as { details?: unknown }).details).toMatchObject({
      closeCode: CloseCode.VersionMismatch,
    });
  });

  it('closes with Timeout when the server stops answering pings', async () => {
    const url = await raw((socket) => socket.write(hello()));
    const client = createTcpClient({ heartbeatIntervalMs: 20, heartbeatTimeoutMs: 60 });
    const connection = await client.connect(url, { timeoutMs: MS });
    const [info] = await nextEvent(connection, 'close', MS);
    expect(info).toMatchObject({ code: CloseCode.Timeout, local: true });
  });

  it('measures the round-trip time from its pings', async () => {
    const server = await real();
    const connection = await createTcpClient({ heartbeatIntervalMs: 10 }).connect(
      server.address()?.url ?? '',
      { timeoutMs: MS },
    );
    await vi.waitFor(() => expect(connection.stats.rttMs).toBeGreaterThan(0), { timeout: MS });
    expect(connection.stats.packetsIn).toBeGreaterThan(0);
    connection.close();
  });

  it('delivers messages the server sent as it accepted, to listeners attached after connect', async () => {
    const server = await real();
    server.on('connection', (connection) => {
      for (let i = 0; i < 3; i++) connection.send(Uint8Array.of(i));
      connection.close(CloseCode.Kicked, 'bye');
    });
    const connection = await createTcpClient().connect(server.address()?.url ?? '', {
      timeoutMs: MS,
    });
    const events: string[] = [];
    connection.on('message', (data) => events.push(`m${data[0]}`));
    const closed = nextEvent(connection, 'close', MS);
    const [info] = await closed;
    events.push(`close ${info.code} ${info.reason}`);
    expect(events).toEqual(['m0', 'm1', 'm2', `close ${CloseCode.Kicked} bye`]);
  });

  it('lowers maxMessageBytes to what the server accepts', async () => {
    const server = await real({ maxMessageBytes: 1000 });
    const connection = await createTcpClient({ maxMessageBytes: 5000 }).connect(
      server.address()?.url ?? '',
      { timeoutMs: MS },
    );
    expect(connection.maxMessageBytes).toBe(1000);
    expect(() => connection.send(new Uint8Array(1001))).toThrow(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }),
    );
    const done = withTimeout(
      new Promise<void>((resolve) => connection.once('close', () => resolve())),
      MS,
      'close',
    );
    connection.close();
    await done;
  });
});
