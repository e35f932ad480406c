// The bad-input catalogue: one test per kind of hostile or broken client. Each checks the
// typed refusal and that the server keeps serving a healthy client afterwards.

import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  CloseCode,
  type CloseInfo,
  type Connection,
  ErrorCode,
  Opcode,
  PROTOCOL_VERSION,
} from '@tickwire/core';
import {
  decodeError,
  decodeGoodbye,
  decodeRoomJoined,
  decodeRoomLeft,
  decodeWelcome,
  type ErrorFrame,
  encodeBatch,
  encodeHello,
  encodeJoinRoom,
  encodeRoomMessage,
  JoinMode,
  type WelcomeFrame,
} from '@tickwire/rooms/protocol';
import { createWsClient } from '@tickwire/transport/ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { TickwireServer, TickwireServerOptions } from './server.js';
import { arenaMessages, connectClient, startServer, until } from './test-game.js';

interface Raw {
  connection: Connection;
  frames: Uint8Array[];
  errors: ErrorFrame[];
  closed: Promise<CloseInfo>;
  goodbye: () => { code: number; reason: string } | undefined;
}

async function raw(url: string): Promise<Raw> {
  const connection = await createWsClient().connect(url);
  const frames: Uint8Array[] = [];
  const errors: ErrorFrame[] = [];
  connection.on('message', (data) => {
    frames.push(data);
    if (data[0] === Opcode.Error) errors.push(decodeError(data));
  });
  let info: CloseInfo | undefined;
  connection.on('close', (closeInfo) => {
    info = closeInfo;
  });
  // Bounded, so a connection the server keeps open fails the step that waits for it.
  const closed = until(() => info !== undefined, 3000, 'close').then(() => info!);
  closed.catch(() => {}); // only a test that awaits it fails (some leave a connection open)
  return {
    connection,
    frames,
    errors,
    closed,
    goodbye: () => {
      const frame = frames.find((data) => data[0] === Opcode.Goodbye);
      return frame && decodeGoodbye(frame);
    },
  };
}

async function hello(
  url: string,
  token = '',
  received = 0,
): Promise<Raw & { welcome: WelcomeFrame }> {
  const r = await raw(url);
  r.connection.send(encodeHello({ version: PROTOCOL_VERSION, token, received, auth: undefined }));
  await until(() => r.frames.some((data) => data[0] === Opcode.Welcome), 3000, 'Welcome');
  const welcome = decodeWelcome(r.frames.find((data) => data[0] === Opcode.Welcome)!);
  return { ...r, welcome };
}

const chatFrame = (text: string) =>
  encodeRoomMessage(arenaMessages.client.encode('chat', { text }));

describe('bad input', () => {
  let server: TickwireServer;
  let url: string;
  let tcpUrl: string;
  const options: TickwireServerOptions = {
    handshakeTimeoutMs: 300,
    session: { graceMs: 200, tokenTtlMs: 400 },
    limits: {
      maxMessageBytes: 4096,
      messagesPerSecond: 50,
      messageBurst: 50,
      rateLimitWarnings: 1,
      maxConnectionsPerAddress: 6,
    },
  };

  beforeAll(async () => {
    const started = await startServer(options);
    server = started.server;
    url = started.url('ws');
    tcpUrl = started.url('tcp');
  });
  afterAll(() => server.close());

  /** A client in a room round-trips a chat: the server still serves others. */
  async function healthy(): Promise<void> {
    const client = connectClient(url, 'ws', { reconnect: false });
    try {
      await client.connect();
      const room = await client.joinOrCreate('arena', {}, { messages: arenaMessages });
      let heard: string | undefined;
      room.onMessage('chat', (value) => {
        heard = value.text;
      });
      room.send('chat', { text: 'still here' });
      await until(() => heard !== undefined, 3000, 'the chat round trip');
      expect(heard).toBe('still here');
    } finally {
      client.close();
    }
  }

  it('oversize message: the server closes with MessageTooLarge', async () => {
    // A conforming client cannot send it (the transports agree on the limit), so speak raw
    // WebSocket: one 6000-byte binary message against the server's 4096-byte limit.
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(new Uint8Array(6000).fill(Opcode.RoomMessage));
    expect(await closed).toBe(CloseCode.MessageTooLarge);
    await healthy();
  });

  it('truncated frame: an Error frame, and the session goes on', async () => {
    const r = await hello(url);
    r.connection.send(new Uint8Array([Opcode.RoomMessage]));
    await until(() => r.errors.length === 1, 3000, 'Error frame');
    expect(r.errors[0]!.code).toBe(ErrorCode.DECODE_FAILED);
    expect(r.connection.state).toBe('open');
    r.connection.close();
    // A truncated Hello closes with ProtocolError.
    const t = await raw(url);
    t.connection.send(new Uint8Array([Opcode.Hello, 0, PROTOCOL_VERSION, 5]));
    expect((await t.closed).code).toBe(CloseCode.ProtocolError);
    await healthy();
  });

  it('unknown opcode: an Error frame naming it, and the session goes on', async () => {
    const r = await hello(url);
    r.connection.send(new Uint8Array([0x55, 0, 1, 2]));
    await until(() => r.errors.length === 1, 3000, 'Error frame');
    expect(r.errors[0]).toMatchObject({ code: ErrorCode.PROTOCOL_ERROR });
    expect(r.errors[0]!.message).toContain('0x55');
    expect(r.connection.state).toBe('open');
    expect(server.stats().rejections['unknown-opcode']).toBeGreaterThanOrEqual(1);
    r.connection.close();
    await healthy();
  });

  it('wrong protocol version: Goodbye and close with VersionMismatch', async () => {
    const r = await raw(url);
    r.connection.send(
      encodeHello({ version: PROTOCOL_VERSION + 1, token: '', received: 0, auth: undefined }),
    );
    const info = await r.closed;
    expect(info.code).toBe(CloseCode.VersionMismatch);
    expect(r.goodbye()?.reason).toMatch(`version ${PROTOCOL_VERSION + 1} is not supported`);
    await healthy();
  });

  it('invalid, tampered and replayed tokens are refused', async () => {
    // Its own server with a lifetime and a grace period no step can outlast on a loaded machine:
    // with the suite's (400 and 200 ms), four reconnects in a row raced the token's expiry.
    const started = await startServer({
      ...options,
      session: { graceMs: 10_000, tokenTtlMs: 20_000 },
    });
    const tokenUrl = started.url('ws');
    try {
      const garbage = await raw(tokenUrl);
      garbage.connection.send(
        encodeHello({ version: PROTOCOL_VERSION, token: 'garbage', received: 0, auth: undefined }),
      );
      expect((await garbage.closed).code).toBe(CloseCode.Unauthorized);

      const first = await hello(tokenUrl);
      const token = first.welcome.token;
      first.connection.close();
      await first.closed;
      const tampered = `${token.slice(0, -2)}${token.endsWith('A') ? 'B' : 'A'}${token.slice(-1)}`;
      const t = await raw(tokenUrl);
      t.connection.send(
        encodeHello({ version: PROTOCOL_VERSION, token: tampered, received: 0, auth: undefined }),
      );
      expect((await t.closed).code).toBe(CloseCode.Unauthorized);

      // A Welcome lost with its connection (the client never spoke on it): the previous token
      // still resumes, so the client is not locked out of its own session.
      const lost = await hello(tokenUrl, token, 0);
      lost.connection.close();
      await lost.closed;
      // The token works; once the client speaks on the new connection, using it again is a replay.
      const resumed = await hello(tokenUrl, token, 0);
      expect(resumed.welcome.resume).toBe('resumed');
      expect(resumed.welcome.sessionId).toBe(first.welcome.sessionId);
      resumed.connection.send(new Uint8Array([Opcode.Ping, 0, 0]));
      // The Pong shows the server read the Ping: the client has spoken on this connection.
      await until(() => resumed.frames.some((data) => data[0] === Opcode.Pong), 3000, 'Pong');
      resumed.connection.close();
      await resumed.closed;
      const replay = await raw(tokenUrl);
      replay.connection.send(
        encodeHello({ version: PROTOCOL_VERSION, token, received: 0, auth: undefined }),
      );
      expect((await replay.closed).code).toBe(CloseCode.Unauthorized);
    } finally {
      await started.server.close();
    }
    await healthy();
  });

  it('an expired token is refused with SessionExpired', async () => {
    // The suite's server: tokens live 400 ms and a dropped session 200 ms. Waiting longer than
    // both only makes the token more expired, so a slow machine cannot change the outcome.
    const first = await hello(url);
    first.connection.close();
    await first.closed;
    await new Promise((resolve) => setTimeout(resolve, 600));
    const late = await raw(url);
    late.connection.send(
      encodeHello({
        version: PROTOCOL_VERSION,
        token: first.welcome.token,
        received: 0,
        auth: undefined,
      }),
    );
    expect((await late.closed).code).toBe(CloseCode.SessionExpired);
    await healthy();
  });

  it('schema-invalid room message: a typed Error frame, and the session goes on', async () => {
    const r = await hello(url);
    r.connection.send(
      encodeJoinRoom({
        requestId: 1,
        mode: JoinMode.JoinOrCreate,
        target: 'arena',
        options: undefined,
      }),
    );
    await until(() => r.frames.some((data) => data[0] === Opcode.RoomJoined), 3000, 'joined');
    const roomId = decodeRoomJoined(r.frames.find((data) => data[0] === Opcode.RoomJoined)!).roomId;
    const client = connectClient(url, 'ws', { reconnect: false });
    await client.connect();
    const room = await client.joinById(roomId, {}, { messages: arenaMessages });
    // A chat whose text (456 bytes) is over its 200-byte limit, and a message id nobody defined.
    r.connection.send(
      new Uint8Array([Opcode.RoomMessage, 0, 2, 0xc8, 0x03, ...new Uint8Array(456).fill(65)]),
    );
    r.connection.send(new Uint8Array([Opcode.RoomMessage, 0, 99]));
    await until(() => r.errors.length === 2, 3000, 'two Error frames');
    for (const error of r.errors)
      expect([ErrorCode.DECODE_FAILED, ErrorCode.VALIDATION_FAILED]).toContain(error.code);
    expect(r.errors[0]!.message).toMatch(/text/);
    const heard = new Promise<string>((resolve) =>
      room.onMessage('chat', (value) => resolve(value.text)),
    );
    r.connection.send(chatFrame('valid after invalid'));
    expect(await heard).toBe('valid after invalid');
    r.connection.close();
    client.close();
    await healthy();
  });

  it('message flood: a RATE_LIMITED warning, then close with RateLimited', async () => {
    const r = await hello(url);
    // 20 frames every 10 ms (2000/s against a limit of 50/s), for at most 5 s.
    for (let round = 0; round < 500 && r.connection.state === 'open'; round++) {
      for (let i = 0; i < 20 && r.connection.state === 'open'; i++)
        r.connection.send(new Uint8Array([Opcode.LeaveRoom, 0]));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const info = await r.closed;
    expect(r.errors.some((e) => e.code === ErrorCode.RATE_LIMITED)).toBe(true);
    expect(info.code).toBe(CloseCode.RateLimited);
    expect(server.stats().rejections['rate-limit']).toBe(1);
    await healthy();
  });

  it('batches: their frames are rate-limited one by one; a malformed one closes with ProtocolError', async () => {
    const flooding = await hello(url);
    const leave = { frame: new Uint8Array([Opcode.LeaveRoom, 0]), reliable: true };
    // 20 messages/s, under the limit of 50/s, but 640 frames/s; for at most 5 s.
    const batch = encodeBatch(Array.from({ length: 32 }, () => leave));
    for (let round = 0; round < 100 && flooding.connection.state === 'open'; round++) {
      flooding.connection.send(batch);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await flooding.closed).code).toBe(CloseCode.RateLimited);
    // One warning, not one per frame of the batch that went over.
    expect(flooding.errors.filter((e) => e.code === ErrorCode.RATE_LIMITED)).toHaveLength(1);
    const malformed = await hello(url);
    malformed.connection.send(new Uint8Array([Opcode.Batch, 0, 200, Opcode.LeaveRoom]));
    expect((await malformed.closed).code).toBe(CloseCode.ProtocolError);
    // Before the handshake a batch is no Hello; a Hello cannot travel in one.
    const early = await raw(url);
    early.connection.send(encodeBatch([leave]));
    expect((await early.closed).code).toBe(CloseCode.ProtocolError);
    const nested = await hello(url);
    nested.connection.send(
      new Uint8Array([Opcode.Batch, 0, 8, ...encodeBatch([leave]).subarray(0, 4)]),
    );
    expect((await nested.closed).code).toBe(CloseCode.ProtocolError);
    await healthy();
  });

  it('too many connections from one address: ServerFull', async () => {
    const open: Raw[] = [];
    for (let i = 0; i < 6; i++) open.push(await raw(url));
    const extra = await raw(url);
    const info = await extra.closed;
    expect(info.code).toBe(CloseCode.ServerFull);
    expect(extra.goodbye()?.reason).toMatch(/too many connections/);
    for (const r of open) r.connection.close();
    await Promise.all(open.map((r) => r.closed));
    await healthy();
  });

  it('Goodbye with a close code outside the allowed ranges: the session ends, the server carries on', async () => {
    const r = await hello(url);
    // Code 0 (a varuint 0): no valid WebSocket close code.
    r.connection.send(new Uint8Array([Opcode.Goodbye, 0, 0, 0]));
    await r.closed;
    await until(() => server.stats().sessions === 0, 3000, 'the session ended');
    // The session was revoked: its token does not come back.
    const again = await raw(url);
    again.connection.send(
      encodeHello({
        version: PROTOCOL_VERSION,
        token: r.welcome.token,
        received: 0,
        auth: undefined,
      }),
    );
    expect((await again.closed).code).toBe(CloseCode.SessionExpired);
    await healthy();
  });

  it('slowloris over HTTP: a request whose headers never end is cut off after the handshake timeout', async () => {
    const { server: slow, http } = await startServer({ handshakeTimeoutMs: 300 });
    try {
      const { port } = new URL(http);
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      const started = Date.now();
      // The request line and one header, then nothing: headers that never end.
      socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      socket.resume();
      await Promise.race([
        once(socket, 'close'),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('still open after 5 s')), 5000),
        ),
      ]);
      // Node's default would hold it for 60 s; the handshake timeout (300 ms) plus one check.
      expect(Date.now() - started).toBeLessThan(3000);
      const health = await fetch(`${http}/health`);
      expect(health.status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('slowloris over HTTP: a socket that sends nothing at all is closed after the handshake timeout', async () => {
    const { server: slow, http } = await startServer({ handshakeTimeoutMs: 300 });
    try {
      const { port } = new URL(http);
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      const started = Date.now();
      socket.resume();
      await Promise.race([
        once(socket, 'close'),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('still open after 3 s')), 3000),
        ),
      ]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const health = await fetch(`${http}/health`);
      expect(health.status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('slowloris over TCP: a socket that never sends the transport hello is closed after the handshake timeout', async () => {
    const { hostname, port } = new URL(tcpUrl);
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    await once(socket, 'connect');
    const started = Date.now();
    socket.resume();
    try {
      await Promise.race([
        once(socket, 'close'),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('still open after 4 s')), 4000),
        ),
      ]);
      // The server's handshakeTimeoutMs (300 ms), not the transport's default of 5 s.
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      socket.destroy();
    }
    await healthy();
  });

  it('slowloris: a connection that sends no Hello is closed after the handshake timeout', async () => {
    const started = Date.now();
    const r = await raw(url);
    const info = await r.closed;
    expect(info.code).toBe(CloseCode.Timeout);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(server.stats().rejections['handshake-timeout']).toBeGreaterThanOrEqual(1);
    await healthy();
  });
});

describe('idle TCP sockets from one address', () => {
  it('beyond maxConnectionsPerAddress are refused with ServerFull before their transport hello', async () => {
    const { server, url } = await startServer({
      handshakeTimeoutMs: 5000,
      limits: { maxConnectionsPerAddress: 2 },
    });
    const sockets: Socket[] = [];
    try {
      const { hostname, port } = new URL(url('tcp'));
      const open = async (): Promise<Socket> => {
        const socket = connect(Number(port), hostname);
        socket.on('error', () => {});
        sockets.push(socket);
        await once(socket, 'connect');
        return socket;
      };
      await open();
      await open();
      const refused = await open();
      const chunks: Buffer[] = [];
      refused.on('data', (chunk: Buffer) => chunks.push(chunk));
      await Promise.race([
        once(refused, 'close'),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('still open after 3 s')), 3000),
        ),
      ]);
      // One Close frame: length, kind 4, then the close code (u16 big-endian).
      const frame = Buffer.concat(chunks);
      expect(frame[1]).toBe(4);
      expect(frame.readUInt16BE(2)).toBe(CloseCode.ServerFull);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });
});

describe('a hanging auth hook', () => {
  it('is cut off by the handshake timeout', async () => {
    const { server, url } = await startServer({
      handshakeTimeoutMs: 200,
      auth: () => new Promise<boolean>(() => undefined), // never answers
    });
    try {
      const r = await raw(url('ws'));
      r.connection.send(
        encodeHello({ version: PROTOCOL_VERSION, token: '', received: 0, auth: 'x' }),
      );
      expect((await r.closed).code).toBe(CloseCode.Timeout);
      expect(server.stats().rejections['auth-timeout']).toBe(1);
      expect(server.stats().sessions).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('kick with a long non-ASCII reason', () => {
  it('ends the session and closes its connection; the reason is cut to fit a close frame', async () => {
    const { server, url } = await startServer();
    try {
      const r = await hello(url('ws'));
      const reason = `kicked: ${'é'.repeat(100)}`; // 108 characters, 208 UTF-8 bytes
      expect(await server.kick(r.welcome.sessionId, reason)).toBe(true);
      expect((await r.closed).code).toBe(CloseCode.Kicked);
      expect(r.goodbye()?.reason).toMatch(/^kicked: é/);
      expect(server.stats().sessions).toBe(0);
      // A code no connection may close with is refused before anything ends.
      const other = await hello(url('ws'));
      await expect(server.kick(other.welcome.sessionId, 'x', 99)).rejects.toMatchObject({
        code: ErrorCode.INVALID_ARGUMENT,
      });
      expect(server.stats().sessions).toBe(1);
      other.connection.close();
    } finally {
      await server.close();
    }
  });
});

describe('a room kick with a reason longer than a RoomLeft frame takes', () => {
  it('still tells the client it left, with the reason cut to fit', async () => {
    const { server, url } = await startServer();
    try {
      const r = await hello(url('ws'));
      r.connection.send(
        encodeJoinRoom({ requestId: 1, mode: JoinMode.JoinOrCreate, target: 'arena', options: {} }),
      );
      await until(() => r.frames.some((data) => data[0] === Opcode.RoomJoined), 3000, 'RoomJoined');
      const joined = decodeRoomJoined(r.frames.find((data) => data[0] === Opcode.RoomJoined)!);
      await server.rooms
        .get(joined.roomId)!
        .kick(r.welcome.sessionId, `cheating: ${'x'.repeat(200)}`);
      await until(() => r.frames.some((data) => data[0] === Opcode.RoomLeft), 3000, 'RoomLeft');
      const left = decodeRoomLeft(r.frames.find((data) => data[0] === Opcode.RoomLeft)!);
      expect(left.code).toBe(CloseCode.Kicked);
      expect(left.reason).toMatch(/^cheating: x+\.\.\.$/);
      r.connection.close();
    } finally {
      await server.close();
    }
  });
});

describe('session churn', () => {
  it('slows handshakes per address (TryAgainLater) and caps live sessions (ServerFull)', async () => {
    const { server, url } = await startServer({
      limits: { handshakesPerSecondPerAddress: 2, maxSessions: 3 },
    });
    try {
      // A burst of 8 handshakes from one address: the bucket holds 4.
      const codes = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const r = await raw(url('ws'));
          r.connection.send(
            encodeHello({ version: PROTOCOL_VERSION, token: '', received: 0, auth: undefined }),
          );
          const outcome = await Promise.race([
            r.closed.then((info) => info.code),
            until(() => r.frames.some((data) => data[0] === Opcode.Welcome), 3000).then(() => 0),
          ]);
          return { outcome, r };
        }),
      );
      const refused = codes.filter((c) => c.outcome === CloseCode.TryAgainLater).length;
      const welcomed = codes.filter((c) => c.outcome === 0).length;
      const full = codes.filter((c) => c.outcome === CloseCode.ServerFull).length;
      expect(refused).toBe(4);
      expect(welcomed).toBe(3); // maxSessions
      expect(full).toBe(1);
      expect(server.stats().rejections['handshake-rate']).toBe(4);
      expect(server.stats().rejections['max-sessions']).toBe(1);
      for (const { r } of codes) r.connection.close();
    } finally {
      await server.close();
    }
  });
});
