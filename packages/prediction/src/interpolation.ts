import { ErrorCode, TickwireError } from '@tickwire/core';

/** How one field of an entity is blended between two snapshots. */
export type FieldInterpolation =
  /** `a + (b − a)·t` on a number. */
  | 'linear'
  /** Shortest arc between two angles in radians. */
  | 'angle'
  /** Shortest arc between two angles in degrees. */
  | 'angleDegrees'
  /** Spherical linear interpolation of a unit quaternion `{ x, y, z, w }`. */
  | 'slerp'
  /** The older value until the newer snapshot is reached (any type). */
  | 'step';

/** A rotation as a unit quaternion. */
export interface QuaternionLike {
  x: number;
  y: number;
  z: number;
  w: number;
}

type InterpolationsFor<V> = [V] extends [number]
  ? 'linear' | 'angle' | 'angleDegrees' | 'step'
  : [V] extends [QuaternionLike]
    ? 'slerp' | 'step'
    : 'step';

/** The interpolation of every field of `F`: numbers may blend, quaternions slerp, anything steps. */
export type FieldInterpolations<F> = { readonly [K in keyof F]-?: InterpolationsFor<F[K]> };

/** The entities of one snapshot by id: a `Map`, or a plain object when ids are strings. */
export type SnapshotEntities<F, Id extends string | number = string> =
  | ReadonlyMap<Id, F>
  | (string extends Id ? Readonly<Record<string, F>> : never);

/** Options of {@link createInterpolator}. */
export interface InterpolatorOptions<F> {
  /** How each field blends; every field of `F` is listed. */
  fields: FieldInterpolations<F>;
  /**
   * Lowest render delay, ms.
   * @default 0
   */
  minDelayMs?: number;
  /**
   * Highest render delay, ms.
   * @default 1000
   */
  maxDelayMs?: number;
  /**
   * Longest dead reckoning past the newest snapshot, ms; beyond it entities hold still.
   * @default 250
   */
  maxExtrapolationMs?: number;
  /**
   * Server time between snapshots, ms; estimated from the feed when not given.
   * @default estimated (25th percentile of the gaps between received snapshots)
   */
  snapshotIntervalMs?: number;
  /**
   * Server-time span of the sliding window the lateness and loss are measured over, ms.
   * @default 10000
   */
  windowMs?: number;
  /**
   * Quantile of the transit times (arrival − server time) the delay must cover, in (0, 1].
   * @default 0.99
   */
  latenessQuantile?: number;
  /**
   * Fixed margin added to the delay, ms.
   * @default 5
   */
  safetyMarginMs?: number;
  /**
   * Largest slowdown of playback while the delay grows (0.1: render time runs at ≥ 0.9×).
   * @default 0.1
   */
  maxSlowdown?: number;
  /**
   * Largest speedup of playback while the delay shrinks (0.02: render time runs at ≤ 1.02×).
   * @default 0.02
   */
  maxSpeedup?: number;
}

/** How a frame was produced. */
export type FrameMode =
  /** No snapshot yet: no entities. */
  | 'empty'
  /** Render time is before the oldest snapshot (start-up): that snapshot is shown. */
  | 'buffering'
  /** Between two snapshots. */
  | 'interpolated'
  /** Past the newest snapshot, within `maxExtrapolationMs`. */
  | 'extrapolated'
  /** Past the newest snapshot by more than `maxExtrapolationMs`: held at the cap. */
  | 'underrun';

/** One rendered frame; the object, its map and entities are reused by the next `sample()`. */
export interface InterpolationFrame<F, Id extends string | number = string> {
  /** Entities at the render time, by id (copy what you keep past the next `sample()`). */
  readonly entities: ReadonlyMap<Id, Readonly<F>>;
  /** Server time shown: `now − delayMs`. */
  readonly renderTime: number;
  /** Render delay of this frame, ms. */
  readonly delayMs: number;
  readonly mode: FrameMode;
  /** True for frames past the newest snapshot (`extrapolated` and `underrun`). */
  readonly extrapolated: boolean;
  /** How far past the newest snapshot entities were moved, ms (0 unless extrapolated). */
  readonly extrapolatedMs: number;
}

/** Figures of an interpolator since creation or `clear()`. */
export interface InterpolatorStats {
  /** Render delay now, ms. */
  delayMs: number;
  /** The delay the adaptation moves toward, ms. */
  targetDelayMs: number;
  /** Snapshot interval in use (given or estimated), ms; NaN before it is known. */
  snapshotIntervalMs: number;
  /** The `latenessQuantile` of transit times (arrival − server time) in the window, ms. */
  transitMs: number;
  /** That quantile minus the smallest transit time in the window, ms. */
  jitterMs: number;
  /** Fraction of snapshots missing: the larger of the window's and its last fifth's, in [0, 1). */
  lossRate: number;
  /** Snapshots held in the buffer. */
  bufferedSnapshots: number;
  /** Snapshots pushed (duplicates included). */
  receivedSnapshots: number;
  /** Snapshots that arrived after render time had passed them. */
  lateSnapshots: number;
  /** Snapshots discarded as older than the snapshot being interpolated from. */
  droppedSnapshots: number;
  /** Snapshots with a server time already received. */
  duplicateSnapshots: number;
  /** Frames sampled with at least one snapshot received. */
  frames: number;
  interpolatedFrames: number;
  /** Frames past the newest snapshot within `maxExtrapolationMs`. */
  extrapolatedFrames: number;
  /** Frames neither interpolated nor within `maxExtrapolationMs` of the newest snapshot. */
  underrunFrames: number;
}

/** Snapshot interpolation of remote entities with an adaptive render delay. */
export interface Interpolator<F, Id extends string | number = string> {
  /**
   * Takes in a snapshot. `serverTime` is its server time; `arrivalTime` the receiver's estimate
   * of server time when it arrived (e.g. timesync's `serverNow()`), on the clock `sample()` gets.
   * Out-of-order snapshots are inserted in place; duplicates and ones older than the snapshot
   * being interpolated from are counted and ignored. The entities are kept by reference.
   */
  push(serverTime: number, entities: SnapshotEntities<F, Id>, arrivalTime: number): void;
  /** The entities at render time `now − delayMs`, where `now` is the current server time. */
  sample(now: number): InterpolationFrame<F, Id>;
  /** Current render delay, ms. */
  readonly delayMs: number;
  stats(): InterpolatorStats;
  /** Forgets every snapshot, the measurements and the counters (e.g. after a reconnect). */
  clear(): void;
}

const TAU = 2 * Math.PI;

/** Linear interpolation: `a` at t = 0, `b` at t = 1, extrapolates beyond. */
export function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/**
 * Interpolates an angle along the shortest arc (radians, or degrees with `turn` 360). Every
 * result, `a` at t = 0 and `b` at t = 1 included, is wrapped into [0, turn) when both inputs are
 * ≥ 0, else into [−turn/2, turn/2); a value already in that range comes back exactly.
 */
export function lerpAngle(a: number, b: number, t: number, turn: number = TAU): number {
  const half = turn / 2;
  const low = a < 0 || b < 0 ? -half : 0;
  let result: number;
  if (t === 0) result = a;
  else if (t === 1) result = b;
  else {
    let delta = (b - a) % turn;
    if (delta > half) delta -= turn;
    else if (delta < -half) delta += turn;
    result = a + delta * t;
  }
  if (result >= low && result < low + turn) return result;
  return ((((result - low) % turn) + turn) % turn) + low;
}

/**
 * Spherical linear interpolation of unit quaternions along the shorter arc, written into `out`
 * (a new object if not given); the result is normalized, and t > 1 keeps rotating.
 */
export function slerpQuaternion(
  a: Readonly<QuaternionLike>,
  b: Readonly<QuaternionLike>,
  t: number,
  out: QuaternionLike = { x: 0, y: 0, z: 0, w: 1 },
): QuaternionLike {
  if (t === 0 || t === 1) {
    const q = t === 0 ? a : b;
    out.x = q.x;
    out.y = q.y;
    out.z = q.z;
    out.w = q.w;
    return out;
  }
  // q and −q are the same rotation: flip b to take the shorter arc.
  const sign = a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w < 0 ? -1 : 1;
  const bx = b.x * sign;
  const by = b.y * sign;
  const bz = b.z * sign;
  const bw = b.w * sign;
  // The angle between them as 2·atan2(|a − b|, |a + b|): accurate even when tiny (acos is not).
  const theta =
    2 *
    Math.atan2(
      Math.sqrt((a.x - bx) ** 2 + (a.y - by) ** 2 + (a.z - bz) ** 2 + (a.w - bw) ** 2),
      Math.sqrt((a.x + bx) ** 2 + (a.y + by) ** 2 + (a.z + bz) ** 2 + (a.w + bw) ** 2),
    );
  const sin = Math.sin(theta);
  let weightA = 1 - t;
  let weightB = t;
  // Equal rotations: the weights tend to 1 − t and t (a normalized lerp).
  if (sin > 1e-9) {
    weightA = Math.sin((1 - t) * theta) / sin;
    weightB = Math.sin(t * theta) / sin;
  }
  const x = a.x * weightA + bx * weightB;
  const y = a.y * weightA + by * weightB;
  const z = a.z * weightA + bz * weightB;
  const w = a.w * weightA + bw * weightB;
  const norm = Math.hypot(x, y, z, w) || 1;
  out.x = x / norm;
  out.y = y / norm;
  out.z = z / norm;
  out.w = w / norm;
  return out;
}

const KINDS: readonly FieldInterpolation[] = ['linear', 'angle', 'angleDegrees', 'slerp', 'step'];
// Before the second snapshot no interval can be measured: assume 20 Hz.
const INTERVAL_GUESS_MS = 50;
// Loss buys extra delay: at 20 % loss one more snapshot interval (single losses are then
// interpolated across instead of extrapolated), at most two.
const LOSS_GAIN = 5;
const MAX_LOSS_INTERVALS = 2;
const INTERVAL_QUANTILE = 0.25;
const RECENT_WINDOW_FRACTION = 0.2;
const MAX_WINDOW_SAMPLES = 2048;
const MAX_BUFFERED_SNAPSHOTS = 1024;

interface BufferedSnapshot<F, Id> {
  serverTime: number;
  entities: ReadonlyMap<Id, F>;
}

interface Resolved {
  minDelayMs: number;
  maxDelayMs: number;
  maxExtrapolationMs: number;
  snapshotIntervalMs: number | undefined;
  windowMs: number;
  latenessQuantile: number;
  safetyMarginMs: number;
  maxSlowdown: number;
  maxSpeedup: number;
}

function fail(message: string): never {
  throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `interpolator: ${message}`);
}

function resolveOptions<F>(options: InterpolatorOptions<F>): Resolved {
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  const number = (
    key: keyof Resolved,
    fallback: number,
    valid: (value: number) => boolean,
    range: string,
  ): number => {
    const value = (options as unknown as Record<string, unknown>)[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || !valid(value)) {
      fail(`${key} must be a finite number ${range}, got ${String(value)}`);
    }
    return value;
  };
  const resolved: Resolved = {
    minDelayMs: number('minDelayMs', 0, (v) => v >= 0, '>= 0'),
    maxDelayMs: number('maxDelayMs', 1000, (v) => v >= 0, '>= 0'),
    maxExtrapolationMs: number('maxExtrapolationMs', 250, (v) => v >= 0, '>= 0'),
    snapshotIntervalMs:
      options.snapshotIntervalMs === undefined
        ? undefined
        : number('snapshotIntervalMs', 0, (v) => v > 0, '> 0'),
    windowMs: number('windowMs', 10_000, (v) => v > 0, '> 0'),
    latenessQuantile: number('latenessQuantile', 0.99, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    safetyMarginMs: number('safetyMarginMs', 5, (v) => v >= 0, '>= 0'),
    maxSlowdown: number('maxSlowdown', 0.1, (v) => v > 0 && v < 1, 'in (0, 1)'),
    maxSpeedup: number('maxSpeedup', 0.02, (v) => v > 0 && v <= 1, 'in (0, 1]'),
  };
  if (resolved.maxDelayMs < resolved.minDelayMs) {
    fail(`maxDelayMs (${resolved.maxDelayMs}) must be >= minDelayMs (${resolved.minDelayMs})`);
  }
  return resolved;
}

function resolveFields<F>(fields: FieldInterpolations<F>): {
  keys: string[];
  kinds: FieldInterpolation[];
} {
  if (typeof fields !== 'object' || fields === null) {
    fail(`fields must be an object of field name to interpolation, got ${String(fields)}`);
  }
  const keys: string[] = [];
  const kinds: FieldInterpolation[] = [];
  for (const [key, kind] of Object.entries(fields as Record<string, unknown>)) {
    if (!KINDS.includes(kind as FieldInterpolation)) {
      fail(`field '${key}' must be one of ${KINDS.join(', ')}, got ${String(kind)}`);
    }
    keys.push(key);
    kinds.push(kind as FieldInterpolation);
  }
  return { keys, kinds };
}

function checkTime(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(`${name} must be a finite number (ms), got ${String(value)}`);
  }
}

/** Nearest-rank quantile of the first `count` values of `sorted`. */
function quantile(sorted: Float64Array, count: number, q: number): number {
  return sorted[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))]!;
}

/**
 * Creates a snapshot interpolator. The render delay adapts to the feed: it covers a high
 * quantile of the measured transit times plus one snapshot interval, plus margins for loss and
 * underruns, and changes by time-scaling playback (never by jumping).
 */
export function createInterpolator<F extends object, Id extends string | number = string>(
  options: InterpolatorOptions<F>,
): Interpolator<F, Id> {
  const config = resolveOptions(options);
  const { keys, kinds } = resolveFields(options.fields);
  const fieldCount = keys.length;

  let buffer: BufferedSnapshot<F, Id>[] = [];
  // The window, sorted by server time: server times and transit times (arrival − server time).
  let windowTimes: number[] = [];
  let windowTransits: number[] = [];
  let scratch = new Float64Array(64);

  let intervalMs = config.snapshotIntervalMs ?? Number.NaN;
  let transitMs = Number.NaN;
  let jitterMs = Number.NaN;
  let lossRate = 0;
  let baseTargetMs = config.minDelayMs;
  let underrunBoostMs = 0;
  let delayMs = config.minDelayMs;
  let started = false;
  let lastNow = Number.NaN;
  let lastRenderTime = Number.NaN;
  let lastMode: FrameMode = 'empty';

  let counters = zeroCounters();

  const outEntities = new Map<Id, F>();
  const frame = {
    entities: outEntities as ReadonlyMap<Id, Readonly<F>>,
    renderTime: Number.NaN,
    delayMs,
    mode: 'empty' as FrameMode,
    extrapolated: false,
    extrapolatedMs: 0,
  };

  function zeroCounters() {
    return {
      receivedSnapshots: 0,
      lateSnapshots: 0,
      droppedSnapshots: 0,
      duplicateSnapshots: 0,
      frames: 0,
      interpolatedFrames: 0,
      extrapolatedFrames: 0,
      underrunFrames: 0,
    };
  }

  const clampDelay = (value: number) =>
    Math.min(config.maxDelayMs, Math.max(config.minDelayMs, value));
  const targetMs = () => clampDelay(baseTargetMs + underrunBoostMs);

  function reserveScratch(count: number): Float64Array {
    if (scratch.length < count) scratch = new Float64Array(Math.max(count, scratch.length * 2));
    return scratch;
  }

  /** Re-estimates interval, transit quantile and loss from the window; sets the base target. */
  function estimate(): void {
    const count = windowTimes.length;
    if (config.snapshotIntervalMs === undefined && count >= 2) {
      const gaps = reserveScratch(count - 1);
      for (let i = 1; i < count; i++) gaps[i - 1] = windowTimes[i]! - windowTimes[i - 1]!;
      gaps.subarray(0, count - 1).sort();
      intervalMs = quantile(gaps, count - 1, INTERVAL_QUANTILE);
    }
    const interval = Number.isNaN(intervalMs) ? INTERVAL_GUESS_MS : intervalMs;
    // Loss over the window and over its last fifth: the larger counts, so a burst raises the
    // delay within a second or two and its effect lasts until it leaves the whole window.
    const recentFrom = windowTimes[count - 1]! - config.windowMs * RECENT_WINDOW_FRACTION;
    let missing = 0;
    let recentMissing = 0;
    let recentCount = windowTimes[0]! >= recentFrom ? 1 : 0;
    for (let i = 1; i < count; i++) {
      const gapMissing = Math.max(
        0,
        Math.round((windowTimes[i]! - windowTimes[i - 1]!) / interval) - 1,
      );
      missing += gapMissing;
      if (windowTimes[i]! >= recentFrom) {
        recentCount++;
        if (windowTimes[i - 1]! >= recentFrom) recentMissing += gapMissing;
      }
    }
    lossRate = Math.max(missing / (count + missing), recentMissing / (recentCount + recentMissing));
    const sorted = reserveScratch(count);
    for (let i = 0; i < count; i++) sorted[i] = windowTransits[i]!;
    sorted.subarray(0, count).sort();
    transitMs = quantile(sorted, count, config.latenessQuantile);
    jitterMs = transitMs - sorted[0]!;
    const lossMarginMs = interval * Math.min(MAX_LOSS_INTERVALS, lossRate * LOSS_GAIN);
    baseTargetMs = transitMs + interval + config.safetyMarginMs + lossMarginMs;
  }

  /** Adds a transit sample; false if this server time is already in the window (duplicate). */
  function measure(serverTime: number, arrivalTime: number): boolean {
    let index = windowTimes.length;
    while (index > 0 && windowTimes[index - 1]! >= serverTime) {
      if (windowTimes[index - 1] === serverTime) return false;
      index--;
    }
    windowTimes.splice(index, 0, serverTime);
    windowTransits.splice(index, 0, arrivalTime - serverTime);
    const newest = windowTimes[windowTimes.length - 1]!;
    let evict = 0;
    while (
      windowTimes.length - evict > MAX_WINDOW_SAMPLES ||
      windowTimes[evict]! < newest - config.windowMs
    ) {
      evict++;
    }
    if (evict > 0) {
      windowTimes.splice(0, evict);
      windowTransits.splice(0, evict);
    }
    return true;
  }

  function toMap(entities: SnapshotEntities<F, Id>): ReadonlyMap<Id, F> {
    if (entities instanceof Map) return entities;
    if (typeof entities !== 'object' || entities === null) {
      fail(`entities must be a Map or an object of id to fields, got ${String(entities)}`);
    }
    return new Map(Object.entries(entities)) as unknown as ReadonlyMap<Id, F>;
  }

  function push(serverTime: number, entities: SnapshotEntities<F, Id>, arrivalTime: number): void {
    checkTime('serverTime', serverTime);
    checkTime('arrivalTime', arrivalTime);
    const map = toMap(entities);
    counters.receivedSnapshots++;
    let index = buffer.length;
    while (index > 0 && buffer[index - 1]!.serverTime >= serverTime) {
      if (buffer[index - 1]!.serverTime === serverTime) {
        counters.duplicateSnapshots++;
        return;
      }
      index--;
    }
    if (!measure(serverTime, arrivalTime)) {
      counters.duplicateSnapshots++;
      return;
    }
    if (serverTime < lastRenderTime) counters.lateSnapshots++;
    estimate();
    if (!started) {
      // No playback to keep smooth yet: start at the first estimate.
      started = true;
      delayMs = targetMs();
    }
    if (index === 0 && buffer.length > 0 && buffer[0]!.serverTime <= lastRenderTime) {
      // Older than the snapshot render time interpolates from: useless now.
      counters.droppedSnapshots++;
      return;
    }
    buffer.splice(index, 0, { serverTime, entities: map });
    if (buffer.length > MAX_BUFFERED_SNAPSHOTS) buffer.shift();
  }

  function entityFor(id: Id): Record<string, unknown> {
    let entity = outEntities.get(id) as Record<string, unknown> | undefined;
    if (entity === undefined) {
      entity = {};
      for (let k = 0; k < fieldCount; k++) {
        entity[keys[k]!] = kinds[k] === 'slerp' ? { x: 0, y: 0, z: 0, w: 1 } : undefined;
      }
      outEntities.set(id, entity as F);
    }
    return entity;
  }

  function copyFields(out: Record<string, unknown>, from: Record<string, unknown>): void {
    for (let k = 0; k < fieldCount; k++) {
      const key = keys[k]!;
      if (kinds[k] === 'slerp') {
        slerpQuaternion(
          from[key] as QuaternionLike,
          from[key] as QuaternionLike,
          0,
          out[key] as QuaternionLike,
        );
      } else if (kinds[k] === 'angle' || kinds[k] === 'angleDegrees') {
        // Wrapped like a blended angle, so the field's range does not depend on a counterpart.
        const angle = from[key] as number;
        out[key] = lerpAngle(angle, angle, 0, kinds[k] === 'angle' ? TAU : 360);
      } else {
        out[key] = from[key];
      }
    }
  }

  function blendFields(
    out: Record<string, unknown>,
    a: Record<string, unknown>,
    b: Record<string, unknown>,
    t: number,
  ): void {
    for (let k = 0; k < fieldCount; k++) {
      const key = keys[k]!;
      switch (kinds[k]) {
        case 'linear':
          out[key] = lerp(a[key] as number, b[key] as number, t);
          break;
        case 'angle':
          out[key] = lerpAngle(a[key] as number, b[key] as number, t, TAU);
          break;
        case 'angleDegrees':
          out[key] = lerpAngle(a[key] as number, b[key] as number, t, 360);
          break;
        case 'slerp':
          slerpQuaternion(
            a[key] as QuaternionLike,
            b[key] as QuaternionLike,
            t,
            out[key] as QuaternionLike,
          );
          break;
        default:
          out[key] = t < 1 ? a[key] : b[key];
      }
    }
  }

  /**
   * Writes the frame's entities: those of `members` (the older snapshot when interpolating, the
   * newer when extrapolating), blended with their counterpart in `other` where it has one.
   */
  function writeEntities(
    members: ReadonlyMap<Id, F>,
    other: ReadonlyMap<Id, F> | undefined,
    membersAreOlder: boolean,
    t: number,
  ): void {
    for (const [id, fields] of members) {
      const out = entityFor(id);
      const counterpart = other?.get(id);
      if (counterpart === undefined) {
        copyFields(out, fields as Record<string, unknown>);
      } else if (membersAreOlder) {
        blendFields(
          out,
          fields as Record<string, unknown>,
          counterpart as Record<string, unknown>,
          t,
        );
      } else {
        blendFields(
          out,
          counterpart as Record<string, unknown>,
          fields as Record<string, unknown>,
          t,
        );
      }
    }
    for (const id of outEntities.keys()) if (!members.has(id)) outEntities.delete(id);
  }

  function setMode(mode: FrameMode, extrapolatedMs: number): void {
    frame.mode = mode;
    frame.extrapolated = mode === 'extrapolated' || mode === 'underrun';
    frame.extrapolatedMs = extrapolatedMs;
    if (mode === 'empty' || mode === 'buffering') return;
    counters.frames++;
    if (mode === 'interpolated') counters.interpolatedFrames++;
    else if (mode === 'extrapolated') counters.extrapolatedFrames++;
    else {
      counters.underrunFrames++;
      // A fresh underrun: the delay was too short for this feed, add an interval of margin.
      if (lastMode !== 'underrun') {
        underrunBoostMs += Number.isNaN(intervalMs) ? INTERVAL_GUESS_MS : intervalMs;
      }
    }
  }

  function sample(now: number): InterpolationFrame<F, Id> {
    checkTime('now', now);
    const elapsed = Number.isNaN(lastNow) ? 0 : Math.max(0, now - lastNow);
    lastNow = now;
    // The underrun margin fades with the window's time constant.
    if (underrunBoostMs > 0) underrunBoostMs *= Math.exp(-elapsed / config.windowMs);
    const target = targetMs();
    // Time-scaling: the delay moves by at most maxSlowdown / maxSpeedup of the elapsed time.
    if (target > delayMs) delayMs = Math.min(target, delayMs + config.maxSlowdown * elapsed);
    else delayMs = Math.max(target, delayMs - config.maxSpeedup * elapsed);
    const renderTime = now - delayMs;
    frame.renderTime = renderTime;
    frame.delayMs = delayMs;
    if (buffer.length === 0) {
      outEntities.clear();
      setMode('empty', 0);
      return frame;
    }
    lastRenderTime = renderTime;
    const oldest = buffer[0]!;
    if (renderTime < oldest.serverTime) {
      writeEntities(oldest.entities, undefined, true, 0);
      setMode('buffering', 0);
      lastMode = 'buffering';
      return frame;
    }
    let from = buffer.length - 1;
    while (buffer[from]!.serverTime > renderTime) from--;
    let mode: FrameMode;
    if (from < buffer.length - 1) {
      const older = buffer[from]!;
      const newer = buffer[from + 1]!;
      const t = (renderTime - older.serverTime) / (newer.serverTime - older.serverTime);
      writeEntities(older.entities, newer.entities, true, t);
      if (from > 0) buffer.splice(0, from);
      mode = 'interpolated';
      setMode(mode, 0);
    } else {
      const newest = buffer[from]!;
      const ahead = renderTime - newest.serverTime;
      const extrapolatedMs = Math.min(ahead, config.maxExtrapolationMs);
      mode =
        ahead === 0
          ? 'interpolated'
          : ahead <= config.maxExtrapolationMs
            ? 'extrapolated'
            : 'underrun';
      if (from === 0) {
        // One snapshot: no velocity to reckon with, hold it.
        writeEntities(newest.entities, undefined, false, 1);
      } else {
        const previous = buffer[from - 1]!;
        const t = 1 + extrapolatedMs / (newest.serverTime - previous.serverTime);
        writeEntities(newest.entities, previous.entities, false, t);
        // Dead reckoning needs the newest two.
        if (from > 1) buffer.splice(0, from - 1);
      }
      setMode(mode, mode === 'interpolated' ? 0 : extrapolatedMs);
    }
    lastMode = mode;
    return frame;
  }

  return {
    push,
    sample,
    get delayMs() {
      return delayMs;
    },
    stats(): InterpolatorStats {
      return {
        delayMs,
        targetDelayMs: targetMs(),
        snapshotIntervalMs: intervalMs,
        transitMs,
        jitterMs,
        lossRate,
        bufferedSnapshots: buffer.length,
        ...counters,
      };
    },
    clear() {
      buffer = [];
      windowTimes = [];
      windowTransits = [];
      intervalMs = config.snapshotIntervalMs ?? Number.NaN;
      transitMs = Number.NaN;
      jitterMs = Number.NaN;
      lossRate = 0;
      baseTargetMs = config.minDelayMs;
      underrunBoostMs = 0;
      delayMs = config.minDelayMs;
      started = false;
      lastNow = Number.NaN;
      lastRenderTime = Number.NaN;
      lastMode = 'empty';
      counters = zeroCounters();
      outEntities.clear();
    },
  };
}
