// Test support (not part of the app): an arena in a room manager on manual time, with clients
// on in-memory connections that hold a real replica and record the room's messages. Ticks run
// only when a test says so, so every run is the same.
import {
  type Connection,
  createManualTime,
  createRandom,
  type ManualTime,
  Opcode,
  silentLogger,
} from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import {
  connectReplica,
  createReplica,
  type Replica,
  type ReplicaEntity,
} from '@tickwire/replication';
import { createRoomManager, type RoomClient, type RoomManager } from '@tickwire/rooms';
import type { MessageInput, MessageOutput, MessageRegistry } from '@tickwire/serialization';
import { Avatar, messages, TICK_MS } from '../shared/game.js';
import { type ArenaOptions, type ArenaPlayer, type ArenaRoom, defineArena } from './arena.js';

type Definitions<R> = R extends MessageRegistry<infer D> ? D : never;
type ServerDefinitions = Definitions<typeof messages.server>;
type ClientDefinitions = Definitions<typeof messages.client>;

/** A message the room sent a client. */
export type ServerMessage = {
  [K in keyof ServerDefinitions & string]: { type: K; value: MessageOutput<ServerDefinitions[K]> };
}[keyof ServerDefinitions & string];

/** A client of the harness: a session in the arena with its replica and inbox. */
export interface HarnessClient {
  readonly sessionId: string;
  readonly client: RoomClient;
  readonly replica: Replica;
  /** Room messages received, in order. */
  readonly inbox: ServerMessage[];
  /** Messages of one type received so far. */
  received<K extends ServerMessage['type']>(
    type: K,
  ): Extract<ServerMessage, { type: K }>['value'][];
  /** Sends a client message to the room (as the server would hand it over). */
  send<K extends keyof ClientDefinitions & string>(
    type: K,
    value: MessageInput<ClientDefinitions[K]>,
  ): void;
  /** Its avatar in its own replica. */
  avatar(): ReplicaEntity<typeof Avatar.shape> | undefined;
  /** Another avatar in its replica. */
  see(entityId: number): ReplicaEntity<typeof Avatar.shape> | undefined;
  leave(): Promise<void>;
}

/** An arena on manual time. */
export interface ArenaHarness {
  readonly time: ManualTime;
  readonly manager: RoomManager;
  /** The arena room (after the first join). */
  room(): ArenaRoom;
  /** Joins a client with the given join options. */
  join(options?: unknown): Promise<HarnessClient>;
  /** The player behind a client or a bot id. */
  player(id: string | HarnessClient): ArenaPlayer;
  /** Runs `count` ticks, letting messages and acknowledgements through after each. */
  tick(count?: number): Promise<void>;
  /**
   * The process blocks for `ms`: the clock jumps and no timer runs meanwhile, so the next
   * `tick()` finds the tick loop behind (it catches up a few steps and drops the rest).
   */
  stall(ms: number): void;
  /** Lets pending in-memory deliveries happen. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link createArenaHarness}: the arena's options and a seed. */
export interface ArenaHarnessOptions extends Omit<ArenaOptions, 'time' | 'random'> {
  /** @default 1 */
  seed?: number;
  /** Called around each tick, for timing. */
  onTick?: (run: () => void) => void;
}

const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Creates an arena harness. */
export function createArenaHarness(options: ArenaHarnessOptions = {}): ArenaHarness {
  const { seed = 1, onTick, ...arenaOptions } = options;
  const manual = createManualTime(1_000);
  // The clock the room and the arena read: manual time plus the time lost to stalls.
  let stalledMs = 0;
  const time: ManualTime = {
    now: () => manual.now() + stalledMs,
    setTimeout: (callback, delayMs) => manual.setTimeout(callback, delayMs),
    setInterval: (callback, periodMs) => manual.setInterval(callback, periodMs),
    advance: (ms) => manual.advance(ms),
    advanceTo: (timeMs) => manual.advanceTo(timeMs - stalledMs),
    runNext: () => manual.runNext(),
    runAll: (maxTimers) => manual.runAll(maxTimers),
    get pending() {
      return manual.pending;
    },
  };
  const manager = createRoomManager({ time, logger: silentLogger, random: createRandom(seed) });
  manager.define('arena', defineArena({ ...arenaOptions, time, random: createRandom(seed) }));
  let arena: ArenaRoom | undefined;
  let sessions = 0;
  const connections: Connection[] = [];

  const room = (): ArenaRoom => {
    if (arena === undefined || arena.disposed) throw new Error('no arena room yet: join first');
    return arena;
  };

  const flush = async () => {
    for (let i = 0; i < 3; i++) await macrotask();
  };

  const harness: ArenaHarness = {
    time,
    manager,
    room,
    async join(joinOptions = {}) {
      const [clientEnd, serverEnd] = createMemoryConnectionPair();
      connections.push(clientEnd);
      const sessionId = `session-${++sessions}`;
      const client: RoomClient = { sessionId, connection: serverEnd };
      const replica = createReplica({ types: [Avatar] });
      connectReplica(replica, clientEnd);
      const inbox: ServerMessage[] = [];
      clientEnd.on('message', (data) => {
        if (data[0] !== Opcode.RoomMessage) return;
        inbox.push(messages.server.decode(data.subarray(2)) as ServerMessage);
      });
      arena = (await manager.joinOrCreate('arena', client, joinOptions)) as unknown as ArenaRoom;
      await flush();
      const joined: HarnessClient = {
        sessionId,
        client,
        replica,
        inbox,
        received: (type) =>
          inbox.filter((message) => message.type === type).map((message) => message.value) as never,
        send(type, value) {
          manager.receive(client, messages.client.encode(type, value as never), 'reliable');
        },
        avatar() {
          const you = joined.received('you').at(-1);
          return you === undefined ? undefined : joined.see(you.entityId);
        },
        see(entityId) {
          const entity = replica.get(entityId);
          return entity?.is(Avatar) ? entity : undefined;
        },
        async leave() {
          await manager.leave(client, true);
          await flush();
        },
      };
      return joined;
    },
    player(id) {
      const key = typeof id === 'string' ? id : id.sessionId;
      const player = room().state.players.get(key);
      if (player === undefined) throw new Error(`no player ${key}`);
      return player;
    },
    async tick(count = 1) {
      for (let i = 0; i < count; i++) {
        const current = room();
        const due =
          current.state.clockAtTickZero +
          current.stats.droppedMs +
          (current.tick + 1) * TICK_MS +
          1e-3;
        const before = current.tick;
        const run = () => {
          if (due > time.now()) time.advanceTo(due);
          // Behind after a stall: the loop's timer is due already, run timers until it ran.
          else for (let i = 0; i < 100 && current.tick === before && manual.runNext(); i++);
        };
        if (onTick === undefined) run();
        else onTick(run);
        await flush();
      }
    },
    stall(ms) {
      stalledMs += ms;
    },
    flush,
    async close() {
      await manager.close();
      for (const connection of connections) connection.close();
    },
  };
  return harness;
}
