import { createHmac } from 'node:crypto';
import { ErrorCode, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createTokenSigner, type TokenPayload } from './tokens.js';

const SECRET = 'a-test-secret-that-is-32-bytes!!';
const payload: TokenPayload = { sid: 's1', uid: 'u1', exp: 10_000, jti: 'j1', gen: 3 };

function rejection(run: () => unknown): { code: string; reason: unknown; message: string } {
  try {
    run();
  } catch (error) {
    if (!isTickwireError(error)) throw error;
    return { code: error.code, reason: error.details?.reason, message: error.message };
  }
  throw new Error('expected a rejection');
}

describe('createTokenSigner', () => {
  it('signs a payload that verify returns unchanged, before its expiry', () => {
    let now = 9_999;
    const signer = createTokenSigner({ secret: SECRET, clock: () => now });
    const token = signer.sign(payload);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(signer.verify(token)).toEqual(payload);
    expect(signer.sign({ ...payload })).toBe(token);
    expect(signer.now()).toBe(9_999);
    now = 10_000;
    expect(rejection(() => signer.verify(token))).toMatchObject({
      code: ErrorCode.UNAUTHORIZED,
      reason: 'expired',
    });
  });

  it('accepts a Uint8Array secret and a payload without uid; verify drops unknown fields', () => {
    const signer = createTokenSigner({ secret: new Uint8Array(32).fill(7), clock: () => 0 });
    const { uid: _uid, ...anonymous } = payload;
    const token = signer.sign({ ...anonymous, extra: 1 } as TokenPayload);
    expect(signer.verify(token)).toEqual(anonymous);
  });

  it('refuses a tampered payload or signature, and a token of another secret', () => {
    const signer = createTokenSigner({ secret: SECRET, clock: () => 0 });
    const token = signer.sign(payload);
    const [body, signature] = token.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ ...payload, gen: 4 })).toString('base64url');
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`;
    const other = createTokenSigner({ secret: `${SECRET}x`, clock: () => 0 }).sign(payload);
    for (const bad of [`${forged}.${signature}`, `${body}.${flipped}`, other, `${body}.AAAA`]) {
      expect(rejection(() => signer.verify(bad))).toMatchObject({
        code: ErrorCode.UNAUTHORIZED,
        reason: 'signature',
      });
    }
  });

  it('refuses malformed tokens without hashing them', () => {
    const signer = createTokenSigner({ secret: SECRET, clock: () => 0, maxTokenLength: 100 });
    const notJson = Buffer.from('not json').toString('base64url');
    const key = new TextEncoder().encode(SECRET);
    const signed = (body: string) =>
      `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
    const wrongShape = Buffer.from(
      JSON.stringify({ sid: 's', exp: 1, jti: 'j', gen: -1 }),
    ).toString('base64url');
    const bad: unknown[] = [
      '',
      'no-dot',
      '.sig',
      'body.',
      'a.b.c',
      'bo dy.sig',
      'x'.repeat(101),
      42,
      undefined,
      signed(notJson),
      signed(wrongShape),
    ];
    for (const token of bad) {
      expect(rejection(() => signer.verify(token as string))).toMatchObject({
        code: ErrorCode.UNAUTHORIZED,
        reason: 'malformed',
      });
    }
  });

  it('sign refuses payloads with wrong fields (INVALID_ARGUMENT)', () => {
    const signer = createTokenSigner({ secret: SECRET });
    const bad = [
      null,
      [],
      { ...payload, sid: '' },
      { ...payload, uid: 5 },
      { ...payload, exp: Number.NaN },
      { ...payload, jti: 1 },
      { ...payload, gen: 1.5 },
    ];
    for (const value of bad) {
      expect(rejection(() => signer.sign(value as TokenPayload)).code).toBe(
        ErrorCode.INVALID_ARGUMENT,
      );
    }
  });

  it('refuses a secret under 32 bytes and a bad maxTokenLength (INVALID_ARGUMENT)', () => {
    for (const options of [
      { secret: 'short' },
      { secret: new Uint8Array(31) },
      { secret: 5 as unknown as string },
      { secret: SECRET, maxTokenLength: 0 },
    ]) {
      expect(rejection(() => createTokenSigner(options)).code).toBe(ErrorCode.INVALID_ARGUMENT);
    }
    expect(rejection(() => createTokenSigner({ secret: 'short' })).message).toMatch(
      /at least 32 bytes, got 5/,
    );
  });

  it('defaults to the wall clock', () => {
    const signer = createTokenSigner({ secret: SECRET });
    expect(Math.abs(signer.now() - Date.now())).toBeLessThan(1_000);
  });

  it('copies a Uint8Array secret: changing it later does not change the key', () => {
    const secret = new Uint8Array(32).fill(1);
    const signer = createTokenSigner({ secret, clock: () => 0 });
    const token = signer.sign(payload);
    secret.fill(2);
    expect(signer.verify(token)).toEqual(payload);
  });
});
