import { createRandom, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { createLagCompensation, type Hitbox, type LagCompensation } from './lag-compensation.js';
import { raycast2, raycast3, type Shape2, type Shape3 } from './shapes.js';

// A 60 Hz server; the target runs along +x at 10 units per tick (600 units/s).
const TICK_MS = 1000 / 60;
const SPEED_PER_TICK = 10;
const TARGET_RADIUS = 2;
// The shooter stands 50 units off the target's path, near where the shots happen, so that its
// line of sight crosses the path steeply and a target a few units off the aim point is missed.
const SHOOTER_X = 1000;
const RTT_MS = 200;
const ONE_WAY_MS = RTT_MS / 2;
const INTERPOLATION_DELAY_MS = 100;

const tickTime = (tick: number) => tick * TICK_MS;
/** Where the target really is at server time `time` (continuous motion). */
const targetX = (time: number) => (SPEED_PER_TICK * time) / TICK_MS;

const circle = (x: number, y: number, radius: number): Shape2 => ({ kind: 'circle', x, y, radius });
const box2 = (x: number, y: number, halfX: number, halfY: number): Shape2 => ({
  kind: 'aabb',
  x,
  y,
  halfX,
  halfY,
});

/** The server's hitboxes at a tick: a still shooter, the moving target, a crate far away. */
function world2(tick: number): Hitbox<string, 2>[] {
  return [
    { id: 'shooter', shape: circle(SHOOTER_X, -50, 1) },
    { id: 'target', shape: circle(targetX(tickTime(tick)), 0, TARGET_RADIUS) },
    { id: 'crate', shape: box2(-300, 0, 5, 5) },
  ];
}

/**
 * What the client renders at `renderTime`: it interpolates the two snapshots around it, which it
 * must already have received (each arrives ONE_WAY_MS after its tick) by `clientTime`.
 */
function clientSeesTargetX(renderTime: number, clientTime: number): number {
  const before = Math.floor(renderTime / TICK_MS);
  expect(tickTime(before + 1) + ONE_WAY_MS).toBeLessThanOrEqual(clientTime);
  const fraction = (renderTime - tickTime(before)) / TICK_MS;
  const x0 = targetX(tickTime(before));
  const x1 = targetX(tickTime(before + 1));
  return x0 + (x1 - x0) * fraction;
}

function recordTicks2(lag: LagCompensation<string, 2>, from: number, to: number): void {
  for (let tick = from; tick <= to; tick++) lag.record(tick, tickTime(tick), world2(tick));
}

function expectError(fn: () => unknown, code: string, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isTickwireError(caught)).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
  expect((caught as Error).message).toMatch(message);
}

describe('lag compensation, 2D: 200 ms RTT, 100 ms interpolation delay, 60 Hz', () => {
  // The client fires 7 ms after tick 120; its shot reaches the server one way later.
  const fireTime = tickTime(120) + 7;
  const arrivalTime = fireTime + ONE_WAY_MS;
  const lastTick = Math.floor(arrivalTime / TICK_MS);
  const renderTime = fireTime - ONE_WAY_MS - INTERPOLATION_DELAY_MS;

  function scenario() {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS });
    recordTicks2(lag, 0, lastTick);
    const seenX = clientSeesTargetX(renderTime, fireTime);
    // The client aims from its position exactly at the centre of the target it sees.
    const ray = { origin: { x: SHOOTER_X, y: -50 }, direction: { x: seenX - SHOOTER_X, y: 50 } };
    return { lag, seenX, ray };
  }

  it('hits on the server when rewound to what the shooter saw', () => {
    const { lag, seenX, ray } = scenario();
    const shot = lag.shotTime({
      serverTime: fireTime,
      reportedRenderTime: renderTime,
      rttMs: RTT_MS,
      interpolationDelayMs: INTERPOLATION_DELAY_MS,
    });
    expect(shot).toEqual({
      time: renderTime,
      clamped: false,
      reason: 'claim',
      estimatedTime: renderTime,
      claimErrorMs: 0,
    });
    const hit = lag.raycast(shot.time, ray, { ignore: 'shooter' });
    expect(hit?.id).toBe('target');
    // The hit point is on the target's rewound circle, on the side facing the shooter.
    expect(Math.hypot(hit!.point.x - seenX, hit!.point.y)).toBeCloseTo(TARGET_RADIUS, 9);
    expect(hit!.distance).toBeCloseTo(Math.hypot(seenX - SHOOTER_X, 50) - TARGET_RADIUS, 9);
  });

  it('misses the same shot without compensation: the target is 180 units further on', () => {
    const { lag, seenX, ray } = scenario();
    const newest = lag.stats().newestTime;
    expect(targetX(newest) - seenX).toBeGreaterThan(170);
    expect(lag.raycast(newest, ray, { ignore: 'shooter' })).toBeNull();
    // Rewinding by the one-way latency only (forgetting the interpolation delay) misses too.
    expect(lag.raycast(fireTime - ONE_WAY_MS, ray, { ignore: 'shooter' })).toBeNull();
  });

  it('takes the arrival time as serverTime with oneWayMs = rttMs and gets the same time', () => {
    const { lag } = scenario();
    const shot = lag.shotTime({
      serverTime: arrivalTime,
      rttMs: RTT_MS,
      oneWayMs: RTT_MS,
      interpolationDelayMs: INTERPOLATION_DELAY_MS,
    });
    expect(shot.reason).toBe('estimate');
    expect(shot.time).toBeCloseTo(renderTime, 9);
  });

  it('uses a claim within tolerance over the estimate when the link jitters', () => {
    const { lag } = scenario();
    // This snapshot took 130 ms, not 100: the client saw 30 ms (18 units) further back.
    const jitteredRender = fireTime - 130 - INTERPOLATION_DELAY_MS;
    const seenX = clientSeesTargetX(jitteredRender, fireTime);
    const ray = { origin: { x: SHOOTER_X, y: -50 }, direction: { x: seenX - SHOOTER_X, y: 50 } };
    const shot = lag.shotTime({
      serverTime: fireTime,
      reportedRenderTime: jitteredRender,
      rttMs: RTT_MS,
      interpolationDelayMs: INTERPOLATION_DELAY_MS,
    });
    expect(shot.reason).toBe('claim');
    expect(shot.claimErrorMs).toBeCloseTo(-30, 9);
    expect(lag.raycast(shot.time, ray, { ignore: 'shooter' })?.id).toBe('target');
    expect(lag.raycast(shot.estimatedTime, ray, { ignore: 'shooter' })).toBeNull();
  });

  it('rejects a claim beyond toleranceMs (Source: 200 ms) and uses the estimate', () => {
    const { lag } = scenario();
    // A client claiming it saw the world 500 ms before it really did, to hit a target long gone.
    const claimed = renderTime - 500;
    const ray = {
      origin: { x: SHOOTER_X, y: -50 },
      direction: { x: targetX(claimed) - SHOOTER_X, y: 50 },
    };
    const shot = lag.shotTime({
      serverTime: fireTime,
      reportedRenderTime: claimed,
      rttMs: RTT_MS,
      interpolationDelayMs: INTERPOLATION_DELAY_MS,
    });
    expect(shot).toMatchObject({ time: renderTime, clamped: false, reason: 'claim-rejected' });
    expect(shot.claimErrorMs).toBeCloseTo(-500, 9);
    expect(lag.raycast(shot.time, ray, { ignore: 'shooter' })).toBeNull();
    // A tighter tolerance rejects smaller errors.
    const tight = lag.shotTime({
      serverTime: fireTime,
      reportedRenderTime: renderTime - 30,
      rttMs: RTT_MS,
      interpolationDelayMs: INTERPOLATION_DELAY_MS,
      toleranceMs: 20,
    });
    expect(tight.reason).toBe('claim-rejected');
  });

  it('never throws on a bad claim from the network: falls back to the estimate', () => {
    const { lag } = scenario();
    for (const claim of [Number.NaN, Number.POSITIVE_INFINITY, '123' as unknown as number]) {
      const shot = lag.shotTime({
        serverTime: fireTime,
        reportedRenderTime: claim,
        rttMs: RTT_MS,
        interpolationDelayMs: INTERPOLATION_DELAY_MS,
      });
      expect(shot).toMatchObject({ time: renderTime, reason: 'invalid-claim', clamped: false });
      expect(shot.claimErrorMs).toBeNaN();
    }
  });

  it('counts shots by reason and raycast hits in stats', () => {
    const { lag, ray } = scenario();
    const input = { serverTime: fireTime, rttMs: RTT_MS, interpolationDelayMs: 100 };
    lag.shotTime(input);
    lag.shotTime({ ...input, reportedRenderTime: renderTime });
    lag.shotTime({ ...input, reportedRenderTime: renderTime + 1000 });
    lag.raycast(renderTime, ray, { ignore: 'shooter' });
    const stats = lag.stats();
    expect(stats.shots).toEqual({
      claim: 1,
      estimate: 1,
      'claim-rejected': 1,
      'invalid-claim': 0,
      window: 0,
      future: 0,
    });
    expect(stats.raycastHits).toBe(1);
    expect(stats.recordedTicks).toBe(lastTick + 1);
  });
});

describe('interpolation between ticks', () => {
  it('hits a shot halfway between ticks that either tick alone misses', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS });
    recordTicks2(lag, 0, 30);
    const time = tickTime(20) + TICK_MS / 2;
    // Halfway: x = 205, 5 units from either tick's position (radius 2).
    const ray = { origin: { x: 205, y: -50 }, direction: { x: 0, y: 1 } };
    expect(lag.raycast(time, ray, { ignore: 'shooter' })).toMatchObject({
      id: 'target',
      distance: 48,
      point: { x: 205, y: -2 },
    });
    expect(lag.raycast(tickTime(20), ray, { ignore: 'shooter' })).toBeNull();
    expect(lag.raycast(tickTime(21), ray, { ignore: 'shooter' })).toBeNull();
  });

  it('interpolates positions and sizes linearly and keeps exact tick states', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10 });
    lag.record(1, 100, [{ id: 'crouch', shape: box2(0, 10, 1, 4) }]);
    lag.record(2, 110, [{ id: 'crouch', shape: box2(8, 6, 3, 2) }]);
    expect(lag.rewind(102.5)).toEqual([{ id: 'crouch', shape: box2(2, 9, 1.5, 3.5) }]);
    expect(lag.rewind(100)).toEqual([{ id: 'crouch', shape: box2(0, 10, 1, 4) }]);
    expect(lag.rewind(110)).toEqual([{ id: 'crouch', shape: box2(8, 6, 3, 2) }]);
  });

  it('matches entities by id when their order changes between ticks', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10 });
    lag.record(1, 0, [
      { id: 'a', shape: circle(0, 0, 1) },
      { id: 'b', shape: circle(100, 0, 1) },
    ]);
    lag.record(2, 10, [
      { id: 'b', shape: circle(110, 0, 3) },
      { id: 'a', shape: circle(10, 0, 1) },
    ]);
    expect(lag.rewind(5)).toEqual([
      { id: 'a', shape: circle(5, 0, 1) },
      { id: 'b', shape: circle(105, 0, 2) },
    ]);
  });

  it('keeps a despawned entity at its last state, omits a spawned one, steps a changed kind', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10 });
    lag.record(1, 0, [
      { id: 'dies', shape: circle(0, 0, 1) },
      { id: 'morphs', shape: circle(50, 0, 1) },
    ]);
    lag.record(2, 10, [
      { id: 'morphs', shape: box2(60, 0, 1, 1) },
      { id: 'spawns', shape: circle(90, 0, 1) },
    ]);
    expect(lag.rewind(5)).toEqual([
      { id: 'dies', shape: circle(0, 0, 1) },
      { id: 'morphs', shape: circle(50, 0, 1) },
    ]);
    expect(lag.rewind(10).map((h) => h.id)).toEqual(['morphs', 'spawns']);
  });
});

describe('raycast agrees with casting against rewind()', () => {
  // Two records where entities change order, one despawns, one spawns and one changes kind: the
  // raycast loop must match entities exactly as rewind() does.
  const random = createRandom(11);
  const jitter = () => random.range(-40, 40);

  it('in 2D, for 2000 seeded rays at times between the records', () => {
    const lag = createLagCompensation<number>({ dimensions: 2, tickMs: 10 });
    const first: Hitbox<number, 2>[] = [];
    const second: Hitbox<number, 2>[] = [];
    for (let id = 0; id < 40; id++) {
      const a = id % 2 === 0 ? circle(jitter(), jitter(), 3) : box2(jitter(), jitter(), 2, 4);
      const b = id % 5 === 0 ? box2(jitter(), jitter(), 3, 1) : { ...a, x: a.x + jitter() };
      if (id % 7 !== 3) first.push({ id, shape: a });
      if (id % 9 !== 4) second.push({ id, shape: b });
    }
    lag.record(1, 0, first);
    lag.record(2, 10, second.reverse());
    let hits = 0;
    for (let k = 0; k < 2000; k++) {
      const time = random.range(-1, 11);
      const angle = random.range(0, 2 * Math.PI);
      const ray = {
        origin: { x: jitter() * 2, y: jitter() * 2 },
        direction: { x: Math.cos(angle), y: Math.sin(angle) },
      };
      let expected: { id: number; distance: number } | null = null;
      for (const { id, shape } of lag.rewind(time)) {
        const hit = raycast2(ray, shape);
        if (hit !== null && (expected === null || hit.distance < expected.distance)) {
          expected = { id, distance: hit.distance };
        }
      }
      const actual = lag.raycast(time, ray);
      expect(actual?.id).toBe(expected?.id);
      expect(actual?.distance).toBe(expected?.distance);
      if (actual !== null) hits++;
    }
    expect(hits).toBeGreaterThan(500);
  });

  it('in 3D, for 2000 seeded rays at times between the records', () => {
    const lag = createLagCompensation<number>({ dimensions: 3, tickMs: 10 });
    const sphere = (x: number, y: number, z: number, radius: number): Shape3 => ({
      kind: 'sphere',
      x,
      y,
      z,
      radius,
    });
    const box3 = (x: number, y: number, z: number): Shape3 => ({
      kind: 'aabb',
      x,
      y,
      z,
      halfX: 3,
      halfY: 5,
      halfZ: 2,
    });
    const first: Hitbox<number, 3>[] = [];
    const second: Hitbox<number, 3>[] = [];
    for (let id = 0; id < 40; id++) {
      const a =
        id % 2 === 0 ? sphere(jitter(), jitter(), jitter(), 4) : box3(jitter(), 0, jitter());
      const b = id % 5 === 0 ? box3(jitter(), 0, jitter()) : { ...a, z: a.z + jitter() };
      if (id % 7 !== 3) first.push({ id, shape: a });
      if (id % 9 !== 4) second.push({ id, shape: b });
    }
    lag.record(1, 0, first);
    lag.record(2, 10, second.reverse());
    let hits = 0;
    for (let k = 0; k < 2000; k++) {
      const time = random.range(-1, 11);
      const angle = random.range(0, 2 * Math.PI);
      const ray = {
        origin: { x: jitter() * 2, y: random.range(-3, 3), z: jitter() * 2 },
        direction: { x: Math.cos(angle), y: random.range(-0.05, 0.05), z: Math.sin(angle) },
      };
      let expected: { id: number; distance: number } | null = null;
      for (const { id, shape } of lag.rewind(time)) {
        if (id === 2) continue;
        const hit = raycast3(ray, shape);
        if (hit !== null && (expected === null || hit.distance < expected.distance)) {
          expected = { id, distance: hit.distance };
        }
      }
      const actual = lag.raycast(time, ray, { ignore: 2 });
      expect(actual?.id).toBe(expected?.id);
      expect(actual?.distance).toBe(expected?.distance);
      if (actual !== null) hits++;
    }
    expect(hits).toBeGreaterThan(400);
  });
});

describe('window and history clamps', () => {
  it('clamps a shot older than windowMs to serverTime − windowMs; the shooter must lead', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS, windowMs: 1000 });
    // A client rendering 1.2 s behind its newest snapshot (a huge buffer, or a lag switch).
    const fireTime = tickTime(150) + 3;
    const interpolationDelayMs = 1200;
    const renderTime = fireTime - ONE_WAY_MS - interpolationDelayMs;
    recordTicks2(lag, 0, Math.floor((fireTime + ONE_WAY_MS) / TICK_MS));
    const shot = lag.shotTime({
      serverTime: fireTime,
      reportedRenderTime: renderTime,
      rttMs: RTT_MS,
      interpolationDelayMs,
    });
    expect(shot).toMatchObject({ time: fireTime - 1000, clamped: true, reason: 'window' });
    expect(shot.estimatedTime).toBeCloseTo(renderTime, 9);
    const aimAt = (x: number) => ({
      origin: { x: SHOOTER_X, y: -50 },
      direction: { x: x - SHOOTER_X, y: 50 },
    });
    // Aiming at what it saw 1.3 s ago misses; aiming where the target was 1 s ago hits.
    expect(lag.raycast(shot.time, aimAt(targetX(renderTime)), { ignore: 'shooter' })).toBeNull();
    expect(lag.raycast(shot.time, aimAt(targetX(shot.time)), { ignore: 'shooter' })?.id).toBe(
      'target',
    );
    // The clamped time is still in the history (default historyMs = windowMs + 250).
    expect(lag.stats().historyClamps).toBe(0);
  });

  it('clamps a time after serverTime to serverTime', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS });
    const shot = lag.shotTime({
      serverTime: 500,
      reportedRenderTime: 550,
      rttMs: 0,
      interpolationDelayMs: 0,
    });
    expect(shot).toMatchObject({ time: 500, clamped: true, reason: 'future', claimErrorMs: 50 });
    expect(lag.stats().shots.future).toBe(1);
  });

  it('clamps a window of 0 to serverTime: no compensation', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS, windowMs: 0 });
    const shot = lag.shotTime({ serverTime: 500, rttMs: 100, interpolationDelayMs: 100 });
    expect(shot).toMatchObject({ time: 500, clamped: true, reason: 'window' });
  });

  it('uses the oldest or newest held record outside the history and counts it', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS, windowMs: 1000 });
    recordTicks2(lag, 0, 300);
    const stats = lag.stats();
    // ceil(1250 ms / 16.67 ms) + 2 = 77 records: ticks 224…300.
    expect(stats.capacityTicks).toBe(77);
    expect(stats.storedTicks).toBe(77);
    expect(stats.oldestTime).toBeCloseTo(tickTime(224), 9);
    expect(stats.newestTime).toBeCloseTo(tickTime(300), 9);
    const oldest = lag.rewind(0).find((h) => h.id === 'target')!.shape;
    expect(oldest).toMatchObject({ x: targetX(tickTime(224)) });
    const newest = lag.rewind(tickTime(400)).find((h) => h.id === 'target')!.shape;
    expect(newest).toMatchObject({ x: targetX(tickTime(300)) });
    expect(lag.stats().historyClamps).toBe(2);
    lag.rewind(tickTime(250));
    expect(lag.stats()).toMatchObject({ historyClamps: 2, queries: 3 });
  });

  it('reuses its storage: bytes stay flat once the ring has wrapped', () => {
    const lag = createLagCompensation<number>({ dimensions: 2, tickMs: TICK_MS });
    const entities = Array.from({ length: 100 }, (_, i) => ({ id: i, shape: circle(i, 0, 1) }));
    for (let tick = 0; tick < 100; tick++) lag.record(tick, tickTime(tick), entities);
    const warm = lag.stats().storageBytes;
    // 78 slots (77 + one spare), each grown 64 → 128 rows of 1 kind byte + 4 float64.
    expect(warm).toBe(78 * 128 * (1 + 4 * 8));
    for (let tick = 100; tick < 1000; tick++) lag.record(tick, tickTime(tick), entities);
    expect(lag.stats().storageBytes).toBe(warm);
    expect(lag.rewind(tickTime(999))).toHaveLength(100);
  });
});

describe('queries', () => {
  it('returns the nearest hit, honours ignore and maxDistance', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10 });
    lag.record(1, 0, [
      { id: 'far', shape: circle(50, 0, 1) },
      { id: 'near', shape: box2(20, 0, 1, 1) },
      { id: 'self', shape: circle(0, 0, 1) },
    ]);
    const ray = { origin: { x: 0, y: 0 }, direction: { x: 2, y: 0 } };
    // Starting inside its own hitbox: the shooter hits itself at 0 unless ignored.
    expect(lag.raycast(0, ray)).toMatchObject({ id: 'self', distance: 0 });
    expect(lag.raycast(0, ray, { ignore: 'self' })).toEqual({
      id: 'near',
      distance: 19,
      point: { x: 19, y: 0 },
    });
    expect(lag.raycast(0, ray, { ignore: 'self', maxDistance: 18 })).toBeNull();
    const past = { origin: { x: 30, y: 0 }, direction: { x: 1, y: 0 } };
    expect(lag.raycast(0, past)?.id).toBe('far');
  });

  it('lists ids overlapping a shape at the rewound time', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS });
    recordTicks2(lag, 0, 30);
    const time = tickTime(20) + TICK_MS / 2;
    // A blast of radius 4 at x = 209 reaches the rewound target (x = 205, radius 2: 4 ≤ 6), not
    // the target of tick 20 (x = 200: 9 > 6).
    expect(lag.overlap(time, circle(209, 0, 4))).toEqual(['target']);
    expect(lag.overlap(tickTime(20), circle(209, 0, 4))).toEqual([]);
    // x ∈ [200, 1000], y ∈ [−50, 0]: touches the shooter and the target.
    const area = box2(600, -25, 400, 25);
    expect(lag.overlap(time, area)).toEqual(['shooter', 'target']);
    expect(lag.overlap(time, area, { ignore: 'shooter' })).toEqual(['target']);
    expect(lag.overlap(time, circle(-300, 10, 6))).toEqual(['crate']);
    expect(lag.overlap(time, box2(-290, 0, 4.9, 1))).toEqual([]);
  });

  it('answers empty on an empty or cleared history', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: TICK_MS });
    const ray = { origin: { x: 0, y: 0 }, direction: { x: 1, y: 0 } };
    expect(lag.rewind(0)).toEqual([]);
    expect(lag.raycast(0, ray)).toBeNull();
    expect(lag.overlap(0, circle(0, 0, 1000))).toEqual([]);
    recordTicks2(lag, 0, 5);
    lag.clear();
    expect(lag.stats()).toMatchObject({ storedTicks: 0, oldestTime: Number.NaN });
    expect(lag.rewind(0)).toEqual([]);
    // After clear, ticks may start over.
    lag.record(0, 0, world2(0));
    expect(lag.rewind(0)).toHaveLength(3);
  });
});

describe('lag compensation, 3D', () => {
  const sphere = (x: number, y: number, z: number, radius: number): Shape3 => ({
    kind: 'sphere',
    x,
    y,
    z,
    radius,
  });
  const box3 = (x: number, y: number, z: number, h: number): Shape3 => ({
    kind: 'aabb',
    x,
    y,
    z,
    halfX: h,
    halfY: h * 2,
    halfZ: h,
  });
  // Ids are numbers here: 1 shooter, 2 the target's head (sphere), 3 its body (box).
  function world3(tick: number): Hitbox<number, 3>[] {
    const x = targetX(tickTime(tick));
    return [
      { id: 1, shape: box3(SHOOTER_X, 1, -50, 0.5) },
      { id: 2, shape: sphere(x, 1.7, 0, 0.25) },
      { id: 3, shape: box3(x, 0.8, 0, 0.4) },
    ];
  }

  it('hits the head the shooter saw at 200 ms RTT + 100 ms interpolation, misses without', () => {
    const lag = createLagCompensation<number>({ dimensions: 3, tickMs: TICK_MS });
    const fireTime = tickTime(90) + 11;
    const renderTime = fireTime - ONE_WAY_MS - INTERPOLATION_DELAY_MS;
    for (let tick = 0; tick <= Math.floor((fireTime + ONE_WAY_MS) / TICK_MS); tick++) {
      lag.record(tick, tickTime(tick), world3(tick));
    }
    const seenX = clientSeesTargetX(renderTime, fireTime);
    const eye = { x: SHOOTER_X, y: 1.7, z: -50 };
    const ray = { origin: eye, direction: { x: seenX - SHOOTER_X, y: 0, z: 50 } };
    const shot = lag.shotTime({
      serverTime: fireTime,
      reportedRenderTime: renderTime,
      rttMs: RTT_MS,
      interpolationDelayMs: INTERPOLATION_DELAY_MS,
    });
    const hit = lag.raycast(shot.time, ray, { ignore: 1 })!;
    expect(hit.id).toBe(2);
    expect(Math.hypot(hit.point.x - seenX, hit.point.y - 1.7, hit.point.z)).toBeCloseTo(0.25, 9);
    expect(lag.raycast(lag.stats().newestTime, ray, { ignore: 1 })).toBeNull();
    // Aimed lower, at the body the client saw: the box.
    const body = { origin: eye, direction: { x: seenX - SHOOTER_X, y: -0.9, z: 50 } };
    expect(lag.raycast(shot.time, body, { ignore: 1 })?.id).toBe(3);
  });

  it('interpolates 3D hitboxes between ticks', () => {
    const lag = createLagCompensation<number>({ dimensions: 3, tickMs: TICK_MS });
    for (let tick = 0; tick <= 12; tick++) lag.record(tick, tickTime(tick), world3(tick));
    const time = tickTime(10) + TICK_MS / 4;
    expect(lag.rewind(time)).toEqual([
      { id: 1, shape: box3(SHOOTER_X, 1, -50, 0.5) },
      { id: 2, shape: sphere(102.5, 1.7, 0, 0.25) },
      { id: 3, shape: box3(102.5, 0.8, 0, 0.4) },
    ]);
    const ray = { origin: { x: 102.5, y: 1.7, z: -10 }, direction: { x: 0, y: 0, z: 1 } };
    expect(lag.raycast(time, ray)).toMatchObject({ id: 2, distance: 9.75 });
    expect(lag.raycast(tickTime(10), ray)).toBeNull();
  });

  it('lists overlaps of spheres and boxes in 3D', () => {
    const lag = createLagCompensation<number>({ dimensions: 3, tickMs: TICK_MS });
    lag.record(0, 0, world3(0));
    expect(lag.overlap(0, sphere(0, 1.7, 0.5, 0.3))).toEqual([2, 3]);
    expect(lag.overlap(0, sphere(0, 3, 0, 0.5))).toEqual([]);
    expect(lag.overlap(0, box3(SHOOTER_X, 0, -49, 0.6))).toEqual([1]);
    expect(lag.overlap(0, box3(0, 0, 0, 1))).toEqual([2, 3]);
    expect(lag.overlap(0, box3(0, 0, 0, 1), { ignore: 3 })).toEqual([2]);
  });
});

describe('errors', () => {
  it('rejects bad options with INVALID_ARGUMENT', () => {
    const create = (options: object) => () =>
      createLagCompensation<string>({ dimensions: 2, tickMs: 10, ...options } as never);
    expectError(create({ dimensions: 4 }), 'INVALID_ARGUMENT', /dimensions must be 2 or 3, got 4/);
    expectError(create({ tickMs: 0 }), 'INVALID_ARGUMENT', /tickMs must be a finite number > 0/);
    expectError(create({ windowMs: -1 }), 'INVALID_ARGUMENT', /windowMs must be/);
    expectError(create({ windowMs: 1000, historyMs: 900 }), 'INVALID_ARGUMENT', /historyMs/);
    expectError(create({ maxEntities: 1.5 }), 'INVALID_ARGUMENT', /maxEntities must be an integer/);
    expectError(create({ tickMs: 0.001 }), 'INVALID_ARGUMENT', /at most 99998 ticks/);
  });

  it('rejects bad records and leaves the history unchanged', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10, maxEntities: 2 });
    lag.record(5, 50, [{ id: 'a', shape: circle(1, 2, 3) }]);
    const bad = (tick: number, time: number, entries: unknown) => () =>
      lag.record(tick, time, entries as Hitbox<string, 2>[]);
    const ok = [{ id: 'a', shape: circle(0, 0, 1) }];
    expectError(bad(Number.NaN, 60, ok), 'INVALID_ARGUMENT', /tick must be a finite number/);
    expectError(bad(6, Number.NaN, ok), 'INVALID_ARGUMENT', /time must be a finite number/);
    expectError(
      bad(5, 60, ok),
      'INVALID_ARGUMENT',
      /tick 5 must be after the last recorded tick 5/,
    );
    expectError(bad(6, 50, ok), 'INVALID_ARGUMENT', /time 50 must be after the last recorded time/);
    expectError(
      bad(6, 60, [{ id: 'a', shape: circle(0, 0, -1) }]),
      'INVALID_ARGUMENT',
      /entry 0 \(id a\): shape\.radius must be a finite number ≥ 0, got -1/,
    );
    expectError(
      bad(6, 60, [{ id: 'a', shape: box2(Number.NaN, 0, 1, 1) }]),
      'INVALID_ARGUMENT',
      /shape\.x must be a finite number, got NaN/,
    );
    expectError(
      bad(6, 60, [{ id: 'a', shape: { kind: 'sphere', x: 0, y: 0, z: 0, radius: 1 } }]),
      'INVALID_ARGUMENT',
      /shape\.kind must be 'circle' or 'aabb' in 2D, got sphere/,
    );
    expectError(bad(6, 60, [{ id: 'a', shape: null }]), 'INVALID_ARGUMENT', /must be an object/);
    expectError(bad(6, 60, [null]), 'INVALID_ARGUMENT', /entry 0 must be an object/);
    expectError(
      bad(6, 60, [
        { id: 'a', shape: circle(0, 0, 1) },
        { id: 'a', shape: circle(0, 0, 1) },
      ]),
      'INVALID_ARGUMENT',
      /id a appears twice/,
    );
    const three = ['a', 'b', 'c'].map((id) => ({ id, shape: circle(0, 0, 1) }));
    expectError(bad(6, 60, three), 'LIMIT_EXCEEDED', /more than maxEntities \(2\)/);
    expect(lag.stats()).toMatchObject({ storedTicks: 1, recordedTicks: 1, newestTime: 50 });
    expect(lag.rewind(50)).toEqual([{ id: 'a', shape: circle(1, 2, 3) }]);
    // The failed tick can be recorded once fixed.
    lag.record(6, 60, ok);
    expect(lag.rewind(60)).toEqual(ok);
  });

  it('rejects 2D shapes in a 3D history', () => {
    const lag = createLagCompensation<number>({ dimensions: 3, tickMs: 10 });
    expectError(
      () => lag.record(0, 0, [{ id: 1, shape: circle(0, 0, 1) as never }]),
      'INVALID_ARGUMENT',
      /'sphere' or 'aabb' in 3D, got circle/,
    );
    expectError(
      () => lag.record(0, 0, [{ id: 1, shape: { kind: 'aabb', x: 0, y: 0, halfX: 1 } as never }]),
      'INVALID_ARGUMENT',
      /shape\.z must be a finite number, got undefined/,
    );
  });

  it('rejects bad query arguments with INVALID_ARGUMENT', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10 });
    lag.record(0, 0, [{ id: 'a', shape: circle(0, 0, 1) }]);
    const ray = { origin: { x: -5, y: 0 }, direction: { x: 1, y: 0 } };
    expectError(() => lag.rewind(Number.NaN), 'INVALID_ARGUMENT', /rewind: time/);
    expectError(() => lag.raycast(Number.NaN, ray), 'INVALID_ARGUMENT', /raycast: time/);
    expectError(
      () => lag.raycast(0, { ...ray, direction: { x: 0, y: 0 } }),
      'INVALID_ARGUMENT',
      /ray\.direction must be a finite, non-zero vector/,
    );
    expectError(
      () => lag.raycast(0, { ...ray, origin: { x: Number.NaN, y: 0 } }),
      'INVALID_ARGUMENT',
      /ray\.origin/,
    );
    expectError(() => lag.raycast(0, ray, { maxDistance: -1 }), 'INVALID_ARGUMENT', /maxDistance/);
    // A ray decoded from a client's shot may lack its parts: a typed error, not a TypeError.
    for (const broken of [null, {}, { origin: ray.origin }, { direction: ray.direction }]) {
      expectError(() => lag.raycast(0, broken as never), 'INVALID_ARGUMENT', /raycast: ray/);
    }
    expectError(
      () => lag.overlap(Number.NaN, circle(0, 0, 1)),
      'INVALID_ARGUMENT',
      /overlap: time/,
    );
    expectError(
      () => lag.overlap(0, circle(0, 0, Number.POSITIVE_INFINITY)),
      'INVALID_ARGUMENT',
      /overlap: shape\.radius must be a finite number ≥ 0/,
    );
    // A failed query leaves the history intact.
    expect(lag.raycast(0, ray)?.id).toBe('a');
  });

  it('rejects non-finite server-side shotTime inputs, not client claims', () => {
    const lag = createLagCompensation<string>({ dimensions: 2, tickMs: 10 });
    const input = { serverTime: 1000, rttMs: 100, interpolationDelayMs: 100 };
    expectError(
      () => lag.shotTime({ ...input, serverTime: Number.NaN }),
      'INVALID_ARGUMENT',
      /shotTime: serverTime must be a finite number/,
    );
    expectError(() => lag.shotTime({ ...input, rttMs: -1 }), 'INVALID_ARGUMENT', /rttMs/);
    expectError(
      () => lag.shotTime({ ...input, oneWayMs: Number.NaN }),
      'INVALID_ARGUMENT',
      /oneWayMs/,
    );
    expectError(
      () => lag.shotTime({ ...input, interpolationDelayMs: Number.POSITIVE_INFINITY }),
      'INVALID_ARGUMENT',
      /interpolationDelayMs/,
    );
    expectError(
      () => lag.shotTime({ ...input, toleranceMs: -5 }),
      'INVALID_ARGUMENT',
      /toleranceMs/,
    );
  });
});
