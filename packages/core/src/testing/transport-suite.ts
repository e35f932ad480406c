import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTickwireError } from '../errors.js';
import { CloseCode } from '../protocol.js';
import type {
  Channel,
  ClientTransport,
  CloseInfo,
  Connection,
  ServerTransport,
  TransportAddress,
} from '../transport.js';
import { nextEvent, withTimeout } from './wait.js';

/** What {@link testTransport} needs: a fresh server (not listening yet) and a client for it. */
export interface TransportHarness {
  server: ServerTransport;
  client: ClientTransport;
  /** Largest message both sides accept; the suite sends one of exactly this size. */
  maxMessageBytes: number;
  /** Extra cleanup after each test (the suite closes the server itself). */
  dispose?: () => Promise<void> | void;
}

/** Options of {@link testTransport}. */
export interface TestTransportOptions {
  /** Ms to wait for any one expected event. @default 5000 */
  eventTimeoutMs?: number;
  /** Largest message the suite sends exactly at the limit (caps huge limits). @default 262144 */
  largeMessageCapBytes?: number;
}

interface Pair {
  client: Connection;
  server: Connection;
}

/** Payload `[seq u32][filler…]` of `size` bytes (at least 4). */
function numbered(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(4, size));
  new DataView(bytes.buffer).setUint32(0, seq);
  for (let i = 4; i < bytes.length; i++) bytes[i] = (seq + i) & 0xff;
  return bytes;
}

function seqOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

function intact(bytes: Uint8Array): boolean {
  const seq = seqOf(bytes);
  for (let i = 4; i < bytes.length; i++) if (bytes[i] !== ((seq + i) & 0xff)) return false;
  return true;
}

/** Collects `count` messages of `channel` (or any) from `connection`. */
function collect(
  connection: Connection,
  count: number,
  ms: number,
  channel?: Channel,
): Promise<Uint8Array[]> {
  const received: Uint8Array[] = [];
  let off = () => {};
  const done = new Promise<Uint8Array[]>((resolve) => {
    off = connection.on('message', (data, ch) => {
      if (channel && ch !== channel) return;
      received.push(data);
      if (received.length === count) resolve(received);
    });
  });
  return withTimeout(done, ms, `${count} messages`).finally(off);
}

/**
 * The conformance suite of `ServerTransport` / `ClientTransport` / `Connection`. Call it in a
 * vitest file of the adapter: `testTransport('ws', async () => ({ server, client, maxMessageBytes }))`.
 */
export function testTransport(
  name: string,
  factory: () => Promise<TransportHarness> | TransportHarness,
  options: TestTransportOptions = {},
): void {
  const ms = options.eventTimeoutMs ?? 5_000;
  const largeCap = options.largeMessageCapBytes ?? 262_144;

  describe(`transport conformance: ${name}`, () => {
    let harness: TransportHarness;
    let address: TransportAddress;

    const connect = async (): Promise<Pair> => {
      const accepted = nextEvent(harness.server, 'connection', ms);
      const client = await withTimeout(
        harness.client.connect(address.url, { timeoutMs: ms }),
        ms,
        'connect',
      );
      const [server] = await accepted;
      return { client, server };
    };

    beforeEach(async () => {
      harness = await factory();
      address = await harness.server.listen();
    });

    afterEach(async () => {
      await withTimeout(harness.server.close(), ms, 'server.close()');
      await harness.dispose?.();
    });

    it('listens on an address and accepts connections that start open', async () => {
      expect(harness.server.address()).toEqual(address);
      expect(typeof address.url).toBe('string');
      const { client, server } = await connect();
      expect(client.state).toBe('open');
      expect(server.state).toBe('open');
      expect(harness.server.connections.has(server)).toBe(true);
      expect(typeof server.remoteAddress).toBe('string');
      expect(server.bufferedAmount).toBeGreaterThanOrEqual(0);
      expect(client.maxMessageBytes).toBeGreaterThanOrEqual(harness.maxMessageBytes);
    });

    it('gives every connection of a server its own id', async () => {
      const pairs = [await connect(), await connect(), await connect()];
      const ids = new Set(pairs.map((p) => p.server.id));
      expect(ids.size).toBe(3);
      expect(harness.server.connections.size).toBe(3);
    });

    it('delivers reliable messages complete and in order, both ways', async () => {
      const { client, server } = await connect();
      const count = 500;
      const atServer = collect(server, count, ms);
      const atClient = collect(client, count, ms);
      for (let i = 0; i < count; i++) {
        client.send(numbered(i, 4 + ((i * 37) % 1400)), 'reliable');
        server.send(numbered(i, 4 + ((i * 53) % 1400)), 'reliable');
      }
      for (const received of [await atServer, await atClient]) {
        expect(received.map(seqOf)).toEqual(Array.from({ length: count }, (_, i) => i));
        expect(received.every(intact)).toBe(true);
      }
    });

    it('uses reliable as the default channel', async () => {
      const { client, server } = await connect();
      const got = nextEvent(server, 'message', ms);
      client.send(numbered(7, 16));
      const [data, channel] = await got;
      expect(seqOf(data)).toBe(7);
      expect(channel).toBe('reliable');
    });

    it('delivers an empty message', async () => {
      const { client, server } = await connect();
      const got = nextEvent(server, 'message', ms);
      client.send(new Uint8Array(0), 'reliable');
      const [data] = await got;
      expect(data.byteLength).toBe(0);
    });

    it('delivers a message of exactly maxMessageBytes intact, both ways', async () => {
      const { client, server } = await connect();
      const size = Math.min(harness.maxMessageBytes, largeCap);
      const big = numbered(42, size);
      const atServer = nextEvent(server, 'message', ms);
      client.send(big, 'reliable');
      const [receivedByServer] = await atServer;
      expect(receivedByServer.byteLength).toBe(size);
      expect(intact(receivedByServer)).toBe(true);
      const atClient = nextEvent(client, 'message', ms);
      server.send(big, 'reliable');
      const [receivedByClient] = await atClient;
      expect(receivedByClient.byteLength).toBe(size);
      expect(intact(receivedByClient)).toBe(true);
    });

    it('rejects a message over maxMessageBytes with MESSAGE_TOO_LARGE and stays usable', async () => {
      const { client, server } = await connect();
      const tooBig = new Uint8Array(client.maxMessageBytes + 1);
      let caught: unknown;
      try {
        client.send(tooBig, 'reliable');
      } catch (error) {
        caught = error;
      }
      expect(isTickwireError(caught, ErrorCode.MESSAGE_TOO_LARGE)).toBe(true);
      expect(() => server.send(new Uint8Array(server.maxMessageBytes + 1), 'unreliable')).toThrow(
        expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }),
      );
      expect(client.state).toBe('open');
      const got = nextEvent(server, 'message', ms);
      client.send(numbered(1, 8), 'reliable');
      expect(seqOf((await got)[0])).toBe(1);
    });

    it('rejects an unknown channel with INVALID_ARGUMENT', async () => {
      const { client } = await connect();
      expect(() => client.send(new Uint8Array(4), 'sideways' as Channel)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
      expect(client.state).toBe('open');
    });

    it('sequences the unreliable channel: never duplicated, never older than a delivered one', async () => {
      const { client, server } = await connect();
      const received: number[] = [];
      server.on('message', (data, channel) => {
        if (channel === 'unreliable') received.push(seqOf(data));
      });
      const count = 200;
      const first = collect(server, 1, ms, 'unreliable');
      for (let i = 0; i < count; i++) client.send(numbered(i, 64), 'unreliable');
      await first;
      // Two reliable round trips after the burst give late unreliable packets their chance.
      for (let marker = 0; marker < 2; marker++) {
        const arrived = collect(server, 1, ms, 'reliable');
        client.send(numbered(count + marker, 8), 'reliable');
        await arrived;
      }
      expect(received.length).toBeGreaterThan(0);
      for (let i = 1; i < received.length; i++) {
        expect(received[i]!).toBeGreaterThan(received[i - 1]!);
      }
      expect(received.every((seq) => seq >= 0 && seq < count)).toBe(true);
    });

    it('keeps reliable order when interleaved with unreliable traffic', async () => {
      const { client, server } = await connect();
      const count = 200;
      const reliable = collect(server, count, ms, 'reliable');
      for (let i = 0; i < count; i++) {
        client.send(numbered(i, 32), 'reliable');
        client.send(numbered(10_000 + i, 32), 'unreliable');
      }
      expect((await reliable).map(seqOf)).toEqual(Array.from({ length: count }, (_, i) => i));
    });

    it('lets the sender reuse its buffer right after send()', async () => {
      const { client, server } = await connect();
      const buffer = numbered(5, 256);
      const got = nextEvent(server, 'message', ms);
      client.send(buffer, 'reliable');
      buffer.fill(0xee);
      const [data] = await got;
      expect(seqOf(data)).toBe(5);
      expect(intact(data)).toBe(true);
    });

    it('hands the listener bytes that later messages do not overwrite', async () => {
      const { client, server } = await connect();
      const received = collect(server, 50, ms);
      for (let i = 0; i < 50; i++) client.send(numbered(i, 100), 'reliable');
      const all = await received;
      expect(all.map(seqOf)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(all.every(intact)).toBe(true);
    });

    it('reports a close with its code and reason on both sides', async () => {
      const { client, server } = await connect();
      const atServer = nextEvent(server, 'close', ms);
      const atClient = nextEvent(client, 'close', ms);
      client.close(4100, 'bye now');
      const [serverInfo] = await atServer;
      const [clientInfo] = await atClient;
      expect(serverInfo).toEqual<CloseInfo>({ code: 4100, reason: 'bye now', local: false });
      expect(clientInfo).toEqual<CloseInfo>({ code: 4100, reason: 'bye now', local: true });
      expect(client.state).toBe('closed');
      expect(server.state).toBe('closed');
      expect(harness.server.connections.has(server)).toBe(false);
    });

    it('closes from the server side too', async () => {
      const { client, server } = await connect();
      const atClient = nextEvent(client, 'close', ms);
      server.close(CloseCode.Kicked, 'kicked');
      const [info] = await atClient;
      expect(info.code).toBe(CloseCode.Kicked);
      expect(info.reason).toBe('kicked');
      expect(info.local).toBe(false);
    });

    it('delivers reliable messages sent before close() ahead of the close', async () => {
      const { client, server } = await connect();
      const order: string[] = [];
      server.on('message', (data) => order.push(`m${seqOf(data)}`));
      const closed = nextEvent(server, 'close', ms);
      for (let i = 0; i < 20; i++) client.send(numbered(i, 200), 'reliable');
      client.close();
      await closed;
      order.push('close');
      expect(order).toEqual([...Array.from({ length: 20 }, (_, i) => `m${i}`), 'close']);
    });

    it('throws CONNECTION_CLOSED on send after close, and close() is idempotent', async () => {
      const { client, server } = await connect();
      const closed = nextEvent(server, 'close', ms);
      const clientClosed = nextEvent(client, 'close', ms);
      const closeEvents: CloseInfo[] = [];
      client.on('close', (info) => closeEvents.push(info));
      client.close();
      client.close(4200, 'again');
      expect(() => client.send(new Uint8Array(4))).toThrow(
        expect.objectContaining({ code: ErrorCode.CONNECTION_CLOSED }),
      );
      await closed;
      await clientClosed;
      client.close();
      expect(closeEvents.length).toBe(1);
      expect(closeEvents[0]!.code).toBe(CloseCode.Normal);
      expect(() => server.send(new Uint8Array(4))).toThrow(
        expect.objectContaining({ code: ErrorCode.CONNECTION_CLOSED }),
      );
    });

    it('rejects an invalid close code with INVALID_ARGUMENT and stays open', async () => {
      const { client } = await connect();
      expect(() => client.close(1005)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
      expect(() => client.close(4000, 'x'.repeat(200))).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
      expect(client.state).toBe('open');
    });

    it('rejects a connect with an aborted signal or a malformed URL with a TickwireError', async () => {
      const controller = new AbortController();
      controller.abort();
      for (const attempt of [
        () => harness.client.connect(address.url, { signal: controller.signal, timeoutMs: ms }),
        () => harness.client.connect('definitely not a url', { timeoutMs: ms }),
      ]) {
        let caught: unknown;
        try {
          await attempt();
        } catch (error) {
          caught = error;
        }
        expect(isTickwireError(caught)).toBe(true);
      }
      expect(harness.server.connections.size).toBe(0);
    });

    it('closes every connection when the server closes, then refuses new ones', async () => {
      const pairs = [await connect(), await connect()];
      const closes = pairs.map((p) => nextEvent(p.client, 'close', ms));
      await harness.server.close();
      for (const [info] of await Promise.all(closes)) expect(info.code).toBe(CloseCode.GoingAway);
      expect(harness.server.connections.size).toBe(0);
      expect(harness.server.address()).toBeNull();
      await harness.server.close();
      let caught: unknown;
      try {
        await harness.client.connect(address.url, { timeoutMs: Math.min(ms, 2_000) });
      } catch (error) {
        caught = error;
      }
      expect(isTickwireError(caught)).toBe(true);
      expect([ErrorCode.CONNECT_FAILED, ErrorCode.TIMEOUT]).toContain(
        (caught as { code: string }).code,
      );
    });

    it('counts messages and payload bytes in stats', async () => {
      const { client, server } = await connect();
      const count = 30;
      const received = collect(server, count, ms);
      for (let i = 0; i < count; i++) client.send(numbered(i, 100), 'reliable');
      await received;
      expect(client.stats.messagesOut).toBeGreaterThanOrEqual(count);
      expect(client.stats.bytesOut).toBeGreaterThanOrEqual(count * 100);
      expect(server.stats.messagesIn).toBeGreaterThanOrEqual(count);
      expect(server.stats.bytesIn).toBeGreaterThanOrEqual(count * 100);
      expect(server.stats.rttMs).toBeGreaterThanOrEqual(0);
    });

    it('keeps many concurrent connections apart', async () => {
      const pairs: Pair[] = [];
      for (let i = 0; i < 10; i++) pairs.push(await connect());
      const echoes = pairs.map((pair, i) => {
        pair.server.on('message', (data) => pair.server.send(data, 'reliable'));
        const got = collect(pair.client, 5, ms);
        for (let k = 0; k < 5; k++) pair.client.send(numbered(i * 100 + k, 48), 'reliable');
        return got;
      });
      const results = await Promise.all(echoes);
      results.forEach((messages, i) => {
        expect(messages.map(seqOf)).toEqual([0, 1, 2, 3, 4].map((k) => i * 100 + k));
      });
    });
  });
}
