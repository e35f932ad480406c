// Channel mapping: TCP is one ordered stream, so 'reliable' and 'unreliable' share it; each frame's
// kind byte tells the receiver which channel the sender used. Unreliable sends are dropped (send
// returns false, stats.unreliableDropped counts them) while bufferedAmount (socket.writableLength
// plus the unflushed batch) is above unreliableDropThresholdBytes, so they never queue without
// bound; a reliable send that would take bufferedAmount above maxBufferedBytes closes the
// connection with CloseCode.Backpressure. Arrival order is send order, so the unreliable channel
// is trivially sequenced and never loses anything it did not drop at the sender.
import { createServer, type Server, type Socket } from 'node:net';
import {
  CloseCode,
  type Connection,
  checkCloseArgs,
  Emitter,
  ErrorCode,
  type ServerTransport,
  type ServerTransportEvents,
  subscribable,
  TickwireError,
  type Timer,
  type TransportAddress,
} from '@tickwire/core';
import {
  countPerAddress,
  hostPort,
  intOption,
  type ListenOptions,
  nextConnectionId,
  resolveListenOptions,
  resolveStreamOptions,
  type StreamConnectionOptions,
} from '../shared/options.js';
import { TcpConnection } from './connection.js';

/** Socket options both TCP ends take. */
export interface TcpSocketOptions {
  /**
   * Disable Nagle's algorithm (frames leave at the end of each event-loop turn, batched).
   * @default true
   */
  noDelay?: boolean;
  /**
   * Idle time in ms before the OS sends TCP keep-alive probes; 0 turns TCP keep-alive off (the
   * app-level heartbeat still runs).
   * @default 30000
   */
  keepAliveInitialDelayMs?: number;
}

/** Options of {@link createTcpServer}. */
export interface TcpServerOptions
  extends StreamConnectionOptions,
    TcpSocketOptions,
    ListenOptions {}

/** Applies socket options to a new socket. */
export function configureSocket(socket: Socket, noDelay: boolean, keepAliveDelayMs: number): void {
  socket.setNoDelay(noDelay);
  if (keepAliveDelayMs > 0) socket.setKeepAlive(true, keepAliveDelayMs);
}

/** A TCP {@link ServerTransport} (`node:net`, length-prefixed frames) on `tcp://host:port`. */
export function createTcpServer(options: TcpServerOptions = {}): ServerTransport {
  const resolved = resolveStreamOptions(options);
  const { host, port, maxConnections, handshakeTimeoutMs, maxHandshakesPerAddress } =
    resolveListenOptions(options);
  const noDelay = options.noDelay ?? true;
  const keepAliveDelayMs = intOption(
    'keepAliveInitialDelayMs',
    options.keepAliveInitialDelayMs ?? 30_000,
    0,
    2_147_483_647,
  );
  const time = resolved.time;
  const events = new Emitter<ServerTransportEvents>();
  const connections = new Set<TcpConnection>();
  const handshaking = new Set<TcpConnection>();
  const handshakesPerAddress = countPerAddress();
  let server: Server | null = null;
  let address: TransportAddress | null = null;
  let heartbeat: Timer | null = null;
  let closed = false;
  /** A listen() is under way. */
  let starting = false;

  const onSocket = (socket: Socket): void => {
    if (closed) {
      socket.destroy();
      return;
    }
    configureSocket(socket, noDelay, keepAliveDelayMs);
    const remote = hostPort(socket.remoteAddress, socket.remotePort);
    const connection = new TcpConnection(socket, nextConnectionId('tcp'), remote, resolved, false);
    // Sockets still in the handshake count too, or idle ones could pile up without bound.
    const ip = socket.remoteAddress ?? '';
    if (
      connections.size + handshaking.size >= maxConnections ||
      handshakesPerAddress.count(ip) >= maxHandshakesPerAddress
    ) {
      connection.refuse(CloseCode.ServerFull, 'server full');
      return;
    }
    handshaking.add(connection);
    handshakesPerAddress.add(ip);
    const handshakeTimer = time.setTimeout(() => {
      connection.refuse(CloseCode.Timeout, 'handshake timeout');
    }, handshakeTimeoutMs);
    const handshakeDone = (): void => {
      handshakeTimer.cancel();
      if (handshaking.delete(connection)) handshakesPerAddress.remove(ip);
    };
    connection.onClosed = handshakeDone;
    connection.onHandshakeError = (error) => events.emit('error', error);
    connection.onHello = (accepted, peerMaxMessageBytes) => {
      handshakeDone();
      if (connections.size >= maxConnections) {
        accepted.onClosed = null;
        accepted.refuse(CloseCode.ServerFull, 'server full');
        return;
      }
      connections.add(accepted);
      accepted.onClosed = () => connections.delete(accepted);
      accepted.accept(peerMaxMessageBytes);
      events.emit('connection', accepted);
    };
  };

  return {
    connections: connections as ReadonlySet<Connection>,
    ...subscribable(events),
    address: () => address,
    async listen() {
      if (address) return address;
      if (closed) {
        throw new TickwireError(ErrorCode.CLOSED, 'tcp server was closed; create a new one');
      }
      // A second listen() meanwhile would start a second server (and lose the first).
      if (starting) {
        throw new TickwireError(ErrorCode.INVALID_STATE, 'tcp server is already starting');
      }
      starting = true;
      const listening = createServer({ noDelay }, onSocket);
      await new Promise<void>((resolve, reject) => {
        listening.once('error', (error: NodeJS.ErrnoException) => {
          reject(
            new TickwireError(
              error.code === 'EADDRINUSE' ? ErrorCode.ADDRESS_IN_USE : ErrorCode.INTERNAL,
              `tcp server cannot listen on ${hostPort(host, port)}: ${error.message}`,
              { cause: error },
            ),
          );
        });
        listening.listen(port, host, () => resolve());
      }).finally(() => {
        starting = false;
      });
      // close() ran meanwhile: this server is ours alone to stop.
      if (closed) {
        listening.close();
        throw new TickwireError(ErrorCode.CLOSED, 'tcp server was closed while starting');
      }
      listening.on('error', (error) =>
        events.emit(
          'error',
          new TickwireError(ErrorCode.INTERNAL, `tcp server error: ${error.message}`, {
            cause: error,
          }),
        ),
      );
      server = listening;
      const bound = listening.address();
      const boundPort = typeof bound === 'object' && bound ? bound.port : port;
      if (resolved.heartbeatIntervalMs > 0) {
        heartbeat = time.setInterval(() => {
          const now = time.now();
          for (const connection of connections) connection.heartbeat(now);
        }, resolved.heartbeatIntervalMs);
      }
      address = {
        protocol: 'tcp',
        host,
        port: boundPort,
        url: `tcp://${hostPort(host, boundPort)}`,
      };
      return address;
    },
    async close(code: number = CloseCode.GoingAway, reason = 'server closing') {
      checkCloseArgs(code, reason);
      closed = true;
      address = null;
      heartbeat?.cancel();
      heartbeat = null;
      const listening = server;
      server = null;
      const stopped = listening
        ? new Promise<void>((resolve) => listening.close(() => resolve()))
        : Promise.resolve();
      for (const connection of [...handshaking]) connection.refuse(code, reason);
      await Promise.all(
        [...connections].map(
          (connection) =>
            new Promise<void>((resolve) => {
              connection.once('close', () => resolve());
              connection.close(code, reason);
            }),
        ),
      );
      await stopped;
    },
  };
}
