import {
  createLinkConditioner,
  createManualTime,
  type LinkOptions,
  type ManualTime,
  type TimeSource,
} from '@tickwire/core';
import { expect, it } from 'vitest';
import { createTimeSyncClient, type TimeSyncClient, type TimeSyncOptions } from './client.js';
import { createTimeSyncResponder } from './responder.js';

/** A local clock running `skew` fast (50e-6 = 50 ppm) over a manual true time. */
export function skewedTime(manual: ManualTime, baseMs: number, skew: number): TimeSource {
  const rate = 1 + skew;
  return {
    now: () => baseMs + rate * manual.now(),
    setTimeout: (callback, delayMs) => manual.setTimeout(callback, delayMs / rate),
    setInterval: (callback, periodMs) => manual.setInterval(callback, periodMs / rate),
  };
}

/** Options of {@link simulate}. */
export interface SimulationOptions {
  seed: number;
  up: LinkOptions;
  down: LinkOptions;
  skew?: number;
  client?: TimeSyncOptions;
}

/** A client and a server on manual time, joined by two seeded link conditioners. */
export interface Simulation {
  manual: ManualTime;
  client: TimeSyncClient;
  /** Server time now (the truth). */
  serverTime(): number;
  /** serverNow() minus the truth. */
  error(): number;
  /** Estimated offset minus the true offset. */
  offsetError(): number;
}

export function simulate(options: SimulationOptions): Simulation {
  const manual = createManualTime();
  const clientBase = 1_000_000;
  const serverBase = 5_000_000.25;
  const skew = options.skew ?? 0;
  const local = skewedTime(manual, clientBase, skew);
  const serverClock = { now: () => serverBase + manual.now() };
  const responder = createTimeSyncResponder({ time: serverClock });
  const up = createLinkConditioner({ ...options.up, time: manual, seed: options.seed });
  const down = createLinkConditioner({ ...options.down, time: manual, seed: options.seed + 7919 });
  const client: TimeSyncClient = createTimeSyncClient({
    ...options.client,
    time: local,
    send: (request) =>
      up.transmit(13, () => {
        const response = responder.respond(request);
        down.transmit(29, () => client.receive(response));
      }),
  });
  return {
    manual,
    client,
    serverTime: serverClock.now,
    error: () => client.serverNow() - serverClock.now(),
    offsetError: () => client.stats().offsetMs - (serverClock.now() - local.now()),
  };
}

/** The symmetric link of the issue: 50 ms ± 10 ms uniform each way, 2 % loss. */
export const SYMMETRIC: LinkOptions = { latencyMs: 50, jitterMs: 10, lossRate: 0.02 };

it('a skewed clock runs fast by its skew and schedules in its own ms', () => {
  const manual = createManualTime();
  const local = skewedTime(manual, 10, 0.5);
  let firedAt = 0;
  local.setTimeout(() => {
    firedAt = local.now();
  }, 30);
  const interval = local.setInterval(() => {}, 15);
  manual.advance(100);
  interval.cancel();
  expect(firedAt).toBeCloseTo(40, 9);
  expect(local.now()).toBe(160);
});
