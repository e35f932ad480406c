/**
 * Hitbox shapes and the queries lag compensation needs: circles and axis-aligned boxes in 2D,
 * spheres and axis-aligned boxes in 3D.
 *
 * Conventions, shared by every query:
 * - Shapes are closed: a point on the boundary is inside, a tangent ray or one grazing a face hits,
 *   shapes that touch overlap.
 * - Boxes are a centre and half extents, so that moving and resizing between two ticks are both
 *   linear interpolations of the same numbers.
 * - A ray or segment that starts inside (or on) a shape hits it at distance 0 at its start point,
 *   with `inside: true`: a point-blank shot hits.
 * - The scalar kernels (`rayCircleT`, `rayAabb2T`, `raySphereT`, `rayAabb3T`) take plain numbers,
 *   allocate nothing, and return the parameter `t` ∈ [0, tMax] of the first point of
 *   `origin + t·direction` in the shape, or {@link NO_HIT}. With a unit direction `t` is a distance;
 *   with `direction = to − from` and `tMax = 1` it is the fraction of a segment. A zero direction is
 *   a point test (t = 0 when the origin is inside). Any NaN input makes them miss.
 * - Ray functions normalise the direction and throw INVALID_ARGUMENT when it has no length;
 *   segment functions accept a zero-length segment (it hits only if its point is inside).
 */
import { ErrorCode, TickwireError } from '@tickwire/core';

/** A 2D point or vector. */
export interface Vec2 {
  x: number;
  y: number;
}

/** A 3D point or vector. */
export interface Vec3 {
  x: number;
  y: number;
  z: number;
}

/** A disc: centre and radius (≥ 0). */
export interface Circle {
  kind: 'circle';
  x: number;
  y: number;
  radius: number;
}

/** A 2D axis-aligned box: centre and half extents (≥ 0). */
export interface Aabb2 {
  kind: 'aabb';
  x: number;
  y: number;
  halfX: number;
  halfY: number;
}

/** A ball: centre and radius (≥ 0). */
export interface Sphere {
  kind: 'sphere';
  x: number;
  y: number;
  z: number;
  radius: number;
}

/** A 3D axis-aligned box: centre and half extents (≥ 0). */
export interface Aabb3 {
  kind: 'aabb';
  x: number;
  y: number;
  z: number;
  halfX: number;
  halfY: number;
  halfZ: number;
}

/** Any 2D hitbox shape. */
export type Shape2 = Circle | Aabb2;

/** Any 3D hitbox shape. */
export type Shape3 = Sphere | Aabb3;

/** A 2D half-line; `direction` need not be unit length but must not be zero. */
export interface Ray2 {
  origin: Vec2;
  direction: Vec2;
}

/** A 3D half-line; `direction` need not be unit length but must not be zero. */
export interface Ray3 {
  origin: Vec3;
  direction: Vec3;
}

/** Where a ray first meets a 2D shape. */
export interface RayHit2 {
  /** Distance from the ray origin along the (normalised) direction. */
  distance: number;
  /** The hit point: on the boundary, or the origin when `inside`. */
  point: Vec2;
  /** The ray started inside or on the shape. */
  inside: boolean;
}

/** Where a ray first meets a 3D shape. */
export interface RayHit3 {
  /** Distance from the ray origin along the (normalised) direction. */
  distance: number;
  /** The hit point: on the boundary, or the origin when `inside`. */
  point: Vec3;
  /** The ray started inside or on the shape. */
  inside: boolean;
}

/** Where a segment first meets a 2D shape. */
export interface SegmentHit2 {
  /** Fraction of the segment, in [0, 1], from `from` to the hit point. */
  fraction: number;
  /** The hit point: on the boundary, or `from` when `inside`. */
  point: Vec2;
  /** The segment started inside or on the shape. */
  inside: boolean;
}

/** Where a segment first meets a 3D shape. */
export interface SegmentHit3 {
  /** Fraction of the segment, in [0, 1], from `from` to the hit point. */
  fraction: number;
  /** The hit point: on the boundary, or `from` when `inside`. */
  point: Vec3;
  /** The segment started inside or on the shape. */
  inside: boolean;
}

/** What the scalar ray kernels return for a miss. */
export const NO_HIT = -1;

// ---------------------------------------------------------------------------------------------
// Vector toolkit: plain numbers in, a number out.

/** Dot product of two 2D vectors. */
export const vec2Dot = (ax: number, ay: number, bx: number, by: number): number =>
  ax * bx + ay * by;

/** Squared length of a 2D vector. */
export const vec2LengthSq = (x: number, y: number): number => x * x + y * y;

// Squared lengths in this range neither overflow nor lose precision to underflow: sqrt is exact enough.
const SQ_MIN = 1e-290;
const SQ_MAX = 1e290;

/** Length of a 2D vector; Math.hypot (slower) only where squaring would overflow or underflow. */
export function vec2Length(x: number, y: number): number {
  const sq = x * x + y * y;
  return sq > SQ_MIN && sq < SQ_MAX ? Math.sqrt(sq) : Math.hypot(x, y);
}

/** Squared distance between two 2D points. */
export const vec2DistanceSq = (ax: number, ay: number, bx: number, by: number): number =>
  (ax - bx) * (ax - bx) + (ay - by) * (ay - by);

/** Dot product of two 3D vectors. */
export const vec3Dot = (
  ax: number,
  ay: number,
  az: number,
  bx: number,
  by: number,
  bz: number,
): number => ax * bx + ay * by + az * bz;

/** Squared length of a 3D vector. */
export const vec3LengthSq = (x: number, y: number, z: number): number => x * x + y * y + z * z;

/** Length of a 3D vector; Math.hypot (slower) only where squaring would overflow or underflow. */
export function vec3Length(x: number, y: number, z: number): number {
  const sq = x * x + y * y + z * z;
  return sq > SQ_MIN && sq < SQ_MAX ? Math.sqrt(sq) : Math.hypot(x, y, z);
}

/** Squared distance between two 3D points. */
export const vec3DistanceSq = (
  ax: number,
  ay: number,
  az: number,
  bx: number,
  by: number,
  bz: number,
): number => (ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz);

// ---------------------------------------------------------------------------------------------
// Scalar ray kernels.

/**
 * First `t` ∈ [0, tMax] where `o + t·d` is in the circle, or {@link NO_HIT}.
 * Quadratic solved as in Ray Tracing Gems ch. 7 (Haines et al.): the discriminant from the
 * centre-to-line vector and the near root as `c / q`, so neither step cancels catastrophically.
 */
export function rayCircleT(
  ox: number,
  oy: number,
  dx: number,
  dy: number,
  cx: number,
  cy: number,
  radius: number,
  tMax: number,
): number {
  const mx = ox - cx;
  const my = oy - cy;
  const c = mx * mx + my * my - radius * radius;
  if (c <= 0) return tMax >= 0 ? 0 : NO_HIT;
  const b = mx * dx + my * dy;
  // Outside and not approaching (also a zero direction): no hit.
  if (!(b < 0)) return NO_HIT;
  const a = dx * dx + dy * dy;
  const k = b / a;
  const fx = mx - k * dx;
  const fy = my - k * dy;
  const h = a * (radius * radius - (fx * fx + fy * fy));
  if (!(h >= 0)) return NO_HIT;
  const t = c / (Math.sqrt(h) - b);
  return t <= tMax ? t : NO_HIT;
}

/** {@link rayCircleT} for a sphere. */
export function raySphereT(
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  cx: number,
  cy: number,
  cz: number,
  radius: number,
  tMax: number,
): number {
  const mx = ox - cx;
  const my = oy - cy;
  const mz = oz - cz;
  const c = mx * mx + my * my + mz * mz - radius * radius;
  if (c <= 0) return tMax >= 0 ? 0 : NO_HIT;
  const b = mx * dx + my * dy + mz * dz;
  if (!(b < 0)) return NO_HIT;
  const a = dx * dx + dy * dy + dz * dz;
  const k = b / a;
  const fx = mx - k * dx;
  const fy = my - k * dy;
  const fz = mz - k * dz;
  const h = a * (radius * radius - (fx * fx + fy * fy + fz * fz));
  if (!(h >= 0)) return NO_HIT;
  const t = c / (Math.sqrt(h) - b);
  return t <= tMax ? t : NO_HIT;
}

/**
 * First `t` ∈ [0, tMax] where `o + t·d` is in the box (centre `c`, half extents `h`), or
 * {@link NO_HIT}. Slab test (Kay–Kajiya); an axis with a zero direction component is handled
 * explicitly (inside its slab or miss) instead of dividing by zero, which would give NaN for a
 * ray lying in a face plane.
 */
export function rayAabb2T(
  ox: number,
  oy: number,
  dx: number,
  dy: number,
  cx: number,
  cy: number,
  halfX: number,
  halfY: number,
  tMax: number,
): number {
  slabNear = 0;
  slabFar = tMax;
  if (!clipSlab(ox - cx, dx, halfX) || !clipSlab(oy - cy, dy, halfY)) return NO_HIT;
  return slabNear <= slabFar ? slabNear : NO_HIT;
}

/** {@link rayAabb2T} for a 3D box. */
export function rayAabb3T(
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  cx: number,
  cy: number,
  cz: number,
  halfX: number,
  halfY: number,
  halfZ: number,
  tMax: number,
): number {
  slabNear = 0;
  slabFar = tMax;
  if (
    !clipSlab(ox - cx, dx, halfX) ||
    !clipSlab(oy - cy, dy, halfY) ||
    !clipSlab(oz - cz, dz, halfZ)
  )
    return NO_HIT;
  return slabNear <= slabFar ? slabNear : NO_HIT;
}

// The ray's parameter interval inside every slab clipped so far (no allocation per test).
let slabNear = 0;
let slabFar = 0;

/**
 * Narrows [slabNear, slabFar] to where the ray is inside one axis' slab (`offset`: origin minus
 * box centre on that axis). False when a ray parallel to the axis lies outside the slab.
 * Math.max/min propagate NaN, so a NaN box ends in the final test as a miss.
 */
function clipSlab(offset: number, direction: number, half: number): boolean {
  if (direction === 0) return offset >= -half && offset <= half;
  const t1 = (-half - offset) / direction;
  const t2 = (half - offset) / direction;
  slabNear = Math.max(slabNear, Math.min(t1, t2));
  slabFar = Math.min(slabFar, Math.max(t1, t2));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Scalar overlap kernels (closed shapes: touching counts).

/** Two circles overlap. */
export function circleCircleOverlap(
  ax: number,
  ay: number,
  ar: number,
  bx: number,
  by: number,
  br: number,
): boolean {
  const r = ar + br;
  return vec2DistanceSq(ax, ay, bx, by) <= r * r;
}

/** A circle overlaps a 2D box (centre, half extents): distance to the box's nearest point. */
export function circleAabb2Overlap(
  cx: number,
  cy: number,
  radius: number,
  bx: number,
  by: number,
  halfX: number,
  halfY: number,
): boolean {
  const ex = Math.max(Math.abs(cx - bx) - halfX, 0);
  const ey = Math.max(Math.abs(cy - by) - halfY, 0);
  return ex * ex + ey * ey <= radius * radius;
}

/** Two 2D boxes overlap. */
export function aabb2Overlap(
  ax: number,
  ay: number,
  aHalfX: number,
  aHalfY: number,
  bx: number,
  by: number,
  bHalfX: number,
  bHalfY: number,
): boolean {
  return Math.abs(ax - bx) <= aHalfX + bHalfX && Math.abs(ay - by) <= aHalfY + bHalfY;
}

/** Two spheres overlap. */
export function sphereSphereOverlap(
  ax: number,
  ay: number,
  az: number,
  ar: number,
  bx: number,
  by: number,
  bz: number,
  br: number,
): boolean {
  const r = ar + br;
  return vec3DistanceSq(ax, ay, az, bx, by, bz) <= r * r;
}

/** A sphere overlaps a 3D box (centre, half extents). */
export function sphereAabb3Overlap(
  cx: number,
  cy: number,
  cz: number,
  radius: number,
  bx: number,
  by: number,
  bz: number,
  halfX: number,
  halfY: number,
  halfZ: number,
): boolean {
  const ex = Math.max(Math.abs(cx - bx) - halfX, 0);
  const ey = Math.max(Math.abs(cy - by) - halfY, 0);
  const ez = Math.max(Math.abs(cz - bz) - halfZ, 0);
  return ex * ex + ey * ey + ez * ez <= radius * radius;
}

/** Two 3D boxes overlap. */
export function aabb3Overlap(
  ax: number,
  ay: number,
  az: number,
  aHalfX: number,
  aHalfY: number,
  aHalfZ: number,
  bx: number,
  by: number,
  bz: number,
  bHalfX: number,
  bHalfY: number,
  bHalfZ: number,
): boolean {
  return (
    Math.abs(ax - bx) <= aHalfX + bHalfX &&
    Math.abs(ay - by) <= aHalfY + bHalfY &&
    Math.abs(az - bz) <= aHalfZ + bHalfZ
  );
}

// ---------------------------------------------------------------------------------------------
// Object API: validates, normalises, allocates the result.

const KINDS_2 = "'circle' or 'aabb'";
const KINDS_3 = "'sphere' or 'aabb'";

function unknownShape(where: string, shape: unknown, kinds: string): never {
  const kind = (shape as { kind?: unknown } | null)?.kind;
  throw new TickwireError(
    ErrorCode.INVALID_ARGUMENT,
    `${where}: shape.kind must be ${kinds}, got ${JSON.stringify(kind) ?? String(kind)}`,
    { details: { kind } },
  );
}

function checkMaxDistance(where: string, maxDistance: number): void {
  if (!(maxDistance >= 0)) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${where}: maxDistance must be a number ≥ 0 (Infinity for none), got ${maxDistance}`,
      { details: { maxDistance } },
    );
  }
}

/** Throws INVALID_ARGUMENT for a ray direction of zero or non-finite length. */
export function zeroDirection(where: string): never {
  throw new TickwireError(
    ErrorCode.INVALID_ARGUMENT,
    `${where}: ray.direction must be a finite, non-zero vector; pass the aim direction`,
  );
}

/** Unit direction of a 2D ray, or throws INVALID_ARGUMENT. */
function unitDirection2(where: string, direction: Vec2): Vec2 {
  const length = vec2Length(direction.x, direction.y);
  if (!(length > 0 && length < Number.POSITIVE_INFINITY)) zeroDirection(where);
  return { x: direction.x / length, y: direction.y / length };
}

/** Unit direction of a 3D ray, or throws INVALID_ARGUMENT. */
function unitDirection3(where: string, direction: Vec3): Vec3 {
  const length = vec3Length(direction.x, direction.y, direction.z);
  if (!(length > 0 && length < Number.POSITIVE_INFINITY)) zeroDirection(where);
  return { x: direction.x / length, y: direction.y / length, z: direction.z / length };
}

function cast2(
  where: string,
  ox: number,
  oy: number,
  dx: number,
  dy: number,
  shape: Shape2,
  tMax: number,
): number {
  switch (shape.kind) {
    case 'circle':
      return rayCircleT(ox, oy, dx, dy, shape.x, shape.y, shape.radius, tMax);
    case 'aabb':
      return rayAabb2T(ox, oy, dx, dy, shape.x, shape.y, shape.halfX, shape.halfY, tMax);
    default:
      return unknownShape(where, shape, KINDS_2);
  }
}

function cast3(
  where: string,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  shape: Shape3,
  tMax: number,
): number {
  switch (shape.kind) {
    case 'sphere':
      return raySphereT(ox, oy, oz, dx, dy, dz, shape.x, shape.y, shape.z, shape.radius, tMax);
    case 'aabb':
      return rayAabb3T(
        ox,
        oy,
        oz,
        dx,
        dy,
        dz,
        shape.x,
        shape.y,
        shape.z,
        shape.halfX,
        shape.halfY,
        shape.halfZ,
        tMax,
      );
    default:
      return unknownShape(where, shape, KINDS_3);
  }
}

/** First hit of a ray on a 2D shape within `maxDistance`, or null. */
export function raycast2(
  ray: Ray2,
  shape: Shape2,
  maxDistance = Number.POSITIVE_INFINITY,
): RayHit2 | null {
  checkMaxDistance('raycast2', maxDistance);
  const u = unitDirection2('raycast2', ray.direction);
  const { x, y } = ray.origin;
  const t = cast2('raycast2', x, y, u.x, u.y, shape, maxDistance);
  if (t === NO_HIT) return null;
  return { distance: t, point: { x: x + t * u.x, y: y + t * u.y }, inside: t === 0 };
}

/** First hit of a ray on a 3D shape within `maxDistance`, or null. */
export function raycast3(
  ray: Ray3,
  shape: Shape3,
  maxDistance = Number.POSITIVE_INFINITY,
): RayHit3 | null {
  checkMaxDistance('raycast3', maxDistance);
  const u = unitDirection3('raycast3', ray.direction);
  const { x, y, z } = ray.origin;
  const t = cast3('raycast3', x, y, z, u.x, u.y, u.z, shape, maxDistance);
  if (t === NO_HIT) return null;
  return {
    distance: t,
    point: { x: x + t * u.x, y: y + t * u.y, z: z + t * u.z },
    inside: t === 0,
  };
}

/** First hit of the segment `from`→`to` on a 2D shape, or null; a zero-length segment is a point test. */
export function segmentCast2(from: Vec2, to: Vec2, shape: Shape2): SegmentHit2 | null {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const t = cast2('segmentCast2', from.x, from.y, dx, dy, shape, 1);
  if (t === NO_HIT) return null;
  return { fraction: t, point: { x: from.x + t * dx, y: from.y + t * dy }, inside: t === 0 };
}

/** First hit of the segment `from`→`to` on a 3D shape, or null; a zero-length segment is a point test. */
export function segmentCast3(from: Vec3, to: Vec3, shape: Shape3): SegmentHit3 | null {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const dz = to.z - from.z;
  const t = cast3('segmentCast3', from.x, from.y, from.z, dx, dy, dz, shape, 1);
  if (t === NO_HIT) return null;
  return {
    fraction: t,
    point: { x: from.x + t * dx, y: from.y + t * dy, z: from.z + t * dz },
    inside: t === 0,
  };
}

/** The point is inside or on the 2D shape. */
export function containsPoint2(shape: Shape2, point: Vec2): boolean {
  switch (shape.kind) {
    case 'circle':
      return vec2DistanceSq(point.x, point.y, shape.x, shape.y) <= shape.radius * shape.radius;
    case 'aabb':
      return (
        Math.abs(point.x - shape.x) <= shape.halfX && Math.abs(point.y - shape.y) <= shape.halfY
      );
    default:
      return unknownShape('containsPoint2', shape, KINDS_2);
  }
}

/** The point is inside or on the 3D shape. */
export function containsPoint3(shape: Shape3, point: Vec3): boolean {
  switch (shape.kind) {
    case 'sphere':
      return (
        vec3DistanceSq(point.x, point.y, point.z, shape.x, shape.y, shape.z) <=
        shape.radius * shape.radius
      );
    case 'aabb':
      return (
        Math.abs(point.x - shape.x) <= shape.halfX &&
        Math.abs(point.y - shape.y) <= shape.halfY &&
        Math.abs(point.z - shape.z) <= shape.halfZ
      );
    default:
      return unknownShape('containsPoint3', shape, KINDS_3);
  }
}

/** The two 2D shapes overlap (touching counts). */
export function overlaps2(a: Shape2, b: Shape2): boolean {
  if (a.kind === 'circle') {
    if (b.kind === 'circle') return circleCircleOverlap(a.x, a.y, a.radius, b.x, b.y, b.radius);
    if (b.kind === 'aabb')
      return circleAabb2Overlap(a.x, a.y, a.radius, b.x, b.y, b.halfX, b.halfY);
    return unknownShape('overlaps2', b, KINDS_2);
  }
  if (a.kind === 'aabb') {
    if (b.kind === 'circle')
      return circleAabb2Overlap(b.x, b.y, b.radius, a.x, a.y, a.halfX, a.halfY);
    if (b.kind === 'aabb')
      return aabb2Overlap(a.x, a.y, a.halfX, a.halfY, b.x, b.y, b.halfX, b.halfY);
    return unknownShape('overlaps2', b, KINDS_2);
  }
  return unknownShape('overlaps2', a, KINDS_2);
}

/** The two 3D shapes overlap (touching counts). */
export function overlaps3(a: Shape3, b: Shape3): boolean {
  if (a.kind === 'sphere') {
    if (b.kind === 'sphere') {
      return sphereSphereOverlap(a.x, a.y, a.z, a.radius, b.x, b.y, b.z, b.radius);
    }
    if (b.kind === 'aabb') {
      return sphereAabb3Overlap(a.x, a.y, a.z, a.radius, b.x, b.y, b.z, b.halfX, b.halfY, b.halfZ);
    }
    return unknownShape('overlaps3', b, KINDS_3);
  }
  if (a.kind === 'aabb') {
    if (b.kind === 'sphere') {
      return sphereAabb3Overlap(b.x, b.y, b.z, b.radius, a.x, a.y, a.z, a.halfX, a.halfY, a.halfZ);
    }
    if (b.kind === 'aabb') {
      return aabb3Overlap(
        a.x,
        a.y,
        a.z,
        a.halfX,
        a.halfY,
        a.halfZ,
        b.x,
        b.y,
        b.z,
        b.halfX,
        b.halfY,
        b.halfZ,
      );
    }
    return unknownShape('overlaps3', b, KINDS_3);
  }
  return unknownShape('overlaps3', a, KINDS_3);
}
