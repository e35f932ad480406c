import { isTickwireError } from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Aabb2,
  type Aabb3,
  type Circle,
  containsPoint2,
  containsPoint3,
  NO_HIT,
  overlaps2,
  overlaps3,
  rayAabb2T,
  rayAabb3T,
  rayCircleT,
  raycast2,
  raycast3,
  raySphereT,
  type Shape2,
  type Shape3,
  type Sphere,
  segmentCast2,
  segmentCast3,
  vec2DistanceSq,
  vec2Dot,
  vec2Length,
  vec2LengthSq,
  vec3DistanceSq,
  vec3Dot,
  vec3Length,
  vec3LengthSq,
} from './shapes.js';

const circle = (x: number, y: number, radius: number): Circle => ({ kind: 'circle', x, y, radius });
const box2 = (x: number, y: number, halfX: number, halfY: number): Aabb2 => ({
  kind: 'aabb',
  x,
  y,
  halfX,
  halfY,
});
const sphere = (x: number, y: number, z: number, radius: number): Sphere => ({
  kind: 'sphere',
  x,
  y,
  z,
  radius,
});
const box3 = (x: number, y: number, z: number, hx: number, hy: number, hz: number): Aabb3 => ({
  kind: 'aabb',
  x,
  y,
  z,
  halfX: hx,
  halfY: hy,
  halfZ: hz,
});
const ray2 = (ox: number, oy: number, dx: number, dy: number) => ({
  origin: { x: ox, y: oy },
  direction: { x: dx, y: dy },
});
const ray3 = (ox: number, oy: number, oz: number, dx: number, dy: number, dz: number) => ({
  origin: { x: ox, y: oy, z: oz },
  direction: { x: dx, y: dy, z: dz },
});

function expectInvalid(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isTickwireError(caught, 'INVALID_ARGUMENT')).toBe(true);
  expect((caught as Error).message).toMatch(message);
}

const SEED = { seed: 20240611, numRuns: 500 };
const real = (min: number, max: number) =>
  fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
const coord = real(-100, 100);
const size = real(0, 40);
const positiveSize = real(0.01, 40);

/**
 * A start point and a direction aimed at a point near a centre (so that about half hit), scaled
 * to stop short or overshoot; on one axis in three the direction is exactly ±0 and the start
 * sits in line with the aim point, so rays parallel to slab faces both hit and miss.
 */
function aimed<const N extends 2 | 3>(dimensions: N) {
  return fc
    .record({
      origin: fc.array(coord, { minLength: dimensions, maxLength: dimensions }),
      centre: fc.array(coord, { minLength: dimensions, maxLength: dimensions }),
      offset: fc.array(real(-60, 60), { minLength: dimensions, maxLength: dimensions }),
      flatAxis: fc.integer({ min: -dimensions, max: dimensions - 1 }),
      negativeZero: fc.boolean(),
      scale: real(0.3, 2),
    })
    .map(({ origin, centre, offset, flatAxis, negativeZero, scale }) => {
      const o: number[] = [];
      const d: number[] = [];
      for (let i = 0; i < dimensions; i++) {
        const target = centre[i]! + offset[i]!;
        if (i === flatAxis) {
          o.push(target);
          d.push(negativeZero ? -0 : 0);
        } else {
          o.push(origin[i]!);
          d.push((target - origin[i]!) * scale);
        }
      }
      return { o, d, c: centre };
    });
}

/** Counts hits of a property so it can assert it was not vacuous. */
function counter() {
  const counts = { runs: 0, hits: 0 };
  return counts;
}

describe('vector toolkit', () => {
  it('computes dot products, lengths and distances from plain numbers', () => {
    expect(vec2Dot(1, 2, 3, 4)).toBe(11);
    expect(vec2LengthSq(3, 4)).toBe(25);
    expect(vec2Length(3, 4)).toBe(5);
    expect(vec2DistanceSq(1, 1, 4, 5)).toBe(25);
    expect(vec3Dot(1, 2, 3, 4, 5, 6)).toBe(32);
    expect(vec3LengthSq(1, 2, 2)).toBe(9);
    expect(vec3Length(1, 2, 2)).toBe(3);
    expect(vec3DistanceSq(0, 0, 0, 1, 2, 2)).toBe(9);
    // Math.hypot: no overflow on large components.
    expect(vec2Length(1e200, 1e200)).toBeCloseTo(Math.SQRT2 * 1e200, -190);
  });
});

describe('raycast2 against a circle', () => {
  it('hits the near side with the distance and boundary point', () => {
    const hit = raycast2(ray2(-10, 0, 1, 0), circle(0, 0, 2));
    expect(hit).toEqual({ distance: 8, point: { x: -2, y: 0 }, inside: false });
  });

  it('normalises the direction: distance is in world units', () => {
    const hit = raycast2(ray2(0, -10, 0, 250), circle(0, 0, 2));
    expect(hit?.distance).toBe(8);
  });

  it('misses when passing beside it, pointing away or beyond maxDistance', () => {
    expect(raycast2(ray2(-10, 2.001, 1, 0), circle(0, 0, 2))).toBeNull();
    expect(raycast2(ray2(-10, 0, -1, 0), circle(0, 0, 2))).toBeNull();
    expect(raycast2(ray2(-10, 0, 1, 0), circle(0, 0, 2), 7.9)).toBeNull();
    expect(raycast2(ray2(-10, 0, 1, 0), circle(0, 0, 2), 8)?.distance).toBe(8);
  });

  it('hits a tangent ray at the tangent point (closed shape)', () => {
    const hit = raycast2(ray2(-10, 2, 1, 0), circle(0, 0, 2));
    expect(hit?.point.x).toBeCloseTo(0, 9);
    expect(hit?.point.y).toBe(2);
  });

  it('hits at distance 0 at the origin when the ray starts inside or on it', () => {
    expect(raycast2(ray2(0.5, 0.5, 1, 0), circle(0, 0, 2))).toEqual({
      distance: 0,
      point: { x: 0.5, y: 0.5 },
      inside: true,
    });
    expect(raycast2(ray2(2, 0, 1, 0), circle(0, 0, 2))?.inside).toBe(true);
  });

  it('keeps precision far from the origin and close to the surface', () => {
    // 1e6 units away: |o − c|² − r² in doubles would lose ~1e-4; the hit stays on the circle.
    const far = raycast2(ray2(-1e6, 0.3, 1, 0), circle(0, 0, 0.5))!;
    expect(Math.abs(Math.hypot(far.point.x, far.point.y) - 0.5)).toBeLessThan(1e-9);
    // Starting just outside the surface: not taken for inside, the distance is the gap.
    const ox = -(1 + 1e-9);
    const near = rayCircleT(ox, 0, 1, 0, 0, 0, 1, Number.POSITIVE_INFINITY);
    expect(near).toBeGreaterThan(0);
    expect(Math.abs(near - (-ox - 1))).toBeLessThan(1e-15);
  });

  it('throws INVALID_ARGUMENT for a zero or non-finite direction and a bad maxDistance', () => {
    expectInvalid(() => raycast2(ray2(0, 0, 0, 0), circle(0, 0, 1)), /ray\.direction/);
    expectInvalid(() => raycast2(ray2(0, 0, Number.NaN, 1), circle(0, 0, 1)), /ray\.direction/);
    expectInvalid(() => raycast2(ray2(0, 0, 1, 0), circle(0, 0, 1), -1), /maxDistance/);
    expectInvalid(() => raycast2(ray2(0, 0, 1, 0), circle(0, 0, 1), Number.NaN), /maxDistance/);
  });

  it('property: a hit from outside lies on the boundary', () => {
    const count = counter();
    fc.assert(
      fc.property(aimed(2), positiveSize, ({ o: [ox, oy], d: [dx, dy], c: [cx, cy] }, r) => {
        fc.pre(Math.hypot(dx!, dy!) > 1e-6);
        count.runs++;
        const hit = raycast2(ray2(ox!, oy!, dx!, dy!), circle(cx!, cy!, r));
        if (hit === null || hit.inside) return;
        count.hits++;
        const scale = Math.max(1, Math.hypot(ox! - cx!, oy! - cy!));
        expect(Math.abs(Math.hypot(hit.point.x - cx!, hit.point.y - cy!) - r)).toBeLessThan(
          1e-9 * scale,
        );
      }),
      SEED,
    );
    expect(count.hits).toBeGreaterThan(count.runs / 4);
  });

  it('property: a ray from outside toward the centre always hits at |o − c| − r', () => {
    fc.assert(
      fc.property(
        coord,
        coord,
        coord,
        coord,
        positiveSize,
        fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
        (ox, oy, cx, cy, r, scale) => {
          const d = Math.hypot(cx - ox, cy - oy);
          fc.pre(d > r * (1 + 1e-6));
          const hit = raycast2(
            ray2(ox, oy, (cx - ox) * scale, (cy - oy) * scale),
            circle(cx, cy, r),
          );
          expect(hit).not.toBeNull();
          expect(Math.abs(hit!.distance - (d - r))).toBeLessThan(1e-9 * Math.max(1, d));
        },
      ),
      SEED,
    );
  });
});

describe('raycast2 against a box', () => {
  const box = box2(0, 0, 2, 1);

  it('hits the near face', () => {
    expect(raycast2(ray2(-10, 0.5, 1, 0), box)).toEqual({
      distance: 8,
      point: { x: -2, y: 0.5 },
      inside: false,
    });
    const diagonal = raycast2(ray2(-5, -4, 1, 1), box)!;
    expect(diagonal.point.x).toBeCloseTo(-2, 12);
    expect(diagonal.point.y).toBeCloseTo(-1, 12);
    expect(diagonal.distance).toBeCloseTo(3 * Math.SQRT2, 12);
  });

  it('handles rays parallel to a slab: inside the slab hits, outside misses', () => {
    expect(raycast2(ray2(-10, 0.99, 1, 0), box)?.distance).toBe(8);
    expect(raycast2(ray2(-10, 1.01, 1, 0), box)).toBeNull();
    expect(raycast2(ray2(-10, -1.01, 1, -0), box)).toBeNull();
    expect(raycast2(ray2(0.5, 10, 0, -1), box)?.distance).toBe(9);
  });

  it('hits a ray lying in a face plane (no 0 · ∞ = NaN)', () => {
    expect(raycast2(ray2(-10, 1, 1, 0), box)?.point).toEqual({ x: -2, y: 1 });
    expect(raycast2(ray2(2, -10, 0, 1), box)?.point).toEqual({ x: 2, y: -1 });
  });

  it('hits at distance 0 when starting inside, misses pointing away from outside', () => {
    expect(raycast2(ray2(1, 0, -1, 0), box)).toEqual({
      distance: 0,
      point: { x: 1, y: 0 },
      inside: true,
    });
    expect(raycast2(ray2(3, 0, 1, 0), box)).toBeNull();
    expect(raycast2(ray2(-10, 0, 1, 0), box, 7)).toBeNull();
  });

  it('property: a hit from outside lies on a face', () => {
    const count = counter();
    fc.assert(
      fc.property(aimed(2), size, size, ({ o: [ox, oy], d: [dx, dy], c: [cx, cy] }, hx, hy) => {
        fc.pre(Math.hypot(dx!, dy!) > 1e-6);
        count.runs++;
        const hit = raycast2(ray2(ox!, oy!, dx!, dy!), box2(cx!, cy!, hx, hy));
        if (hit === null || hit.inside) return;
        count.hits++;
        const ex = Math.abs(hit.point.x - cx!) - hx;
        const ey = Math.abs(hit.point.y - cy!) - hy;
        // Inside (both ≤ 0) and on a face (the larger one is 0).
        expect(Math.abs(Math.max(ex, ey))).toBeLessThan(1e-9);
      }),
      SEED,
    );
    expect(count.hits).toBeGreaterThan(count.runs / 4);
  });
});

/** Sampling reference for a segment: first k/N whose point is inside the shrunk or grown shape. */
function firstSample(inside: (t: number, margin: number) => boolean, margin: number): number {
  const samples = 2000;
  for (let k = 0; k <= samples; k++) if (inside(k / samples, margin)) return k / samples;
  return Number.POSITIVE_INFINITY;
}

describe('segmentCast2', () => {
  it('returns the fraction of the segment and the point', () => {
    expect(segmentCast2({ x: -10, y: 0 }, { x: 10, y: 0 }, circle(0, 0, 2))).toEqual({
      fraction: 0.4,
      point: { x: -2, y: 0 },
      inside: false,
    });
    expect(segmentCast2({ x: -10, y: 0 }, { x: -3, y: 0 }, circle(0, 0, 2))).toBeNull();
    expect(segmentCast2({ x: -10, y: 0 }, { x: 10, y: 0 }, box2(0, 0, 5, 5))?.fraction).toBe(0.25);
  });

  it('treats a zero-length segment as a point test', () => {
    const inside = { x: 1, y: 1 };
    const outside = { x: 9, y: 9 };
    expect(segmentCast2(inside, inside, circle(0, 0, 2))).toEqual({
      fraction: 0,
      point: inside,
      inside: true,
    });
    expect(segmentCast2(outside, outside, circle(0, 0, 2))).toBeNull();
    expect(segmentCast2(inside, inside, box2(0, 0, 2, 2))?.inside).toBe(true);
    expect(segmentCast2(outside, outside, box2(0, 0, 2, 2))).toBeNull();
  });

  it('property: the box slab test agrees with brute-force sampling', () => {
    const count = counter();
    fc.assert(
      fc.property(aimed(2), size, size, ({ o: [ax, ay], d: [dx, dy], c: [cx, cy] }, hx, hy) => {
        [ax, ay, dx, dy, cx, cy] = [ax!, ay!, dx!, dy!, cx!, cy!];
        count.runs++;
        const hit = segmentCast2(
          { x: ax, y: ay },
          { x: ax + dx, y: ay + dy },
          box2(cx, cy, hx, hy),
        );
        const inBox = (t: number, margin: number) =>
          Math.abs(ax + t * dx - cx) <= hx + margin && Math.abs(ay + t * dy - cy) <= hy + margin;
        const surelyInside = firstSample(inBox, -1e-9);
        if (surelyInside !== Number.POSITIVE_INFINITY) {
          // A sample well inside means a hit no later than it.
          expect(hit).not.toBeNull();
          expect(hit!.fraction).toBeLessThanOrEqual(surelyInside + 1e-12);
        }
        if (hit !== null) {
          count.hits++;
          expect(inBox(hit.fraction, 1e-9)).toBe(true);
        }
      }),
      SEED,
    );
    expect(count.hits).toBeGreaterThan(count.runs / 4);
  });

  it('property: the circle test agrees with brute-force sampling', () => {
    const count = counter();
    fc.assert(
      fc.property(aimed(2), size, ({ o: [ax, ay], d: [dx, dy], c: [cx, cy] }, r) => {
        [ax, ay, dx, dy, cx, cy] = [ax!, ay!, dx!, dy!, cx!, cy!];
        count.runs++;
        const hit = segmentCast2({ x: ax, y: ay }, { x: ax + dx, y: ay + dy }, circle(cx, cy, r));
        const inCircle = (t: number, margin: number) =>
          Math.hypot(ax + t * dx - cx, ay + t * dy - cy) <= r + margin;
        const surelyInside = firstSample(inCircle, -1e-9);
        if (surelyInside !== Number.POSITIVE_INFINITY) {
          expect(hit).not.toBeNull();
          expect(hit!.fraction).toBeLessThanOrEqual(surelyInside + 1e-12);
        }
        if (hit !== null) {
          count.hits++;
          expect(inCircle(hit.fraction, 1e-9)).toBe(true);
        }
      }),
      SEED,
    );
    expect(count.hits).toBeGreaterThan(count.runs / 4);
  });
});

describe('3D rays and segments', () => {
  it('hits a sphere on its near side and from inside at 0', () => {
    const hit = raycast3(ray3(0, 0, -10, 0, 0, 3), sphere(0, 0, 0, 2))!;
    expect(hit).toEqual({ distance: 8, point: { x: 0, y: 0, z: -2 }, inside: false });
    expect(raycast3(ray3(0, 0, 0, 0, 1, 0), sphere(0, 0, 0, 2))?.inside).toBe(true);
    expect(raycast3(ray3(0, 2.01, -10, 0, 0, 1), sphere(0, 0, 0, 2))).toBeNull();
    expect(raycast3(ray3(0, 0, -10, 0, 0, -1), sphere(0, 0, 0, 2))).toBeNull();
    expect(raycast3(ray3(0, 0, -10, 0, 0, 1), sphere(0, 0, 0, 2), 5)).toBeNull();
  });

  it('hits a 3D box through the slabs, including rays parallel to two of them', () => {
    const box = box3(0, 0, 0, 1, 2, 3);
    expect(raycast3(ray3(0.5, 1.5, -10, 0, 0, 1), box)).toEqual({
      distance: 7,
      point: { x: 0.5, y: 1.5, z: -3 },
      inside: false,
    });
    expect(raycast3(ray3(1.5, 0, -10, 0, 0, 1), box)).toBeNull();
    expect(raycast3(ray3(0, 2.5, -10, 0, 0, 1), box)).toBeNull();
    expect(raycast3(ray3(-10, 0, 3.5, 1, 0, 0), box)).toBeNull();
    // In the plane y = 2 of a face: grazes it.
    expect(raycast3(ray3(-10, 2, 0, 1, 0, 0), box)?.point).toEqual({ x: -1, y: 2, z: 0 });
    expect(raycast3(ray3(0, 0, 0, 1, 1, 1), box)?.inside).toBe(true);
    expect(raycast3(ray3(-10, 0, 0, 1, 0, 0), box, 8.5)).toBeNull();
  });

  it('casts segments and treats zero-length ones as point tests', () => {
    const from = { x: -10, y: 0, z: 0 };
    expect(segmentCast3(from, { x: 10, y: 0, z: 0 }, sphere(0, 0, 0, 2))).toEqual({
      fraction: 0.4,
      point: { x: -2, y: 0, z: 0 },
      inside: false,
    });
    expect(segmentCast3(from, { x: 10, y: 0, z: 0 }, box3(0, 0, 0, 5, 1, 1))?.fraction).toBe(0.25);
    expect(segmentCast3(from, from, sphere(0, 0, 0, 2))).toBeNull();
    const p = { x: 0.5, y: 0.5, z: 0.5 };
    expect(segmentCast3(p, p, box3(0, 0, 0, 1, 1, 1))?.inside).toBe(true);
    expect(segmentCast3(p, p, sphere(0, 0, 0, 1))?.inside).toBe(true);
  });

  it('throws INVALID_ARGUMENT for a zero direction and a bad maxDistance', () => {
    expectInvalid(() => raycast3(ray3(0, 0, 0, 0, 0, 0), sphere(0, 0, 0, 1)), /ray\.direction/);
    expectInvalid(
      () => raycast3(ray3(0, 0, 0, 0, 0, Number.POSITIVE_INFINITY), sphere(0, 0, 0, 1)),
      /ray\.direction/,
    );
    expectInvalid(() => raycast3(ray3(0, 0, 0, 1, 0, 0), sphere(0, 0, 0, 1), -2), /maxDistance/);
  });

  it('property: a sphere hit from outside lies on the sphere; toward the centre always hits', () => {
    const count = counter();
    fc.assert(
      fc.property(aimed(3), positiveSize, (aim, r) => {
        const [ox, oy, oz, dx, dy, dz, cx, cy, cz] = [...aim.o, ...aim.d, ...aim.c] as number[] as [
          number,
          number,
          number,
          number,
          number,
          number,
          number,
          number,
          number,
        ];
        fc.pre(Math.hypot(dx, dy, dz) > 1e-6);
        count.runs++;
        const s = sphere(cx, cy, cz, r);
        const hit = raycast3(ray3(ox, oy, oz, dx, dy, dz), s);
        const d = Math.hypot(ox - cx, oy - cy, oz - cz);
        if (hit !== null && !hit.inside) {
          count.hits++;
          const onSurface = Math.hypot(hit.point.x - cx, hit.point.y - cy, hit.point.z - cz);
          expect(Math.abs(onSurface - r)).toBeLessThan(1e-9 * Math.max(1, d));
        }
        if (d > r * (1 + 1e-6)) {
          const toward = raycast3(ray3(ox, oy, oz, cx - ox, cy - oy, cz - oz), s);
          expect(toward).not.toBeNull();
          expect(Math.abs(toward!.distance - (d - r))).toBeLessThan(1e-9 * Math.max(1, d));
        }
      }),
      SEED,
    );
    expect(count.hits).toBeGreaterThan(count.runs / 4);
  });

  it('property: the 3D slab test agrees with brute-force sampling', () => {
    const count = counter();
    fc.assert(
      fc.property(aimed(3), size, size, size, (aim, hx, hy, hz) => {
        const [ax, ay, az, dx, dy, dz, cx, cy, cz] = [...aim.o, ...aim.d, ...aim.c] as number[] as [
          number,
          number,
          number,
          number,
          number,
          number,
          number,
          number,
          number,
        ];
        count.runs++;
        const hit = segmentCast3(
          { x: ax, y: ay, z: az },
          { x: ax + dx, y: ay + dy, z: az + dz },
          box3(cx, cy, cz, hx, hy, hz),
        );
        const inBox = (t: number, margin: number) =>
          Math.abs(ax + t * dx - cx) <= hx + margin &&
          Math.abs(ay + t * dy - cy) <= hy + margin &&
          Math.abs(az + t * dz - cz) <= hz + margin;
        const surelyInside = firstSample(inBox, -1e-9);
        if (surelyInside !== Number.POSITIVE_INFINITY) {
          expect(hit).not.toBeNull();
          expect(hit!.fraction).toBeLessThanOrEqual(surelyInside + 1e-12);
        }
        if (hit !== null) {
          count.hits++;
          expect(inBox(hit.fraction, 1e-9)).toBe(true);
        }
      }),
      SEED,
    );
    // Three slabs to pass: fewer hits (≈ 16 %), still dozens.
    expect(count.hits).toBeGreaterThan(count.runs / 8);
  });
});

describe('scalar kernels', () => {
  it('miss for NaN inputs instead of reporting a hit', () => {
    const inf = Number.POSITIVE_INFINITY;
    expect(rayCircleT(0, 0, 1, 0, Number.NaN, 0, 1, inf)).toBe(NO_HIT);
    expect(rayCircleT(-5, 0, 1, 0, 0, 0, Number.NaN, inf)).toBe(NO_HIT);
    expect(rayAabb2T(-5, 0, 1, 0, Number.NaN, 0, 1, 1, inf)).toBe(NO_HIT);
    expect(rayAabb2T(0, -5, 0, 1, Number.NaN, 0, 1, 1, inf)).toBe(NO_HIT);
    expect(raySphereT(-5, 0, 0, 1, 0, 0, 0, 0, 0, Number.NaN, inf)).toBe(NO_HIT);
    expect(rayAabb3T(-5, 0, 0, 1, 0, 0, 0, 0, Number.NaN, 1, 1, 1, inf)).toBe(NO_HIT);
  });

  it('return NO_HIT for an inside start when tMax < 0 and treat a zero direction as a point test', () => {
    expect(rayCircleT(0, 0, 1, 0, 0, 0, 1, -1)).toBe(NO_HIT);
    expect(raySphereT(0, 0, 0, 1, 0, 0, 0, 0, 0, 1, -1)).toBe(NO_HIT);
    expect(rayCircleT(5, 0, 0, 0, 0, 0, 1, 1)).toBe(NO_HIT);
    expect(rayAabb2T(0.5, 0.5, 0, 0, 0, 0, 1, 1, 1)).toBe(0);
    expect(rayAabb3T(5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1)).toBe(NO_HIT);
  });
});

describe('containsPoint and overlaps', () => {
  it('contains points inside and on the boundary only', () => {
    expect(containsPoint2(circle(0, 0, 2), { x: 2, y: 0 })).toBe(true);
    expect(containsPoint2(circle(0, 0, 2), { x: 1.5, y: 1.5 })).toBe(false);
    expect(containsPoint2(box2(0, 0, 2, 1), { x: -2, y: 1 })).toBe(true);
    expect(containsPoint2(box2(0, 0, 2, 1), { x: 0, y: 1.01 })).toBe(false);
    expect(containsPoint3(sphere(0, 0, 0, 1), { x: 0, y: 0, z: 1 })).toBe(true);
    expect(containsPoint3(sphere(0, 0, 0, 1), { x: 0.6, y: 0.6, z: 0.6 })).toBe(false);
    expect(containsPoint3(box3(0, 0, 0, 1, 1, 1), { x: 1, y: -1, z: 0 })).toBe(true);
    expect(containsPoint3(box3(0, 0, 0, 1, 1, 1), { x: 0, y: 0, z: 1.1 })).toBe(false);
  });

  it('overlaps 2D shapes, touching included, a circle near a box corner excluded', () => {
    expect(overlaps2(circle(0, 0, 1), circle(2, 0, 1))).toBe(true);
    expect(overlaps2(circle(0, 0, 1), circle(2.01, 0, 1))).toBe(false);
    const box = box2(0, 0, 1, 1);
    // Within the box's bounding square grown by r, but 0.41 from the corner diagonal.
    expect(overlaps2(circle(1.7, 1.7, 0.9), box)).toBe(false);
    expect(overlaps2(box, circle(1.7, 1.7, 1))).toBe(true);
    expect(overlaps2(circle(0.2, 0.2, 0.1), box)).toBe(true);
    expect(overlaps2(box, box2(2, 0, 1, 1))).toBe(true);
    expect(overlaps2(box, box2(2, 2.01, 1, 1))).toBe(false);
  });

  it('overlaps 3D shapes', () => {
    expect(overlaps3(sphere(0, 0, 0, 1), sphere(0, 0, 2, 1))).toBe(true);
    expect(overlaps3(sphere(0, 0, 0, 1), sphere(0, 2, 0.1, 1))).toBe(false);
    const box = box3(0, 0, 0, 1, 1, 1);
    expect(overlaps3(sphere(1.5, 1.5, 1.5, 0.8), box)).toBe(false);
    expect(overlaps3(box, sphere(1.5, 1.5, 1.5, 0.9))).toBe(true);
    expect(overlaps3(box, box3(0, 0, 2, 1, 1, 1))).toBe(true);
    expect(overlaps3(box, box3(0, 2.1, 0, 1, 1, 1))).toBe(false);
  });

  it('property: overlap is symmetric and a contained centre overlaps', () => {
    const shape2 = fc.oneof(
      fc.tuple(coord, coord, size).map(([x, y, r]): Shape2 => circle(x, y, r)),
      fc.tuple(coord, coord, size, size).map(([x, y, hx, hy]): Shape2 => box2(x, y, hx, hy)),
    );
    fc.assert(
      fc.property(shape2, shape2, (a, b) => {
        expect(overlaps2(a, b)).toBe(overlaps2(b, a));
        if (containsPoint2(a, b)) expect(overlaps2(a, b)).toBe(true);
      }),
      SEED,
    );
  });

  it('throws INVALID_ARGUMENT for an unknown shape kind', () => {
    const bogus = { kind: 'capsule', x: 0, y: 0, z: 0 } as unknown as Shape2 & Shape3;
    const ok2 = circle(0, 0, 1);
    const ok3 = sphere(0, 0, 0, 1);
    expectInvalid(
      () => raycast2(ray2(0, 0, 1, 0), bogus),
      /raycast2: shape\.kind must be 'circle' or 'aabb', got "capsule"/,
    );
    expectInvalid(
      () => segmentCast3({ x: 0, y: 0, z: 0 }, { x: 1, y: 0, z: 0 }, {} as Shape3),
      /segmentCast3: shape\.kind must be 'sphere' or 'aabb', got undefined/,
    );
    expectInvalid(() => raycast3(ray3(0, 0, 0, 1, 0, 0), bogus), /raycast3/);
    expectInvalid(() => containsPoint2(bogus, { x: 0, y: 0 }), /containsPoint2/);
    expectInvalid(() => containsPoint3(bogus, { x: 0, y: 0, z: 0 }), /containsPoint3/);
    expectInvalid(() => overlaps2(bogus, ok2), /overlaps2/);
    expectInvalid(() => overlaps2(ok2, bogus), /overlaps2/);
    expectInvalid(() => overlaps2(box2(0, 0, 1, 1), bogus), /overlaps2/);
    expectInvalid(() => overlaps3(bogus, ok3), /overlaps3/);
    expectInvalid(() => overlaps3(ok3, bogus), /overlaps3/);
    expectInvalid(() => overlaps3(box3(0, 0, 0, 1, 1, 1), bogus), /overlaps3/);
  });
});
