import { connect as netConnect, type Socket } from 'node:net';
import {
  CloseCode,
  type Connection,
  ErrorCode,
  isTickwireError,
  type ServerTransport,
  type TickwireError,
} from '@tickwire/core';
import { nextEvent, withTimeout } from '@tickwire/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  encodeCloseBody,
  FrameKind,
  HELLO_BODY_BYTES,
  PING_BODY_BYTES,
  writeHelloBody,
} from '../shared/wire.js';
import { caught, MS } from '../test-support.js';
import { parseTcpUrl } from './client.js';
import { encodeFrame, FrameDecoder, writeVarint } from './frame.js';
import { createTcpClient, createTcpServer, type TcpServerOptions } from './index.js';

interface RawFrame {
  kind: number;
  body: Uint8Array;
}

/** A hand-driven TCP peer speaking (or breaking) the frame protocol. */
interface RawPeer {
  socket: Socket;
  frames: RawFrame[];
  /** Resolves with the first frame of `kind` (already received or next). */
  frame(kind: number): Promise<RawFrame>;
  closed(): Promise<void>;
}

const peers: RawPeer[] = [];

function helloFrame(maxMessageBytes = 1 << 20): Uint8Array {
  const body = new Uint8Array(HELLO_BODY_BYTES);
  writeHelloBody(body, 0, maxMessageBytes);
  return encodeFrame(FrameKind.Hello, body);
}

async function rawPeer(url: string, sendHello = true, allowHalfOpen = false): Promise<RawPeer> {
  const { host, port } = parseTcpUrl(url);
  // allowHalfOpen: the peer does not close its side when the server closes its own.
  const socket = netConnect({ host, port, allowHalfOpen });
  const frames: RawFrame[] = [];
  const waiting: Array<() => void> = [];
  const decoder = new FrameDecoder(1 << 20, (kind, source, offset, length) => {
    frames.push({ kind, body: source.slice(offset, offset + length) });
    for (const wake of waiting.splice(0)) wake();
  });
  socket.on('data', (chunk) => decoder.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await withTimeout(
    new Promise<void>((resolve) => socket.once('connect', () => resolve())),
    MS,
    'raw connect',
  );
  if (sendHello) socket.write(helloFrame());
  const frame = (kind: number): Promise<RawFrame> =>
    withTimeout(
      new Promise<RawFrame>((resolve) => {
        const check = (): void => {
          const found = frames.find((f) => f.kind === kind);
          if (found) resolve(found);
          else waiting.push(check);
        };
        check();
      }),
      MS,
      `frame of kind ${kind}`,
    );
  const peer = { socket, frames, frame, closed: () => withTimeout(closed, MS, 'raw socket close') };
  peers.push(peer);
  return peer;
}

function closeCodeOf(frame: RawFrame): number {
  return ((frame.body[0] ?? 0) << 8) | (frame.body[1] ?? 0);
}

describe('tcp server', () => {
  let server: ServerTransport;

  async function start(options: TcpServerOptions = {}): Promise<string> {
    server = createTcpServer(options);
    return (await server.listen()).url;
  }

  /** Accepts one raw peer (handshake done); resolves with both ends. */
  async function acceptRaw(url: string): Promise<{ peer: RawPeer; connection: Connection }> {
    const accepted = nextEvent(server, 'connection', MS);
    const peer = await rawPeer(url);
    const [connection] = await accepted;
    await peer.frame(FrameKind.Hello);
    return { peer, connection };
  }

  async function stillServes(url: string): Promise<void> {
    const accepted = nextEvent(server, 'connection', MS);
    const client = await createTcpClient().connect(url, { timeoutMs: MS });
    const [serverSide] = await accepted;
    const got = nextEvent(serverSide, 'message', MS);
    client.send(Uint8Array.of(1, 2, 3));
    expect([...(await got)[0]]).toEqual([1, 2, 3]);
    client.close();
  }

  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.socket.destroy();
    await withTimeout(server.close(), MS, 'server.close()');
  });

  it('closes a peer that sends an oversize frame with MessageTooLarge and keeps serving', async () => {
    const url = await start({ maxMessageBytes: 1024 });
    const { peer, connection } = await acceptRaw(url);
    const errors: TickwireError[] = [];
    connection.on('error', (error) => errors.push(error));
    const closed = nextEvent(connection, 'close', MS);
    const header = new Uint8Array(8);
    const end = writeVarint(header, 0, 5000);
    header[end] = FrameKind.Reliable;
    peer.socket.write(header.subarray(0, end + 1));
    const [info] = await closed;
    expect(info).toEqual({
      code: CloseCode.MessageTooLarge,
      reason: 'message too large',
      local: true,
    });
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.MESSAGE_TOO_LARGE]);
    expect(closeCodeOf(await peer.frame(FrameKind.Close))).toBe(CloseCode.MessageTooLarge);
    await peer.closed();
    expect(server.connections.size).toBe(0);
    await stillServes(url);
  });

  it('closes a peer that sends an unknown frame kind with ProtocolError', async () => {
    const url = await start();
    const { peer, connection } = await acceptRaw(url);
    const error = nextEvent(connection, 'error', MS);
    const closed = nextEvent(connection, 'close', MS);
    peer.socket.write(Uint8Array.of(2, 0x42, 1, 2));
    expect((await error)[0].code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect((await closed)[0].code).toBe(CloseCode.ProtocolError);
    expect(closeCodeOf(await peer.frame(FrameKind.Close))).toBe(CloseCode.ProtocolError);
    await stillServes(url);
  });

  it('reports a peer that does not speak the protocol as a server error, never a connection', async () => {
    const url = await start();
    let connections = 0;
    server.on('connection', () => connections++);
    const error = nextEvent(server, 'error', MS);
    const peer = await rawPeer(url, false);
    peer.socket.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    expect(isTickwireError((await error)[0], ErrorCode.PROTOCOL_ERROR)).toBe(true);
    await peer.closed();
    expect(connections).toBe(0);
    await stillServes(url);
  });

  it('drops a client that never sends its hello', async () => {
    const url = await start({ handshakeTimeoutMs: 50 });
    const peer = await rawPeer(url, false);
    expect(closeCodeOf(await peer.frame(FrameKind.Close))).toBe(CloseCode.Timeout);
    await peer.closed();
  });

  it('reassembles a frame that arrives one byte per read', async () => {
    const url = await start();
    const { peer, connection } = await acceptRaw(url);
    const body = Uint8Array.from({ length: 300 }, (_, i) => (i * 13) & 0xff);
    const frame = encodeFrame(FrameKind.Unreliable, body);
    const got = nextEvent(connection, 'message', MS);
    for (let i = 0; i < frame.length; i++) {
      await new Promise<void>((resolve) =>
        peer.socket.write(frame.subarray(i, i + 1), () => resolve()),
      );
    }
    const [data, channel] = await got;
    expect(channel).toBe('unreliable');
    expect([...data]).toEqual([...body]);
    expect(connection.stats.bytesIn).toBe(300);
  });

  it('delivers many frames written in one chunk, in order, on their channels', async () => {
    const url = await start();
    const { peer, connection } = await acceptRaw(url);
    const received: Array<[number, string]> = [];
    const all = new Promise<void>((resolve) => {
      connection.on('message', (data, channel) => {
        received.push([data[0]!, channel]);
        if (received.length === 200) resolve();
      });
    });
    const frames = Array.from({ length: 200 }, (_, i) =>
      encodeFrame(
        i % 3 === 0 ? FrameKind.Unreliable : FrameKind.Reliable,
        Uint8Array.of(i & 0xff, 9),
      ),
    );
    const chunk = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0));
    let at = 0;
    for (const f of frames) {
      chunk.set(f, at);
      at += f.length;
    }
    peer.socket.write(chunk);
    await withTimeout(all, MS, '200 messages');
    expect(received).toEqual(
      Array.from({ length: 200 }, (_, i) => [i & 0xff, i % 3 === 0 ? 'unreliable' : 'reliable']),
    );
    expect(connection.stats.messagesIn).toBe(200);
  });

  it('closes a peer that stops answering pings with Timeout', async () => {
    const url = await start({ heartbeatIntervalMs: 20, heartbeatTimeoutMs: 60 });
    const { peer, connection } = await acceptRaw(url);
    const [info] = await nextEvent(connection, 'close', MS);
    expect(info.code).toBe(CloseCode.Timeout);
    expect(info.local).toBe(true);
    expect(peer.frames.some((f) => f.kind === FrameKind.Ping)).toBe(true);
    await peer.closed();
  });

  it('drops and counts unreliable sends while the peer does not read, never queueing them', async () => {
    const url = await start({ unreliableDropThresholdBytes: 65_536 });
    const { peer, connection } = await acceptRaw(url);
    peer.socket.pause();
    const message = new Uint8Array(1024);
    let dropped = 0;
    for (let i = 0; i < 100_000 && dropped < 100; i++) {
      if (!connection.send(message, 'unreliable')) dropped++;
      expect(connection.bufferedAmount).toBeLessThanOrEqual(65_536 + 1024 + 3);
    }
    expect(dropped).toBe(100);
    expect(connection.stats.unreliableDropped).toBe(100);
    expect(connection.state).toBe('open');
  });

  it('closes with Backpressure when reliable sends outgrow maxBufferedBytes', async () => {
    const url = await start({ maxBufferedBytes: 256 * 1024, maxMessageBytes: 16 * 1024 });
    const { peer, connection } = await acceptRaw(url);
    peer.socket.pause();
    const closed = nextEvent(connection, 'close', MS);
    const message = new Uint8Array(16 * 1024);
    let accepted = true;
    for (let i = 0; i < 20_000 && accepted; i++) accepted = connection.send(message, 'reliable');
    expect(accepted).toBe(false);
    const [info] = await closed;
    expect(info.code).toBe(CloseCode.Backpressure);
    expect(info.local).toBe(true);
    expect(connection.state).toBe('closed');
  });

  it('closes a peer that never completes the close handshake after closeTimeoutMs', async () => {
    const url = await start({ closeTimeoutMs: 100 });
    const { peer, connection } = await acceptRaw(url);
    // A paused peer never reads our close frame, so only the timeout can finish the close.
    peer.socket.pause();
    const closed = nextEvent(connection, 'close', MS);
    await withTimeout(server.close(CloseCode.ServiceRestart, 'restart'), MS, 'server.close()');
    expect((await closed)[0]).toEqual({
      code: CloseCode.ServiceRestart,
      reason: 'restart',
      local: true,
    });
    expect(server.connections.size).toBe(0);
  });

  it('destroys a socket whose peer sent Close but never closes its side, open or not', async () => {
    const url = await start({ closeTimeoutMs: 100 });
    const closeFrame = encodeFrame(FrameKind.Close, encodeCloseBody(CloseCode.Normal, 'bye'));
    // Open: the connection closes at once, then the half-open socket must not outlive it.
    const accepted = nextEvent(server, 'connection', MS);
    const open = await rawPeer(url, true, true);
    const [connection] = await accepted;
    const closed = nextEvent(connection, 'close', MS);
    open.socket.write(closeFrame);
    expect((await closed)[0]).toEqual({ code: CloseCode.Normal, reason: 'bye', local: false });
    // Before the handshake: the Close also ends the handshake timer.
    const early = await rawPeer(url, false, true);
    early.socket.write(closeFrame);
    // node:net's close() waits for every socket: it returns once both are destroyed.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await withTimeout(server.close(), 2_000, 'server.close() with half-open sockets');
  });

  it('refuses a Close frame with a code no peer may send (1006) as a protocol error', async () => {
    const url = await start();
    const { peer, connection } = await acceptRaw(url);
    const error = nextEvent(connection, 'error', MS);
    const closed = nextEvent(connection, 'close', MS);
    peer.socket.write(encodeFrame(FrameKind.Close, encodeCloseBody(1006, 'forged')));
    expect((await error)[0].code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect((await closed)[0]).toMatchObject({ code: CloseCode.ProtocolError, local: true });
  });

  it('answers pings without growing the send buffer of a peer that does not read', async () => {
    const url = await start({ unreliableDropThresholdBytes: 65_536 });
    const { peer, connection } = await acceptRaw(url);
    peer.socket.pause();
    const ping = encodeFrame(FrameKind.Ping, new Uint8Array(PING_BODY_BYTES));
    const chunk = new Uint8Array(ping.length * 100_000);
    for (let i = 0; i < 100_000; i++) chunk.set(ping, i * ping.length);
    let most = 0;
    connection.on('message', () => {});
    // 20 MB of pings: far more than the kernel's buffers take, so unread pongs pile up here.
    for (let i = 0; i < 20; i++) {
      await withTimeout(
        new Promise<void>((resolve) => peer.socket.write(chunk, () => resolve())),
        MS,
        'write pings',
      );
      most = Math.max(most, connection.bufferedAmount);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    most = Math.max(most, connection.bufferedAmount);
    expect(most).toBeLessThanOrEqual(65_536 + ping.length);
    expect(connection.state).toBe('open');
  });

  it('refuses a second listen() while the first is under way, and a close() meanwhile leaves nothing listening', async () => {
    server = createTcpServer();
    const first = server.listen();
    const second = server.listen();
    await expect(second).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
    const { url } = await first;
    await stillServes(url);
    // A close() while listen() is under way: listen() fails, and nothing is left listening.
    const other = createTcpServer();
    const starting = other.listen();
    await other.close();
    await expect(starting).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(other.address()).toBeNull();
  });

  it('refuses clients beyond maxConnections with ServerFull', async () => {
    const url = await start({ maxConnections: 1 });
    const client = createTcpClient();
    const first = await client.connect(url, { timeoutMs: MS });
    let caught: unknown;
    try {
      await client.connect(url, { timeoutMs: MS });
    } catch (error) {
      caught = error;
    }
    expect(isTickwireError(caught, ErrorCode.CONNECT_FAILED)).toBe(true);
    expect((caught as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
    expect(first.state).toBe('open');
    expect(server.connections.size).toBe(1);
  });

  it('counts sockets still in the handshake toward maxConnections', async () => {
    const url = await start({ maxConnections: 2, handshakeTimeoutMs: 30_000 });
    const idle = [await rawPeer(url, false), await rawPeer(url, false)];
    const refused = await rawPeer(url, false);
    expect(closeCodeOf(await refused.frame(FrameKind.Close))).toBe(CloseCode.ServerFull);
    await refused.closed();
    const error = await caught(createTcpClient().connect(url, { timeoutMs: MS }));
    expect((error as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
    // A handshaking socket that leaves frees its place.
    idle[0]!.socket.destroy();
    await idle[0]!.closed();
    const deadline = Date.now() + MS;
    for (;;) {
      const client = await createTcpClient()
        .connect(url, { timeoutMs: MS })
        .catch(() => null);
      if (client !== null) {
        expect(client.state).toBe('open');
        client.close();
        break;
      }
      if (Date.now() > deadline) throw new Error('no place freed');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });

  it('refuses handshakes from one address beyond maxHandshakesPerAddress; open ones do not count', async () => {
    const url = await start({ maxHandshakesPerAddress: 1, handshakeTimeoutMs: 30_000 });
    const idle = await rawPeer(url, false);
    const error = await caught(createTcpClient().connect(url, { timeoutMs: MS }));
    expect((error as TickwireError).details).toMatchObject({ closeCode: CloseCode.ServerFull });
    const accepted = nextEvent(server, 'connection', MS);
    idle.socket.write(helloFrame());
    await accepted;
    await idle.frame(FrameKind.Hello);
    const second = await createTcpClient().connect(url, { timeoutMs: MS });
    expect(second.state).toBe('open');
    expect(server.connections.size).toBe(2);
    second.close();
  });

  it('refuses a frame header bigger than a hello before the handshake, at once', async () => {
    const url = await start({ handshakeTimeoutMs: 30_000 });
    for (const kind of [FrameKind.Reliable, FrameKind.Hello]) {
      const error = nextEvent(server, 'error', MS);
      const peer = await rawPeer(url, false);
      const header = new Uint8Array(8);
      const end = writeVarint(header, 0, 1_000_000);
      header[end] = kind;
      peer.socket.write(header.subarray(0, end + 1));
      expect(closeCodeOf(await peer.frame(FrameKind.Close))).toBe(CloseCode.ProtocolError);
      expect((await error)[0].code).toBe(ErrorCode.PROTOCOL_ERROR);
      await peer.closed();
    }
    // A small message frame before the hello is refused from its header too.
    const peer = await rawPeer(url, false);
    peer.socket.write(Uint8Array.of(100, FrameKind.Reliable));
    expect(closeCodeOf(await peer.frame(FrameKind.Close))).toBe(CloseCode.ProtocolError);
    await peer.closed();
    expect(server.connections.size).toBe(0);
    await stillServes(url);
  });

  it('fails listen with ADDRESS_IN_USE on a taken port', async () => {
    const url = await start();
    const { port } = parseTcpUrl(url);
    const second = createTcpServer({ port });
    await expect(second.listen()).rejects.toMatchObject({ code: ErrorCode.ADDRESS_IN_USE });
    await second.close();
  });

  it('rejects invalid options with INVALID_ARGUMENT', () => {
    server = createTcpServer();
    expect(() => createTcpServer({ maxMessageBytes: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createTcpServer({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 50 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createTcpServer({ port: 70_000 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => createTcpServer({ maxHandshakesPerAddress: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
