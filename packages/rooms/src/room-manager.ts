import {
  type Channel,
  CloseCode,
  Emitter,
  ErrorCode,
  isTickwireError,
  type Logger,
  type Metrics,
  noopMetrics,
  type Random,
  type Subscribable,
  silentLogger,
  subscribable,
  systemRandom,
  systemTime,
  TickwireError,
  type TimeSource,
  toTickwireError,
} from '@tickwire/core';
import {
  type AnyRoomDefinition,
  createRoomRuntime,
  type ResolvedRoomDefinition,
  type Room,
  type RoomClient,
  type RoomInstruments,
  type RoomMember,
  type RoomRuntime,
  resolveDefinition,
  validateRoomOptions,
} from './room.js';

/** Options of {@link createRoomManager}. */
export interface RoomManagerOptions {
  /** Clock and scheduler of the tick loops. @default systemTime */
  time?: TimeSource;
  /** Where hook errors and tick lag are reported. @default silentLogger */
  logger?: Logger;
  /** Gauges of rooms and clients, message counters, tick durations. @default noopMetrics */
  metrics?: Metrics;
  /** Source of room ids. @default systemRandom */
  random?: Random;
}

/** One room in a listing. */
export interface RoomListing {
  id: string;
  name: string;
  /** Members now. */
  clients: number;
  capacity: number;
  metadata: Readonly<Record<string, unknown>>;
  locked: boolean;
}

/** Events of a {@link RoomManager}: the server turns `joined`/`left` into RoomJoined/RoomLeft frames. */
export interface RoomManagerEvents {
  [event: string]: unknown[];
  /**
   * A join completed (after `onJoin`, before the room's `join` event). Send RoomJoined from
   * here: what the room sent the client during `onJoin` is held until this event returns.
   */
  joined: [client: RoomClient, room: Room];
  /** A member left: code 1000 consented, 1001 dropped or room disposed, 4004 kicked. */
  left: [client: RoomClient, room: Room, code: number, reason: string];
  /** A room was created (after `onCreate`). */
  created: [room: Room];
  /** A room was disposed (after `onDispose`). */
  disposed: [room: Room];
}

/** Callbacks of one join, for the server's reply to that request. */
export interface JoinCallbacks {
  /**
   * The client has its seat (after `onJoin`): runs before the `joined` event and before
   * anything the room sent the client during `onJoin` goes out. Send RoomJoined here.
   * A throw is logged and counted; the join stands.
   */
  seated?(room: Room): void;
  /**
   * A room message the client sent while this join ran was refused after all: it failed to
   * decode once the join completed (DECODE_FAILED, VALIDATION_FAILED…), or the join failed and
   * what was held was dropped (one NOT_FOUND, `details.dropped` = how many). Tell the client.
   * A throw is logged and counted.
   */
  refused?(error: TickwireError): void;
}

/** Creates, finds and disposes rooms; routes clients and their messages. */
export interface RoomManager extends Subscribable<RoomManagerEvents> {
  /** Registers a room type under `name` (CONFLICT if taken). */
  define(name: string, definition: AnyRoomDefinition): void;
  /** Registers a room type under its `name`. */
  define(definition: AnyRoomDefinition): void;
  /** Joins the oldest unlocked room of `name` with a free seat: NOT_FOUND if there is none, LIMIT_EXCEEDED if all are full or locked. */
  join(
    name: string,
    client: RoomClient,
    options?: unknown,
    callbacks?: JoinCallbacks,
  ): Promise<Room>;
  /** Creates a room of `name` and joins it. */
  create(
    name: string,
    client: RoomClient,
    options?: unknown,
    callbacks?: JoinCallbacks,
  ): Promise<Room>;
  /** Joins like `join`, or creates a room when none has a seat. */
  joinOrCreate(
    name: string,
    client: RoomClient,
    options?: unknown,
    callbacks?: JoinCallbacks,
  ): Promise<Room>;
  /** Joins one room: NOT_FOUND, LIMIT_EXCEEDED when full, FORBIDDEN when locked. */
  joinById(
    roomId: string,
    client: RoomClient,
    options?: unknown,
    callbacks?: JoinCallbacks,
  ): Promise<Room>;
  /**
   * Takes the client out of its room (no-op if in none). The `left` event carries `code`:
   * by default 1000 when consented, 1001 otherwise.
   */
  leave(
    client: RoomClient | string,
    consented?: boolean,
    code?: number,
    reason?: string,
  ): Promise<void>;
  /**
   * Decodes a RoomMessage payload (without the frame header) with the room's `messages.client`
   * and runs its handler. Throws DECODE_FAILED / VALIDATION_FAILED / MESSAGE_TOO_LARGE (counted),
   * NOT_FOUND if the client is in no room. Handler errors are logged and counted, never thrown.
   * While the client's join runs (onAuth, onJoin…), up to {@link MAX_MESSAGES_WHILE_JOINING}
   * payloads are held (LIMIT_EXCEEDED past them) and handled in order once the join completes,
   * or dropped if it fails: no handler sees a member whose join has not completed; see
   * {@link JoinCallbacks.refused}.
   */
  receive(client: RoomClient | string, bytes: Uint8Array, channel?: Channel): void;
  /** The room the client is in. */
  roomOf(client: RoomClient | string): Room | undefined;
  /** Every open room. */
  rooms(): Room[];
  /** One room by id (also while it is being created). */
  get(roomId: string): Room | undefined;
  /** Open rooms, of one type or all, in creation order. */
  list(name?: string): RoomListing[];
  /** Disposes one room; no-op for an unknown id. */
  dispose(roomId: string): Promise<void>;
  /** Disposes every room; later joins reject with CLOSED. */
  close(): Promise<void>;
}

type JoinMode = 'join' | 'create' | 'joinOrCreate' | 'joinById';

interface PendingLeave {
  consented: boolean;
  code: number;
  reason: string;
}

/** Room messages held per client while its join runs; past them, `receive` throws LIMIT_EXCEEDED. */
export const MAX_MESSAGES_WHILE_JOINING = 32;

interface HeldMessage {
  readonly bytes: Uint8Array;
  readonly channel: Channel;
}

// A join in progress; `leave` set while it runs is carried out when it completes. `inbox` holds
// the room messages that came meanwhile (null once the join completed and handed them over).
interface JoinTicket {
  leave: PendingLeave | undefined;
  inbox: HeldMessage[] | null;
  readonly callbacks: JoinCallbacks | undefined;
}

const ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_LENGTH = 12;
const MAX_ID_ATTEMPTS = 100;

const TICK_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100] as const;

function invalid(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

function checkClient(client: RoomClient): void {
  if (typeof client !== 'object' || client === null) throw invalid('client must be an object');
  if (typeof client.sessionId !== 'string' || client.sessionId.length === 0) {
    throw invalid('client.sessionId must be a non-empty string');
  }
  if (typeof client.connection?.send !== 'function') {
    throw invalid(`client ${client.sessionId}: connection must be a Connection`);
  }
}

function sessionIdOf(client: RoomClient | string): string {
  const sessionId = typeof client === 'string' ? client : client?.sessionId;
  if (typeof sessionId !== 'string' || sessionId.length === 0) {
    throw invalid('client must be a RoomClient or a non-empty session id');
  }
  return sessionId;
}

/** Creates a {@link RoomManager}. */
export function createRoomManager(options: RoomManagerOptions = {}): RoomManager {
  const time = options.time ?? systemTime;
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics ?? noopMetrics;
  const random = options.random ?? systemRandom;
  const roomsGauge = metrics.gauge('tickwire_room_instances', { help: 'Open rooms, by room type' });
  const instruments: RoomInstruments = {
    clients: metrics.gauge('tickwire_room_clients', { help: 'Members of rooms, by room type' }),
    messagesIn: metrics.counter('tickwire_room_messages_received_total', {
      help: 'Client room messages dispatched, by room type and message type',
    }),
    messagesOut: metrics.counter('tickwire_room_messages_sent_total', {
      help: 'Room messages handed to connections, by room type and message type',
    }),
    rejected: metrics.counter('tickwire_room_messages_rejected_total', {
      help: 'Client room messages refused, by room type and error code',
    }),
    sendFailures: metrics.counter('tickwire_room_send_failures_total', {
      help: 'Room sends that threw (closed connection…), by room type and error code',
    }),
    hookErrors: metrics.counter('tickwire_room_hook_errors_total', {
      help: 'Room hooks and listeners that threw, by room type and hook',
    }),
    tickDuration: metrics.histogram('tickwire_room_tick_duration_ms', {
      help: 'Duration of one room tick step (onTick and listeners) in ms',
      buckets: TICK_BUCKETS_MS,
    }),
    droppedTicks: metrics.counter('tickwire_room_ticks_dropped_total', {
      help: 'Tick steps skipped after a stall (over the catch-up cap), by room type',
    }),
  };
  const definitions = new Map<string, ResolvedRoomDefinition>();
  const roomsById = new Map<string, RoomRuntime>();
  const membership = new Map<string, RoomRuntime>();
  const joining = new Map<string, JoinTicket>();
  let closed = false;
  const events = new Emitter<RoomManagerEvents>({
    onListenerError: (error, event) =>
      logger.error({ err: error, event }, `room manager '${event}' listener threw`),
  });

  const newRoomId = (): string => {
    for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
      let id = '';
      for (let i = 0; i < ID_LENGTH; i++) {
        id += ID_ALPHABET[Math.floor(random.next() * ID_ALPHABET.length)];
      }
      if (!roomsById.has(id)) return id;
    }
    throw new TickwireError(
      ErrorCode.INTERNAL,
      `${MAX_ID_ATTEMPTS} generated room ids were all taken; does options.random return random numbers?`,
    );
  };

  const guardOpen = (): void => {
    if (closed) throw new TickwireError(ErrorCode.CLOSED, 'the room manager is closed');
  };

  const definitionOf = (name: string): ResolvedRoomDefinition => {
    const definition = definitions.get(name);
    if (definition === undefined) {
      throw new TickwireError(
        ErrorCode.NOT_FOUND,
        `no room type '${name}' is defined (defined: ${[...definitions.keys()].join(', ') || 'none'})`,
        { details: { room: name } },
      );
    }
    return definition;
  };

  // Wraps what a join hook threw: a TickwireError keeps its code, anything else gets `code`.
  const refusal = (runtime: RoomRuntime, hook: string, error: unknown, code: ErrorCode) => {
    if (isTickwireError(error)) return error;
    runtime.hookFailed(hook, error);
    const text = error instanceof Error ? error.message : String(error);
    return new TickwireError(
      code,
      `room '${runtime.definition.name}' (${runtime.room.id}) refused the join: ${hook} threw: ${text}`,
      { cause: error, details: { roomId: runtime.room.id, hook, reason: 'hook' } },
    );
  };

  const gone = (runtime: RoomRuntime): TickwireError =>
    new TickwireError(
      ErrorCode.NOT_FOUND,
      `room '${runtime.definition.name}' (${runtime.room.id}) was disposed during the join`,
      { details: { roomId: runtime.room.id, reason: 'disposed' } },
    );

  const maybeAutoDispose = (runtime: RoomRuntime): void => {
    if (
      runtime.definition.autoDispose &&
      runtime.phase === 'open' &&
      runtime.members.size === 0 &&
      runtime.reserved === 0
    ) {
      void disposeRoom(runtime);
    }
  };

  const createRuntime = (definition: ResolvedRoomDefinition, options: unknown): RoomRuntime => {
    const id = newRoomId();
    const runtime = createRoomRuntime({
      id,
      definition,
      time,
      logger,
      instruments,
      kick: (sessionId, reason) => leaveRoom(sessionId, false, CloseCode.Kicked, reason, runtime),
      dispose: () => disposeRoom(runtime),
    });
    roomsById.set(id, runtime);
    const { hooks } = definition;
    const room = runtime.room;
    const create = async (): Promise<void> => {
      let hook = 'state';
      try {
        if (hooks.state) room.state = hooks.state(room, options);
        hook = 'onCreate';
        await hooks.onCreate?.(room, options);
      } catch (error) {
        roomsById.delete(id);
        runtime.phase = 'disposed';
        throw refusal(runtime, hook, error, ErrorCode.INTERNAL);
      }
      runtime.phase = 'open';
      roomsGauge.inc(1, { room: definition.name });
      runtime.startTicking();
      events.emit('created', room);
    };
    runtime.ready = create();
    // Every joiner awaits `ready`; this only keeps a failure nobody awaits from going unhandled.
    runtime.ready.catch(() => {});
    return runtime;
  };

  const seatProblem = (runtime: RoomRuntime): TickwireError | undefined => {
    const { room } = runtime;
    if (runtime.phase === 'disposing' || runtime.phase === 'disposed') return gone(runtime);
    if (room.locked) {
      return new TickwireError(ErrorCode.FORBIDDEN, `room '${room.name}' (${room.id}) is locked`, {
        details: { roomId: room.id, reason: 'locked' },
      });
    }
    if (!runtime.hasSeat()) {
      return new TickwireError(
        ErrorCode.LIMIT_EXCEEDED,
        `room '${room.name}' (${room.id}) is full (capacity ${room.capacity})`,
        { details: { roomId: room.id, reason: 'full', capacity: room.capacity } },
      );
    }
    return undefined;
  };

  const findJoinable = (name: string): RoomRuntime | undefined => {
    for (const runtime of roomsById.values()) {
      if (runtime.definition.name === name && seatProblem(runtime) === undefined) return runtime;
    }
    return undefined;
  };

  const noJoinable = (name: string): TickwireError => {
    for (const runtime of roomsById.values()) {
      if (runtime.definition.name === name && runtime.phase !== 'disposed') {
        return new TickwireError(
          ErrorCode.LIMIT_EXCEEDED,
          `every '${name}' room is full or locked; create one or use joinOrCreate`,
          { details: { room: name, reason: 'full' } },
        );
      }
    }
    return new TickwireError(
      ErrorCode.NOT_FOUND,
      `no '${name}' room to join; create one or use joinOrCreate`,
      { details: { room: name } },
    );
  };

  const enter = async (
    mode: JoinMode,
    target: string,
    client: RoomClient,
    rawOptions: unknown,
    callbacks: JoinCallbacks | undefined,
  ): Promise<Room> => {
    guardOpen();
    checkClient(client);
    if (typeof target !== 'string' || target.length === 0) {
      throw invalid(
        `${mode}: ${mode === 'joinById' ? 'room id' : 'room name'} must be a non-empty string`,
      );
    }
    const sessionId = client.sessionId;
    const current = membership.get(sessionId);
    if (current !== undefined || joining.has(sessionId)) {
      throw new TickwireError(
        ErrorCode.CONFLICT,
        current === undefined
          ? `session ${sessionId} is already joining a room`
          : `session ${sessionId} is already in room '${current.definition.name}' (${current.room.id}); leave it first`,
        { details: { sessionId, roomId: current?.room.id } },
      );
    }
    const ticket: JoinTicket = { leave: undefined, inbox: [], callbacks };
    joining.set(sessionId, ticket);
    try {
      let runtime: RoomRuntime | undefined;
      let definition: ResolvedRoomDefinition;
      if (mode === 'joinById') {
        runtime = roomsById.get(target);
        if (runtime === undefined) {
          throw new TickwireError(ErrorCode.NOT_FOUND, `no room with id ${target}`, {
            details: { roomId: target },
          });
        }
        definition = runtime.definition;
      } else {
        definition = definitionOf(target);
      }
      const options = await validateRoomOptions(definition, rawOptions);
      guardOpen();
      if (ticket.leave) throw leftWhileJoining(sessionId);
      if (runtime !== undefined) {
        const problem = seatProblem(runtime);
        if (problem) throw problem;
      } else if (mode === 'join') {
        runtime = findJoinable(definition.name);
        if (runtime === undefined) throw noJoinable(definition.name);
      } else if (mode === 'joinOrCreate') {
        runtime = findJoinable(definition.name) ?? createRuntime(definition, options);
      } else {
        runtime = createRuntime(definition, options);
      }
      return await seat(runtime, client, options, ticket, callbacks);
    } finally {
      joining.delete(sessionId);
      // The join failed: what was held never reaches a room.
      if (ticket.inbox !== null && ticket.inbox.length > 0) {
        const dropped = ticket.inbox.length;
        ticket.inbox = null;
        refuseHeld(
          ticket,
          new TickwireError(
            ErrorCode.NOT_FOUND,
            `session ${sessionId}: its join failed; ${dropped} room message(s) sent during it were dropped`,
            { details: { sessionId, dropped, reason: 'join-failed' } },
          ),
        );
      }
    }
  };

  const refuseHeld = (ticket: JoinTicket, error: TickwireError, runtime?: RoomRuntime): void => {
    const refused = ticket.callbacks?.refused;
    if (refused === undefined) {
      logger.debug({ err: error }, 'room message held during a join refused');
      return;
    }
    try {
      refused(error);
    } catch (thrown) {
      if (runtime !== undefined) runtime.hookFailed('refused', thrown);
      else logger.error({ err: thrown }, "join callback 'refused' threw");
    }
  };

  // Hands the room what the member sent while joining, in order (the join has completed).
  const deliverHeld = (runtime: RoomRuntime, sessionId: string, ticket: JoinTicket): void => {
    const inbox = ticket.inbox;
    ticket.inbox = null;
    if (inbox === null) return;
    for (let i = 0; i < inbox.length; i++) {
      // A handler may have kicked the member or disposed the room: the rest is theirs no more.
      const member = runtime.members.get(sessionId);
      if (member === undefined || runtime.phase !== 'open') {
        refuseHeld(
          ticket,
          new TickwireError(
            ErrorCode.NOT_FOUND,
            `session ${sessionId} left room '${runtime.definition.name}' (${runtime.room.id}); ${inbox.length - i} room message(s) sent while it joined were dropped`,
            {
              details: {
                sessionId,
                roomId: runtime.room.id,
                dropped: inbox.length - i,
                reason: 'left',
              },
            },
          ),
          runtime,
        );
        return;
      }
      const { bytes, channel } = inbox[i]!;
      try {
        runtime.receive(member, bytes, channel);
      } catch (error) {
        refuseHeld(ticket, toTickwireError(error, ErrorCode.DECODE_FAILED), runtime);
      }
    }
  };

  const leftWhileJoining = (sessionId: string): TickwireError =>
    new TickwireError(ErrorCode.CONFLICT, `session ${sessionId} left while joining`, {
      details: { sessionId, reason: 'left' },
    });

  // Holds a seat while the room is created and onAuth runs, then adds the member and runs onJoin.
  const seat = async (
    runtime: RoomRuntime,
    client: RoomClient,
    options: unknown,
    ticket: JoinTicket,
    callbacks: JoinCallbacks | undefined,
  ): Promise<Room> => {
    const { room, definition } = runtime;
    const { hooks } = definition;
    const sessionId = client.sessionId;
    runtime.reserved++;
    let reserved = true;
    try {
      await runtime.ready;
      const stillThere = (): void => {
        if (runtime.phase !== 'open') throw gone(runtime);
        if (ticket.leave) throw leftWhileJoining(sessionId);
      };
      stillThere();
      let authResult: unknown = true;
      if (hooks.onAuth) {
        try {
          authResult = await hooks.onAuth(room, client, options);
        } catch (error) {
          throw refusal(runtime, 'onAuth', error, ErrorCode.FORBIDDEN);
        }
        if (!authResult) {
          throw new TickwireError(
            ErrorCode.FORBIDDEN,
            `room '${room.name}' (${room.id}) refused session ${sessionId} (onAuth)`,
            { details: { roomId: room.id, sessionId, reason: 'auth' } },
          );
        }
      }
      stillThere();
      const member: RoomMember = {
        client,
        sessionId,
        ...(client.userId === undefined ? {} : { userId: client.userId }),
        ...(client.auth === undefined ? {} : { auth: client.auth }),
        connection: client.connection,
        joinedAt: time.now(),
        authResult,
        userData: undefined,
      };
      runtime.members.set(sessionId, member);
      runtime.joining.set(sessionId, []);
      membership.set(sessionId, runtime);
      runtime.reserved--;
      reserved = false;
      instruments.clients.inc(1, { room: room.name });
      try {
        await hooks.onJoin?.(room, member, options);
      } catch (error) {
        runtime.joining.delete(sessionId);
        dropMember(runtime, sessionId);
        throw refusal(runtime, 'onJoin', error, ErrorCode.INTERNAL);
      }
      // Disposal during onJoin already took the member out, silently.
      if (runtime.members.get(sessionId) !== member) {
        runtime.joining.delete(sessionId);
        throw gone(runtime);
      }
      // The server's RoomJoined goes first, then what onJoin sent (held until releaseHeld).
      if (callbacks?.seated) {
        try {
          callbacks.seated(room);
        } catch (error) {
          runtime.hookFailed('seated', error);
        }
      }
      events.emit('joined', client, room);
      runtime.events.emit('join', member);
      runtime.releaseHeld(sessionId);
      // Only now may handlers see the member: what it sent meanwhile goes first, in order.
      deliverHeld(runtime, sessionId, ticket);
      if (ticket.leave) {
        const { consented, code, reason } = ticket.leave;
        await leaveRoom(sessionId, consented, code, reason, runtime);
      }
      return room;
    } finally {
      if (reserved) runtime.reserved--;
      maybeAutoDispose(runtime);
    }
  };

  // Removes a member without hooks or events (a join that did not complete).
  const dropMember = (runtime: RoomRuntime, sessionId: string): void => {
    if (!runtime.members.delete(sessionId)) return;
    if (membership.get(sessionId) === runtime) membership.delete(sessionId);
    instruments.clients.dec(1, { room: runtime.definition.name });
  };

  const leaveRoom = async (
    sessionId: string,
    consented: boolean,
    code: number,
    reason: string,
    only?: RoomRuntime,
  ): Promise<void> => {
    const runtime = membership.get(sessionId);
    const ticket = joining.get(sessionId);
    if (runtime === undefined || (only !== undefined && runtime !== only)) {
      if (ticket && only === undefined) ticket.leave ??= { consented, code, reason };
      return;
    }
    if (runtime.joining.has(sessionId)) {
      // onJoin is running: the join completes, then leaves (see `seat`).
      if (ticket) ticket.leave ??= { consented, code, reason };
      return;
    }
    const member = runtime.members.get(sessionId)!;
    dropMember(runtime, sessionId);
    const { room, definition } = runtime;
    if (definition.hooks.onLeave) {
      try {
        await definition.hooks.onLeave(room, member, consented);
      } catch (error) {
        runtime.hookFailed('onLeave', error);
      }
    }
    runtime.events.emit('leave', member, consented);
    events.emit('left', member.client, room, code, reason);
    maybeAutoDispose(runtime);
  };

  const disposeRoom = (runtime: RoomRuntime): Promise<void> => {
    if (runtime.disposal) return runtime.disposal;
    runtime.disposal = (async () => {
      await runtime.ready.catch(() => {});
      if (runtime.phase === 'disposed') return;
      runtime.phase = 'disposing';
      runtime.stopTicking();
      const { room, definition } = runtime;
      for (const sessionId of [...runtime.members.keys()]) {
        if (runtime.joining.has(sessionId)) dropMember(runtime, sessionId);
        else await leaveRoom(sessionId, false, CloseCode.GoingAway, 'room disposed', runtime);
      }
      if (definition.hooks.onDispose) {
        try {
          await definition.hooks.onDispose(room);
        } catch (error) {
          runtime.hookFailed('onDispose', error);
        }
      }
      runtime.phase = 'disposed';
      roomsById.delete(room.id);
      roomsGauge.dec(1, { room: definition.name });
      runtime.events.emit('dispose');
      events.emit('disposed', room);
      runtime.events.removeAllListeners();
    })();
    return runtime.disposal;
  };

  // The hooks' types are erased here: each definition is only ever called with its own room.
  function define(nameOrDefinition: unknown, maybe?: unknown): void {
    guardOpen();
    const named = typeof nameOrDefinition === 'string';
    const definition = (named ? maybe : nameOrDefinition) as AnyRoomDefinition;
    const resolved = resolveDefinition(named ? nameOrDefinition : undefined, definition);
    if (resolved.name === '') {
      throw invalid('define: give the room type a name: define(name, definition)');
    }
    if (definitions.has(resolved.name)) {
      throw new TickwireError(
        ErrorCode.CONFLICT,
        `room type '${resolved.name}' is already defined`,
        { details: { room: resolved.name } },
      );
    }
    definitions.set(resolved.name, resolved);
  }

  const openRooms = (): RoomRuntime[] =>
    [...roomsById.values()].filter((runtime) => runtime.phase === 'open');

  return {
    ...subscribable(events),
    define,
    join: (name, client, options, callbacks) => enter('join', name, client, options, callbacks),
    create: (name, client, options, callbacks) => enter('create', name, client, options, callbacks),
    joinOrCreate: (name, client, options, callbacks) =>
      enter('joinOrCreate', name, client, options, callbacks),
    joinById: (roomId, client, options, callbacks) =>
      enter('joinById', roomId, client, options, callbacks),
    async leave(client, consented = true, code, reason) {
      const sessionId = sessionIdOf(client);
      await leaveRoom(
        sessionId,
        consented,
        code ?? (consented ? CloseCode.Normal : CloseCode.GoingAway),
        reason ?? (consented ? 'left' : 'disconnected'),
      );
    },
    receive(client, bytes, channel = 'reliable') {
      const sessionId = sessionIdOf(client);
      const ticket = joining.get(sessionId);
      // Joining: held until the join completes or fails; no room sees the member before that.
      if (ticket !== undefined && ticket.inbox !== null) {
        if (ticket.leave !== undefined) {
          // Sent after leaving: it belongs to no room.
          throw new TickwireError(
            ErrorCode.NOT_FOUND,
            `session ${sessionId} left while joining; it is in no room`,
            { details: { sessionId, reason: 'left' } },
          );
        }
        if (ticket.inbox.length >= MAX_MESSAGES_WHILE_JOINING) {
          throw new TickwireError(
            ErrorCode.LIMIT_EXCEEDED,
            `session ${sessionId} sent more than ${MAX_MESSAGES_WHILE_JOINING} room messages while joining`,
            { details: { sessionId, limit: MAX_MESSAGES_WHILE_JOINING, reason: 'joining' } },
          );
        }
        // A copy: the caller's buffer may be reused before the join completes.
        ticket.inbox.push({ bytes: bytes.slice(), channel });
        return;
      }
      const runtime = membership.get(sessionId);
      const member = runtime?.members.get(sessionId);
      if (runtime === undefined || member === undefined || runtime.phase !== 'open') {
        throw new TickwireError(
          ErrorCode.NOT_FOUND,
          `session ${sessionId} is in no room; join one before sending room messages`,
          { details: { sessionId } },
        );
      }
      runtime.receive(member, bytes, channel);
    },
    roomOf(client) {
      return membership.get(sessionIdOf(client))?.room;
    },
    rooms: () => openRooms().map((runtime) => runtime.room),
    get(roomId) {
      const runtime = roomsById.get(roomId);
      return runtime === undefined || runtime.phase === 'disposed' ? undefined : runtime.room;
    },
    list(name) {
      return openRooms()
        .filter((runtime) => name === undefined || runtime.definition.name === name)
        .map(({ room }) => ({
          id: room.id,
          name: room.name,
          clients: room.clients.size,
          capacity: room.capacity,
          metadata: room.metadata,
          locked: room.locked,
        }));
    },
    async dispose(roomId) {
      const runtime = roomsById.get(roomId);
      if (runtime !== undefined) await disposeRoom(runtime);
    },
    async close() {
      closed = true;
      await Promise.all([...roomsById.values()].map(disposeRoom));
    },
  };
}
