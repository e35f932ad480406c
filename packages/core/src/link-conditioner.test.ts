import { describe, expect, it } from 'vitest';
import { createManualTime } from './clock.js';
import { ErrorCode } from './errors.js';
import { createLinkConditioner, type LinkOptions } from './link-conditioner.js';
import { createRandom } from './random.js';

interface Arrival {
  id: number;
  sentAt: number;
  arrivedAt: number;
}

/** Sends `count` packets, one every `intervalMs`, and returns every delivery in arrival order. */
function run(
  options: LinkOptions & { seed?: number },
  count: number,
  intervalMs: number,
  sizeBytes = 100,
) {
  const time = createManualTime();
  const link = createLinkConditioner({ ...options, time });
  const arrivals: Arrival[] = [];
  for (let id = 0; id < count; id++) {
    const sentAt = id * intervalMs;
    time.advanceTo(sentAt);
    link.transmit(sizeBytes, () => arrivals.push({ id, sentAt, arrivedAt: time.now() }));
  }
  time.runAll(10 * count);
  return { arrivals, stats: link.stats, link, time };
}

const N = 100_000;

describe('link conditioner statistics over 100k packets (fixed seed)', () => {
  it('loses, delays and duplicates at the configured rates, within bounds', () => {
    const { arrivals, stats } = run(
      { seed: 11, latencyMs: 50, jitterMs: 10, lossRate: 0.05, duplicateRate: 0.02 },
      N,
      1,
    );
    expect(stats.sent).toBe(N);
    const uniqueDelivered = new Set(arrivals.map((a) => a.id)).size;
    const lossRate = (N - uniqueDelivered) / N;
    expect(Math.abs(lossRate - 0.05)).toBeLessThanOrEqual(0.005);
    expect(stats.lost).toBe(N - uniqueDelivered);
    const duplicateRate = (arrivals.length - uniqueDelivered) / uniqueDelivered;
    expect(Math.abs(duplicateRate - 0.02)).toBeLessThanOrEqual(0.005);
    expect(stats.duplicated).toBe(arrivals.length - uniqueDelivered);
    let sum = 0;
    for (const a of arrivals) {
      const delay = a.arrivedAt - a.sentAt;
      expect(delay).toBeGreaterThanOrEqual(40);
      expect(delay).toBeLessThanOrEqual(60);
      sum += delay;
    }
    expect(Math.abs(sum / arrivals.length - 50)).toBeLessThan(0.2);
    expect(stats.delayMinMs).toBeGreaterThanOrEqual(40);
    expect(stats.delayMaxMs).toBeLessThanOrEqual(60);
    expect(stats.delivered).toBe(arrivals.length);
    expect(stats.inFlight).toBe(0);
  });

  it('reorders the configured share of packets and keeps the rest in order', () => {
    const { arrivals, stats } = run(
      { seed: 12, latencyMs: 30, reorderRate: 0.03, reorderDelayMs: 20 },
      N,
      1,
    );
    // A packet is out of order if some packet sent after it arrived before it.
    let late = 0;
    let highestIdSoFar = -1;
    for (const { id } of arrivals) {
      if (id < highestIdSoFar) late++;
      highestIdSoFar = Math.max(highestIdSoFar, id);
    }
    expect(arrivals.length).toBe(N);
    expect(Math.abs(late / N - 0.03)).toBeLessThanOrEqual(0.005);
    expect(stats.reordered).toBe(late);
  });

  it('respects the bandwidth cap and drops what overflows its queue', () => {
    const capBytesPerSec = 100_000;
    // Offer 2× the cap: two 100-byte packets every millisecond for 50 s.
    const { arrivals, stats } = run(
      { seed: 13, latencyMs: 20, bandwidthBytesPerSec: capBytesPerSec, maxQueueBytes: 10_000 },
      N,
      0.5,
    );
    const windowMs = 1000;
    const lastArrival = arrivals.at(-1)!.arrivedAt;
    for (let start = 0; start + windowMs <= lastArrival; start += 250) {
      let bytes = 0;
      for (const a of arrivals)
        if (a.arrivedAt >= start && a.arrivedAt < start + windowMs) bytes += 100;
      expect(bytes).toBeLessThanOrEqual(capBytesPerSec + 100);
    }
    const utilisation = (arrivals.length * 100) / ((capBytesPerSec * (lastArrival - 20)) / 1000);
    expect(utilisation).toBeGreaterThan(0.97);
    expect(Math.abs(stats.queueDropped / N - 0.5)).toBeLessThan(0.01);
    // A full queue of 10 kB at 100 kB/s adds at most 100 ms.
    for (const a of arrivals) expect(a.arrivedAt - a.sentAt).toBeLessThanOrEqual(20 + 100 + 1);
  });

  it('repeats exactly for equal seeds and differs for different ones', () => {
    const options: LinkOptions = {
      latencyMs: 40,
      jitterMs: 15,
      jitterDistribution: 'normal',
      lossRate: 0.1,
      duplicateRate: 0.05,
      reorderRate: 0.05,
      bandwidthBytesPerSec: 500_000,
    };
    const a = run({ ...options, seed: 7 }, 20_000, 0.3);
    const b = run({ ...options, seed: 7 }, 20_000, 0.3);
    const c = run({ ...options, seed: 8 }, 20_000, 0.3);
    expect(b.arrivals).toEqual(a.arrivals);
    expect(b.stats).toEqual(a.stats);
    expect(c.arrivals).not.toEqual(a.arrivals);
  });
});

describe('link conditioner behaviour', () => {
  it('never loses or reorders ordered traffic: losses become retransmission delays', () => {
    const time = createManualTime();
    const link = createLinkConditioner({
      time,
      seed: 3,
      latencyMs: 25,
      jitterMs: 5,
      lossRate: 0.2,
      reorderRate: 0.5,
    });
    const got: number[] = [];
    for (let i = 0; i < 5_000; i++) {
      time.advanceTo(i);
      link.transmit(50, () => got.push(i), true);
    }
    time.runAll(100_000);
    expect(got).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(link.stats.lost).toBe(0);
    expect(link.stats.duplicated).toBe(0);
    expect(Math.abs(link.stats.retransmitted / 5_000 - 0.25)).toBeLessThan(0.03);
    expect(link.stats.delayMaxMs).toBeGreaterThan(25 + 5 + 60);
  });

  it('draws exponential jitter with the configured mean, never below the latency', () => {
    const { arrivals } = run(
      { seed: 5, latencyMs: 20, jitterMs: 8, jitterDistribution: 'exponential' },
      50_000,
      1,
    );
    let sum = 0;
    for (const a of arrivals) {
      const delay = a.arrivedAt - a.sentAt;
      expect(delay).toBeGreaterThanOrEqual(20);
      sum += delay;
    }
    expect(Math.abs(sum / arrivals.length - 28)).toBeLessThan(0.2);
  });

  it('clamps normal jitter to ±3σ', () => {
    const { arrivals } = run(
      { seed: 6, latencyMs: 50, jitterMs: 5, jitterDistribution: 'normal' },
      50_000,
      1,
    );
    for (const a of arrivals) {
      expect(a.arrivedAt - a.sentAt).toBeGreaterThanOrEqual(35);
      expect(a.arrivedAt - a.sentAt).toBeLessThanOrEqual(65);
    }
  });

  it('delivers zero-delay packets in a microtask, without a timer', async () => {
    const time = createManualTime();
    const link = createLinkConditioner({ time, seed: 1 });
    const got: number[] = [];
    link.transmit(10, () => got.push(1));
    link.transmit(10, () => got.push(2), true);
    expect(got).toEqual([]);
    expect(time.pending).toBe(0);
    await Promise.resolve();
    expect(got).toEqual([1, 2]);
    expect(link.stats.delivered).toBe(2);
  });

  it('changes conditions live, and clear() drops what is in flight', () => {
    const time = createManualTime();
    const link = createLinkConditioner({ time, random: createRandom(1), latencyMs: 10 });
    const got: string[] = [];
    link.transmit(1, () => got.push('a'));
    link.configure({ latencyMs: 100 });
    link.transmit(1, () => got.push('b'));
    time.advance(50);
    expect(got).toEqual(['a']);
    link.clear();
    expect(link.stats.inFlight).toBe(0);
    time.advance(100);
    expect(got).toEqual(['a']);
    expect(link.options.latencyMs).toBe(100);
    link.resetStats();
    expect(link.stats.sent).toBe(0);
  });

  it('reads an option set to undefined as left out: the default, or the current value', () => {
    const link = createLinkConditioner({ latencyMs: undefined, lossRate: undefined, seed: 1 });
    expect(link.options).toMatchObject({ latencyMs: 0, lossRate: 0 });
    link.configure({ latencyMs: 40, jitterMs: 5 });
    link.configure({ latencyMs: undefined, jitterMs: 8 });
    expect(link.options).toMatchObject({ latencyMs: 40, jitterMs: 8 });
  });

  it('rejects invalid options and sizes with INVALID_ARGUMENT, keeping the old settings', () => {
    const link = createLinkConditioner({ latencyMs: 5 });
    const bad: LinkOptions[] = [
      { latencyMs: -1 },
      { jitterMs: Number.NaN },
      { lossRate: 1.5 },
      { duplicateRate: -0.1 },
      { jitterDistribution: 'pareto' as never },
      { bandwidthBytesPerSec: Number.POSITIVE_INFINITY },
    ];
    for (const options of bad) {
      expect(() => link.configure(options)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    expect(link.options.latencyMs).toBe(5);
    expect(() => link.transmit(-1, () => {})).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createLinkConditioner({ lossRate: 2 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
