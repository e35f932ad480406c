import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CookieIssuer } from './cookie.js';

describe('CookieIssuer (stateless handshake cookie)', () => {
  const salt = randomBytes(8);

  it('verifies a cookie for the same address, port and salt in its window and the next', () => {
    const issuer = new CookieIssuer(randomBytes(32), 10_000);
    const cookie = issuer.issue('127.0.0.1', 5000, salt, null, 12_000);
    expect(cookie.length).toBe(32);
    expect(issuer.verify(cookie, '127.0.0.1', 5000, salt, null, 12_000)).toBe(true);
    expect(issuer.verify(cookie, '127.0.0.1', 5000, salt, null, 29_999)).toBe(true);
    expect(issuer.verify(cookie, '127.0.0.1', 5000, salt, null, 30_000)).toBe(false);
  });

  it('refuses another address, port, salt, token nonce or secret', () => {
    const secret = randomBytes(32);
    const issuer = new CookieIssuer(secret, 10_000);
    const nonce = randomBytes(12);
    const cookie = issuer.issue('127.0.0.1', 5000, salt, nonce, 0);
    expect(issuer.verify(cookie, '127.0.0.2', 5000, salt, nonce, 0)).toBe(false);
    expect(issuer.verify(cookie, '127.0.0.1', 5001, salt, nonce, 0)).toBe(false);
    expect(issuer.verify(cookie, '127.0.0.1', 5000, randomBytes(8), nonce, 0)).toBe(false);
    expect(issuer.verify(cookie, '127.0.0.1', 5000, salt, randomBytes(12), 0)).toBe(false);
    expect(issuer.verify(cookie, '127.0.0.1', 5000, salt, null, 0)).toBe(false);
    expect(
      new CookieIssuer(randomBytes(32), 10_000).verify(cookie, '127.0.0.1', 5000, salt, nonce, 0),
    ).toBe(false);
    expect(issuer.verify(cookie.subarray(0, 16), '127.0.0.1', 5000, salt, nonce, 0)).toBe(false);
  });
});
