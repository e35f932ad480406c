import { describe, expect, it } from 'vitest';
import { RttEstimator } from './rtt.js';

const limits = { initialRtoMs: 1_000, minRtoMs: 50, maxRtoMs: 4_000 };

describe('RttEstimator (RFC 6298)', () => {
  it('uses the initial RTO until the first sample, then SRTT = R and RTTVAR = R/2', () => {
    const rtt = new RttEstimator(limits);
    expect(rtt.rtoMs).toBe(1_000);
    expect(rtt.srttMs).toBe(0);
    rtt.update(100);
    expect(rtt.srttMs).toBe(100);
    expect(rtt.rttVarMs).toBe(50);
    expect(rtt.rtoMs).toBe(300);
  });

  it('smooths later samples with alpha 1/8 and beta 1/4', () => {
    const rtt = new RttEstimator(limits);
    rtt.update(100);
    rtt.update(200);
    expect(rtt.rttVarMs).toBeCloseTo(0.75 * 50 + 0.25 * 100);
    expect(rtt.srttMs).toBeCloseTo(0.875 * 100 + 0.125 * 200);
    expect(rtt.rtoMs).toBeCloseTo(rtt.srttMs + 4 * rtt.rttVarMs);
    expect(rtt.minRttMs).toBe(100);
    expect(rtt.latestRttMs).toBe(200);
  });

  it('converges on a steady RTT and clamps the RTO to its bounds', () => {
    const rtt = new RttEstimator(limits);
    for (let i = 0; i < 200; i++) rtt.update(10);
    expect(rtt.srttMs).toBeCloseTo(10);
    expect(rtt.rtoMs).toBe(50);
    for (let i = 0; i < 200; i++) rtt.update(10_000);
    expect(rtt.rtoMs).toBe(4_000);
  });

  it('backs off by doubling up to the maximum, and a new sample resets it', () => {
    const rtt = new RttEstimator(limits);
    rtt.update(100);
    rtt.backoff();
    expect(rtt.rtoMs).toBe(600);
    for (let i = 0; i < 10; i++) rtt.backoff();
    expect(rtt.rtoMs).toBe(4_000);
    rtt.update(100);
    expect(rtt.rtoMs).toBeLessThan(600);
  });

  it('ignores negative and non-finite samples', () => {
    const rtt = new RttEstimator(limits);
    rtt.update(-5);
    rtt.update(Number.NaN);
    rtt.update(Number.POSITIVE_INFINITY);
    expect(rtt.samples).toBe(0);
    expect(rtt.rtoMs).toBe(1_000);
  });
});
