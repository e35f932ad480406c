import {
  type Channel,
  type CloseInfo,
  createLinkConditioner,
  createManualTime,
  createRandom,
  type LinkOptions,
  type ManualTime,
} from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type SentPacket, SentState } from './ack.js';
import { Endpoint, type EndpointConfig, type EndpointHost } from './endpoint.js';
import {
  DEFAULT_PROTOCOL_ID,
  type DecodedPacket,
  decodePacket,
  PacketType,
  PLAIN_HEADER_BYTES,
  PLAIN_SEQUENCE_OFFSET,
  SESSION_OFFSET,
  writeHeader,
  writeMessageHeader,
  writeU16,
  writeU32,
} from './packet.js';

const baseConfig: EndpointConfig = {
  protocolId: DEFAULT_PROTOCOL_ID,
  sessionId: 0x1234_5678,
  mtuBytes: 1200,
  sealOverheadBytes: 0,
  maxMessageBytes: 262_144,
  timeoutMs: 10_000,
  keepAliveIntervalMs: 1_000,
  closeTimeoutMs: 5_000,
  ackDelayMs: 1,
  initialRtoMs: 200,
  minRtoMs: 25,
  maxRtoMs: 2_000,
  initialSendBytesPerSec: 2 * 1_048_576,
  minSendBytesPerSec: 65_536,
  maxSendBytesPerSec: 0,
  fragmentTimeoutMs: 1_000,
  unreliableDropThresholdBytes: 1 << 30,
};

interface Received {
  data: Uint8Array;
  channel: Channel;
}

class Side implements EndpointHost {
  endpoint!: Endpoint;
  peer!: Side;
  readonly received: Received[] = [];
  closed: CloseInfo | null = null;
  packetsSent = 0;
  largestPollBurst = 0;
  #burst = 0;

  constructor(
    readonly time: ManualTime,
    readonly link: ReturnType<typeof createLinkConditioner>,
  ) {}

  transmitPacket(bytes: Uint8Array, length: number): void {
    this.packetsSent++;
    this.#burst++;
    const copy = bytes.slice(0, length);
    this.link.transmit(length, () => this.peer.arrive(copy));
  }

  deliverMessage(data: Uint8Array, channel: Channel): void {
    this.received.push({ data: data.slice(), channel });
  }

  endpointClosed(code: number, reason: string, local: boolean): void {
    this.closed = { code, reason, local };
  }

  arrive(packet: Uint8Array): void {
    this.endpoint.receive(packet[5]!, packet, PLAIN_SEQUENCE_OFFSET, this.time.now());
  }

  poll(): number {
    this.#burst = 0;
    const wake = this.endpoint.poll(this.time.now());
    this.largestPollBurst = Math.max(this.largestPollBurst, this.#burst);
    return wake;
  }
}

interface Pair {
  time: ManualTime;
  a: Side;
  b: Side;
  /** Advances time in 1 ms steps, polling both ends, until `done()` or `maxMs`. */
  run(done: () => boolean, maxMs: number): number;
}

function createPair(
  link: LinkOptions = {},
  configA: Partial<EndpointConfig> = {},
  configB: Partial<EndpointConfig> = {},
  seed = 7,
): Pair {
  const time = createManualTime(1_000);
  const a = new Side(time, createLinkConditioner({ time, seed, ...link }));
  const b = new Side(time, createLinkConditioner({ time, seed: seed + 1, ...link }));
  a.peer = b;
  b.peer = a;
  a.endpoint = new Endpoint({ ...baseConfig, ...configA }, a, time.now());
  b.endpoint = new Endpoint({ ...baseConfig, ...configB }, b, time.now());
  return {
    time,
    a,
    b,
    run(done, maxMs) {
      const start = time.now();
      for (let step = 0; step < maxMs; step++) {
        a.poll();
        b.poll();
        if (done()) break;
        time.advance(1);
      }
      return time.now() - start;
    },
  };
}

/** `[seq u32][filler]` of `size` bytes. */
function numbered(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(4, size));
  new DataView(bytes.buffer).setUint32(0, seq);
  for (let i = 4; i < bytes.length; i++) bytes[i] = (seq * 7 + i) & 0xff;
  return bytes;
}

function seqOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
}

function intact(bytes: Uint8Array): boolean {
  const seq = seqOf(bytes);
  for (let i = 4; i < bytes.length; i++) if (bytes[i] !== ((seq * 7 + i) & 0xff)) return false;
  return true;
}

const lossy: LinkOptions = {
  latencyMs: 50,
  jitterMs: 10,
  lossRate: 0.1,
  duplicateRate: 0.01,
  reorderRate: 0.05,
  reorderDelayMs: 20,
};

describe('Endpoint (manual time, seeded link conditioner)', () => {
  it('delivers reliable-ordered messages in order over a clean link', () => {
    const { a, b, run } = createPair({ latencyMs: 5 });
    for (let i = 0; i < 1000; i++) a.endpoint.queueReliable(numbered(i, 4 + (i % 300)), 0);
    run(() => b.received.length === 1000, 5_000);
    expect(b.received.map((m) => seqOf(m.data))).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(b.received.every((m) => m.channel === 'reliable' && intact(m.data))).toBe(true);
    expect(a.endpoint.stats.retransmissions).toBe(0);
  });

  it('delivers reliable-ordered messages exactly once, in order, intact over a lossy link', () => {
    const { a, b, run } = createPair(lossy);
    const random = createRandom(3);
    const count = 3000;
    for (let i = 0; i < count; i++) {
      const size = random.chance(0.01) ? 16_384 + random.int(48_000) : 4 + random.int(1000);
      a.endpoint.queueReliable(numbered(i, size), 0);
    }
    const elapsed = run(() => b.received.length >= count, 120_000);
    expect(b.received.length).toBe(count);
    expect(b.received.map((m) => seqOf(m.data))).toEqual(
      Array.from({ length: count }, (_, i) => i),
    );
    expect(b.received.every((m) => intact(m.data))).toBe(true);
    expect(a.endpoint.stats.retransmissions).toBeGreaterThan(0);
    expect(a.endpoint.stats.packetsLost).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(60_000);
    // Nothing more arrives later (no duplicate delivery from late retransmissions).
    run(() => false, 2_000);
    expect(b.received.length).toBe(count);
  });

  it('delivers reliable-unordered messages exactly once over a lossy link', () => {
    const { a, b, run } = createPair(lossy);
    const count = 2000;
    for (let i = 0; i < count; i++) a.endpoint.queueReliable(numbered(i, 10 + (i % 900)), 1);
    run(() => b.received.length >= count, 60_000);
    run(() => false, 2_000);
    const seqs = b.received.map((m) => seqOf(m.data));
    expect(seqs.length).toBe(count);
    expect(new Set(seqs).size).toBe(count);
    expect(b.received.every((m) => m.channel === 'reliable' && intact(m.data))).toBe(true);
  });

  it('never delivers an older unreliable-sequenced message after a newer one', () => {
    const { a, b, run } = createPair(lossy);
    for (let i = 0; i < 500; i++) {
      a.endpoint.queueUnreliable(numbered(i, 40), 2);
      run(() => false, 2);
    }
    run(() => false, 500);
    const seqs = b.received.map((m) => seqOf(m.data));
    // Jitter (±10 ms) larger than the send interval (2 ms) reorders a lot: sequenced drops those.
    expect(seqs.length).toBeGreaterThan(100);
    expect(seqs.length).toBeLessThan(450);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
    expect(b.received.every((m) => m.channel === 'unreliable')).toBe(true);
  });

  it('delivers plain unreliable messages at most once (packet duplicates dropped)', () => {
    const { a, b, run } = createPair({ ...lossy, duplicateRate: 0.3 });
    for (let i = 0; i < 500; i++) {
      a.endpoint.queueUnreliable(numbered(i, 40), 3);
      run(() => false, 2);
    }
    run(() => false, 500);
    const seqs = b.received.map((m) => seqOf(m.data));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs.length).toBeGreaterThan(350);
    expect(b.endpoint.stats.duplicatePackets).toBeGreaterThan(0);
  });

  it('fragments and reassembles large unreliable messages', () => {
    const { a, b, run } = createPair({ latencyMs: 5 });
    a.endpoint.queueUnreliable(numbered(1, 50_000), 3);
    a.endpoint.queueUnreliable(numbered(2, 9_000), 2);
    run(() => b.received.length === 2, 1_000);
    expect(b.received.map((m) => [seqOf(m.data), m.data.length])).toEqual([
      [1, 50_000],
      [2, 9_000],
    ]);
    expect(b.received.every((m) => intact(m.data))).toBe(true);
  });

  it('wraps 16-bit message ids and packet sequences (70,000 messages)', () => {
    const { a, b, run } = createPair({ latencyMs: 1 }, { maxSendBytesPerSec: 50_000_000 });
    const count = 70_000;
    for (let i = 0; i < count; i++) a.endpoint.queueReliable(numbered(i, 4), 0);
    run(() => b.received.length >= count, 60_000);
    expect(b.received.length).toBe(count);
    let inOrder = true;
    for (let i = 0; i < count; i++) if (seqOf(b.received[i]!.data) !== i) inOrder = false;
    expect(inOrder).toBe(true);
    expect(a.endpoint.stats.packetsOut).toBeGreaterThan(0);
  });

  it('estimates the round-trip time (RFC 6298) from acks', () => {
    const { a, b, run } = createPair({ latencyMs: 40, jitterMs: 2 });
    for (let i = 0; i < 200; i++) {
      a.endpoint.queueReliable(numbered(i, 100), 0);
      run(() => false, 10);
    }
    run(() => b.received.length === 200, 2_000);
    expect(a.endpoint.stats.rttMs).toBeGreaterThan(75);
    expect(a.endpoint.stats.rttMs).toBeLessThan(95);
    expect(a.endpoint.stats.rtoMs).toBeGreaterThanOrEqual(a.endpoint.stats.rttMs);
  });

  it('estimates loss', () => {
    const { a, b, run } = createPair({ latencyMs: 10, lossRate: 0.2 });
    for (let i = 0; i < 1000; i++) {
      a.endpoint.queueUnreliable(numbered(i, 100), 3);
      run(() => false, 2);
    }
    run(() => false, 500);
    expect(b.received.length).toBeGreaterThan(600);
    expect(a.endpoint.stats.packetsLost).toBeGreaterThan(100);
    expect(a.endpoint.stats.lossRate).toBeGreaterThan(0.05);
    expect(a.endpoint.stats.lossRate).toBeLessThan(0.5);
  });

  it('sends keep-alives while idle and stays open', () => {
    const { a, b, run } = createPair(
      { latencyMs: 5 },
      { timeoutMs: 1_000, keepAliveIntervalMs: 250 },
      { timeoutMs: 1_000, keepAliveIntervalMs: 250 },
    );
    run(() => false, 5_000);
    expect(a.closed).toBeNull();
    expect(b.closed).toBeNull();
    expect(a.packetsSent).toBeGreaterThan(10);
    expect(a.endpoint.stats.rttMs).toBeGreaterThan(5);
  });

  it('times out when the peer goes silent, with CloseCode.Timeout on the detecting side', () => {
    const { a, b, run } = createPair(
      { latencyMs: 5 },
      { timeoutMs: 500, keepAliveIntervalMs: 100 },
      { timeoutMs: 2_000, keepAliveIntervalMs: 100 },
    );
    run(() => false, 100);
    b.link.configure({ lossRate: 1 });
    const elapsed = run(() => a.closed !== null, 2_000);
    expect(a.closed).toEqual({
      code: 4000,
      reason: expect.stringContaining('500 ms'),
      local: true,
    });
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(700);
    // a's DISCONNECT still reaches b (the link is only broken b → a).
    run(() => b.closed !== null, 500);
    expect(b.closed).toMatchObject({ code: 4000, local: false });
  });

  it('flushes reliable data before a graceful disconnect, even over a lossy link', () => {
    const { a, b, run } = createPair(lossy);
    for (let i = 0; i < 200; i++) a.endpoint.queueReliable(numbered(i, 500), 0);
    a.endpoint.close(4100, 'bye now', a.time.now());
    expect(a.endpoint.state).toBe('closing');
    run(() => b.closed !== null, 10_000);
    expect(b.received.map((m) => seqOf(m.data))).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(b.closed).toEqual({ code: 4100, reason: 'bye now', local: false });
    expect(a.closed).toEqual({ code: 4100, reason: 'bye now', local: true });
  });

  it('gives up flushing after closeTimeoutMs', () => {
    const { a, b, run } = createPair({ latencyMs: 5 }, { closeTimeoutMs: 300 });
    a.link.configure({ lossRate: 1 });
    a.endpoint.queueReliable(numbered(1, 10), 0);
    a.endpoint.close(1000, '', a.time.now());
    const elapsed = run(() => a.closed !== null, 1_000);
    expect(a.closed).toEqual({ code: 1000, reason: '', local: true });
    expect(elapsed).toBeGreaterThanOrEqual(299);
    expect(b.received.length).toBe(0);
  });

  it('closes with MessageTooLarge when the peer sends more than maxMessageBytes', () => {
    const { a, b, run } = createPair({ latencyMs: 2 }, {}, { maxMessageBytes: 10_000 });
    a.endpoint.queueReliable(numbered(1, 20_000), 0);
    run(() => b.closed !== null, 1_000);
    expect(b.closed).toMatchObject({ code: 1009, local: true });
    run(() => a.closed !== null, 100);
    expect(a.closed).toMatchObject({ code: 1009, local: false });
  });

  it('paces sends to maxSendBytesPerSec in small bursts', () => {
    const { a, b, run } = createPair({ latencyMs: 5 }, { maxSendBytesPerSec: 200_000 });
    for (let i = 0; i < 1000; i++) a.endpoint.queueReliable(numbered(i, 1000), 0);
    const elapsed = run(() => b.received.length === 1000, 20_000);
    expect(b.received.length).toBe(1000);
    // ~1.03 MB at 200 kB/s: about 5 s, never a burst of the whole queue.
    expect(elapsed).toBeGreaterThan(4_500);
    expect(elapsed).toBeLessThan(7_000);
    expect(a.largestPollBurst).toBeLessThanOrEqual(20);
    expect(a.endpoint.stats.sendRateBytesPerSec).toBeLessThanOrEqual(200_000);
  });

  it('counts and drops unreliable sends over unreliableDropThresholdBytes', () => {
    const { a } = createPair({}, { unreliableDropThresholdBytes: 1_000 });
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (a.endpoint.queueUnreliable(numbered(i, 100), 3)) accepted++;
    expect(accepted).toBe(11);
    expect(a.endpoint.stats.unreliableDropped).toBe(89);
    expect(a.endpoint.bufferedAmount).toBe(1_100);
  });

  it('ramps the send rate up on a clean link and down under heavy loss', () => {
    const clean = createPair({ latencyMs: 5 });
    for (let i = 0; i < 20_000; i++) clean.a.endpoint.queueReliable(numbered(i, 1000), 0);
    clean.run(() => clean.b.received.length === 20_000, 30_000);
    expect(clean.a.endpoint.stats.sendRateBytesPerSec).toBeGreaterThan(8 * 1_048_576);
    const congested = createPair({ latencyMs: 5, lossRate: 0.5 });
    for (let i = 0; i < 2_000; i++) congested.a.endpoint.queueReliable(numbered(i, 1000), 0);
    congested.run(() => false, 3_000);
    expect(congested.a.endpoint.stats.sendRateBytesPerSec).toBeLessThan(2 * 1_048_576);
  });
});

/** A DATA, ACK or KEEP-ALIVE packet of a hand-written peer: `[header][seq][ack][bits][messages]`. */
function craftPacket(
  type: number,
  sequence: number,
  messages: {
    channel: number;
    id: number;
    index?: number;
    count?: number;
    data: Uint8Array;
  }[] = [],
  ack = 0xffff,
  ackBits = 0,
): Uint8Array {
  const bytes = new Uint8Array(PLAIN_HEADER_BYTES + messages.length * 16 + 4_096);
  writeHeader(bytes, DEFAULT_PROTOCOL_ID, type as PacketType);
  writeU32(bytes, SESSION_OFFSET, baseConfig.sessionId);
  writeU16(bytes, PLAIN_SEQUENCE_OFFSET, sequence);
  writeU16(bytes, PLAIN_SEQUENCE_OFFSET + 2, ack);
  writeU32(bytes, PLAIN_SEQUENCE_OFFSET + 4, ackBits);
  let at = PLAIN_HEADER_BYTES;
  for (const m of messages) {
    at = writeMessageHeader(bytes, at, m.channel, m.id, m.index ?? 0, m.count ?? 0, m.data.length);
    bytes.set(m.data, at);
    at += m.data.length;
  }
  return bytes.slice(0, at);
}

/** An endpoint fed by hand, recording what it transmits. */
function createLone(config: Partial<EndpointConfig> = {}) {
  const time = createManualTime(1_000);
  const sent: DecodedPacket[] = [];
  const received: Received[] = [];
  const closed: CloseInfo[] = [];
  const host: EndpointHost = {
    transmitPacket: (bytes, length) => sent.push(decodePacket(bytes.slice(0, length))),
    deliverMessage: (data, channel) => received.push({ data, channel }),
    endpointClosed: (code, reason, local) => closed.push({ code, reason, local }),
  };
  const endpoint = new Endpoint({ ...baseConfig, ...config }, host, time.now());
  const feed = (packet: Uint8Array): void => {
    endpoint.receive(packet[5]!, packet, PLAIN_SEQUENCE_OFFSET, time.now());
  };
  return { time, endpoint, sent, received, closed, feed };
}

/** True if a connected packet acknowledges the peer's `sequence` (ack field or bitfield). */
function acknowledges(packet: DecodedPacket, sequence: number): boolean {
  if (!('ack' in packet)) return false;
  if (packet.ack === sequence) return true;
  const behind = (packet.ack - 1 - sequence) & 0xffff;
  return behind < 32 && ((packet.ackBits >>> behind) & 1) === 1;
}

describe('Endpoint (hand-written peer)', () => {
  it('never acknowledges a refused packet, even one reordered past the ack bitfield', () => {
    const { time, endpoint, sent, feed } = createLone();
    // Eight incomplete fragmented reliable-unordered messages fill the reassembly slots.
    for (let i = 0; i < 8; i++) {
      const fragment = { channel: 1, id: i, index: 0, count: 2, data: numbered(i, 100) };
      feed(craftPacket(PacketType.Data, i, [fragment]));
    }
    feed(craftPacket(PacketType.KeepAlive, 40));
    // Packet 9 arrives 31 behind the newest: its fragment is refused (slots full), so the peer
    // must resend it; acknowledging packet 9 would lose the message for good.
    feed(
      craftPacket(PacketType.Data, 9, [
        { channel: 1, id: 8, index: 0, count: 2, data: numbered(8, 100) },
      ]),
    );
    for (let step = 0; step < 10; step++) {
      endpoint.poll(time.now());
      time.advance(1);
    }
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.some((packet) => acknowledges(packet, 9))).toBe(false);
    expect(sent.some((packet) => acknowledges(packet, 40))).toBe(true);
  });

  it.each([
    ['reliable-ordered', 0],
    ['reliable-unordered', 1],
    ['unreliable-sequenced', 2],
    ['unreliable', 3],
  ])(
    'closes with MessageTooLarge on an unfragmented %s message over maxMessageBytes',
    (_, channel) => {
      const { endpoint, received, closed, feed } = createLone({ maxMessageBytes: 1_000 });
      feed(
        craftPacket(PacketType.Data, 0, [
          { channel, id: 0, data: numbered(1, 1_001) },
          { channel: 3, id: 0, data: numbered(2, 10) },
        ]),
      );
      expect(received).toEqual([]);
      expect(closed).toEqual([{ code: 1009, reason: expect.any(String), local: true }]);
      expect(endpoint.state).toBe('closed');
    },
  );

  it('closes with MessageTooLarge on a fragmented unreliable message over maxMessageBytes', () => {
    const { received, closed, feed } = createLone({ maxMessageBytes: 1_000 });
    feed(
      craftPacket(PacketType.Data, 0, [
        { channel: 3, id: 0, index: 0, count: 2, data: numbered(1, 600) },
        { channel: 3, id: 0, index: 1, count: 2, data: numbered(1, 600) },
      ]),
    );
    expect(received).toEqual([]);
    expect(closed).toEqual([{ code: 1009, reason: expect.any(String), local: true }]);
  });

  it('counts no loss and resends nothing when its ack-only packets wrap the sent-packet ring', () => {
    const { time, endpoint, sent, feed } = createLone();
    endpoint.queueReliable(numbered(1, 50), 0);
    endpoint.poll(time.now());
    expect(sent.map((packet) => packet.type)).toEqual([PacketType.Data]);
    // The peer streams keep-alives: every 16th gets an ack-only packet, 1100 of them in all,
    // while our data packet (sequence 0) is still in flight.
    for (let sequence = 0; sequence < 16 * 1_100; sequence++) {
      feed(craftPacket(PacketType.KeepAlive, sequence & 0xffff));
      if (endpoint.pollWanted) endpoint.poll(time.now());
    }
    expect(sent.filter((packet) => packet.type === PacketType.Ack).length).toBe(1_100);
    // Then its ack of our data packet arrives.
    feed(craftPacket(PacketType.KeepAlive, (16 * 1_100) & 0xffff, [], 0, 0));
    for (let step = 0; step < 10; step++) {
      endpoint.poll(time.now());
      time.advance(1);
    }
    expect(endpoint.stats.packetsLost).toBe(0);
    expect(endpoint.stats.retransmissions).toBe(0);
    expect(sent.filter((packet) => packet.type === PacketType.Data).length).toBe(1);
  });

  it('holds a data packet whose sent-ring slot still holds one in flight, until that one is acked', () => {
    const { time, endpoint, sent, feed } = createLone({ keepAliveIntervalMs: 100 });
    endpoint.queueReliable(numbered(1, 50), 0);
    endpoint.poll(time.now());
    // 1023 ack-only packets: the next sequence (1024) maps to the slot of our data packet (0).
    for (let sequence = 0; sequence < 16 * 1_023; sequence++) {
      feed(craftPacket(PacketType.KeepAlive, sequence));
      if (endpoint.pollWanted) endpoint.poll(time.now());
    }
    expect(sent.length).toBe(1 + 1_023);
    endpoint.queueReliable(numbered(2, 50), 0);
    // A keep-alive is due; our data packet is not yet lost by time (2 RTOs: 400 ms).
    time.advance(150);
    const wake = endpoint.poll(time.now());
    // Neither the message nor a keep-alive may take the slot, and the endpoint does not spin.
    expect(sent.length).toBe(1 + 1_023);
    expect(wake).toBeGreaterThan(time.now());
    expect(endpoint.stats.packetsLost).toBe(0);
    feed(craftPacket(PacketType.Ack, 16 * 1_023, [], 0, 0));
    endpoint.poll(time.now());
    const data = sent.filter((packet) => packet.type === PacketType.Data);
    expect(data.length).toBe(2);
    expect(endpoint.stats.packetsLost).toBe(0);
    expect(endpoint.stats.retransmissions).toBe(0);
  });

  it('undoes a loss that is acked later exactly: lossRate is as if the packet had been acked', () => {
    const packet = (sequence: number): SentPacket<never> => ({
      sequence,
      sentMs: 1_000,
      bytes: 100,
      state: SentState.Lost,
      items: [],
      lossMark: 0,
    });
    /** The EWMA (1/32) of `events` (1 lost, 0 acked), as the stat defines it. */
    const reference = (events: number[]): number =>
      events.reduce((rate, event) => rate + (event - rate) / 32, 0);
    // 64 real losses, then 32 packets declared lost too early and acked after all.
    const { endpoint } = createLone();
    for (let i = 0; i < 64; i++) endpoint.onPacketLost(packet(i));
    const early = Array.from({ length: 32 }, (_, i) => packet(64 + i));
    for (const record of early) endpoint.onPacketLost(record);
    for (const record of early) endpoint.onPacketAcked(record, 1_100, false, true);
    const expected = reference([...Array(64).fill(1), ...Array(32).fill(0)]);
    expect(expected).toBeGreaterThan(0.3);
    expect(endpoint.stats.lossRate).toBeCloseTo(expected, 9);
    expect(endpoint.stats.packetsLost).toBe(64);

    // Any mix of losses, acks and later undos (in any order) stays in [0, 1] and exact.
    fc.assert(
      fc.property(
        fc.array(fc.record({ lost: fc.boolean(), undoAfter: fc.option(fc.nat(40)) }), {
          maxLength: 200,
        }),
        (events) => {
          const { endpoint: lone } = createLone();
          const undos = new Map<number, SentPacket<never>[]>();
          const outcomes: number[] = [];
          const undone = new Set<number>();
          events.forEach(({ lost, undoAfter }, index) => {
            for (const record of undos.get(index) ?? []) {
              lone.onPacketAcked(record, 1_100, false, true);
              undone.add(record.sequence);
            }
            const record = packet(index);
            if (lost) {
              lone.onPacketLost(record);
              if (undoAfter !== null) {
                const at = index + 1 + undoAfter;
                undos.set(at, [...(undos.get(at) ?? []), record]);
              }
            } else {
              record.state = SentState.InFlight;
              lone.onPacketAcked(record, 1_100, false, false);
            }
            outcomes.push(lost ? 1 : 0);
            expect(lone.stats.lossRate).toBeGreaterThanOrEqual(0);
            expect(lone.stats.lossRate).toBeLessThanOrEqual(1);
          });
          expect(lone.stats.lossRate).toBeCloseTo(
            reference(outcomes.map((outcome, index) => (undone.has(index) ? 0 : outcome))),
            9,
          );
        },
      ),
      { seed: 20_261_125, numRuns: 200 },
    );
  });

  it('holds no reference to a received datagram once receive() returns (memory bounds)', () => {
    // Fragments and out-of-order messages are held until complete: as views of their datagram a
    // peer could pin a whole 64 KB datagram per byte counted against the reassembly limits.
    const { time, endpoint, received, feed } = createLone();
    const datagrams = [
      craftPacket(PacketType.Data, 0, [{ channel: 0, id: 1, data: numbered(1, 50) }]),
      craftPacket(PacketType.Data, 1, [
        { channel: 0, id: 2, index: 0, count: 2, data: numbered(2, 50) },
      ]),
      craftPacket(PacketType.Data, 2, [
        { channel: 1, id: 0, index: 1, count: 2, data: numbered(3, 50) },
      ]),
      craftPacket(PacketType.Data, 3, [
        { channel: 3, id: 0, index: 0, count: 2, data: numbered(4, 50) },
      ]),
    ];
    for (const datagram of datagrams) {
      feed(datagram);
      datagram.fill(0xee);
    }
    feed(
      craftPacket(PacketType.Data, 4, [
        { channel: 0, id: 2, index: 1, count: 2, data: numbered(5, 50) },
        { channel: 1, id: 0, index: 0, count: 2, data: numbered(6, 50) },
        { channel: 3, id: 0, index: 1, count: 2, data: numbered(7, 50) },
        { channel: 0, id: 0, data: numbered(0, 50) },
      ]),
    );
    endpoint.poll(time.now());
    expect(received.map((m) => m.data.length)).toEqual([100, 100, 50, 50, 100]);
    for (const { data } of received) {
      expect(data.includes(0xee)).toBe(false);
      expect(data.buffer.byteLength).toBeLessThan(1_000);
    }
  });
});
