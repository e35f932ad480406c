// Test support, not shipped: a small engine server on the memory transport, enough to drive the
// client through handshakes, resumes, rooms and close codes without @tickwire/server (which
// depends on this package; its own integration tests run the real pair).
import {
  type Channel,
  CloseCode,
  type Connection,
  Opcode,
  PROTOCOL_VERSION,
  type ServerTransport,
  systemTime,
  type TimeSource,
} from '@tickwire/core';
import { createMemoryServer, type MemoryNetwork } from '@tickwire/core/memory';
import {
  createSessionLink,
  decodeGoodbye,
  decodeHello,
  decodeJoinRoom,
  encodeError,
  encodeGoodbye,
  encodeRoomJoined,
  encodeRoomLeft,
  encodeWelcome,
  type GoodbyeFrame,
  type HelloFrame,
  JoinMode,
  type JoinRoomFrame,
  type ResumeKind,
  type SessionLink,
} from '@tickwire/rooms/protocol';

/** What the fake server answers to a JoinRoom. */
export type JoinAnswer =
  | { roomId: string; name: string; metadata?: unknown }
  | { error: string; message: string }
  /** No answer at all (the client's request times out). */
  | 'ignore';

/** How the fake server treats the next Hellos. */
export type Refusal =
  /** Goodbye with this code, then close with it. */
  | { code: number; reason?: string }
  /** Never answers (the client's handshake times out). */
  | 'silent'
  /** Keeps the Hellos until `release()` answers them. */
  | 'hold'
  /** Answers with another frame than Welcome. */
  | 'garbage';

/** A frame that reached a session, after the link. */
export interface ReceivedFrame {
  opcode: number;
  data: Uint8Array;
  channel: Channel;
}

/** One session on the fake server. */
export interface FakeSession {
  readonly id: string;
  /** The server end of the session link (a new one after a restore). */
  link: SessionLink;
  /** The reconnect token the last Welcome gave out. */
  token: string;
  /** The transport connection attached last. */
  connection: Connection | null;
  roomId: string | null;
  /** Session frames received (JoinRoom, RoomMessage, TimeRequest…), in order. */
  readonly frames: ReceivedFrame[];
  readonly joins: JoinRoomFrame[];
}

/** Options of {@link startFakeServer}; the behaviour ones can be changed on `server.options`. */
export interface FakeServerOptions {
  network: MemoryNetwork;
  /** Memory server name. @default a unique one */
  name?: string;
  time?: TimeSource;
  graceMs?: number;
  tickRateHz?: number;
  userData?: unknown;
  /** The protocol version written in Welcome frames. @default PROTOCOL_VERSION */
  version?: number;
  /** Answers JoinRoom; the default joins `<name>-<n>` (or the id for joinById). */
  onJoin?: (join: JoinRoomFrame, session: FakeSession) => JoinAnswer;
  /** Echo RoomMessages back on the channel they came on. @default true */
  echo?: boolean;
  /** Answer LeaveRoom with RoomLeft. @default true */
  answerLeave?: boolean;
}

/** A fake engine server, see the module comment. */
export interface FakeServer {
  readonly url: string;
  readonly options: FakeServerOptions;
  readonly sessions: ReadonlyMap<string, FakeSession>;
  /** Every Hello received, refused ones included. */
  readonly hellos: HelloFrame[];
  /** Goodbyes the clients sent. */
  readonly goodbyes: GoodbyeFrame[];
  /** Every transport connection accepted. */
  readonly connections: Connection[];
  /** The only (or the last) session. */
  session(): FakeSession;
  /** How the next Hellos are treated; null answers them with a Welcome again. */
  refuse(refusal: Refusal | null): void;
  /** Answers the Hellos kept with `refuse('hold')` (and stops holding). */
  release(): void;
  /** Sends a session frame to a session through its link. */
  send(session: FakeSession, frame: Uint8Array, channel?: Channel): void;
  /** Closes the session's transport connection without a Goodbye: the client may resume. */
  cut(session: FakeSession, code?: number, reason?: string): void;
  /** Sends Goodbye, then closes the transport connection with the same code. */
  goodbye(session: FakeSession, code: number, reason?: string): void;
  /** Removes the session from its room: RoomLeft with that code. */
  kick(session: FakeSession, code?: number, reason?: string): void;
  /** Forgets the session: its token stops working (the client gets Unauthorized). */
  expire(session: FakeSession): void;
  /**
   * A restart with a shared store: every client gets Goodbye ServiceRestart, every link is
   * lost, and the next resume of each session is `restored`.
   */
  restart(): void;
  /** Stops listening (connects fail) and closes every connection; sessions are kept. */
  stop(): Promise<void>;
  /** Listens again after `stop()`. */
  start(): Promise<void>;
}

let nextServer = 1;

/** Starts a fake server on `options.network`. */
export async function startFakeServer(options: FakeServerOptions): Promise<FakeServer> {
  const time = options.time ?? systemTime;
  const name = options.name ?? `fake-${nextServer++}`;
  const transport: ServerTransport = createMemoryServer({ network: options.network, name });
  const sessions = new Map<string, FakeSession>();
  const byToken = new Map<string, FakeSession>();
  const lost = new Set<FakeSession>();
  const hellos: HelloFrame[] = [];
  const goodbyes: GoodbyeFrame[] = [];
  const connections: Connection[] = [];
  let refusal: Refusal | null = null;
  let held: [Connection, Uint8Array][] = [];
  let sessionCount = 0;
  let tokenCount = 0;
  let roomCount = 0;

  const sendGoodbye = (connection: Connection, code: number, reason: string): void => {
    if (connection.state !== 'open') return;
    connection.send(encodeGoodbye({ code, reason }), 'reliable');
    connection.close(code, reason);
  };

  const defaultJoin = (join: JoinRoomFrame): JoinAnswer =>
    join.mode === JoinMode.JoinById
      ? { roomId: join.target, name: 'by-id' }
      : {
          roomId: `${join.target}-${++roomCount}`,
          name: join.target,
          metadata: { mode: join.mode },
        };

  const onFrame = (session: FakeSession, data: Uint8Array, channel: Channel): void => {
    session.frames.push({ opcode: data[0]!, data: data.slice(), channel });
    switch (data[0]) {
      case Opcode.JoinRoom: {
        const join = decodeJoinRoom(data);
        session.joins.push(join);
        const answer = (options.onJoin ?? defaultJoin)(join, session);
        if (answer === 'ignore') return;
        if ('error' in answer) {
          session.link.send(
            encodeError({ requestId: join.requestId, code: answer.error, message: answer.message }),
          );
          return;
        }
        session.roomId = answer.roomId;
        session.link.send(
          encodeRoomJoined({
            requestId: join.requestId,
            roomId: answer.roomId,
            name: answer.name,
            metadata: answer.metadata,
          }),
        );
        return;
      }
      case Opcode.LeaveRoom:
        if (options.answerLeave === false || session.roomId === null) return;
        session.link.send(encodeRoomLeft({ roomId: session.roomId, code: 1000, reason: 'left' }));
        session.roomId = null;
        return;
      case Opcode.RoomMessage:
        if (options.echo !== false && session.roomId !== null) session.link.send(data, channel);
        return;
      default:
        return;
    }
  };

  const newLink = (session: FakeSession): SessionLink => {
    const link = createSessionLink({ id: session.id, role: 'server', time });
    link.on('message', (data, channel) => {
      if (session.link === link) onFrame(session, data, channel);
    });
    link.on('control', (frame) => {
      if (frame[0] === Opcode.Goodbye) goodbyes.push(decodeGoodbye(frame));
    });
    return link;
  };

  const welcome = (
    connection: Connection,
    session: FakeSession,
    resume: ResumeKind,
    peerReceived: number,
  ): void => {
    byToken.delete(session.token);
    session.token = `token-${++tokenCount}`;
    byToken.set(session.token, session);
    connection.send(
      encodeWelcome({
        version: options.version ?? PROTOCOL_VERSION,
        sessionId: session.id,
        token: session.token,
        received: session.link.counters.received,
        resume,
        tickRateHz: options.tickRateHz ?? 20,
        graceMs: options.graceMs ?? 30_000,
        userData: options.userData,
      }),
      'reliable',
    );
    const previous = session.connection;
    session.connection = connection;
    session.link.attach(connection, peerReceived);
    if (previous !== null && previous !== connection && previous.state === 'open')
      sendGoodbye(previous, CloseCode.Replaced, 'resumed elsewhere');
  };

  const onHello = (connection: Connection, data: Uint8Array): void => {
    if (refusal === 'hold') {
      held.push([connection, data]);
      return;
    }
    let hello: HelloFrame;
    try {
      hello = decodeHello(data);
    } catch {
      sendGoodbye(connection, CloseCode.ProtocolError, 'bad Hello');
      return;
    }
    hellos.push(hello);
    if (refusal === 'silent') return;
    if (refusal === 'garbage') {
      connection.send(encodeRoomLeft({ roomId: 'x', code: 1000, reason: '' }), 'reliable');
      return;
    }
    if (refusal !== null) {
      sendGoodbye(connection, refusal.code, refusal.reason ?? 'refused');
      return;
    }
    if (hello.token === '') {
      const session: FakeSession = {
        id: `session-${++sessionCount}`,
        link: undefined as unknown as SessionLink,
        token: '',
        connection: null,
        roomId: null,
        frames: [],
        joins: [],
      };
      session.link = newLink(session);
      sessions.set(session.id, session);
      welcome(connection, session, 'new', 0);
      return;
    }
    const session = byToken.get(hello.token);
    if (session === undefined) {
      sendGoodbye(connection, CloseCode.Unauthorized, 'unknown or replayed token');
      return;
    }
    if (lost.delete(session)) {
      session.link = newLink(session);
      session.roomId = null;
      welcome(connection, session, 'restored', 0);
      return;
    }
    welcome(connection, session, 'resumed', hello.received);
  };

  transport.on('connection', (connection) => {
    connections.push(connection);
    const off = connection.on('message', (data) => {
      off();
      onHello(connection, data);
    });
  });
  await transport.listen();

  const server: FakeServer = {
    url: `memory://${name}`,
    options,
    sessions,
    hellos,
    goodbyes,
    connections,
    session() {
      const all = [...sessions.values()];
      if (all.length === 0) throw new Error('fake server: no session yet');
      return all[all.length - 1]!;
    },
    refuse(next) {
      refusal = next;
    },
    release() {
      refusal = null;
      const waiting = held;
      held = [];
      for (const [connection, data] of waiting)
        if (connection.state === 'open') onHello(connection, data);
    },
    send(session, frame, channel = 'reliable') {
      session.link.send(frame, channel);
    },
    cut(session, code = CloseCode.GoingAway, reason = 'cut') {
      session.connection?.close(code, reason);
    },
    goodbye(session, code, reason = '') {
      if (session.connection !== null) sendGoodbye(session.connection, code, reason);
    },
    kick(session, code = CloseCode.Kicked, reason = 'kicked') {
      if (session.roomId === null) return;
      session.link.send(encodeRoomLeft({ roomId: session.roomId, code, reason }));
      session.roomId = null;
    },
    expire(session) {
      byToken.delete(session.token);
      sessions.delete(session.id);
    },
    restart() {
      for (const session of sessions.values()) {
        lost.add(session);
        if (session.connection !== null)
          sendGoodbye(session.connection, CloseCode.ServiceRestart, 'restarting');
      }
    },
    async stop() {
      await transport.close(CloseCode.GoingAway, 'stopped');
    },
    async start() {
      await transport.listen();
    },
  };
  return server;
}

/** Lets the memory transport deliver everything in flight (it delivers in microtasks). */
export async function flush(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
