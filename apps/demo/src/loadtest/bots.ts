// Load-test bots: Node players that take the same path as the browser client — connect through
// @tickwire/client, quick-play into an arena room, send one reliable `input` per tick and keep
// the room's replica fed by snapshots — with movement, aim and fire drawn from a seeded
// generator, so two runs with the same seed play alike.
import {
  type Client,
  type ClientOptions,
  type ClientRoom,
  type ClientRoomOptions,
  createClient,
} from '@tickwire/client';
import {
  type ClientTransport,
  isTickwireError,
  type SeededRandom,
  systemTime,
  type TimeSource,
} from '@tickwire/core';
import type { MessageRegistry } from '@tickwire/serialization';
import { type ArenaMetadata, Avatar, messages, WEAPON } from '../shared/game.js';

type Definitions<R> = R extends MessageRegistry<infer D> ? D : never;
type ClientDefinitions = Definitions<typeof messages.client>;
type ServerDefinitions = Definitions<typeof messages.server>;

/** An arena room as a bot holds it. */
export type BotRoom = ClientRoom<ClientDefinitions, ServerDefinitions>;

/** The arena's room options, shared with the browser client: its messages and entity types. */
export const ARENA_ROOM_OPTIONS: ClientRoomOptions<ClientDefinitions, ServerDefinitions> = {
  messages,
  replication: { types: [Avatar] },
};

/** Joins a room for a bot: quick-play, or the room of its group (see `--room-size`). */
export type JoinRoom = (client: Client, index: number, name: string) => Promise<BotRoom>;

/**
 * How a bot plays: `wander` roams and shoots at whatever comes close, `hunter` runs at the
 * nearest avatar, `strafer` circles while shooting, `turret` stands and turns.
 */
export type BotPattern = 'wander' | 'hunter' | 'strafer' | 'turret';

/** The patterns, in the order the seeded generator picks from. */
export const BOT_PATTERNS: readonly BotPattern[] = ['wander', 'hunter', 'strafer', 'turret'];

/** Where a bot is in its life. */
export type BotState =
  | 'idle'
  | 'connecting'
  | 'joining'
  | 'playing'
  | 'reconnecting'
  | 'failed'
  | 'closed';

/** Running totals of one bot (transport figures summed across its connections). */
export interface BotCounters {
  /** Transport messages received / sent (snapshots, room messages, acks, time sync). */
  messagesIn: number;
  messagesOut: number;
  /** Payload bytes received / sent. */
  bytesIn: number;
  bytesOut: number;
  /** `input` messages sent. */
  inputs: number;
  /** Snapshots applied to the room's replica. */
  snapshots: number;
  /** The bot's own shots the server judged (`shot` messages with it as the shooter). */
  shots: number;
  /** Those that hit someone. */
  hits: number;
  /** `kill` messages naming the bot as the killer. */
  kills: number;
  /** `shot` / `kill` messages received, whoever fired. */
  shotMessages: number;
  killMessages: number;
  /** Connections that dropped (the client reconnects by itself). */
  disconnects: number;
  /** Time spent in a room, ms. */
  inRoomMs: number;
}

/** What a bot reports as it plays. */
export interface BotListener {
  /** A failure worth counting: `kind` is `<phase>:<code>`, e.g. `connect:LIMIT_EXCEEDED`. */
  error(kind: string, message: string): void;
  /** A round trip measured by clock sync (raw, one per exchange), ms. */
  rtt(rttMs: number): void;
}

/** Options of {@link createBot}. */
export interface BotOptions {
  index: number;
  /** Endpoint URL (`ws://`, `tcp://`, `udp://`). */
  url: string;
  transport: ClientTransport;
  random: SeededRandom;
  join: JoinRoom;
  listener: BotListener;
  /** The client's clock and scheduler, and the clock of `inRoomMs`. @default systemTime */
  time?: TimeSource;
  /** Extra client options (tests). */
  client?: Partial<Omit<ClientOptions, 'endpoints'>>;
}

/** One load-test bot. */
export interface LoadBot {
  readonly index: number;
  readonly name: string;
  readonly pattern: BotPattern;
  readonly state: BotState;
  /** True once it has been in a room. */
  readonly joined: boolean;
  readonly roomId: string | null;
  readonly counters: Readonly<BotCounters>;
  /** Connects and joins; resolves when playing, or once it failed (reported to the listener). */
  start(): Promise<void>;
  /** One tick at `nowMs` (local clock): decides and sends an input while playing. */
  step(nowMs: number): void;
  /** Adds the transport figures and the time in the room since the last call to the counters. */
  account(): void;
  /**
   * Leaves the room as a player quitting does (resolves once the server confirmed); stops
   * sending inputs at once. A failure is reported as `leave:<code>`.
   */
  leave(): Promise<void>;
  /** Ends the session for good; what happens after is not counted. */
  close(): void;
}

/** What the bot's shots claim to have seen: this far behind the server's present (ms). */
const VIEW_DELAY_MS = 100;
/** A bot that moved less than this over a heading's life is stuck on a wall. */
const STUCK_DISTANCE = 8;
const TWO_PI = Math.PI * 2;

const codeOf = (error: unknown): string =>
  isTickwireError(error) ? error.code : error instanceof Error ? error.name : 'UNKNOWN';
const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

const isMetadata = (value: unknown): value is ArenaMetadata =>
  typeof value === 'object' &&
  value !== null &&
  Number.isFinite((value as ArenaMetadata).tickOrigin);

/** The counters of a new bot. */
export function emptyCounters(): BotCounters {
  return {
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    inputs: 0,
    snapshots: 0,
    shots: 0,
    hits: 0,
    kills: 0,
    shotMessages: 0,
    killMessages: 0,
    disconnects: 0,
    inRoomMs: 0,
  };
}

/** Creates a bot; nothing happens until `start()`. */
export function createBot(options: BotOptions): LoadBot {
  const { index, random, listener } = options;
  const name = `lt-${index.toString().padStart(4, '0')}`;
  const pattern = BOT_PATTERNS[random.int(BOT_PATTERNS.length)]!;
  const client = createClient({
    endpoints: [{ url: options.url, transport: options.transport }],
    ...(options.time === undefined ? {} : { time: options.time }),
    // The backoff's jitter draws from its own stream: a reconnection leaves the play unchanged.
    random: random.fork(),
    ...options.client,
  });
  const clock = options.time ?? systemTime;
  const counters = emptyCounters();
  let state: BotState = 'idle';
  let playingSince = 0;
  let joined = false;
  let room: BotRoom | null = null;
  let myId = 0;
  let tickOrigin = Number.NaN;
  let closing = false;
  /** Set by `leave()`: the room's `leave` event is expected. */
  let leaving = false;
  let seq = 0;
  // Last transport figures seen, to add only what is new (a new connection starts from 0).
  const seen = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
  // The current plan: a heading kept until `headingUntil`, and where the bot was when it began.
  let heading = random.range(0, TWO_PI);
  let headingUntil = 0;
  let headingFrom = { x: Number.NaN, y: Number.NaN };
  let turn = random.chance(0.5) ? 1 : -1;
  let aim = random.range(0, TWO_PI);
  let timeSubscribed: Client['time'] = null;

  const setState = (next: BotState) => {
    if (next === state) return;
    const now = clock.now();
    if (state === 'playing') counters.inRoomMs += now - playingSince;
    if (next === 'playing') playingSince = now;
    state = next;
  };

  const report = (phase: string, error: unknown) => {
    if (!closing) listener.error(`${phase}:${codeOf(error)}`, messageOf(error));
  };

  const watchClock = () => {
    const time = client.time;
    if (time === null || time === timeSubscribed) return;
    timeSubscribed = time;
    time.on('sample', ({ rttMs }) => listener.rtt(rttMs));
  };

  client.on('open', () => {
    watchClock();
    if (state === 'reconnecting') setState(room?.state === 'joined' ? 'playing' : 'joining');
  });
  client.on('disconnected', () => {
    if (closing) return;
    counters.disconnects++;
    setState('reconnecting');
  });
  client.on('error', (error) => report('client', error));
  client.on('close', (info, error) => {
    // A failed connect is reported by `start()`; a failed bot has been reported already.
    if (closing || state === 'connecting' || state === 'failed') return;
    setState('closed');
    listener.error(
      `closed:${error?.code ?? info.code}`,
      error?.message ?? `closed with ${info.code} ${info.reason}`,
    );
  });

  const wire = (joinedRoom: BotRoom) => {
    room = joinedRoom;
    joined = true;
    if (isMetadata(joinedRoom.metadata)) tickOrigin = joinedRoom.metadata.tickOrigin;
    // `you` is held by the room until this first listener: it cannot be missed.
    joinedRoom.onMessage('you', ({ entityId }) => {
      myId = entityId;
    });
    // The tick timeline moved (the server dropped ticks): the metadata was only the join's.
    joinedRoom.onMessage('timeline', (moved) => {
      if (Number.isFinite(moved.tickOrigin)) tickOrigin = moved.tickOrigin;
    });
    joinedRoom.onMessage('shot', ({ shooter, target }) => {
      counters.shotMessages++;
      if (shooter !== myId) return;
      counters.shots++;
      if (target !== 0) counters.hits++;
    });
    joinedRoom.onMessage('kill', ({ killer }) => {
      counters.killMessages++;
      if (killer === myId) counters.kills++;
    });
    joinedRoom.on('error', (error) => report('room', error));
    joinedRoom.on('leave', (code, reason) => {
      if (closing || leaving) return;
      setState('failed');
      listener.error(`left:${code}`, `removed from room ${joinedRoom.id}: ${code} ${reason}`);
    });
    joinedRoom.replication?.on('snapshot', () => {
      counters.snapshots++;
    });
    joinedRoom.replication?.on('error', (error) => report('replication', error));
  };

  /** The nearest living avatar other than the bot's own, with its distance. */
  const nearest = (x: number, y: number) => {
    const replica = room?.replica;
    let best: { x: number; y: number; distance: number } | null = null;
    if (replica == null) return best;
    for (const entity of replica.entities()) {
      if (entity.id === myId || entity.id === 0 || !entity.is(Avatar)) continue;
      if (!entity.get('alive')) continue;
      const ex = entity.get('x');
      const ey = entity.get('y');
      const distance = Math.hypot(ex - x, ey - y);
      if (best === null || distance < best.distance) best = { x: ex, y: ey, distance };
    }
    return best;
  };

  /** The server's time on the room's tick timeline that the bot claims to see, or 0. */
  const viewTime = (): number => {
    const time = client.time;
    if (time === null || !Number.isFinite(tickOrigin) || !time.stats().synced) return 0;
    return Math.max(0, time.serverNow() - tickOrigin - VIEW_DELAY_MS);
  };

  const decide = (nowMs: number) => {
    const mine = myId === 0 ? undefined : room?.replica?.get(myId);
    if (mine === undefined || !mine.is(Avatar) || !mine.get('alive'))
      return { dx: 0, dy: 0, angle: aim, fire: false };
    const x = mine.get('x');
    const y = mine.get('y');
    if (nowMs >= headingUntil) {
      const moved = Math.hypot(x - headingFrom.x, y - headingFrom.y);
      // A fresh heading when the old one ran out; a reversal when it ran into a wall.
      heading =
        moved < STUCK_DISTANCE
          ? heading + Math.PI * random.range(0.5, 1.5)
          : random.range(0, TWO_PI);
      headingUntil = nowMs + 300 + random.exponential(1200);
      headingFrom = { x, y };
      if (random.chance(0.1)) turn = -turn;
    }
    const target = nearest(x, y);
    const inRange = target !== null && target.distance < WEAPON.range;
    const toTarget = target === null ? heading : Math.atan2(target.y - y, target.x - x);
    let move = heading;
    let speed = 1;
    switch (pattern) {
      case 'wander':
        break;
      case 'hunter':
        // Close in, then circle at a distance.
        if (target !== null)
          move = target.distance > 400 ? toTarget : toTarget + (turn * Math.PI) / 2;
        break;
      case 'strafer':
        heading += (turn * TWO_PI) / 90; // a full circle in 3 s
        move = heading;
        break;
      case 'turret':
        speed = 0;
        break;
    }
    if (inRange) aim = toTarget + random.normal(0, 0.05);
    else aim = pattern === 'turret' ? aim + 0.05 * turn : move;
    const fire = inRange ? random.chance(0.5) : random.chance(0.02);
    return { dx: Math.cos(move) * speed, dy: Math.sin(move) * speed, angle: aim, fire };
  };

  return {
    index,
    name,
    pattern,
    get state() {
      return state;
    },
    get joined() {
      return joined;
    },
    get roomId() {
      return room?.id ?? null;
    },
    counters,
    async start() {
      if (state !== 'idle') return;
      setState('connecting');
      try {
        await client.connect();
      } catch (error) {
        if (!closing) setState('failed');
        report('connect', error);
        return;
      }
      watchClock();
      if (closing) return;
      setState('joining');
      let joinedRoom: BotRoom;
      try {
        joinedRoom = await options.join(client, index, name);
      } catch (error) {
        if (!closing) setState('failed');
        report('join', error);
        client.close();
        return;
      }
      // Synchronously after the await: the room holds early messages for the first listener.
      wire(joinedRoom);
      // A reconnection during the join may have moved the state on.
      if (!closing && (state as BotState) === 'joining') setState('playing');
    },
    step(nowMs) {
      if (state !== 'playing' || leaving || room === null || room.state !== 'joined') return;
      const command = decide(nowMs);
      seq++;
      try {
        // Reliable, one per tick, as the browser client sends them.
        room.send('input', { seq, ...command, viewTime: command.fire ? viewTime() : 0 });
        counters.inputs++;
      } catch (error) {
        report('send', error);
      }
    },
    account() {
      const stats = client.stats().connection;
      for (const key of ['messagesIn', 'messagesOut', 'bytesIn', 'bytesOut'] as const) {
        const value = stats[key];
        counters[key] += value >= seen[key] ? value - seen[key] : value;
        seen[key] = value;
      }
      if (state === 'playing') {
        const now = clock.now();
        counters.inRoomMs += now - playingSince;
        playingSince = now;
      }
    },
    async leave() {
      const current = room;
      if (current === null || current.state !== 'joined' || closing) return;
      leaving = true;
      try {
        await current.leave();
      } catch (error) {
        report('leave', error);
      }
    },
    close() {
      if (closing) return;
      closing = true;
      if (state !== 'failed') setState('closed');
      client.close();
    },
  };
}
