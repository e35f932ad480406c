// The UDP server transport: one dgram socket for every connection (keyed by address and port),
// a stateless cookie handshake, optional connect tokens, limits, and counters of every drop.
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import {
  type Clock,
  CloseCode,
  checkCloseArgs,
  Emitter,
  ErrorCode,
  isTickwireError,
  type ServerTransport,
  type ServerTransportEvents,
  type Subscribable,
  subscribable,
  TickwireError,
  type Timer,
  type TransportAddress,
} from '@tickwire/core';
import { type UdpConnection, UdpConnectionImpl, type UdpLink } from './connection.js';
import { CookieIssuer } from './cookie.js';
import { aeadSeal, counterNonce, KEY_BYTES, PacketCipher } from './crypto.js';
import { literalLookup } from './lookup.js';
import {
  endpointConfig,
  formatHostPort,
  intOption,
  resolveUdpOptions,
  type UdpConnectionOptions,
} from './options.js';
import {
  ACCEPTED_BODY_BYTES,
  AEAD_TAG_BYTES,
  CHALLENGE_BYTES,
  COOKIE_BYTES,
  DENIED_BYTES,
  DenyReason,
  HEADER_BYTES,
  PacketType,
  REQUEST_MIN_BYTES,
  readToken,
  readU32,
  SALT_BYTES,
  UDP_WIRE_VERSION,
  writeHeader,
  writeU32,
} from './packet.js';
import { AddressRateLimiter } from './rate-limit.js';
import {
  type ConnectTokenPrivate,
  openConnectToken,
  peekTokenNonce,
  systemWallClock,
} from './token.js';

/** Options of {@link createUdpServer}. */
export interface UdpServerOptions extends UdpConnectionOptions {
  /**
   * Address to bind; `'0.0.0.0'` or `'::'` to accept from every interface.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Port to bind; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Connections beyond this are refused with a DENIED packet (the client's connect() rejects
   * with CONNECT_FAILED, details.closeCode ServerFull).
   * @default 10000
   */
  maxConnections?: number;
  /**
   * 32-byte key shared with the code that issues connect tokens (`generateConnectToken`). When
   * set, a valid, unexpired, unused token is required and packets are encrypted.
   */
  connectTokenKey?: Uint8Array;
  /**
   * Handshake packets (REQUEST, RESPONSE) accepted per second from one IP address, sustained.
   * @default 20
   */
  handshakeRatePerSec?: number;
  /**
   * Handshake packets one IP address may send in a burst.
   * @default 64
   */
  handshakeBurst?: number;
  /**
   * Wall clock that connect tokens expire on (ms since the Unix epoch).
   * @default systemWallClock (Date.now)
   */
  wallClock?: Clock;
}

/** Why the server dropped a datagram (keys of `UdpServerStats.dropped`). */
export type UdpDropReason =
  | 'short'
  | 'protocol'
  | 'version'
  | 'type'
  | 'malformed'
  | 'unknownConnection'
  | 'session'
  | 'duplicate'
  | 'closed'
  | 'replayed'
  | 'tampered'
  | 'rateLimited'
  | 'badCookie'
  | 'unexpected'
  | 'alreadyConnected'
  | 'unauthorized'
  | 'full'
  | 'shuttingDown'
  | 'internal';

const DROP_REASONS: readonly UdpDropReason[] = [
  'short',
  'protocol',
  'version',
  'type',
  'malformed',
  'unknownConnection',
  'session',
  'duplicate',
  'closed',
  'replayed',
  'tampered',
  'rateLimited',
  'badCookie',
  'unexpected',
  'alreadyConnected',
  'unauthorized',
  'full',
  'shuttingDown',
  'internal',
];

/** Counters of a UDP server since it was created. */
export interface UdpServerStats {
  /** Datagrams received on the socket, and their bytes. */
  datagramsIn: number;
  bytesIn: number;
  /** Datagrams sent, and their bytes. */
  datagramsOut: number;
  bytesOut: number;
  /** Datagrams dropped, all reasons together. */
  packetsDropped: number;
  /** Datagrams dropped, by reason. */
  dropped: Record<UdpDropReason, number>;
  /** Handshake packets answered: CHALLENGE, ACCEPTED (first and repeated) and DENIED sent. */
  challengesSent: number;
  acceptsSent: number;
  deniesSent: number;
  /** Connections created. */
  connectionsAccepted: number;
  /** Connect tokens refused, by reason. */
  tokensRejected: { invalid: number; expired: number; replayed: number };
  /** Current size of the address → connection table (per-client state exists only after RESPONSE). */
  trackedAddresses: number;
  /** Current number of used token nonces remembered until their expiry. */
  usedTokenNonces: number;
  /** Current number of IP addresses with a handshake rate-limit bucket (bounded). */
  rateLimitedAddresses: number;
}

/** Events of a {@link UdpServer}: core's, with the connection typed as a {@link UdpConnection}. */
export interface UdpServerEvents extends ServerTransportEvents {
  connection: [connection: UdpConnection];
}

/** The UDP {@link ServerTransport}, with its counters. */
export interface UdpServer
  extends Omit<ServerTransport, 'on' | 'once' | 'off' | 'connections'>,
    Subscribable<UdpServerEvents> {
  /** The open connections. */
  readonly connections: ReadonlySet<UdpConnection>;
  /** Live counters; drops never throw and never emit 'error' one by one. */
  readonly stats: Readonly<UdpServerStats>;
}

/** How long a cookie's time window lasts; a cookie is accepted in its window and the next. */
const COOKIE_WINDOW_MS = 10_000;
/** Housekeeping period (rate-limit buckets, used token nonces). */
const SWEEP_INTERVAL_MS = 5_000;
/** Used token nonces remembered at most (tokens are issued by the game's own backend). */
const MAX_USED_NONCES = 1_000_000;

let nextConnectionNumber = 1;

interface Peer {
  connection: UdpConnectionImpl;
  salt: Uint8Array;
  accepted: Uint8Array;
}

/** A UDP server; connect with `createUdpClient().connect('udp://host:port')`. */
export function createUdpServer(options: UdpServerOptions = {}): UdpServer {
  const resolved = resolveUdpOptions(options);
  const time = resolved.time;
  const host = options.host ?? '127.0.0.1';
  const port = intOption('port', options.port ?? 0, 0, 65_535);
  const maxConnections = intOption('maxConnections', options.maxConnections ?? 10_000, 1, 1 << 24);
  const tokenKey = options.connectTokenKey;
  if (
    tokenKey !== undefined &&
    (!(tokenKey instanceof Uint8Array) || tokenKey.length !== KEY_BYTES)
  ) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `connectTokenKey must be a Uint8Array of ${KEY_BYTES} bytes`,
    );
  }
  const wallClock = options.wallClock ?? systemWallClock;
  const limiter = new AddressRateLimiter({
    ratePerSec: positive('handshakeRatePerSec', options.handshakeRatePerSec ?? 20),
    burst: positive('handshakeBurst', options.handshakeBurst ?? 64),
    maxAddresses: 65_536,
  });
  const cookies = new CookieIssuer(randomBytes(32), COOKIE_WINDOW_MS);
  const protocolId = resolved.protocolId;
  const events = new Emitter<UdpServerEvents>();
  const connections = new Set<UdpConnectionImpl>();
  // address → port → peer: no string built per datagram.
  const peers = new Map<string, Map<number, Peer>>();
  const usedNonces = new Map<string, { expiresAtMs: number; peer: Peer | null }>();
  const dropped = Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<
    UdpDropReason,
    number
  >;
  const stats: UdpServerStats = {
    datagramsIn: 0,
    bytesIn: 0,
    datagramsOut: 0,
    bytesOut: 0,
    packetsDropped: 0,
    dropped,
    challengesSent: 0,
    acceptsSent: 0,
    deniesSent: 0,
    connectionsAccepted: 0,
    tokensRejected: { invalid: 0, expired: 0, replayed: 0 },
    get trackedAddresses() {
      let count = 0;
      for (const ports of peers.values()) count += ports.size;
      return count;
    },
    get usedTokenNonces() {
      return usedNonces.size;
    },
    get rateLimitedAddresses() {
      return limiter.size;
    },
  };
  let socket: Socket | null = null;
  let address: TransportAddress | null = null;
  let sweepTimer: Timer | null = null;
  let shuttingDown = false;
  const reply = Buffer.alloc(
    Math.max(CHALLENGE_BYTES, DENIED_BYTES, HEADER_BYTES + ACCEPTED_BODY_BYTES),
  );

  const drop = (reason: UdpDropReason): void => {
    stats.packetsDropped++;
    dropped[reason]++;
  };

  const sendTo = (bytes: Uint8Array, toPort: number, toAddress: string): void => {
    if (socket === null) return;
    stats.datagramsOut++;
    stats.bytesOut += bytes.length;
    socket.send(bytes, toPort, toAddress);
  };

  const findPeer = (fromAddress: string, fromPort: number): Peer | undefined =>
    peers.get(fromAddress)?.get(fromPort);

  const deny = (reason: DenyReason, salt: Uint8Array, rinfo: RemoteInfo): void => {
    const out = Buffer.allocUnsafe(DENIED_BYTES);
    writeHeader(out, protocolId, PacketType.Denied);
    out.set(salt, HEADER_BYTES);
    out[HEADER_BYTES + SALT_BYTES] = reason;
    stats.deniesSent++;
    sendTo(out, rinfo.port, rinfo.address);
  };

  /** Opens and checks a token; counts and answers a refusal. */
  const checkToken = (
    token: Uint8Array,
    salt: Uint8Array,
    rinfo: RemoteInfo,
  ): ConnectTokenPrivate | null => {
    const result = openConnectToken(token, tokenKey!, protocolId, wallClock.now());
    if (result.status !== 'ok') {
      stats.tokensRejected[result.status]++;
      drop('unauthorized');
      deny(
        result.status === 'expired' ? DenyReason.ExpiredToken : DenyReason.InvalidToken,
        salt,
        rinfo,
      );
      return null;
    }
    const used = usedNonces.get(nonceKey(result.token.nonce));
    if (used !== undefined && used.expiresAtMs > wallClock.now()) {
      stats.tokensRejected.replayed++;
      drop('unauthorized');
      deny(DenyReason.ReplayedToken, salt, rinfo);
      return null;
    }
    return result.token;
  };

  const onRequest = (msg: Buffer, rinfo: RemoteInfo): void => {
    // An unpadded request is never answered: no reply may be larger than what provoked it.
    if (msg.length < REQUEST_MIN_BYTES) {
      drop('short');
      return;
    }
    if (findPeer(rinfo.address, rinfo.port) !== undefined) {
      drop('alreadyConnected');
      return;
    }
    if (!limiter.allow(rinfo.address, time.now())) {
      drop('rateLimited');
      return;
    }
    const salt = msg.subarray(HEADER_BYTES, HEADER_BYTES + SALT_BYTES);
    const token = readToken(msg, HEADER_BYTES + SALT_BYTES);
    let tokenNonce: Uint8Array | null = null;
    if (tokenKey !== undefined) {
      const opened = checkToken(token, salt, rinfo);
      if (opened === null) return;
      tokenNonce = opened.nonce;
    }
    if (connections.size >= maxConnections) {
      drop('full');
      deny(DenyReason.ServerFull, salt, rinfo);
      return;
    }
    const cookie = cookies.issue(rinfo.address, rinfo.port, salt, tokenNonce, time.now());
    writeHeader(reply, protocolId, PacketType.Challenge);
    reply.set(salt, HEADER_BYTES);
    reply.set(cookie, HEADER_BYTES + SALT_BYTES);
    stats.challengesSent++;
    sendTo(Buffer.from(reply.subarray(0, CHALLENGE_BYTES)), rinfo.port, rinfo.address);
  };

  const onResponse = (msg: Buffer, rinfo: RemoteInfo): void => {
    const cookieAt = HEADER_BYTES + SALT_BYTES;
    const limitAt = cookieAt + COOKIE_BYTES;
    if (msg.length < limitAt + 4 + 2) {
      drop('short');
      return;
    }
    const salt = msg.subarray(HEADER_BYTES, HEADER_BYTES + SALT_BYTES);
    const existing = findPeer(rinfo.address, rinfo.port);
    if (existing !== undefined) {
      // Our ACCEPTED was lost: the client repeats its RESPONSE; repeat the ACCEPTED.
      if (!Buffer.from(existing.salt).equals(salt)) {
        drop('alreadyConnected');
        return;
      }
      stats.acceptsSent++;
      sendTo(existing.accepted, rinfo.port, rinfo.address);
      return;
    }
    if (!limiter.allow(rinfo.address, time.now())) {
      drop('rateLimited');
      return;
    }
    const cookie = msg.subarray(cookieAt, limitAt);
    const peerMaxMessageBytes = readU32(msg, limitAt);
    const token = readToken(msg, limitAt + 4);
    const tokenNonce = tokenKey === undefined ? null : peekTokenNonce(token);
    if (!cookies.verify(cookie, rinfo.address, rinfo.port, salt, tokenNonce, time.now())) {
      drop('badCookie');
      return;
    }
    let opened: ConnectTokenPrivate | null = null;
    if (tokenKey !== undefined) {
      opened = checkToken(token, salt, rinfo);
      if (opened === null) return;
    }
    if (connections.size >= maxConnections) {
      drop('full');
      deny(DenyReason.ServerFull, salt, rinfo);
      return;
    }
    accept(rinfo, Uint8Array.from(salt), peerMaxMessageBytes, opened);
  };

  const accept = (
    rinfo: RemoteInfo,
    salt: Uint8Array,
    peerMaxMessageBytes: number,
    token: ConnectTokenPrivate | null,
  ): void => {
    const sessionId = randomBytes(4).readUInt32BE(0);
    const remote = { address: rinfo.address, port: rinfo.port };
    const cipher =
      token === null ? null : new PacketCipher(token.serverToClientKey, token.clientToServerKey);
    // ACCEPTED body: salt, session id, our maxMessageBytes; sealed with nonce 0 when encrypted.
    const body = new Uint8Array(ACCEPTED_BODY_BYTES);
    body.set(salt, 0);
    writeU32(body, SALT_BYTES, sessionId);
    writeU32(body, SALT_BYTES + 4, resolved.maxMessageBytes);
    const header = new Uint8Array(HEADER_BYTES);
    writeHeader(header, protocolId, PacketType.Accepted);
    const accepted =
      token === null
        ? Buffer.concat([header, body])
        : Buffer.concat([header, aeadSeal(token.serverToClientKey, counterNonce(0), header, body)]);
    const link: UdpLink = {
      sendDatagram: (bytes) => sendTo(bytes, remote.port, remote.address),
      release: (connection) => {
        connections.delete(connection);
        const ports = peers.get(remote.address);
        ports?.delete(remote.port);
        if (ports?.size === 0) peers.delete(remote.address);
        if (token !== null) {
          const used = usedNonces.get(nonceKey(token.nonce));
          if (used !== undefined) used.peer = null;
        }
      },
    };
    const connection = new UdpConnectionImpl({
      id: `udp-${nextConnectionNumber++}`,
      remoteAddress: formatHostPort(rinfo.address, rinfo.port),
      endpoint: endpointConfig(resolved, sessionId, cipher !== null, resolved.maxMessageBytes),
      sendMaxMessageBytes: Math.max(1, Math.min(resolved.maxMessageBytes, peerMaxMessageBytes)),
      maxBufferedBytes: resolved.maxBufferedBytes,
      time,
      link,
      cipher,
      clientId: token?.clientId ?? null,
      userData: token?.userData ?? null,
    });
    const peer: Peer = { connection, salt, accepted };
    let ports = peers.get(rinfo.address);
    if (ports === undefined) {
      ports = new Map();
      peers.set(rinfo.address, ports);
    }
    ports.set(rinfo.port, peer);
    connections.add(connection);
    if (token !== null) {
      if (usedNonces.size >= MAX_USED_NONCES) sweep();
      usedNonces.set(nonceKey(token.nonce), { expiresAtMs: token.expiresAtMs, peer });
    }
    stats.connectionsAccepted++;
    stats.acceptsSent++;
    sendTo(accepted, rinfo.port, rinfo.address);
    events.emit('connection', connection);
  };

  const handle = (msg: Buffer, rinfo: RemoteInfo): void => {
    if (msg.length < HEADER_BYTES) {
      drop('short');
      return;
    }
    if (readU32(msg, 0) !== protocolId) {
      drop('protocol');
      return;
    }
    if (msg[4] !== UDP_WIRE_VERSION) {
      drop('version');
      return;
    }
    const type = msg[5]!;
    if (type >= PacketType.Data) {
      if (type > PacketType.Disconnect) {
        drop('type');
        return;
      }
      const peer = findPeer(rinfo.address, rinfo.port);
      if (peer === undefined) {
        drop('unknownConnection');
        return;
      }
      const reason = peer.connection.receiveDatagram(msg, type);
      if (reason !== null) drop(reason);
      return;
    }
    if (shuttingDown) {
      drop('shuttingDown');
      return;
    }
    if (type === PacketType.Request) {
      onRequest(msg, rinfo);
      return;
    }
    if (type === PacketType.Response) {
      onResponse(msg, rinfo);
      return;
    }
    drop(type === 0 || type > PacketType.Denied ? 'type' : 'unexpected');
  };

  // Never throws: a bad datagram is counted and dropped.
  const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    stats.datagramsIn++;
    stats.bytesIn += msg.length;
    try {
      handle(msg, rinfo);
    } catch (error) {
      if (isTickwireError(error, ErrorCode.DECODE_FAILED)) {
        const reason = error.details?.reason;
        drop(reason === 'short' ? 'short' : 'malformed');
      } else {
        drop('internal');
        events.emit(
          'error',
          new TickwireError(ErrorCode.INTERNAL, `udp server: failed to handle a datagram`, {
            cause: error,
          }),
        );
      }
    }
  };

  const sweep = (): void => {
    const now = wallClock.now();
    for (const [key, used] of usedNonces) {
      if (used.expiresAtMs <= now && used.peer === null) usedNonces.delete(key);
    }
    limiter.sweep(time.now());
  };

  const server: UdpServer = {
    connections,
    stats,
    ...subscribable(events),
    address: () => address,
    async listen() {
      if (address !== null) return address;
      if (socket !== null) {
        throw new TickwireError(ErrorCode.INVALID_STATE, 'udp server is already starting');
      }
      const created = createSocket({
        type: host.includes(':') ? 'udp6' : 'udp4',
        recvBufferSize: resolved.socketBufferBytes || undefined,
        sendBufferSize: resolved.socketBufferBytes || undefined,
        lookup: literalLookup,
      });
      socket = created;
      await new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => {
          socket = null;
          created.close();
          reject(
            new TickwireError(
              error.code === 'EADDRINUSE' ? ErrorCode.ADDRESS_IN_USE : ErrorCode.CONNECT_FAILED,
              `udp server cannot bind ${formatHostPort(host, port)}: ${error.message}`,
              { cause: error },
            ),
          );
        };
        created.once('error', onError);
        created.bind(port, host, () => {
          created.off('error', onError);
          resolve();
        });
      });
      created.on('message', onMessage);
      created.on('error', (error) => {
        events.emit(
          'error',
          new TickwireError(ErrorCode.INTERNAL, `udp server socket error: ${error.message}`, {
            cause: error,
          }),
        );
      });
      const bound = created.address();
      shuttingDown = false;
      sweepTimer = time.setInterval(sweep, SWEEP_INTERVAL_MS);
      address = {
        protocol: 'udp',
        host,
        port: bound.port,
        url: `udp://${formatHostPort(host, bound.port)}`,
      };
      return address;
    },
    async close(code: number = CloseCode.GoingAway, reason = 'server closing') {
      checkCloseArgs(code, reason);
      const closing = socket;
      if (closing === null) return;
      shuttingDown = true;
      address = null;
      await Promise.all(
        [...connections].map(
          (connection) =>
            new Promise<void>((resolve) => {
              if (connection.state === 'closed') return resolve();
              connection.once('close', () => resolve());
              connection.close(code, reason);
            }),
        ),
      );
      sweepTimer?.cancel();
      sweepTimer = null;
      socket = null;
      // Used token nonces outlive the socket: a server listening again must still refuse a
      // token accepted before, until it expires. Their connections have all closed by now.
      for (const used of usedNonces.values()) used.peer = null;
      sweep();
      await new Promise<void>((resolve) => {
        try {
          closing.close(() => resolve());
        } catch {
          resolve();
        }
      });
    },
  };
  return server;
}

function nonceKey(nonce: Uint8Array): string {
  return Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('base64');
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `udp option ${name} must be a number > 0, got ${String(value)}`,
    );
  }
  return value;
}

/** @internal The sealed-ACCEPTED size, for tests of the amplification bound. */
export const SEALED_ACCEPTED_BYTES = HEADER_BYTES + ACCEPTED_BODY_BYTES + AEAD_TAG_BYTES;
