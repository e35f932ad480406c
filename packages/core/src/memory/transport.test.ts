import { describe, expect, it } from 'vitest';
import { conditionConnection } from '../conditioned-connection.js';
import { ErrorCode, isTickwireError } from '../errors.js';
import { testTransport } from '../testing/transport-suite.js';
import { nextEvent } from '../testing/wait.js';
import type { ClientTransport } from '../transport.js';
import {
  createMemoryClient,
  createMemoryConnectionPair,
  createMemoryNetwork,
  createMemoryServer,
} from './transport.js';

testTransport('memory', () => {
  const network = createMemoryNetwork();
  return {
    server: createMemoryServer({ network, maxMessageBytes: 65_536 }),
    client: createMemoryClient({ network }),
    maxMessageBytes: 65_536,
  };
});

// The same contract must hold through the link conditioner (real time, small delays, loss).
testTransport('memory through a conditioned client', () => {
  const network = createMemoryNetwork();
  const inner = createMemoryClient({ network });
  let seed = 1;
  const client: ClientTransport = {
    connect: async (url, options) =>
      conditionConnection(await inner.connect(url, options), {
        seed: seed++,
        outbound: { latencyMs: 3, jitterMs: 2, lossRate: 0.1, reorderRate: 0.1, reorderDelayMs: 4 },
        inbound: { latencyMs: 3, jitterMs: 2, lossRate: 0.1, duplicateRate: 0.1 },
      }),
  };
  return {
    server: createMemoryServer({ network, maxMessageBytes: 65_536 }),
    client,
    maxMessageBytes: 65_536,
  };
});

describe('memory transport', () => {
  it('copies a Node Buffer on send (Buffer.slice is a view, not a copy)', async () => {
    const [a, b] = createMemoryConnectionPair();
    const got = nextEvent(b, 'message');
    const buffer = Buffer.from([1, 2, 3]);
    a.send(buffer);
    buffer.fill(9);
    expect(Array.from((await got)[0])).toEqual([1, 2, 3]);
  });

  it('delivers what the peer queued before it learnt of the close', async () => {
    const [a, b] = createMemoryConnectionPair();
    const atA: number[] = [];
    a.on('message', (data) => atA.push(data[0]!));
    const closed = nextEvent(a, 'close');
    a.send(new Uint8Array([1]));
    b.send(new Uint8Array([42]));
    a.close();
    await closed;
    expect(atA).toEqual([42]);
  });

  it('keeps delivering and closes cleanly when a listener throws', async () => {
    const [a, b] = createMemoryConnectionPair();
    const seen: number[] = [];
    const errors: unknown[] = [];
    const original = globalThis.queueMicrotask;
    b.on('message', (data) => {
      seen.push(data[0]!);
      if (data[0] === 1) throw new Error('listener bug');
    });
    const closed = nextEvent(b, 'close');
    // Route the rethrown listener error somewhere the test can see it.
    globalThis.queueMicrotask = (task) =>
      original(() => {
        try {
          task();
        } catch (error) {
          errors.push(error);
        }
      });
    try {
      for (const n of [1, 2, 3]) a.send(new Uint8Array([n]));
      a.close();
      await closed;
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(a.state).toBe('closed');
    expect(b.state).toBe('closed');
    expect(a.bufferedAmount).toBe(0);
    expect(errors).toHaveLength(1);
  });

  it.each(['on', 'once'] as const)(
    'starts client delivery as soon as a message listener is attached with %s()',
    async (attach) => {
      const network = createMemoryNetwork();
      const server = createMemoryServer({ network });
      const { url } = await server.listen();
      server.on('connection', (connection) => connection.send(new Uint8Array([5])));
      const client = await createMemoryClient({ network }).connect(url);
      const got: number[] = [];
      client[attach]('message', (data) => got.push(data[0]!));
      await Promise.resolve();
      await Promise.resolve();
      expect(got).toEqual([5]);
      expect(network.listening()).toEqual([server.address()!.host]);
      await server.close();
      await server.close();
      expect(network.listening()).toEqual([]);
    },
  );

  it('validates limits when the server or client is created', () => {
    expect(() => createMemoryServer({ maxMessageBytes: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createMemoryClient({ unreliableDropThresholdBytes: Number.NaN })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createMemoryServer({ network: {} as never })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('delivers what the server sends in its connection handler to the awaiting client', async () => {
    const network = createMemoryNetwork();
    const server = createMemoryServer({ network });
    const { url } = await server.listen();
    server.on('connection', (connection) => connection.send(new Uint8Array([1, 2, 3])));
    const client = await createMemoryClient({ network }).connect(url);
    const [data] = await nextEvent(client, 'message');
    expect(Array.from(data)).toEqual([1, 2, 3]);
    await server.close();
  });

  it('refuses clients beyond maxConnections with CONNECT_FAILED', async () => {
    const network = createMemoryNetwork();
    const server = createMemoryServer({ network, maxConnections: 1 });
    const { url } = await server.listen();
    const client = createMemoryClient({ network });
    await client.connect(url);
    await expect(client.connect(url)).rejects.toMatchObject({ code: ErrorCode.CONNECT_FAILED });
    await server.close();
  });

  it('rejects a taken name, a bad URL, an aborted connect and bad limits', async () => {
    const network = createMemoryNetwork();
    await createMemoryServer({ network, name: 'arena' }).listen();
    await expect(createMemoryServer({ network, name: 'arena' }).listen()).rejects.toMatchObject({
      code: ErrorCode.ADDRESS_IN_USE,
    });
    const client = createMemoryClient({ network });
    await expect(client.connect('ws://arena')).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    const controller = new AbortController();
    controller.abort();
    await expect(
      client.connect('memory://arena', { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: ErrorCode.CONNECT_FAILED,
    });
    expect(() => createMemoryServer({ maxConnections: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createMemoryConnectionPair({ maxMessageBytes: -1 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('listen() twice returns the same address', async () => {
    const server = createMemoryServer({ network: createMemoryNetwork() });
    const first = await server.listen();
    expect(await server.listen()).toBe(first);
    await server.close();
  });

  it('a pair delivers both ways and rejects a non-Uint8Array payload', async () => {
    const [a, b] = createMemoryConnectionPair();
    const atB = nextEvent(b, 'message');
    a.send(new Uint8Array([9]), 'unreliable');
    const [data, channel] = await atB;
    expect(Array.from(data)).toEqual([9]);
    expect(channel).toBe('unreliable');
    expect(() => a.send('text' as unknown as Uint8Array)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('drops unreliable sends over the buffer threshold, counts them, keeps reliable ones', async () => {
    const [a, b] = createMemoryConnectionPair({ unreliableDropThresholdBytes: 1000 });
    let reliable = 0;
    let unreliable = 0;
    b.on('message', (_data, channel) => (channel === 'reliable' ? reliable++ : unreliable++));
    const chunk = new Uint8Array(400);
    const accepted = [
      a.send(chunk, 'unreliable'),
      a.send(chunk, 'unreliable'),
      a.send(chunk, 'unreliable'),
    ];
    a.send(chunk, 'unreliable');
    a.send(chunk, 'reliable');
    expect(accepted).toEqual([true, true, true]);
    expect(a.stats.unreliableDropped).toBe(1);
    expect(a.bufferedAmount).toBe(1600);
    const closed = nextEvent(b, 'close');
    a.close();
    await closed;
    expect(reliable).toBe(1);
    expect(unreliable).toBe(3);
  });

  it('does not deliver to a closed connection and reports the error path', async () => {
    const [a, b] = createMemoryConnectionPair();
    const closed = nextEvent(a, 'close');
    b.close(4001, 'version');
    const [info] = await closed;
    expect(info).toEqual({ code: 4001, reason: 'version', local: false });
    let caught: unknown;
    try {
      a.send(new Uint8Array(1));
    } catch (error) {
      caught = error;
    }
    expect(isTickwireError(caught, ErrorCode.CONNECTION_CLOSED)).toBe(true);
  });
});
