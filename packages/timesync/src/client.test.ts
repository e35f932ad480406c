import { createManualTime, ErrorCode, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createTimeSyncClient, type TimeSyncClient } from './client.js';
import { SYMMETRIC, simulate } from './harness.test.js';
import type { TimeRequest } from './messages.js';

describe('createTimeSyncClient', () => {
  it('sync() completes through a 20 % loss burst and counts timeouts', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const lossy = { ...SYMMETRIC, lossRate: 0.2 };
      const sim = simulate({ seed, up: lossy, down: lossy });
      const timeouts: TimeRequest[] = [];
      sim.client.on('timeout', (request) => timeouts.push(request));
      const done = sim.client.sync();
      sim.manual.advance(10_000);
      const stats = await done;
      expect(stats.synced).toBe(true);
      expect(sim.client.stats().timeouts).toBe(timeouts.length);
      expect(stats.requests).toBeLessThanOrEqual(20 + stats.timeouts);
      sim.client.close();
    }
  });

  it('sync() rejects with TIMEOUT when no reply ever comes, and never hangs', async () => {
    const time = createManualTime();
    const client = createTimeSyncClient({ time, send: () => {} });
    const done = client.sync();
    time.advance(5_000);
    await expect(done).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    expect(client.stats().timeouts).toBeGreaterThanOrEqual(20);
    expect(client.serverNow()).toBe(time.now());
    client.close();
  });

  it('tracks 50 ppm drift over 10 simulated minutes: p95 |error| ≤ 1 ms after the first 5 s', () => {
    const sim = simulate({ seed: 11, up: SYMMETRIC, down: SYMMETRIC, skew: 50e-6 });
    const errors: number[] = [];
    for (let s = 1; s <= 600; s++) {
      sim.manual.advance(1_000);
      if (s >= 5) errors.push(Math.abs(sim.error()));
    }
    const stats = sim.client.stats();
    errors.sort((a, b) => a - b);
    expect(errors[Math.floor(errors.length * 0.95)]).toBeLessThan(1);
    expect(errors[errors.length - 1]).toBeLessThan(3);
    expect(stats.driftPpm).toBeGreaterThan(45);
    expect(stats.driftPpm).toBeLessThan(55);
    // Adaptive sampling: at most one request per second on average.
    expect(stats.requests).toBeLessThan(600);
    expect(stats.rttMinMs).toBeGreaterThan(79);
    expect(stats.rttMeanMs).toBeGreaterThan(stats.rttMinMs);
    sim.client.close();
  });

  it('steady state after 60 s: |error| well under 0.5 ms', () => {
    const sim = simulate({ seed: 12, up: SYMMETRIC, down: SYMMETRIC, skew: 50e-6 });
    sim.manual.advance(60_000);
    expect(Math.abs(sim.error())).toBeLessThan(0.5);
    expect(sim.client.stats().requests).toBeLessThanOrEqual(60);
    sim.client.close();
  });

  it('serverNow() never goes backwards, slews, and steps only beyond the threshold', () => {
    const sim = simulate({ seed: 13, up: SYMMETRIC, down: SYMMETRIC, skew: 300e-6 });
    const steps: unknown[] = [];
    sim.client.on('step', (event) => steps.push(event));
    let last = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < 30_000; i++) {
      sim.manual.advance(1);
      const now = sim.client.serverNow();
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
    expect(steps).toHaveLength(1);
    expect(sim.client.stats().steps).toBe(1);
    sim.client.close();
  });

  it('steps when the server clock jumps, and stays monotonic through a backward step', () => {
    const time = createManualTime();
    let serverShift = 0;
    let client: TimeSyncClient;
    client = createTimeSyncClient({
      time,
      send: (request) =>
        time.setTimeout(() => {
          const t = time.now() + 1000 + serverShift;
          time.setTimeout(
            () => client.receive({ id: request.id, t0: request.t0, t1: t, t2: t }),
            20,
          );
        }, 20),
    });
    time.advance(3_000);
    expect(client.serverNow() - time.now()).toBeCloseTo(1000, 6);
    const steps: number[] = [];
    client.on('step', (e) => steps.push(e.offsetMs));
    serverShift = -500;
    const before = client.serverNow();
    time.advance(3_000);
    expect(steps.length).toBeGreaterThan(0);
    expect(client.serverNow()).toBeGreaterThanOrEqual(before);
    time.advance(3_000);
    expect(client.serverNow() - time.now()).toBeCloseTo(500, 3);
    client.close();
  });

  it('estimates the server tick within ±1 tick at 60 Hz', async () => {
    const sim = simulate({
      seed: 14,
      up: SYMMETRIC,
      down: SYMMETRIC,
      skew: 50e-6,
      client: { tickRateHz: 60, tickOriginMs: 5_000_000 },
    });
    await Promise.all([sim.client.sync(), Promise.resolve(sim.manual.advance(3_000))]);
    for (let i = 0; i < 200; i++) {
      sim.manual.advance(97);
      const truth = sim.client.tickAt(sim.serverTime());
      expect(Math.abs(sim.client.currentTick() - truth)).toBeLessThanOrEqual(1);
    }
    expect(sim.client.tickTime(6)).toBeCloseTo(5_000_100, 6);
    expect(sim.client.tickAt(sim.client.tickTime(7) + 1)).toBe(7);
    sim.client.close();
  });

  it('at() fires in server-time order, FIFO on ties, never early, and cancels', () => {
    const sim = simulate({ seed: 15, up: SYMMETRIC, down: SYMMETRIC, skew: 50e-6 });
    sim.manual.advance(2_000);
    const base = sim.client.serverNow();
    const fired: string[] = [];
    const early: number[] = [];
    const add = (name: string, offset: number) =>
      sim.client.at(base + offset, () => {
        fired.push(name);
        early.push(base + offset - sim.client.serverNow());
      });
    add('c', 300);
    add('a', 100);
    const cancelled = add('x', 200);
    add('b1', 200);
    add('b2', 200);
    add('past', -50);
    cancelled.cancel();
    cancelled.cancel();
    sim.manual.advance(1_000);
    expect(fired).toEqual(['past', 'a', 'b1', 'b2', 'c']);
    for (const e of early) expect(e).toBeLessThanOrEqual(1e-3);
    expect(() => sim.client.at(Number.NaN, () => {})).toThrow(/serverTimeMs/);
    sim.client.close();
  });

  it('rejects unknown and impossible responses without throwing', () => {
    const time = createManualTime();
    const sent: TimeRequest[] = [];
    const client = createTimeSyncClient({ time, send: (r) => sent.push(r) });
    const rejected: string[] = [];
    client.on('rejected', (error) => rejected.push(error.code));
    time.advance(0);
    const first = sent[0]!;
    client.receive({ id: 999_999, t0: 0, t1: 0, t2: 0 });
    client.receive({ id: first.id, t0: 0, t1: 10, t2: 5 });
    client.receive(undefined as never);
    expect(rejected).toEqual([
      ErrorCode.PROTOCOL_ERROR,
      ErrorCode.PROTOCOL_ERROR,
      ErrorCode.PROTOCOL_ERROR,
    ]);
    expect(client.stats().rejected).toBe(3);
    client.close();
  });

  it('survives a send() that throws: the request times out', () => {
    const time = createManualTime();
    const client = createTimeSyncClient({
      time,
      burstSize: 1,
      send: () => {
        throw new Error('down');
      },
    });
    const errors: unknown[] = [];
    client.on('rejected', (e) => errors.push(e));
    time.advance(1_500);
    expect(errors.length).toBeGreaterThan(0);
    expect(client.stats().timeouts).toBeGreaterThan(0);
    client.close();
  });

  it('close() rejects a pending sync with CLOSED and stops everything', async () => {
    const time = createManualTime();
    const client = createTimeSyncClient({ time, send: () => {}, autoStart: false });
    expect(time.pending).toBe(0);
    const done = client.sync();
    client.close();
    client.close();
    await expect(done).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    await expect(client.sync()).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    client.receive({ id: 1, t0: 0, t1: 0, t2: 0 });
    expect(client.stats().rejected).toBe(0);
  });

  it('validates its options with INVALID_ARGUMENT', () => {
    const time = createManualTime();
    const bad: Record<string, unknown>[] = [
      { requestTimeoutMs: 0 },
      { burstSize: 0 },
      { windowSize: 1.5 },
      { maxBurstAttempts: 3 },
      { intervalGrowth: 0.5 },
      { maxSlewRate: 1 },
      { tickOriginMs: Number.NaN },
      { minIntervalMs: 2000, maxIntervalMs: 1000 },
      { stepThresholdMs: -1 },
      { tickRateHz: Number.POSITIVE_INFINITY },
    ];
    for (const options of bad) {
      expect(() => createTimeSyncClient({ time, send: () => {}, ...options })).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    let caught: unknown;
    try {
      createTimeSyncClient({} as never);
    } catch (error) {
      caught = error;
    }
    expect(isTickwireError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(() => createTimeSyncClient({ send: () => {}, time: {} as never })).toThrow(/TimeSource/);
    const ok = createTimeSyncClient({
      time,
      send: () => {},
      maxSlewRate: 0.01,
      intervalGrowth: 2,
      stepThresholdMs: 10,
      autoStart: false,
    });
    expect(ok.stats().synced).toBe(false);
    expect(ok.stats().rttMinMs).toBe(0);
    ok.close();
  });
});
