import { createManualTime, ErrorCode, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import {
  type ConnectionLimits,
  createAddressLimiter,
  createConnectionLimiter,
  createTokenBucket,
  normalizeAddress,
} from './limits.js';

function throwsInvalid(run: () => unknown, message: string): void {
  try {
    run();
  } catch (error) {
    expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as Error).message).toBe(message);
    return;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('createTokenBucket', () => {
  it('starts full, empties, and refills at the rate up to the burst', () => {
    const time = createManualTime(1000);
    const bucket = createTokenBucket({ ratePerSecond: 10, burst: 3, clock: time });
    expect(bucket.take()).toBe(true);
    expect(bucket.take(2)).toBe(true);
    expect(bucket.take()).toBe(false);
    time.advance(99);
    expect(bucket.take()).toBe(false);
    time.advance(1);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    time.advance(60_000);
    expect(bucket.tokens).toBe(3);
    expect(bucket.take(3)).toBe(true);
  });

  it('takes nothing when the count is not available', () => {
    const time = createManualTime();
    const bucket = createTokenBucket({ ratePerSecond: 1000, burst: 10, clock: time });
    expect(bucket.take(7)).toBe(true);
    expect(bucket.take(4)).toBe(false);
    expect(bucket.tokens).toBe(3);
    expect(bucket.take(11)).toBe(false);
    expect(bucket.take(0)).toBe(true);
  });

  it('ignores a clock that goes backwards', () => {
    let now = 5000;
    const bucket = createTokenBucket({ ratePerSecond: 1, burst: 1, clock: { now: () => now } });
    expect(bucket.take()).toBe(true);
    now = 0;
    expect(bucket.take()).toBe(false);
    now = 5999;
    expect(bucket.take()).toBe(false);
    now = 6000;
    expect(bucket.take()).toBe(true);
  });

  it('validates its options and counts', () => {
    const clock = createManualTime();
    throwsInvalid(
      () => createTokenBucket({ ratePerSecond: 0, burst: 1, clock }),
      'ratePerSecond must be a number > 0, got 0',
    );
    throwsInvalid(
      () => createTokenBucket({ ratePerSecond: 1, burst: Number.NaN, clock }),
      'burst must be a number > 0, got NaN',
    );
    const bucket = createTokenBucket({ ratePerSecond: 1, burst: 1, clock });
    throwsInvalid(() => bucket.take(-1), 'take: count must be a number >= 0, got -1');
  });
});

describe('createConnectionLimiter', () => {
  const limits: ConnectionLimits = {
    messagesPerSecond: 10,
    messageBurst: 5,
    bytesPerSecond: 1000,
    bytesBurst: 2000,
    rateLimitWarnings: 1,
  };

  it('passes messages within both buckets', () => {
    const time = createManualTime();
    const limiter = createConnectionLimiter(limits, time);
    for (let i = 0; i < 5; i++) expect(limiter.allowMessage(100)).toBe('ok');
    time.advance(100);
    expect(limiter.allowMessage(100)).toBe('ok');
    expect(limiter.warnings).toBe(0);
  });

  it('warns at the first excess, then closes on a later one', () => {
    const time = createManualTime();
    const limiter = createConnectionLimiter(limits, time);
    for (let i = 0; i < 5; i++) limiter.allowMessage(10);
    expect(limiter.allowMessage(10)).toBe('warn');
    expect(limiter.warnings).toBe(1);
    // Messages already in flight when the client was warned do not count again.
    time.advance(500);
    for (let i = 0; i < 5; i++) expect(limiter.allowMessage(10)).not.toBe('close');
    time.advance(500);
    for (let i = 0; i < 5; i++) limiter.allowMessage(10);
    expect(limiter.allowMessage(10)).toBe('close');
  });

  it('limits bytes as well as messages, and a refused message takes no message token', () => {
    const time = createManualTime();
    const limiter = createConnectionLimiter(
      { ...limits, messagesPerSecond: 1, messageBurst: 2, rateLimitWarnings: 5 },
      time,
    );
    expect(limiter.allowMessage(1500)).toBe('ok');
    expect(limiter.allowMessage(1000)).toBe('warn');
    // The second message token is still there.
    expect(limiter.allowMessage(0)).toBe('ok');
    expect(limiter.allowMessage(0)).toBe('warn');
    time.advance(1000);
    expect(limiter.allowMessage(1000)).toBe('ok');
  });

  it('closes at the first excess with no warnings allowed', () => {
    const time = createManualTime();
    const limiter = createConnectionLimiter({ ...limits, rateLimitWarnings: 0 }, time);
    for (let i = 0; i < 5; i++) limiter.allowMessage(1);
    expect(limiter.allowMessage(1)).toBe('close');
  });

  it('gives rateLimitWarnings warnings per window', () => {
    const time = createManualTime();
    const limiter = createConnectionLimiter(
      { ...limits, rateLimitWarnings: 2, warningWindowMs: 10_000, warningReactionMs: 0 },
      time,
    );
    const exceed = () => {
      while (limiter.allowMessage(1) === 'ok') {}
    };
    const verdicts: string[] = [];
    const exceedOnce = () => {
      for (let i = 0; i < 6; i++) {
        const verdict = limiter.allowMessage(1);
        if (verdict !== 'ok') return verdicts.push(verdict);
      }
      throw new Error('expected an excess');
    };
    exceed();
    expect(limiter.warnings).toBe(1);
    time.advance(3000);
    exceedOnce();
    expect(verdicts).toEqual(['warn']);
    expect(limiter.warnings).toBe(2);
    // The window opened at the first warning; once it is over, the count starts again.
    time.advance(7000);
    expect(limiter.warnings).toBe(0);
    exceedOnce();
    time.advance(1000);
    exceedOnce();
    time.advance(1000);
    exceedOnce();
    expect(verdicts).toEqual(['warn', 'warn', 'warn', 'close']);
    // Every counted warning, across windows (the server sends one Error frame per new one).
    expect(limiter.issued).toBe(5);
  });

  it('counts a warning once for every message within its reaction time', () => {
    const time = createManualTime();
    const limiter = createConnectionLimiter({ ...limits, warningReactionMs: 1000 }, time);
    while (limiter.allowMessage(1) === 'ok') {}
    expect(limiter.issued).toBe(1);
    for (let i = 0; i < 31; i++) expect(limiter.allowMessage(1)).toBe('warn');
    expect(limiter.issued).toBe(1);
  });

  it('validates its limits', () => {
    const clock = createManualTime();
    throwsInvalid(
      () => createConnectionLimiter({ ...limits, messagesPerSecond: -1 }, clock),
      'messagesPerSecond must be a number > 0, got -1',
    );
    throwsInvalid(
      () => createConnectionLimiter({ ...limits, rateLimitWarnings: -1 }, clock),
      'rateLimitWarnings must be an integer >= 0, got -1',
    );
    throwsInvalid(
      () => createConnectionLimiter({ ...limits, warningWindowMs: 0 }, clock),
      'warningWindowMs must be a number > 0, got 0',
    );
    throwsInvalid(
      () => createConnectionLimiter({ ...limits, warningReactionMs: -1 }, clock),
      'warningReactionMs must be a number >= 0, got -1',
    );
  });
});

describe('normalizeAddress', () => {
  it.each([
    ['1.2.3.4:5678', '1.2.3.4'],
    ['1.2.3.4', '1.2.3.4'],
    ['[::1]:4000', '::1'],
    ['::1', '::1'],
    ['[2001:DB8::1]:80', '2001:db8::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['[::ffff:10.0.0.7]:9000', '10.0.0.7'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['localhost:80', 'localhost'],
    ['[::1', '::1'],
  ])('%s → %s', (address, ip) => {
    expect(normalizeAddress(address)).toBe(ip);
  });
});

describe('createAddressLimiter', () => {
  it('caps connections per IP whatever the port or form', () => {
    const limiter = createAddressLimiter(2, 100);
    expect(limiter.acquire('1.2.3.4:1000')).toBe('ok');
    expect(limiter.acquire('[::ffff:1.2.3.4]:1001')).toBe('ok');
    expect(limiter.acquire('1.2.3.4:1002')).toBe('address');
    expect(limiter.acquire('5.6.7.8:1000')).toBe('ok');
    expect(limiter.count('1.2.3.4')).toBe(2);
    expect(limiter.total).toBe(3);
    limiter.release('::ffff:1.2.3.4');
    expect(limiter.acquire('1.2.3.4:1003')).toBe('ok');
  });

  it('caps the total, and a refusal counts nothing', () => {
    const limiter = createAddressLimiter(5, 2);
    expect(limiter.acquire('1.1.1.1:1')).toBe('ok');
    expect(limiter.acquire('2.2.2.2:1')).toBe('ok');
    expect(limiter.acquire('3.3.3.3:1')).toBe('total');
    expect(limiter.count('3.3.3.3')).toBe(0);
    expect(limiter.total).toBe(2);
    limiter.release('1.1.1.1:1');
    expect(limiter.acquire('3.3.3.3:1')).toBe('ok');
  });

  it('ignores releases of addresses it does not count', () => {
    const limiter = createAddressLimiter(1, 1);
    limiter.release('9.9.9.9:1');
    expect(limiter.total).toBe(0);
    expect(limiter.acquire('1.1.1.1:1')).toBe('ok');
    limiter.release('1.1.1.1:1');
    limiter.release('1.1.1.1:1');
    expect(limiter.total).toBe(0);
    expect(limiter.count('1.1.1.1')).toBe(0);
  });

  it('validates its caps', () => {
    throwsInvalid(() => createAddressLimiter(0, 1), 'maxPerAddress must be an integer >= 1, got 0');
    throwsInvalid(() => createAddressLimiter(1, 1.5), 'maxTotal must be an integer >= 1, got 1.5');
  });
});
