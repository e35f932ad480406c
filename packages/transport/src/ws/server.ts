// Channel mapping: a WebSocket is one ordered stream, so 'reliable' and 'unreliable' share it; the
// first byte of every binary message is its kind (0 reliable, 1 unreliable, 2–5 control: see
// ../shared/wire.ts), so the receiver gets the channel the sender used. Unreliable sends are
// dropped (send returns false, stats.unreliableDropped counts them) while `bufferedAmount` is above
// unreliableDropThresholdBytes, so they never queue without bound; a reliable send that would take
// bufferedAmount above maxBufferedBytes closes the connection with CloseCode.Backpressure. Arrival
// order is send order, so the unreliable channel is trivially sequenced.
//
// Heartbeat: the server sends a WebSocket ping frame (payload: its clock, f64) to every connection
// each heartbeatIntervalMs and measures stats.rttMs from the pong; the Node client does the same.
// The browser client, which cannot send ping frames, sends kind-2 ping messages that the server
// answers with kind-3 pongs.
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  STATUS_CODES,
} from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
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
  toTickwireError,
} from '@tickwire/core';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  countPerAddress,
  hostPort,
  type ListenOptions,
  nextConnectionId,
  resolveListenOptions,
  resolveStreamOptions,
  type StreamConnectionOptions,
} from '../shared/options.js';
import { maxPayloadBytes, WsConnection } from './connection.js';

/**
 * What `verifyUpgrade` decides: `true` accepts; `false` refuses with HTTP 401; `{ code, reason }`
 * refuses with that HTTP status (400–599), or accepts and closes at once with that close code
 * (1000–4999, e.g. CloseCode.Unauthorized) so that browsers, which cannot read HTTP statuses of a
 * failed upgrade, see why.
 */
export type UpgradeVerdict = boolean | { code: number; reason?: string };

/** Per-message deflate settings, passed to `ws` (its own types stay out of this API). */
export interface DeflateOptions {
  /** Messages smaller than this many bytes are sent uncompressed. @default 1024 */
  threshold?: number;
  /** Reset the server's compression context after each message (less memory). @default false */
  serverNoContextTakeover?: boolean;
  /** Ask clients to reset their compression context after each message. @default false */
  clientNoContextTakeover?: boolean;
  /** Concurrent zlib calls per process. @default 10 */
  concurrencyLimit?: number;
}

/** Options of {@link createWsServer}. */
export interface WsServerOptions extends StreamConnectionOptions, ListenOptions {
  /**
   * An existing HTTP(S) server to attach to instead of creating one; its owner calls `listen`
   * on it, and `close()` of this transport leaves it running.
   * @default undefined (a new HTTP server on host:port)
   */
  server?: HttpServer | HttpsServer;
  /**
   * Count the HTTP server's sockets from the moment they connect until their first request (an
   * upgrade, or a plain request the server answers) toward `maxConnections` and
   * `maxHandshakesPerAddress`, and drop those that send no request within `handshakeTimeoutMs`
   * (Node's own timeouts apply only to requests that have begun, so a socket that sends nothing
   * is otherwise held for good). Set it with a `server` of yours whose other requests are short.
   * @default true without `server`, false with one
   */
  limitIdleSockets?: boolean;
  /**
   * Only upgrade requests for this path are handled, e.g. `/ws`.
   * @default undefined (every path)
   */
  path?: string;
  /**
   * Auth / origin hook run on every upgrade request before it is accepted; see UpgradeVerdict.
   * @default undefined (accept every request)
   */
  verifyUpgrade?: (request: IncomingMessage) => UpgradeVerdict | Promise<UpgradeVerdict>;
  /**
   * When set, an upgrade whose Origin header is not in the list is refused with HTTP 403. Requests
   * without an Origin (non-browser clients, which can send any Origin anyway) are allowed.
   * @default undefined (any origin)
   */
  allowedOrigins?: readonly string[];
  /**
   * WebSocket per-message deflate (costs CPU and memory per connection).
   * @default false
   */
  perMessageDeflate?: boolean | DeflateOptions;
}

/**
 * Events a server emits instead of 'request' when it has listeners for them: Node answers these
 * itself when it has none, so we listen only where the server already does.
 */
const OTHER_REQUEST_EVENTS = ['checkContinue', 'checkExpectation', 'connect'] as const;

/** The event a server's sockets arrive with, as its requests will see them. */
const connectionEvent = (server: HttpServer | HttpsServer): 'connection' | 'secureConnection' =>
  server instanceof HttpsServer ? 'secureConnection' : 'connection';

/** Printable ASCII only, for an HTTP reason phrase. */
function reasonPhrase(status: number, reason: string | undefined): string {
  const clean = (reason ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 120);
  return clean || STATUS_CODES[status] || 'Error';
}

function refuseUpgrade(socket: Duplex, status: number, reason?: string): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const phrase = reasonPhrase(status, reason);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${phrase}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(phrase)}\r\n\r\n${phrase}`,
  );
}

function hookError(error: unknown, how: string): TickwireError {
  const detail = error instanceof Error ? error.message : String(error);
  return toTickwireError(error, ErrorCode.INTERNAL, `verifyUpgrade ${how}: ${detail}`);
}

function isValidCloseCode(code: number): boolean {
  try {
    checkCloseArgs(code, '');
    return true;
  } catch {
    return false;
  }
}

function urlHost(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '::1';
  return address;
}

/** A WebSocket {@link ServerTransport} on `ws` (its own HTTP server, or attached to yours). */
export function createWsServer(options: WsServerOptions = {}): ServerTransport {
  const resolved = resolveStreamOptions(options);
  // With `server`, host and port are ignored; an unverified upgrade is refused with HTTP 503
  // after handshakeTimeoutMs.
  const { host, port, maxConnections, handshakeTimeoutMs, maxHandshakesPerAddress } =
    resolveListenOptions(options);
  const path = options.path;
  const allowedOrigins = options.allowedOrigins ? new Set(options.allowedOrigins) : null;
  const verifyUpgrade = options.verifyUpgrade;
  const time = resolved.time;
  const ownsServer = options.server === undefined;
  const limitIdleSockets = options.limitIdleSockets ?? ownsServer;
  const events = new Emitter<ServerTransportEvents>();
  const connections = new Set<WsConnection>();
  /**
   * Handshakes in progress, with their client's IP address: upgrades not yet completed or
   * refused, and with limitIdleSockets every socket from the moment it connects.
   */
  const upgrading = new Map<Duplex, string>();
  const upgradesPerAddress = countPerAddress();
  /** Takes `socket` out of `upgrading`; false if it was not there. */
  const upgradeDone = (socket: Duplex): boolean => {
    const ip = upgrading.get(socket);
    if (ip === undefined) return false;
    upgrading.delete(socket);
    upgradesPerAddress.remove(ip);
    return true;
  };
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: maxPayloadBytes(resolved.maxMessageBytes),
    perMessageDeflate: options.perMessageDeflate ?? false,
    // `ws` 8.23's closing-handshake timeout; @types/ws 8.18 does not declare it yet.
    ...({ closeTimeout: resolved.closeTimeoutMs } as object),
  });
  let httpServer: HttpServer | HttpsServer | null = null;
  let address: TransportAddress | null = null;
  let heartbeat: Timer | null = null;
  let closed = false;

  const reportError = (error: TickwireError): void => {
    events.emit('error', error);
  };

  const onWebSocket = (ws: WebSocket, request: IncomingMessage): void => {
    // `ws` emits protocol errors; without a listener they would throw.
    ws.on('error', () => {});
    if (closed) {
      ws.close(CloseCode.GoingAway, 'server closing');
      return;
    }
    if (connections.size >= maxConnections) {
      ws.close(CloseCode.ServerFull, 'server full');
      return;
    }
    const remote = hostPort(request.socket.remoteAddress, request.socket.remotePort);
    const connection = new WsConnection(ws, nextConnectionId('ws'), remote, resolved, false);
    connections.add(connection);
    connection.onClosed = () => connections.delete(connection);
    connection.accept();
    events.emit('connection', connection);
  };

  const complete = (
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    closeWith: { code: number; reason: string } | null,
  ): void => {
    if (!upgradeDone(socket) || socket.destroyed) return;
    wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', onEarlySocketError);
      if (closeWith) {
        ws.on('error', () => {});
        ws.close(closeWith.code, closeWith.reason);
        return;
      }
      onWebSocket(ws, request);
    });
  };

  const refuse = (socket: Duplex, status: number, reason?: string): void => {
    if (!upgradeDone(socket)) return;
    socket.off('error', onEarlySocketError);
    socket.on('error', () => {});
    refuseUpgrade(socket, status, reason);
  };

  const decide = (
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    verdict: UpgradeVerdict,
  ): void => {
    if (verdict === true) complete(request, socket, head, null);
    else if (verdict === false || verdict === undefined || verdict === null) refuse(socket, 401);
    else if (typeof verdict === 'object' && Number.isInteger(verdict.code)) {
      const reason = typeof verdict.reason === 'string' ? verdict.reason : '';
      if (verdict.code >= 400 && verdict.code <= 599) refuse(socket, verdict.code, reason);
      else if (isValidCloseCode(verdict.code)) {
        complete(request, socket, head, { code: verdict.code, reason: reason.slice(0, 41) });
      } else {
        reportError(
          new TickwireError(
            ErrorCode.INVALID_ARGUMENT,
            `verifyUpgrade returned code ${verdict.code}: use an HTTP status 400–599 or a close code`,
          ),
        );
        refuse(socket, 500);
      }
    } else refuse(socket, 500);
  };

  function onEarlySocketError(this: Duplex): void {
    upgradeDone(this);
    this.destroy();
  }

  /** Sockets whose upgrade request arrived (their time limit is then verifyUpgrade's). */
  const upgradeRequested = new WeakSet<Duplex>();

  // With limitIdleSockets (our own HTTP server's default), sockets count as handshakes from the
  // moment they connect and have handshakeTimeoutMs to send a request: idle ones would otherwise
  // escape both limits (Node times out only requests that have begun). One over a limit is let
  // in, so that its upgrade is answered with ServerFull; any further one is dropped at once.
  const onSocket = (socket: Socket): void => {
    const ip = socket.remoteAddress ?? '';
    if (
      closed ||
      connections.size + upgrading.size > maxConnections ||
      upgradesPerAddress.count(ip) > maxHandshakesPerAddress
    ) {
      socket.destroy();
      return;
    }
    upgrading.set(socket, ip);
    upgradesPerAddress.add(ip);
    const timer = time.setTimeout(() => {
      if (upgrading.has(socket) && !upgradeRequested.has(socket)) socket.destroy();
    }, handshakeTimeoutMs);
    socket.once('close', () => {
      timer.cancel();
      upgradeDone(socket);
    });
  };

  /** A plain HTTP request: its socket is no longer idle, and no longer counted. */
  const onRequest = (request: IncomingMessage): void => {
    upgradeRequested.add(request.socket);
    upgradeDone(request.socket);
  };

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    upgradeRequested.add(socket);
    if (path !== undefined) {
      const pathname = (request.url ?? '/').split('?')[0];
      if (pathname !== path) {
        // Not ours: no longer counted as idle (another 'upgrade' listener may keep it for good).
        upgradeDone(socket);
        // On a shared server another 'upgrade' listener may own this path.
        if (ownsServer || httpServer?.listenerCount('upgrade') === 1) {
          socket.on('error', () => {});
          refuseUpgrade(socket, 404);
        }
        return;
      }
    }
    socket.on('error', onEarlySocketError);
    const ip = request.socket.remoteAddress ?? '';
    if (!upgrading.has(socket)) {
      upgrading.set(socket, ip);
      upgradesPerAddress.add(ip);
    }
    if (closed) {
      refuse(socket, 503, 'server closing');
      return;
    }
    // Upgrades still being verified count too, or stalled ones could pile up without bound.
    if (
      connections.size + upgrading.size > maxConnections ||
      upgradesPerAddress.count(ip) > maxHandshakesPerAddress
    ) {
      complete(request, socket, head, { code: CloseCode.ServerFull, reason: 'server full' });
      return;
    }
    const origin = request.headers.origin;
    if (allowedOrigins && origin !== undefined && !allowedOrigins.has(origin)) {
      refuse(socket, 403, 'origin not allowed');
      return;
    }
    if (!verifyUpgrade) {
      complete(request, socket, head, null);
      return;
    }
    let verdict: UpgradeVerdict | Promise<UpgradeVerdict>;
    try {
      verdict = verifyUpgrade(request);
    } catch (error) {
      reportError(hookError(error, 'threw'));
      refuse(socket, 500);
      return;
    }
    if (!(verdict instanceof Promise)) {
      decide(request, socket, head, verdict);
      return;
    }
    const timer = time.setTimeout(
      () => refuse(socket, 503, 'verification timed out'),
      handshakeTimeoutMs,
    );
    verdict.then(
      (value) => {
        timer.cancel();
        if (upgrading.has(socket)) decide(request, socket, head, value);
      },
      (error: unknown) => {
        timer.cancel();
        reportError(hookError(error, 'rejected'));
        refuse(socket, 500);
      },
    );
  };

  /** Takes this transport's listeners off `server`. */
  const detach = (server: HttpServer | HttpsServer): void => {
    server.off('upgrade', onUpgrade);
    server.off(connectionEvent(server), onSocket);
    server.off('request', onRequest);
    for (const event of OTHER_REQUEST_EVENTS) server.off(event, onRequest);
  };

  const waitListening = (server: HttpServer | HttpsServer): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (server.listening) {
        resolve();
        return;
      }
      const settle = (error?: TickwireError): void => {
        server.off('error', onError);
        server.off('listening', onListening);
        server.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onError = (error: NodeJS.ErrnoException): void =>
        settle(
          new TickwireError(
            error.code === 'EADDRINUSE' ? ErrorCode.ADDRESS_IN_USE : ErrorCode.INTERNAL,
            `websocket server cannot listen: ${error.message}`,
            { cause: error },
          ),
        );
      const onListening = (): void => settle();
      // Closed before it could listen (our close() during listen()).
      const onClose = (): void =>
        settle(new TickwireError(ErrorCode.CLOSED, 'websocket server was closed while starting'));
      server.once('error', onError);
      server.once('listening', onListening);
      server.once('close', onClose);
    });

  return {
    connections: connections as ReadonlySet<Connection>,
    ...subscribable(events),
    address: () => address,
    async listen() {
      if (address) return address;
      if (closed) {
        throw new TickwireError(ErrorCode.CLOSED, 'websocket server was closed; create a new one');
      }
      // A second listen() meanwhile would attach everything twice (or start a second server).
      if (httpServer) {
        throw new TickwireError(ErrorCode.INVALID_STATE, 'websocket server is already starting');
      }
      const server =
        options.server ??
        createHttpServer((_request, response) => {
          response.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
          response.end('Upgrade Required');
        });
      httpServer = server;
      server.on('upgrade', onUpgrade);
      if (limitIdleSockets) {
        // An HTTPS server's requests come on the TLS socket, once its handshake is done.
        server.on(connectionEvent(server), onSocket);
        server.on('request', onRequest);
        for (const event of OTHER_REQUEST_EVENTS) {
          if (server.listenerCount(event) > 0) server.on(event, onRequest);
        }
      }
      try {
        if (ownsServer) {
          const listening = waitListening(server);
          server.listen(port, host);
          await listening;
        } else await waitListening(server);
      } catch (error) {
        // Nothing stays attached, so that listen() can be tried again.
        detach(server);
        if (httpServer === server) httpServer = null;
        throw error;
      }
      // close() ran meanwhile: it took everything off the server already (ours may have started
      // listening after close() tried to stop it).
      if (closed) {
        if (ownsServer) server.close();
        throw new TickwireError(ErrorCode.CLOSED, 'websocket server was closed while starting');
      }
      if (ownsServer) {
        server.on('error', (error) =>
          reportError(
            new TickwireError(ErrorCode.INTERNAL, `http server error: ${error.message}`, {
              cause: error,
            }),
          ),
        );
      }
      const bound = server.address();
      const boundHost = typeof bound === 'object' && bound ? bound.address : host;
      const boundPort = typeof bound === 'object' && bound ? bound.port : port;
      const scheme = server instanceof HttpsServer ? 'wss' : 'ws';
      if (resolved.heartbeatIntervalMs > 0) {
        heartbeat = time.setInterval(() => {
          const now = time.now();
          for (const connection of connections) connection.heartbeat(now);
        }, resolved.heartbeatIntervalMs);
      }
      address = {
        protocol: scheme,
        host: boundHost,
        port: boundPort,
        url: `${scheme}://${hostPort(urlHost(boundHost), boundPort)}${path ?? ''}`,
      };
      return address;
    },
    async close(code: number = CloseCode.GoingAway, reason = 'server closing') {
      checkCloseArgs(code, reason);
      closed = true;
      address = null;
      heartbeat?.cancel();
      heartbeat = null;
      const server = httpServer;
      httpServer = null;
      if (server) detach(server);
      const stopped =
        server && ownsServer
          ? new Promise<void>((resolve) => server.close(() => resolve()))
          : Promise.resolve();
      for (const socket of [...upgrading.keys()]) {
        // A socket of your server that sent no request yet is yours again, not ours to refuse.
        if (!ownsServer && !upgradeRequested.has(socket)) upgradeDone(socket);
        else refuse(socket, 503, 'server closing');
      }
      await Promise.all(
        [...connections].map(
          (connection) =>
            new Promise<void>((resolve) => {
              connection.once('close', () => resolve());
              connection.close(code, reason);
            }),
        ),
      );
      if (server && ownsServer) server.closeAllConnections();
      wss.close();
      await stopped;
    },
  };
}
