import { type Channel, ErrorCode } from '@tickwire/core';
import { nextEvent } from '@tickwire/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createUdpClient, createUdpServer, type UdpConnection, type UdpServer } from './index.js';

describe('udp channels and addresses', () => {
  let server: UdpServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  async function pair(host = '127.0.0.1'): Promise<{ client: UdpConnection; peer: UdpConnection }> {
    server = createUdpServer({ host, port: 0 });
    const { url } = await server.listen();
    const accepted = nextEvent(server, 'connection');
    const client = await createUdpClient().connect(url);
    const [peer] = await accepted;
    return { client, peer };
  }

  it('sends on all four channels and reports core channels on arrival', async () => {
    const { client, peer } = await pair();
    const got: [number, Channel][] = [];
    const all = new Promise<void>((resolve) => {
      peer.on('message', (data, channel) => {
        got.push([data[0]!, channel]);
        if (got.length === 4) resolve();
      });
    });
    client.sendOn(new Uint8Array([1]), 'reliable-ordered');
    client.sendOn(new Uint8Array([2]), 'reliable-unordered');
    client.sendOn(new Uint8Array([3]), 'unreliable-sequenced');
    client.sendOn(new Uint8Array([4]), 'unreliable');
    await all;
    expect(got.sort((a, b) => a[0] - b[0])).toEqual([
      [1, 'reliable'],
      [2, 'reliable'],
      [3, 'unreliable'],
      [4, 'unreliable'],
    ]);
    expect(() => client.sendOn(new Uint8Array(1), 'sideways' as 'unreliable')).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => client.sendOn(new Uint8Array(1), 'toString' as 'unreliable')).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('fragments unreliable messages larger than a packet', async () => {
    const { client, peer } = await pair();
    const big = new Uint8Array(20_000).map((_, i) => i & 0xff);
    const got = nextEvent(peer, 'message');
    client.sendOn(big, 'unreliable');
    const [data, channel] = await got;
    expect(channel).toBe('unreliable');
    expect(data).toEqual(big);
  });

  it('works over IPv6 loopback', async () => {
    const { client, peer } = await pair('::1');
    expect(server!.address()?.url).toMatch(/^udp:\/\/\[::1\]:\d+$/);
    const got = nextEvent(peer, 'message');
    client.send(new Uint8Array([6]));
    expect([...(await got)[0]]).toEqual([6]);
    expect(peer.remoteAddress).toMatch(/^\[::1\]:\d+$/);
  });

  it('rejects malformed URLs with INVALID_ARGUMENT', async () => {
    const client = createUdpClient();
    for (const url of [
      'ws://127.0.0.1:1',
      'udp://127.0.0.1',
      'udp://127.0.0.1:70000',
      'udp://:5',
    ]) {
      await expect(client.connect(url)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    }
  });

  it('rejects out-of-range options with INVALID_ARGUMENT', () => {
    expect(() => createUdpServer({ mtuBytes: 100 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createUdpClient({ timeoutMs: 1_000, keepAliveIntervalMs: 1_000 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createUdpServer({ connectTokenKey: new Uint8Array(5) })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createUdpServer({ maxMessageBytes: 64 * 1_048_576, mtuBytes: 256 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
