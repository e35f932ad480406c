// Everything the server and the browser share: the rules of the game, its entity type and
// messages, the map, and the deterministic movement step that both the server simulation and
// the client's prediction run (same code, same numbers: no misprediction without packet loss
// or another player in the way).
import { defineEntityType } from '@tickwire/replication';
import { defineMessages, defineSchema } from '@tickwire/serialization';
import * as t from '@tickwire/serialization/t';

/** Simulation and snapshot rate of a room. */
export const TICK_RATE_HZ = 30;
/** One simulation step. */
export const TICK_MS = 1000 / TICK_RATE_HZ;

export const WORLD = { width: 3000, height: 3000 } as const;

export const PLAYER = {
  radius: 18,
  /** Units per second at full input. */
  speed: 260,
  maxHp: 100,
} as const;

export const WEAPON = {
  damage: 25,
  range: 1100,
  cooldownMs: 300,
} as const;

export const RESPAWN_MS = 2500;
/** Radius of a player's area of interest (the server sends nothing farther away). */
export const VIEW_RADIUS = 1300;
/** A room is topped up with bots until it has this many players. */
export const MIN_PLAYERS = 6;
export const ROOM_CAPACITY = 16;
/** How far back the server rewinds hitboxes for a shot (lag compensation window). */
export const MAX_REWIND_MS = 400;

/** An axis-aligned wall. */
export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** The map: walls and pillars inside the world's border. */
export const OBSTACLES: readonly Rect[] = [
  { x: 600, y: 600, w: 420, h: 60 },
  { x: 600, y: 660, w: 60, h: 300 },
  { x: 1980, y: 600, w: 420, h: 60 },
  { x: 2340, y: 660, w: 60, h: 300 },
  { x: 600, y: 2340, w: 420, h: 60 },
  { x: 600, y: 2040, w: 60, h: 300 },
  { x: 1980, y: 2340, w: 420, h: 60 },
  { x: 2340, y: 2040, w: 60, h: 300 },
  { x: 1400, y: 1400, w: 200, h: 200 },
  { x: 1100, y: 1000, w: 80, h: 80 },
  { x: 1820, y: 1000, w: 80, h: 80 },
  { x: 1100, y: 1920, w: 80, h: 80 },
  { x: 1820, y: 1920, w: 80, h: 80 },
  { x: 300, y: 1450, w: 300, h: 100 },
  { x: 2400, y: 1450, w: 300, h: 100 },
  { x: 1450, y: 300, w: 100, h: 300 },
  { x: 1450, y: 2400, w: 100, h: 300 },
];

/** Spawn points, clear of every obstacle. */
export const SPAWNS: readonly { x: number; y: number }[] = [
  { x: 200, y: 200 },
  { x: 2800, y: 200 },
  { x: 200, y: 2800 },
  { x: 2800, y: 2800 },
  { x: 1500, y: 900 },
  { x: 1500, y: 2100 },
  { x: 900, y: 1500 },
  { x: 2100, y: 1500 },
  { x: 400, y: 1000 },
  { x: 2600, y: 2000 },
];

/** A player's avatar, replicated to everyone who can see it. */
export const Avatar = defineEntityType('avatar', {
  x: t.quantized(0, WORLD.width, 1 / 32),
  y: t.quantized(0, WORLD.height, 1 / 32),
  angle: t.angle(12),
  hp: t.u8(),
  alive: t.bool(),
  score: t.u16(),
  bot: t.bool(),
  name: t.string({ maxBytes: 24 }),
  /** The last input of the owner the server applied: the client reconciles from it. */
  lastInput: t.varuint(),
});

/** One step of a player's input. `seq` counts up by one per step. */
export const inputSchema = defineSchema({
  seq: t.varuint(),
  /** Movement direction, each axis in [-1, 1] (WASD gives -1, 0, 1). */
  dx: t.quantized(-1, 1, 1 / 64),
  dy: t.quantized(-1, 1, 1 / 64),
  /** Aim, radians. */
  angle: t.angle(12),
  fire: t.bool(),
  /**
   * For a shot: the time on the room's tick timeline (ms) of what the shooter saw when it
   * fired, i.e. its interpolation render time. The server rewinds hitboxes to it.
   */
  viewTime: t.f64(),
});

export type Input = ReturnType<typeof inputSchema.decode>;

export const messages = {
  client: defineMessages({
    input: { id: 1, schema: inputSchema },
    name: { id: 2, schema: defineSchema({ name: t.string({ maxBytes: 24 }) }) },
  }),
  server: defineMessages({
    /** Which avatar is yours (sent when you join and after each respawn). */
    you: { id: 1, schema: defineSchema({ entityId: t.varuint() }) },
    /** A shot, for tracers: from the shooter to where it stopped; `target` 0 when it hit nothing. */
    shot: {
      id: 2,
      schema: defineSchema({
        shooter: t.varuint(),
        target: t.varuint(),
        fromX: t.f32(),
        fromY: t.f32(),
        toX: t.f32(),
        toY: t.f32(),
      }),
    },
    kill: { id: 3, schema: defineSchema({ killer: t.varuint(), victim: t.varuint() }) },
    /**
     * The room's new `tickOrigin` after its tick loop dropped ticks (a stalled process): the
     * metadata carrying it reaches a client only when it joins.
     */
    timeline: { id: 4, schema: defineSchema({ tickOrigin: t.f64() }) },
  }),
};

/** Published room metadata: where tick 0 of the room is on the server clock. */
export interface ArenaMetadata {
  /** Server time (timesync's clock, ms) of tick 0. */
  tickOrigin: number;
  tickRateHz: number;
  humans: number;
  bots: number;
}

export interface Position {
  x: number;
  y: number;
}

const clamp = (value: number, min: number, max: number): number =>
  Math.min(max, Math.max(min, value));

/** Pushes a circle out of a rectangle it overlaps (in place); true if it moved it. */
function pushOut(p: Position, radius: number, r: Rect): boolean {
  const cx = clamp(p.x, r.x, r.x + r.w);
  const cy = clamp(p.y, r.y, r.y + r.h);
  let dx = p.x - cx;
  let dy = p.y - cy;
  const d2 = dx * dx + dy * dy;
  if (d2 >= radius * radius) return false;
  if (d2 > 1e-9) {
    const d = Math.sqrt(d2);
    p.x = cx + (dx / d) * radius;
    p.y = cy + (dy / d) * radius;
    return true;
  }
  // The centre is inside the rectangle: leave through the nearest side.
  const left = p.x - r.x;
  const right = r.x + r.w - p.x;
  const top = p.y - r.y;
  const bottom = r.y + r.h - p.y;
  const least = Math.min(left, right, top, bottom);
  dx = 0;
  dy = 0;
  if (least === left) p.x = r.x - radius;
  else if (least === right) p.x = r.x + r.w + radius;
  else if (least === top) p.y = r.y - radius;
  else p.y = r.y + r.h + radius;
  return true;
}

/**
 * One movement step: direction normalised to at most length 1, scaled by speed and `dtMs`,
 * then collisions resolved against the walls and the world border. Pure and deterministic.
 */
export function stepMovement(from: Position, dx: number, dy: number, dtMs: number): Position {
  let mx = Number.isFinite(dx) ? clamp(dx, -1, 1) : 0;
  let my = Number.isFinite(dy) ? clamp(dy, -1, 1) : 0;
  const length = Math.hypot(mx, my);
  if (length > 1) {
    mx /= length;
    my /= length;
  }
  const distance = (PLAYER.speed * dtMs) / 1000;
  const next = { x: from.x + mx * distance, y: from.y + my * distance };
  for (let pass = 0; pass < 2; pass++) {
    let moved = false;
    for (const wall of OBSTACLES) moved = pushOut(next, PLAYER.radius, wall) || moved;
    if (!moved) break;
  }
  next.x = clamp(next.x, PLAYER.radius, WORLD.width - PLAYER.radius);
  next.y = clamp(next.y, PLAYER.radius, WORLD.height - PLAYER.radius);
  return next;
}

/** Distance along a ray to the first wall or the world border (at most `range`). */
export function wallDistance(origin: Position, angle: number, range: number): number {
  const dirX = Math.cos(angle);
  const dirY = Math.sin(angle);
  let best = range;
  // The world border.
  if (dirX > 0) best = Math.min(best, (WORLD.width - origin.x) / dirX);
  if (dirX < 0) best = Math.min(best, -origin.x / dirX);
  if (dirY > 0) best = Math.min(best, (WORLD.height - origin.y) / dirY);
  if (dirY < 0) best = Math.min(best, -origin.y / dirY);
  for (const r of OBSTACLES) {
    // Slab test.
    let near = 0;
    let far = best;
    let hit = true;
    for (const [o, d, lo, hi] of [
      [origin.x, dirX, r.x, r.x + r.w],
      [origin.y, dirY, r.y, r.y + r.h],
    ] as const) {
      if (Math.abs(d) < 1e-12) {
        if (o < lo || o > hi) {
          hit = false;
          break;
        }
        continue;
      }
      let t0 = (lo - o) / d;
      let t1 = (hi - o) / d;
      if (t0 > t1) [t0, t1] = [t1, t0];
      near = Math.max(near, t0);
      far = Math.min(far, t1);
      if (near > far) {
        hit = false;
        break;
      }
    }
    if (hit && near < best) best = near;
  }
  return Math.max(0, best);
}

/** True if a circle of the player's size at `p` overlaps no wall and is inside the world. */
export function isFree(p: Position): boolean {
  if (p.x < PLAYER.radius || p.y < PLAYER.radius) return false;
  if (p.x > WORLD.width - PLAYER.radius || p.y > WORLD.height - PLAYER.radius) return false;
  for (const r of OBSTACLES) {
    const cx = clamp(p.x, r.x, r.x + r.w);
    const cy = clamp(p.y, r.y, r.y + r.h);
    if ((p.x - cx) ** 2 + (p.y - cy) ** 2 < PLAYER.radius ** 2) return false;
  }
  return true;
}

const positionX = Avatar.shape.x.packed!;
const positionY = Avatar.shape.y.packed!;

/**
 * Snaps a position to the precision avatars travel at (1/32 unit). The server stores every
 * position snapped, so a client that snaps its predicted steps the same way
 * (`quantizePosition(stepMovement(...))`) replays its inputs to the server's exact numbers.
 */
export function quantizePosition(p: Position): Position {
  return { x: positionX.unpack(positionX.pack(p.x)), y: positionY.unpack(positionY.pack(p.y)) };
}
