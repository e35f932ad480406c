/**
 * Server-side lag compensation (Bernier, "Latency Compensating Methods in Client/Server In-game
 * Protocol Design and Optimization", GDC 2001; Source's CLagCompensationManager): the server keeps
 * a short history of every hitbox, and when a shot arrives it rewinds the world to what the shooter
 * saw (server time − latency − interpolation delay) and tests the shot there.
 *
 * The history is a ring of per-tick records, sized once from `historyMs / tickMs`: per record a
 * Float64Array of rows (centre, then sizes), a Uint8Array of shape kinds, the ids in a parallel
 * array and an id → row map. A record reuses the slot it evicts, so once every slot has grown to
 * the entity count nothing more is allocated for the numbers. Queries between two ticks
 * interpolate positions and sizes linearly, as the client's snapshot interpolation does, without
 * allocating per entity.
 */
import { ErrorCode, TickwireError } from '@tickwire/core';
import {
  aabb2Overlap,
  aabb3Overlap,
  circleAabb2Overlap,
  circleCircleOverlap,
  NO_HIT,
  type Ray2,
  type Ray3,
  rayAabb2T,
  rayAabb3T,
  rayCircleT,
  raySphereT,
  type Shape2,
  type Shape3,
  sphereAabb3Overlap,
  sphereSphereOverlap,
  type Vec2,
  type Vec3,
  vec3Length,
  zeroDirection,
} from './shapes.js';

/** 2 for circles and 2D boxes, 3 for spheres and 3D boxes. */
export type Dimensions = 2 | 3;

/** The hitbox shape of a dimension. */
export type ShapeOf<D extends Dimensions> = D extends 2 ? Shape2 : Shape3;

/** The ray of a dimension. */
export type RayOf<D extends Dimensions> = D extends 2 ? Ray2 : Ray3;

/** The point of a dimension. */
export type PointOf<D extends Dimensions> = D extends 2 ? Vec2 : Vec3;

/** One entity's hitbox at one tick. */
export interface Hitbox<Id, D extends Dimensions> {
  id: Id;
  shape: ShapeOf<D>;
}

/** The nearest hitbox a rewound ray hits. */
export interface RewindHit<Id, D extends Dimensions> {
  id: Id;
  /** Distance from the ray origin along its normalised direction (0 when it starts inside). */
  distance: number;
  /** The hit point on the rewound hitbox. */
  point: PointOf<D>;
}

/** Options of {@link LagCompensation.raycast} and {@link LagCompensation.overlap}. */
export interface RewindQueryOptions<Id> {
  /** An entity to skip, usually the shooter. */
  ignore?: Id;
  /** Longest hit distance (weapon range); raycast only. @default Infinity */
  maxDistance?: number;
}

/** Options of {@link createLagCompensation}. */
export interface LagCompensationOptions<D extends Dimensions> {
  /** 2 (circles, 2D boxes) or 3 (spheres, 3D boxes). */
  dimensions: D;
  /** Server tick length in ms (1000 / tick rate); with `historyMs` it sizes the history ring. */
  tickMs: number;
  /**
   * How far back (ms) a shot may be rewound; older shots are clamped to it, so players with more
   * lag than this must lead their targets. Source's `sv_maxunlag`. Larger values favour
   * high-latency shooters at the cost of victims being hit "around corners" for longer.
   * @default 1000
   */
  windowMs?: number;
  /**
   * How much history (ms back from the newest record) the ring keeps: `ceil(historyMs / tickMs) +
   * 2` tick records. A shot reaches the server its uplink delay after it was fired, so to rewind a
   * full `windowMs` before the firing time the ring needs `windowMs` plus that delay; a shot whose
   * time has already left the ring is tested against the oldest record (`stats().historyClamps`).
   * @default windowMs + 250
   */
  historyMs?: number;
  /**
   * Most hitboxes one tick may hold (record throws LIMIT_EXCEEDED beyond it). Each record's
   * storage starts at 64 entries and doubles on demand up to this, then is reused.
   * @default 1024
   */
  maxEntities?: number;
}

/** What {@link LagCompensation.shotTime} validates: the client's claim and the server's view. */
export interface ShotTimeInput {
  /**
   * Server time (ms) at which the shooter fired: the time its command is stamped with on a clock
   * synchronised to the server, or its arrival time minus the uplink delay. If you pass the arrival
   * time itself, pass `oneWayMs: rttMs` (the state reached the client one way, the shot came back);
   * the window is then measured back from the arrival.
   */
  serverTime: number;
  /**
   * The server time of the world the client was rendering when it fired, as the client reports it
   * (its interpolation clock). Untrusted: omit it, or pass anything from the network.
   */
  reportedRenderTime?: number;
  /** The shooter's measured round-trip time (ms). */
  rttMs: number;
  /** The measured server→client one-way delay (ms), when known. @default rttMs / 2 */
  oneWayMs?: number;
  /** The shooter's interpolation delay (ms): how far behind its newest snapshot it renders. */
  interpolationDelayMs: number;
  /**
   * Largest |claim − estimate| (ms) accepted; a claim further off is replaced by the estimate.
   * Covers jitter and clock error; it is also the most a cheating client can shift its shot.
   * Source uses 200 ms.
   * @default 200
   */
  toleranceMs?: number;
}

/**
 * Why {@link ShotTime.time} is what it is. `'claim'`: the client's claim, within tolerance.
 * `'estimate'`: no claim, the server's estimate. `'claim-rejected'`: the claim was more than
 * `toleranceMs` off, the estimate. `'invalid-claim'`: the claim was not a finite number, the
 * estimate. `'window'`: older than `serverTime − windowMs`, clamped to it. `'future'`: later than
 * `serverTime`, clamped to it.
 */
export type ShotTimeReason =
  | 'claim'
  | 'estimate'
  | 'claim-rejected'
  | 'invalid-claim'
  | 'window'
  | 'future';

/** The time to rewind a shot to. */
export interface ShotTime {
  /** Server time (ms) to pass to `raycast`/`overlap`; always in [serverTime − windowMs, serverTime]. */
  time: number;
  /** The time was moved to an edge of the window (`reason` is `'window'` or `'future'`). */
  clamped: boolean;
  /** Why `time` is what it is. */
  reason: ShotTimeReason;
  /** The server's estimate: serverTime − one-way latency − interpolation delay. */
  estimatedTime: number;
  /** Claim minus estimate (ms), NaN without a valid claim; log it to tune `toleranceMs`. */
  claimErrorMs: number;
}

/** Counters and gauges of a {@link LagCompensation}, for metrics and tuning. */
export interface LagCompensationStats {
  /** Tick records currently held. */
  storedTicks: number;
  /** Most tick records held: `ceil(historyMs / tickMs) + 2`. */
  capacityTicks: number;
  /** Time of the oldest held record (NaN when empty). */
  oldestTime: number;
  /** Time of the newest held record (NaN when empty). */
  newestTime: number;
  /** Records accepted since creation. */
  recordedTicks: number;
  /** Bytes of typed-array storage allocated; flat once every slot has grown to the entity count. */
  storageBytes: number;
  /** rewind/raycast/overlap calls. */
  queries: number;
  /** Queries whose time was outside the held history and used its oldest or newest record. */
  historyClamps: number;
  /** Raycasts that hit something. */
  raycastHits: number;
  /** shotTime results by reason. */
  shots: Record<ShotTimeReason, number>;
}

/** A history of hitboxes to rewind shots into. */
export interface LagCompensation<Id, D extends Dimensions> {
  /** The dimension of its shapes. */
  readonly dimensions: D;
  /** How far back (ms) shots are rewound. */
  readonly windowMs: number;
  /**
   * Records every hitbox of a tick; ticks and times must increase. Evicts the oldest record once
   * the ring is full. Throws INVALID_ARGUMENT on a bad tick, time, id or shape (leaving the history
   * unchanged), LIMIT_EXCEEDED beyond `maxEntities`.
   */
  record(tick: number, time: number, entries: Iterable<Hitbox<Id, D>>): void;
  /**
   * The hitboxes at `time`, interpolated between the records around it (positions and sizes
   * linearly). An entity in the earlier record but not the later one keeps its earlier hitbox; one
   * only in the later record is absent; one whose shape kind changed keeps its earlier shape.
   * Times outside the history use its oldest or newest record; empty history gives [].
   */
  rewind(time: number): Hitbox<Id, D>[];
  /** The nearest hitbox `ray` hits at `time` (rewound as by `rewind`), or null. Allocates only the hit. */
  raycast(time: number, ray: RayOf<D>, options?: RewindQueryOptions<Id>): RewindHit<Id, D> | null;
  /** Ids of the hitboxes overlapping `shape` at `time` (rewound as by `rewind`), in record order. */
  overlap(time: number, shape: ShapeOf<D>, options?: RewindQueryOptions<Id>): Id[];
  /**
   * The time to rewind a shot to. Like Source's StartLagCompensation: the server estimates what the
   * shooter saw (serverTime − one-way latency − interpolation delay); the client's reported render
   * time is used if within `toleranceMs` of that, else the estimate; the result is clamped into
   * [serverTime − windowMs, serverTime]. Never throws for what the client sent; throws
   * INVALID_ARGUMENT for a non-finite serverTime or negative/non-finite latencies and tolerance.
   */
  shotTime(input: ShotTimeInput): ShotTime;
  /** Counters and gauges. */
  stats(): LagCompensationStats;
  /** Drops the history (a map change, a teleport of everything); keeps the storage. */
  clear(): void;
}

interface Slot<Id> {
  tick: number;
  time: number;
  count: number;
  /** Ids beyond `count` up to here may still hold stale references. */
  used: number;
  capacity: number;
  ids: (Id | undefined)[];
  kinds: Uint8Array;
  values: Float64Array;
  index: Map<Id, number>;
}

const KIND_ROUND = 0;
const KIND_BOX = 1;
const INITIAL_CAPACITY = 64;
const MAX_HISTORY_TICKS = 100_000;
// Default history beyond the window: room for the uplink delay of a shot fired at the window's edge.
const DEFAULT_UPLINK_HEADROOM_MS = 250;

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new TickwireError(ErrorCode.INVALID_ARGUMENT, message, { details });
}

function checkNumber(where: string, name: string, value: number, min: number): void {
  if (!(Number.isFinite(value) && value >= min)) {
    invalid(`${where}: ${name} must be a finite number ≥ ${min}, got ${String(value)}`, {
      [name]: value,
    });
  }
}

/** Creates a 2D lag compensation history. */
export function createLagCompensation<Id>(
  options: LagCompensationOptions<2>,
): LagCompensation<Id, 2>;
/** Creates a 3D lag compensation history. */
export function createLagCompensation<Id>(
  options: LagCompensationOptions<3>,
): LagCompensation<Id, 3>;
/** Creates a lag compensation history of hitboxes keyed by `Id`. */
export function createLagCompensation<Id>(
  options: LagCompensationOptions<Dimensions>,
): LagCompensation<Id, Dimensions> {
  const where = 'createLagCompensation';
  const dimensions = options.dimensions;
  if (dimensions !== 2 && dimensions !== 3) {
    invalid(`${where}: dimensions must be 2 or 3, got ${String(dimensions)}`, { dimensions });
  }
  const tickMs = options.tickMs;
  if (!(Number.isFinite(tickMs) && tickMs > 0)) {
    invalid(`${where}: tickMs must be a finite number > 0, got ${String(tickMs)}`, { tickMs });
  }
  const windowMs = options.windowMs ?? 1000;
  checkNumber(where, 'windowMs', windowMs, 0);
  const maxEntities = options.maxEntities ?? 1024;
  if (!(Number.isInteger(maxEntities) && maxEntities >= 1)) {
    invalid(`${where}: maxEntities must be an integer ≥ 1, got ${String(maxEntities)}`, {
      maxEntities,
    });
  }
  const historyMs = options.historyMs ?? windowMs + DEFAULT_UPLINK_HEADROOM_MS;
  checkNumber(where, 'historyMs', historyMs, windowMs);
  // Records covering the history plus the one before it (to interpolate its oldest time) and one of slack.
  const capacityTicks = Math.ceil(historyMs / tickMs) + 2;
  if (capacityTicks > MAX_HISTORY_TICKS) {
    invalid(
      `${where}: historyMs / tickMs must be at most ${MAX_HISTORY_TICKS - 2} ticks, got ${capacityTicks - 2}; raise tickMs or lower historyMs`,
      { historyMs, tickMs },
    );
  }
  const stride = dimensions * 2;

  // One spare slot beyond the capacity: record writes there and commits only when it succeeds.
  const ringSize = capacityTicks + 1;
  const slots: Slot<Id>[] = [];
  for (let i = 0; i < ringSize; i++) {
    slots.push({
      tick: 0,
      time: 0,
      count: 0,
      used: 0,
      capacity: 0,
      ids: [],
      kinds: new Uint8Array(0),
      values: new Float64Array(0),
      index: new Map(),
    });
  }
  let start = 0;
  let stored = 0;
  let storageBytes = 0;

  let recordedTicks = 0;
  let queries = 0;
  let historyClamps = 0;
  let raycastHits = 0;
  const shots: Record<ShotTimeReason, number> = {
    claim: 0,
    estimate: 0,
    'claim-rejected': 0,
    'invalid-claim': 0,
    window: 0,
    future: 0,
  };

  const slotAt = (k: number): Slot<Id> => slots[(start + k) % ringSize]!;

  function grow(slot: Slot<Id>, tick: number): void {
    if (slot.capacity >= maxEntities) {
      throw new TickwireError(
        ErrorCode.LIMIT_EXCEEDED,
        `record(tick ${tick}): more than maxEntities (${maxEntities}) hitboxes; raise maxEntities`,
        { details: { tick, maxEntities } },
      );
    }
    const capacity = Math.min(maxEntities, Math.max(INITIAL_CAPACITY, slot.capacity * 2));
    const kinds = new Uint8Array(capacity);
    kinds.set(slot.kinds);
    const values = new Float64Array(capacity * stride);
    values.set(slot.values);
    storageBytes +=
      kinds.byteLength + values.byteLength - slot.kinds.byteLength - slot.values.byteLength;
    slot.kinds = kinds;
    slot.values = values;
    slot.capacity = capacity;
  }

  // Writes a shape's numbers at values[offset…]; returns its kind code, or what is wrong with it.
  function readShape(shape: unknown, values: Float64Array, offset: number): number | string {
    if (typeof shape !== 'object' || shape === null) return 'shape must be an object';
    const s = shape as Record<string, unknown>;
    const fields =
      dimensions === 2
        ? s.kind === 'circle'
          ? CIRCLE_FIELDS
          : s.kind === 'aabb'
            ? AABB2_FIELDS
            : undefined
        : s.kind === 'sphere'
          ? SPHERE_FIELDS
          : s.kind === 'aabb'
            ? AABB3_FIELDS
            : undefined;
    if (fields === undefined) {
      const kinds = dimensions === 2 ? "'circle' or 'aabb'" : "'sphere' or 'aabb'";
      return `shape.kind must be ${kinds} in ${dimensions}D, got ${String(s.kind)}`;
    }
    for (let f = 0; f < fields.length; f++) {
      const name = fields[f]!;
      const value = s[name];
      // Centre fields come first (`dimensions` of them); the sizes after them must be ≥ 0.
      const isSize = f >= dimensions;
      if (typeof value !== 'number' || !Number.isFinite(value) || (isSize && value < 0)) {
        return `shape.${name} must be a finite number${isSize ? ' ≥ 0' : ''}, got ${String(value)}`;
      }
      values[offset + f] = value;
    }
    // A round shape zeroes its unused size fields so that rows lerp cleanly.
    for (let f = fields.length; f < stride; f++) values[offset + f] = 0;
    return s.kind === 'aabb' ? KIND_BOX : KIND_ROUND;
  }

  function record(tick: number, time: number, entries: Iterable<Hitbox<Id, Dimensions>>): void {
    if (!Number.isFinite(tick)) {
      invalid(`record: tick must be a finite number, got ${String(tick)}`, { tick });
    }
    if (!Number.isFinite(time)) {
      invalid(`record(tick ${tick}): time must be a finite number, got ${String(time)}`, { time });
    }
    if (stored > 0) {
      const newest = slotAt(stored - 1);
      if (tick <= newest.tick) {
        invalid(`record: tick ${tick} must be after the last recorded tick ${newest.tick}`, {
          tick,
          lastTick: newest.tick,
        });
      }
      if (time <= newest.time) {
        invalid(
          `record(tick ${tick}): time ${time} must be after the last recorded time ${newest.time}`,
          { time, lastTime: newest.time },
        );
      }
    }
    const slot = slotAt(stored);
    const index = slot.index;
    index.clear();
    let n = 0;
    for (const entry of entries) {
      if (n === slot.capacity) grow(slot, tick);
      if (typeof entry !== 'object' || entry === null) {
        invalid(`record(tick ${tick}): entry ${n} must be an object { id, shape }`, { tick });
      }
      const id = entry.id;
      if (index.has(id)) {
        const message = `record(tick ${tick}): id ${String(id)} appears twice; ids must be unique`;
        invalid(message, { tick, entry: n });
      }
      index.set(id, n);
      slot.ids[n] = id;
      if (n >= slot.used) slot.used = n + 1;
      const kind = readShape(entry.shape, slot.values, n * stride);
      if (typeof kind === 'string') {
        invalid(`record(tick ${tick}): entry ${n} (id ${String(id)}): ${kind}`, {
          tick,
          entry: n,
          shape: entry.shape,
        });
      }
      slot.kinds[n] = kind;
      n++;
    }
    // Drop references to ids of older records so they can be collected.
    for (let i = n; i < slot.used; i++) slot.ids[i] = undefined;
    slot.used = n;
    slot.count = n;
    slot.tick = tick;
    slot.time = time;
    if (stored === capacityTicks) start = (start + 1) % ringSize;
    else stored++;
    recordedTicks++;
  }

  // Result of locate(): the two records around a time and the fraction between them.
  let earlier: Slot<Id> = slots[0]!;
  let later: Slot<Id> = slots[0]!;
  let fraction = 0;

  function checkTime(method: string, time: number): void {
    if (!Number.isFinite(time)) {
      invalid(`${method}: time must be a finite number, got ${String(time)}`, { time });
    }
  }

  // Sets earlier/later/fraction for `time`; false when nothing is recorded.
  function locate(time: number): boolean {
    queries++;
    if (stored === 0) return false;
    const oldest = slotAt(0);
    const newest = slotAt(stored - 1);
    fraction = 0;
    if (time <= oldest.time) {
      if (time < oldest.time) historyClamps++;
      earlier = later = oldest;
      return true;
    }
    if (time >= newest.time) {
      if (time > newest.time) historyClamps++;
      earlier = later = newest;
      return true;
    }
    // Binary search: the last record at or before `time` (records are in time order).
    let low = 0;
    let high = stored - 1;
    while (high - low > 1) {
      const mid = (low + high) >>> 1;
      if (slotAt(mid).time <= time) low = mid;
      else high = mid;
    }
    earlier = slotAt(low);
    later = slotAt(high);
    if (earlier.time === time) later = earlier;
    else fraction = (time - earlier.time) / (later.time - earlier.time);
    return true;
  }

  // Row of `id` in `later`, or -1 when absent or of another kind; positional match first.
  function partner(i: number, id: Id, kind: number): number {
    let j = i < later.count && later.ids[i] === id ? i : (later.index.get(id) ?? -1);
    if (j >= 0 && later.kinds[j] !== kind) j = -1;
    return j;
  }

  // Interpolated row `i` of `earlier` into `row`.
  const row = new Float64Array(6);
  function rewindRow(i: number, id: Id, kind: number): void {
    const a = earlier.values;
    const o = i * stride;
    const j = fraction > 0 ? partner(i, id, kind) : -1;
    if (j < 0) {
      for (let f = 0; f < stride; f++) row[f] = a[o + f]!;
      return;
    }
    const b = later.values;
    const p = j * stride;
    for (let f = 0; f < stride; f++) {
      const from = a[o + f]!;
      row[f] = from + (b[p + f]! - from) * fraction;
    }
  }

  function rewind(time: number): Hitbox<Id, Dimensions>[] {
    checkTime('rewind', time);
    const out: Hitbox<Id, Dimensions>[] = [];
    if (!locate(time)) return out;
    for (let i = 0; i < earlier.count; i++) {
      const id = earlier.ids[i] as Id;
      const kind = earlier.kinds[i]!;
      rewindRow(i, id, kind);
      out.push({ id, shape: toShape(kind, row) });
    }
    return out;
  }

  function toShape(kind: number, r: Float64Array): Shape2 | Shape3 {
    if (dimensions === 2) {
      return kind === KIND_BOX
        ? { kind: 'aabb', x: r[0]!, y: r[1]!, halfX: r[2]!, halfY: r[3]! }
        : { kind: 'circle', x: r[0]!, y: r[1]!, radius: r[2]! };
    }
    return kind === KIND_BOX
      ? { kind: 'aabb', x: r[0]!, y: r[1]!, z: r[2]!, halfX: r[3]!, halfY: r[4]!, halfZ: r[5]! }
      : { kind: 'sphere', x: r[0]!, y: r[1]!, z: r[2]!, radius: r[3]! };
  }

  function raycast(
    time: number,
    ray: Ray2 | Ray3,
    options?: RewindQueryOptions<Id>,
  ): RewindHit<Id, Dimensions> | null {
    checkTime('raycast', time);
    const maxDistance = options?.maxDistance ?? Number.POSITIVE_INFINITY;
    if (!(maxDistance >= 0)) {
      invalid(`raycast: maxDistance must be a number ≥ 0, got ${String(maxDistance)}`, {
        maxDistance,
      });
    }
    const origin = ray?.origin as Vec3;
    const direction = ray?.direction as Vec3;
    if (typeof origin !== 'object' || origin === null) {
      invalid('raycast: ray must be { origin, direction } with finite coordinates', { ray });
    }
    if (typeof direction !== 'object' || direction === null) zeroDirection('raycast');
    const ox = origin.x;
    const oy = origin.y;
    const oz = dimensions === 3 ? origin.z : 0;
    if (!(Number.isFinite(ox) && Number.isFinite(oy) && Number.isFinite(oz))) {
      invalid('raycast: ray.origin must have finite coordinates', { origin });
    }
    const dz = dimensions === 3 ? direction.z : 0;
    const length = vec3Length(direction.x, direction.y, dz);
    if (!(length > 0 && length < Number.POSITIVE_INFINITY)) zeroDirection('raycast');
    const ux = direction.x / length;
    const uy = direction.y / length;
    const uz = dz / length;
    if (!locate(time)) return null;
    const hasIgnore = options?.ignore !== undefined;
    const ignore = options?.ignore;
    const bestRow =
      dimensions === 2
        ? castRows2(earlier, later, fraction, ox, oy, ux, uy, maxDistance, hasIgnore, ignore)
        : castRows3(
            earlier,
            later,
            fraction,
            ox,
            oy,
            oz,
            ux,
            uy,
            uz,
            maxDistance,
            hasIgnore,
            ignore,
          );
    if (bestRow < 0) return null;
    raycastHits++;
    const best = castDistance[0]!;
    const point =
      dimensions === 2
        ? { x: ox + best * ux, y: oy + best * uy }
        : { x: ox + best * ux, y: oy + best * uy, z: oz + best * uz };
    return { id: earlier.ids[bestRow] as Id, distance: best, point };
  }

  // The query shape of overlap() as a row: centre, then sizes.
  const query = new Float64Array(6);

  function overlap(time: number, shape: Shape2 | Shape3, options?: RewindQueryOptions<Id>): Id[] {
    checkTime('overlap', time);
    const queryKind = readShape(shape, query, 0);
    if (typeof queryKind === 'string') invalid(`overlap: ${queryKind}`, { shape });
    const out: Id[] = [];
    if (!locate(time)) return out;
    const hasIgnore = options?.ignore !== undefined;
    const ignore = options?.ignore;
    const q = query;
    for (let i = 0; i < earlier.count; i++) {
      const id = earlier.ids[i] as Id;
      if (hasIgnore && id === ignore) continue;
      const kind = earlier.kinds[i]!;
      rewindRow(i, id, kind);
      let hit: boolean;
      if (dimensions === 2) {
        if (queryKind === KIND_ROUND) {
          hit =
            kind === KIND_ROUND
              ? circleCircleOverlap(q[0]!, q[1]!, q[2]!, row[0]!, row[1]!, row[2]!)
              : circleAabb2Overlap(q[0]!, q[1]!, q[2]!, row[0]!, row[1]!, row[2]!, row[3]!);
        } else {
          hit =
            kind === KIND_ROUND
              ? circleAabb2Overlap(row[0]!, row[1]!, row[2]!, q[0]!, q[1]!, q[2]!, q[3]!)
              : aabb2Overlap(q[0]!, q[1]!, q[2]!, q[3]!, row[0]!, row[1]!, row[2]!, row[3]!);
        }
      } else if (queryKind === KIND_ROUND) {
        hit =
          kind === KIND_ROUND
            ? sphereSphereOverlap(q[0]!, q[1]!, q[2]!, q[3]!, row[0]!, row[1]!, row[2]!, row[3]!)
            : sphereAabb3Overlap(
                q[0]!,
                q[1]!,
                q[2]!,
                q[3]!,
                row[0]!,
                row[1]!,
                row[2]!,
                row[3]!,
                row[4]!,
                row[5]!,
              );
      } else {
        hit =
          kind === KIND_ROUND
            ? sphereAabb3Overlap(
                row[0]!,
                row[1]!,
                row[2]!,
                row[3]!,
                q[0]!,
                q[1]!,
                q[2]!,
                q[3]!,
                q[4]!,
                q[5]!,
              )
            : aabb3Overlap(
                q[0]!,
                q[1]!,
                q[2]!,
                q[3]!,
                q[4]!,
                q[5]!,
                row[0]!,
                row[1]!,
                row[2]!,
                row[3]!,
                row[4]!,
                row[5]!,
              );
      }
      if (hit) out.push(id);
    }
    return out;
  }

  function shotTime(input: ShotTimeInput): ShotTime {
    const where = 'shotTime';
    const { serverTime, rttMs, interpolationDelayMs, reportedRenderTime } = input;
    const toleranceMs = input.toleranceMs ?? 200;
    if (!Number.isFinite(serverTime)) {
      invalid(`${where}: serverTime must be a finite number, got ${String(serverTime)}`, {
        serverTime,
      });
    }
    checkNumber(where, 'rttMs', rttMs, 0);
    const oneWayMs = input.oneWayMs ?? rttMs / 2;
    checkNumber(where, 'oneWayMs', oneWayMs, 0);
    checkNumber(where, 'interpolationDelayMs', interpolationDelayMs, 0);
    checkNumber(where, 'toleranceMs', toleranceMs, 0);

    const estimatedTime = serverTime - oneWayMs - interpolationDelayMs;
    let time = estimatedTime;
    let reason: ShotTimeReason = 'estimate';
    let claimErrorMs = Number.NaN;
    if (reportedRenderTime !== undefined) {
      if (typeof reportedRenderTime !== 'number' || !Number.isFinite(reportedRenderTime)) {
        reason = 'invalid-claim';
      } else {
        claimErrorMs = reportedRenderTime - estimatedTime;
        // Source: a claim more than 200 ms off the latency-based estimate is replaced by it.
        if (Math.abs(claimErrorMs) <= toleranceMs) {
          time = reportedRenderTime;
          reason = 'claim';
        } else {
          reason = 'claim-rejected';
        }
      }
    }
    let clamped = false;
    const oldestAllowed = serverTime - windowMs;
    if (time < oldestAllowed) {
      time = oldestAllowed;
      reason = 'window';
      clamped = true;
    } else if (time > serverTime) {
      time = serverTime;
      reason = 'future';
      clamped = true;
    }
    shots[reason]++;
    return { time, clamped, reason, estimatedTime, claimErrorMs };
  }

  function stats(): LagCompensationStats {
    return {
      storedTicks: stored,
      capacityTicks,
      oldestTime: stored > 0 ? slotAt(0).time : Number.NaN,
      newestTime: stored > 0 ? slotAt(stored - 1).time : Number.NaN,
      recordedTicks,
      storageBytes,
      queries,
      historyClamps,
      raycastHits,
      shots: { ...shots },
    };
  }

  function clear(): void {
    for (const slot of slots) {
      for (let i = 0; i < slot.used; i++) slot.ids[i] = undefined;
      slot.used = 0;
      slot.count = 0;
      slot.index.clear();
    }
    start = 0;
    stored = 0;
  }

  return {
    dimensions,
    windowMs,
    record,
    rewind,
    raycast,
    overlap,
    shotTime,
    stats,
    clear,
  } as LagCompensation<Id, Dimensions>;
}

// Out-parameter of the cast loops: the distance of the nearest hit.
const castDistance = /* @__PURE__ */ new Float64Array(1);

/**
 * Nearest row of `a`, interpolated toward its row in `b` by `f`, that a 2D ray (unit direction)
 * hits within `maxDistance`, or -1; its distance goes to castDistance[0]. The hot loop of
 * raycast, kept flat: locals only, no per-entity calls besides the kernel and, when entity order
 * changed between the records, one map lookup (the same matching as rewind's).
 */
function castRows2<Id>(
  a: Slot<Id>,
  b: Slot<Id>,
  f: number,
  ox: number,
  oy: number,
  ux: number,
  uy: number,
  maxDistance: number,
  hasIgnore: boolean,
  ignore: Id | undefined,
): number {
  const { values: av, kinds: ak, ids: aIds, count } = a;
  const { values: bv, kinds: bk, ids: bIds, count: bCount, index: bIndex } = b;
  const lerp = f > 0;
  let best = maxDistance;
  let bestRow = -1;
  for (let i = 0; i < count; i++) {
    const id = aIds[i] as Id;
    if (hasIgnore && id === ignore) continue;
    const kind = ak[i]!;
    const o = i * 4;
    let x = av[o]!;
    let y = av[o + 1]!;
    let s0 = av[o + 2]!;
    let s1 = av[o + 3]!;
    if (lerp) {
      const j = i < bCount && bIds[i] === id ? i : (bIndex.get(id) ?? -1);
      if (j >= 0 && bk[j] === kind) {
        const p = j * 4;
        x += (bv[p]! - x) * f;
        y += (bv[p + 1]! - y) * f;
        s0 += (bv[p + 2]! - s0) * f;
        s1 += (bv[p + 3]! - s1) * f;
      }
    }
    const t =
      kind === KIND_ROUND
        ? rayCircleT(ox, oy, ux, uy, x, y, s0, best)
        : rayAabb2T(ox, oy, ux, uy, x, y, s0, s1, best);
    // `best` is the kernel's tMax, so a hit is never farther; ties keep the earlier row.
    if (t !== NO_HIT && (bestRow < 0 || t < best)) {
      best = t;
      bestRow = i;
    }
  }
  castDistance[0] = best;
  return bestRow;
}

/** {@link castRows2} for 3D rows. */
function castRows3<Id>(
  a: Slot<Id>,
  b: Slot<Id>,
  f: number,
  ox: number,
  oy: number,
  oz: number,
  ux: number,
  uy: number,
  uz: number,
  maxDistance: number,
  hasIgnore: boolean,
  ignore: Id | undefined,
): number {
  const { values: av, kinds: ak, ids: aIds, count } = a;
  const { values: bv, kinds: bk, ids: bIds, count: bCount, index: bIndex } = b;
  const lerp = f > 0;
  let best = maxDistance;
  let bestRow = -1;
  for (let i = 0; i < count; i++) {
    const id = aIds[i] as Id;
    if (hasIgnore && id === ignore) continue;
    const kind = ak[i]!;
    const o = i * 6;
    let x = av[o]!;
    let y = av[o + 1]!;
    let z = av[o + 2]!;
    let s0 = av[o + 3]!;
    let s1 = av[o + 4]!;
    let s2 = av[o + 5]!;
    if (lerp) {
      const j = i < bCount && bIds[i] === id ? i : (bIndex.get(id) ?? -1);
      if (j >= 0 && bk[j] === kind) {
        const p = j * 6;
        x += (bv[p]! - x) * f;
        y += (bv[p + 1]! - y) * f;
        z += (bv[p + 2]! - z) * f;
        s0 += (bv[p + 3]! - s0) * f;
        s1 += (bv[p + 4]! - s1) * f;
        s2 += (bv[p + 5]! - s2) * f;
      }
    }
    const t =
      kind === KIND_ROUND
        ? raySphereT(ox, oy, oz, ux, uy, uz, x, y, z, s0, best)
        : rayAabb3T(ox, oy, oz, ux, uy, uz, x, y, z, s0, s1, s2, best);
    if (t !== NO_HIT && (bestRow < 0 || t < best)) {
      best = t;
      bestRow = i;
    }
  }
  castDistance[0] = best;
  return bestRow;
}

// Field order of a stored row: centre, then sizes (a round shape's radius, then zeros).
const CIRCLE_FIELDS = ['x', 'y', 'radius'] as const;
const AABB2_FIELDS = ['x', 'y', 'halfX', 'halfY'] as const;
const SPHERE_FIELDS = ['x', 'y', 'z', 'radius'] as const;
const AABB3_FIELDS = ['x', 'y', 'z', 'halfX', 'halfY', 'halfZ'] as const;
