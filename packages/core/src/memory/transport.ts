import { copyBytes } from '../bytes.js';
import { Emitter, subscribable } from '../emitter.js';
import { ErrorCode, TickwireError } from '../errors.js';
import { CloseCode, checkCloseArgs } from '../protocol.js';
import {
  type Channel,
  type ClientTransport,
  type CloseInfo,
  type Connection,
  type ConnectionEvents,
  type ConnectionState,
  checkSend,
  createConnectionStats,
  type ServerTransport,
  type ServerTransportEvents,
  type TransportAddress,
} from '../transport.js';

/** Limits of in-memory connections. */
export interface MemoryConnectionOptions {
  /**
   * Largest message in bytes.
   * @default 1048576
   */
  maxMessageBytes?: number;
  /**
   * Unreliable sends are dropped (and counted) while `bufferedAmount` is above this.
   * @default 65536
   */
  unreliableDropThresholdBytes?: number;
}

interface Pending {
  data: Uint8Array;
  channel: Channel;
}

/** One end of an in-memory link, plus the hooks its peer and server drive. */
interface MemoryEnd extends Connection {
  link(peer: MemoryEnd): void;
  /** Hands everything queued to the peer now. */
  drain(): void;
  receive(data: Uint8Array, channel: Channel): void;
  finishClose(info: CloseInfo): void;
  /** Starts delivering: the owner has had its chance to attach listeners. */
  start(): void;
}

let nextConnectionNumber = 1;

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be a positive integer, got ${value}`,
    );
  }
  return value;
}

function checkLimits(options: MemoryConnectionOptions): Required<MemoryConnectionOptions> {
  const threshold = options.unreliableDropThresholdBytes ?? 65_536;
  if (!Number.isFinite(threshold) || threshold < 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `unreliableDropThresholdBytes must be a finite number >= 0, got ${threshold}`,
    );
  }
  return {
    maxMessageBytes: positiveInt('maxMessageBytes', options.maxMessageBytes ?? 1 << 20),
    unreliableDropThresholdBytes: threshold,
  };
}

/** One end of an in-memory link; delivery is asynchronous (one microtask per burst) and in order. */
function createMemoryEnd(remoteAddress: string, options: MemoryConnectionOptions): MemoryEnd {
  const id = `mem-${nextConnectionNumber++}`;
  const { maxMessageBytes, unreliableDropThresholdBytes: dropThreshold } = checkLimits(options);
  const events = new Emitter<ConnectionEvents>();
  const stats = createConnectionStats();
  let state: ConnectionState = 'open';
  let bufferedAmount = 0;
  let peer: MemoryEnd;
  let queue: Pending[] = [];
  let flushScheduled = false;
  let closeRequest: { code: number; reason: string } | null = null;
  let closeEmitted = false;
  // Messages that arrived before the owner could attach listeners (see `start`).
  let inbox: Pending[] | null = [];
  let pendingClose: CloseInfo | null = null;

  const drain = (): void => {
    const batch = queue;
    queue = [];
    for (const item of batch) {
      bufferedAmount -= item.data.byteLength;
      peer.receive(item.data, item.channel);
    }
  };
  const flush = (): void => {
    flushScheduled = false;
    drain();
    if (closeRequest && state === 'closing') {
      const { code, reason } = closeRequest;
      // What the peer sent before it learnt of the close still arrives, as on a WebSocket.
      peer.drain();
      end.finishClose({ code, reason, local: true });
      peer.finishClose({ code, reason, local: false });
    }
  };
  const scheduleFlush = (): void => {
    if (flushScheduled) return;
    flushScheduled = true;
    queueMicrotask(flush);
  };

  const end: MemoryEnd = {
    id,
    remoteAddress,
    maxMessageBytes,
    stats,
    get state() {
      return state;
    },
    get bufferedAmount() {
      return bufferedAmount;
    },
    on: (event, listener) => {
      // Attaching a message listener is the owner saying it is ready for what is waiting.
      if (event === 'message' && inbox) queueMicrotask(() => end.start());
      return events.on(event, listener);
    },
    once: (event, listener) => {
      if (event === 'message' && inbox) queueMicrotask(() => end.start());
      return events.once(event, listener);
    },
    off: (event, listener) => events.off(event, listener),
    send(data, channel = 'reliable') {
      checkSend(id, state, data, channel, maxMessageBytes);
      if (channel === 'unreliable' && bufferedAmount > dropThreshold) {
        stats.unreliableDropped++;
        return false;
      }
      queue.push({ data: copyBytes(data), channel });
      bufferedAmount += data.byteLength;
      stats.bytesOut += data.byteLength;
      stats.messagesOut++;
      stats.packetsOut++;
      scheduleFlush();
      return true;
    },
    close(code: number = CloseCode.Normal, reason = '') {
      if (state === 'closing' || state === 'closed') return;
      checkCloseArgs(code, reason);
      state = 'closing';
      closeRequest = { code, reason };
      scheduleFlush();
    },
    link(other) {
      peer = other;
    },
    drain,
    receive(data, channel) {
      if (closeEmitted) return;
      stats.bytesIn += data.byteLength;
      stats.messagesIn++;
      stats.packetsIn++;
      if (inbox) inbox.push({ data, channel });
      else events.emit('message', data, channel);
    },
    start() {
      const waiting = inbox;
      if (!waiting) return;
      inbox = null;
      for (const item of waiting) events.emit('message', item.data, item.channel);
      if (pendingClose) end.finishClose(pendingClose);
    },
    finishClose(info) {
      if (closeEmitted) return;
      state = 'closed';
      if (inbox) {
        pendingClose = info;
        return;
      }
      closeEmitted = true;
      queue = [];
      bufferedAmount = 0;
      events.emit('close', info);
    },
  };
  return end;
}

function linkEnds(a: MemoryEnd, b: MemoryEnd): void {
  a.link(b);
  b.link(a);
}

/** A pair of connected in-memory connections (`[a, b]`): what `a` sends, `b` receives. */
export function createMemoryConnectionPair(
  options: MemoryConnectionOptions = {},
): [Connection, Connection] {
  const a = createMemoryEnd('memory:b', options);
  const b = createMemoryEnd('memory:a', options);
  linkEnds(a, b);
  a.start();
  b.start();
  return [a, b];
}

type Acceptor = (clientOptions: MemoryConnectionOptions) => Connection;

/** A namespace of in-memory servers that clients reach by name (`memory://name`). */
export interface MemoryNetwork {
  /** Names of the servers listening on it. */
  listening(): string[];
}

const registries = new WeakMap<MemoryNetwork, Map<string, Acceptor>>();

function registryOf(network: MemoryNetwork): Map<string, Acceptor> {
  const registry = registries.get(network);
  if (!registry) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      'network must come from createMemoryNetwork()',
    );
  }
  return registry;
}

/** Creates an isolated {@link MemoryNetwork}. */
export function createMemoryNetwork(): MemoryNetwork {
  const registry = new Map<string, Acceptor>();
  const network: MemoryNetwork = { listening: () => [...registry.keys()] };
  registries.set(network, registry);
  return network;
}

/** The network used when none is given. */
export const defaultMemoryNetwork: MemoryNetwork = createMemoryNetwork();

/** Options of {@link createMemoryServer}. */
export interface MemoryServerOptions extends MemoryConnectionOptions {
  /** Network to listen on. @default defaultMemoryNetwork */
  network?: MemoryNetwork;
  /** Name clients connect to; a unique one is chosen if omitted. */
  name?: string;
  /**
   * Connections beyond this are refused.
   * @default 10000
   */
  maxConnections?: number;
}

let nextServerNumber = 1;
let nextClientNumber = 1;

/** An in-memory {@link ServerTransport}: the embedded default for tests and single-process games. */
export function createMemoryServer(options: MemoryServerOptions = {}): ServerTransport {
  const servers = registryOf(options.network ?? defaultMemoryNetwork);
  const maxConnections = positiveInt('maxConnections', options.maxConnections ?? 10_000);
  checkLimits(options);
  const events = new Emitter<ServerTransportEvents>();
  const connections = new Set<Connection>();
  let address: TransportAddress | null = null;

  const accept: Acceptor = (clientOptions) => {
    const host = address?.host ?? '';
    if (connections.size >= maxConnections) {
      throw new TickwireError(
        ErrorCode.CONNECT_FAILED,
        `memory server '${host}' is full (${maxConnections} connections)`,
        { details: { closeCode: CloseCode.ServerFull } },
      );
    }
    const serverSide = createMemoryEnd(`memory-client-${nextClientNumber++}`, options);
    const clientSide = createMemoryEnd(`memory://${host}`, {
      ...clientOptions,
      maxMessageBytes: clientOptions.maxMessageBytes ?? options.maxMessageBytes,
    });
    linkEnds(serverSide, clientSide);
    connections.add(serverSide);
    serverSide.on('close', () => connections.delete(serverSide));
    events.emit('connection', serverSide);
    serverSide.start();
    // The client attaches listeners after `await connect()`: delivery starts when it adds a
    // message listener, or a macrotask later at the latest (so a close still gets through).
    setTimeout(() => clientSide.start(), 0);
    return clientSide;
  };

  return {
    connections,
    ...subscribable(events),
    address: () => address,
    async listen() {
      if (address) return address;
      const name = options.name ?? `server-${nextServerNumber++}`;
      if (servers.has(name)) {
        throw new TickwireError(ErrorCode.ADDRESS_IN_USE, `memory address '${name}' is in use`);
      }
      servers.set(name, accept);
      address = { protocol: 'memory', host: name, port: 0, url: `memory://${name}` };
      return address;
    },
    async close(code: number = CloseCode.GoingAway, reason = 'server closing') {
      checkCloseArgs(code, reason);
      if (address) servers.delete(address.host);
      address = null;
      await Promise.all(
        [...connections].map(
          (connection) =>
            new Promise<void>((resolve) => {
              connection.once('close', () => resolve());
              connection.close(code, reason);
            }),
        ),
      );
    },
  };
}

/** Options of {@link createMemoryClient}. */
export interface MemoryClientOptions extends MemoryConnectionOptions {
  /** Network to connect on. @default defaultMemoryNetwork */
  network?: MemoryNetwork;
}

/** An in-memory {@link ClientTransport}; connects to `memory://name`. */
export function createMemoryClient(options: MemoryClientOptions = {}): ClientTransport {
  const servers = registryOf(options.network ?? defaultMemoryNetwork);
  checkLimits(options);
  return {
    async connect(url, connectOptions) {
      if (connectOptions?.signal?.aborted) {
        throw new TickwireError(ErrorCode.CONNECT_FAILED, `connect to ${url} aborted`);
      }
      const name = /^memory:\/\/(.+)$/.exec(url)?.[1];
      if (!name) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `memory transport URL must look like memory://name, got '${url}'`,
        );
      }
      // Connecting takes a turn of the event loop, like a real handshake.
      await Promise.resolve();
      const accept = servers.get(name);
      if (!accept) {
        throw new TickwireError(ErrorCode.CONNECT_FAILED, `no memory server listens at ${url}`);
      }
      return accept(options);
    },
  };
}
