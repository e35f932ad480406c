// The arena room: the authoritative simulation of the demo. Humans and bots are the same kind
// of player (an avatar entity and a queue of inputs); every tick each player's queued inputs
// move it with the shared `stepMovement`, and shots are tested against hitboxes rewound to
// what the shooter saw (lag compensation). Avatars are replicated to the clients that can see
// them; `lastInput` only to the avatar's owner, who reconciles its prediction from it.
//
// Time: the room's tick timeline is `tick × TICK_MS` (ms). Tick 0 is `tickOrigin` on the server
// clock (the clock the timesync responder answers with), published in the room's metadata,
// so a client's `serverNow() − tickOrigin` is a time on the tick timeline: snapshots of tick n
// are drawn at n × TICK_MS, shots carry the interpolation time as `viewTime`, and the server
// rewinds hitboxes recorded at `tick × TICK_MS`.
import {
  type Clock,
  createRandom,
  type SeededRandom,
  systemRandom,
  systemTime,
} from '@tickwire/core';
import {
  createLagCompensation,
  type Hitbox,
  type LagCompensation,
  raycast2,
} from '@tickwire/prediction';
import { createGridInterest, type Entity, type GridInterest } from '@tickwire/replication';
import { defineRoom, type Room, type StandardSchemaLike } from '@tickwire/rooms';
import type { MessageRegistry } from '@tickwire/serialization';
import { type RoomReplication, replicate } from '@tickwire/server';
import {
  type ArenaMetadata,
  Avatar,
  type Input,
  isFree,
  MAX_REWIND_MS,
  MIN_PLAYERS,
  messages,
  PLAYER,
  type Position,
  quantizePosition,
  RESPAWN_MS,
  ROOM_CAPACITY,
  SPAWNS,
  stepMovement,
  TICK_MS,
  TICK_RATE_HZ,
  VIEW_RADIUS,
  WEAPON,
  wallDistance,
} from '../shared/game.js';
import {
  type BotBrain,
  type BotTarget,
  botName,
  createBotBrain,
  normalizeAngle,
  wantedBots,
} from './bots.js';

/** An avatar in the world. */
export type AvatarEntity = Entity<typeof Avatar.shape>;

type ServerMessages = typeof messages.server extends MessageRegistry<infer D> ? D : never;

/** An arena room as its hooks see it. */
export type ArenaRoom = Room<ArenaState, ServerMessages>;

/**
 * Most inputs waiting per player (about a second); beyond it the oldest is dropped. Inputs
 * arrive in bursts after a network stall or a reconnection: every one must still be applied,
 * or the client's prediction (which applied them all) is corrected.
 */
export const MAX_QUEUED_INPUTS = 32;
/** Inputs a player's step consumes per tick (absorbs arrival jitter without speeding up). */
export const INPUTS_PER_TICK = 2;
/** Inputs per tick while catching up on a long queue. */
export const MAX_INPUTS_PER_TICK = 4;
/** Longest name, in UTF-8 bytes (the Avatar's `name` field). */
export const MAX_NAME_BYTES = 24;

/** One player, human or bot. */
export interface ArenaPlayer {
  /** A human's session id, or `bot-N`. */
  readonly id: string;
  readonly entity: AvatarEntity;
  /** The bot's mind; null for a human. */
  readonly bot: BotBrain | null;
  /** Inputs not applied yet, oldest first. */
  readonly inputs: Input[];
  /** Highest `seq` queued: inputs at or below it are duplicates and are dropped. */
  lastQueuedSeq: number;
  /**
   * The player's own input clock: applied inputs × TICK_MS. The weapon cooldown runs on it,
   * like the client's, so inputs applied in a catch-up burst keep their spacing.
   */
  inputClockMs: number;
  /** Inputs the player may still apply: one more per tick, up to MAX_QUEUED_INPUTS. */
  inputCredit: number;
  /** Input-clock time (ms) from which the weapon fires again. */
  nextFireMs: number;
  /** Time on the tick timeline (ms) of the respawn, while dead. */
  respawnMs: number;
  /** The player's area of interest (reused; follows its avatar). */
  readonly view: { x: number; y: number; radius: number };
  /** How bots see it (reused every tick). */
  readonly sight: { entityId: number; x: number; y: number; alive: boolean };
  /**
   * Its lag-compensation hitbox (reused every tick), keyed by the player itself: entity ids are
   * reused after a despawn, and a newcomer must not inherit the history of who had its id.
   */
  readonly hitbox: Hitbox<ArenaPlayer, 2> & { shape: { kind: 'circle'; x: number; y: number } };
}

/** Counters of an arena, for tests and `/debug`. */
export interface ArenaStats {
  /** Inputs applied (humans and bots). */
  inputs: number;
  /**
   * Inputs dropped: a full queue, a repeated or old `seq`, a player that is gone, or inputs
   * still queued when their player is killed.
   */
  droppedInputs: number;
  shots: number;
  hits: number;
  kills: number;
}

/** The state of an arena room. */
export interface ArenaState {
  readonly replication: RoomReplication;
  readonly interest: GridInterest;
  /** Players by session id (humans) or `bot-N` (bots), in join order. */
  readonly players: Map<string, ArenaPlayer>;
  /** Players by avatar entity id. */
  readonly byEntity: Map<number, ArenaPlayer>;
  /** Hitboxes of the living, one record per tick at `tick × TICK_MS`. */
  readonly lagCompensation: LagCompensation<ArenaPlayer, 2>;
  readonly random: SeededRandom;
  readonly minPlayers: number;
  readonly botsEnabled: boolean;
  readonly capacity: number;
  /** Server clock time of tick 0, before any dropped ticks (see `tickOrigin`). */
  readonly clockAtTickZero: number;
  /** The published metadata. */
  metadata: ArenaMetadata;
  readonly stats: ArenaStats;
  /** Numbers for default names. */
  nextPlayerNumber: number;
  nextBotNumber: number;
}

/** Options of {@link defineArena}. */
export interface ArenaOptions {
  /**
   * The server clock: the one the timesync responder answers with (`systemTime` in
   * `@tickwire/server`), so that `tickOrigin` means the same to clients.
   * @default systemTime
   */
  time?: Clock;
  /** Spawn choices and bots; each room forks its own generator from it. @default a random seed */
  random?: SeededRandom;
  /** Bots top a room up to this many players. @default MIN_PLAYERS */
  minPlayers?: number;
  /** @default true */
  botsEnabled?: boolean;
  /** Most players (humans plus bots) and most humans. @default ROOM_CAPACITY */
  capacity?: number;
}

/** Join options of the arena. */
export interface ArenaJoinOptions {
  /** Display name (trimmed, at most 24 UTF-8 bytes); `player-N` when absent or blank. */
  name?: string;
}

const MAX_OPTION_NAME_CHARS = 64;
const EPSILON_MS = 1e-6;
const utf8 = new TextEncoder();

/** Join options: absent, or `{ name?: string }`. */
export const arenaJoinOptions: StandardSchemaLike<ArenaJoinOptions> = {
  '~standard': {
    version: 1,
    vendor: 'tickwire-demo',
    validate(value) {
      if (value === undefined || value === null) return { value: {} };
      if (typeof value !== 'object' || Array.isArray(value))
        return { issues: [{ message: 'expected an object like { name?: string }' }] };
      const name = (value as { name?: unknown }).name;
      if (name === undefined) return { value: {} };
      if (typeof name !== 'string')
        return { issues: [{ message: `expected a string, got ${typeof name}`, path: ['name'] }] };
      if (name.length > MAX_OPTION_NAME_CHARS)
        return {
          issues: [{ message: `at most ${MAX_OPTION_NAME_CHARS} characters`, path: ['name'] }],
        };
      return { value: { name } };
    },
  },
};

/**
 * A display name from what a player typed: control characters removed, whitespace trimmed and
 * cut to 24 UTF-8 bytes (whole characters); null when nothing is left.
 */
export function cleanName(raw: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point.
  const text = raw.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = utf8.encode(char).length;
    if (bytes + size > MAX_NAME_BYTES) break;
    out += char;
    bytes += size;
  }
  out = out.trim();
  return out.length === 0 ? null : out;
}

/** The time on the tick timeline (ms) of a tick. */
export const tickTime = (tick: number): number => tick * TICK_MS;

/** How many queued inputs a player's step takes this tick. */
export function inputsToConsume(queued: number): number {
  return queued > MAX_INPUTS_PER_TICK ? MAX_INPUTS_PER_TICK : Math.min(INPUTS_PER_TICK, queued);
}

/**
 * The spawn point for a new or respawning avatar: a free spawn farthest from every other living
 * avatar (ties, as in an empty room, broken by the room's random generator).
 */
export function chooseSpawn(state: ArenaState, except?: ArenaPlayer): Position {
  let best: Position[] = [];
  let bestDistance = -1;
  for (const spawn of SPAWNS) {
    if (!isFree(spawn)) continue;
    let nearest = Number.POSITIVE_INFINITY;
    for (const player of state.players.values()) {
      if (player === except || !player.entity.get('alive')) continue;
      const d = Math.hypot(player.entity.get('x') - spawn.x, player.entity.get('y') - spawn.y);
      if (d < nearest) nearest = d;
    }
    if (nearest > bestDistance + 1e-9) {
      best = [spawn];
      bestDistance = nearest;
    } else if (Math.abs(nearest - bestDistance) <= 1e-9) best.push(spawn);
  }
  const pick = best.length === 0 ? SPAWNS[0]! : best[state.random.int(best.length)]!;
  return { x: pick.x, y: pick.y };
}

function addPlayer(state: ArenaState, id: string, name: string, bot: BotBrain | null) {
  const at = chooseSpawn(state);
  const entity = state.replication.world.spawn(Avatar, {
    x: at.x,
    y: at.y,
    angle: 0,
    hp: PLAYER.maxHp,
    alive: true,
    score: 0,
    bot: bot !== null,
    name,
    lastInput: 0,
  });
  const hitbox: ArenaPlayer['hitbox'] = {
    id: undefined as unknown as ArenaPlayer, // set to the player below
    shape: { kind: 'circle', x: at.x, y: at.y, radius: PLAYER.radius },
  };
  const player: ArenaPlayer = {
    id,
    entity,
    bot,
    inputs: [],
    lastQueuedSeq: -1,
    inputClockMs: 0,
    inputCredit: MAX_INPUTS_PER_TICK,
    nextFireMs: 0,
    respawnMs: 0,
    view: { x: at.x, y: at.y, radius: VIEW_RADIUS },
    sight: { entityId: entity.id, x: at.x, y: at.y, alive: true },
    hitbox,
  };
  hitbox.id = player;
  state.players.set(id, player);
  state.byEntity.set(entity.id, player);
  return player;
}

function removePlayer(state: ArenaState, player: ArenaPlayer): void {
  state.players.delete(player.id);
  state.byEntity.delete(player.entity.id);
  if (player.entity.alive) state.replication.world.despawn(player.entity);
  state.interest.forget(player.id);
}

function publish(room: ArenaRoom): void {
  const state = room.state;
  let bots = 0;
  for (const player of state.players.values()) if (player.bot !== null) bots++;
  const tickOrigin = state.clockAtTickZero + room.stats.droppedMs;
  // Members got the metadata when they joined: a moved tick timeline is news to them.
  if (tickOrigin !== state.metadata.tickOrigin) room.broadcast('timeline', { tickOrigin });
  state.metadata = {
    tickOrigin,
    tickRateHz: TICK_RATE_HZ,
    humans: state.players.size - bots,
    bots,
  };
  room.setMetadata({ ...state.metadata });
}

/** Adds or removes bots so the room holds `wantedBots(...)` of them (newest bots leave first). */
function balanceBots(room: ArenaRoom): void {
  const state = room.state;
  const bots: ArenaPlayer[] = [];
  for (const player of state.players.values()) if (player.bot !== null) bots.push(player);
  const humans = state.players.size - bots.length;
  const wanted =
    state.botsEnabled && humans > 0 ? wantedBots(humans, state.minPlayers, state.capacity) : 0;
  while (bots.length > wanted) removePlayer(state, bots.pop()!);
  for (let count = bots.length; count < wanted; count++) {
    const n = state.nextBotNumber++;
    addPlayer(state, `bot-${n}`, botName(n), createBotBrain(state.random.fork()));
  }
}

function queueInput(state: ArenaState, player: ArenaPlayer, input: Input): void {
  if (!(input.seq > player.lastQueuedSeq)) {
    state.stats.droppedInputs++;
    return;
  }
  player.lastQueuedSeq = input.seq;
  player.inputs.push(input);
  if (player.inputs.length > MAX_QUEUED_INPUTS) {
    player.inputs.shift();
    state.stats.droppedInputs++;
  }
}

interface Fire {
  player: ArenaPlayer;
  x: number;
  y: number;
  angle: number;
  viewTime: number;
}

/** Applies one input: movement and aim, and a shot when the weapon is ready. */
function applyInput(state: ArenaState, player: ArenaPlayer, input: Input, fires: Fire[]) {
  const entity = player.entity;
  state.stats.inputs++;
  player.inputClockMs += TICK_MS;
  entity.set('lastInput', input.seq);
  if (!entity.get('alive')) return; // the dead move nothing (the input still counts as applied)
  const next = quantizePosition(
    stepMovement({ x: entity.get('x'), y: entity.get('y') }, input.dx, input.dy, TICK_MS),
  );
  entity.set('x', next.x);
  entity.set('y', next.y);
  const angle = normalizeAngle(input.angle);
  entity.set('angle', angle);
  if (input.fire && player.inputClockMs + EPSILON_MS >= player.nextFireMs) {
    player.nextFireMs = player.inputClockMs + WEAPON.cooldownMs;
    fires.push({ player, x: next.x, y: next.y, angle, viewTime: input.viewTime });
  }
}

/** The shot's victim: the nearest living player (other than the shooter) the ray hits at `time`. */
function castShot(
  state: ArenaState,
  time: number,
  origin: Position,
  direction: Position,
  range: number,
  shooter: ArenaPlayer,
): { player: ArenaPlayer; distance: number } | null {
  const lag = state.lagCompensation;
  // Still in the room (not a player who left) and alive (not killed earlier in this tick).
  const canBeHit = (player: ArenaPlayer) =>
    state.players.get(player.id) === player && player.entity.get('alive');
  const options = { ignore: shooter, maxDistance: range };
  const fast = lag.raycast(time, { origin, direction }, options);
  if (fast === null) return null;
  if (canBeHit(fast.id)) return { player: fast.id, distance: fast.distance };
  // The nearest box belongs to someone killed this tick (or gone): test the others one by one.
  let best: { player: ArenaPlayer; distance: number } | null = null;
  for (const box of lag.rewind(time)) {
    const player = box.id;
    if (player === shooter || !canBeHit(player)) continue;
    const found = raycast2({ origin, direction }, box.shape, best?.distance ?? range);
    if (found !== null && (best === null || found.distance < best.distance))
      best = { player, distance: found.distance };
  }
  return best;
}

function resolveFire(room: ArenaRoom, fire: Fire, nowMs: number): void {
  const state = room.state;
  const shooter = fire.player;
  // Killed earlier in this tick, or left.
  if (!shooter.entity.alive || !shooter.entity.get('alive')) return;
  state.stats.shots++;
  // Rewind to what the shooter saw, at most MAX_REWIND_MS back and never into the future.
  const shot = state.lagCompensation.shotTime({
    serverTime: nowMs,
    reportedRenderTime: fire.viewTime,
    rttMs: 0,
    interpolationDelayMs: 0,
    toleranceMs: Number.MAX_VALUE,
  });
  const origin = { x: fire.x, y: fire.y };
  const direction = { x: Math.cos(fire.angle), y: Math.sin(fire.angle) };
  const range = Math.min(wallDistance(origin, fire.angle, WEAPON.range), WEAPON.range);
  const hit = castShot(state, shot.time, origin, direction, range, shooter);
  const distance = hit?.distance ?? range;
  room.broadcast(
    'shot',
    {
      shooter: shooter.entity.id,
      target: hit?.player.entity.id ?? 0,
      fromX: origin.x,
      fromY: origin.y,
      toX: origin.x + direction.x * distance,
      toY: origin.y + direction.y * distance,
    },
    // Reliable: a tracer lost under jitter would hide a hit the player saw land.
  );
  if (hit === null) return;
  state.stats.hits++;
  const victim = hit.player.entity;
  const hp = Math.max(0, victim.get('hp') - WEAPON.damage);
  victim.set('hp', hp);
  if (hp > 0) return;
  victim.set('alive', false);
  hit.player.respawnMs = nowMs + RESPAWN_MS;
  // The inputs still queued are never applied: dropped, and counted as such.
  state.stats.droppedInputs += hit.player.inputs.length;
  hit.player.inputs.length = 0;
  shooter.entity.set('score', Math.min(0xffff, shooter.entity.get('score') + 1));
  state.stats.kills++;
  room.broadcast('kill', { killer: shooter.entity.id, victim: victim.id });
}

function respawn(room: ArenaRoom, player: ArenaPlayer): void {
  const at = chooseSpawn(room.state, player);
  const entity = player.entity;
  entity.set('x', at.x);
  entity.set('y', at.y);
  entity.set('hp', PLAYER.maxHp);
  entity.set('alive', true);
  player.nextFireMs = player.inputClockMs;
  if (player.bot === null && room.clients.has(player.id))
    room.send(player.id, 'you', { entityId: entity.id });
}

// Reused per tick: no allocation on the tick's hot path beyond what a shot needs.
const fires: Fire[] = [];
const hitboxes: Hitbox<ArenaPlayer, 2>[] = [];
const targets: BotTarget[] = [];
const botSelf = { entityId: 0, x: 0, y: 0, angle: 0, alive: false };

/** One fixed step of the arena at tick `tick` (time `tick × TICK_MS` on the tick timeline). */
export function stepArena(room: ArenaRoom, tick: number): void {
  const state = room.state;
  const nowMs = tickTime(tick);
  if (state.metadata.tickOrigin !== state.clockAtTickZero + room.stats.droppedMs) publish(room);

  for (const player of state.players.values()) {
    if (!player.entity.get('alive') && nowMs + EPSILON_MS >= player.respawnMs)
      respawn(room, player);
  }

  // Bots decide on what the last tick showed (its snapshot is what a human would be seeing).
  targets.length = 0;
  for (const player of state.players.values()) {
    const sight = player.sight;
    sight.x = player.entity.get('x');
    sight.y = player.entity.get('y');
    sight.alive = player.entity.get('alive');
    targets.push(sight);
  }
  for (const player of state.players.values()) {
    if (player.bot === null) continue;
    botSelf.entityId = player.entity.id;
    botSelf.x = player.sight.x;
    botSelf.y = player.sight.y;
    botSelf.angle = player.entity.get('angle');
    botSelf.alive = player.sight.alive;
    queueInput(state, player, player.bot.think(botSelf, targets, tickTime(tick - 1)));
  }

  fires.length = 0;
  for (const player of state.players.values()) {
    // Inputs are paced by time, not by how fast they arrive: each tick earns one input of
    // credit (kept up to MAX_QUEUED_INPUTS, so a burst after a stall is still applied), so a
    // client that sends four inputs a tick does not move four times as fast.
    player.inputCredit = Math.min(MAX_QUEUED_INPUTS, player.inputCredit + 1);
    const count = Math.min(inputsToConsume(player.inputs.length), player.inputCredit);
    player.inputCredit -= count;
    for (let i = 0; i < count; i++) applyInput(state, player, player.inputs.shift()!, fires);
  }

  // Record where everyone alive is now, then test this tick's shots against the history.
  hitboxes.length = 0;
  for (const player of state.players.values()) {
    if (!player.entity.get('alive')) continue;
    player.hitbox.shape.x = player.entity.get('x');
    player.hitbox.shape.y = player.entity.get('y');
    hitboxes.push(player.hitbox);
  }
  state.lagCompensation.record(tick, nowMs, hitboxes);
  for (const fire of fires) resolveFire(room, fire, nowMs);
  fires.length = 0;
}

function createArenaState(
  room: Room<unknown>,
  options: Required<Omit<ArenaOptions, 'random'>> & { random: SeededRandom },
): ArenaState {
  const players = new Map<string, ArenaPlayer>();
  const byEntity = new Map<number, ArenaPlayer>();
  const interest = createGridInterest({
    cellSize: VIEW_RADIUS,
    position(entity, out) {
      const player = byEntity.get(entity.id);
      if (player === undefined) return false; // the reserved entity 0
      out.x = player.entity.get('x');
      out.y = player.entity.get('y');
      return true;
    },
    view(clientId) {
      const player = players.get(String(clientId));
      if (player === undefined) return undefined;
      player.view.x = player.entity.get('x');
      player.view.y = player.entity.get('y');
      return player.view;
    },
    global: false,
    hysteresis: 100,
  });
  const lastInputBit = Avatar.fieldIndex('lastInput')!;
  const allButLastInput = ~(1 << lastInputBit) >>> 0;
  const replication = replicate(room, {
    types: [Avatar],
    interest,
    // lastInput is for the owner's reconciliation only.
    fieldFilter: (clientId, entity) =>
      byEntity.get(entity.id)?.id === clientId ? undefined : allButLastInput,
  });
  // Entity id 0 is reserved (never seen by anyone), so that 0 can mean "nobody" in messages.
  replication.world.spawn(Avatar, {
    x: 0,
    y: 0,
    angle: 0,
    hp: 0,
    alive: false,
    score: 0,
    bot: false,
    name: '',
    lastInput: 0,
  });
  const clockAtTickZero = options.time.now();
  return {
    replication,
    interest,
    players,
    byEntity,
    lagCompensation: createLagCompensation<ArenaPlayer>({
      dimensions: 2,
      tickMs: TICK_MS,
      windowMs: MAX_REWIND_MS,
      historyMs: MAX_REWIND_MS + 250,
      maxEntities: options.capacity + 8,
    }),
    random: options.random,
    minPlayers: options.minPlayers,
    botsEnabled: options.botsEnabled,
    capacity: options.capacity,
    clockAtTickZero,
    metadata: { tickOrigin: clockAtTickZero, tickRateHz: TICK_RATE_HZ, humans: 0, bots: 0 },
    stats: { inputs: 0, droppedInputs: 0, shots: 0, hits: 0, kills: 0 },
    nextPlayerNumber: 1,
    nextBotNumber: 1,
  };
}

/** The arena room type: register it as `arena` (`createServer({ rooms: { arena: defineArena() } })`). */
export function defineArena(options: ArenaOptions = {}) {
  const time = options.time ?? systemTime;
  const random = options.random ?? createRandom(Math.floor(systemRandom.next() * 2 ** 32));
  const minPlayers = options.minPlayers ?? MIN_PLAYERS;
  const botsEnabled = options.botsEnabled ?? true;
  const capacity = options.capacity ?? ROOM_CAPACITY;
  return defineRoom({
    name: 'arena',
    capacity,
    tickRateHz: TICK_RATE_HZ,
    messages,
    options: arenaJoinOptions,
    state: (room) =>
      createArenaState(room, {
        time,
        random: random.fork(),
        minPlayers,
        botsEnabled,
        capacity,
      }),
    onCreate(room) {
      publish(room);
    },
    onJoin(room, member, joinOptions) {
      const state = room.state;
      const name =
        (joinOptions.name === undefined ? null : cleanName(joinOptions.name)) ??
        `player-${state.nextPlayerNumber}`;
      state.nextPlayerNumber++;
      const player = addPlayer(state, member.sessionId, name, null);
      room.send(member, 'you', { entityId: player.entity.id });
      balanceBots(room);
      publish(room);
    },
    onLeave(room, member) {
      const state = room.state;
      const player = state.players.get(member.sessionId);
      if (player !== undefined) removePlayer(state, player);
      balanceBots(room);
      publish(room);
    },
    onMessage: {
      input(room, member, input) {
        const player = room.state.players.get(member.sessionId);
        if (player === undefined) room.state.stats.droppedInputs++;
        else queueInput(room.state, player, input);
      },
      name(room, member, { name }) {
        const player = room.state.players.get(member.sessionId);
        const clean = cleanName(name);
        if (player !== undefined && clean !== null) player.entity.set('name', clean);
      },
    },
    onTick(room, _dtMs, tick) {
      stepArena(room, tick);
    },
  });
}

/** The room type `defineArena` returns. */
export type ArenaDefinition = ReturnType<typeof defineArena>;
