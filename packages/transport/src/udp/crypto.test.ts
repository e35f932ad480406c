import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aeadOpen, aeadSeal, counterNonce, PacketCipher } from './crypto.js';
import {
  DEFAULT_PROTOCOL_ID,
  PacketType,
  PLAIN_HEADER_BYTES,
  SESSION_OFFSET,
  writeHeader,
  writeU32,
} from './packet.js';

function plainPacket(body: number[]): Uint8Array {
  const bytes = new Uint8Array(PLAIN_HEADER_BYTES + body.length);
  writeHeader(bytes, DEFAULT_PROTOCOL_ID, PacketType.Data);
  writeU32(bytes, SESSION_OFFSET, 42);
  bytes.set([0, 1, 0, 2, 0, 0, 0, 3], 10);
  bytes.set(body, PLAIN_HEADER_BYTES);
  return bytes;
}

describe('chacha20-poly1305 packet encryption', () => {
  it('seals and opens with the matching keys; the plaintext is not visible', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const client = new PacketCipher(k1, k2);
    const server = new PacketCipher(k2, k1);
    const packet = plainPacket([0xaa, 0xbb, 0xcc, 0xdd]);
    const sealed = client.seal(packet, packet.length);
    expect(sealed.length).toBe(packet.length + 24);
    expect(sealed.subarray(0, 10)).toEqual(Buffer.from(packet.subarray(0, 10)));
    expect(sealed.includes(Buffer.from([0xaa, 0xbb, 0xcc, 0xdd]))).toBe(false);
    const opened = server.open(sealed);
    expect(opened && [...opened]).toEqual([...packet.subarray(10)]);
  });

  it('refuses tampered headers, bodies and tags, and the wrong key', () => {
    const key = randomBytes(32);
    const packet = plainPacket([1, 2, 3]);
    const sealed = new PacketCipher(key, key).seal(packet, packet.length);
    for (const at of [0, 5, 7, 12, 20, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[at]! ^= 0x40;
      const receiver = new PacketCipher(key, key);
      expect(receiver.open(tampered)).toBeNull();
      expect(receiver.failure).toBe('tampered');
    }
    const stranger = new PacketCipher(key, randomBytes(32));
    expect(stranger.open(sealed)).toBeNull();
  });

  it('refuses a replayed packet and one older than the replay window', () => {
    const key = randomBytes(32);
    const sender = new PacketCipher(key, key);
    const receiver = new PacketCipher(key, key);
    const packet = plainPacket([9]);
    const first = sender.seal(packet, packet.length);
    const later: Buffer[] = [];
    for (let i = 0; i < 300; i++) later.push(sender.seal(packet, packet.length));
    expect(receiver.open(later[299]!)).not.toBeNull();
    expect(receiver.open(later[299]!)).toBeNull();
    expect(receiver.failure).toBe('replayed');
    expect(receiver.open(first)).toBeNull();
    expect(receiver.failure).toBe('replayed');
    expect(receiver.open(later[200]!)).not.toBeNull();
  });

  it('seals arbitrary data with associated data (tokens, ACCEPTED)', () => {
    const key = randomBytes(32);
    const aad = new Uint8Array([1, 2, 3]);
    const sealed = aeadSeal(key, counterNonce(0), aad, new Uint8Array([5, 6]));
    expect([...(aeadOpen(key, counterNonce(0), aad, sealed) ?? [])]).toEqual([5, 6]);
    expect(aeadOpen(key, counterNonce(1), aad, sealed)).toBeNull();
    expect(aeadOpen(key, counterNonce(0), new Uint8Array([1, 2, 4]), sealed)).toBeNull();
    expect(aeadOpen(key, counterNonce(0), aad, sealed.subarray(0, 3))).toBeNull();
  });
});
