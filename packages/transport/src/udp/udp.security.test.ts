import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { CloseCode, ErrorCode, isTickwireError } from '@tickwire/core';
import { nextEvent } from '@tickwire/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createUdpClient,
  createUdpServer,
  generateConnectToken,
  type UdpConnection,
  type UdpServer,
} from './index.js';
import { literalLookup } from './lookup.js';
import {
  CHALLENGE_BYTES,
  COOKIE_BYTES,
  DEFAULT_PROTOCOL_ID,
  HEADER_BYTES,
  PacketType,
  REQUEST_MIN_BYTES,
  SALT_BYTES,
  writeHeader,
  writeU16,
  writeU32,
} from './packet.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A raw socket that records what it receives. */
async function rawSocket(): Promise<{ socket: Socket; replies: Buffer[] }> {
  const socket = createSocket({ type: 'udp4', lookup: literalLookup, recvBufferSize: 1 << 22 });
  const replies: Buffer[] = [];
  socket.on('message', (msg) => replies.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, replies };
}

function request(size = REQUEST_MIN_BYTES, token: Uint8Array | null = null): Buffer {
  const bytes = Buffer.alloc(Math.max(size, HEADER_BYTES + SALT_BYTES + 2 + (token?.length ?? 0)));
  writeHeader(bytes, DEFAULT_PROTOCOL_ID, PacketType.Request);
  bytes.set(randomBytes(SALT_BYTES), HEADER_BYTES);
  if (token) {
    writeU16(bytes, HEADER_BYTES + SALT_BYTES, token.length);
    bytes.set(token, HEADER_BYTES + SALT_BYTES + 2);
  }
  return bytes;
}

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('udp security', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function startServer(options: Parameters<typeof createUdpServer>[0] = {}): Promise<{
    server: UdpServer;
    port: number;
    url: string;
  }> {
    const server = createUdpServer({ host: '127.0.0.1', port: 0, ...options });
    const address = await server.listen();
    cleanups.push(() => server.close());
    return { server, port: address.port, url: address.url };
  }

  it('keeps no state for a spoofed handshake and never replies with more bytes than it got', async () => {
    const { server, port } = await startServer();
    const { socket, replies } = await rawSocket();
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const sent: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const bytes = request();
      sent.push(bytes);
      socket.send(bytes, port, '127.0.0.1');
    }
    // Unpadded requests get no answer at all (they could amplify).
    for (const size of [HEADER_BYTES + SALT_BYTES + 2, 40, REQUEST_MIN_BYTES - 1]) {
      const bytes = request(0).subarray(0, size);
      socket.send(bytes, port, '127.0.0.1');
    }
    // A RESPONSE with a forged cookie is dropped silently.
    const forged = Buffer.alloc(HEADER_BYTES + SALT_BYTES + COOKIE_BYTES + 6);
    writeHeader(forged, DEFAULT_PROTOCOL_ID, PacketType.Response);
    writeU32(forged, HEADER_BYTES + SALT_BYTES + COOKIE_BYTES, 1000);
    socket.send(forged, port, '127.0.0.1');
    await sleep(100);
    expect(replies.length).toBe(20);
    const smallestRequest = Math.min(...sent.map((b) => b.length));
    for (const reply of replies) {
      expect(reply[5]).toBe(PacketType.Challenge);
      expect(reply.length).toBe(CHALLENGE_BYTES);
      expect(reply.length).toBeLessThanOrEqual(smallestRequest);
    }
    expect(server.connections.size).toBe(0);
    expect(server.stats.trackedAddresses).toBe(0);
    expect(server.stats.usedTokenNonces).toBe(0);
    expect(server.stats.challengesSent).toBe(20);
    expect(server.stats.dropped.short).toBe(3);
    expect(server.stats.dropped.badCookie).toBe(1);
  });

  it('rate-limits handshakes per address', async () => {
    const { server, port } = await startServer({ handshakeBurst: 10, handshakeRatePerSec: 1 });
    const { socket, replies } = await rawSocket();
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    for (let i = 0; i < 50; i++) socket.send(request(), port, '127.0.0.1');
    await sleep(100);
    expect(replies.length).toBe(10);
    expect(server.stats.dropped.rateLimited).toBe(40);
  });

  it('refuses connections over maxConnections with ServerFull', async () => {
    const { server, url } = await startServer({ maxConnections: 2 });
    const client = createUdpClient();
    const open: UdpConnection[] = [await client.connect(url), await client.connect(url)];
    cleanups.push(() => {
      for (const c of open) c.close();
    });
    const error = await rejection(client.connect(url, { timeoutMs: 2_000 }));
    expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((error as { details: { closeCode: number } }).details.closeCode).toBe(
      CloseCode.ServerFull,
    );
    expect(server.stats.dropped.full).toBe(1);
    expect(server.connections.size).toBe(2);
  });

  it('closes a connection whose reliable send buffer overflows with Backpressure', async () => {
    const { url } = await startServer();
    const connection = await createUdpClient({
      maxBufferedBytes: 100_000,
      maxMessageBytes: 10_000,
      // Paced at 10 kB/s: after the first burst, sends pile up in the buffer.
      maxSendBytesPerSec: 10_000,
    }).connect(url);
    const closed = nextEvent(connection, 'close', 5_000);
    let accepted = 0;
    for (let i = 0; i < 200; i++) {
      if (connection.state !== 'open') break;
      if (connection.send(new Uint8Array(1_000))) accepted++;
    }
    const [info] = await closed;
    expect(info.code).toBe(CloseCode.Backpressure);
    expect(info.local).toBe(true);
    expect(accepted).toBeGreaterThanOrEqual(100);
    expect(accepted).toBeLessThan(150);
  });

  describe('connect tokens', () => {
    const secretKey = randomBytes(32);
    const token = (options: Partial<Parameters<typeof generateConnectToken>[0]> = {}) =>
      generateConnectToken({ clientId: 'alice', expiresInMs: 10_000, secretKey, ...options });

    it('accept a valid token and expose its client id and user data', async () => {
      const { server, url } = await startServer({ connectTokenKey: secretKey });
      const accepted = nextEvent(server, 'connection');
      const client = await createUdpClient({
        connectToken: token({ userData: new Uint8Array([4, 2]) }),
      }).connect(url);
      cleanups.push(() => client.close());
      const [connection] = await accepted;
      expect((connection as UdpConnection).clientId).toBe('alice');
      expect([...((connection as UdpConnection).userData ?? [])]).toEqual([4, 2]);
      const got = nextEvent(connection, 'message');
      client.send(new Uint8Array([1, 2, 3]));
      expect([...(await got)[0]]).toEqual([1, 2, 3]);
    });

    it('refuse an expired, a tampered, a replayed and a missing token with UNAUTHORIZED', async () => {
      const { server, url } = await startServer({ connectTokenKey: secretKey });
      const expired = token({ wallClock: { now: () => Date.now() - 60_000 } });
      const tampered = token();
      tampered[tampered.length - 5]! ^= 0x01;
      const reused = token();
      const first = await createUdpClient({ connectToken: reused }).connect(url);
      cleanups.push(() => first.close());

      const cases: [string, Uint8Array | undefined, string][] = [
        ['expired', expired, 'expired'],
        ['tampered', tampered, 'invalid'],
        ['replayed', reused, 'replayed'],
        ['missing', undefined, 'invalid'],
      ];
      for (const [name, connectToken, reason] of cases) {
        const error = await rejection(
          createUdpClient(connectToken ? { connectToken } : {}).connect(url, { timeoutMs: 3_000 }),
        );
        expect(isTickwireError(error, ErrorCode.UNAUTHORIZED), name).toBe(true);
        expect((error as { details: { reason: string } }).details.reason, name).toBe(reason);
      }
      expect(server.stats.tokensRejected).toEqual({ expired: 1, invalid: 2, replayed: 1 });
      expect(server.stats.dropped.unauthorized).toBe(4);
      expect(server.connections.size).toBe(1);
    });

    it('refuse a token replayed after its connection closed, while it is still valid', async () => {
      const { server, url } = await startServer({ connectTokenKey: secretKey });
      const once = token();
      const first = await createUdpClient({ connectToken: once }).connect(url);
      const closed = nextEvent(first, 'close');
      first.close();
      await closed;
      await sleep(50);
      const error = await rejection(createUdpClient({ connectToken: once }).connect(url));
      expect(isTickwireError(error, ErrorCode.UNAUTHORIZED)).toBe(true);
      expect(server.stats.tokensRejected.replayed).toBe(1);
    });

    it('refuse a token replayed after close() and listen() again, while it is still valid', async () => {
      const { server, url } = await startServer({ connectTokenKey: secretKey });
      const once = token();
      const first = await createUdpClient({ connectToken: once }).connect(url);
      cleanups.push(() => first.close());
      await server.close();
      const relisten = await server.listen();
      const error = await rejection(
        createUdpClient({ connectToken: once }).connect(relisten.url, { timeoutMs: 3_000 }),
      );
      expect(isTickwireError(error, ErrorCode.UNAUTHORIZED)).toBe(true);
      expect((error as { details: { reason: string } }).details.reason).toBe('replayed');
      expect(server.stats.tokensRejected.replayed).toBe(1);
      expect(server.connections.size).toBe(0);
    });

    it('reject with CONNECT_FAILED when aborted while the token function runs', async () => {
      const { server, url } = await startServer({ connectTokenKey: secretKey });
      const controller = new AbortController();
      const client = createUdpClient({
        connectToken: async () => {
          controller.abort();
          return token();
        },
      });
      const error = await rejection(client.connect(url, { signal: controller.signal }));
      expect(isTickwireError(error, ErrorCode.CONNECT_FAILED)).toBe(true);
      await sleep(50);
      expect(server.connections.size).toBe(0);
      expect(server.stats.connectionsAccepted).toBe(0);
    });

    it('reject a token for another protocol before sending anything', async () => {
      const client = createUdpClient({ connectToken: token({ protocolId: 7 }) });
      const error = await rejection(client.connect('udp://127.0.0.1:9'));
      expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    });
  });
});
