// One stay in an arena room: which avatar is yours, your prediction, everyone else's
// interpolation, and the effects of the room's messages. Created per joined room; a new room
// (after a server restart, say) gets a new one.
import {
  type Client,
  type EntityInterpolation,
  type InterpolationFrame,
  interpolateEntities,
} from '@tickwire/client';
import type { EntityType, EntityValues } from '@tickwire/replication';
import {
  type ArenaMetadata,
  Avatar,
  messages,
  type Position,
  TICK_RATE_HZ,
  WEAPON,
  wallDistance,
} from '../shared/game.js';
import { createEffects, type Effects } from './effects.js';
import type { Command } from './input.js';
import { createLocalPlayer, type LocalPlayer } from './local-player.js';

type AvatarShape = typeof Avatar extends EntityType<infer S> ? S : never;
/** Every replicated field of an avatar. */
export type AvatarValues = EntityValues<AvatarShape>;

/** The room options of the arena: the shared message registries and entity types. */
const roomOptions = { messages, replication: { types: [Avatar] } };

/** Joins (or creates) an arena room as `name`. */
export function joinArena(client: Client, name: string) {
  return client.joinOrCreate('arena', { name }, roomOptions);
}

export type ArenaRoom = Awaited<ReturnType<typeof joinArena>>;

/** Your avatar as drawn this frame. */
export interface MeView {
  id: number;
  /** Predicted and smoothed position. */
  x: number;
  y: number;
  /** Your aim (local, not waiting for the server). */
  angle: number;
  hp: number;
  alive: boolean;
  score: number;
  name: string;
}

/** What a render frame shows. */
export interface ArenaView {
  me: MeView | null;
  /** Everyone else, interpolated (ids → values; reused by the next frame). */
  others: InterpolationFrame<AvatarValues, number>;
}

export interface Arena {
  readonly room: ArenaRoom;
  /** Your avatar's entity id (0 until the server said). */
  readonly myId: number;
  /** The prediction of your avatar (null until its first snapshot). */
  readonly player: LocalPlayer | null;
  readonly interpolation: EntityInterpolation<AvatarShape>;
  readonly effects: Effects;
  /** The last frame sampled for drawing (null before the first). */
  readonly lastFrame: InterpolationFrame<AvatarValues, number> | null;
  /** performance.now() when your avatar was seen dead, NaN while alive. */
  readonly diedAt: number;
  /**
   * Your shots: `sent` fired locally (muzzle flash), then as the server judged them (its `shot`
   * messages, reliable): `fired`, and those that `hits` someone.
   */
  readonly shots: { readonly sent: number; readonly fired: number; readonly hits: number };
  /** Your avatar's authoritative values (the replica's), if known. */
  mine(): AvatarValues | undefined;
  /** Name of an avatar, from the replica or remembered. */
  nameOf(id: number): string;
  /** One client tick: predict and send the command. Returns true when a shot went off locally. */
  tick(command: Command): boolean;
  /** The frame to draw, `frameMs` after the last one, `alpha` of a tick after the last tick. */
  sample(frameMs: number, alpha: number): ArenaView;
  /** Stops listening to the room. */
  dispose(): void;
}

const isMetadata = (value: unknown): value is ArenaMetadata =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as ArenaMetadata).tickOrigin === 'number' &&
  Number.isFinite((value as ArenaMetadata).tickOrigin);

/** Wires an arena room just joined. Call right after `await joinArena()`. */
export function createArena(client: Client, room: ArenaRoom): Arena {
  const replica = room.replica!;
  const replication = room.replication!;
  const metadata = isMetadata(room.metadata) ? room.metadata : null;
  const effects = createEffects();
  const names = new Map<number, string>();
  let myId = 0;
  let player: LocalPlayer | null = null;
  let lastFrame: InterpolationFrame<AvatarValues, number> | null = null;
  let diedAt = Number.NaN;
  const shots = { sent: 0, fired: 0, hits: 0 };

  // The room's tick timeline from clock sync: tick 0 is at `tickOrigin` on the server clock,
  // so "now" on it is serverNow() − tickOrigin. Better than fitting it from snapshot arrivals
  // (which cannot tell a late snapshot from a slow clock); NaN until the first sync sample,
  // when the interpolation falls back to the fit.
  // The origin moves when the server drops ticks (a stall): it then says so in `timeline`.
  let tickOrigin = metadata?.tickOrigin ?? Number.NaN;
  let syncedClock: typeof client.time = null;
  const timeline = (): number => {
    const time = client.time;
    if (time === null || !Number.isFinite(tickOrigin)) return Number.NaN;
    if (time !== syncedClock) {
      if (!time.stats().synced) return Number.NaN;
      syncedClock = time;
    }
    return time.serverNow() - tickOrigin;
  };

  // Others: snapshot interpolation behind an adaptive delay. Positions blend, the aim takes the
  // short way round, and discrete fields (hp, alive, name…) switch when their snapshot is reached.
  const interpolation = interpolateEntities(room, {
    type: Avatar,
    tickRateHz: metadata?.tickRateHz ?? client.session?.tickRateHz ?? TICK_RATE_HZ,
    fields: {
      x: 'linear',
      y: 'linear',
      angle: 'angle',
      hp: 'step',
      alive: 'step',
      score: 'step',
      bot: 'step',
      name: 'step',
      lastInput: 'step',
    },
    filter: (entity) => entity.id !== myId,
    timeline,
  });

  // `you` is held by the room until this first listener, so it cannot be missed.
  const offYou = room.onMessage('you', ({ entityId }) => {
    myId = entityId;
  });

  const offTimeline = room.onMessage('timeline', (moved) => {
    if (Number.isFinite(moved.tickOrigin)) tickOrigin = moved.tickOrigin;
  });

  const offShot = room.onMessage('shot', (shot) => {
    const now = performance.now();
    // Your own shots were drawn when you fired (see `tick`); the server's copy arrives a round
    // trip later and would draw the same line twice. It still says whether you hit.
    if (shot.shooter === myId) {
      shots.fired++;
      if (shot.target !== 0) shots.hits++;
    } else effects.tracer({ ...shot, own: false }, now);
    if (shot.target !== 0) effects.hit(shot.target, shot.target === myId, now);
  });

  const offKill = room.onMessage('kill', ({ killer, victim }) => {
    effects.kill(
      {
        killer: nameOf(killer),
        victim: nameOf(victim),
        mine: killer === myId || victim === myId,
      },
      performance.now(),
    );
  });

  // Reconciliation: each applied snapshot carries your avatar's authoritative position and the
  // last input the server applied to it (published to you alone).
  const offSnapshot = replication.on('snapshot', () => {
    for (const entity of replica.entities()) {
      if (entity.is(Avatar)) names.set(entity.id, entity.get('name'));
    }
    const mine = myId === 0 ? undefined : replica.get(myId);
    if (mine === undefined || !mine.is(Avatar)) return;
    const position = { x: mine.get('x'), y: mine.get('y') };
    if (player === null) player = createLocalPlayer(position);
    else player.reconcile(position, mine.get('lastInput') ?? 0);
    const alive = mine.get('alive');
    if (!alive && Number.isNaN(diedAt)) diedAt = performance.now();
    if (alive) diedAt = Number.NaN;
  });

  const nameOf = (id: number): string => {
    const entity = replica.get(id);
    const name = entity?.is(Avatar) ? entity.get('name') : names.get(id);
    return name === undefined || name === '' ? `#${id}` : name;
  };

  const mine = (): AvatarValues | undefined => {
    const entity = myId === 0 ? undefined : replica.get(myId);
    return entity?.is(Avatar) ? entity.values() : undefined;
  };

  return {
    room,
    get myId() {
      return myId;
    },
    get player() {
      return player;
    },
    interpolation,
    effects,
    get lastFrame() {
      return lastFrame;
    },
    get diedAt() {
      return diedAt;
    },
    shots,
    mine,
    nameOf,
    tick(command) {
      if (player === null || room.state !== 'joined') return false;
      const alive = mine()?.alive ?? false;
      // Shots are judged by the server against what you saw: the render time of the frame
      // on screen when you fired (lag compensation rewinds the others to it).
      const viewTime =
        lastFrame !== null && Number.isFinite(lastFrame.renderTime)
          ? lastFrame.renderTime
          : interpolation.tickTime() - interpolation.interpolator.delayMs;
      const { input, shot } = player.tick(command, viewTime, alive);
      // Reliable, one per tick: the server applies every input exactly once and in order, so
      // its simulation takes the very steps the prediction took (loss costs delay, not steps).
      room.send('input', input);
      if (shot) {
        shots.sent++;
        const now = performance.now();
        const from: Position = player.position;
        const reach = wallDistance(from, input.angle, WEAPON.range);
        effects.muzzle(now);
        effects.tracer(
          {
            fromX: from.x,
            fromY: from.y,
            toX: from.x + Math.cos(input.angle) * reach,
            toY: from.y + Math.sin(input.angle) * reach,
            own: true,
          },
          now,
        );
      }
      return shot;
    },
    sample(frameMs, alpha) {
      const frame = interpolation.sample();
      lastFrame = frame;
      effects.prune(performance.now());
      const values = mine();
      if (player === null || values === undefined) return { me: null, others: frame };
      const drawn = player.render(frameMs, alpha);
      return {
        me: {
          id: myId,
          x: drawn.x,
          y: drawn.y,
          angle: player.angle,
          hp: values.hp,
          alive: values.alive,
          score: values.score,
          name: values.name,
        },
        others: frame,
      };
    },
    dispose() {
      offYou();
      offTimeline();
      offShot();
      offKill();
      offSnapshot();
      interpolation.close();
    },
  };
}
