// The engine: transports in, sessions and rooms out. One connection's life: the address limit,
// a Hello within the handshake timeout, the version check, the auth hook (new session) or the
// token check (resume), a Welcome, then a session link that carries every later frame and
// survives reconnection. Rooms, replication and time sync all speak through that link.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  type Channel,
  CloseCode,
  type CloseInfo,
  type Connection,
  checkCloseArgs,
  Emitter,
  ErrorCode,
  type Logger,
  MAX_CLOSE_REASON_BYTES,
  Opcode,
  PROTOCOL_VERSION,
  type ServerTransport,
  type Store,
  type Subscribable,
  subscribable,
  systemTime,
  TickwireError,
  type Timer,
  type TimeSource,
  type TransportAddress,
  toTickwireError,
} from '@tickwire/core';
import {
  type AnyRoomDefinition,
  createRoomManager,
  createSessionRegistry,
  createTokenSigner,
  type Room,
  type RoomClient,
  type RoomManager,
  type SessionGrant,
  type SessionRecord,
  type SessionRegistry,
} from '@tickwire/rooms';
import {
  createSessionLink,
  decodeGoodbye,
  decodeHello,
  decodeJoinRoom,
  encodeGoodbye,
  encodeRoomJoined,
  encodeRoomLeft,
  encodeWelcome,
  errorFrameOf,
  FrameLimits,
  type HelloFrame,
  JoinMode,
  opcodeName,
  peekHelloVersion,
  type ResumeKind,
  type SessionLink,
  truncateUtf8,
} from '@tickwire/rooms/protocol';
import { serveTimeSync, type TimeSyncServer } from '@tickwire/timesync';
import { createTcpServer } from '@tickwire/transport/tcp';
import { createUdpServer } from '@tickwire/transport/udp';
import { createWsServer } from '@tickwire/transport/ws';
import { type ResolvedServerConfig, resolveServerConfig, type ServerConfig } from './config.js';
import {
  createFrameCounts,
  type FrameCounts,
  type GuardedConnection,
  guardConnection,
} from './guard.js';
import { createHttpHandler, type HealthStatus, type RequestListener } from './http.js';
import {
  createAddressLimiter,
  createConnectionLimiter,
  createTokenBucket,
  normalizeAddress,
  type TokenBucket,
} from './limits.js';
import {
  createPinoLogger,
  createPromMetrics,
  createServerMetrics,
  type PromMetrics,
  type ServerMetrics,
} from './observability.js';
import { setPhaseTimer } from './replicate.js';

/** What the auth hook sees of a new client. */
export interface AuthContext {
  /** What the client passed as `auth` (any JSON value; validate it). */
  auth: unknown;
  remoteAddress: string;
  /** `ws`, `tcp`, `udp` or the name of an extra transport. */
  transport: string;
}

/**
 * What the auth hook returns: `false` (or a throw) refuses the client with
 * CloseCode.Unauthorized; `true` accepts it; an object accepts it with a user id and data that
 * rooms see as `client.userId` / `client.auth` and the client as `session.userData`.
 */
export type AuthResult = boolean | { userId?: string; userData?: unknown };

/** Decides whether a new client may open a session. */
export type AuthHook = (context: AuthContext) => AuthResult | Promise<AuthResult>;

/** A transport the server listens on besides the configured ws/tcp/udp (memory, WebRTC…). */
export interface ExtraTransport {
  name: string;
  transport: ServerTransport;
}

/** Options of {@link createServer}: the validated {@link ServerConfig} plus the code parts. */
export interface TickwireServerOptions extends ServerConfig {
  /** Room types by name. */
  rooms?: Readonly<Record<string, AnyRoomDefinition>>;
  /** @default accept everyone */
  auth?: AuthHook;
  /** Where sessions live; a shared store (Redis) lets clients resume after a restart. @default in memory */
  store?: Store;
  /** @default pino at level 'info' on stdout */
  logger?: Logger;
  /** Prometheus metrics (served on `/metrics`). @default a new registry */
  metrics?: PromMetrics;
  /** @default systemTime */
  time?: TimeSource;
  /** Serves every HTTP path the server does not (static files of a game, say). */
  requestHandler?: RequestListener;
  extraTransports?: readonly ExtraTransport[];
}

/** Where the server listens. */
export interface ServerAddresses {
  /** `http://host:port`: health, metrics, debug and the `requestHandler`. */
  http: string;
  /** Per transport name, what a client connects to. */
  transports: Record<string, TransportAddress>;
}

/** Live figures of the server. */
export interface ServerStats {
  status: HealthStatus;
  connections: number;
  sessions: number;
  /** Sessions whose connection dropped and that wait within their grace period. */
  detachedSessions: number;
  rooms: number;
  /** Refusals by reason (rate limit, handshake timeout, bad frame…). */
  rejections: Record<string, number>;
}

/**
 * Events of a {@link TickwireServer}. A listener that throws does not stop the others nor the
 * server: its error is logged (level `error`, with the event name) and the server carries on.
 */
export type TickwireServerEvents = {
  /** A session opened (`new`), resumed or was restored after a restart. */
  session: [sessionId: string, kind: ResumeKind];
  /** A session ended: its client left, was removed or its grace period ran out. */
  sessionEnd: [sessionId: string, code: number, reason: string];
  /** Something was refused; the server carried on. */
  rejected: [reason: string, error: TickwireError];
};

/** The networking engine. */
export interface TickwireServer extends Subscribable<TickwireServerEvents> {
  readonly config: ResolvedServerConfig;
  readonly rooms: RoomManager;
  readonly sessions: SessionRegistry;
  readonly metrics: PromMetrics;
  readonly logger: Logger;
  /** Starts every transport and the HTTP server; resolves with the addresses. */
  listen(): Promise<ServerAddresses>;
  addresses(): ServerAddresses | null;
  stats(): ServerStats;
  /** Ends a session at once (CloseCode.Kicked, or `code`); its seat is freed. */
  kick(sessionId: string, reason?: string, code?: number): Promise<boolean>;
  /**
   * Graceful shutdown: `/health` turns `draining`, every client gets a Goodbye with
   * CloseCode.ServiceRestart (clients reconnect and resume, here after a restart when the store
   * persists, or get SESSION_EXPIRED), rooms are disposed, transports and HTTP closed. Session
   * records stay in the store. Idempotent.
   */
  close(): Promise<void>;
}

interface Live {
  readonly id: string;
  readonly record: SessionRecord;
  readonly link: SessionLink;
  readonly client: RoomClient;
  readonly timeServer: TimeSyncServer;
  /** The accepted connection the session is on, or null while it is detached. */
  connection: Accepted | null;
  ended: boolean;
}

interface Accepted {
  readonly transport: string;
  readonly address: string;
  readonly guarded: GuardedConnection;
  phase: 'hello' | 'auth' | 'session';
  live: Live | null;
  timer: Timer | null;
  /**
   * Set once the server decided to close it, or once a resume moved its session to another
   * connection: later frames are dropped unseen (never delivered nor rate-limited).
   */
  closing: boolean;
  /** The token generation sent in the Welcome, until the client speaks and so confirms it. */
  confirmGen: number | null;
  /** Holds one of `limits.maxSessions` while its new session is being opened (auth, store). */
  reserved: boolean;
}

/** Frames replication and time sync consume on the link (never an error, in a room or not). */
const LAYER_OPCODES: ReadonlySet<number> = new Set([
  Opcode.TimeRequest,
  Opcode.SnapshotAck,
  Opcode.OwnerChanges,
  Opcode.Rpc,
]);

const JOIN_METHODS = {
  [JoinMode.Join]: 'join',
  [JoinMode.Create]: 'create',
  [JoinMode.JoinOrCreate]: 'joinOrCreate',
  [JoinMode.JoinById]: 'joinById',
} as const;

/** Creates the engine; nothing listens until `listen()`. Throws INVALID_ARGUMENT on bad config. */
export function createServer(options: TickwireServerOptions = {}): TickwireServer {
  const {
    rooms: roomDefinitions,
    auth,
    store,
    logger: givenLogger,
    metrics: givenMetrics,
    time: givenTime,
    requestHandler,
    extraTransports = [],
    ...configInput
  } = options;
  const logger = givenLogger ?? createPinoLogger({ level: 'info' });
  const config = resolveServerConfig(configInput, { logger });
  const time = givenTime ?? systemTime;
  const metrics = givenMetrics ?? createPromMetrics();
  const serverMetrics: ServerMetrics = createServerMetrics(metrics);
  // A game's listener that throws is logged, as the rooms' are: rethrown it would be an uncaught
  // error, and one buggy `sessionEnd` listener would take every session down with the process.
  const emitter = new Emitter<TickwireServerEvents>({
    onListenerError: (error, event) =>
      logger.error({ err: error, event }, `server '${event}' listener threw`),
  });
  const signer = createTokenSigner({ secret: config.session.secret });
  const sessions = createSessionRegistry({
    signer,
    ...(store === undefined ? {} : { store }),
    graceMs: config.session.graceMs,
    tokenTtlMs: config.session.tokenTtlMs,
    time,
    logger,
  });
  const rooms = createRoomManager({ time, logger, metrics });
  for (const [name, definition] of Object.entries(roomDefinitions ?? {}))
    rooms.define(name, definition);
  const addressLimiter = createAddressLimiter(
    config.limits.maxConnectionsPerAddress,
    config.limits.maxConnections,
  );
  const counts: FrameCounts = createFrameCounts();
  // Handshakes per address: reconnecting must not reset the rate limits or churn sessions.
  const handshakeBuckets = new Map<string, TokenBucket>();
  const handshakeAllowed = (address: string): boolean => {
    let bucket = handshakeBuckets.get(address);
    if (bucket === undefined) {
      const rate = config.limits.handshakesPerSecondPerAddress;
      bucket = createTokenBucket({
        ratePerSecond: rate,
        burst: Math.max(1, 2 * rate),
        clock: time,
      });
      handshakeBuckets.set(address, bucket);
    }
    return bucket.take();
  };
  const rejections: Record<string, number> = {};
  const lives = new Map<string, Live>();
  /**
   * Sessions being opened (the auth hook or the store still running): they count against
   * `limits.maxSessions` with the live ones, or concurrent handshakes could together exceed it.
   */
  let reserved = 0;
  const accepted = new Set<Accepted>();
  const startedAt = time.now();
  let status: HealthStatus = 'starting';
  let http: HttpServer | null = null;
  let transports: { name: string; transport: ServerTransport }[] = [];
  let addresses: ServerAddresses | null = null;
  let flushTimer: Timer | null = null;
  let closing: Promise<void> | null = null;

  /** Waits for `promise` (its failure ignored) or `ms`, whichever comes first. */
  const withDeadline = async (promise: Promise<unknown>, ms: number): Promise<void> => {
    let timer: Timer | undefined;
    await Promise.race([
      promise.catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = time.setTimeout(resolve, ms);
      }),
    ]);
    timer?.cancel();
  };

  const reject = (reason: string, error: TickwireError): void => {
    rejections[reason] = (rejections[reason] ?? 0) + 1;
    serverMetrics.rejections.inc(1, { reason });
    emitter.emit('rejected', reason, error);
    logger.debug({ reason, err: error }, 'rejected');
  };

  /** Tells the peer why before it closes (best effort: the connection may be going already). */
  const sendGoodbye = (connection: Connection, code: number, reason: string): void => {
    if (connection.state !== 'open') return;
    try {
      connection.send(encodeGoodbye({ code, reason }), 'reliable');
    } catch {
      // Closing anyway.
    }
  };

  const goodbye = (connection: Connection, code: number, reason: string): void => {
    if (connection.state !== 'open') return;
    sendGoodbye(connection, code, reason);
    connection.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
  };

  const sendOnLink = (live: Live, frame: Uint8Array): void => {
    if (live.link.state !== 'open') return;
    try {
      live.link.send(frame, 'reliable');
    } catch (error) {
      logger.warn({ session: live.id, err: error }, 'send failed');
    }
  };

  const flushCounts = (): void => {
    // Full buckets carry no history: forget them.
    const burst = Math.max(1, 2 * config.limits.handshakesPerSecondPerAddress);
    for (const [address, bucket] of handshakeBuckets)
      if (bucket.tokens >= burst) handshakeBuckets.delete(address);
    const pairs = [
      [counts.messagesIn, serverMetrics.messagesIn],
      [counts.bytesIn, serverMetrics.bytesIn],
      [counts.messagesOut, serverMetrics.messagesOut],
      [counts.bytesOut, serverMetrics.bytesOut],
    ] as const;
    for (const [array, counter] of pairs) {
      for (let opcode = 0; opcode < 256; opcode++) {
        const value = array[opcode]!;
        if (value === 0) continue;
        counter.inc(value, { type: opcodeName(opcode) });
        array[opcode] = 0;
      }
    }
    serverMetrics.sessions.set(lives.size);
    serverMetrics.rooms.set(rooms.rooms().length);
    for (const item of accepted) {
      const stats = item.guarded.stats;
      if (stats.rttMs > 0) serverMetrics.rtt.observe(stats.rttMs, { transport: item.transport });
    }
    const lossByTransport = new Map<string, { sum: number; n: number }>();
    for (const item of accepted) {
      const entry = lossByTransport.get(item.transport) ?? { sum: 0, n: 0 };
      entry.sum += item.guarded.stats.lossRate;
      entry.n++;
      lossByTransport.set(item.transport, entry);
    }
    for (const [transport, { sum, n }] of lossByTransport)
      serverMetrics.loss.set(n === 0 ? 0 : sum / n, { transport });
  };

  // ---- sessions ------------------------------------------------------------------------

  const endLive = (live: Live, code: number, reason: string): void => {
    if (live.ended) return;
    live.ended = true;
    lives.delete(live.id);
    live.timeServer.close();
    void rooms.leave(live.client, false).catch(() => undefined);
    if (live.link.state === 'open') {
      const connection = live.link.transport;
      if (connection !== null) sendGoodbye(connection, code, reason);
      live.link.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
    }
    serverMetrics.sessions.set(lives.size);
    emitter.emit('sessionEnd', live.id, code, reason);
  };

  const dispatch = (live: Live, data: Uint8Array, channel: Channel): void => {
    if (data.byteLength < 2) {
      reject(
        'bad-frame',
        new TickwireError(
          ErrorCode.DECODE_FAILED,
          `frame of ${data.byteLength} bytes from ${live.id}`,
        ),
      );
      sendOnLink(
        live,
        errorFrameOf(
          0,
          new TickwireError(ErrorCode.DECODE_FAILED, 'frame shorter than its 2-byte header'),
        ),
      );
      return;
    }
    const opcode = data[0]!;
    switch (opcode) {
      case Opcode.JoinRoom: {
        let request: ReturnType<typeof decodeJoinRoom>;
        try {
          request = decodeJoinRoom(data);
        } catch (error) {
          const typed = toTickwireError(error, ErrorCode.DECODE_FAILED, 'bad JoinRoom');
          reject('bad-frame', typed);
          sendOnLink(live, errorFrameOf(0, typed));
          return;
        }
        const method = JOIN_METHODS[request.mode];
        rooms[method](request.target, live.client, request.options, {
          seated: (room: Room<unknown>) =>
            sendOnLink(
              live,
              encodeRoomJoined({
                requestId: request.requestId,
                roomId: room.id,
                name: room.name,
                metadata: room.metadata,
              }),
            ),
          // A room message sent during the join, refused once it completed (or dropped with it).
          refused: (error: TickwireError) => {
            reject('invalid-message', error);
            sendOnLink(live, errorFrameOf(0, error));
          },
        }).then(
          () => undefined,
          (error: unknown) => {
            const typed = toTickwireError(error, ErrorCode.INTERNAL, 'join failed');
            if (typed.code === ErrorCode.INTERNAL) logger.error({ err: error }, 'join failed');
            sendOnLink(live, errorFrameOf(request.requestId, typed));
          },
        );
        return;
      }
      case Opcode.LeaveRoom:
        void rooms.leave(live.client, true).catch((error: unknown) => {
          sendOnLink(
            live,
            errorFrameOf(0, toTickwireError(error, ErrorCode.INTERNAL, 'leave failed')),
          );
        });
        return;
      case Opcode.RoomMessage:
        try {
          rooms.receive(live.client, data.subarray(2), channel);
        } catch (error) {
          const typed = toTickwireError(error, ErrorCode.INTERNAL, 'room message failed');
          reject('invalid-message', typed);
          sendOnLink(live, errorFrameOf(0, typed));
        }
        return;
      default:
        if (LAYER_OPCODES.has(opcode)) return;
        {
          const error = new TickwireError(
            ErrorCode.PROTOCOL_ERROR,
            `unexpected frame ${opcodeName(opcode)} from a client`,
            { details: { opcode } },
          );
          reject('unknown-opcode', error);
          sendOnLink(live, errorFrameOf(0, error));
        }
    }
  };

  const makeLive = (record: SessionRecord, userData: unknown): Live => {
    const link = createSessionLink({
      id: record.id,
      role: 'server',
      maxMessageBytes: config.limits.maxMessageBytes,
      maxReplayBytes: config.limits.maxReplayBytes,
      time,
    });
    const client: RoomClient = {
      sessionId: record.id,
      ...(record.userId === undefined ? {} : { userId: record.userId }),
      auth: userData,
      connection: link,
    };
    const live: Live = {
      id: record.id,
      record,
      link,
      client,
      timeServer: serveTimeSync(link),
      connection: null,
      ended: false,
    };
    link.on('message', (data, channel) => dispatch(live, data, channel));
    link.on('detached', (info) => {
      // Replaced by a resume on another connection: the session is not detached.
      if (info.local && info.code === CloseCode.Replaced) return;
      live.connection = null;
      if (!live.ended) sessions.detached(live.id);
    });
    link.on('control', (frame) => {
      if (frame[0] !== Opcode.Goodbye) return;
      // The client is leaving for good: free the seat now rather than after the grace period.
      let code: number = CloseCode.Normal;
      try {
        const given = decodeGoodbye(frame).code;
        checkCloseArgs(given, '');
        code = given;
      } catch {
        // A malformed Goodbye, or a code no connection may close with: leaving anyway.
      }
      void sessions.revoke(live.id).catch(() => undefined);
      endLive(live, code, 'client left');
    });
    link.on('close', (info) => {
      // Closed by the link itself (replay buffer full, a bad acknowledgement): the session
      // cannot continue, so it cannot be resumed either.
      if (info.code === CloseCode.Backpressure || info.code === CloseCode.ProtocolError)
        void sessions.revoke(live.id).catch(() => undefined);
      endLive(live, info.code, info.reason);
    });
    lives.set(record.id, live);
    serverMetrics.sessions.set(lives.size);
    return live;
  };

  /**
   * Sends the Welcome and attaches the connection to the session's link. When the Welcome cannot
   * be encoded or sent (user data too large for a frame, say), the session ends instead of
   * waiting for a client that will never come.
   */
  const welcome = (
    item: Accepted,
    live: Live,
    grant: SessionGrant,
    resume: ResumeKind,
    peerReceived: number,
  ): void => {
    const connection = item.guarded;
    if (connection.state !== 'open') return;
    try {
      connection.send(
        encodeWelcome({
          version: PROTOCOL_VERSION,
          sessionId: live.id,
          token: grant.token,
          received: live.link.counters.received,
          resume,
          tickRateHz: config.tickRateHz,
          graceMs: config.session.graceMs,
          userData: live.client.auth,
        }),
        'reliable',
      );
    } catch (error) {
      const typed = toTickwireError(error, ErrorCode.INTERNAL, 'cannot send Welcome');
      logger.error({ session: live.id, err: typed }, 'cannot send Welcome');
      void sessions.revoke(live.id).catch(() => undefined);
      endLive(live, CloseCode.InternalError, 'cannot send Welcome');
      refuse(item, 'welcome-failed', CloseCode.InternalError, typed);
      return;
    }
    item.phase = 'session';
    item.live = live;
    item.confirmGen = grant.session.gen;
    const previous = live.connection;
    live.link.attach(connection, peerReceived);
    live.connection = item;
    if (previous !== null && previous !== item) {
      // Replaced: what it still delivers while it closes is not the session's any more. Its
      // frames are dropped before its rate limiter, whose verdict would otherwise warn (or, on a
      // flood, revoke and end) the session now on `item`.
      previous.closing = true;
      previous.live = null;
      previous.confirmGen = null;
      goodbye(previous.guarded, CloseCode.Replaced, 'resumed elsewhere');
    }
    sessions.attached(live.id);
    emitter.emit('session', live.id, resume);
  };

  const refuse = (item: Accepted, reason: string, code: number, error: TickwireError): void => {
    item.closing = true;
    reject(reason, error);
    goodbye(item.guarded, code, error.message);
  };

  /** Gives back the slot `item` reserved (once): its handshake ended, with a session or not. */
  const releaseSlot = (item: Accepted): void => {
    if (!item.reserved) return;
    item.reserved = false;
    reserved--;
  };

  /**
   * Takes one of `limits.maxSessions` for `item`'s handshake, or refuses it (ServerFull) and
   * returns false. Taken before the first await, given back when the session is live (it then
   * counts in `lives`) or the handshake failed; a connection that closes meanwhile gives it
   * back at once.
   */
  /** Every place of `limits.maxSessions` is taken by a live session or a pending handshake. */
  const full = (): boolean => lives.size + reserved >= config.limits.maxSessions;

  const takeSlot = (item: Accepted): boolean => {
    if (full()) {
      refuse(
        item,
        'max-sessions',
        CloseCode.ServerFull,
        new TickwireError(ErrorCode.LIMIT_EXCEEDED, 'server is full (session limit)'),
      );
      return false;
    }
    item.reserved = true;
    reserved++;
    return true;
  };

  const openSession = async (item: Accepted, hello: HelloFrame): Promise<void> => {
    if (!takeSlot(item)) return;
    try {
      await authorizeAndOpen(item, hello);
    } finally {
      releaseSlot(item);
    }
  };

  const authorizeAndOpen = async (item: Accepted, hello: HelloFrame): Promise<void> => {
    let result: AuthResult = true;
    if (auth !== undefined) {
      try {
        result = await auth({
          auth: hello.auth,
          remoteAddress: item.address,
          transport: item.transport,
        });
      } catch (error) {
        refuse(
          item,
          'unauthorized',
          CloseCode.Unauthorized,
          toTickwireError(error, ErrorCode.UNAUTHORIZED, 'authentication failed'),
        );
        return;
      }
    }
    if (result === false) {
      refuse(
        item,
        'unauthorized',
        CloseCode.Unauthorized,
        new TickwireError(ErrorCode.UNAUTHORIZED, 'authentication refused'),
      );
      return;
    }
    // Closed or timed out while the hook ran: open nothing (no record to write and revoke).
    if (item.closing || item.guarded.state !== 'open') return;
    const userId = typeof result === 'object' ? result.userId : undefined;
    const userData = typeof result === 'object' ? result.userData : undefined;
    const grant = await sessions.create({
      ...(userId === undefined ? {} : { userId }),
      ...(userData === undefined ? {} : { auth: userData }),
    });
    if (item.guarded.state !== 'open') {
      await sessions.revoke(grant.session.id);
      return;
    }
    const live = makeLive(grant.session, userData);
    welcome(item, live, grant, 'new', 0);
  };

  /** Refuses a resume whose token `verify` or the store refused (UNAUTHORIZED with a reason). */
  const refuseToken = (item: Accepted, error: unknown): void => {
    const typed = toTickwireError(error, ErrorCode.UNAUTHORIZED, 'bad token');
    const why = typed.details?.reason;
    const expired = why === 'expired' || why === 'revoked';
    refuse(
      item,
      `token-${typeof why === 'string' ? why : 'invalid'}`,
      expired ? CloseCode.SessionExpired : CloseCode.Unauthorized,
      typed,
    );
  };

  const resumeSession = async (item: Accepted, hello: HelloFrame): Promise<void> => {
    // A session not live here would be restored (a restart with a shared store): it needs a
    // slot of `limits.maxSessions` like a new one, taken before the store rotates its token.
    // The signature is checked first: a forged token is Unauthorized, even on a full server.
    let sessionId: string;
    try {
      sessionId = signer.verify(hello.token).sid;
    } catch (error) {
      refuseToken(item, error);
      return;
    }
    if (!lives.has(sessionId) && full()) {
      // Full: a session gone from the store (expired, revoked) is told so, as it would be with
      // room, rather than to come back later. A store that cannot answer leaves it ServerFull.
      const record = await sessions.get(sessionId).catch(() => undefined);
      if (record === null) {
        refuseToken(
          item,
          new TickwireError(ErrorCode.UNAUTHORIZED, `session ${sessionId} expired or was revoked`, {
            details: { reason: 'expired', sessionId },
          }),
        );
        return;
      }
    }
    if (!lives.has(sessionId) && !takeSlot(item)) return;
    try {
      await resumeOrRestore(item, hello);
    } finally {
      releaseSlot(item);
    }
  };

  const resumeOrRestore = async (item: Accepted, hello: HelloFrame): Promise<void> => {
    let grant: SessionGrant;
    try {
      grant = await sessions.resume(hello.token);
    } catch (error) {
      refuseToken(item, error);
      return;
    }
    const live = lives.get(grant.session.id);
    // The resume cancelled the grace timer: restart it, but only for a session that has no
    // connection (one still connected elsewhere must not expire under its client).
    const stillDetached = (): void => {
      if (live !== undefined && live.connection === null) sessions.detached(live.id);
    };
    if (item.guarded.state !== 'open') {
      stillDetached();
      return;
    }
    if (live !== undefined && live.link.state === 'open') {
      const { sent, pending } = live.link.counters;
      if (hello.received > sent || hello.received < sent - pending) {
        refuse(
          item,
          'bad-resume',
          CloseCode.ProtocolError,
          new TickwireError(
            ErrorCode.PROTOCOL_ERROR,
            `resume claims ${hello.received} frames received; ${sent - pending}..${sent} possible`,
          ),
        );
        stillDetached();
        return;
      }
      welcome(item, live, grant, 'resumed', hello.received);
      return;
    }
    // The record outlived the process that held the link: a restart with a shared store.
    // (Without a slot only if the session ended here during the resume: check the limit again.)
    if (!item.reserved && !takeSlot(item)) return;
    const restored = makeLive(grant.session, grant.session.auth);
    welcome(item, restored, grant, 'restored', 0);
  };

  const onHello = (item: Accepted, data: Uint8Array): void => {
    item.timer?.cancel();
    item.timer = null;
    if (data[0] !== Opcode.Hello) {
      refuse(
        item,
        'protocol',
        CloseCode.ProtocolError,
        new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          `expected Hello, got ${opcodeName(data[0] ?? 0)}`,
        ),
      );
      return;
    }
    if (!handshakeAllowed(item.address)) {
      refuse(
        item,
        'handshake-rate',
        CloseCode.TryAgainLater,
        new TickwireError(
          ErrorCode.RATE_LIMITED,
          `more than ${config.limits.handshakesPerSecondPerAddress} handshakes per second from ${item.address}`,
        ),
      );
      return;
    }
    let hello: HelloFrame;
    try {
      const version = peekHelloVersion(data);
      if (version !== PROTOCOL_VERSION) {
        refuse(
          item,
          'version',
          CloseCode.VersionMismatch,
          new TickwireError(
            ErrorCode.PROTOCOL_ERROR,
            `protocol version ${version} is not supported; this server speaks ${PROTOCOL_VERSION}`,
          ),
        );
        return;
      }
      hello = decodeHello(data);
    } catch (error) {
      refuse(
        item,
        'bad-frame',
        CloseCode.ProtocolError,
        toTickwireError(error, ErrorCode.DECODE_FAILED, 'bad Hello'),
      );
      return;
    }
    item.phase = 'auth';
    // The auth hook and the store get the handshake timeout too: a hanging one must not hold
    // connections open forever.
    const deadline = time.setTimeout(() => {
      if (item.phase !== 'auth' || item.closing) return;
      refuse(
        item,
        'auth-timeout',
        CloseCode.Timeout,
        new TickwireError(
          ErrorCode.TIMEOUT,
          `authentication took longer than ${config.handshakeTimeoutMs} ms`,
        ),
      );
    }, config.handshakeTimeoutMs);
    const run = hello.token === '' ? openSession(item, hello) : resumeSession(item, hello);
    void run.finally(() => deadline.cancel()).catch(() => undefined);
    run.catch((error: unknown) => {
      const typed = toTickwireError(error, ErrorCode.INTERNAL, 'handshake failed');
      logger.error({ err: typed }, 'handshake failed');
      refuse(item, 'internal', CloseCode.InternalError, typed);
    });
  };

  const accept = (connection: Connection, transportName: string): void => {
    if (status !== 'ok') {
      goodbye(connection, CloseCode.ServiceRestart, 'server is shutting down');
      return;
    }
    const address = normalizeAddress(connection.remoteAddress);
    const verdict = addressLimiter.acquire(address);
    if (verdict !== 'ok') {
      reject(
        verdict === 'address' ? 'address-limit' : 'server-full',
        new TickwireError(ErrorCode.LIMIT_EXCEEDED, `connection limit reached for ${address}`),
      );
      goodbye(
        connection,
        CloseCode.ServerFull,
        verdict === 'address' ? 'too many connections from your address' : 'server is full',
      );
      return;
    }
    const limiter = createConnectionLimiter(config.limits, time);
    let warningsSent = 0;
    let item: Accepted | null = null;
    const guarded = guardConnection(connection, counts, (data, channel) => {
      const current = item!;
      if (current.closing) return 'drop';
      if (current.confirmGen !== null && current.live !== null) {
        // The client speaks on the connection its new token was sent on: it holds that token.
        void sessions.confirm(current.live.id, current.confirmGen).catch(() => undefined);
        current.confirmGen = null;
      }
      const verdict = limiter.allowMessage(data.byteLength);
      if (verdict === 'ok') {
        if (current.phase === 'hello') {
          onHello(current, data);
          return 'drop';
        }
        if (current.phase === 'auth') {
          reject(
            'early-frame',
            new TickwireError(ErrorCode.PROTOCOL_ERROR, 'frame before Welcome'),
          );
          return 'drop';
        }
        return 'deliver';
      }
      const error = new TickwireError(
        ErrorCode.RATE_LIMITED,
        `rate limit of ${config.limits.messagesPerSecond} messages/s or ${config.limits.bytesPerSecond} bytes/s exceeded`,
      );
      if (verdict === 'warn') {
        reject('rate-limit-warning', error);
        // One Error frame per warning, not one per frame within its reaction time (a Batch
        // brings up to 32 frames at once).
        if (current.live !== null && limiter.issued !== warningsSent) {
          warningsSent = limiter.issued;
          sendOnLink(current.live, errorFrameOf(0, error));
        }
        // A reliable frame of a running session is never dropped: both ends count those frames
        // for replay, and one missing would shift every later one. Unreliable ones may go.
        return current.phase === 'session' && channel === 'reliable' ? 'deliver' : 'drop';
      }
      reject('rate-limit', error);
      current.closing = true;
      if (current.live !== null) {
        void sessions.revoke(current.live.id).catch(() => undefined);
        endLive(current.live, CloseCode.RateLimited, 'rate limit exceeded');
      } else goodbye(connection, CloseCode.RateLimited, 'rate limit exceeded');
      return 'drop';
    });
    item = {
      transport: transportName,
      address,
      guarded,
      phase: 'hello',
      live: null,
      timer: null,
      closing: false,
      confirmGen: null,
      reserved: false,
    };
    const entry = item;
    accepted.add(entry);
    serverMetrics.connections.inc(1, { transport: transportName });
    serverMetrics.connectionsTotal.inc(1, { transport: transportName });
    entry.timer = time.setTimeout(() => {
      entry.timer = null;
      if (entry.phase !== 'hello') return;
      refuse(
        entry,
        'handshake-timeout',
        CloseCode.Timeout,
        new TickwireError(ErrorCode.TIMEOUT, `no Hello within ${config.handshakeTimeoutMs} ms`),
      );
    }, config.handshakeTimeoutMs);
    guarded.on('close', (_info: CloseInfo) => {
      entry.timer?.cancel();
      releaseSlot(entry);
      accepted.delete(entry);
      addressLimiter.release(address);
      guarded.release();
      serverMetrics.connections.dec(1, { transport: transportName });
    });
  };

  const listenTransport = async (name: string, transport: ServerTransport) => {
    transport.on('connection', (connection) => accept(connection, name));
    transport.on('error', (error) =>
      logger.debug({ transport: name, err: error }, 'transport error'),
    );
    const address = await transport.listen();
    transports.push({ name, transport });
    return address;
  };

  const server: TickwireServer = {
    ...subscribable(emitter),
    config,
    rooms,
    sessions,
    metrics,
    logger,
    async listen() {
      if (addresses !== null || http !== null)
        throw new TickwireError(ErrorCode.INVALID_STATE, 'listen() was already called');
      const handler = createHttpHandler({
        ...(config.http.health
          ? {
              health: () => ({
                status,
                uptimeMs: time.now() - startedAt,
                connections: accepted.size,
                rooms: rooms.rooms().length,
                sessions: lives.size,
              }),
            }
          : {}),
        ...(config.http.metrics
          ? {
              metrics: () => {
                flushCounts();
                return metrics.text();
              },
              metricsContentType: metrics.contentType,
            }
          : {}),
        ...(config.http.debug ? { debug: () => debugReport() } : {}),
        ...(requestHandler === undefined ? {} : { fallback: requestHandler }),
        logger,
      });
      // A client that drips its request line or headers, or never finishes a request, is cut
      // off like a transport peer that sends no Hello: Node's defaults (60 s for the headers,
      // checked every 30 s) would let slow clients hold sockets for a minute or more.
      const httpServer = createHttpServer(
        {
          headersTimeout: config.handshakeTimeoutMs,
          requestTimeout: config.handshakeTimeoutMs,
          connectionsCheckingInterval: Math.max(100, Math.min(1000, config.handshakeTimeoutMs)),
        },
        handler,
      );
      http = httpServer;
      const found: Record<string, TransportAddress> = {};
      const transportLimits = {
        maxMessageBytes: config.limits.maxMessageBytes,
        maxConnections: config.limits.maxConnections,
      };
      // A socket that has not finished the transport handshake (TCP hello, verified WebSocket
      // upgrade) gets the same time as the Tickwire Hello, not the transports' own 5 s default,
      // and counts toward the per-address limit there (the address limiter takes over once the
      // transport hands the connection to `accept`).
      const handshakeLimits = {
        handshakeTimeoutMs: config.handshakeTimeoutMs,
        maxHandshakesPerAddress: config.limits.maxConnectionsPerAddress,
      };
      if (config.transports.ws !== false) {
        const ws = createWsServer({
          server: httpServer,
          // Its sockets count from connect until their first request, and are dropped when
          // they send none within the handshake timeout (Node's timeouts start at a request).
          limitIdleSockets: true,
          ...transportLimits,
          ...handshakeLimits,
          ...(config.transports.ws.path === undefined ? {} : { path: config.transports.ws.path }),
          ...(config.allowedOrigins === undefined ? {} : { allowedOrigins: config.allowedOrigins }),
        });
        ws.on('connection', (connection) => accept(connection, 'ws'));
        ws.on('error', (error) => logger.debug({ transport: 'ws', err: error }, 'transport error'));
        transports.push({ name: 'ws', transport: ws });
      }
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', (error: NodeJS.ErrnoException) =>
          reject(
            new TickwireError(
              error.code === 'EADDRINUSE' ? ErrorCode.ADDRESS_IN_USE : ErrorCode.INTERNAL,
              `cannot listen on ${config.host}:${config.port}: ${error.message}`,
              { cause: error },
            ),
          ),
        );
        httpServer.listen(config.port, config.host, () => resolve());
      });
      const bound = httpServer.address();
      const port = typeof bound === 'object' && bound !== null ? bound.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      const httpUrl = `http://${host}:${port}`;
      const ws = transports.find((entry) => entry.name === 'ws');
      if (ws !== undefined) {
        const wsAddress = await ws.transport.listen();
        found.ws = {
          ...wsAddress,
          url: `ws://${host}:${port}${config.transports.ws === false ? '' : (config.transports.ws.path ?? '')}`,
        };
      }
      if (config.transports.tcp !== false)
        found.tcp = await listenTransport(
          'tcp',
          createTcpServer({
            host: config.host,
            port: config.transports.tcp.port,
            ...transportLimits,
            ...handshakeLimits,
          }),
        );
      if (config.transports.udp !== false)
        found.udp = await listenTransport(
          'udp',
          createUdpServer({
            host: config.host,
            port: config.transports.udp.port,
            ...transportLimits,
          }),
        );
      for (const extra of extraTransports)
        found[extra.name] = await listenTransport(extra.name, extra.transport);
      addresses = { http: httpUrl, transports: found };
      status = 'ok';
      flushTimer = time.setInterval(flushCounts, 1000);
      logger.info(
        {
          http: httpUrl,
          transports: Object.fromEntries(Object.entries(found).map(([k, v]) => [k, v.url])),
        },
        'tickwire server listening',
      );
      return addresses;
    },
    addresses: () => addresses,
    stats() {
      let detached = 0;
      for (const live of lives.values()) if (live.connection === null) detached++;
      return {
        status,
        connections: accepted.size,
        sessions: lives.size,
        detachedSessions: detached,
        rooms: rooms.rooms().length,
        rejections: { ...rejections },
      };
    },
    async kick(sessionId, reason = 'kicked', code = CloseCode.Kicked) {
      checkCloseArgs(code, '');
      const live = lives.get(sessionId);
      if (live === undefined) return false;
      await sessions.revoke(sessionId).catch(() => undefined);
      endLive(live, code, reason);
      return true;
    },
    close() {
      if (closing !== null) return closing;
      closing = (async () => {
        status = 'draining';
        flushTimer?.cancel();
        // Tell every client first: they reconnect and resume (elsewhere, or here after a restart).
        for (const item of accepted)
          goodbye(item.guarded, CloseCode.ServiceRestart, 'server restarting');
        sessions.close();
        for (const live of lives.values()) {
          live.ended = true;
          live.timeServer.close();
        }
        lives.clear();
        await withDeadline(rooms.close(), config.shutdownTimeoutMs);
        await withDeadline(
          Promise.all(
            transports.map(({ transport }) =>
              transport.close(CloseCode.ServiceRestart, 'server restarting').catch(() => undefined),
            ),
          ),
          config.shutdownTimeoutMs,
        );
        if (http !== null) {
          const current = http;
          await new Promise<void>((resolve) => {
            current.close(() => resolve());
            current.closeAllConnections?.();
          });
        }
        transports = [];
        addresses = null;
        flushCounts();
      })();
      return closing;
    },
  };

  function debugReport() {
    return {
      status,
      uptimeMs: time.now() - startedAt,
      rooms: rooms.list(),
      sessions: [...lives.values()].map((live) => ({
        id: live.id,
        userId: live.record.userId,
        connected: live.connection !== null,
        transport: live.connection?.guarded.id,
        remoteAddress: live.connection?.guarded.remoteAddress,
        link: live.link.counters,
        stats: live.link.stats,
      })),
      connections: accepted.size,
      rejections,
    };
  }

  rooms.on('left', (client: RoomClient, room: Room<unknown>, code: number, reason: string) => {
    const live = lives.get(client.sessionId);
    if (live === undefined || live.ended) return;
    // A game's kick reason may be longer than the frame takes: cut it rather than tell nothing.
    sendOnLink(
      live,
      encodeRoomLeft({ roomId: room.id, code, reason: truncateUtf8(reason, FrameLimits.reason) }),
    );
  });
  rooms.on('created', (room: Room<unknown>) => {
    setPhaseTimer(room, {
      time,
      record: (phase, ms) => serverMetrics.tickDuration.observe(ms, { phase }),
    });
  });
  sessions.on('moved', (sessionId: string) => {
    // Resumed by another process sharing the store: free the seat here, keep the record.
    const live = lives.get(sessionId);
    if (live !== undefined && live.connection === null)
      endLive(live, CloseCode.Replaced, 'resumed on another server');
  });
  sessions.on('expired', (sessionId: string) => {
    const live = lives.get(sessionId);
    if (live !== undefined)
      endLive(live, CloseCode.SessionExpired, 'reconnection grace period over');
  });
  return server;
}
