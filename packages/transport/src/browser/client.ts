// Browser WebSocket client (the global WebSocket, or any constructor with its API).
//
// Channel mapping: a WebSocket is one ordered stream, so 'reliable' and 'unreliable' share it; the
// first byte of every binary message is its kind (0 reliable, 1 unreliable, 2 ping, 3 pong,
// 4 close notice, 5 hello), so the receiver gets the channel the sender used. Unreliable sends are
// dropped (send returns false, stats.unreliableDropped counts them) while the socket's
// bufferedAmount is above unreliableDropThresholdBytes; a reliable send that would take it above
// maxBufferedBytes closes the connection with CloseCode.Backpressure.
//
// Browsers cannot send WebSocket ping frames, so the heartbeat is app-level: a kind-2 message
// carrying this side's clock, answered by the server with a kind-3 pong (stats.rttMs). Browsers
// may only close with 1000 or 3000–4999; for other codes a kind-4 close notice (code + reason)
// goes first and the socket closes with 1000, and the server reports the noticed code.
import {
  type ClientTransport,
  CloseCode,
  ErrorCode,
  isTickwireError,
  TickwireError,
} from '@tickwire/core';
import {
  intOption,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  type StreamConnectionOptions,
} from '../shared/options.js';
import { StreamConnection } from '../shared/stream-connection.js';
import {
  encodeCloseBody,
  FrameKind,
  HELLO_BODY_BYTES,
  PING_BODY_BYTES,
  readHelloBody,
  reportedCloseCode,
  writeHelloBody,
} from '../shared/wire.js';

/** A constructor with the browser WebSocket API, e.g. `globalThis.WebSocket` or `ws`'s class. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

/** Options of {@link createBrowserWsClient}. */
export interface BrowserWsClientOptions extends StreamConnectionOptions {
  /**
   * The WebSocket implementation (Node tests pass the `ws` package's `WebSocket` class).
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketConstructor;
  /**
   * WebSocket subprotocols to offer.
   * @default []
   */
  protocols?: string | string[];
  /**
   * Default connect timeout in ms when `connect()` is not given `timeoutMs`.
   * @default 10000
   */
  connectTimeoutMs?: number;
}

/** The part of the WebSocket API this client uses. */
interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;
let nextBrowserId = 1;

/** Codes a browser's WebSocket#close accepts. */
function browserMayClose(code: number): boolean {
  return code === 1000 || (code >= 3000 && code <= 4999);
}

class BrowserWsConnection extends StreamConnection {
  private readonly socket: WebSocketLike;

  constructor(socket: WebSocketLike, remoteAddress: string, options: ResolvedStreamOptions) {
    super(`wsb-${(nextBrowserId++).toString(36)}`, remoteAddress, options, true);
    this.socket = socket;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      const hello = new Uint8Array(HELLO_BODY_BYTES);
      writeHelloBody(hello, 0, this.options.maxMessageBytes);
      this.sendFrame(FrameKind.Hello, hello);
    };
    socket.onmessage = (event) => this.onMessage(event.data);
    socket.onclose = (event) =>
      this.linkClosed({ code: reportedCloseCode(event.code), reason: event.reason });
    // Browsers give no detail; a failed upgrade shows as this error, then a 1006 close.
    socket.onerror = () =>
      this.failOpen(
        new TickwireError(ErrorCode.CONNECT_FAILED, `websocket to ${this.remoteAddress} failed`),
      );
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  protected writeMessage(data: Uint8Array, kind: number): void {
    this.sendFrame(kind, data);
  }

  protected writePing(nowMs: number): void {
    const body = new Uint8Array(PING_BODY_BYTES);
    new DataView(body.buffer).setFloat64(0, nowMs);
    this.sendFrame(FrameKind.Ping, body);
  }

  protected beginClose(code: number, reason: string): void {
    if (!browserMayClose(code)) this.sendFrame(FrameKind.Close, encodeCloseBody(code, reason));
    this.socket.close(browserMayClose(code) ? code : 1000, reason);
  }

  protected destroyLink(code: number, reason: string): void {
    // Browsers cannot drop a socket at once: detach (keeping an error sink), then ask it to close.
    const socket = this.socket;
    const ignore = (): void => {};
    socket.onmessage = socket.onclose = socket.onerror = socket.onopen = ignore;
    try {
      if (socket.readyState === OPEN) this.beginClose(code, reason);
      else socket.close();
    } catch {
      // Already closing: nothing left to tell the peer.
    }
  }

  /** Sends `[kind][body]`. */
  private sendFrame(kind: number, body: Uint8Array): void {
    const frame = new Uint8Array(body.byteLength + 1);
    frame[0] = kind;
    frame.set(body, 1);
    this.socket.send(frame);
    this.stats.packetsOut++;
  }

  private onMessage(data: unknown): void {
    if (this.inputStopped || this.finished) return;
    this.heardFromPeer = true;
    this.stats.packetsIn++;
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : null;
    const kind = bytes?.[0] ?? -1;
    const state = this.connectionState;
    try {
      const body = bytes ? bytes.subarray(1) : new Uint8Array(0);
      if (kind >= 0 && kind <= FrameKind.Unreliable && state !== 'connecting') {
        // Browsers enforce no maxPayload: the limit is checked here.
        if (body.length > this.options.maxMessageBytes) {
          throw new TickwireError(ErrorCode.MESSAGE_TOO_LARGE, 'message too large', {
            details: { closeCode: CloseCode.MessageTooLarge },
          });
        }
        this.deliver(body, kind === FrameKind.Reliable ? 'reliable' : 'unreliable');
      } else if (kind === FrameKind.Hello && state === 'connecting') {
        this.opened(readHelloBody(body, 0, body.length));
        this.startOwnHeartbeat();
      } else if (kind === FrameKind.Pong && state !== 'connecting') {
        if (body.length === PING_BODY_BYTES)
          this.pongReceived(new DataView(data as ArrayBuffer).getFloat64(1));
      } else if (kind === FrameKind.Ping && state !== 'connecting') {
        // Like an unreliable send: a server that pings without reading cannot grow our buffer.
        if (this.mayAnswerPing()) this.sendFrame(FrameKind.Pong, body);
      } else {
        throw new TickwireError(
          ErrorCode.PROTOCOL_ERROR,
          `unexpected message kind ${kind} from ${this.remoteAddress}`,
        );
      }
    } catch (error) {
      if (!isTickwireError(error)) throw error;
      const closeCode = error.details?.closeCode;
      this.fail(
        error,
        typeof closeCode === 'number' ? closeCode : bytes ? CloseCode.ProtocolError : 1003,
        'protocol error',
      );
    }
  }
}

/**
 * A WebSocket {@link ClientTransport} for browsers (global WebSocket, no Node modules); talks to
 * `createWsServer` from `@tickwire/transport/ws`.
 */
export function createBrowserWsClient(options: BrowserWsClientOptions = {}): ClientTransport {
  const resolved = resolveStreamOptions(options);
  const defaultTimeoutMs = intOption('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, 1);
  return {
    async connect(url, connectOptions = {}) {
      const Constructor = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor);
      if (typeof Constructor !== 'function') {
        throw new TickwireError(
          ErrorCode.INVALID_STATE,
          'no global WebSocket: pass one in options',
        );
      }
      let socket: WebSocketLike;
      let host: string;
      try {
        host = new URL(url).host;
        socket = new Constructor(url, options.protocols ?? []) as WebSocketLike;
      } catch (cause) {
        // The WebSocket constructor throws a SyntaxError for anything but a ws(s) URL.
        throw new TickwireError(ErrorCode.INVALID_ARGUMENT, `bad WebSocket URL '${url}'`, {
          cause,
        });
      }
      const connection = new BrowserWsConnection(socket, host, resolved);
      // The scheduler rejects a bad timeoutMs with INVALID_ARGUMENT.
      return connection.waitForOpen(
        url,
        connectOptions.timeoutMs ?? defaultTimeoutMs,
        connectOptions.signal,
      );
    },
  };
}
