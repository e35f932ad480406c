import {
  createLinkConditioner,
  createManualTime,
  ErrorCode,
  isTickwireError,
  type ManualTime,
  TickwireError,
} from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createTimeSyncClient, type TimeSyncClient } from './client.js';
import { SYMMETRIC, simulate } from './harness.test.js';
import type { TimeRequest } from './messages.js';

/**
 * A client whose server runs `offsetMs` ahead of `time` (behind if negative), each way
 * `delayMs`, answering at once; `beforeSend` runs first and may throw.
 */
function echoClient(
  time: ManualTime,
  offsetMs: number,
  delayMs: number,
  beforeSend: () => void = () => {},
): TimeSyncClient {
  const client: TimeSyncClient = createTimeSyncClient({
    time,
    send: (request) => {
      beforeSend();
      time.setTimeout(() => {
        const t = time.now() + offsetMs;
        time.setTimeout(
          () => client.receive({ id: request.id, t0: request.t0, t1: t, t2: t }),
          delayMs,
        );
      }, delayMs);
    },
  });
  return client;
}

/** A client synced to a server 1000 ms ahead over a 10 ms each way link. */
function syncedClient(time: ManualTime): TimeSyncClient {
  const client = echoClient(time, 1_000, 10);
  time.advance(2_000);
  expect(client.stats().synced).toBe(true);
  return client;
}

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
    expect(() => client.serverNow()).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );
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
      if (last === Number.NEGATIVE_INFINITY && !sim.client.stats().synced) continue;
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

  it('one forged but self-consistent reply moves the estimate by no more than its round trip', () => {
    for (const forgedShiftMs of [-5_000, 5_000]) {
      const time = createManualTime();
      let shiftNext = 0;
      let client: TimeSyncClient;
      client = createTimeSyncClient({
        time,
        send: (request) =>
          time.setTimeout(() => {
            const t = time.now() + 1000 + shiftNext;
            shiftNext = 0;
            time.setTimeout(
              () => client.receive({ id: request.id, t0: request.t0, t1: t, t2: t }),
              20,
            );
          }, 20),
      });
      time.advance(10_000);
      expect(client.serverNow() - time.now()).toBeCloseTo(1000, 6);
      shiftNext = forgedShiftMs; // the next reply, alone, claims a server 5 s off
      const requestsBefore = client.stats().requests;
      const worst = { error: 0 };
      for (let ms = 0; ms < 10_000; ms += 10) {
        time.advance(10);
        worst.error = Math.max(worst.error, Math.abs(client.serverNow() - time.now() - 1000));
      }
      expect(client.stats().requests).toBeGreaterThan(requestsBefore + 5);
      expect(worst.error, `forged shift ${forgedShiftMs} ms`).toBeLessThanOrEqual(40);
      client.close();
    }
  });

  it('after two forged replies in a row, genuine replies alternating with forged ones still get in', () => {
    // Two forged replies take the window (as one did before replies were held back); then
    // every other reply is genuine. Held back, each genuine one was followed by a forged one
    // taken in its place: the forged estimate stayed ~98 % of the time (50 % without holding).
    const time = createManualTime();
    const shifts: number[] = [];
    let client: TimeSyncClient;
    client = createTimeSyncClient({
      time,
      send: (request) =>
        time.setTimeout(() => {
          const t = time.now() + 1000 + (shifts.shift() ?? 0);
          time.setTimeout(
            () => client.receive({ id: request.id, t0: request.t0, t1: t, t2: t }),
            20,
          );
        }, 20),
    });
    time.advance(10_000);
    expect(client.stats().offsetMs).toBeCloseTo(1000, 6);
    shifts.push(5_000, 5_000);
    for (let i = 0; i < 1_000; i++) shifts.push(0, 5_000);
    let right = 0;
    let steps = 0;
    for (; steps < 6_000; steps++) {
      time.advance(10);
      if (Math.abs(client.stats().offsetMs - 1000) <= 40) right++;
    }
    expect(shifts.length).toBeGreaterThan(0); // still alternating at the end
    expect(right / steps).toBeGreaterThanOrEqual(0.45);
    client.close();
  });

  it('a server clock step does not leave behind a drift fitted across it', () => {
    // 120 s of drift history on a link without drift, then the server clock steps by 2 s: the
    // bounds cross and the history restarts; the drift fitted across the step (pinned at
    // ±maxDriftPpm) must not outlive it.
    for (const shift of [2_000, -2_000]) {
      const manual = createManualTime();
      let serverShift = 0;
      const serverNow = () => 5_000_000 + manual.now() + serverShift;
      const up = createLinkConditioner({ ...SYMMETRIC, time: manual, seed: 3 });
      const down = createLinkConditioner({ ...SYMMETRIC, time: manual, seed: 33 });
      const client: TimeSyncClient = createTimeSyncClient({
        time: manual,
        send: (request) =>
          up.transmit(13, () => {
            const t = serverNow();
            down.transmit(29, () =>
              client.receive({ id: request.id, t0: request.t0, t1: t, t2: t }),
            );
          }),
      });
      manual.advance(120_000);
      expect(Math.abs(client.stats().driftPpm)).toBeLessThan(10);
      serverShift = shift;
      manual.advance(3_000);
      const errors: number[] = [];
      for (let s = 0; s < 30; s++) {
        manual.advance(1_000);
        expect(Math.abs(client.stats().driftPpm)).toBeLessThan(10);
        errors.push(Math.abs(client.serverNow() - serverNow()));
      }
      expect(Math.max(...errors)).toBeLessThan(2);
      client.close();
    }
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

  it('tickAt() and tickTime() reject a non-finite argument with INVALID_ARGUMENT, not NaN', () => {
    const client = createTimeSyncClient({
      time: createManualTime(),
      send: () => {},
      autoStart: false,
      tickOriginMs: 1_000,
    });
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => client.tickAt(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
      expect(() => client.tickTime(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    expect(() => client.tickAt('5' as never)).toThrow(/serverTimeMs must be finite/);
    expect(() => client.tickTime(undefined as never)).toThrow(/tick must be finite/);
    // Both need no sample: pure arithmetic on the tick rate and origin.
    expect(client.tickAt(1_000 + 50)).toBe(3);
    expect(client.tickTime(3)).toBe(1_050);
    client.close();
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

  it('counts a send() that throws as rejected, at once, and goes on sampling', async () => {
    const time = createManualTime();
    let failures = 3;
    const client = echoClient(time, 1_000, 10, () => {
      if (failures-- > 0) throw new Error('down');
    });
    const errors: TickwireError[] = [];
    client.on('rejected', (e) => errors.push(e));
    const done = client.sync();
    time.advance(2_000);
    const stats = await done;
    expect(stats.synced).toBe(true);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatchObject({ code: ErrorCode.INTERNAL, message: /send\(\) threw: down/ });
    expect(stats.rejected).toBe(3);
    // Never sent, so nothing to wait for: not counted again as a timeout.
    expect(stats.timeouts).toBe(0);
    expect(stats.samples).toBe(10);
    client.close();
  });

  it('a send() that always throws: sync() rejects with TIMEOUT, the loop keeps trying', async () => {
    const time = createManualTime();
    const client = createTimeSyncClient({
      time,
      burstSize: 2,
      send: () => {
        throw new TickwireError(ErrorCode.CONNECTION_CLOSED, 'gone');
      },
    });
    const codes: string[] = [];
    client.on('rejected', (e) => codes.push(e.code));
    const done = client.sync();
    // Four attempts, 100 ms apart: the burst gives up on the last, with nothing in flight.
    time.advance(300);
    await expect(done).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    const afterBurst = client.stats().requests;
    expect(afterBurst).toBe(4);
    time.advance(10_000);
    const stats = client.stats();
    expect(stats.requests).toBeGreaterThan(afterBurst + 5);
    expect(stats.rejected).toBe(stats.requests);
    expect(stats.timeouts).toBe(0);
    expect(new Set(codes)).toEqual(new Set([ErrorCode.CONNECTION_CLOSED]));
    // A later sync() starts a new burst on the same loop.
    const again = client.sync();
    time.advance(1_000);
    await expect(again).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    client.close();
    expect(time.pending).toBe(0);
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

describe('serverNow() before and across the first sample', () => {
  it('throws INVALID_STATE before the first sample, then never decreases (server behind)', () => {
    // The server clock runs 100 s behind the local one: a local-time fallback before the
    // first sample would have jumped back by 100 s at it.
    const time = createManualTime(200_000);
    const client = echoClient(time, -100_000, 25);
    const expectNotReady = (fn: () => unknown) =>
      expect(fn).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
    expectNotReady(() => client.serverNow());
    expectNotReady(() => client.currentTick());
    const steps: (number | null)[] = [];
    client.on('step', (event) => steps.push(event.previousOffsetMs));
    let last = Number.NEGATIVE_INFINITY;
    let readings = 0;
    for (let i = 0; i < 5_000; i++) {
      time.advance(1);
      if (!client.stats().synced) {
        expectNotReady(() => client.serverNow());
        continue;
      }
      const now = client.serverNow();
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
      readings++;
    }
    // The first sample came after one round trip (50 ms): from then on, a value every ms.
    expect(readings).toBe(5_000 - 49);
    expect(steps).toEqual([null]);
    expect(client.serverNow() - time.now()).toBeCloseTo(-100_000, 6);
    client.close();
  });
});

describe('responses with impossible timestamps', () => {
  it('rejects server processing longer than the round trip, counts it, keeps the request', () => {
    const time = createManualTime(1_000);
    const sent: TimeRequest[] = [];
    const client = createTimeSyncClient({ time, burstSize: 1, send: (r) => sent.push(r) });
    const rejected: TickwireError[] = [];
    client.on('rejected', (error) => rejected.push(error));
    time.advance(0);
    const request = sent[0]!;
    time.advance(40);
    // t3 − t0 = 40 ms, yet the server says it held the request for 41 ms.
    client.receive({ id: request.id, t0: request.t0, t1: 5_000, t2: 5_041 });
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({
      code: ErrorCode.PROTOCOL_ERROR,
      details: { t0: 1_000, t1: 5_000, t2: 5_041, t3: 1_040 },
    });
    let stats = client.stats();
    expect(stats.rejected).toBe(1);
    expect(stats.samples).toBe(0);
    expect(stats.synced).toBe(false);
    // A forged reply does not cancel the request: the genuine one is still taken. Processing
    // as long as the whole round trip (a zero-delay link) is possible and accepted.
    client.receive({ id: request.id, t0: request.t0, t1: 5_000, t2: 5_040 });
    stats = client.stats();
    expect(stats.rejected).toBe(1);
    expect(stats.samples).toBe(1);
    expect(stats.rttMinMs).toBe(0);
    expect(stats.offsetMs).toBeCloseTo(4_000, 9);
    client.close();
  });

  it('a link that always forges such replies never syncs and never corrupts the estimate', async () => {
    const time = createManualTime();
    const client: TimeSyncClient = createTimeSyncClient({
      time,
      send: (request) =>
        time.setTimeout(() => {
          const t = time.now() + 1_000;
          client.receive({ id: request.id, t0: request.t0, t1: t, t2: t + 500 });
        }, 20),
    });
    const done = client.sync();
    time.advance(5_000);
    await expect(done).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    const stats = client.stats();
    expect(stats.requests).toBeGreaterThan(20);
    expect(stats.rejected).toBe(stats.requests);
    expect(stats.samples).toBe(0);
    client.close();
  });
});

describe('at()', () => {
  it('a callback re-scheduling itself at serverNow() runs once per scheduler turn', () => {
    const time = createManualTime();
    const client = syncedClient(time);
    const order: string[] = [];
    let generation = 0;
    const again = () => {
      generation++;
      const n = generation;
      order.push(`at${n}`);
      time.setTimeout(() => order.push(`timer${n}`), 0);
      // Bounded only so that a regression ends instead of hanging the test.
      if (n < 100_000) client.at(client.serverNow(), again);
    };
    client.at(client.serverNow(), again);
    // One scheduler turn, one generation: the pass does not run what it schedules.
    expect(time.runAll(1)).toBe(1);
    expect(generation).toBe(1);
    // Other timers interleave between the generations.
    expect(time.runAll(5)).toBe(5);
    expect(order).toEqual(['at1', 'timer1', 'at2', 'timer2', 'at3', 'timer3']);
    client.close();
    expect(time.pending).toBe(0);
    time.advance(1_000);
    expect(generation).toBe(3);
  });

  it('an event scheduled in the past by a callback fires in the next turn, after the pass', () => {
    const time = createManualTime();
    const client = syncedClient(time);
    const base = client.serverNow();
    const fired: string[] = [];
    client.at(base + 10, () => {
      fired.push('a');
      client.at(base - 1_000, () => fired.push('late'));
    });
    client.at(base + 10, () => fired.push('b'));
    client.at(base + 100, () => fired.push('c'));
    time.advance(20);
    expect(fired).toEqual(['a', 'b', 'late']);
    time.advance(200);
    expect(fired).toEqual(['a', 'b', 'late', 'c']);
    client.close();
  });

  it('a throwing callback is reported by `error`; later events fire, in order', () => {
    const time = createManualTime();
    const client = syncedClient(time);
    const base = client.serverNow();
    const fired: string[] = [];
    const errors: [unknown, number][] = [];
    client.on('error', (error, event) => errors.push([error, event.serverTimeMs]));
    const boom = new Error('boom');
    client.at(base + 50, () => fired.push('a'));
    client.at(base + 100, () => {
      fired.push('b');
      throw boom;
    });
    client.at(base + 100, () => fired.push('c'));
    const cancelled = client.at(base + 100, () => fired.push('x'));
    client.at(base + 150, () => {
      fired.push('d');
      throw 'not an Error';
    });
    client.at(base + 200, () => fired.push('e'));
    cancelled.cancel();
    time.advance(1_000);
    expect(fired).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(errors).toEqual([
      [boom, base + 100],
      ['not an Error', base + 150],
    ]);
    // The timer is re-armed after a throw: a new event still fires.
    client.at(client.serverNow() + 10, () => fired.push('f'));
    time.advance(100);
    expect(fired.at(-1)).toBe('f');
    client.close();
  });

  it('rethrows a callback error in a microtask when nobody listens to `error`', () => {
    const time = createManualTime();
    const client = syncedClient(time);
    const base = client.serverNow();
    const tasks: (() => void)[] = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (task) => {
      tasks.push(task);
    };
    const fired: string[] = [];
    try {
      client.at(base + 10, () => {
        throw new Error('unheard');
      });
      client.at(base + 10, () => fired.push('next'));
      time.advance(100);
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(fired).toEqual(['next']);
    expect(tasks).toHaveLength(1);
    expect(() => tasks[0]!()).toThrow('unheard');
    client.close();
  });

  it('a callback may cancel an event due in the same pass, or close the client', () => {
    const time = createManualTime();
    const client = syncedClient(time);
    const base = client.serverNow();
    const fired: string[] = [];
    const later = client.at(base + 10, () => fired.push('cancelled'));
    client.at(base + 5, () => {
      fired.push('a');
      later.cancel();
    });
    client.at(base + 20, () => {
      fired.push('b');
      client.close();
    });
    client.at(base + 20, () => fired.push('after close'));
    time.advance(100);
    expect(fired).toEqual(['a', 'b']);
    // A closed client schedules nothing.
    client.at(base + 200, () => fired.push('never'));
    time.advance(1_000);
    expect(fired).toEqual(['a', 'b']);
    expect(time.pending).toBe(0);
  });

  it('events scheduled before the first sample wait for it', () => {
    const time = createManualTime();
    const client = echoClient(time, 1_000, 10);
    const firedAt: number[] = [];
    // Server time 1000 is the server's time at local 0: already past by the first sample.
    client.at(1_000, () => firedAt.push(client.serverNow()));
    client.at(1_500, () => firedAt.push(client.serverNow()));
    expect(time.pending).toBe(1);
    time.advance(19);
    expect(firedAt).toEqual([]);
    time.advance(1);
    expect(firedAt).toHaveLength(1);
    expect(firedAt[0]).toBeCloseTo(1_020, 6);
    time.advance(1_000);
    expect(firedAt).toHaveLength(2);
    expect(firedAt[1]).toBeGreaterThanOrEqual(1_500 - 1e-3);
    expect(firedAt[1]).toBeLessThan(1_501);
    client.close();
  });
});
