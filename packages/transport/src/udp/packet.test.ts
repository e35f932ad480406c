import { isTickwireError } from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHALLENGE_BYTES,
  DEFAULT_PROTOCOL_ID,
  decodePacket,
  PacketType,
  PLAIN_HEADER_BYTES,
  PLAIN_SEQUENCE_OFFSET,
  REQUEST_MIN_BYTES,
  readU32,
  readU64,
  SESSION_OFFSET,
  WireChannel,
  writeHeader,
  writeMessageHeader,
  writeU16,
  writeU32,
  writeU64,
} from './packet.js';

function dataPacket(
  messages: { channel: number; id: number; index: number; count: number; data: Uint8Array }[],
): Uint8Array {
  const bytes = new Uint8Array(1500);
  writeHeader(bytes, DEFAULT_PROTOCOL_ID, PacketType.Data);
  writeU32(bytes, SESSION_OFFSET, 0xdead_beef);
  writeU16(bytes, PLAIN_SEQUENCE_OFFSET, 65_535);
  writeU16(bytes, PLAIN_SEQUENCE_OFFSET + 2, 7);
  writeU32(bytes, PLAIN_SEQUENCE_OFFSET + 4, 0x8000_0001);
  let at = PLAIN_HEADER_BYTES;
  for (const m of messages) {
    at = writeMessageHeader(bytes, at, m.channel, m.id, m.index, m.count, m.data.length);
    bytes.set(m.data, at);
    at += m.data.length;
  }
  return bytes.slice(0, at);
}

const validPackets = (): Uint8Array[] => {
  const request = new Uint8Array(REQUEST_MIN_BYTES);
  writeHeader(request, DEFAULT_PROTOCOL_ID, PacketType.Request);
  const challenge = new Uint8Array(CHALLENGE_BYTES);
  writeHeader(challenge, DEFAULT_PROTOCOL_ID, PacketType.Challenge);
  const disconnect = new Uint8Array(PLAIN_HEADER_BYTES + 5);
  writeHeader(disconnect, DEFAULT_PROTOCOL_ID, PacketType.Disconnect);
  writeU16(disconnect, PLAIN_HEADER_BYTES, 4100);
  disconnect[PLAIN_HEADER_BYTES + 2] = 2;
  disconnect.set([104, 105], PLAIN_HEADER_BYTES + 3);
  return [
    request,
    challenge,
    disconnect,
    dataPacket([
      { channel: 0, id: 1, index: 0, count: 0, data: new Uint8Array([1, 2, 3]) },
      { channel: 3, id: 0, index: 0, count: 0, data: new Uint8Array(0) },
      { channel: 1, id: 9, index: 2, count: 5, data: new Uint8Array(100) },
    ]),
  ];
};

describe('packet codec', () => {
  it('writes and reads integers big-endian, u64 up to 2^53', () => {
    const bytes = new Uint8Array(8);
    writeU32(bytes, 0, 0xfedc_ba98);
    expect(readU32(bytes, 0)).toBe(0xfedc_ba98);
    writeU64(bytes, 0, Number.MAX_SAFE_INTEGER);
    expect(readU64(bytes, 0)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('round-trips a DATA packet with aggregated messages of every channel', () => {
    const packet = decodePacket(
      dataPacket([
        {
          channel: WireChannel.ReliableOrdered,
          id: 65_535,
          index: 0,
          count: 0,
          data: new Uint8Array([9]),
        },
        {
          channel: WireChannel.ReliableUnordered,
          id: 3,
          index: 1,
          count: 2,
          data: new Uint8Array([1, 2]),
        },
        {
          channel: WireChannel.UnreliableSequenced,
          id: 4,
          index: 0,
          count: 0,
          data: new Uint8Array(0),
        },
        {
          channel: WireChannel.Unreliable,
          id: 0,
          index: 0,
          count: 0,
          data: new Uint8Array([7, 7]),
        },
      ]),
    );
    expect(packet.type).toBe(PacketType.Data);
    if (packet.type !== PacketType.Data) return;
    expect([packet.sessionId, packet.sequence, packet.ack, packet.ackBits]).toEqual([
      0xdead_beef, 65_535, 7, 0x8000_0001,
    ]);
    expect(
      packet.messages.map((m) => [m.channel, m.id, m.fragmentIndex, m.fragmentCount, [...m.data]]),
    ).toEqual([
      [0, 65_535, 0, 0, [9]],
      [1, 3, 1, 2, [1, 2]],
      [2, 4, 0, 0, []],
      [3, 0, 0, 0, [7, 7]],
    ]);
  });

  it('rejects a wrong protocol id, version or type with DECODE_FAILED', () => {
    const [request] = validPackets();
    const wrongProtocol = request!.slice();
    wrongProtocol[0] = wrongProtocol[0]! ^ 1;
    const wrongVersion = request!.slice();
    wrongVersion[4] = 99;
    const wrongType = request!.slice();
    wrongType[5] = 77;
    for (const [bytes, reason] of [
      [wrongProtocol, 'protocol'],
      [wrongVersion, 'version'],
      [wrongType, 'type'],
      [new Uint8Array(3), 'short'],
    ] as const) {
      let caught: unknown;
      try {
        decodePacket(bytes);
      } catch (error) {
        caught = error;
      }
      expect(isTickwireError(caught, 'DECODE_FAILED')).toBe(true);
      expect((caught as { details: { reason: string } }).details.reason).toBe(reason);
    }
  });

  it('decodes any byte string or throws a TickwireError, nothing else (property)', () => {
    const decodeOrTyped = (bytes: Uint8Array): void => {
      try {
        decodePacket(bytes);
      } catch (error) {
        if (!isTickwireError(error, 'DECODE_FAILED')) throw error;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1500 }), decodeOrTyped), { numRuns: 5_000 });
    // Bytes that pass the header check, so the body decoders are exercised too.
    const withHeader = fc
      .tuple(fc.constantFrom(1, 2, 3, 4, 5, 16, 17, 18, 19), fc.uint8Array({ maxLength: 1500 }))
      .map(([type, body]) => {
        const bytes = new Uint8Array(6 + body.length);
        writeHeader(bytes, DEFAULT_PROTOCOL_ID, type as PacketType);
        bytes.set(body, 6);
        return bytes;
      });
    fc.assert(fc.property(withHeader, decodeOrTyped), { numRuns: 10_000 });
    // Valid packets with bytes flipped, truncated or extended.
    const mutated = fc
      .tuple(
        fc.constantFrom(...validPackets()),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 20 }),
      )
      .map(([packet, flips, cut, extra]) => {
        const bytes = packet.slice();
        for (const [at, xor] of flips) {
          const index = at % bytes.length;
          bytes[index] = bytes[index]! ^ xor;
        }
        const kept = bytes.subarray(0, cut % (bytes.length + 1));
        const out = new Uint8Array(kept.length + extra.length);
        out.set(kept);
        out.set(extra, kept.length);
        return out;
      });
    fc.assert(fc.property(mutated, decodeOrTyped), { numRuns: 10_000 });
  });
});
