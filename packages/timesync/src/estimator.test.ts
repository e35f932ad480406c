import { createRandom, ErrorCode } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { estimate, estimateWithSlope, fitSlope, type TimeSample } from './estimator.js';
import { SYMMETRIC, simulate } from './harness.test.js';

const options = { maxSlope: 500e-6, minDriftSpanMs: 10_000, fallbackSlope: 0 };

/** Samples of a link with the given delay draws, offset `offset` and slope `slope`. */
function samples(
  n: number,
  offset: number,
  slope: number,
  delay: () => number,
  spacingMs = 100,
): TimeSample[] {
  const out: TimeSample[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = i * spacingMs;
    const up = delay();
    const down = delay();
    const theta = (l: number) => offset + slope * l;
    const t1 = t0 + up + theta(t0 + up);
    const t3 = t0 + up + down;
    out.push({ t0, t1, t2: t1, t3 });
  }
  return out;
}

const p95 = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length * 0.95)]!;

describe('estimate', () => {
  it('beats the one-sample bound on uniform jitter: p95 |error| < 2.1 ms with 10 samples', () => {
    const random = createRandom(3);
    const errors: number[] = [];
    for (let trial = 0; trial < 2000; trial++) {
      const s = samples(10, 123.4, 0, () => random.range(40, 60));
      errors.push(Math.abs(estimate(s, options).offsetMs - 123.4));
    }
    // Floor for 10 samples (midrange of each direction) ≈ 1.8 ms; lower edges alone ≈ 2.45 ms.
    expect(p95(errors)).toBeLessThan(2.1);
  });

  it('uses the lower edge on exponential (queueing) jitter', () => {
    const random = createRandom(4);
    const errors: number[] = [];
    for (let trial = 0; trial < 2000; trial++) {
      const s = samples(10, -50, 0, () => 40 + random.exponential(10));
      errors.push(Math.abs(estimate(s, options).offsetMs + 50));
    }
    expect(p95(errors)).toBeLessThan(2.5);
  });

  it('reports the hard bound as confidence and contains the truth', () => {
    const random = createRandom(5);
    const s = samples(20, 7, 0, () => random.range(40, 60));
    const result = estimate(s, options);
    expect(result.confidenceMs).toBeGreaterThan(39);
    expect(result.confidenceMs).toBeLessThan(45);
    expect(Math.abs(result.offsetMs - 7)).toBeLessThan(result.confidenceMs);
  });

  it('fits drift over a long window and ignores it over a short one', () => {
    const random = createRandom(6);
    const long = samples(100, 10, -50e-6, () => random.range(40, 60), 1000);
    const fitted = estimate(long, options);
    expect(fitted.slope * 1e6).toBeCloseTo(-50, -1);
    expect(Math.abs(fitted.offsetMs - (10 - 50e-6 * fitted.referenceMs))).toBeLessThan(0.5);
    const short = samples(10, 10, -50e-6, () => random.range(40, 60));
    expect(estimate(short, { ...options, fallbackSlope: 1e-6 }).slope).toBe(1e-6);
  });

  it('takes a given slope as it is, fitting nothing (as estimateWithSlope)', () => {
    const random = createRandom(7);
    const long = samples(100, 10, -50e-6, () => random.range(40, 60), 1000);
    const given = estimate(long, { ...options, slope: -20e-6 });
    expect(given.slope).toBe(-20e-6);
    expect(estimateWithSlope(long, -20e-6)).toEqual(given);
    expect(given).not.toEqual(estimate(long, options));
  });

  it('fits drift on all four edges when the delays are uniform (weight 1)', () => {
    const random = createRandom(7);
    const marginErrors: number[] = [];
    const edgeErrors: number[] = [];
    const estimateErrors: number[] = [];
    for (let trial = 0; trial < 300; trial++) {
      const s = samples(60, 10, -50e-6, () => random.range(40, 60), 1000);
      const up = s.map((x) => ({ t: x.t0, v: x.t1 - x.t0 }));
      const down = s.map((x) => ({ t: x.t3, v: x.t2 - x.t3 }));
      marginErrors.push(Math.abs(fitSlope(up, down, 500e-6) + 50e-6) * 1e6);
      edgeErrors.push(Math.abs(fitSlope(up, down, 500e-6, 1) + 50e-6) * 1e6);
      const result = estimate(s, options);
      estimateErrors.push(Math.abs(result.slope + 50e-6) * 1e6);
    }
    // Max-margin uses only the fastest packets each way; the four-edge fit halves its error.
    expect(p95(edgeErrors)).toBeLessThan(0.8 * p95(marginErrors));
    expect(p95(estimateErrors)).toBeLessThan(0.8 * p95(marginErrors));
  });

  it('fitSlope with weight 1 minimises the summed ranges of both directions', () => {
    // Upward band slopes +1e-4 (range 2), downward band too (range 2): the fit is exact.
    const up = [
      { t: 0, v: 50 },
      { t: 1000, v: 52.1 },
      { t: 2000, v: 50.2 },
      { t: 3000, v: 52.3 },
    ];
    const down = [
      { t: 0, v: -50 },
      { t: 1000, v: -47.9 },
      { t: 2000, v: -49.8 },
      { t: 3000, v: -47.7 },
    ];
    expect(fitSlope(up, down, 1e-3, 1)).toBeCloseTo(1e-4, 9);
  });

  it('fitSlope stays within the searched range and prefers no drift on a tie', () => {
    const flat = [
      { t: 0, v: 10 },
      { t: 1000, v: 10 },
    ];
    const below = [
      { t: 0, v: -10 },
      { t: 1000, v: -10 },
    ];
    expect(fitSlope(flat, below, 1e-3)).toBe(0);
    const steep = [
      { t: 0, v: 10 },
      { t: 1000, v: 20 },
    ];
    const steepBelow = [
      { t: 0, v: -10 },
      { t: 1000, v: 0 },
    ];
    expect(fitSlope(steep, steepBelow, 1e-3)).toBe(1e-3);
  });

  it('rejects no samples or non-finite timestamps with INVALID_ARGUMENT, never a TypeError', () => {
    const bad: unknown[] = [
      [],
      undefined,
      [{ t0: 0, t1: Number.NaN, t2: 5, t3: 10 }],
      [{ t0: 0, t1: 5, t2: 5, t3: Number.POSITIVE_INFINITY }],
      [null],
    ];
    for (const input of bad) {
      expect(() => estimate(input as TimeSample[], options)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
  });
});

describe('on a simulated link', () => {
  it('one-shot: p95 |offset error| ≤ 2.25 ms over 200 seeded runs (uniform ±10, 2 % loss, 50 ppm)', async () => {
    const errors: number[] = [];
    for (let seed = 1; seed <= 200; seed++) {
      const sim = simulate({ seed, up: SYMMETRIC, down: SYMMETRIC, skew: 50e-6 });
      const done = sim.client.sync();
      sim.manual.advance(5_000);
      await done;
      errors.push(Math.abs(sim.offsetError()));
      sim.client.close();
    }
    expect(p95(errors)).toBeLessThan(2.25);
  });
});
