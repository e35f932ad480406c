import { createRandom } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createReservoir, formatBytes, formatMs, quantileOfSorted } from './report.js';

describe('quantileOfSorted', () => {
  it('takes the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantileOfSorted(values, 0.5)).toBe(50);
    expect(quantileOfSorted(values, 0.99)).toBe(99);
    expect(quantileOfSorted(values, 1)).toBe(100);
    expect(quantileOfSorted([7], 0.99)).toBe(7);
    expect(quantileOfSorted([], 0.5)).toBeNaN();
  });
});

describe('createReservoir', () => {
  it('is exact below its capacity and ignores non-finite values', () => {
    const reservoir = createReservoir(1000, createRandom(1));
    for (let i = 100; i >= 1; i--) reservoir.add(i);
    reservoir.add(Number.NaN);
    reservoir.add(Number.POSITIVE_INFINITY);
    expect(reservoir.percentiles()).toEqual({ samples: 100, p50: 50, p95: 95, p99: 99, max: 100 });
  });

  it('keeps a bounded, uniform sample of a long stream (and the true maximum)', () => {
    const reservoir = createReservoir(2000, createRandom(2));
    for (let i = 0; i < 200_000; i++) reservoir.add(i % 1000);
    reservoir.add(5000);
    const { samples, p50, p99, max } = reservoir.percentiles();
    expect(samples).toBe(200_001);
    expect(max).toBe(5000);
    expect(Math.abs(p50 - 500)).toBeLessThan(40);
    expect(Math.abs(p99 - 990)).toBeLessThan(15);
  });

  it('has no percentiles without samples', () => {
    expect(createReservoir(10, createRandom(3)).percentiles()).toEqual({
      samples: 0,
      p50: Number.NaN,
      p95: Number.NaN,
      p99: Number.NaN,
      max: Number.NaN,
    });
  });
});

describe('formatting', () => {
  it('writes bytes in powers of 1000 and milliseconds with sensible precision', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(12_345)).toBe('12.3 kB');
    expect(formatBytes(6_280_000)).toBe('6.28 MB');
    expect(formatMs(0.314)).toBe('0.31 ms');
    expect(formatMs(70.24)).toBe('70.2 ms');
    expect(formatMs(151.2)).toBe('151 ms');
    expect(formatMs(Number.NaN)).toBe('—');
  });
});
