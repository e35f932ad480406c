import {
  type ClientTransport,
  CloseCode,
  type CloseInfo,
  createManualTime,
  createRandom,
  ErrorCode,
  type ManualTime,
  Opcode,
  PROTOCOL_VERSION,
  type TickwireError,
} from '@tickwire/core';
import { createMemoryClient, createMemoryNetwork, type MemoryNetwork } from '@tickwire/core/memory';
import {
  decodeJoinRoom,
  encodeError,
  encodeRoomJoined,
  encodeRoomMessage,
  JoinMode,
} from '@tickwire/rooms/protocol';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBackoff } from './backoff.js';
import {
  type Client,
  type ClientOptions,
  createClient,
  errorOfClose,
  snapshotAckDelay,
} from './client.js';
import { type FakeServer, flush, startFakeServer } from './fake-server.js';

const SEED = 7;
/** The longest first delay of the default backoff (250 ms less jitter). */
const FIRST_DELAY_MAX = 250;

const messages = defineMessages({
  chat: { id: 1, schema: defineSchema({ text: t.string({ maxBytes: 64 }) }) },
});
const roomOptions = { messages: { client: messages, server: messages } };

let network: MemoryNetwork;
let time: ManualTime;
let server: FakeServer;
let clients: Client[] = [];

beforeEach(async () => {
  network = createMemoryNetwork();
  time = createManualTime(1000);
  server = await startFakeServer({ network, time, name: 'game', userData: { nick: 'ann' } });
});

afterEach(() => {
  for (const client of clients) client.close();
  clients = [];
});

function makeClient(overrides: Partial<ClientOptions> = {}): Client {
  const client = createClient({
    endpoints: [{ url: server.url, transport: createMemoryClient({ network }) }],
    time,
    random: createRandom(SEED),
    timesync: false,
    ...overrides,
  });
  clients.push(client);
  return client;
}

/** A memory client transport that records the URLs it is asked to connect to. */
function recording(): { transport: ClientTransport; urls: string[] } {
  const inner = createMemoryClient({ network });
  const urls: string[] = [];
  return {
    urls,
    transport: {
      connect(url, options) {
        urls.push(url);
        return inner.connect(url, options);
      },
    },
  };
}

type Logged = [event: string, ...args: unknown[]];

function log(client: Client): Logged[] {
  const events: Logged[] = [];
  client.on('state', (state) => events.push(['state', state]));
  client.on('open', (info) => events.push(['open', info.resume]));
  client.on('disconnected', (info) => events.push(['disconnected', info.code]));
  client.on('reconnecting', (attempt, delayMs) => events.push(['reconnecting', attempt, delayMs]));
  client.on('close', (info, error) => events.push(['close', info.code, error?.code]));
  client.on('error', (error) => events.push(['error', error.code]));
  return events;
}

/** The delays the client's backoff draws from its seeded random, attempt by attempt. */
function expectedDelays(count: number, options = {}): number[] {
  const backoff = createBackoff(options, createRandom(SEED));
  return Array.from({ length: count }, (_, attempt) => backoff.delayMs(attempt));
}

async function rejection(promise: Promise<unknown>): Promise<TickwireError> {
  try {
    await promise;
  } catch (error) {
    return error as TickwireError;
  }
  throw new Error('expected a rejection');
}

describe('createClient', () => {
  const transport = () => createMemoryClient({ network });

  it.each<[string, () => unknown, string]>([
    [
      'no options',
      () => createClient(undefined as unknown as ClientOptions),
      'endpoints must list',
    ],
    ['no endpoints', () => createClient({ endpoints: [] }), 'endpoints must list at least one'],
    [
      'an endpoint without transport',
      () => createClient({ endpoints: [{ url: 'memory://x' } as never] }),
      'endpoints[0] must be { url: string, transport: ClientTransport }',
    ],
    [
      'an endpoint without url',
      () =>
        createClient({
          endpoints: [
            { url: 'memory://a', transport: transport() },
            { transport: transport() } as never,
          ],
        }),
      'endpoints[1] must be',
    ],
    [
      'connectTimeoutMs 0',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          connectTimeoutMs: 0,
        }),
      'connectTimeoutMs must be a positive integer, got 0',
    ],
    [
      'requestTimeoutMs 1.5',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          requestTimeoutMs: 1.5,
        }),
      'requestTimeoutMs must be a positive integer, got 1.5',
    ],
    [
      'maxMessageBytes -1',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          maxMessageBytes: -1,
        }),
      'maxMessageBytes must be a positive integer',
    ],
    [
      'maxReplayBytes 0',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          maxReplayBytes: 0,
        }),
      'maxReplayBytes must be a positive integer, got 0',
    ],
    [
      'ackIntervalMs NaN',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          ackIntervalMs: Number.NaN,
        }),
      'ackIntervalMs must be a positive integer, got NaN',
    ],
    [
      'reconnect.jitter 2',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          reconnect: { jitter: 2 },
        }),
      'reconnect.jitter must be a number in [0, 1], got 2',
    ],
    [
      'reconnect.maxAttempts -1',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          reconnect: { maxAttempts: -1 },
        }),
      'reconnect.maxAttempts must be an integer >= 0 or Infinity, got -1',
    ],
    [
      'reconnect.maxAttempts NaN',
      () =>
        createClient({
          endpoints: [{ url: 'memory://a', transport: transport() }],
          reconnect: { maxAttempts: Number.NaN },
        }),
      'reconnect.maxAttempts',
    ],
  ])('rejects %s with INVALID_ARGUMENT', (_, create, message) => {
    expect(create).toThrow(
      expect.objectContaining({
        code: ErrorCode.INVALID_ARGUMENT,
        message: expect.stringContaining(message),
      }),
    );
  });

  it('starts idle and does nothing until connect()', async () => {
    const client = makeClient();
    await flush();
    expect(client.state).toBe('idle');
    expect(client.session).toBeNull();
    expect(client.room).toBeNull();
    expect(client.time).toBeNull();
    expect(client.stats()).toMatchObject({
      connection: { messagesOut: 0, messagesIn: 0 },
      replayed: 0,
      connections: 0,
      failedAttempts: 0,
    });
    expect(server.connections).toHaveLength(0);
  });
});

describe('connect', () => {
  it('opens a new session and reports what the Welcome said', async () => {
    const client = makeClient({ auth: { user: 'ann', password: 'pw' } });
    const events = log(client);
    const info = await client.connect();
    expect(info).toEqual({
      sessionId: 'session-1',
      userData: { nick: 'ann' },
      resume: 'new',
      url: 'memory://game',
      tickRateHz: 20,
      graceMs: 30_000,
    });
    expect(client.session).toBe(info);
    expect(client.state).toBe('open');
    expect(events).toEqual([
      ['state', 'connecting'],
      ['state', 'open'],
      ['open', 'new'],
    ]);
    expect(server.hellos).toEqual([
      { version: PROTOCOL_VERSION, token: '', received: 0, auth: { user: 'ann', password: 'pw' } },
    ]);
    expect(client.stats().connections).toBe(1);
  });

  it('sends no auth when none is given', async () => {
    await makeClient().connect();
    expect(server.hellos[0]!.auth).toBeUndefined();
  });

  it('refuses a second connect()', async () => {
    const client = makeClient();
    const first = client.connect();
    await expect(client.connect()).rejects.toMatchObject({
      code: ErrorCode.INVALID_STATE,
      message: 'connect() on a client that is connecting',
    });
    await first;
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
  });

  it('falls back to the next endpoint when one is unreachable', async () => {
    const { transport, urls } = recording();
    const client = makeClient({
      endpoints: [
        { url: 'memory://nowhere', transport },
        { url: server.url, transport },
      ],
    });
    const info = await client.connect();
    expect(info.url).toBe('memory://game');
    expect(urls).toEqual(['memory://nowhere', 'memory://game']);

    // Reconnection starts with the endpoint that worked.
    server.cut(server.session());
    await flush();
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(client.session!.resume).toBe('resumed');
    expect(urls).toEqual(['memory://nowhere', 'memory://game', 'memory://game']);
  });

  it('rejects with CONNECT_FAILED listing every attempt when no endpoint works', async () => {
    const client = makeClient({
      endpoints: [
        { url: 'memory://nowhere', transport: createMemoryClient({ network }) },
        { url: 'memory://gone', transport: createMemoryClient({ network }) },
      ],
    });
    const events = log(client);
    const error = await rejection(client.connect());
    expect(error.code).toBe(ErrorCode.CONNECT_FAILED);
    expect(error.message).toMatch(
      /^no endpoint reachable: memory:\/\/nowhere \(.+\); memory:\/\/gone/,
    );
    expect(error.details?.attempts).toEqual([
      {
        url: 'memory://nowhere',
        code: ErrorCode.CONNECT_FAILED,
        message: 'no memory server listens at memory://nowhere',
      },
      {
        url: 'memory://gone',
        code: ErrorCode.CONNECT_FAILED,
        message: 'no memory server listens at memory://gone',
      },
    ]);
    expect(client.state).toBe('closed');
    expect(events).toEqual([
      ['state', 'connecting'],
      ['state', 'closed'],
      ['close', CloseCode.GoingAway, ErrorCode.CONNECT_FAILED],
    ]);
  });

  it('says which endpoints failed how when they fail differently', async () => {
    server.refuse({ code: CloseCode.ServerFull, reason: 'full' });
    const client = makeClient({
      endpoints: [
        { url: server.url, transport: createMemoryClient({ network }) },
        { url: 'memory://nowhere', transport: createMemoryClient({ network }) },
      ],
    });
    const error = await rejection(client.connect());
    expect(error.code).toBe(ErrorCode.CONNECT_FAILED);
    expect((error.details!.attempts as { code: string }[]).map((a) => a.code)).toEqual([
      ErrorCode.LIMIT_EXCEEDED,
      ErrorCode.CONNECT_FAILED,
    ]);
  });

  it('times out a handshake without Welcome with TIMEOUT and closes that connection', async () => {
    server.refuse('silent');
    const client = makeClient({ connectTimeoutMs: 2000 });
    const connecting = rejection(client.connect());
    await flush();
    expect(server.hellos).toHaveLength(1);
    time.advance(1999);
    await flush();
    expect(client.state).toBe('connecting');
    time.advance(1);
    const error = await connecting;
    expect(error.code).toBe(ErrorCode.TIMEOUT);
    expect(error.message).toContain('no Welcome from memory://game within 2000 ms');
    expect(error.details?.attempts).toEqual([
      { url: 'memory://game', code: ErrorCode.TIMEOUT, message: expect.any(String) },
    ]);
    await flush();
    expect(server.connections[0]!.state).toBe('closed');
    expect(client.state).toBe('closed');
  });

  it('falls back after a handshake timeout', async () => {
    const other = await startFakeServer({ network, time, name: 'other' });
    server.refuse('silent');
    const client = makeClient({
      connectTimeoutMs: 500,
      endpoints: [
        { url: server.url, transport: createMemoryClient({ network }) },
        { url: other.url, transport: createMemoryClient({ network }) },
      ],
    });
    const connecting = client.connect();
    await flush();
    time.advance(500);
    const info = await connecting;
    expect(info.url).toBe('memory://other');
  });

  it('counts the transport connect against connectTimeoutMs: one deadline per endpoint', async () => {
    server.refuse('silent');
    const inner = createMemoryClient({ network });
    const slow: ClientTransport = {
      // The transport takes 1500 ms of the client's clock to connect.
      connect: (url, options) =>
        new Promise<void>((resolve) => time.setTimeout(resolve, 1500)).then(() =>
          inner.connect(url, options),
        ),
    };
    const client = makeClient({
      connectTimeoutMs: 2000,
      endpoints: [{ url: server.url, transport: slow }],
    });
    const connecting = rejection(client.connect());
    time.advance(1500);
    await flush();
    expect(server.hellos).toHaveLength(1);
    time.advance(499);
    await flush();
    expect(client.state).toBe('connecting');
    time.advance(1);
    await flush();
    expect(client.state).toBe('closed');
    expect((await connecting).code).toBe(ErrorCode.TIMEOUT);
    expect(server.connections[0]!.state).toBe('closed');
  });

  it.each([
    [CloseCode.VersionMismatch, ErrorCode.PROTOCOL_ERROR],
    [CloseCode.Unauthorized, ErrorCode.UNAUTHORIZED],
    [CloseCode.Banned, ErrorCode.FORBIDDEN],
    [CloseCode.RateLimited, ErrorCode.RATE_LIMITED],
    [CloseCode.SessionExpired, ErrorCode.SESSION_EXPIRED],
  ])('rejects close code %i with %s and tries no other endpoint', async (closeCode, code) => {
    const other = await startFakeServer({ network, time, name: 'other' });
    server.refuse({ code: closeCode, reason: 'no' });
    const client = makeClient({
      endpoints: [
        { url: server.url, transport: createMemoryClient({ network }) },
        { url: other.url, transport: createMemoryClient({ network }) },
      ],
    });
    const error = await rejection(client.connect());
    expect(error.code).toBe(code);
    expect(error.details).toEqual({ closeCode, reason: 'no' });
    expect(other.hellos).toHaveLength(0);
    expect(client.state).toBe('closed');
  });

  it('falls back when a server is full, and says LIMIT_EXCEEDED when every one is', async () => {
    const other = await startFakeServer({ network, time, name: 'other' });
    server.refuse({ code: CloseCode.ServerFull, reason: 'full' });
    const endpoints = [
      { url: server.url, transport: createMemoryClient({ network }) },
      { url: other.url, transport: createMemoryClient({ network }) },
    ];
    const info = await makeClient({ endpoints }).connect();
    expect(info.url).toBe('memory://other');

    other.refuse({ code: CloseCode.ServerFull, reason: 'full' });
    const error = await rejection(makeClient({ endpoints }).connect());
    expect(error.code).toBe(ErrorCode.LIMIT_EXCEEDED);
    expect(error.details?.attempts).toHaveLength(2);
  });

  it('rejects a Welcome of another protocol version with PROTOCOL_ERROR, without fallback', async () => {
    const other = await startFakeServer({ network, time, name: 'other' });
    server.options.version = PROTOCOL_VERSION + 1;
    const client = makeClient({
      endpoints: [
        { url: server.url, transport: createMemoryClient({ network }) },
        { url: other.url, transport: createMemoryClient({ network }) },
      ],
    });
    const error = await rejection(client.connect());
    expect(error.code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(error.message).toBe(
      `server speaks protocol version ${PROTOCOL_VERSION + 1}, this client ${PROTOCOL_VERSION}`,
    );
    expect(other.hellos).toHaveLength(0);
  });

  it('rejects another frame than Welcome with PROTOCOL_ERROR', async () => {
    server.refuse('garbage');
    const error = await rejection(makeClient().connect());
    expect(error.code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(error.message).toBe(
      `expected Welcome from memory://game, got opcode ${Opcode.RoomLeft}`,
    );
  });

  it('rejects auth that cannot be encoded with INVALID_ARGUMENT', async () => {
    const error = await rejection(makeClient({ auth: { blob: 'x'.repeat(20_000) } }).connect());
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.message).toContain('auth');
    expect(server.hellos).toHaveLength(0);
  });

  it('stays closed when close() is called during the handshake', async () => {
    server.refuse('hold');
    const client = makeClient();
    const events = log(client);
    const connecting = rejection(client.connect());
    await flush();
    expect(server.hellos).toHaveLength(0);
    client.close();
    server.release(); // the Welcome is on its way as the client closes
    const error = await connecting;
    expect(error.code).toBe(ErrorCode.CONNECTION_CLOSED);
    await flush();
    expect(client.state).toBe('closed');
    expect(events.filter(([event]) => event === 'open')).toEqual([]);
    expect(events.filter(([event]) => event === 'close')).toEqual([['close', 1000, undefined]]);
    expect(server.connections[0]!.state).toBe('closed');
  });

  it("rejects with CONNECTION_CLOSED when an 'open' listener closes the client", async () => {
    const client = makeClient();
    client.on('open', () => client.close());
    const error = await rejection(client.connect());
    expect(error.code).toBe(ErrorCode.CONNECTION_CLOSED);
    expect(client.state).toBe('closed');
  });

  it('close() aborts a pending transport connect through its signal', async () => {
    let signal: AbortSignal | undefined;
    const pending: ClientTransport = {
      connect: (_url, options) =>
        new Promise((_resolve, reject) => {
          signal = options?.signal;
          signal?.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    };
    const client = makeClient({ endpoints: [{ url: server.url, transport: pending }] });
    const connecting = rejection(client.connect());
    expect(signal?.aborted).toBe(false);
    client.close();
    expect(signal?.aborted).toBe(true);
    expect((await connecting).code).toBe(ErrorCode.CONNECTION_CLOSED);
  });

  it('stays closed when close() is called while the transport connects', async () => {
    const client = makeClient();
    const connecting = rejection(client.connect());
    client.close();
    expect((await connecting).code).toBe(ErrorCode.CONNECTION_CLOSED);
    await flush();
    expect(client.state).toBe('closed');
    expect(server.hellos).toHaveLength(0);
    expect(server.sessions.size).toBe(0);
  });
  it.each([
    ['connect()', false],
    ['a reconnection attempt', true],
  ])(
    'close() while the transport connects in %s: the late connection is closed at once, nothing emitted',
    async (_, resume) => {
      const inner = createMemoryClient({ network });
      let release = (): void => {};
      let delayed = false;
      // A transport that ignores the abort signal.
      const gated: ClientTransport = {
        connect: (url, options) =>
          delayed
            ? new Promise<void>((resolve) => {
                release = resolve;
              }).then(() => inner.connect(url))
            : inner.connect(url, options),
      };
      const client = makeClient({ endpoints: [{ url: server.url, transport: gated }] });
      let connecting: Promise<unknown> = Promise.resolve();
      if (resume) {
        await client.connect();
        delayed = true;
        server.cut(server.session());
        await flush();
        time.advance(FIRST_DELAY_MAX);
        await flush();
        expect(client.state).toBe('reconnecting');
      } else {
        delayed = true;
        connecting = rejection(client.connect());
        await flush();
      }
      const events = log(client);
      client.close();
      expect(events).toEqual([
        ['state', 'closed'],
        ['close', 1000, undefined],
      ]);
      const before = server.connections.length;
      release(); // the transport connects after the close
      await flush();
      if (!resume)
        expect(((await connecting) as TickwireError).code).toBe(ErrorCode.CONNECTION_CLOSED);
      expect(server.connections).toHaveLength(before + 1);
      expect(server.connections.at(-1)!.state).toBe('closed');
      expect(server.hellos).toHaveLength(resume ? 1 : 0);
      expect(events).toHaveLength(2);
      expect(client.state).toBe('closed');
    },
  );
});

describe('errorOfClose', () => {
  it.each([
    [CloseCode.VersionMismatch, ErrorCode.PROTOCOL_ERROR],
    [CloseCode.ProtocolError, ErrorCode.PROTOCOL_ERROR],
    [CloseCode.Unauthorized, ErrorCode.UNAUTHORIZED],
    [CloseCode.SessionExpired, ErrorCode.SESSION_EXPIRED],
    [CloseCode.ServerFull, ErrorCode.LIMIT_EXCEEDED],
    [CloseCode.Kicked, ErrorCode.FORBIDDEN],
    [CloseCode.Banned, ErrorCode.FORBIDDEN],
    [CloseCode.PolicyViolation, ErrorCode.FORBIDDEN],
    [CloseCode.RateLimited, ErrorCode.RATE_LIMITED],
    [CloseCode.Replaced, ErrorCode.CONFLICT],
    [CloseCode.MessageTooLarge, ErrorCode.MESSAGE_TOO_LARGE],
    [CloseCode.GoingAway, ErrorCode.CONNECTION_CLOSED],
    [CloseCode.ServiceRestart, ErrorCode.CONNECTION_CLOSED],
    [CloseCode.Normal, ErrorCode.CONNECTION_CLOSED],
  ])('maps close code %i to %s', (closeCode, code) => {
    const error = errorOfClose({ code: closeCode, reason: 'why', local: false });
    expect(error.code).toBe(code);
    expect(error.message).toBe(`server closed the connection: ${closeCode} why`);
    expect(error.details).toEqual({ closeCode, reason: 'why' });
  });

  it('leaves an empty reason out of the message', () => {
    expect(errorOfClose({ code: 4002, reason: '', local: false }).message).toBe(
      'server closed the connection: 4002',
    );
  });
});

describe('rooms', () => {
  it.each([
    ['join', JoinMode.Join],
    ['create', JoinMode.Create],
    ['joinOrCreate', JoinMode.JoinOrCreate],
  ] as const)(
    '%s sends its mode, the name and the options, and resolves with the room',
    async (method, mode) => {
      const client = makeClient();
      await client.connect();
      const room = await client[method]('arena', { map: 'dust' }, roomOptions);
      expect(server.session().joins).toEqual([
        { requestId: 1, mode, target: 'arena', options: { map: 'dust' } },
      ]);
      expect(room.id).toBe('arena-1');
      expect(room.name).toBe('arena');
      expect(room.metadata).toEqual({ mode });
      expect(room.state).toBe('joined');
      expect(room.replica).toBeNull();
      expect(room.replication).toBeNull();
      expect(client.room).toBe(room);
    },
  );

  it('joinById sends the room id as the target', async () => {
    const client = makeClient();
    await client.connect();
    const room = await client.joinById('room-42');
    expect(server.session().joins).toEqual([
      { requestId: 1, mode: JoinMode.JoinById, target: 'room-42', options: undefined },
    ]);
    expect(room.id).toBe('room-42');
  });

  it('numbers requests', async () => {
    const client = makeClient();
    await client.connect();
    server.options.onJoin = () => ({ error: 'NOT_FOUND', message: 'no room' });
    await expect(client.join('a')).rejects.toBeDefined();
    await expect(client.join('b')).rejects.toBeDefined();
    expect(server.session().joins.map((join) => join.requestId)).toEqual([1, 2]);
  });

  it('rejects with the code and message of an Error frame', async () => {
    const client = makeClient();
    const events = log(client);
    await client.connect();
    server.options.onJoin = () => ({
      error: 'LIMIT_EXCEEDED',
      message: "room 'arena' is full (16)",
    });
    const error = await rejection(client.join('arena'));
    expect(error.code).toBe(ErrorCode.LIMIT_EXCEEDED);
    expect(error.message).toBe("server: room 'arena' is full (16)");
    expect(error.details).toEqual({ requestId: 1 });
    expect(client.room).toBeNull();
    // The request was answered: not an 'error' event too.
    expect(events.filter(([event]) => event === 'error')).toEqual([]);
  });

  it('reads an unknown error code as INTERNAL', async () => {
    const client = makeClient();
    await client.connect();
    server.options.onJoin = () => ({ error: 'TEAPOT', message: 'short and stout' });
    await expect(client.join('arena')).rejects.toMatchObject({ code: ErrorCode.INTERNAL });
  });

  it('times out a join without answer and gives back the seat the server may still take', async () => {
    const client = makeClient({ requestTimeoutMs: 3000 });
    await client.connect();
    server.options.onJoin = () => 'ignore';
    const joining = rejection(client.join('arena'));
    await flush();
    time.advance(3000);
    const error = await joining;
    expect(error.code).toBe(ErrorCode.TIMEOUT);
    expect(error.message).toBe("no answer to joining 'arena' within 3000 ms");
    await flush();
    // Sent at the timeout, ahead of any retry.
    expect(server.session().frames.map((f) => f.opcode)).toEqual([
      Opcode.JoinRoom,
      Opcode.LeaveRoom,
    ]);
    server.send(
      server.session(),
      encodeRoomJoined({ requestId: 1, roomId: 'arena-1', name: 'arena', metadata: undefined }),
    );
    await flush();
    // The late answer is ignored: the seat was given back already.
    expect(client.room).toBeNull();
    expect(server.session().frames).toHaveLength(2);
    // A new request can go out.
    server.options.onJoin = undefined;
    await expect(client.join('arena')).resolves.toBeDefined();
  });

  it('a retry after a join timeout is not refused because the first join was answered late', async () => {
    const client = makeClient({ requestTimeoutMs: 3000 });
    await client.connect();
    const session = server.session();
    server.options.onJoin = (join, seated) => {
      if (join.requestId === 1) {
        // Seated, but the answer is slow to come.
        seated.roomId = 'arena-1';
        return 'ignore';
      }
      if (seated.roomId !== null) return { error: 'CONFLICT', message: 'already in a room' };
      return { roomId: 'arena-2', name: 'arena' };
    };
    const first = rejection(client.join('arena'));
    await flush();
    // The RoomJoined is on its way as the request times out, and the user retries at once.
    server.send(
      session,
      encodeRoomJoined({ requestId: 1, roomId: 'arena-1', name: 'arena', metadata: undefined }),
    );
    time.advance(3000);
    const retry = client.join('arena');
    expect((await first).code).toBe(ErrorCode.TIMEOUT);
    const room = await retry;
    expect(room.id).toBe('arena-2');
    await flush();
    expect(room.state).toBe('joined');
    expect(client.room).toBe(room);
    expect(session.roomId).toBe('arena-2');
  });

  it('refuses a second join while in a room or while a join is pending (CONFLICT)', async () => {
    const client = makeClient();
    await client.connect();
    const first = client.join('arena');
    await expect(client.join('other')).rejects.toMatchObject({
      code: ErrorCode.CONFLICT,
      message: 'a join request is already pending',
    });
    const room = await first;
    await expect(client.create('other')).rejects.toMatchObject({
      code: ErrorCode.CONFLICT,
      message: `already in room ${room.id}: leave it first`,
    });
    expect(server.session().joins).toHaveLength(1);
  });

  it('refuses to join before connecting or after closing (INVALID_STATE)', async () => {
    const client = makeClient();
    await expect(client.join('arena')).rejects.toMatchObject({
      code: ErrorCode.INVALID_STATE,
      message: 'cannot join a room while idle',
    });
    await client.connect();
    client.close();
    await expect(client.joinOrCreate('arena')).rejects.toMatchObject({
      code: ErrorCode.INVALID_STATE,
    });
  });

  it('rejects options that cannot be encoded without sending anything', async () => {
    const client = makeClient();
    await client.connect();
    await expect(client.join('arena', { blob: 'x'.repeat(20_000) })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
      message: expect.stringContaining('options'),
    });
    await expect(client.join('x'.repeat(200))).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await flush();
    expect(server.session().joins).toHaveLength(0);
  });

  it('rejects a request larger than maxMessageBytes without leaving it pending', async () => {
    const client = makeClient({ maxMessageBytes: 64 });
    await client.connect();
    await expect(client.join('arena', { blob: 'x'.repeat(100) })).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    await expect(client.join('arena')).resolves.toMatchObject({ id: 'arena-1' });
  });

  it("reports an Error frame that answers no request as the client's 'error'", async () => {
    const client = makeClient();
    const events = log(client);
    await client.connect();
    server.send(
      server.session(),
      encodeError({ requestId: 0, code: 'RATE_LIMITED', message: 'slow down' }),
    );
    await flush();
    expect(events.at(-1)).toEqual(['error', ErrorCode.RATE_LIMITED]);
  });

  it("reports a malformed session frame as the client's 'error' and carries on", async () => {
    const client = makeClient();
    const errors: TickwireError[] = [];
    client.on('error', (error) => errors.push(error));
    await client.connect();
    server.send(server.session(), new Uint8Array([Opcode.RoomJoined, 0, 0xff]));
    await flush();
    expect(errors.map((error) => error.code)).toEqual([ErrorCode.DECODE_FAILED]);
    expect(client.state).toBe('open');
    await expect(client.join('arena')).resolves.toBeDefined();
  });

  it('leaves session frames it does not handle alone (snapshots without a room)', async () => {
    const client = makeClient();
    const events = log(client);
    await client.connect();
    server.send(server.session(), new Uint8Array([Opcode.Snapshot, 0, 1, 2, 3]));
    server.send(server.session(), encodeRoomMessage(messages.encode('chat', { text: 'nobody' })));
    await flush();
    expect(events.slice(3)).toEqual([]);
  });
});

describe('reconnection', () => {
  /** Connects, then cuts the transport connection; returns the event log. */
  async function connectAndCut(client: Client): Promise<Logged[]> {
    await client.connect();
    const events = log(client);
    server.cut(server.session());
    await flush();
    return events;
  }

  it('resumes the same session after a cut, after the seeded backoff delay', async () => {
    const client = makeClient();
    const events = await connectAndCut(client);
    const [delay] = expectedDelays(1);
    expect(events).toEqual([
      ['state', 'reconnecting'],
      ['disconnected', CloseCode.GoingAway],
      ['reconnecting', 1, delay],
    ]);
    expect(client.stats().connection).toMatchObject({ messagesIn: 0, messagesOut: 0 });
    time.advance(delay! - 1);
    await flush();
    expect(server.hellos).toHaveLength(1);
    time.advance(1);
    await flush();
    expect(events.slice(3)).toEqual([
      ['state', 'open'],
      ['open', 'resumed'],
    ]);
    expect(client.session).toMatchObject({ sessionId: 'session-1', resume: 'resumed' });
    expect(server.hellos[1]).toEqual({
      version: PROTOCOL_VERSION,
      token: 'token-1',
      received: 0,
      auth: undefined,
    });
    expect(client.stats().connections).toBe(2);

    // The token rotates: the next resume shows the second one.
    server.cut(server.session());
    await flush();
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(server.hellos[2]!.token).toBe('token-2');
    expect(client.state).toBe('open');
  });

  it("counts no failed attempt for a reconnection whose 'open' listener closes the client", async () => {
    const client = makeClient();
    await client.connect();
    client.on('open', () => client.close());
    server.cut(server.session());
    await flush();
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(client.state).toBe('closed');
    expect(client.stats()).toMatchObject({ connections: 2, failedAttempts: 0 });
  });

  it('spaces failed attempts with the seeded backoff and counts them', async () => {
    const client = makeClient();
    await client.connect();
    const events = log(client);
    await server.stop();
    await flush();
    const delays = expectedDelays(4);
    for (const delay of delays.slice(0, 3)) {
      time.advance(delay);
      await flush();
    }
    expect(events.filter(([event]) => event === 'reconnecting')).toEqual(
      delays.map((delay, i) => ['reconnecting', i + 1, delay]),
    );
    expect(client.stats().failedAttempts).toBe(3);
    await server.start();
    time.advance(delays[3]!);
    await flush();
    expect(client.state).toBe('open');
    expect(client.session!.resume).toBe('resumed');
    expect(client.stats()).toMatchObject({ failedAttempts: 3, connections: 2 });
  });

  it('delivers reliable frames exactly once across the cut, both ways', async () => {
    const client = makeClient();
    await client.connect();
    const room = await client.join('arena', undefined, roomOptions);
    const received: string[] = [];
    room.onMessage('chat', (value) => received.push(value.text));
    room.send('chat', { text: 'before' });
    await flush();
    expect(received).toEqual(['before']); // echoed
    const session = server.session();
    server.options.echo = false;

    server.cut(session);
    await flush();
    expect(client.state).toBe('reconnecting');
    room.send('chat', { text: 'while away 1' });
    room.send('chat', { text: 'while away 2' });
    expect(room.send('chat', { text: 'unreliable' }, { reliable: false })).toBe(false);
    server.send(session, encodeRoomMessage(messages.encode('chat', { text: 'from server 1' })));
    server.send(session, encodeRoomMessage(messages.encode('chat', { text: 'from server 2' })));
    await flush();
    expect(received).toEqual(['before']);

    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(client.session!.resume).toBe('resumed');
    const chats = session.frames
      .filter((frame) => frame.opcode === Opcode.RoomMessage)
      .map((frame) => messages.decode(frame.data.subarray(2)).value.text);
    expect(chats).toEqual(['before', 'while away 1', 'while away 2']);
    expect(received).toEqual(['before', 'from server 1', 'from server 2']);
    expect(client.stats().replayed).toBe(2);
    // The Hello said how far the client got: 2 frames (RoomJoined, the echo).
    expect(server.hellos[1]!.received).toBe(2);

    // And nothing is delivered twice on the next resume.
    server.cut(session);
    await flush();
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(received).toHaveLength(3);
    expect(session.frames.filter((frame) => frame.opcode === Opcode.RoomMessage)).toHaveLength(3);
  });

  it('sends a join made while reconnecting after the resume', async () => {
    const client = makeClient();
    await connectAndCut(client);
    const joining = client.join('arena');
    time.advance(FIRST_DELAY_MAX);
    const room = await joining;
    expect(room.id).toBe('arena-1');
  });

  it('a restored session starts a new link and leaves the room with ServiceRestart', async () => {
    const client = makeClient();
    await client.connect();
    const room = await client.join('arena', undefined, roomOptions);
    const left: [number, string][] = [];
    room.on('leave', (code, reason) => left.push([code, reason]));
    const events = log(client);
    const oldLink = server.session().link;

    server.restart();
    await flush();
    expect(events.slice(0, 2)).toEqual([
      ['state', 'reconnecting'],
      ['disconnected', CloseCode.ServiceRestart],
    ]);
    room.send('chat', { text: 'lost with the old link' });
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(client.session).toMatchObject({ sessionId: 'session-1', resume: 'restored' });
    expect(left).toEqual([[CloseCode.ServiceRestart, 'server restarted']]);
    expect(room.state).toBe('left');
    expect(client.room).toBeNull();
    expect(server.session().link).not.toBe(oldLink);
    expect(server.session().link.counters.received).toBe(0);
    expect(client.stats().replayed).toBe(0);

    // The new link works.
    const again = await client.join('arena', undefined, roomOptions);
    expect(again.id).toBe('arena-2');
    const echoed = new Promise((resolve) => again.onMessage('chat', resolve));
    again.send('chat', { text: 'new link' });
    await expect(echoed).resolves.toEqual({ text: 'new link' });
  });

  it('a restore fails a pending join with CONNECTION_CLOSED', async () => {
    const client = makeClient();
    await client.connect();
    server.options.onJoin = () => 'ignore';
    const joining = rejection(client.join('arena'));
    await flush();
    server.restart();
    await flush();
    time.advance(FIRST_DELAY_MAX);
    const error = await joining;
    expect(error.code).toBe(ErrorCode.CONNECTION_CLOSED);
    expect(error.message).toBe('server restarted');
  });

  it('closes with SESSION_EXPIRED when the server no longer knows the session (Unauthorized)', async () => {
    const client = makeClient();
    const events = await connectAndCut(client);
    server.expire(server.session());
    const closed = new Promise<[CloseInfo, TickwireError | undefined]>((resolve) =>
      client.on('close', (info, error) => resolve([info, error])),
    );
    time.advance(FIRST_DELAY_MAX);
    const [info, error] = await closed;
    expect(info.code).toBe(CloseCode.Unauthorized);
    expect(error!.code).toBe(ErrorCode.SESSION_EXPIRED);
    expect(error!.details).toMatchObject({ closeCode: CloseCode.Unauthorized });
    expect(client.state).toBe('closed');
    expect(events.filter(([event]) => event === 'reconnecting')).toHaveLength(1);
    expect(client.stats().failedAttempts).toBe(1);
  });

  it.each([
    [CloseCode.Kicked, ErrorCode.FORBIDDEN],
    [CloseCode.SessionExpired, ErrorCode.SESSION_EXPIRED],
    [CloseCode.VersionMismatch, ErrorCode.PROTOCOL_ERROR],
  ])('stops reconnecting at close code %i with %s', async (closeCode, code) => {
    const client = makeClient();
    const events = await connectAndCut(client);
    server.refuse({ code: closeCode, reason: 'go away' });
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(client.state).toBe('closed');
    expect(events.at(-1)).toEqual(['close', closeCode, code]);
    // No second attempt, however long we wait.
    time.advance(60_000);
    await flush();
    expect(server.hellos).toHaveLength(2);
  });

  it('closes with PROTOCOL_ERROR when a resume Welcome speaks another version', async () => {
    const client = makeClient();
    const events = await connectAndCut(client);
    server.options.version = PROTOCOL_VERSION + 1;
    time.advance(FIRST_DELAY_MAX);
    await flush();
    expect(events.at(-1)).toEqual(['close', CloseCode.ProtocolError, ErrorCode.PROTOCOL_ERROR]);
  });

  it('gives up with SESSION_EXPIRED once the grace period is over', async () => {
    server.options.graceMs = 1000;
    const client = makeClient();
    const events = await connectAndCut(client);
    await server.stop();
    const closed = new Promise<TickwireError | undefined>((resolve) =>
      client.on('close', (_, error) => resolve(error)),
    );
    for (let i = 0; i < 20 && client.state !== 'closed'; i++) {
      time.runNext();
      await flush();
    }
    const error = await closed;
    expect(error!.code).toBe(ErrorCode.SESSION_EXPIRED);
    expect(error!.message).toBe('could not reconnect within the 1000 ms grace period');
    const delays = events
      .filter(([event]) => event === 'reconnecting')
      .map(([, , delay]) => delay as number);
    // The seeded backoff until the deadline, the last delay cut to what was left of it.
    const expected = expectedDelays(delays.length);
    expect(delays.slice(0, -1)).toEqual(expected.slice(0, -1));
    expect(delays.reduce((sum, delay) => sum + delay, 0)).toBe(1000);
    expect(delays.at(-1)).toBeLessThanOrEqual(expected.at(-1)!);
    expect(time.now()).toBe(2000);
    expect(events.at(-1)).toEqual(['close', CloseCode.GoingAway, ErrorCode.SESSION_EXPIRED]);
  });

  it('gives up after maxAttempts', async () => {
    const client = makeClient({ reconnect: { maxAttempts: 2, initialDelayMs: 100, jitter: 0 } });
    const events = await connectAndCut(client);
    await server.stop();
    time.advance(100);
    await flush();
    time.advance(200);
    await flush();
    expect(events.filter(([event]) => event === 'reconnecting')).toEqual([
      ['reconnecting', 1, 100],
      ['reconnecting', 2, 200],
    ]);
    expect(client.state).toBe('closed');
    expect(events.at(-1)).toEqual(['close', CloseCode.GoingAway, ErrorCode.SESSION_EXPIRED]);
    expect(client.stats().failedAttempts).toBe(2);
  });

  it('maxAttempts 0 closes at once', async () => {
    const client = makeClient({ reconnect: { maxAttempts: 0 } });
    const errors: (TickwireError | undefined)[] = [];
    client.on('close', (_, error) => errors.push(error));
    await connectAndCut(client);
    expect(client.state).toBe('closed');
    expect(errors.map((error) => error?.details)).toEqual([{ attempts: 0 }]);
    expect(errors[0]!.message).toBe('could not reconnect within 0 attempts');
  });

  it('closes at once with reconnect: false', async () => {
    const client = makeClient({ reconnect: false });
    const room = await client.connect().then(() => client.join('arena'));
    const left: number[] = [];
    room.on('leave', (code) => left.push(code));
    const events = await (async () => {
      const logged = log(client);
      server.cut(server.session());
      await flush();
      return logged;
    })();
    expect(events).toEqual([
      ['state', 'closed'],
      ['close', CloseCode.GoingAway, ErrorCode.CONNECTION_CLOSED],
    ]);
    expect(left).toEqual([CloseCode.GoingAway]);
  });

  it('closes at once on a Goodbye with a final code, with its error', async () => {
    const client = makeClient();
    await client.connect();
    const events = log(client);
    server.goodbye(server.session(), CloseCode.Kicked, 'bye');
    await flush();
    expect(events).toEqual([
      ['state', 'closed'],
      ['close', CloseCode.Kicked, ErrorCode.FORBIDDEN],
    ]);
  });

  it('ignores a malformed Goodbye: the close code of the transport decides', async () => {
    const client = makeClient();
    await client.connect();
    const events = log(client);
    server.session().connection!.send(new Uint8Array([Opcode.Goodbye, 0]), 'reliable');
    server.cut(server.session(), CloseCode.TryAgainLater, 'busy');
    await flush();
    expect(events).toEqual([
      ['state', 'reconnecting'],
      ['disconnected', CloseCode.TryAgainLater],
      ['reconnecting', 1, expectedDelays(1)[0]],
    ]);
  });

  it('close() while waiting to reconnect stops the attempts', async () => {
    const client = makeClient();
    const events = await connectAndCut(client);
    client.close();
    time.advance(60_000);
    await flush();
    expect(server.hellos).toHaveLength(1);
    expect(events.slice(3)).toEqual([
      ['state', 'closed'],
      ['close', CloseCode.Normal, undefined],
    ]);
    expect(server.goodbyes).toEqual([]); // no connection to say it on
  });

  it("close() in a 'reconnecting' listener leaves no timer behind", async () => {
    // A clock of its own, so that the fake server's timers do not count.
    const clientTime = createManualTime(1000);
    const client = makeClient({ time: clientTime });
    await client.connect();
    client.on('reconnecting', () => client.close());
    server.cut(server.session());
    await flush();
    expect(client.state).toBe('closed');
    expect(clientTime.pending).toBe(0);
  });

  it("close() in a 'state' listener of reconnecting emits nothing after 'close'", async () => {
    const client = makeClient();
    await client.connect();
    const events = log(client);
    client.on('state', (state) => {
      if (state === 'reconnecting') client.close();
    });
    server.cut(server.session());
    await flush();
    time.advance(60_000);
    await flush();
    expect(events).toEqual([
      ['state', 'reconnecting'],
      ['state', 'closed'],
      ['close', CloseCode.Normal, undefined],
    ]);
    expect(server.hellos).toHaveLength(1);
  });

  it('close() during a resume handshake keeps the client closed', async () => {
    const client = makeClient();
    const events = await connectAndCut(client);
    server.refuse('hold');
    time.advance(FIRST_DELAY_MAX);
    await flush();
    client.close();
    server.release(); // the Welcome is on its way as the client closes
    await flush();
    time.advance(60_000);
    await flush();
    expect(client.state).toBe('closed');
    expect(events.filter(([event]) => event === 'open')).toEqual([]);
    expect(server.connections.at(-1)!.state).toBe('closed');
  });

  it('closes when the replay buffer overflows while disconnected', async () => {
    const client = makeClient({ maxReplayBytes: 64 });
    await client.connect();
    const room = await client.join('arena', undefined, roomOptions);
    server.cut(server.session());
    await flush();
    const events = log(client);
    for (let i = 0; i < 10 && client.state !== 'closed'; i++)
      room.send('chat', { text: 'x'.repeat(20) });
    expect(client.state).toBe('closed');
    expect(events.at(-1)).toEqual(['close', CloseCode.Backpressure, ErrorCode.CONNECTION_CLOSED]);
    expect(room.state).toBe('left');
  });
});

describe('close', () => {
  it('says Goodbye, closes, and is idempotent', async () => {
    const client = makeClient();
    await client.connect();
    const closes: [CloseInfo, TickwireError | undefined][] = [];
    client.on('close', (info, error) => closes.push([info, error]));
    client.close(4100, 'see you');
    client.close();
    await flush();
    expect(client.state).toBe('closed');
    expect(closes).toEqual([[{ code: 4100, reason: 'see you', local: true }, undefined]]);
    expect(server.goodbyes).toEqual([{ code: 4100, reason: 'see you' }]);
    expect(server.connections[0]!.state).toBe('closed');
    expect(client.stats().connection.messagesOut).toBe(0);
    await expect(client.connect()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
  });

  it('fails a pending join and leaves the room', async () => {
    const client = makeClient();
    await client.connect();
    const room = await client.join('arena');
    const left: [number, string][] = [];
    room.on('leave', (code, reason) => left.push([code, reason]));
    client.close();
    expect(left).toEqual([[1000, '']]);
    expect(client.room).toBeNull();

    const other = makeClient();
    await other.connect();
    server.options.onJoin = () => 'ignore';
    const joining = rejection(other.join('arena'));
    await flush();
    other.close();
    expect((await joining).code).toBe(ErrorCode.CONNECTION_CLOSED);
  });

  it('refuses a close code no connection may close with (INVALID_ARGUMENT), sending nothing', async () => {
    const client = makeClient();
    await client.connect();
    for (const code of [999, 1005, 5000, 4000.5]) {
      expect(() => client.close(code)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    await flush();
    expect(client.state).toBe('open');
    expect(server.goodbyes).toEqual([]);
  });

  it('before connect() closes without a Goodbye', () => {
    const client = makeClient();
    const closes: number[] = [];
    client.on('close', (info) => closes.push(info.code));
    client.close();
    expect(client.state).toBe('closed');
    expect(closes).toEqual([1000]);
  });
});

describe('stats', () => {
  it('counts the connection in use, connections and replays', async () => {
    const client = makeClient();
    await client.connect();
    await client.join('arena');
    const stats = client.stats();
    expect(stats.connection.messagesOut).toBeGreaterThanOrEqual(2); // Hello, JoinRoom
    expect(stats.connection.messagesIn).toBeGreaterThanOrEqual(2); // Welcome, RoomJoined
    expect(stats).toMatchObject({ replayed: 0, connections: 1, failedAttempts: 0 });
  });
});

describe('time sync', () => {
  it('runs over the session on the client’s time source', async () => {
    const client = makeClient({ timesync: { burstIntervalMs: 100 } });
    await client.connect();
    expect(client.time).not.toBeNull();
    await flush();
    const requests = () =>
      server.session().frames.filter((frame) => frame.opcode === Opcode.TimeRequest).length;
    const before = requests();
    await flush(5);
    expect(requests()).toBe(before); // no real timer behind it
    time.advance(100);
    await flush();
    const after = requests();
    expect(after).toBeGreaterThan(before);
    time.advance(100);
    await flush();
    expect(requests()).toBeGreaterThan(after);
  });

  it('is off with timesync: false', async () => {
    const client = makeClient({ timesync: false });
    await client.connect();
    expect(client.time).toBeNull();
  });
});

describe('wire', () => {
  it('puts JoinRoom frames on the reliable channel through the session link', async () => {
    const client = makeClient();
    await client.connect();
    await client.join('arena');
    const [frame] = server.session().frames;
    expect(frame!.channel).toBe('reliable');
    expect(decodeJoinRoom(frame!.data).target).toBe('arena');
  });
});

describe('snapshotAckDelay', () => {
  it('waits until just before the ack would miss the first snapshot it can change', () => {
    // 20 Hz: the ack must reach the server before the next snapshot, less jitter (RTT / 8) and 5 ms…
    expect(snapshotAckDelay(50, 5)).toBe(39);
    expect(snapshotAckDelay(50, 30)).toBe(11);
    expect(snapshotAckDelay(50, 44)).toBe(0);
    expect(snapshotAckDelay(50, 50)).toBe(0);
    // …or, past one interval of RTT, before the one after: the wait costs no baseline either…
    expect(snapshotAckDelay(50, 60)).toBe(27);
    expect(snapshotAckDelay(50, 120)).toBe(10);
    // …except just past a snapshot, where jitter may carry an ack sent at once ahead of it.
    expect(snapshotAckDelay(50, 52)).toBe(0);
    expect(snapshotAckDelay(1000 / 30, 70)).toBe(0);
    // An RTT of exactly three intervals at 144 Hz, despite rounding.
    expect(snapshotAckDelay(1000 / 144, (3 * 1000) / 144)).toBe(0);
  });

  it('waits half the interval while the RTT is unknown, and not at all for an endless one', () => {
    expect(snapshotAckDelay(50, 0)).toBe(25);
    expect(snapshotAckDelay(50, Number.NaN)).toBe(25);
    expect(snapshotAckDelay(50, Number.POSITIVE_INFINITY)).toBe(0);
  });
});
