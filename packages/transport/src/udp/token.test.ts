import { randomBytes } from 'node:crypto';
import { isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROTOCOL_ID } from './packet.js';
import { generateConnectToken, openConnectToken, readConnectTokenPublic } from './token.js';

const secretKey = randomBytes(32);
const clock = (ms: number) => ({ now: () => ms });

describe('connect tokens', () => {
  it('carry client id, user data and keys the client can read only in part', () => {
    const token = generateConnectToken({
      clientId: 'player-7',
      expiresInMs: 60_000,
      secretKey,
      protocolId: DEFAULT_PROTOCOL_ID,
      userData: new Uint8Array([1, 2, 3]),
      wallClock: clock(1_000_000),
    });
    const pub = readConnectTokenPublic(token);
    expect(pub.expiresAtMs).toBe(1_060_000);
    expect(pub.protocolId).toBe(DEFAULT_PROTOCOL_ID);
    expect(Buffer.from(token).includes(Buffer.from('player-7'))).toBe(false);
    const opened = openConnectToken(token, secretKey, DEFAULT_PROTOCOL_ID, 1_000_001);
    expect(opened.status).toBe('ok');
    if (opened.status !== 'ok') return;
    expect(opened.token.clientId).toBe('player-7');
    expect([...opened.token.userData]).toEqual([1, 2, 3]);
    expect([...opened.token.clientToServerKey]).toEqual([...pub.clientToServerKey]);
    expect([...opened.token.serverToClientKey]).toEqual([...pub.serverToClientKey]);
  });

  it('are refused when expired, tampered, for another protocol or sealed with another key', () => {
    const token = generateConnectToken({
      clientId: 'a',
      expiresInMs: 10,
      secretKey,
      wallClock: clock(5_000),
    });
    expect(openConnectToken(token, secretKey, DEFAULT_PROTOCOL_ID, 5_010).status).toBe('expired');
    for (let at = 0; at < token.length; at++) {
      const tampered = token.slice();
      tampered[at]! ^= 1;
      expect(openConnectToken(tampered, secretKey, DEFAULT_PROTOCOL_ID, 5_000).status).not.toBe(
        'ok',
      );
    }
    expect(openConnectToken(token, secretKey, 1234, 5_000).status).toBe('invalid');
    expect(openConnectToken(token, randomBytes(32), DEFAULT_PROTOCOL_ID, 5_000).status).toBe(
      'invalid',
    );
    expect(openConnectToken(token.subarray(0, 40), secretKey, DEFAULT_PROTOCOL_ID, 0).status).toBe(
      'invalid',
    );
  });

  it('each get a unique nonce', () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const token = generateConnectToken({ clientId: 'x', expiresInMs: 1_000, secretKey });
      nonces.add(Buffer.from(readConnectTokenPublic(token).nonce).toString('hex'));
    }
    expect(nonces.size).toBe(100);
  });

  it('reject bad arguments with INVALID_ARGUMENT', () => {
    const bad = [
      { clientId: 'a', expiresInMs: 1_000, secretKey: new Uint8Array(16) },
      { clientId: 'a', expiresInMs: 0, secretKey },
      { clientId: 'x'.repeat(65), expiresInMs: 1_000, secretKey },
      { clientId: 'a', expiresInMs: 1_000, secretKey, userData: new Uint8Array(257) },
      { clientId: 'a', expiresInMs: 1_000, secretKey, protocolId: -1 },
    ];
    for (const options of bad) {
      expect(() => generateConnectToken(options)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    let caught: unknown;
    try {
      readConnectTokenPublic(new Uint8Array(10));
    } catch (error) {
      caught = error;
    }
    expect(isTickwireError(caught, 'INVALID_ARGUMENT')).toBe(true);
  });
});
