import { type CloseInfo, createRandom } from '@tickwire/core';
import { nextEvent, withTimeout } from '@tickwire/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createUdpClient, createUdpServer, type UdpConnection, type UdpServer } from './index.js';
import { createLossyRelay, type LossyRelay } from './test-relay.js';

/** 100 ms RTT ± 20, 10 % loss, 1 % duplication, 5 % reordered by 20 ms more. */
const badNetwork = {
  latencyMs: 50,
  jitterMs: 10,
  lossRate: 0.1,
  duplicateRate: 0.01,
  reorderRate: 0.05,
  reorderDelayMs: 20,
};

/** `[seq u32][len-dependent filler]`. */
function numbered(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(4, size));
  new DataView(bytes.buffer).setUint32(0, seq);
  for (let i = 4; i < bytes.length; i++) bytes[i] = (seq * 31 + i) & 0xff;
  return bytes;
}

function seqOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

function intact(bytes: Uint8Array): boolean {
  const seq = seqOf(bytes);
  for (let i = 4; i < bytes.length; i++) if (bytes[i] !== ((seq * 31 + i) & 0xff)) return false;
  return true;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('udp over a lossy loopback relay (real sockets, real time)', () => {
  let server: UdpServer;
  let relay: LossyRelay | null = null;
  const connections: UdpConnection[] = [];

  async function setUp(
    serverOptions: Parameters<typeof createUdpServer>[0] = {},
    clientOptions: Parameters<typeof createUdpClient>[0] = {},
    link: Parameters<typeof createLossyRelay>[1] = badNetwork,
  ): Promise<{ client: UdpConnection; peer: UdpConnection }> {
    server = createUdpServer({ host: '127.0.0.1', port: 0, ...serverOptions });
    const address = await server.listen();
    relay = await createLossyRelay(address.port, { seed: 11, ...link });
    const accepted = nextEvent(server, 'connection', 10_000);
    const client = await createUdpClient(clientOptions).connect(relay.url, { timeoutMs: 10_000 });
    const [peer] = await accepted;
    connections.push(client);
    return { client, peer: peer as UdpConnection };
  }

  afterEach(async () => {
    for (const connection of connections.splice(0)) {
      if (connection.state === 'open') connection.close();
    }
    await relay?.close();
    relay = null;
    await server.close();
  });

  it('delivers 10,000 reliable-ordered messages of mixed sizes exactly once, in order, intact', async () => {
    const { client, peer } = await setUp();
    const count = 10_000;
    const random = createRandom(2024);
    const sizes = Array.from({ length: count }, () =>
      random.chance(0.01) ? 16_384 + random.int(65_536 - 16_384) : 1 + random.int(1_000),
    );
    const received: Uint8Array[] = [];
    let duplicates = 0;
    let outOfOrder = 0;
    const done = new Promise<void>((resolve) => {
      peer.on('message', (data, channel) => {
        if (channel !== 'reliable') return;
        const seq = seqOf(data);
        if (seq < received.length) duplicates++;
        else if (seq > received.length) outOfOrder++;
        received.push(data);
        if (received.length === count) resolve();
      });
    });
    const started = Date.now();
    // Flow control on bufferedAmount, as an application would do.
    let next = 0;
    for (let guard = 0; next < count && guard < 20_000; guard++) {
      while (next < count && client.bufferedAmount < 512 * 1024) {
        client.sendOn(numbered(next, sizes[next]!), 'reliable-ordered');
        next++;
      }
      if (next < count) await sleep(5);
    }
    await withTimeout(done, 55_000, '10,000 messages');
    const elapsedMs = Date.now() - started;
    expect(duplicates).toBe(0);
    expect(outOfOrder).toBe(0);
    expect(received.map(seqOf)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(
      received.every((data, i) => data.length === Math.max(4, sizes[i]!) && intact(data)),
    ).toBe(true);
    expect(elapsedMs).toBeLessThan(55_000);
    // The link really was bad, and the reliability layer worked for it.
    expect(relay!.toServer.stats.lost).toBeGreaterThan(100);
    expect(relay!.toServer.stats.duplicated).toBeGreaterThan(0);
    expect(client.stats.retransmissions).toBeGreaterThan(0);
    expect(client.stats.packetsLost).toBeGreaterThan(0);
    expect(client.stats.lossRate).toBeGreaterThan(0);
    expect(client.stats.rttMs).toBeGreaterThan(70);
    expect(client.stats.rttMs).toBeLessThan(200);
    // Nothing arrives twice later either.
    await sleep(300);
    expect(received.length).toBe(count);
  }, 60_000);

  it('never delivers an older unreliable-sequenced message after a newer one', async () => {
    const { client, peer } = await setUp();
    const received: number[] = [];
    peer.on('message', (data, channel) => {
      if (channel === 'unreliable') received.push(seqOf(data));
    });
    const count = 1_000;
    for (let i = 0; i < count; i++) {
      client.sendOn(numbered(i, 40 + (i % 200)), 'unreliable-sequenced');
      if (i % 10 === 9) await sleep(2);
    }
    const marker = nextEvent(peer, 'message', 10_000);
    client.send(numbered(count, 8), 'reliable');
    await marker;
    await sleep(200);
    expect(received.length).toBeGreaterThan(100);
    expect(received.length).toBeLessThan(count);
    for (let i = 1; i < received.length; i++)
      expect(received[i]!).toBeGreaterThan(received[i - 1]!);
  }, 30_000);

  it('times out an idle peer whose packets stop arriving, on both sides', async () => {
    const { client, peer } = await setUp({ timeoutMs: 600 }, { timeoutMs: 600 }, { latencyMs: 5 });
    await sleep(700); // Keep-alives keep an idle but present peer open.
    expect(client.state).toBe('open');
    expect(peer.state).toBe('open');
    const clientClosed = nextEvent(client, 'close', 5_000);
    const peerClosed = nextEvent(peer, 'close', 5_000);
    const started = Date.now();
    relay!.toServer.configure({ lossRate: 1 });
    relay!.toClient.configure({ lossRate: 1 });
    const [clientInfo] = await clientClosed;
    const [peerInfo] = await peerClosed;
    expect(clientInfo).toMatchObject<Partial<CloseInfo>>({ code: 4000, local: true });
    expect(peerInfo).toMatchObject<Partial<CloseInfo>>({ code: 4000, local: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(server.connections.size).toBe(0);
  }, 15_000);

  it('detects a peer that vanished without a disconnect', async () => {
    const { peer } = await setUp({ timeoutMs: 800 }, { timeoutMs: 5_000 }, { latencyMs: 2 });
    const closed = nextEvent(peer, 'close', 5_000);
    await relay!.close(); // The client's address at the server is gone: no packet, no DISCONNECT.
    const [info] = await closed;
    expect(info).toMatchObject<Partial<CloseInfo>>({ code: 4000, local: true });
    expect(server.connections.size).toBe(0);
  }, 15_000);

  it('flushes reliable data, then disconnects with code and reason, over the lossy link', async () => {
    const { client, peer } = await setUp();
    const got: number[] = [];
    peer.on('message', (data) => got.push(seqOf(data)));
    const closed = nextEvent(peer, 'close', 15_000);
    for (let i = 0; i < 300; i++) client.send(numbered(i, 700));
    client.close(4100, 'bye over a bad link');
    const [info] = await closed;
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(info).toEqual({ code: 4100, reason: 'bye over a bad link', local: false });
  }, 20_000);
});
