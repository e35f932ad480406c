import {
  type Channel,
  type Connection,
  type Counter,
  Emitter,
  ErrorCode,
  type Gauge,
  type Histogram,
  isTickwireError,
  type Logger,
  Opcode,
  type Subscribable,
  subscribable,
  TickwireError,
  type Timer,
  type TimeSource,
  toTickwireError,
} from '@tickwire/core';
import {
  formatPath,
  isSchema,
  type MessageDefinitions,
  type MessageInput,
  type MessageOutput,
  type MessageRegistry,
  type PathSegment,
} from '@tickwire/serialization';

/** Who joins a room: a session and the connection that reaches it (the server's SessionLink). */
export interface RoomClient {
  readonly sessionId: string;
  readonly userId?: string;
  /** What the server's auth hook returned for the session. */
  readonly auth?: unknown;
  /** Where the room's messages go: `[Opcode.RoomMessage][0][registry bytes]`. */
  readonly connection: Connection;
}

/** A client inside a room. */
export interface RoomMember extends RoomClient {
  /** The client object the join was called with. */
  readonly client: RoomClient;
  /** `time.now()` of the manager when the join completed. */
  readonly joinedAt: number;
  /** What `onAuth` returned (`true` without an `onAuth`). */
  readonly authResult: unknown;
  /** Free slot for the game (team, seat, player entity…). */
  userData: unknown;
}

/** A validation issue as Standard Schema reports it. */
export interface StandardIssueLike {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The result of a Standard Schema `validate`. */
export type StandardResultLike<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssueLike> };

/**
 * Any Standard Schema validator (zod, valibot, arktype…) — `defineSchema` schemas are one too.
 * Only the part the rooms use is spelled out, so no extra dependency is needed.
 */
export interface StandardSchemaLike<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardResultLike<Output> | Promise<StandardResultLike<Output>>;
  };
}

/** Options of `room.send`. */
export interface SendOptions {
  /** `false` sends on the unreliable channel. @default true */
  reliable?: boolean;
}

/** Options of `room.broadcast`. */
export interface BroadcastOptions extends SendOptions {
  /** Members that do not get the message. */
  except?: RoomClient | string | ReadonlyArray<RoomClient | string>;
}

/** Events of a {@link Room}: how the server hooks replication in without rooms importing it. */
export interface RoomEvents {
  [event: string]: unknown[];
  /** A member joined (after `onJoin` and the manager's `joined`). */
  join: [member: RoomMember];
  /** A member left (after `onLeave`); `consented` is false for kicks, drops and disposal. */
  leave: [member: RoomMember, consented: boolean];
  /** One fixed step ran (after `onTick`). */
  tick: [tick: number, dtMs: number];
  /** The room is gone (after `onDispose`). */
  dispose: [];
}

/** Counters of one room. */
export interface RoomStats {
  /** Steps of the tick loop run. */
  ticks: number;
  /** Steps skipped because the process stalled longer than the catch-up cap. */
  droppedTicks: number;
  /** Time skipped with them, in ms. */
  droppedMs: number;
  /** Client messages decoded and dispatched. */
  messagesIn: number;
  /** Client messages with no `onMessage` handler. */
  unhandledMessages: number;
  /** Client messages refused (DECODE_FAILED, VALIDATION_FAILED, MESSAGE_TOO_LARGE). */
  rejectedMessages: number;
  /** Messages handed to member connections. */
  messagesOut: number;
  /** Sends that threw (a closed connection, a full buffer…); never thrown out of `broadcast`. */
  sendFailures: number;
  /** Hooks and listeners that threw while the room kept running. */
  hookErrors: number;
}

/** A live room. */
export interface Room<State = unknown, ServerMsgs extends MessageDefinitions = MessageDefinitions>
  extends Subscribable<RoomEvents> {
  /** Unique id (what `joinById` takes). */
  readonly id: string;
  /** The room type it was created from. */
  readonly name: string;
  /** The game state, made by the definition's `state` factory. */
  state: State;
  /** Members by session id. */
  readonly clients: ReadonlyMap<string, RoomMember>;
  /** Most members at once. */
  readonly capacity: number;
  /** Public data shown in listings and sent with RoomJoined (JSON-serialisable). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Replaces the metadata. */
  setMetadata(metadata: Record<string, unknown>): void;
  /** Steps run by the tick loop (the tick in progress during `onTick`). */
  readonly tick: number;
  /** Fixed steps per second; 0 when the room has no tick loop. */
  readonly tickRateHz: number;
  /** True while locked: matchmaking skips it and `joinById` is refused. */
  readonly locked: boolean;
  /** True once disposal has started. */
  readonly disposed: boolean;
  /** Counters of this room. */
  readonly stats: Readonly<RoomStats>;
  /** The manager's logger with the room name and id bound, for hooks. */
  readonly logger: Logger;
  /** Refuses new members until `unlock`. */
  lock(): void;
  /** Accepts new members again. */
  unlock(): void;
  /**
   * Sends one `messages.server` message to a member; false if the connection refused it
   * (closed: counted in `stats.sendFailures`; unreliable and congested). NOT_FOUND for a non-member.
   */
  send<K extends keyof ServerMsgs & string>(
    client: RoomClient | string,
    type: K,
    value: MessageInput<ServerMsgs[K]>,
    options?: SendOptions,
  ): boolean;
  /** Encodes once and sends to every member; returns how many connections took it. Never throws for a gone member. */
  broadcast<K extends keyof ServerMsgs & string>(
    type: K,
    value: MessageInput<ServerMsgs[K]>,
    options?: BroadcastOptions,
  ): number;
  /** Removes a member (not consented, RoomLeft code 4004); no-op for a non-member. */
  kick(client: RoomClient | string, reason?: string): Promise<void>;
  /** Removes every member (code 1001), runs `onDispose` and forgets the room; idempotent. */
  dispose(): Promise<void>;
}

type Awaitable<T> = T | Promise<T>;

// Method-style signature: handlers typed for one message still fit the erased definition.
type MessageHandler<R, V> = {
  bivariance(room: R, member: RoomMember, value: V, channel: Channel): void;
}['bivariance'];

/** `onMessage` handlers, one per client message type. */
export type MessageHandlers<
  State,
  ClientMsgs extends MessageDefinitions,
  ServerMsgs extends MessageDefinitions,
> = {
  [K in keyof ClientMsgs & string]?: MessageHandler<
    Room<State, ServerMsgs>,
    MessageOutput<ClientMsgs[K]>
  >;
};

/** What a room type is made of: limits, message registries, option validation and hooks. */
export interface RoomDefinition<
  State = unknown,
  ClientMsgs extends MessageDefinitions = MessageDefinitions,
  ServerMsgs extends MessageDefinitions = MessageDefinitions,
  Options = unknown,
> {
  /** Room type name; `manager.define(definition)` uses it. */
  name?: string;
  /** Most members at once. @default 16 */
  capacity?: number;
  /** Fixed steps per second of the tick loop; 0 for none. @default 20 */
  tickRateHz?: number;
  /** Dispose the room when its last member leaves. @default true */
  autoDispose?: boolean;
  /** Most steps one timer callback runs to catch up; the rest are dropped and counted. @default 5 */
  maxCatchUpSteps?: number;
  /** Registries of the messages clients send (`client`) and the room sends (`server`). */
  messages?: { client?: MessageRegistry<ClientMsgs>; server?: MessageRegistry<ServerMsgs> };
  /** Validates join/create options: a `defineSchema` schema or any Standard Schema. */
  options?: StandardSchemaLike<Options>;
  /**
   * Makes `room.state` when the room is created. Declare it before the hooks: their `room.state`
   * then has its return type.
   */
  state?(room: Room<unknown, ServerMsgs>, options: Options): State;
  /** Runs once after `state`; a throw refuses the create. */
  onCreate?(room: Room<State, ServerMsgs>, options: Options): Awaitable<void>;
  /** Admits a client: falsy or a throw refuses with FORBIDDEN; another truthy value becomes `member.authResult`. */
  onAuth?(room: Room<State, ServerMsgs>, client: RoomClient, options: Options): unknown;
  /** A member joined; a throw refuses the join. */
  onJoin?(room: Room<State, ServerMsgs>, member: RoomMember, options: Options): Awaitable<void>;
  /** A member left; `consented` is false for kicks, drops and disposal. */
  onLeave?(room: Room<State, ServerMsgs>, member: RoomMember, consented: boolean): Awaitable<void>;
  /** Handlers of client messages by type; a throw is logged and counted, the room goes on. */
  onMessage?: MessageHandlers<State, ClientMsgs, ServerMsgs>;
  /** One fixed step; a throw is logged and counted, the loop goes on. */
  onTick?(room: Room<State, ServerMsgs>, dtMs: number, tick: number): void;
  /** The room is being disposed (every member has left). */
  onDispose?(room: Room<State, ServerMsgs>): Awaitable<void>;
}

/** Any room definition, whatever its types: what `define` and server configs take. */
// biome-ignore lint/suspicious/noExplicitAny: registries and rooms are invariant in their message types; `any` is the only type every definition fits (like tRPC's AnyRouter).
export type AnyRoomDefinition = RoomDefinition<any, any, any, any>;

/** A definition with its types erased, as the manager calls it (internal). */
export type ErasedRoomDefinition = RoomDefinition<
  unknown,
  MessageDefinitions,
  MessageDefinitions,
  unknown
>;

/** A definition with defaults applied (internal). */
export interface ResolvedRoomDefinition {
  readonly name: string;
  readonly capacity: number;
  readonly tickRateHz: number;
  readonly autoDispose: boolean;
  readonly maxCatchUpSteps: number;
  readonly client: MessageRegistry<MessageDefinitions> | undefined;
  readonly server: MessageRegistry<MessageDefinitions> | undefined;
  readonly hooks: ErasedRoomDefinition;
}

const HOOKS = ['state', 'onCreate', 'onAuth', 'onJoin', 'onLeave', 'onTick', 'onDispose'] as const;

/** Most tick rate accepted, in Hz. */
export const MAX_TICK_RATE_HZ = 1000;

function invalid(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function isRegistry(value: unknown): value is MessageRegistry<MessageDefinitions> {
  const registry = value as MessageRegistry<MessageDefinitions> | undefined;
  return (
    typeof registry?.encode === 'function' &&
    typeof registry.decode === 'function' &&
    typeof registry.definitions === 'object'
  );
}

/** Checks a definition and applies defaults; INVALID_ARGUMENT names the bad field. */
export function resolveDefinition(
  name: string | undefined,
  definition: AnyRoomDefinition,
): ResolvedRoomDefinition {
  if (typeof definition !== 'object' || definition === null) {
    throw invalid('a room definition must be an object (defineRoom({...}))');
  }
  const roomName = name ?? definition.name;
  const where = `room '${roomName ?? '(unnamed)'}'`;
  if (roomName !== undefined && (typeof roomName !== 'string' || roomName.length === 0)) {
    throw invalid(`${where}: name must be a non-empty string`);
  }
  const capacity = definition.capacity ?? 16;
  if (!Number.isInteger(capacity) || capacity <= 0) {
    throw invalid(`${where}: capacity must be a positive integer, got ${capacity}`);
  }
  const tickRateHz = definition.tickRateHz ?? 20;
  if (!Number.isFinite(tickRateHz) || tickRateHz < 0 || tickRateHz > MAX_TICK_RATE_HZ) {
    throw invalid(
      `${where}: tickRateHz must be a number in [0, ${MAX_TICK_RATE_HZ}] (0: no tick loop), got ${tickRateHz}`,
    );
  }
  const maxCatchUpSteps = definition.maxCatchUpSteps ?? 5;
  if (!Number.isInteger(maxCatchUpSteps) || maxCatchUpSteps <= 0) {
    throw invalid(`${where}: maxCatchUpSteps must be a positive integer, got ${maxCatchUpSteps}`);
  }
  const autoDispose = definition.autoDispose ?? true;
  if (typeof autoDispose !== 'boolean') throw invalid(`${where}: autoDispose must be a boolean`);
  const { client, server } = definition.messages ?? {};
  if (client !== undefined && !isRegistry(client)) {
    throw invalid(`${where}: messages.client must be a registry from defineMessages`);
  }
  if (server !== undefined && !isRegistry(server)) {
    throw invalid(`${where}: messages.server must be a registry from defineMessages`);
  }
  const validator = definition.options;
  if (
    validator !== undefined &&
    !isSchema(validator) &&
    typeof validator?.['~standard']?.validate !== 'function'
  ) {
    throw invalid(`${where}: options must be a defineSchema schema or a Standard Schema validator`);
  }
  for (const hook of HOOKS) {
    if (definition[hook] !== undefined && typeof definition[hook] !== 'function') {
      throw invalid(`${where}: ${hook} must be a function`);
    }
  }
  const handlers = definition.onMessage ?? {};
  if (typeof handlers !== 'object' || handlers === null) {
    throw invalid(`${where}: onMessage must be an object of handlers by message type`);
  }
  for (const [type, handler] of Object.entries(handlers)) {
    if (typeof handler !== 'function') {
      throw invalid(`${where}: onMessage.${type} must be a function`);
    }
    if (client === undefined || !Object.hasOwn(client.definitions, type)) {
      throw invalid(`${where}: onMessage.${type} handles no message of messages.client`);
    }
  }
  return {
    name: roomName ?? '',
    capacity,
    tickRateHz,
    autoDispose,
    maxCatchUpSteps,
    client,
    server,
    hooks: definition,
  };
}

/**
 * Declares a room type. Checks it now (INVALID_ARGUMENT names the bad field) and infers the
 * types of state, messages and options for the hooks.
 */
export function defineRoom<
  State = unknown,
  ClientMsgs extends MessageDefinitions = MessageDefinitions,
  ServerMsgs extends MessageDefinitions = MessageDefinitions,
  Options = unknown,
>(
  definition: RoomDefinition<State, ClientMsgs, ServerMsgs, Options>,
): RoomDefinition<State, ClientMsgs, ServerMsgs, Options> {
  resolveDefinition(undefined, definition);
  return Object.freeze({ ...definition });
}

function issuePath(issue: StandardIssueLike): PathSegment[] {
  return (issue.path ?? []).map((segment) => {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    return typeof key === 'number' ? key : String(key);
  });
}

/** Runs the definition's option validator; VALIDATION_FAILED names every bad field. */
export async function validateRoomOptions(
  definition: ResolvedRoomDefinition,
  options: unknown,
): Promise<unknown> {
  const validator = definition.hooks.options;
  if (validator === undefined) return options;
  let issues: readonly { path: PathSegment[]; message: string }[];
  let value: unknown = options;
  if (isSchema(validator)) {
    const result = validator.validate(options);
    issues = result.ok ? [] : result.issues.map((i) => ({ path: [...i.path], message: i.message }));
  } else {
    let result: StandardResultLike<unknown>;
    try {
      result = await validator['~standard'].validate(options);
    } catch (error) {
      throw toTickwireError(
        error,
        ErrorCode.VALIDATION_FAILED,
        `options of room '${definition.name}': the validator threw: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (result.issues === undefined) value = result.value;
    issues = (result.issues ?? []).map((i) => ({ path: issuePath(i), message: i.message }));
  }
  if (issues.length === 0) return value;
  const text = issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ');
  throw new TickwireError(
    ErrorCode.VALIDATION_FAILED,
    `invalid options for room '${definition.name}': ${text}`,
    { details: { room: definition.name, path: issues[0]!.path, issues } },
  );
}

/** The metrics a manager shares with its rooms (internal). */
export interface RoomInstruments {
  readonly clients: Gauge;
  readonly messagesIn: Counter;
  readonly messagesOut: Counter;
  readonly rejected: Counter;
  readonly sendFailures: Counter;
  readonly hookErrors: Counter;
  readonly tickDuration: Histogram;
  readonly droppedTicks: Counter;
}

/** What the manager hands a new room (internal). */
export interface RoomInit {
  readonly id: string;
  readonly definition: ResolvedRoomDefinition;
  readonly time: TimeSource;
  readonly logger: Logger;
  readonly instruments: RoomInstruments;
  readonly kick: (sessionId: string, reason: string) => Promise<void>;
  readonly dispose: () => Promise<void>;
}

/** A message sent to a member whose join is not complete yet (internal). */
export interface HeldFrame {
  readonly frame: Uint8Array;
  readonly type: string;
  readonly options: SendOptions | undefined;
}

/** Room lifecycle as the manager tracks it. */
export type RoomPhase = 'creating' | 'open' | 'disposing' | 'disposed';

/** A room and the handles only its manager uses (internal). */
export interface RoomRuntime {
  readonly room: Room;
  readonly definition: ResolvedRoomDefinition;
  readonly members: Map<string, RoomMember>;
  /**
   * Members whose join is not complete, with what the room sent them meanwhile: held until
   * the manager's `joined` event (where the server sends RoomJoined) has been emitted.
   */
  readonly joining: Map<string, HeldFrame[]>;
  readonly events: Emitter<RoomEvents>;
  phase: RoomPhase;
  /** Seats held by joins in progress. */
  reserved: number;
  /** Settles when creation (state + onCreate) finished. */
  ready: Promise<void>;
  /** Set once disposal started. */
  disposal: Promise<void> | undefined;
  hasSeat(): boolean;
  startTicking(): void;
  stopTicking(): void;
  /** Ends the join of `sessionId`: sends what was held for it (if it is still a member). */
  releaseHeld(sessionId: string): void;
  /** Counts and logs a hook or listener that threw. */
  hookFailed(hook: string, error: unknown): void;
  /** Decodes and dispatches one RoomMessage payload of `member`. */
  receive(member: RoomMember, bytes: Uint8Array, channel: Channel): void;
}

const sessionIdOf = (client: RoomClient | string): string =>
  typeof client === 'string' ? client : client?.sessionId;

const isPromise = (value: unknown): value is Promise<unknown> =>
  typeof (value as Promise<unknown> | undefined)?.then === 'function';

const TICK_LAG_WARN_INTERVAL_MS = 10_000;

/** Builds a room and its runtime (internal: rooms are made by the manager). */
export function createRoomRuntime(init: RoomInit): RoomRuntime {
  const { id, definition, time, instruments } = init;
  const { name, capacity, tickRateHz, maxCatchUpSteps, hooks } = definition;
  const labels = { room: name };
  const logger = init.logger.child({ room: name, roomId: id });
  const stats: RoomStats = {
    ticks: 0,
    droppedTicks: 0,
    droppedMs: 0,
    messagesIn: 0,
    unhandledMessages: 0,
    rejectedMessages: 0,
    messagesOut: 0,
    sendFailures: 0,
    hookErrors: 0,
  };
  const members = new Map<string, RoomMember>();
  /** Metric labels per message type, made once: a message costs no label object. */
  const messageLabels = new Map<string, { room: string; type: string }>();
  const labelsOf = (type: string): { room: string; type: string } => {
    let labels = messageLabels.get(type);
    if (labels === undefined) {
      labels = { room: name, type };
      messageLabels.set(type, labels);
    }
    return labels;
  };
  const handlers = (hooks.onMessage ?? {}) as Record<
    string,
    (room: Room, member: RoomMember, value: unknown, channel: Channel) => unknown
  >;
  let metadata: Readonly<Record<string, unknown>> = Object.freeze({});
  let locked = false;
  let tick = 0;
  let droppedSteps = 0;
  let tickOrigin = 0;
  let tickTimer: Timer | undefined;
  let lastLagWarning = Number.NEGATIVE_INFINITY;
  const stepMs = tickRateHz > 0 ? 1000 / tickRateHz : 0;

  const hookFailed = (hook: string, error: unknown): void => {
    stats.hookErrors++;
    instruments.hookErrors.inc(1, { room: name, hook });
    logger.error({ err: error, hook }, `room '${name}' ${hook} threw; the room goes on`);
  };

  const events = new Emitter<RoomEvents>({
    onListenerError: (error, event) => hookFailed(`'${event}' listener`, error),
  });

  // Runs a hook that must not stop the room: sync throws and async rejections are counted.
  const guarded = (hook: string, run: () => unknown): void => {
    try {
      const result = run();
      if (isPromise(result)) result.catch((error: unknown) => hookFailed(hook, error));
    } catch (error) {
      hookFailed(hook, error);
    }
  };

  const memberOf = (client: RoomClient | string): RoomMember => {
    const member = members.get(sessionIdOf(client));
    if (member === undefined) {
      throw new TickwireError(
        ErrorCode.NOT_FOUND,
        `session ${sessionIdOf(client)} is not a member of room '${name}' (${id})`,
        { details: { roomId: id, sessionId: sessionIdOf(client) } },
      );
    }
    return member;
  };

  const frameOf = (type: string, value: unknown): Uint8Array => {
    const registry = definition.server;
    if (registry === undefined) {
      throw new TickwireError(
        ErrorCode.INVALID_STATE,
        `room '${name}' has no messages.server registry; add one to defineRoom to send messages`,
      );
    }
    const bytes = registry.encode(type, value as never);
    const frame = new Uint8Array(2 + bytes.byteLength);
    frame[0] = Opcode.RoomMessage;
    frame.set(bytes, 2);
    return frame;
  };

  const deliver = (
    member: RoomMember,
    frame: Uint8Array,
    type: string,
    options: SendOptions | undefined,
  ): boolean => {
    const held = runtime.joining.get(member.sessionId);
    if (held !== undefined) {
      held.push({ frame, type, options });
      return true;
    }
    try {
      const sent = member.connection.send(
        frame,
        options?.reliable === false ? 'unreliable' : 'reliable',
      );
      if (sent) {
        stats.messagesOut++;
        instruments.messagesOut.inc(1, labelsOf(type));
      }
      return sent;
    } catch (error) {
      const code = isTickwireError(error) ? error.code : ErrorCode.INTERNAL;
      stats.sendFailures++;
      instruments.sendFailures.inc(1, { room: name, code });
      logger.debug({ err: error, sessionId: member.sessionId }, `send of '${type}' failed`);
      return false;
    }
  };

  const step = (): void => {
    const started = time.now();
    tick++;
    stats.ticks++;
    if (hooks.onTick) guarded('onTick', () => hooks.onTick!(room, stepMs, tick));
    events.emit('tick', tick, stepMs);
    instruments.tickDuration.observe(time.now() - started, labels);
  };

  // Fixed steps from the elapsed time (no float drift); a stall runs at most maxCatchUpSteps.
  const runDueSteps = (): void => {
    const elapsedSteps = Math.floor((time.now() - tickOrigin) / stepMs + 1e-9);
    let due = elapsedSteps - tick - droppedSteps;
    if (due > maxCatchUpSteps) {
      const dropped = due - maxCatchUpSteps;
      droppedSteps += dropped;
      stats.droppedTicks += dropped;
      stats.droppedMs += dropped * stepMs;
      instruments.droppedTicks.inc(dropped, labels);
      const now = time.now();
      if (now - lastLagWarning >= TICK_LAG_WARN_INTERVAL_MS) {
        lastLagWarning = now;
        logger.warn(
          { droppedTicks: dropped, totalDroppedTicks: stats.droppedTicks },
          `room '${name}' tick loop fell ${dropped + maxCatchUpSteps} steps behind; dropped ${dropped}`,
        );
      }
      due = maxCatchUpSteps;
    }
    for (let i = 0; i < due && runtime.phase === 'open'; i++) step();
  };

  // Each wake-up is armed for the next step's due time, not at a fixed period after the last
  // wake-up (which is late by the callback's own lateness, so an interval drifts until two
  // steps run back to back).
  const loop = (): void => {
    const before = tick + droppedSteps;
    runDueSteps();
    if (tickTimer === undefined) return; // stopped meanwhile
    // The next step's due time, computed as n × 1000 / rate (exact where it can be).
    const next = tick + droppedSteps + 1;
    let delay = tickOrigin + (next * 1000) / tickRateHz - time.now();
    // Woken a hair early by rounding: wait a microsecond rather than spin at the same instant.
    if (delay <= 0 && tick + droppedSteps === before) delay = 0.001;
    tickTimer = time.setTimeout(loop, Math.max(0, delay));
  };

  const room: Room = {
    id,
    name,
    state: undefined,
    clients: members,
    capacity,
    tickRateHz,
    stats,
    logger,
    get metadata() {
      return metadata;
    },
    setMetadata(next) {
      if (typeof next !== 'object' || next === null || Array.isArray(next)) {
        throw invalid(`room '${name}': metadata must be a plain object`);
      }
      metadata = Object.freeze({ ...next });
    },
    get tick() {
      return tick;
    },
    get locked() {
      return locked;
    },
    get disposed() {
      return runtime.phase === 'disposing' || runtime.phase === 'disposed';
    },
    lock() {
      locked = true;
    },
    unlock() {
      locked = false;
    },
    send(client, type, value, options) {
      return deliver(memberOf(client), frameOf(type, value), type, options);
    },
    broadcast(type, value, options) {
      const frame = frameOf(type, value);
      const except = options?.except;
      const skip = new Set(
        except === undefined
          ? []
          : Array.isArray(except)
            ? except.map(sessionIdOf)
            : [sessionIdOf(except as RoomClient | string)],
      );
      let delivered = 0;
      for (const member of [...members.values()]) {
        if (skip.has(member.sessionId)) continue;
        if (deliver(member, frame, type, options)) delivered++;
      }
      return delivered;
    },
    kick(client, reason = 'kicked') {
      return init.kick(sessionIdOf(client), reason);
    },
    dispose() {
      return init.dispose();
    },
    ...subscribable(events),
  };

  const runtime: RoomRuntime = {
    room,
    definition,
    members,
    joining: new Map(),
    events,
    phase: 'creating',
    reserved: 0,
    ready: Promise.resolve(),
    disposal: undefined,
    hasSeat: () => members.size + runtime.reserved < capacity,
    startTicking() {
      if (stepMs === 0 || tickTimer !== undefined) return;
      tickOrigin = time.now();
      tickTimer = time.setTimeout(loop, stepMs);
    },
    stopTicking() {
      tickTimer?.cancel();
      tickTimer = undefined;
    },
    releaseHeld(sessionId) {
      const held = runtime.joining.get(sessionId);
      runtime.joining.delete(sessionId);
      const member = members.get(sessionId);
      if (held === undefined || member === undefined) return;
      for (const item of held) deliver(member, item.frame, item.type, item.options);
    },
    hookFailed,
    receive(member, bytes, channel) {
      const registry = definition.client;
      let message: { type: string; value: unknown };
      try {
        if (registry === undefined) {
          throw new TickwireError(ErrorCode.DECODE_FAILED, 'the room takes no client messages');
        }
        message = registry.decode(bytes);
      } catch (error) {
        const cause = toTickwireError(error, ErrorCode.DECODE_FAILED);
        stats.rejectedMessages++;
        instruments.rejected.inc(1, { room: name, code: cause.code });
        throw new TickwireError(
          cause.code,
          `room '${name}' (${id}), session ${member.sessionId}: ${cause.message}`,
          {
            cause,
            details: { ...cause.details, roomId: id, sessionId: member.sessionId },
          },
        );
      }
      const type = message.type;
      stats.messagesIn++;
      instruments.messagesIn.inc(1, labelsOf(type));
      const handler = handlers[type];
      if (handler === undefined) {
        stats.unhandledMessages++;
        logger.debug({ type }, 'client message without an onMessage handler');
        return;
      }
      // What guarded() does, without a closure and a hook name per message.
      try {
        const result = handler(room, member, message.value, channel);
        if (isPromise(result))
          result.catch((error: unknown) => hookFailed(`onMessage.${type}`, error));
      } catch (error) {
        hookFailed(`onMessage.${type}`, error);
      }
    },
  };
  return runtime;
}
