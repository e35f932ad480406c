import { createRandom, ErrorCode, type Random } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createBackoff } from './backoff.js';

const fixed = (value: number): Random => ({ next: () => value });

describe('createBackoff', () => {
  it('starts at 250 ms, doubles and stops at 5000 ms by default (no jitter)', () => {
    const backoff = createBackoff({ jitter: 0 }, fixed(0.5));
    expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => backoff.delayMs(attempt))).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000,
    ]);
  });

  it('follows initialDelayMs, multiplier and maxDelayMs', () => {
    const backoff = createBackoff(
      { initialDelayMs: 100, multiplier: 3, maxDelayMs: 2000, jitter: 0 },
      fixed(0),
    );
    expect([0, 1, 2, 3, 4].map((attempt) => backoff.delayMs(attempt))).toEqual([
      100, 300, 900, 2000, 2000,
    ]);
  });

  it('stays at the cap for huge attempt numbers (no Infinity, no NaN)', () => {
    const backoff = createBackoff({ jitter: 0 }, fixed(0));
    expect(backoff.delayMs(10_000)).toBe(5000);
    expect(backoff.delayMs(Number.MAX_SAFE_INTEGER)).toBe(5000);
  });

  it('stays at 0 from a zero initial delay, whatever the multiplier (no NaN)', () => {
    const backoff = createBackoff({ initialDelayMs: 0, multiplier: 1e6 }, fixed(0.5));
    expect([0, 1, 52, 64, 1000].map((attempt) => backoff.delayMs(attempt))).toEqual([
      0, 0, 0, 0, 0,
    ]);
  });

  it('removes at most `jitter` of each delay: base × (1 − jitter × r)', () => {
    expect(createBackoff({ jitter: 0.5 }, fixed(0)).delayMs(2)).toBe(1000);
    expect(createBackoff({ jitter: 0.5 }, fixed(0.5)).delayMs(2)).toBe(750);
    expect(createBackoff({ jitter: 0.5 }, fixed(0.999_999)).delayMs(2)).toBe(500);
    expect(createBackoff({ jitter: 1 }, fixed(0.999_999)).delayMs(0)).toBe(0);
  });

  it('keeps seeded delays within [base × (1 − jitter), base] and repeats them for one seed', () => {
    const a = createBackoff(
      { initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0.3 },
      createRandom(42),
    );
    const b = createBackoff(
      { initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0.3 },
      createRandom(42),
    );
    const delays = Array.from({ length: 200 }, () => a.delayMs(0));
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(700);
      expect(delay).toBeLessThanOrEqual(1000);
    }
    // Spread out, not constant.
    expect(new Set(delays).size).toBeGreaterThan(50);
    expect(Array.from({ length: 200 }, () => b.delayMs(0))).toEqual(delays);
  });

  it('draws one random number per delay', () => {
    let draws = 0;
    const backoff = createBackoff(
      {},
      {
        next: () => {
          draws++;
          return 0;
        },
      },
    );
    backoff.delayMs(0);
    backoff.delayMs(1);
    expect(draws).toBe(2);
  });

  it.each([
    [{ initialDelayMs: -1 }, 'reconnect.initialDelayMs must be a number in [0, Infinity], got -1'],
    [{ initialDelayMs: Number.NaN }, 'reconnect.initialDelayMs'],
    [{ initialDelayMs: Number.POSITIVE_INFINITY }, 'reconnect.initialDelayMs'],
    [{ initialDelayMs: 1000, maxDelayMs: 999 }, 'reconnect.maxDelayMs must be a number in [1000, '],
    [{ multiplier: 0.5 }, 'reconnect.multiplier must be a number in [1, Infinity], got 0.5'],
    [{ jitter: -0.1 }, 'reconnect.jitter must be a number in [0, 1], got -0.1'],
    [{ jitter: 1.5 }, 'reconnect.jitter must be a number in [0, 1], got 1.5'],
  ])('rejects %o with INVALID_ARGUMENT', (options, message) => {
    expect(() => createBackoff(options, fixed(0))).toThrow(
      expect.objectContaining({
        code: ErrorCode.INVALID_ARGUMENT,
        message: expect.stringContaining(message),
      }),
    );
  });

  it('accepts the edges: zero delays, multiplier 1, jitter 0 and 1', () => {
    const flat = createBackoff(
      { initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 1 },
      fixed(0.5),
    );
    expect(flat.delayMs(3)).toBe(0);
    const constant = createBackoff({ initialDelayMs: 300, multiplier: 1, jitter: 0 }, fixed(0.5));
    expect([0, 1, 5].map((attempt) => constant.delayMs(attempt))).toEqual([300, 300, 300]);
  });
});
