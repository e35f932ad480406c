import { describe, expect, it } from 'vitest';
import { AddressRateLimiter } from './rate-limit.js';

describe('AddressRateLimiter', () => {
  it('allows a burst per address, then the sustained rate', () => {
    const limiter = new AddressRateLimiter({ ratePerSec: 10, burst: 3, maxAddresses: 10 });
    expect([1, 2, 3, 4].map(() => limiter.allow('a', 0))).toEqual([true, true, true, false]);
    expect(limiter.allow('b', 0)).toBe(true);
    expect(limiter.allow('a', 99)).toBe(false);
    expect(limiter.allow('a', 100)).toBe(true);
  });

  it('stays bounded: forgets idle addresses and shares one bucket beyond the limit', () => {
    const limiter = new AddressRateLimiter({ ratePerSec: 1, burst: 2, maxAddresses: 2 });
    limiter.allow('a', 0);
    limiter.allow('b', 0);
    expect(limiter.allow('c', 0)).toBe(true);
    expect(limiter.allow('d', 0)).toBe(true);
    expect(limiter.allow('e', 0)).toBe(false);
    expect(limiter.size).toBe(2);
    limiter.sweep(10_000);
    expect(limiter.size).toBe(0);
  });
});
