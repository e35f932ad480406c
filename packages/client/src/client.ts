import {
  type ClientTransport,
  CloseCode,
  type CloseInfo,
  type Connection,
  type ConnectionStats,
  checkCloseArgs,
  createConnectionStats,
  Emitter,
  ErrorCode,
  type Logger,
  Opcode,
  PROTOCOL_VERSION,
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
import { createReplica, type Replica } from '@tickwire/replication';
import {
  createSessionLink,
  decodeError,
  decodeGoodbye,
  decodeRoomJoined,
  decodeRoomLeft,
  decodeWelcome,
  encodeGoodbye,
  encodeHello,
  encodeJoinRoom,
  encodeLeaveRoom,
  JoinMode,
  type ResumeKind,
  type SessionLink,
  type WelcomeFrame,
} from '@tickwire/rooms/protocol';
import type { MessageDefinitions } from '@tickwire/serialization';
import {
  type TimeSyncClient,
  type TimeSyncConnectionOptions,
  timeSyncOverConnection,
} from '@tickwire/timesync';
import { type BackoffOptions, createBackoff } from './backoff.js';
import {
  type ClientRoom,
  type ClientRoomOptions,
  createClientRoom,
  type RoomHandle,
} from './room.js';

/** Where the client can connect; tried in order (the first that works is used). */
export interface Endpoint {
  /** e.g. `ws://127.0.0.1:4000`, `tcp://127.0.0.1:4001`, `udp://127.0.0.1:4002`. */
  url: string;
  /** The transport that reaches it (`createBrowserWsClient()`, `createWsClient()`, `createUdpClient()`…). */
  transport: ClientTransport;
}

/** Reconnection after the connection drops; see {@link BackoffOptions}. */
export interface ReconnectOptions extends BackoffOptions {
  /**
   * Give up after this many attempts. Attempts also stop when the server's grace period
   * (sent at connect) is over: the session is gone by then.
   * @default Infinity
   */
  maxAttempts?: number;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Endpoints in order of preference; a failing one falls back to the next. */
  endpoints: readonly Endpoint[];
  /** Sent with every new session to the server's auth hook (any JSON value). */
  auth?: unknown;
  /** Per endpoint: connecting plus the handshake must finish within this many ms. @default 5000 */
  connectTimeoutMs?: number;
  /** Join and leave requests fail with TIMEOUT after this many ms. @default 10000 */
  requestTimeoutMs?: number;
  /** `false` turns reconnection off. @default {} (on, with the defaults) */
  reconnect?: false | ReconnectOptions;
  /** Clock sync over the session; `false` turns it off. @default {} */
  timesync?: false | TimeSyncConnectionOptions;
  /** Largest message the client sends. @default 65536 */
  maxMessageBytes?: number;
  /** Unacknowledged reliable bytes kept for replay after a reconnect. @default 1048576 */
  maxReplayBytes?: number;
  /** How often the client tells the server what it received. @default 1000 */
  ackIntervalMs?: number;
  /**
   * A snapshot acknowledgement waits up to this many ms for the client's next frame (its
   * input, typically) and travels with it in one message, as Quake's inputs carry the ack:
   * the server reads one message instead of two. 0 sends each ack at once. A longer wait than
   * the default makes the server's baseline a snapshot older.
   * @default what is left before the ack would reach the server after the first snapshot it
   *   can change, less the path's jitter (taken as an eighth of the RTT) and 5 ms (at 20 Hz:
   *   39 ms at a 5 ms RTT, 27 ms at 60 ms, 0 at 44–55 ms); half the tick interval while the
   *   RTT is unknown
   */
  snapshotAckDelayMs?: number;
  /** @default systemTime */
  time?: TimeSource;
  /** Jitter of the backoff. @default systemRandom */
  random?: Random;
  /** @default silentLogger */
  logger?: Logger;
}

/** Lifecycle of a {@link Client}. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the server said when the session opened or resumed. */
export interface SessionInfo {
  sessionId: string;
  /** What the server's auth hook returned for this client. */
  userData: unknown;
  resume: ResumeKind;
  /** The endpoint in use. */
  url: string;
  tickRateHz: number;
  graceMs: number;
}

/** Events of a {@link Client}. */
export type ClientEvents = {
  state: [state: ClientState];
  /** The session opened, resumed or was restored (after a server restart). */
  open: [info: SessionInfo];
  /** The connection dropped; reconnection starts unless it is off. */
  disconnected: [info: CloseInfo];
  /** A reconnection attempt starts after `delayMs`. */
  reconnecting: [attempt: number, delayMs: number];
  /** The client is closed for good; `error` says why when it was not `close()`. */
  close: [info: CloseInfo, error: TickwireError | undefined];
  /** Something went wrong and the client carried on (an Error frame from the server…). */
  error: [error: TickwireError];
};

/** Figures of the session. */
export interface ClientStats {
  /** Of the transport connection in use (zero while disconnected). */
  connection: Readonly<ConnectionStats>;
  /** Reliable frames sent again after reconnections. */
  replayed: number;
  /** Transport connections made, the first included. */
  connections: number;
  /** Reconnection attempts that failed. */
  failedAttempts: number;
}

/**
 * A request to enter a room: `target` is a room name (a room id for `joinById`), `options` go to
 * the room's hooks (JSON), `roomOptions` say how to read the room (message registries, replicated
 * types). Rejects with the server's error code: NOT_FOUND, LIMIT_EXCEEDED (full), FORBIDDEN,
 * VALIDATION_FAILED, CONFLICT (already in a room), TIMEOUT.
 */
export type JoinRequest = <C extends MessageDefinitions, S extends MessageDefinitions>(
  target: string,
  options?: unknown,
  roomOptions?: ClientRoomOptions<C, S>,
) => Promise<ClientRoom<C, S>>;

/** The client engine: a session with the server that survives reconnection, and a room. */
export interface Client extends Subscribable<ClientEvents> {
  readonly state: ClientState;
  /** The session, or null before the first connect. */
  readonly session: SessionInfo | null;
  /** Clock sync with the server (null before connecting or with `timesync: false`). */
  readonly time: TimeSyncClient | null;
  /** The room the client is in, or null. */
  readonly room: ClientRoom<MessageDefinitions, MessageDefinitions> | null;
  /**
   * Connects to the first endpoint that works and opens a session. Rejects with
   * UNAUTHORIZED (the auth hook refused), PROTOCOL_ERROR (another protocol version),
   * LIMIT_EXCEEDED (every endpoint full: a full one passes on to the next) or CONNECT_FAILED (no
   * endpoint reachable, each one's error in `details.attempts`).
   */
  connect(): Promise<SessionInfo>;
  /** Joins a room of that name with a free seat (NOT_FOUND when there is none). */
  join: JoinRequest;
  /** Creates a room of that name. */
  create: JoinRequest;
  /** Joins a room of that name with a free seat, or creates one. */
  joinOrCreate: JoinRequest;
  /** Joins the room with that id. */
  joinById: JoinRequest;
  stats(): ClientStats;
  /**
   * Ends the session and closes; idempotent. While connected the server frees the seat at once;
   * while reconnecting it cannot be told, and frees the seat when the grace period ends. Throws
   * INVALID_ARGUMENT for a code a connection may not close with (see `checkCloseArgs`).
   */
  close(code?: number, reason?: string): void;
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CODES: ReadonlySet<number> = new Set([
  CloseCode.Normal,
  CloseCode.VersionMismatch,
  CloseCode.Unauthorized,
  CloseCode.Kicked,
  CloseCode.Banned,
  CloseCode.RateLimited,
  CloseCode.Replaced,
  CloseCode.SessionExpired,
  CloseCode.PolicyViolation,
]);

/** The error code of each close code that is no mere CONNECTION_CLOSED. */
const CLOSE_ERRORS: ReadonlyMap<number, ErrorCode> = /* @__PURE__ */ new Map([
  [CloseCode.VersionMismatch, ErrorCode.PROTOCOL_ERROR],
  [CloseCode.Unauthorized, ErrorCode.UNAUTHORIZED],
  [CloseCode.SessionExpired, ErrorCode.SESSION_EXPIRED],
  [CloseCode.ServerFull, ErrorCode.LIMIT_EXCEEDED],
  [CloseCode.Kicked, ErrorCode.FORBIDDEN],
  [CloseCode.Banned, ErrorCode.FORBIDDEN],
  [CloseCode.PolicyViolation, ErrorCode.FORBIDDEN],
  [CloseCode.RateLimited, ErrorCode.RATE_LIMITED],
  [CloseCode.Replaced, ErrorCode.CONFLICT],
  [CloseCode.MessageTooLarge, ErrorCode.MESSAGE_TOO_LARGE],
  [CloseCode.ProtocolError, ErrorCode.PROTOCOL_ERROR],
]);

/** What a snapshot ack keeps of its slack besides the RTT's jitter (the server's tick jitter). */
const ACK_MARGIN_MS = 5;
/** The jitter assumed of a path: this share of its RTT. */
const ACK_JITTER_SHARE = 1 / 8;

/**
 * How long a snapshot ack may wait for the client's next frame (0: none) at a snapshot
 * interval and an RTT (0: unknown, then half the interval). Sent at once, the ack of a snapshot
 * reaches the server one RTT after the snapshot left it, ahead of the snapshot ⌈RTT /
 * interval⌉ intervals later, the first it can change; waiting the slack before that snapshot,
 * less the path's jitter and a margin, changes no baseline, so it costs no bytes. Just past a
 * snapshot, where jitter may still carry an ack sent at once ahead of the earlier one, it does
 * not wait.
 */
export function snapshotAckDelay(intervalMs: number, rttMs: number): number {
  if (!(rttMs > 0)) return Math.floor(intervalMs / 2);
  if (!Number.isFinite(rttMs)) return 0;
  const jitterMs = rttMs * ACK_JITTER_SHARE;
  // The 1e-9 keeps an RTT of exactly k intervals at k despite rounding (1000 / 144 · 3…).
  const slackMs = Math.ceil(rttMs / intervalMs - 1e-9) * intervalMs - rttMs;
  if (rttMs > intervalMs && slackMs > intervalMs - jitterMs) return 0;
  return Math.max(0, Math.floor(slackMs - jitterMs - ACK_MARGIN_MS));
}

/** The typed error a close code stands for. */
export function errorOfClose(info: CloseInfo): TickwireError {
  return new TickwireError(
    CLOSE_ERRORS.get(info.code) ?? ErrorCode.CONNECTION_CLOSED,
    `server closed the connection: ${info.code}${info.reason ? ` ${info.reason}` : ''}`,
    { details: { closeCode: info.code, reason: info.reason } },
  );
}

interface PendingRequest {
  readonly resolve: (room: ClientRoom<MessageDefinitions, MessageDefinitions>) => void;
  readonly reject: (error: TickwireError) => void;
  readonly roomOptions: ClientRoomOptions<MessageDefinitions, MessageDefinitions>;
  /** The room's replica (with `roomOptions.replication`), made before the request is sent. */
  readonly replica: Replica | null;
  readonly cancel: () => void;
}

const closedError = (): TickwireError =>
  new TickwireError(ErrorCode.CONNECTION_CLOSED, 'client closed');

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be a positive integer, got ${value}`,
    );
  return value;
}

/** Creates a client; nothing happens until `connect()`. */
export function createClient(options: ClientOptions): Client {
  if (!Array.isArray(options?.endpoints) || options.endpoints.length === 0)
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'endpoints must list at least one endpoint',
    );
  for (const [i, endpoint] of options.endpoints.entries()) {
    if (typeof endpoint?.url !== 'string' || typeof endpoint.transport?.connect !== 'function')
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `endpoints[${i}] must be { url: string, transport: ClientTransport }`,
      );
  }
  const time = options.time ?? systemTime;
  const logger = options.logger ?? silentLogger;
  const connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs ?? 5000);
  const requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs ?? 10_000);
  const maxMessageBytes = positive('maxMessageBytes', options.maxMessageBytes ?? 65_536);
  // Checked here, not at the first Welcome, where they would fail the handshake as unreachable.
  if (options.maxReplayBytes !== undefined) positive('maxReplayBytes', options.maxReplayBytes);
  if (options.ackIntervalMs !== undefined) positive('ackIntervalMs', options.ackIntervalMs);
  const { snapshotAckDelayMs } = options;
  if (
    snapshotAckDelayMs !== undefined &&
    !(Number.isInteger(snapshotAckDelayMs) && snapshotAckDelayMs >= 0)
  )
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `snapshotAckDelayMs must be an integer >= 0, got ${snapshotAckDelayMs}`,
    );
  const reconnect = options.reconnect === false ? null : (options.reconnect ?? {});
  const backoff = reconnect && createBackoff(reconnect, options.random ?? systemRandom);
  const maxAttempts = reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY;
  if (
    !(
      maxAttempts === Number.POSITIVE_INFINITY ||
      (Number.isInteger(maxAttempts) && maxAttempts >= 0)
    )
  )
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `reconnect.maxAttempts must be an integer >= 0 or Infinity, got ${maxAttempts}`,
    );

  const emitter = new Emitter<ClientEvents>();
  let state: ClientState = 'idle';
  let session: SessionInfo | null = null;
  let token = '';
  let link: SessionLink | null = null;
  let linkOff: (() => void) | null = null;
  let timesync: TimeSyncClient | null = null;
  let room: ClientRoom<MessageDefinitions, MessageDefinitions> | null = null;
  let roomHandle: RoomHandle | null = null;
  let preferred = 0;
  let nextRequestId = 1;
  let connections = 0;
  let failedAttempts = 0;
  let lastGoodbye: CloseInfo | null = null;
  let retryTimer: { cancel(): void } | null = null;
  /** Aborts the connect or fails the handshake in progress, so `close()` keeps the client closed. */
  let abortHandshake: ((error: TickwireError) => void) | null = null;
  const requests = new Map<number, PendingRequest>();

  const setState = (next: ClientState): void => {
    if (state === next) return;
    state = next;
    emitter.emit('state', next);
  };

  /** Removes a pending request and cancels its timer. */
  const takeRequest = (id: number): PendingRequest | undefined => {
    const request = requests.get(id);
    if (request !== undefined) {
      requests.delete(id);
      request.cancel();
    }
    return request;
  };

  const failRequests = (error: TickwireError): void => {
    for (const [id] of requests) takeRequest(id)!.reject(error);
  };

  /** Whether reconnecting cannot help after this error. */
  const isFinal = (error: TickwireError): boolean =>
    error.code === ErrorCode.PROTOCOL_ERROR || FINAL_CODES.has(error.details?.closeCode as number);

  const leaveRoom = (code: number, reason: string): void => {
    const handle = roomHandle;
    room = null;
    roomHandle = null;
    handle?.left(code, reason);
  };

  const finish = (info: CloseInfo, error: TickwireError | undefined): void => {
    if (state === 'closed') return;
    retryTimer?.cancel();
    retryTimer = null;
    setState('closed');
    abortHandshake?.(closedError());
    const current = link;
    linkOff?.();
    linkOff = null;
    link = null;
    timesync?.close();
    timesync = null;
    if (current !== null && current.state === 'open') current.close(CloseCode.Normal, '');
    failRequests(error ?? closedError());
    leaveRoom(info.code, info.reason);
    emitter.emit('close', info, error);
  };

  const onSessionFrame = (data: Uint8Array, channel: 'reliable' | 'unreliable'): void => {
    try {
      switch (data[0]) {
        case Opcode.RoomJoined: {
          const joined = decodeRoomJoined(data);
          const request = takeRequest(joined.requestId);
          // A request that timed out: its seat was given back then.
          if (request === undefined) return;
          const { room: created, handle } = createClientRoom(
            joined,
            link!,
            request.roomOptions,
            request.replica,
            requestTimeoutMs,
            time,
          );
          room = created;
          roomHandle = handle;
          request.resolve(created);
          return;
        }
        case Opcode.RoomLeft: {
          const left = decodeRoomLeft(data);
          if (room !== null && room.id === left.roomId) leaveRoom(left.code, left.reason);
          return;
        }
        case Opcode.RoomMessage:
          roomHandle?.receive(data, channel);
          return;
        case Opcode.Error: {
          const frame = decodeError(data);
          const error = new TickwireError(
            (Object.values(ErrorCode) as string[]).includes(frame.code)
              ? (frame.code as ErrorCode)
              : ErrorCode.INTERNAL,
            `server: ${frame.message}`,
            { details: { requestId: frame.requestId } },
          );
          const request = takeRequest(frame.requestId);
          if (request !== undefined) request.reject(error);
          else if (roomHandle !== null) roomHandle.error(error);
          else emitter.emit('error', error);
          return;
        }
        default:
          return; // snapshots, rpc, time: their own listeners on the link
      }
    } catch (error) {
      emitter.emit('error', toTickwireError(error, ErrorCode.DECODE_FAILED, 'bad frame'));
    }
  };

  const adoptLink = (welcome: WelcomeFrame, connection: Connection): void => {
    linkOff?.();
    timesync?.close();
    const intervalMs = 1000 / Math.max(1, welcome.tickRateHz);
    // The RTT is read at most once a second (clock sync's figure is a pass over its window).
    let rttMs = 0;
    let rttReadAt = Number.NEGATIVE_INFINITY;
    const ackDelayMs = (): number => {
      const now = time.now();
      if (now - rttReadAt >= 1000) {
        rttReadAt = now;
        rttMs = next.stats.rttMs > 0 ? next.stats.rttMs : (timesync?.stats().rttMeanMs ?? 0);
      }
      return snapshotAckDelay(intervalMs, rttMs);
    };
    const next = createSessionLink({
      id: welcome.sessionId,
      role: 'client',
      maxMessageBytes: Math.min(maxMessageBytes, connection.maxMessageBytes),
      ...(options.maxReplayBytes === undefined ? {} : { maxReplayBytes: options.maxReplayBytes }),
      ...(options.ackIntervalMs === undefined ? {} : { ackIntervalMs: options.ackIntervalMs }),
      ...(snapshotAckDelayMs === 0
        ? {}
        : { lazyOpcodes: [Opcode.SnapshotAck], lazyDelayMs: snapshotAckDelayMs ?? ackDelayMs }),
      time,
    });
    const offMessage = next.on('message', onSessionFrame);
    const offDetached = next.on('detached', (info) => onDetached(info));
    const offControl = next.on('control', (frame) => {
      if (frame[0] !== Opcode.Goodbye) return;
      try {
        const goodbye = decodeGoodbye(frame);
        lastGoodbye = { code: goodbye.code, reason: goodbye.reason, local: false };
      } catch {
        // A malformed goodbye: the close code of the transport tells the rest.
      }
    });
    const offClose = next.on('close', (info) => {
      if (link === next) finish(info, errorOfClose(info));
    });
    linkOff = () => {
      offMessage();
      offDetached();
      offControl();
      offClose();
    };
    link = next;
    next.attach(connection, welcome.received);
    timesync =
      options.timesync === false
        ? null
        : timeSyncOverConnection(next, {
            time,
            tickRateHz: welcome.tickRateHz,
            ...(options.timesync ?? {}),
          });
  };

  /** Runs synchronously on the Welcome, so frames right behind it reach the link. */
  const onWelcome = (welcome: WelcomeFrame, connection: Connection, url: string): void => {
    connections++;
    lastGoodbye = null;
    if (welcome.resume === 'resumed' && link !== null && link.state === 'open') {
      link.attach(connection, welcome.received);
    } else {
      if (welcome.resume === 'restored' || link !== null) {
        // The server lost the link (it restarted): the session continues, the room is gone.
        failRequests(new TickwireError(ErrorCode.CONNECTION_CLOSED, 'server restarted'));
        leaveRoom(CloseCode.ServiceRestart, 'server restarted');
      }
      adoptLink(welcome, connection);
    }
    token = welcome.token;
    session = {
      sessionId: welcome.sessionId,
      userData: welcome.userData,
      resume: welcome.resume,
      url,
      tickRateHz: welcome.tickRateHz,
      graceMs: welcome.graceMs,
    };
    setState('open');
    emitter.emit('open', session);
  };

  /** Connects to one endpoint and completes the handshake. */
  const handshake = async (index: number): Promise<SessionInfo> => {
    const endpoint = options.endpoints[index]!;
    // One deadline for connecting and the Welcome.
    const deadline = time.now() + connectTimeoutMs;
    // `close()` aborts the transport connect; once connected, it fails the handshake (below).
    const controller = new AbortController();
    abortHandshake = () => controller.abort();
    const connection = await endpoint.transport.connect(endpoint.url, {
      timeoutMs: connectTimeoutMs,
      signal: controller.signal,
    });
    if (state === 'closed') {
      connection.close(CloseCode.Normal, '');
      throw closedError();
    }
    return new Promise<SessionInfo>((resolve, reject) => {
      let goodbye: CloseInfo | null = null;
      const cleanup = () => {
        abortHandshake = null;
        timer.cancel();
        offMessage();
        offClose();
      };
      const fail = (error: TickwireError) => {
        cleanup();
        if (connection.state === 'open') connection.close(CloseCode.Normal, '');
        reject(error);
      };
      const timer = time.setTimeout(
        () =>
          fail(
            new TickwireError(
              ErrorCode.TIMEOUT,
              `no Welcome from ${endpoint.url} within ${connectTimeoutMs} ms`,
            ),
          ),
        Math.max(0, deadline - time.now()),
      );
      const offMessage = connection.on('message', (data) => {
        try {
          if (data[0] === Opcode.Goodbye) {
            const frame = decodeGoodbye(data);
            goodbye = { code: frame.code, reason: frame.reason, local: false };
            return;
          }
          if (data[0] !== Opcode.Welcome)
            throw new TickwireError(
              ErrorCode.PROTOCOL_ERROR,
              `expected Welcome from ${endpoint.url}, got opcode ${data[0]}`,
            );
          const welcome = decodeWelcome(data);
          if (welcome.version !== PROTOCOL_VERSION)
            throw new TickwireError(
              ErrorCode.PROTOCOL_ERROR,
              `server speaks protocol version ${welcome.version}, this client ${PROTOCOL_VERSION}`,
            );
          cleanup();
          // An 'open' listener may close the client: `finish` rejects then.
          abortHandshake = reject;
          onWelcome(welcome, connection, endpoint.url);
          abortHandshake = null;
          preferred = index;
          resolve(session!);
        } catch (error) {
          fail(toTickwireError(error, ErrorCode.PROTOCOL_ERROR, 'bad Welcome'));
        }
      });
      const offClose = connection.on('close', (info) => {
        cleanup();
        reject(errorOfClose(goodbye ?? info));
      });
      abortHandshake = fail;
      try {
        connection.send(
          encodeHello({
            version: PROTOCOL_VERSION,
            token,
            received: link?.counters.received ?? 0,
            auth: token === '' ? options.auth : undefined,
          }),
          'reliable',
        );
      } catch (error) {
        fail(toTickwireError(error, ErrorCode.CONNECT_FAILED, 'could not send Hello'));
      }
    });
  };

  /** Tries every endpoint once, the preferred one first. */
  const connectOnce = async (): Promise<SessionInfo> => {
    const attempts: { url: string; code: string; message: string }[] = [];
    const count = options.endpoints.length;
    for (let i = 0; i < count; i++) {
      const index = (preferred + i) % count;
      try {
        return await handshake(index);
      } catch (error) {
        const typed = toTickwireError(error, ErrorCode.CONNECT_FAILED, 'connect failed');
        // Closed meanwhile: a connect aborted by `close()` fails with the transport's own error.
        if (state === 'closed') throw closedError();
        if (isFinal(typed)) throw typed;
        attempts.push({
          url: options.endpoints[index]!.url,
          code: typed.code,
          message: typed.message,
        });
        logger.debug(
          { url: options.endpoints[index]!.url, error: typed.message },
          'endpoint failed',
        );
      }
    }
    // Every endpoint failing the same way (server full, timeout) is reported as that.
    const codes = new Set(attempts.map((a) => a.code));
    throw new TickwireError(
      codes.size === 1 ? ([...codes][0] as ErrorCode) : ErrorCode.CONNECT_FAILED,
      `no endpoint reachable: ${attempts.map((a) => `${a.url} (${a.message})`).join('; ')}`,
      { details: { attempts } },
    );
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      // Left set once fired: `finish` cancelling a fired timer does nothing.
      retryTimer = time.setTimeout(resolve, ms);
    });

  const reconnectLoop = async (dropped: CloseInfo): Promise<void> => {
    const deadline = time.now() + (session?.graceMs ?? 0);
    for (let attempt = 0; ; attempt++) {
      if (state !== 'reconnecting') return;
      if (attempt >= maxAttempts || time.now() >= deadline) {
        finish(
          dropped,
          new TickwireError(
            ErrorCode.SESSION_EXPIRED,
            `could not reconnect within ${attempt >= maxAttempts ? `${maxAttempts} attempts` : `the ${session?.graceMs} ms grace period`}`,
            { details: { attempts: attempt } },
          ),
        );
        return;
      }
      const delay = Math.min(backoff!.delayMs(attempt), Math.max(0, deadline - time.now()));
      emitter.emit('reconnecting', attempt + 1, delay);
      // A listener may have closed the client: arm no timer then.
      if (state !== 'reconnecting') return;
      await sleep(delay);
      if (state !== 'reconnecting') return;
      try {
        await connectOnce();
        return;
      } catch (error) {
        // Closed meanwhile (an 'open' listener, close() during the connect): nothing failed.
        if ((state as ClientState) === 'closed') return;
        failedAttempts++;
        const typed = toTickwireError(error, ErrorCode.CONNECT_FAILED, 'reconnect failed');
        const closeCode = typed.details?.closeCode;
        if (isFinal(typed)) {
          // An unknown or expired token: the server dropped the session.
          const final =
            closeCode === CloseCode.Unauthorized
              ? new TickwireError(ErrorCode.SESSION_EXPIRED, typed.message, {
                  details: typed.details ?? {},
                })
              : typed;
          finish(
            {
              code: (closeCode as number) ?? CloseCode.ProtocolError,
              reason: typed.message,
              local: false,
            },
            final,
          );
          return;
        }
      }
    }
  };

  const onDetached = (info: CloseInfo): void => {
    if (state !== 'open') return;
    const effective = lastGoodbye ?? info;
    if (reconnect === null || FINAL_CODES.has(effective.code)) {
      finish(effective, errorOfClose(effective));
      return;
    }
    setState('reconnecting');
    // A 'state' listener may have closed the client: nothing follows its 'close'.
    if ((state as ClientState) !== 'reconnecting') return;
    emitter.emit('disconnected', effective);
    void reconnectLoop(effective);
  };

  const request = <C extends MessageDefinitions, S extends MessageDefinitions>(
    mode: JoinMode,
    target: string,
    joinOptions: unknown,
    roomOptions: ClientRoomOptions<C, S> = {},
  ): Promise<ClientRoom<C, S>> => {
    if (state !== 'open' && state !== 'reconnecting')
      return Promise.reject(
        new TickwireError(ErrorCode.INVALID_STATE, `cannot join a room while ${state}`),
      );
    if (room !== null || requests.size > 0)
      return Promise.reject(
        new TickwireError(
          ErrorCode.CONFLICT,
          room !== null
            ? `already in room ${room.id}: leave it first`
            : 'a join request is already pending',
        ),
      );
    const requestId = nextRequestId++;
    let frame: Uint8Array;
    let replica: Replica | null;
    try {
      frame = encodeJoinRoom({ requestId, mode, target, options: joinOptions });
      // Made now, so that bad replication options fail the request before a seat is taken.
      replica = roomOptions.replication ? createReplica(roomOptions.replication) : null;
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<ClientRoom<C, S>>((resolve, reject) => {
      const timer = time.setTimeout(() => {
        requests.delete(requestId);
        // The server may seat us yet: give the seat back before any retry's JoinRoom.
        try {
          link!.send(encodeLeaveRoom(), 'reliable');
        } catch {
          // The link is closed: no seat to give back.
        }
        reject(
          new TickwireError(
            ErrorCode.TIMEOUT,
            `no answer to joining '${target}' within ${requestTimeoutMs} ms`,
          ),
        );
      }, requestTimeoutMs);
      requests.set(requestId, {
        resolve: resolve as unknown as PendingRequest['resolve'],
        reject,
        roomOptions: roomOptions as unknown as PendingRequest['roomOptions'],
        replica,
        cancel: () => timer.cancel(),
      });
      try {
        link!.send(frame, 'reliable');
      } catch (error) {
        requests.delete(requestId);
        timer.cancel();
        reject(toTickwireError(error, ErrorCode.CONNECTION_CLOSED, 'could not send the request'));
      }
    });
  };

  const client: Client = {
    ...subscribable(emitter),
    get state() {
      return state;
    },
    get session() {
      return session;
    },
    get time() {
      return timesync;
    },
    get room() {
      return room;
    },
    async connect() {
      if (state !== 'idle')
        throw new TickwireError(ErrorCode.INVALID_STATE, `connect() on a client that is ${state}`);
      setState('connecting');
      try {
        return await connectOnce();
      } catch (error) {
        const typed = toTickwireError(error, ErrorCode.CONNECT_FAILED, 'connect failed');
        finish(
          { code: CloseCode.GoingAway, reason: typed.message.slice(0, 100), local: true },
          typed,
        );
        throw typed;
      }
    },
    join: (name, joinOptions, roomOptions) =>
      request(JoinMode.Join, name, joinOptions, roomOptions),
    create: (name, joinOptions, roomOptions) =>
      request(JoinMode.Create, name, joinOptions, roomOptions),
    joinOrCreate: (name, joinOptions, roomOptions) =>
      request(JoinMode.JoinOrCreate, name, joinOptions, roomOptions),
    joinById: (roomId, joinOptions, roomOptions) =>
      request(JoinMode.JoinById, roomId, joinOptions, roomOptions),
    stats() {
      return {
        connection: link?.stats ?? createConnectionStats(),
        replayed: link?.counters.replayed ?? 0,
        connections,
        failedAttempts,
      };
    },
    close(code = CloseCode.Normal, reason = '') {
      if (state === 'closed') return;
      checkCloseArgs(code, '');
      const transport = link?.transport;
      if (transport && transport.state === 'open') {
        try {
          transport.send(encodeGoodbye({ code, reason }), 'reliable');
        } catch {
          // Closing anyway.
        }
      }
      finish({ code, reason, local: true }, undefined);
    },
  };
  return client;
}
