import { describe, expect, it } from 'vitest';
import { ErrorCode } from './errors.js';
import { createRandom, systemRandom } from './random.js';

describe('createRandom', () => {
  it('repeats exactly for equal seeds and differs for different seeds', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const c = createRandom(43);
    const seqA = Array.from({ length: 100 }, () => a.next());
    const seqB = Array.from({ length: 100 }, () => b.next());
    const seqC = Array.from({ length: 100 }, () => c.next());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('is uniform in [0, 1) (mean and buckets over 100k draws)', () => {
    const rng = createRandom(7);
    const buckets = new Array(10).fill(0);
    let sum = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
      buckets[Math.floor(x * 10)]++;
    }
    expect(Math.abs(sum / 100_000 - 0.5)).toBeLessThan(0.005);
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it('draws integers, ranges, chances and distributions with the right moments', () => {
    const rng = createRandom(99);
    const n = 50_000;
    let ints = 0;
    let hits = 0;
    let expSum = 0;
    let normSum = 0;
    let normSq = 0;
    for (let i = 0; i < n; i++) {
      const k = rng.int(6);
      expect(Number.isInteger(k) && k >= 0 && k < 6).toBe(true);
      ints += k;
      const r = rng.range(-2, 3);
      expect(r >= -2 && r < 3).toBe(true);
      if (rng.chance(0.25)) hits++;
      expSum += rng.exponential(4);
      const z = rng.normal(10, 2);
      normSum += z;
      normSq += (z - 10) ** 2;
    }
    expect(ints / n).toBeCloseTo(2.5, 1);
    expect(Math.abs(hits / n - 0.25)).toBeLessThan(0.01);
    expect(expSum / n).toBeCloseTo(4, 1);
    expect(normSum / n).toBeCloseTo(10, 1);
    expect(Math.sqrt(normSq / n)).toBeCloseTo(2, 1);
    expect(rng.chance(0)).toBe(false);
  });

  it('saves and restores its position; forks are independent but repeatable', () => {
    const rng = createRandom(5);
    rng.next();
    const state = rng.getState();
    const after = [rng.next(), rng.next()];
    rng.setState(state);
    expect([rng.next(), rng.next()]).toEqual(after);
    const f1 = createRandom(5).fork();
    const f2 = createRandom(5).fork();
    expect(f1.next()).toBe(f2.next());
  });

  it('rejects bad arguments with INVALID_ARGUMENT', () => {
    expect(() => createRandom(Number.NaN)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    const rng = createRandom(1);
    expect(() => rng.int(0)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => rng.int(2.5)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('systemRandom draws from [0, 1)', () => {
    const x = systemRandom.next();
    expect(x >= 0 && x < 1).toBe(true);
  });
});
