// Server-side bots, the arena's "AI system". A bot is an ordinary arena player whose inputs come
// from a brain instead of the network: each tick `think` looks at the world and returns one
// `Input`, which goes through the same queue and the same apply path as a human's. Everything
// random comes from a seeded generator, so a room with the same seed plays the same game.
import type { SeededRandom } from '@tickwire/core';
import {
  type Input,
  isFree,
  PLAYER,
  type Position,
  TICK_MS,
  WEAPON,
  WORLD,
  wallDistance,
} from '../shared/game.js';

/** How far a bot notices an enemy (with a line of sight). */
export const BOT_SIGHT_RANGE = 700;

/** How a bot sees itself. */
export interface BotSelf {
  readonly entityId: number;
  readonly x: number;
  readonly y: number;
  /** Its current aim, radians. */
  readonly angle: number;
  readonly alive: boolean;
}

/** Another player as a bot sees it. */
export interface BotTarget {
  readonly entityId: number;
  readonly x: number;
  readonly y: number;
  readonly alive: boolean;
}

/** Tuning of a bot; the defaults make a fair opponent. */
export interface BotSkill {
  /** Standard deviation of the aim error, radians. @default 0.05 */
  aimErrorRad?: number;
  /** Fastest turn of the aim per tick, radians. @default 0.3 */
  turnRadPerTick?: number;
  /** Ticks between seeing an enemy and the first shot. @default 6 */
  reactionTicks?: number;
  /** Fire when the aim is within this of the enemy's direction, radians. @default 0.1 */
  fireToleranceRad?: number;
}

/** The mind of one bot. */
export interface BotBrain {
  /**
   * One step of thought: the input to apply this tick. `viewTime` is the time on the room's
   * tick timeline of the positions in `others` (what the bot "sees"; it rides along with a shot
   * like a human's interpolation time).
   */
  think(self: BotSelf, others: Iterable<BotTarget>, viewTime: number): Input;
  /** Entity id of the enemy it is fighting, or null while it wanders. */
  readonly target: number | null;
  /** Where it is walking to while it wanders. */
  readonly waypoint: Readonly<Position> | null;
}

const TWO_PI = Math.PI * 2;
const WAYPOINT_REACHED = 40;
const WAYPOINT_MAX_DISTANCE = 1200;
const STUCK_TICKS = 20;
const AIM_RESAMPLE_TICKS = 15;
const PREFERRED_RANGE = { near: 220, far: 420 } as const;
const STEP_UNITS = (PLAYER.speed * TICK_MS) / 1000;

/** `angle` in (-π, π]. */
export function normalizeAngle(angle: number): number {
  let a = angle % TWO_PI;
  if (a <= -Math.PI) a += TWO_PI;
  else if (a > Math.PI) a -= TWO_PI;
  return a;
}

/** True if nothing but open floor lies between two points (walls and pillars block). */
export function hasLineOfSight(from: Position, to: Position): boolean {
  const distance = Math.hypot(to.x - from.x, to.y - from.y);
  if (distance < 1e-6) return true;
  const angle = Math.atan2(to.y - from.y, to.x - from.x);
  return wallDistance(from, angle, distance) >= distance - 1e-6;
}

/** A uniformly random point where a player fits. */
export function randomFreePoint(random: SeededRandom): Position {
  for (let attempt = 0; attempt < 100; attempt++) {
    const p = {
      x: random.range(PLAYER.radius, WORLD.width - PLAYER.radius),
      y: random.range(PLAYER.radius, WORLD.height - PLAYER.radius),
    };
    if (isFree(p)) return p;
  }
  return { x: WORLD.width / 2, y: PLAYER.radius * 4 }; // open floor on the north edge
}

/**
 * A waypoint for a bot at `from`: a free point within reach that it can walk to in a straight
 * line when one is found quickly, else any free point (getting stuck re-picks).
 */
export function pickWaypoint(random: SeededRandom, from: Position): Position {
  for (let attempt = 0; attempt < 12; attempt++) {
    const angle = random.range(-Math.PI, Math.PI);
    const distance = random.range(200, WAYPOINT_MAX_DISTANCE);
    const p = { x: from.x + Math.cos(angle) * distance, y: from.y + Math.sin(angle) * distance };
    if (!isFree(p)) continue;
    // The centre's ray plus a body's width of margin: the path is clear for the whole body.
    const clear = wallDistance(from, angle, distance + PLAYER.radius);
    if (clear >= distance + PLAYER.radius - 1e-6) return p;
  }
  return randomFreePoint(random);
}

/**
 * How many bots a room should hold: enough to reach `minPlayers` with its humans, never more
 * than the seats the humans leave free.
 */
export function wantedBots(humans: number, minPlayers: number, capacity: number): number {
  return Math.max(0, Math.min(minPlayers, capacity) - humans);
}

const NAMES = [
  'Ada',
  'Brick',
  'Cobalt',
  'Dash',
  'Echo',
  'Flint',
  'Gizmo',
  'Hex',
  'Ion',
  'Jolt',
  'Kilo',
  'Lux',
  'Mako',
  'Nova',
  'Onyx',
  'Pixel',
  'Quark',
  'Rune',
  'Sprocket',
  'Tango',
] as const;

/** The display name of the `n`-th bot of a room (1-based). */
export function botName(n: number): string {
  const base = NAMES[(n - 1) % NAMES.length]!;
  const round = Math.floor((n - 1) / NAMES.length);
  return `${base} (bot)${round > 0 ? ` ${round + 1}` : ''}`;
}

/** Creates a bot's mind; `random` should be its own (fork the room's generator). */
export function createBotBrain(random: SeededRandom, skill: BotSkill = {}): BotBrain {
  const aimErrorRad = skill.aimErrorRad ?? 0.05;
  const turnRadPerTick = skill.turnRadPerTick ?? 0.3;
  const reactionTicks = skill.reactionTicks ?? 6;
  const fireToleranceRad = skill.fireToleranceRad ?? 0.1;

  let seq = 0;
  let waypoint: Position | null = null;
  let target: number | null = null;
  let seenTicks = 0;
  let aimError = 0;
  let aimErrorTicks = 0;
  let strafe = random.chance(0.5) ? 1 : -1;
  let hasLast = false;
  let lastX = 0;
  let lastY = 0;
  let stuckTicks = 0;
  let progress = 0;

  const input = (dx: number, dy: number, angle: number, fire: boolean, viewTime: number) => ({
    seq: ++seq,
    dx,
    dy,
    angle: normalizeAngle(angle),
    fire,
    viewTime,
  });

  const nearestVisible = (self: BotSelf, others: Iterable<BotTarget>): BotTarget | null => {
    let best: BotTarget | null = null;
    let bestDistance = BOT_SIGHT_RANGE;
    for (const other of others) {
      if (!other.alive || other.entityId === self.entityId) continue;
      const distance = Math.hypot(other.x - self.x, other.y - self.y);
      if (distance > bestDistance) continue;
      if (!hasLineOfSight(self, other)) continue;
      best = other;
      bestDistance = distance;
    }
    return best;
  };

  const wander = (self: BotSelf, viewTime: number): Input => {
    // Stuck: little progress over STUCK_TICKS ticks (a wall in the way, or a corner).
    if (hasLast) progress += Math.hypot(self.x - lastX, self.y - lastY);
    stuckTicks++;
    if (stuckTicks >= STUCK_TICKS) {
      if (progress < STEP_UNITS * STUCK_TICKS * 0.4) waypoint = null;
      stuckTicks = 0;
      progress = 0;
    }
    if (
      waypoint === null ||
      Math.hypot(waypoint.x - self.x, waypoint.y - self.y) < WAYPOINT_REACHED
    ) {
      waypoint = pickWaypoint(random, self);
    }
    const angle = Math.atan2(waypoint.y - self.y, waypoint.x - self.x);
    // Look where it walks, turning no faster than it could aim.
    const look = self.angle + clampTurn(normalizeAngle(angle - self.angle), turnRadPerTick);
    return input(Math.cos(angle), Math.sin(angle), look, false, viewTime);
  };

  const fight = (self: BotSelf, enemy: BotTarget, viewTime: number): Input => {
    if (enemy.entityId !== target) {
      target = enemy.entityId;
      seenTicks = 0;
    }
    seenTicks++;
    if (--aimErrorTicks <= 0) {
      aimError = random.normal(0, aimErrorRad);
      aimErrorTicks = AIM_RESAMPLE_TICKS;
      if (random.chance(0.3)) strafe = -strafe;
    }
    const dx = enemy.x - self.x;
    const dy = enemy.y - self.y;
    const distance = Math.max(Math.hypot(dx, dy), 1e-6);
    const direct = Math.atan2(dy, dx);
    const wanted = direct + aimError;
    const angle = self.angle + clampTurn(normalizeAngle(wanted - self.angle), turnRadPerTick);
    // Keep a fighting distance and strafe across the enemy's line of fire.
    const ux = dx / distance;
    const uy = dy / distance;
    const advance = distance > PREFERRED_RANGE.far ? 1 : distance < PREFERRED_RANGE.near ? -0.8 : 0;
    const moveX = ux * advance - uy * strafe * 0.7;
    const moveY = uy * advance + ux * strafe * 0.7;
    const aimed = Math.abs(normalizeAngle(angle - wanted)) <= fireToleranceRad;
    const fire = aimed && seenTicks > reactionTicks && distance <= WEAPON.range;
    return input(moveX, moveY, angle, fire, viewTime);
  };

  return {
    think(self, others, viewTime) {
      if (!self.alive) {
        target = null;
        waypoint = null;
        hasLast = false;
        return input(0, 0, self.angle, false, viewTime);
      }
      const enemy = nearestVisible(self, others);
      const result = enemy === null ? wander(self, viewTime) : fight(self, enemy, viewTime);
      if (enemy === null) target = null;
      hasLast = true;
      lastX = self.x;
      lastY = self.y;
      return result;
    },
    get target() {
      return target;
    },
    get waypoint() {
      return waypoint;
    },
  };
}

function clampTurn(delta: number, max: number): number {
  return Math.max(-max, Math.min(max, delta));
}
