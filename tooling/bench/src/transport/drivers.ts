import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createConnection, createServer, type Socket as NetSocket } from 'node:net';
import type { Connection, ServerTransport } from '@tickwire/core';
import WebSocket, { WebSocketServer } from 'ws';

/** One side of an established link, as the benchmark drives it. */
export interface Link {
  send(data: Uint8Array): void;
  /** A promise to await before the next send when the sender must back off, else null. */
  ready(): Promise<void> | null;
  onMessage(handler: (data: Uint8Array) => void): void;
  close(): Promise<void>;
}

/** A listening side; `onLink` gets every accepted link. */
export interface Listener {
  port: number;
  close(): Promise<void>;
}

/** A transport under test: Tickwire's adapter or the raw library it is measured against. */
export interface Driver {
  listen(onLink: (link: Link) => void): Promise<Listener>;
  connect(port: number): Promise<Link>;
}

export const driverNames = [
  'tickwire-ws',
  'ws',
  'tickwire-tcp',
  'net',
  'net-corked',
  'tickwire-udp-reliable',
  'tickwire-udp-unreliable',
  'dgram',
] as const;
export type DriverName = (typeof driverNames)[number];

const HOST = '127.0.0.1';
/** Senders back off above this many buffered bytes and resume once below it. */
const HIGH_WATER_BYTES = 1 << 20;
const UDP_HIGH_WATER_BYTES = 48 * 1024;
/** Raw datagrams are sent in bursts of this many per event-loop turn (unpaced bursts overflow). */
const DGRAM_BURST = 32;
const MAX_MESSAGE_BYTES = 1 << 20;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function waitBelow(buffered: () => number, limit: number): Promise<void> {
  for (let turns = 0; buffered() > limit; turns++) {
    if (turns > 1_000_000) throw new Error('sender never drained');
    await nextTurn();
  }
}

function tickwireLink(
  connection: Connection,
  channel: 'reliable' | 'unreliable',
  highWater: number,
): Link {
  return {
    send: (data) => {
      connection.send(data, channel);
    },
    ready: () =>
      connection.bufferedAmount > highWater
        ? waitBelow(() => connection.bufferedAmount, highWater / 2)
        : null,
    onMessage: (handler) => {
      connection.on('message', (data) => handler(data));
    },
    close: async () => {
      if (connection.state === 'closed') return;
      const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
      connection.close();
      await closed;
    },
  };
}

function tickwireDriver(
  makeServer: () => ServerTransport,
  connect: (port: number) => Promise<Connection>,
  channel: 'reliable' | 'unreliable',
  highWater = HIGH_WATER_BYTES,
): Driver {
  return {
    async listen(onLink) {
      const server = makeServer();
      server.on('connection', (connection) => onLink(tickwireLink(connection, channel, highWater)));
      const address = await server.listen();
      return { port: address.port, close: () => server.close() };
    },
    async connect(port) {
      return tickwireLink(await connect(port), channel, highWater);
    },
  };
}

function rawWsLink(socket: WebSocket): Link {
  return {
    send: (data) => socket.send(data, { binary: true }),
    ready: () =>
      socket.bufferedAmount > HIGH_WATER_BYTES
        ? waitBelow(() => socket.bufferedAmount, HIGH_WATER_BYTES / 2)
        : null,
    onMessage: (handler) => {
      socket.binaryType = 'nodebuffer';
      socket.on('message', (data: Buffer) => handler(data));
    },
    close: async () => {
      if (socket.readyState === WebSocket.CLOSED) return;
      const closed = once(socket, 'close');
      socket.close();
      await closed;
    },
  };
}

const rawWs: Driver = {
  async listen(onLink) {
    const server = new WebSocketServer({ host: HOST, port: 0, maxPayload: MAX_MESSAGE_BYTES });
    await once(server, 'listening');
    server.on('connection', (socket) => onLink(rawWsLink(socket)));
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no TCP address');
    return {
      port: address.port,
      close: () =>
        new Promise<void>((resolve) => {
          for (const client of server.clients) client.terminate();
          server.close(() => resolve());
        }),
    };
  },
  async connect(port) {
    const socket = new WebSocket(`ws://${HOST}:${port}`, { maxPayload: MAX_MESSAGE_BYTES });
    await once(socket, 'open');
    return rawWsLink(socket);
  },
};

/**
 * Raw `net` with the plainest framing: a 4-byte length, then the payload. `corked`: writes of one
 * event-loop turn are corked and flushed together (what a careful hand-written server does);
 * otherwise one write per message.
 */
function rawNetLink(socket: NetSocket, corked: boolean): Link {
  socket.setNoDelay(true);
  let blocked = false;
  let isCorked = false;
  const uncork = () => {
    isCorked = false;
    socket.uncork();
  };
  let handler: (data: Uint8Array) => void = () => {};
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= 4) {
      const size = pending.readUInt32BE(offset);
      if (pending.length - offset - 4 < size) break;
      handler(pending.subarray(offset + 4, offset + 4 + size));
      offset += 4 + size;
    }
    pending = pending.subarray(offset);
  });
  return {
    send: (data) => {
      const frame = Buffer.allocUnsafe(4 + data.byteLength);
      frame.writeUInt32BE(data.byteLength, 0);
      frame.set(data, 4);
      if (corked && !isCorked) {
        isCorked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      blocked = !socket.write(frame);
    },
    ready: () => {
      if (!blocked) return null;
      blocked = false;
      // The drain may already have happened (e.g. between two bursts).
      if (!socket.writableNeedDrain) return null;
      return once(socket, 'drain').then(() => undefined);
    },
    onMessage: (next) => {
      handler = next;
    },
    close: async () => {
      if (socket.destroyed) return;
      const closed = once(socket, 'close');
      socket.end();
      await closed;
    },
  };
}

const rawNet = (corked: boolean): Driver => ({
  async listen(onLink) {
    const sockets = new Set<NetSocket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      onLink(rawNetLink(socket, corked));
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    return {
      port: address.port,
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    };
  },
  async connect(port) {
    const socket = createConnection({ host: HOST, port });
    await once(socket, 'connect');
    return rawNetLink(socket, corked);
  },
});

/** Raw `dgram`: one message per datagram, sent in bursts of DGRAM_BURST per event-loop turn. */
interface DgramLink extends Link {
  /** Hands a datagram that the socket received from this link's peer to its handlers. */
  deliver(data: Uint8Array): void;
}

function rawDgramLink(socket: Socket, port: number, address: string, owned: boolean): DgramLink {
  let sentInTurn = 0;
  const handlers: ((data: Uint8Array) => void)[] = [];
  return {
    send: (data) => {
      sentInTurn++;
      socket.send(data, port, address);
    },
    ready: () => {
      if (sentInTurn < DGRAM_BURST) return null;
      sentInTurn = 0;
      return nextTurn();
    },
    onMessage: (handler) => {
      handlers.push(handler);
    },
    deliver: (data) => {
      for (const handler of handlers) handler(data);
    },
    close: async () => {
      if (owned) socket.close();
    },
  };
}

const rawDgram: Driver = {
  async listen(onLink) {
    const socket = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    const links = new Map<string, DgramLink>();
    socket.on('message', (data: Buffer, remote: RemoteInfo) => {
      const key = `${remote.address}:${remote.port}`;
      let link = links.get(key);
      if (!link) {
        link = rawDgramLink(socket, remote.port, remote.address, false);
        links.set(key, link);
        onLink(link);
      }
      link.deliver(data);
    });
    socket.bind(0, HOST);
    await once(socket, 'listening');
    return {
      port: socket.address().port,
      close: async () => {
        socket.close();
      },
    };
  },
  async connect(port) {
    const socket = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
    socket.bind(0, HOST);
    await once(socket, 'listening');
    const link = rawDgramLink(socket, port, HOST, true);
    socket.on('message', (data: Buffer) => link.deliver(data));
    return link;
  },
};

const url = (scheme: string, port: number) => `${scheme}://${HOST}:${port}`;

/** Builds a driver by name; Tickwire's adapters load only when asked for. */
export async function createDriver(name: DriverName): Promise<Driver> {
  switch (name) {
    case 'tickwire-ws': {
      const { createWsClient, createWsServer } = await import('@tickwire/transport/ws');
      return tickwireDriver(
        () => createWsServer({ host: HOST, port: 0, maxMessageBytes: MAX_MESSAGE_BYTES }),
        (port) => createWsClient({ maxMessageBytes: MAX_MESSAGE_BYTES }).connect(url('ws', port)),
        'reliable',
      );
    }
    case 'ws':
      return rawWs;
    case 'tickwire-tcp': {
      const { createTcpClient, createTcpServer } = await import('@tickwire/transport/tcp');
      return tickwireDriver(
        () => createTcpServer({ host: HOST, port: 0, maxMessageBytes: MAX_MESSAGE_BYTES }),
        (port) => createTcpClient({ maxMessageBytes: MAX_MESSAGE_BYTES }).connect(url('tcp', port)),
        'reliable',
      );
    }
    case 'net':
      return rawNet(false);
    case 'net-corked':
      return rawNet(true);
    case 'tickwire-udp-reliable':
    case 'tickwire-udp-unreliable': {
      const { createUdpClient, createUdpServer } = await import('@tickwire/transport/udp');
      return tickwireDriver(
        () => createUdpServer({ host: HOST, port: 0 }),
        (port) => createUdpClient().connect(url('udp', port)),
        name === 'tickwire-udp-reliable' ? 'reliable' : 'unreliable',
        UDP_HIGH_WATER_BYTES,
      );
    }
    case 'dgram':
      return rawDgram;
  }
}
