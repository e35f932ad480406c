// The UDP client transport: one connected dgram socket per connection, the client side of the
// cookie handshake (REQUEST → CHALLENGE → RESPONSE → ACCEPTED) and of connect tokens.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import {
  type ClientTransport,
  CloseCode,
  type ConnectOptions,
  ErrorCode,
  isTickwireError,
  TickwireError,
  type Timer,
} from '@tickwire/core';
import { type UdpConnection, UdpConnectionImpl } from './connection.js';
import { aeadOpen, counterNonce, PacketCipher } from './crypto.js';
import { literalLookup } from './lookup.js';
import {
  endpointConfig,
  formatHostPort,
  intOption,
  type ResolvedUdpOptions,
  resolveUdpOptions,
  type UdpConnectionOptions,
} from './options.js';
import {
  ACCEPTED_BODY_BYTES,
  CHALLENGE_BYTES,
  COOKIE_BYTES,
  DENIED_BYTES,
  DenyReason,
  HEADER_BYTES,
  PacketType,
  REQUEST_MIN_BYTES,
  readU32,
  SALT_BYTES,
  UDP_WIRE_VERSION,
  writeHeader,
  writeU16,
  writeU32,
} from './packet.js';
import { type ConnectTokenPublic, readConnectTokenPublic } from './token.js';

/** Options of {@link createUdpClient}. */
export interface UdpClientOptions extends UdpConnectionOptions {
  /**
   * Connect token from your backend (`generateConnectToken`), required by a server with a
   * `connectTokenKey`. A token is single-use: pass a function to get a fresh one per connect().
   */
  connectToken?: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
  /**
   * connect() rejects with TIMEOUT after this many ms, unless `ConnectOptions.timeoutMs` is given.
   * @default 10000
   */
  connectTimeoutMs?: number;
}

/** The UDP {@link ClientTransport}; `connect` resolves with a {@link UdpConnection}. */
export interface UdpClient extends ClientTransport {
  connect(url: string, options?: ConnectOptions): Promise<UdpConnection>;
}

/** First handshake retry in ms; later ones back off ×1.5 up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 1_000;

let nextConnectionNumber = 1;

/** Parses `udp://host:port` (IPv6 in brackets); throws INVALID_ARGUMENT. */
export function parseUdpUrl(url: string): { host: string; port: number } {
  const match = /^udp:\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]]+):(\d{1,5})\/?$/.exec(url);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || !(port > 0 && port <= 65_535)) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `udp URL must look like udp://host:port, got '${url}'`,
    );
  }
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return { host, port };
}

/** A UDP client; each `connect` opens its own socket. */
export function createUdpClient(options: UdpClientOptions = {}): UdpClient {
  const resolved = resolveUdpOptions(options);
  const connectTimeoutMs = intOption(
    'connectTimeoutMs',
    options.connectTimeoutMs ?? 10_000,
    1,
    2_147_483_647,
  );
  const tokenSource = options.connectToken;
  return {
    async connect(url, connectOptions = {}) {
      const { host, port } = parseUdpUrl(url);
      const timeoutMs = connectOptions.timeoutMs ?? connectTimeoutMs;
      const checkAborted = (): void => {
        if (connectOptions.signal?.aborted) {
          throw new TickwireError(ErrorCode.CONNECT_FAILED, `connect to ${url} aborted`);
        }
      };
      checkAborted();
      let token: Uint8Array | null = null;
      let tokenPublic: ConnectTokenPublic | null = null;
      if (tokenSource !== undefined) {
        token = typeof tokenSource === 'function' ? await tokenSource() : tokenSource;
        tokenPublic = readConnectTokenPublic(token);
        if (tokenPublic.protocolId !== resolved.protocolId) {
          throw new TickwireError(
            ErrorCode.INVALID_ARGUMENT,
            `connectToken is for protocol ${tokenPublic.protocolId}, the client uses ${resolved.protocolId}`,
          );
        }
        // Aborted while the token function ran: the abort event has fired already.
        checkAborted();
      }
      return handshake({
        url,
        host,
        port,
        timeoutMs,
        signal: connectOptions.signal,
        options: resolved,
        token,
        tokenPublic,
      });
    },
  };
}

interface HandshakeArgs {
  url: string;
  host: string;
  port: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  options: ResolvedUdpOptions;
  token: Uint8Array | null;
  tokenPublic: ConnectTokenPublic | null;
}

function buildRequest(protocolId: number, salt: Uint8Array, token: Uint8Array | null): Buffer {
  const tokenLength = token?.length ?? 0;
  // Padded so that no server reply is ever larger than the request (no amplification).
  const out = Buffer.alloc(
    Math.max(REQUEST_MIN_BYTES, HEADER_BYTES + SALT_BYTES + 2 + tokenLength),
  );
  writeHeader(out, protocolId, PacketType.Request);
  out.set(salt, HEADER_BYTES);
  writeU16(out, HEADER_BYTES + SALT_BYTES, tokenLength);
  if (token !== null) out.set(token, HEADER_BYTES + SALT_BYTES + 2);
  return out;
}

function buildResponse(
  protocolId: number,
  salt: Uint8Array,
  cookie: Uint8Array,
  maxMessageBytes: number,
  token: Uint8Array | null,
): Buffer {
  const tokenLength = token?.length ?? 0;
  const cookieAt = HEADER_BYTES + SALT_BYTES;
  const limitAt = cookieAt + COOKIE_BYTES;
  const out = Buffer.alloc(limitAt + 4 + 2 + tokenLength);
  writeHeader(out, protocolId, PacketType.Response);
  out.set(salt, HEADER_BYTES);
  out.set(cookie, cookieAt);
  writeU32(out, limitAt, maxMessageBytes);
  writeU16(out, limitAt + 4, tokenLength);
  if (token !== null) out.set(token, limitAt + 6);
  return out;
}

function denyError(reason: number, url: string): TickwireError {
  switch (reason) {
    case DenyReason.ServerFull:
      return new TickwireError(ErrorCode.CONNECT_FAILED, `udp server at ${url} is full`, {
        details: { closeCode: CloseCode.ServerFull },
      });
    case DenyReason.ExpiredToken:
      return new TickwireError(
        ErrorCode.UNAUTHORIZED,
        `udp server at ${url}: connect token expired`,
        {
          details: { closeCode: CloseCode.Unauthorized, reason: 'expired' },
        },
      );
    case DenyReason.ReplayedToken:
      return new TickwireError(
        ErrorCode.UNAUTHORIZED,
        `udp server at ${url}: connect token already used`,
        { details: { closeCode: CloseCode.Unauthorized, reason: 'replayed' } },
      );
    default:
      return new TickwireError(
        ErrorCode.UNAUTHORIZED,
        `udp server at ${url}: connect token missing or invalid`,
        { details: { closeCode: CloseCode.Unauthorized, reason: 'invalid' } },
      );
  }
}

function handshake(args: HandshakeArgs): Promise<UdpConnection> {
  const { options, url, token, tokenPublic } = args;
  const time = options.time;
  const protocolId = options.protocolId;
  const salt = randomBytes(SALT_BYTES);
  const request = buildRequest(protocolId, salt, token);
  const socket: Socket = createSocket({
    type: isIPv6(args.host) ? 'udp6' : 'udp4',
    recvBufferSize: options.socketBufferBytes || undefined,
    sendBufferSize: options.socketBufferBytes || undefined,
    lookup: literalLookup,
  });

  return new Promise<UdpConnection>((resolve, reject) => {
    let current: Buffer | null = null;
    let retryMs = FIRST_RETRY_MS;
    let retryTimer: Timer | null = null;
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      retryTimer?.cancel();
      deadline.cancel();
      args.signal?.removeEventListener('abort', onAbort);
      socket.off('message', onHandshakeMessage);
    };
    const fail = (error: TickwireError): void => {
      if (settled) return;
      cleanup();
      socket.removeAllListeners();
      socket.on('error', () => {});
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      reject(error);
    };
    const send = (): void => {
      if (settled || current === null) return;
      socket.send(current);
      retryTimer?.cancel();
      retryTimer = time.setTimeout(send, retryMs);
      retryMs = Math.min(MAX_RETRY_MS, retryMs * 1.5);
    };
    const onAbort = (): void => {
      fail(new TickwireError(ErrorCode.CONNECT_FAILED, `connect to ${url} aborted`));
    };
    const deadline = time.setTimeout(() => {
      fail(
        new TickwireError(
          ErrorCode.TIMEOUT,
          `udp connect to ${url} timed out after ${args.timeoutMs} ms`,
        ),
      );
    }, args.timeoutMs);
    args.signal?.addEventListener('abort', onAbort, { once: true });

    const saltMatches = (bytes: Uint8Array, at: number): boolean =>
      Buffer.compare(salt, bytes.subarray(at, at + SALT_BYTES)) === 0;

    const onAccepted = (msg: Buffer): void => {
      let body: Uint8Array | null = msg.subarray(HEADER_BYTES);
      if (tokenPublic !== null) {
        body = aeadOpen(
          tokenPublic.serverToClientKey,
          counterNonce(0),
          msg.subarray(0, HEADER_BYTES),
          body,
        );
      }
      if (body === null || body.length !== ACCEPTED_BODY_BYTES || !saltMatches(body, 0)) return;
      const sessionId = readU32(body, SALT_BYTES);
      const serverMaxMessageBytes = readU32(body, SALT_BYTES + 4);
      cleanup();
      const connection = new UdpConnectionImpl({
        id: `udp-client-${nextConnectionNumber++}`,
        remoteAddress: formatHostPort(args.host, args.port),
        endpoint: endpointConfig(options, sessionId, tokenPublic !== null, options.maxMessageBytes),
        sendMaxMessageBytes: Math.max(1, Math.min(options.maxMessageBytes, serverMaxMessageBytes)),
        maxBufferedBytes: options.maxBufferedBytes,
        time,
        cipher:
          tokenPublic === null
            ? null
            : new PacketCipher(tokenPublic.clientToServerKey, tokenPublic.serverToClientKey),
        deferEvents: true,
        link: {
          sendDatagram: (bytes) => socket.send(bytes),
          // Let the DISCONNECT copies leave before the socket goes.
          release: () => {
            time.setTimeout(() => {
              try {
                socket.close();
              } catch {
                // Already closed.
              }
            }, 20);
          },
        },
      });
      socket.removeAllListeners('error');
      socket.on('error', () => {
        // ICMP errors (the server went away) are not fatal: the idle timeout decides.
      });
      socket.on('message', (datagram: Buffer) => {
        if (
          datagram.length < HEADER_BYTES ||
          readU32(datagram, 0) !== protocolId ||
          datagram[4] !== UDP_WIRE_VERSION ||
          datagram[5]! < PacketType.Data
        ) {
          return;
        }
        try {
          connection.receiveDatagram(datagram, datagram[5]!);
        } catch (error) {
          if (!isTickwireError(error)) throw error;
        }
      });
      resolve(connection);
      // Messages wait until the caller of connect() had a turn to attach listeners.
      time.setTimeout(() => connection.start(), 0);
    };

    const onHandshakeMessage = (msg: Buffer): void => {
      if (
        settled ||
        msg.length < HEADER_BYTES ||
        readU32(msg, 0) !== protocolId ||
        msg[4] !== UDP_WIRE_VERSION
      ) {
        return;
      }
      switch (msg[5]) {
        case PacketType.Challenge:
          if (msg.length !== CHALLENGE_BYTES || !saltMatches(msg, HEADER_BYTES)) return;
          if (current !== request) return;
          current = buildResponse(
            protocolId,
            salt,
            msg.subarray(HEADER_BYTES + SALT_BYTES),
            options.maxMessageBytes,
            token,
          );
          retryMs = FIRST_RETRY_MS;
          send();
          return;
        case PacketType.Accepted:
          if (current !== request && current !== null) onAccepted(msg);
          return;
        case PacketType.Denied:
          if (msg.length !== DENIED_BYTES || !saltMatches(msg, HEADER_BYTES)) return;
          fail(denyError(msg[DENIED_BYTES - 1]!, url));
          return;
        default:
      }
    };

    socket.on('message', onHandshakeMessage);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      fail(
        new TickwireError(
          ErrorCode.CONNECT_FAILED,
          `udp connect to ${url} failed: ${error.code ?? error.message}`,
          { cause: error },
        ),
      );
    });
    socket.connect(args.port, args.host, () => {
      current = request;
      send();
    });
  });
}
