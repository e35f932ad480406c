import {
  createLinkConditioner,
  createManualTime,
  createRandom,
  ErrorCode,
  isTickwireError,
  type LinkOptions,
} from '@tickwire/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  createInterpolator,
  type FrameMode,
  type InterpolatorOptions,
  lerp,
  lerpAngle,
  type QuaternionLike,
  slerpQuaternion,
} from './interpolation.js';

const quat = (x: number, y: number, z: number, w: number): QuaternionLike => ({ x, y, z, w });
/** Rotation by `angle` radians about the z axis. */
const aboutZ = (angle: number) => quat(0, 0, Math.sin(angle / 2), Math.cos(angle / 2));
const norm = (q: QuaternionLike) => Math.hypot(q.x, q.y, q.z, q.w);
/** 1 for the same rotation (q and −q alike), less otherwise. */
const sameRotation = (a: QuaternionLike, b: QuaternionLike) =>
  Math.abs(a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w);

function expectInvalid(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as Error).message).toMatch(pattern);
    return;
  }
  expect.unreachable('expected a TickwireError INVALID_ARGUMENT');
}

describe('lerp', () => {
  it('is a at 0, b at 1 and extrapolates beyond', () => {
    expect(lerp(2, 6, 0)).toBe(2);
    expect(lerp(2, 6, 0.25)).toBe(3);
    expect(lerp(2, 6, 1)).toBe(6);
    expect(lerp(2, 6, 1.5)).toBe(8);
  });
});

describe('lerpAngle', () => {
  it('takes the shortest arc across the wrap, in degrees', () => {
    expect(lerpAngle(350, 10, 0.5, 360)).toBeCloseTo(0, 10);
    expect(lerpAngle(350, 10, 0.25, 360)).toBeCloseTo(355, 10);
    expect(lerpAngle(10, 350, 0.25, 360)).toBeCloseTo(5, 10);
    expect(lerpAngle(10, 350, 0.75, 360)).toBeCloseTo(355, 10);
    expect(lerpAngle(-170, 170, 0.5, 360)).toBeCloseTo(-180, 10);
    expect(lerpAngle(-170, 170, 0.25, 360)).toBeCloseTo(-175, 10);
  });

  it('takes the shortest arc across ±π in radians (the default)', () => {
    const halfway = lerpAngle(3, -3, 0.5);
    expect(Math.abs(halfway)).toBeCloseTo(Math.PI, 10);
    expect(lerpAngle(0.1, 2 * Math.PI - 0.1, 0.5)).toBeCloseTo(0, 10);
    expect(lerpAngle(0, 1, 0.5)).toBeCloseTo(0.5, 10);
  });

  it('returns the endpoints exactly and extrapolates along the arc', () => {
    expect(lerpAngle(350, 10, 0, 360)).toBe(350);
    expect(lerpAngle(350, 10, 1, 360)).toBe(10);
    expect(lerpAngle(350, 10, 2, 360)).toBeCloseTo(30, 10);
    expect(lerpAngle(10, 350, 2, 360)).toBeCloseTo(330, 10);
  });

  it('wraps every result, endpoints included, into [0, turn) for inputs >= 0, else [−turn/2, turn/2)', () => {
    // Out-of-range inputs come back wrapped at t = 0 and 1 as well as in between.
    expect(lerpAngle(370, 10, 0, 360)).toBe(10);
    expect(lerpAngle(10, 730, 1, 360)).toBe(10);
    expect(lerpAngle(350, -10, 0, 360)).toBe(-10);
    expect(lerpAngle(-10, 190, 1, 360)).toBe(-170);
    expect(lerpAngle(7, 1, 0)).toBeCloseTo(7 - 2 * Math.PI, 12);
    const angles = [-725, -400, -190, -180, -10, 0, 10, 179, 180, 350, 360, 370, 725];
    for (const a of angles) {
      for (const b of angles) {
        const low = a < 0 || b < 0 ? -180 : 0;
        for (const t of [0, 0.001, 0.5, 0.999, 1, 1.5]) {
          const result = lerpAngle(a, b, t, 360);
          expect(result, `lerpAngle(${a}, ${b}, ${t})`).toBeGreaterThanOrEqual(low);
          expect(result, `lerpAngle(${a}, ${b}, ${t})`).toBeLessThan(low + 360);
        }
        // The endpoints are the inputs' own directions.
        const turns = (x: number) => Math.abs(Math.round(x / 360) - x / 360);
        expect(turns(lerpAngle(a, b, 0, 360) - a)).toBeLessThan(1e-12);
        expect(turns(lerpAngle(a, b, 1, 360) - b)).toBeLessThan(1e-12);
      }
    }
  });
});

describe('slerpQuaternion', () => {
  it('returns the endpoints and stays unit length in between (seeded random rotations)', () => {
    const random = createRandom(7);
    const randomUnit = () => {
      const q = quat(
        random.normal(0, 1),
        random.normal(0, 1),
        random.normal(0, 1),
        random.normal(0, 1),
      );
      const n = norm(q);
      return quat(q.x / n, q.y / n, q.z / n, q.w / n);
    };
    for (let i = 0; i < 200; i++) {
      const a = randomUnit();
      const b = randomUnit();
      expect(slerpQuaternion(a, b, 0)).toEqual(a);
      expect(slerpQuaternion(a, b, 1)).toEqual(b);
      for (const t of [0.1, 0.33, 0.5, 0.9]) {
        expect(norm(slerpQuaternion(a, b, t))).toBeCloseTo(1, 12);
      }
    }
  });

  it('rotates at constant angular speed along the shorter arc', () => {
    const q = slerpQuaternion(aboutZ(0), aboutZ(Math.PI / 2), 0.5);
    expect(sameRotation(q, aboutZ(Math.PI / 4))).toBeCloseTo(1, 12);
    const quarter = slerpQuaternion(aboutZ(0), aboutZ(Math.PI / 2), 0.25);
    expect(sameRotation(quarter, aboutZ(Math.PI / 8))).toBeCloseTo(1, 12);
    // −b is the same rotation as b: the result must not swing the long way round.
    const negated = aboutZ(Math.PI / 2);
    const flipped = quat(-negated.x, -negated.y, -negated.z, -negated.w);
    expect(sameRotation(slerpQuaternion(aboutZ(0), flipped, 0.5), aboutZ(Math.PI / 4))).toBeCloseTo(
      1,
      12,
    );
  });

  it('normalizes nearly equal rotations and writes into `out`', () => {
    const out = quat(0, 0, 0, 1);
    const result = slerpQuaternion(aboutZ(0.001), aboutZ(0.002), 0.5, out);
    expect(result).toBe(out);
    expect(norm(out)).toBeCloseTo(1, 14);
    expect(sameRotation(out, aboutZ(0.0015))).toBeCloseTo(1, 12);
    const same = aboutZ(1);
    expect(sameRotation(slerpQuaternion(same, same, 0.5), same)).toBeCloseTo(1, 14);
    expect(sameRotation(slerpQuaternion(same, same, 3), same)).toBeCloseTo(1, 14);
  });

  it('keeps rotating past t = 1', () => {
    const q = slerpQuaternion(aboutZ(0), aboutZ(Math.PI / 4), 2);
    expect(sameRotation(q, aboutZ(Math.PI / 2))).toBeCloseTo(1, 12);
    expect(norm(q)).toBeCloseTo(1, 12);
  });
});

interface Body {
  x: number;
  heading: number;
  rot: QuaternionLike;
  state: string;
}

const BODY_FIELDS = { x: 'linear', heading: 'angle', rot: 'slerp', state: 'step' } as const;

describe('createInterpolator: types', () => {
  it('types each field by its value and the frame by the entity shape', () => {
    // Checked by tsc (the package typecheck includes tests), never run.
    const wrong = () => [
      // @ts-expect-error a number cannot slerp
      createInterpolator<{ x: number }>({ fields: { x: 'slerp' } }),
      // @ts-expect-error a quaternion is not linear
      createInterpolator<{ q: QuaternionLike }>({ fields: { q: 'linear' } }),
      // @ts-expect-error every field needs an interpolation
      createInterpolator<{ x: number; y: number }>({ fields: { x: 'linear' } }),
      // @ts-expect-error a plain object of entities needs string ids
      createInterpolator<{ x: number }, number>({ fields: { x: 'linear' } }).push(0, {}, 0),
    ];
    expect(wrong).toBeTypeOf('function');
    const interpolator = createInterpolator<Body, number>({ fields: BODY_FIELDS });
    expectTypeOf(interpolator.sample(0).entities).toEqualTypeOf<
      ReadonlyMap<number, Readonly<Body>>
    >();
  });
});

describe('createInterpolator: options and arguments', () => {
  const make = (options: Partial<InterpolatorOptions<Body>>) =>
    createInterpolator<Body>({ fields: BODY_FIELDS, ...options });

  it('rejects bad options with INVALID_ARGUMENT naming the option', () => {
    expectInvalid(() => make({ minDelayMs: -1 }), /minDelayMs must be a finite number >= 0/);
    expectInvalid(() => make({ maxDelayMs: Number.NaN }), /maxDelayMs/);
    expectInvalid(() => make({ minDelayMs: 300, maxDelayMs: 200 }), /maxDelayMs \(200\)/);
    expectInvalid(() => make({ maxExtrapolationMs: Number.POSITIVE_INFINITY }), /maxExtrapol/);
    expectInvalid(() => make({ snapshotIntervalMs: 0 }), /snapshotIntervalMs must be .* > 0/);
    expectInvalid(() => make({ windowMs: 0 }), /windowMs/);
    expectInvalid(() => make({ latenessQuantile: 1.5 }), /latenessQuantile .* in \(0, 1\]/);
    expectInvalid(() => make({ safetyMarginMs: -5 }), /safetyMarginMs/);
    expectInvalid(() => make({ maxSlowdown: 1 }), /maxSlowdown/);
    expectInvalid(() => make({ maxSpeedup: 0 }), /maxSpeedup/);
    expectInvalid(
      () => make({ minDelayMs: '5' as unknown as number }),
      /minDelayMs must be a finite number >= 0, got 5/,
    );
    expectInvalid(
      () => createInterpolator(null as unknown as InterpolatorOptions<Body>),
      /options must be an object/,
    );
    expectInvalid(
      () => createInterpolator<Body>({ fields: null as unknown as typeof BODY_FIELDS }),
      /fields must be an object/,
    );
    expectInvalid(
      () =>
        createInterpolator<{ x: number }>({
          fields: { x: 'cubic' as unknown as 'linear' },
        }),
      /field 'x' must be one of linear, angle, angleDegrees, slerp, step, got cubic/,
    );
  });

  it('rejects non-finite times and entities that are not a Map or an object', () => {
    const interpolator = make({});
    expectInvalid(() => interpolator.push(Number.NaN, {}, 0), /serverTime must be a finite/);
    expectInvalid(() => interpolator.push(0, {}, Number.POSITIVE_INFINITY), /arrivalTime/);
    expectInvalid(() => interpolator.push(0, null as unknown as Record<string, Body>, 0), /Map/);
    expectInvalid(() => interpolator.sample(Number.NaN), /now must be a finite number/);
    expect(interpolator.stats().receivedSnapshots).toBe(0);
  });
});

describe('createInterpolator: blending', () => {
  const body = (x: number, heading: number, rot: QuaternionLike, state: string): Body => ({
    x,
    heading,
    rot,
    state,
  });

  it('blends each field with its own interpolation and steps the rest', () => {
    const interpolator = createInterpolator<Body>({
      fields: BODY_FIELDS,
      snapshotIntervalMs: 100,
      safetyMarginMs: 0,
    });
    const rotA = aboutZ(0);
    const rotB = aboutZ(Math.PI / 2);
    interpolator.push(1000, { p: body(0, 3, rotA, 'idle') }, 1000);
    interpolator.push(1100, { p: body(10, -3, rotB, 'run') }, 1000);
    // Transit 0, interval 100, no margin: the delay is 100 ms.
    expect(interpolator.delayMs).toBe(100);
    const frame = interpolator.sample(1150);
    expect(frame.mode).toBe('interpolated');
    expect(frame.extrapolated).toBe(false);
    expect(frame.renderTime).toBe(1050);
    const p = frame.entities.get('p')!;
    expect(p.x).toBeCloseTo(5, 12);
    expect(Math.abs(p.heading)).toBeCloseTo(Math.PI, 10);
    expect(sameRotation(p.rot, aboutZ(Math.PI / 4))).toBeCloseTo(1, 12);
    expect(p.state).toBe('idle');
    // The snapshot's quaternions are never written to.
    expect(rotA).toEqual(aboutZ(0));
    expect(rotB).toEqual(aboutZ(Math.PI / 2));
    const atNewer = interpolator.sample(1200).entities.get('p')!;
    expect(atNewer.state).toBe('run');
    expect(atNewer.x).toBe(10);
    expect(atNewer.rot).toEqual(rotB);
  });

  it('reuses the frame and entity objects from one sample to the next', () => {
    const interpolator = createInterpolator<{ x: number }>({ fields: { x: 'linear' } });
    interpolator.push(0, { a: { x: 0 } }, 0);
    interpolator.push(50, { a: { x: 5 } }, 0);
    const first = interpolator.sample(60);
    const entity = first.entities.get('a');
    const second = interpolator.sample(70);
    expect(second).toBe(first);
    expect(second.entities.get('a')).toBe(entity);
  });

  it('accepts Maps with numeric ids', () => {
    const interpolator = createInterpolator<{ x: number }, number>({
      fields: { x: 'linear' },
      snapshotIntervalMs: 50,
    });
    interpolator.push(0, new Map([[7, { x: 0 }]]), 0);
    interpolator.push(50, new Map([[7, { x: 50 }]]), 0);
    const frame = interpolator.sample(interpolator.delayMs + 25);
    expect(frame.entities.get(7)?.x).toBeCloseTo(25, 10);
  });

  it('interpolates degrees along the shortest arc', () => {
    const interpolator = createInterpolator<{ yaw: number }>({
      fields: { yaw: 'angleDegrees' },
      snapshotIntervalMs: 100,
      safetyMarginMs: 0,
    });
    interpolator.push(0, { a: { yaw: 350 } }, 0);
    interpolator.push(100, { a: { yaw: 30 } }, 0);
    // 350° → 30° is +40° through 0°: a quarter of the way is 360° ≡ 0°, three quarters 20°.
    expect(interpolator.sample(125).entities.get('a')?.yaw).toBeCloseTo(0, 10);
    expect(interpolator.sample(175).entities.get('a')?.yaw).toBeCloseTo(20, 10);
  });

  it("gives angles in lerpAngle's range, at a snapshot and for an entity held alone too", () => {
    const interpolator = createInterpolator<{ yaw: number }>({
      fields: { yaw: 'angleDegrees' },
      snapshotIntervalMs: 100,
      safetyMarginMs: 0,
    });
    interpolator.push(0, { a: { yaw: 370 }, alone: { yaw: 725 } }, 0);
    interpolator.push(100, { a: { yaw: 30 } }, 0);
    const frame = interpolator.sample(100);
    expect(frame.entities.get('a')?.yaw).toBe(10);
    expect(frame.entities.get('alone')?.yaw).toBe(5);
    expect(interpolator.sample(150).entities.get('a')?.yaw).toBeCloseTo(20, 10);
  });
});

describe('createInterpolator: entities appearing and disappearing', () => {
  it('shows an entity from the snapshot it appears in until the one it is missing from', () => {
    const interpolator = createInterpolator<{ x: number }>({
      fields: { x: 'linear' },
      snapshotIntervalMs: 100,
      safetyMarginMs: 0,
    });
    interpolator.push(0, { stays: { x: 0 }, leaves: { x: 100 } }, 0);
    interpolator.push(100, { stays: { x: 10 }, joins: { x: 500 } }, 0);
    interpolator.push(200, { stays: { x: 20 }, joins: { x: 510 } }, 0);
    const between = interpolator.sample(150);
    expect([...between.entities.keys()].sort()).toEqual(['leaves', 'stays']);
    // Gone from the newer snapshot: held where it was last seen, not moved.
    expect(between.entities.get('leaves')?.x).toBe(100);
    expect(between.entities.get('stays')?.x).toBeCloseTo(5, 10);
    const after = interpolator.sample(250);
    expect([...after.entities.keys()].sort()).toEqual(['joins', 'stays']);
    expect(after.entities.get('joins')?.x).toBeCloseTo(505, 10);
  });

  it('extrapolates only entities of the newest snapshot and holds ones new in it', () => {
    const interpolator = createInterpolator<{ x: number }>({
      fields: { x: 'linear' },
      snapshotIntervalMs: 100,
      safetyMarginMs: 0,
    });
    interpolator.push(0, { moving: { x: 0 }, leaving: { x: 7 } }, 0);
    interpolator.push(100, { moving: { x: 10 }, fresh: { x: 3 } }, 0);
    const frame = interpolator.sample(250);
    expect(frame.mode).toBe('extrapolated');
    expect(frame.extrapolatedMs).toBe(50);
    expect([...frame.entities.keys()].sort()).toEqual(['fresh', 'moving']);
    expect(frame.entities.get('moving')?.x).toBeCloseTo(15, 10);
    expect(frame.entities.get('fresh')?.x).toBe(3);
  });
});

describe('createInterpolator: extrapolation', () => {
  const make = () =>
    createInterpolator<Body>({
      fields: BODY_FIELDS,
      snapshotIntervalMs: 50,
      safetyMarginMs: 0,
      maxExtrapolationMs: 250,
    });
  /** Moves at 0.1 units/ms, turns at 1 rad/s; transit 40 ms, so the delay settles at 90 ms. */
  const at = (serverTime: number): Body => ({
    x: serverTime / 10,
    heading: serverTime / 1000,
    rot: aboutZ(serverTime / 1000),
    state: `s${serverTime}`,
  });

  it('dead-reckons from the last two snapshots up to the cap, then holds', () => {
    const interpolator = make();
    for (let serverTime = 0; serverTime <= 1000; serverTime += 50) {
      interpolator.push(serverTime, { p: at(serverTime) }, serverTime + 40);
    }
    expect(interpolator.delayMs).toBe(90);
    const modes: FrameMode[] = [];
    // The feed stops at 1000: render time passes it at now = 1090.
    for (let now = 1080; now <= 1600; now += 10) {
      const frame = interpolator.sample(now);
      modes.push(frame.mode);
      const p = frame.entities.get('p')!;
      const ahead = Math.max(0, frame.renderTime - 1000);
      // Where the entity is shown: true up to the cap, then held.
      const shown = Math.min(frame.renderTime, 1250);
      expect(p.x).toBeCloseTo(shown / 10, 9);
      expect(p.heading).toBeCloseTo(shown / 1000, 9);
      expect(sameRotation(p.rot, aboutZ(shown / 1000))).toBeCloseTo(1, 9);
      expect(p.state).toBe(frame.renderTime >= 1000 ? 's1000' : 's950');
      expect(frame.extrapolatedMs).toBe(Math.min(ahead, 250));
      expect(frame.mode).toBe(
        ahead === 0 ? 'interpolated' : ahead <= 250 ? 'extrapolated' : 'underrun',
      );
    }
    expect(modes.filter((m) => m === 'extrapolated').length).toBe(25);
    const underruns = modes.filter((m) => m === 'underrun').length;
    expect(underruns).toBeGreaterThan(20);
    const stats = interpolator.stats();
    expect(stats.extrapolatedFrames).toBe(25);
    expect(stats.underrunFrames).toBe(underruns);
    expect(stats.frames).toBe(modes.length);
    expect(stats.interpolatedFrames).toBe(modes.length - 25 - underruns);
    expect(stats.bufferedSnapshots).toBe(2);
    // An underrun adds one snapshot interval of margin to the target.
    expect(stats.targetDelayMs).toBeGreaterThan(90 + 45);
  });

  it('recovers when snapshots resume and lets the underrun margin fade', () => {
    const interpolator = make();
    for (let serverTime = 0; serverTime <= 1000; serverTime += 50) {
      interpolator.push(serverTime, { p: at(serverTime) }, serverTime + 40);
    }
    let now = 1000;
    for (; now <= 1600; now += 10) interpolator.sample(now);
    expect(interpolator.sample(now).mode).toBe('underrun');
    const boosted = interpolator.stats().targetDelayMs;
    // Two snapshots lost for good, the feed resumes.
    for (let serverTime = 1150; serverTime <= 60_000; serverTime += 50) {
      interpolator.push(serverTime, { p: at(serverTime) }, serverTime + 40);
      for (; now <= serverTime + 40; now += 10) {
        const frame = interpolator.sample(now);
        if (now > 2000) expect(frame.mode).toBe('interpolated');
      }
    }
    const stats = interpolator.stats();
    expect(stats.targetDelayMs).toBeLessThan(boosted);
    expect(stats.delayMs).toBeLessThan(95);
    expect(stats.lossRate).toBe(0);
  });

  it('holds a lone snapshot (no velocity yet) and counts it as extrapolated within the cap', () => {
    const interpolator = make();
    expect(interpolator.sample(0).mode).toBe('empty');
    interpolator.push(0, { p: at(0) }, 40);
    // First estimate: transit 40 + interval 50.
    expect(interpolator.delayMs).toBe(90);
    expect(interpolator.sample(60).mode).toBe('buffering');
    expect(interpolator.sample(90).mode).toBe('interpolated');
    const frame = interpolator.sample(200);
    expect(frame.mode).toBe('extrapolated');
    expect(frame.entities.get('p')?.x).toBe(0);
    expect(interpolator.sample(400).mode).toBe('underrun');
    expect(interpolator.stats().frames).toBe(3);
  });
});

describe('createInterpolator: out-of-order, duplicate and late snapshots', () => {
  const make = () =>
    createInterpolator<{ x: number }>({
      fields: { x: 'linear' },
      snapshotIntervalMs: 100,
      safetyMarginMs: 0,
    });

  it('inserts out-of-order snapshots in place and ignores duplicates', () => {
    const interpolator = make();
    interpolator.push(0, { a: { x: 0 } }, 0);
    interpolator.push(200, { a: { x: 20 } }, 0);
    interpolator.push(100, { a: { x: 100 } }, 0);
    interpolator.push(200, { a: { x: 999 } }, 0);
    interpolator.push(300, { a: { x: 30 } }, 0);
    expect(interpolator.sample(150).entities.get('a')?.x).toBeCloseTo(50, 10);
    expect(interpolator.sample(250).entities.get('a')?.x).toBeCloseTo(60, 10);
    expect(interpolator.sample(350).entities.get('a')?.x).toBeCloseTo(25, 10);
    // No longer buffered but still in the measurement window: a duplicate all the same.
    interpolator.push(100, { a: { x: 999 } }, 0);
    const stats = interpolator.stats();
    expect(stats.receivedSnapshots).toBe(6);
    expect(stats.duplicateSnapshots).toBe(2);
    expect(stats.droppedSnapshots).toBe(0);
    expect(stats.bufferedSnapshots).toBe(2);
  });

  it('drops snapshots older than the one render time interpolates from, counting them late', () => {
    const interpolator = make();
    interpolator.push(100, { a: { x: 10 } }, 100);
    interpolator.push(200, { a: { x: 20 } }, 200);
    interpolator.push(300, { a: { x: 30 } }, 300);
    expect(interpolator.delayMs).toBe(100);
    expect(interpolator.sample(350).renderTime).toBe(250);
    interpolator.push(0, { a: { x: 0 } }, 350);
    let stats = interpolator.stats();
    expect(stats.lateSnapshots).toBe(1);
    expect(stats.droppedSnapshots).toBe(1);
    expect(stats.bufferedSnapshots).toBe(2);
    // Its transit (350 ms) still counts: the delay grows, by time-scaling (0.1 × 10 ms).
    let frame = interpolator.sample(360);
    expect(frame.delayMs).toBeCloseTo(101, 10);
    expect(frame.entities.get('a')?.x).toBeCloseTo(frame.renderTime / 10, 10);
    // Late but newer than the newest: used to extrapolate from.
    frame = interpolator.sample(450);
    expect(frame.mode).toBe('extrapolated');
    const lateTime = frame.renderTime - 5;
    interpolator.push(lateTime, { a: { x: lateTime / 10 } }, 450);
    stats = interpolator.stats();
    expect(stats.lateSnapshots).toBe(2);
    expect(stats.droppedSnapshots).toBe(1);
    frame = interpolator.sample(451);
    expect(frame.mode).toBe('extrapolated');
    expect(frame.extrapolatedMs).toBeLessThan(10);
    expect(frame.entities.get('a')?.x).toBeCloseTo(frame.renderTime / 10, 10);
  });

  it('starts over after clear()', () => {
    const interpolator = make();
    interpolator.push(0, { a: { x: 0 } }, 30);
    interpolator.push(100, { a: { x: 10 } }, 130);
    interpolator.sample(200);
    interpolator.clear();
    const stats = interpolator.stats();
    expect(stats).toMatchObject({
      bufferedSnapshots: 0,
      receivedSnapshots: 0,
      frames: 0,
      delayMs: 0,
      lossRate: 0,
      snapshotIntervalMs: 100,
    });
    expect(Number.isNaN(stats.transitMs)).toBe(true);
    expect(interpolator.sample(300).entities.size).toBe(0);
    interpolator.push(0, { a: { x: 0 } }, 50);
    expect(interpolator.delayMs).toBe(150);
  });

  it('keeps at most 1024 snapshots when nothing samples', () => {
    const interpolator = make();
    for (let i = 0; i < 1100; i++) interpolator.push(i * 100, { a: { x: i } }, i * 100);
    expect(interpolator.stats().bufferedSnapshots).toBe(1024);
  });
});

/** A 20 Hz feed of one entity at x = serverTime / 10 over a seeded link, rendered at 60 fps. */
function createFeed(seed: number, link: LinkOptions, options: { windowMs?: number } = {}) {
  const time = createManualTime();
  const conditioner = createLinkConditioner({ ...link, time, seed });
  const interpolator = createInterpolator<{ x: number }>({ fields: { x: 'linear' }, ...options });
  const frames: { now: number; renderTime: number; delayMs: number; mode: FrameMode }[] = [];
  let maxError = 0;
  let firstDelayMs = Number.NaN;
  time.setInterval(() => {
    const serverTime = time.now();
    conditioner.transmit(32, () => {
      interpolator.push(serverTime, { a: { x: serverTime / 10 } }, time.now());
      if (Number.isNaN(firstDelayMs)) firstDelayMs = interpolator.delayMs;
    });
  }, 50);
  time.setInterval(() => {
    const frame = interpolator.sample(time.now());
    frames.push({
      now: time.now(),
      renderTime: frame.renderTime,
      delayMs: frame.delayMs,
      mode: frame.mode,
    });
    const x = frame.entities.get('a')?.x;
    if (x !== undefined && frame.mode !== 'buffering') {
      maxError = Math.max(maxError, Math.abs(x - frame.renderTime / 10));
    }
  }, 1000 / 60);
  return {
    interpolator,
    frames,
    conditioner,
    maxError: () => maxError,
    firstDelayMs: () => firstDelayMs,
    run: (untilMs: number) => time.advanceTo(untilMs),
    between: (fromMs: number, toMs: number) =>
      frames.filter((frame) => frame.now >= fromMs && frame.now < toMs),
  };
}

describe('createInterpolator: adaptive delay', () => {
  const JITTERY: LinkOptions = { latencyMs: 40, jitterMs: 20 };
  // One-way delay + jitter + one snapshot interval.
  const FLOOR_MS = 40 + 20 + 50;

  it('converges near the floor on a jittery feed, measuring interval and jitter', () => {
    for (const seed of [1, 2, 3]) {
      const feed = createFeed(seed, JITTERY);
      feed.run(30_000);
      const settled = feed.between(10_000, 30_000);
      for (const frame of settled) {
        expect(frame.delayMs).toBeGreaterThan(FLOOR_MS - 5);
        expect(frame.delayMs).toBeLessThan(FLOOR_MS + 10);
        expect(frame.mode).toBe('interpolated');
      }
      const stats = feed.interpolator.stats();
      expect(stats.snapshotIntervalMs).toBe(50);
      expect(stats.transitMs).toBeGreaterThan(55);
      expect(stats.transitMs).toBeLessThanOrEqual(60);
      expect(stats.jitterMs).toBeGreaterThan(35);
      expect(stats.lossRate).toBe(0);
      expect(stats.underrunFrames).toBe(0);
      expect(stats.extrapolatedFrames / stats.frames).toBeLessThan(0.01);
      expect(feed.maxError()).toBeLessThan(1e-9);
    }
  });

  it('is estimated from the feed, not fixed by the first packet', () => {
    const feed = createFeed(4, JITTERY);
    feed.run(200);
    const first = feed.firstDelayMs();
    // One transit (20–60 ms) + the 50 ms interval guess + 5 ms margin.
    expect(first).toBeGreaterThanOrEqual(75);
    expect(first).toBeLessThanOrEqual(115);
    feed.run(10_000);
    expect(Math.abs(feed.interpolator.delayMs - first)).toBeGreaterThan(2);
    expect(feed.interpolator.delayMs).toBeGreaterThan(FLOOR_MS - 5);
  });

  it('changes playback speed gently: render time runs at 0.9× to 1.02× real time', () => {
    const feed = createFeed(5, { ...JITTERY, lossRate: 0.02 });
    feed.run(5_000);
    feed.conditioner.configure({ lossRate: 0.4, jitterMs: 40 });
    feed.run(10_000);
    feed.conditioner.configure({ lossRate: 0.02, jitterMs: 20 });
    feed.run(40_000);
    const frames = feed.between(500, 40_000);
    for (let i = 1; i < frames.length; i++) {
      const elapsed = frames[i]!.now - frames[i - 1]!.now;
      const rendered = frames[i]!.renderTime - frames[i - 1]!.renderTime;
      expect(rendered).toBeGreaterThanOrEqual(0.9 * elapsed - 1e-9);
      expect(rendered).toBeLessThanOrEqual(1.02 * elapsed + 1e-9);
    }
  });

  it('grows under a loss burst, fast, then shrinks slowly', () => {
    const feed = createFeed(6, { ...JITTERY, lossRate: 0.02 });
    feed.run(20_000);
    const baseline = feed.interpolator.delayMs;
    expect(baseline).toBeLessThan(FLOOR_MS + 20);
    feed.conditioner.configure({ lossRate: 0.4 });
    feed.run(24_000);
    expect(feed.interpolator.stats().lossRate).toBeGreaterThan(0.1);
    feed.conditioner.configure({ lossRate: 0.02 });
    const peak = Math.max(...feed.between(20_000, 26_000).map((frame) => frame.delayMs));
    // At 40 % loss, up to two more snapshot intervals.
    expect(peak).toBeGreaterThan(baseline + 60);
    // Fast: two seconds into the burst the delay has risen most of the way.
    expect(feed.between(22_000, 22_020)[0]!.delayMs).toBeGreaterThan(baseline + 40);
    feed.run(60_000);
    // Slow: still raised while the burst is in the 10 s window, back only after it left.
    expect(feed.between(29_000, 29_020)[0]!.delayMs).toBeGreaterThan(baseline + 20);
    expect(Math.abs(feed.interpolator.delayMs - baseline)).toBeLessThan(12);
    const stats = feed.interpolator.stats();
    expect(stats.underrunFrames).toBe(0);
  });

  it('stays within minDelayMs and maxDelayMs', () => {
    const low = createFeed(7, JITTERY);
    const lowInterpolator = createInterpolator<{ x: number }>({
      fields: { x: 'linear' },
      minDelayMs: 200,
    });
    lowInterpolator.push(0, { a: { x: 0 } }, 40);
    expect(lowInterpolator.delayMs).toBe(200);
    low.run(100);
    const high = createInterpolator<{ x: number }>({ fields: { x: 'linear' }, maxDelayMs: 60 });
    high.push(0, { a: { x: 0 } }, 40);
    high.push(50, { a: { x: 5 } }, 110);
    high.sample(200);
    high.sample(2_000);
    expect(high.delayMs).toBe(60);
    expect(high.stats().targetDelayMs).toBe(60);
  });

  it('measures over a sliding window (by server time, capped in samples)', () => {
    const interpolator = createInterpolator<{ x: number }>({
      fields: { x: 'linear' },
      windowMs: 1_000,
      snapshotIntervalMs: 10,
    });
    // One very late snapshot, then 2 s of prompt ones: it leaves the window.
    interpolator.push(0, { a: { x: 0 } }, 500);
    expect(interpolator.stats().transitMs).toBe(500);
    for (let t = 10; t <= 2_000; t += 10) interpolator.push(t, { a: { x: t } }, t + 20);
    expect(interpolator.stats().transitMs).toBe(20);
    const many = createInterpolator<{ x: number }>({
      fields: { x: 'linear' },
      windowMs: 1e9,
    });
    many.push(0, { a: { x: 0 } }, 500);
    for (let t = 1; t <= 2_100; t++) many.push(t, { a: { x: t } }, t + 20);
    expect(many.stats().transitMs).toBe(20);
    expect(many.stats().snapshotIntervalMs).toBe(1);
  });
});
