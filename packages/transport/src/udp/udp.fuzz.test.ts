import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { nextEvent } from '@tickwire/core/testing';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createUdpClient,
  createUdpServer,
  generateConnectToken,
  type UdpConnection,
  type UdpServer,
} from './index.js';
import { literalLookup } from './lookup.js';
import { DEFAULT_PROTOCOL_ID, type PacketType, writeHeader } from './packet.js';
import { createLossyRelay, type LossyRelay } from './test-relay.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Where a fuzz datagram comes from: a stranger's socket, or the connected client's address. */
type Source = 'stranger' | 'client';

interface Datagram {
  source: Source;
  bytes: Uint8Array;
}

/** Arbitrary datagrams: random bytes, random bodies behind a valid header, mutated real packets. */
function datagrams(captured: Uint8Array[]): fc.Arbitrary<Datagram> {
  const source = fc.constantFrom<Source>('stranger', 'client');
  const random = fc.uint8Array({ maxLength: 1500 });
  const behindHeader = fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 1400 }))
    .map(([type, body]) => {
      const bytes = new Uint8Array(6 + body.length);
      writeHeader(bytes, DEFAULT_PROTOCOL_ID, type as PacketType);
      bytes.set(body, 6);
      return bytes;
    });
  const mutated = fc
    .tuple(
      fc.constantFrom(...captured),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.uint8Array({ maxLength: 16 }),
    )
    .map(([packet, flips, cut, extra]) => {
      const bytes = Uint8Array.from(packet);
      for (const [at, xor] of flips) {
        const index = at % bytes.length;
        bytes[index] = bytes[index]! ^ xor;
      }
      if (cut === undefined) return bytes;
      const kept = bytes.subarray(0, cut % (bytes.length + 1));
      const out = new Uint8Array(kept.length + extra.length);
      out.set(kept);
      out.set(extra, kept.length);
      return out;
    });
  const replayed = fc.constantFrom(...captured).map((packet) => Uint8Array.from(packet));
  return fc.record({
    source,
    bytes: fc.oneof(
      { weight: 3, arbitrary: random },
      { weight: 3, arbitrary: behindHeader },
      { weight: 3, arbitrary: mutated },
      { weight: 1, arbitrary: replayed },
    ),
  });
}

describe('udp server under 50,000 arbitrary datagrams (fast-check)', () => {
  let server: UdpServer | null = null;
  let relay: LossyRelay | null = null;
  let stranger: Socket | null = null;
  let client: UdpConnection | null = null;

  afterEach(async () => {
    if (client?.state === 'open') client.close();
    await relay?.close();
    const socket = stranger;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    await server?.close();
    server = relay = stranger = client = null;
  });

  it('counts every datagram as dropped, never crashes, and the connection keeps working', async () => {
    const secretKey = randomBytes(32);
    server = createUdpServer({ host: '127.0.0.1', port: 0, connectTokenKey: secretKey });
    const errors: unknown[] = [];
    server.on('error', (error) => errors.push(error));
    const { port } = await server.listen();
    relay = await createLossyRelay(port);
    const captured: Uint8Array[] = [];
    relay.onClientDatagram = (bytes) => {
      if (captured.length < 300) captured.push(Uint8Array.from(bytes));
    };
    const accepted = nextEvent(server, 'connection');
    client = await createUdpClient({
      connectToken: generateConnectToken({ clientId: 'fuzz', expiresInMs: 60_000, secretKey }),
    }).connect(relay.url);
    const [peer] = await accepted;
    // Real traffic to capture (handshake, data and ack packets), then echo checks later.
    peer.on('message', (data) => peer.send(data));
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 5; i++) client.send(new Uint8Array(1 + (((turn * 5 + i) * 37) % 1500)));
      client.send(new Uint8Array(40).fill(turn), 'unreliable');
      await sleep(5);
    }
    await sleep(200);
    expect(captured.length).toBeGreaterThan(20);

    const socket = createSocket({ type: 'udp4', lookup: literalLookup, sendBufferSize: 1 << 22 });
    stranger = socket;
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const samples = fc.sample(datagrams(captured), { numRuns: 50_000, seed: 4242 });

    const statsBefore = { ...server.stats, dropped: { ...server.stats.dropped } };
    const forwardedBefore = relay.forwardedToServer;
    const acceptedBefore = server.stats.connectionsAccepted;
    const batch = 250;
    for (let start = 0; start < samples.length; start += batch) {
      const end = Math.min(samples.length, start + batch);
      for (let i = start; i < end; i++) {
        const { source, bytes } = samples[i]!;
        if (source === 'client') relay.injectToServer(bytes);
        else socket.send(bytes, port, '127.0.0.1');
      }
      // Pace: let the server read the batch before the next one (the kernel buffer must not be
      // what drops them).
      const expected = statsBefore.datagramsIn + end;
      for (let wait = 0; wait < 200; wait++) {
        const legit = relay.forwardedToServer - forwardedBefore;
        if (server.stats.datagramsIn >= expected + legit) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (wait > 50) await sleep(1);
      }
    }
    await sleep(50);
    const legit = relay.forwardedToServer - forwardedBefore;
    expect(server.stats.datagramsIn - statsBefore.datagramsIn).toBe(samples.length + legit);
    // Every datagram was dropped, except repeats of the client's own RESPONSE (from its address,
    // salt intact), which are answered with the same ACCEPTED again, as a lost ACCEPTED requires.
    const dropped = server.stats.packetsDropped - statsBefore.packetsDropped;
    const repeatedAccepts = server.stats.acceptsSent - statsBefore.acceptsSent;
    expect(dropped + repeatedAccepts).toBe(samples.length);
    expect(repeatedAccepts).toBeLessThan(samples.length / 100);
    expect(server.stats.challengesSent).toBe(statsBefore.challengesSent);
    const droppedBy = Object.fromEntries(
      Object.entries(server.stats.dropped)
        .map(([reason, count]) => [reason, count - statsBefore.dropped[reason as 'short']])
        .filter(([, count]) => (count as number) > 0),
    );
    // The decoder, the session check, the replay window and the AEAD all had their share.
    for (const reason of ['protocol', 'short', 'unknownConnection', 'tampered', 'replayed']) {
      expect(droppedBy[reason], reason).toBeGreaterThan(0);
    }
    expect(droppedBy.internal).toBeUndefined();
    expect(errors).toEqual([]);
    expect(server.stats.connectionsAccepted).toBe(acceptedBefore);
    expect(server.connections.size).toBe(1);

    // The established connection still exchanges messages both ways.
    const connected = client;
    expect(connected.state).toBe('open');
    const echoes: number[] = [];
    const done = new Promise<void>((resolve) => {
      connected.on('message', (data) => {
        echoes.push(data[0]!);
        if (echoes.length === 50) resolve();
      });
    });
    for (let i = 0; i < 50; i++) connected.send(new Uint8Array([i, 1, 2, 3]));
    await done;
    expect(echoes).toEqual(Array.from({ length: 50 }, (_, i) => i));
  }, 60_000);

  it('drops arbitrary datagrams from strangers on a server without tokens too', async () => {
    server = createUdpServer({ host: '127.0.0.1', port: 0 });
    const { port, url } = await server.listen();
    const accepted = nextEvent(server, 'connection');
    client = await createUdpClient().connect(url);
    const [peer] = await accepted;
    peer.on('message', (data) => peer.send(data));
    const socket = createSocket({ type: 'udp4', lookup: literalLookup });
    stranger = socket;
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const before = server.stats.packetsDropped;
    const challengesBefore = server.stats.challengesSent;
    const samples = fc.sample(fc.uint8Array({ maxLength: 1500 }), { numRuns: 5_000, seed: 7 });
    for (let start = 0; start < samples.length; start += 250) {
      for (const bytes of samples.slice(start, start + 250)) {
        socket.send(bytes, port, '127.0.0.1');
      }
      await sleep(2);
    }
    await sleep(50);
    expect(
      server.stats.packetsDropped - before + (server.stats.challengesSent - challengesBefore),
    ).toBe(5_000);
    const echoed = nextEvent(client!, 'message');
    client!.send(new Uint8Array([9]));
    expect([...(await echoed)[0]]).toEqual([9]);
  }, 30_000);
});
