// A Connection over one `ws` WebSocket (server side, or the Node client).

import type { Duplex } from 'node:stream';
import { CloseCode, ErrorCode, isTickwireError, TickwireError } from '@tickwire/core';
import type { RawData, WebSocket } from 'ws';
import type { ResolvedStreamOptions } from '../shared/options.js';
import { StreamConnection } from '../shared/stream-connection.js';
import {
  decodeCloseBody,
  FrameKind,
  HELLO_BODY_BYTES,
  MAX_CONTROL_BODY_BYTES,
  PING_BODY_BYTES,
  readHelloBody,
  reportedCloseCode,
  writeHelloBody,
} from '../shared/wire.js';

/** Below this size a byte loop beats TypedArray#set. */
const COPY_LOOP_BYTES = 32;
const OPEN = 1;

/** `ws`'s maxPayload: a message plus its kind byte, and never less than a control message. */
export function maxPayloadBytes(maxMessageBytes: number): number {
  return Math.max(maxMessageBytes, MAX_CONTROL_BODY_BYTES) + 1;
}

/** What this adapter reads of `ws`'s private state (ws 8): its socket and its sender's queue. */
interface WsInternals {
  _socket?: unknown;
  _sender?: { _queue?: unknown };
}

/**
 * The socket under a server-side `ws` WebSocket (its private `_socket`), to which this adapter
 * may write whole frames itself, and its sender's queue, which must be empty at each such write
 * so that frames written here and by `ws` (pings, close) keep their order. Only without
 * extensions (permessage-deflate makes `ws` queue frames while it compresses). Null when `ws`
 * does not look as expected: `ws.send` is used then.
 */
function directSocket(ws: WebSocket): { socket: Duplex; queue: readonly unknown[] } | null {
  const { _socket: socket, _sender: sender } = ws as unknown as WsInternals;
  if (ws.extensions !== '' || typeof socket !== 'object' || socket === null) return null;
  if (typeof (socket as Duplex).write !== 'function' || !Array.isArray(sender?._queue)) return null;
  return { socket: socket as Duplex, queue: sender._queue };
}

/** Maps a `ws` protocol error (its `code` string) to a Tickwire error code and a close code. */
function classifyWsError(error: Error): { code: ErrorCode; closeCode: number } {
  const wsCode = (error as { code?: unknown }).code;
  if (wsCode === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return { code: ErrorCode.MESSAGE_TOO_LARGE, closeCode: CloseCode.MessageTooLarge };
  }
  if (wsCode === 'WS_ERR_INVALID_UTF8') return { code: ErrorCode.PROTOCOL_ERROR, closeCode: 1007 };
  return { code: ErrorCode.PROTOCOL_ERROR, closeCode: CloseCode.ProtocolError };
}

/** One WebSocket connection; `createWsServer` and `createWsClient` wrap a `ws` socket in it. */
export class WsConnection extends StreamConnection {
  private readonly ws: WebSocket;
  private readonly isClient: boolean;
  /** What a browser peer announced in a Close message before closing with a code browsers allow. */
  private closeNotice: { code: number; reason: string } | null = null;
  private peerHelloSeen = false;
  /** Server side: the TCP socket user messages are written to directly (see writeFrame). */
  private direct: { socket: Duplex; queue: readonly unknown[] } | null = null;

  constructor(
    ws: WebSocket,
    id: string,
    remoteAddress: string,
    options: ResolvedStreamOptions,
    isClient: boolean,
  ) {
    super(id, remoteAddress, options, isClient);
    this.ws = ws;
    this.isClient = isClient;
    ws.on('message', (data: RawData, isBinary: boolean) =>
      this.onMessage(data as Buffer, isBinary),
    );
    ws.on('pong', (data: Buffer) => this.onPong(data));
    ws.on('ping', () => {
      this.heardFromPeer = true;
      this.stats.packetsIn++;
    });
    ws.on('close', (code: number, reason: Buffer) => this.onClose(code, reason));
    ws.on('error', (error: Error) => this.onError(error));
    if (isClient) {
      ws.on('open', () => this.writeHello());
      ws.on('unexpected-response', (_request, response) => {
        const status = response.statusCode ?? 0;
        const reason = response.statusMessage ?? '';
        response.resume();
        this.failOpen(
          new TickwireError(
            ErrorCode.CONNECT_FAILED,
            `websocket upgrade to ${this.remoteAddress} refused: HTTP ${status}${reason ? ` ${reason}` : ''}`,
            { details: { statusCode: status, reason } },
          ),
        );
      });
    }
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Server side: greets the client with a Hello; the connection is open. */
  accept(): void {
    this.direct = directSocket(this.ws);
    this.writeHello();
    this.opened(this.options.maxMessageBytes);
  }

  protected writeMessage(data: Uint8Array, kind: number): void {
    const length = data.byteLength;
    const direct = this.direct;
    if (direct !== null && this.ws.readyState === OPEN && direct.queue.length === 0) {
      this.writeFrame(direct.socket, data, kind);
      return;
    }
    const frame = Buffer.allocUnsafe(length + 1);
    frame[0] = kind;
    if (length <= COPY_LOOP_BYTES) for (let i = 0; i < length; i++) frame[i + 1] = data[i]!;
    else frame.set(data, 1);
    this.ws.send(frame);
    this.stats.packetsOut++;
  }

  /**
   * One unmasked binary WebSocket frame (RFC 6455 §5.2: FIN + opcode 2, then the payload
   * length in 7, 7 + 16 or 7 + 64 bits), its kind byte and `data`, written in one buffer: `ws`
   * writes a header and a body (two writes, a writev), a cost paid per snapshot per client.
   */
  private writeFrame(socket: Duplex, data: Uint8Array, kind: number): void {
    const length = data.byteLength;
    const payload = length + 1;
    const header = payload < 126 ? 2 : payload < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(header + payload);
    frame[0] = 0x82;
    if (header === 2) frame[1] = payload;
    else if (header === 4) {
      frame[1] = 126;
      frame.writeUInt16BE(payload, 2);
    } else {
      frame[1] = 127;
      frame.writeUInt32BE(0, 2);
      frame.writeUInt32BE(payload, 6);
    }
    frame[header] = kind;
    const start = header + 1;
    if (length <= COPY_LOOP_BYTES) for (let i = 0; i < length; i++) frame[start + i] = data[i]!;
    else frame.set(data, start);
    socket.write(frame);
    this.stats.packetsOut++;
  }

  protected writePing(nowMs: number): void {
    const payload = Buffer.allocUnsafe(PING_BODY_BYTES);
    payload.writeDoubleBE(nowMs, 0);
    this.ws.ping(payload);
    this.stats.packetsOut++;
  }

  protected beginClose(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  protected destroyLink(code: number, reason: string): void {
    // Best effort: the close frame leaves before the socket is torn down if nothing is queued.
    if (this.ws.readyState === OPEN && this.ws.bufferedAmount === 0) this.ws.close(code, reason);
    this.ws.terminate();
  }

  private writeHello(): void {
    const frame = Buffer.allocUnsafe(1 + HELLO_BODY_BYTES);
    frame[0] = FrameKind.Hello;
    writeHelloBody(frame, 1, this.options.maxMessageBytes);
    this.ws.send(frame);
    this.stats.packetsOut++;
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.inputStopped || this.finished) return;
    this.heardFromPeer = true;
    this.stats.packetsIn++;
    const kind = data.length > 0 && isBinary ? data[0]! : -1;
    if (kind >= 0 && kind <= FrameKind.Unreliable && this.connectionState !== 'connecting') {
      // `ws` enforces maxPayload; this catches the gap below the control-message floor.
      if (data.length > this.options.maxMessageBytes + 1) {
        this.fail(
          new TickwireError(
            ErrorCode.MESSAGE_TOO_LARGE,
            `message of ${data.length - 1} bytes from ${this.remoteAddress} exceeds maxMessageBytes ${this.options.maxMessageBytes}`,
          ),
          CloseCode.MessageTooLarge,
          'message too large',
        );
        return;
      }
      this.deliver(
        new Uint8Array(data.buffer, data.byteOffset + 1, data.length - 1),
        kind === FrameKind.Reliable ? 'reliable' : 'unreliable',
      );
      return;
    }
    try {
      this.onControl(kind, data, isBinary);
    } catch (error) {
      if (!isTickwireError(error)) throw error;
      const closeCode = error.details?.closeCode;
      this.fail(
        error,
        typeof closeCode === 'number' ? closeCode : isBinary ? CloseCode.ProtocolError : 1003,
        isBinary ? 'protocol error' : 'binary messages only',
      );
    }
  }

  private onControl(kind: number, data: Buffer, isBinary: boolean): void {
    const length = data.length - 1;
    const state = this.connectionState;
    if (!isBinary) {
      throw new TickwireError(
        ErrorCode.PROTOCOL_ERROR,
        `text message from ${this.remoteAddress}; this transport carries binary messages only`,
      );
    }
    switch (kind) {
      case FrameKind.Ping:
        if (state === 'connecting') break;
        if (this.mayAnswerPing()) {
          const pong = Buffer.from(data);
          pong[0] = FrameKind.Pong;
          this.ws.send(pong);
          this.stats.packetsOut++;
        }
        return;
      case FrameKind.Pong:
        if (state === 'connecting') break;
        if (length === PING_BODY_BYTES) this.pongReceived(data.readDoubleBE(1));
        return;
      case FrameKind.Close:
        if (state === 'connecting') break;
        this.closeNotice = decodeCloseBody(data, 1, length);
        return;
      case FrameKind.Hello: {
        if (this.peerHelloSeen) break;
        this.peerHelloSeen = true;
        const peerMaxMessageBytes = readHelloBody(data, 1, length);
        if (this.isClient) {
          this.opened(peerMaxMessageBytes);
          this.startOwnHeartbeat();
        } else if (peerMaxMessageBytes < this.maxMessageBytes) {
          this.maxMessageBytes = peerMaxMessageBytes;
        }
        return;
      }
    }
    throw new TickwireError(
      ErrorCode.PROTOCOL_ERROR,
      kind < 0
        ? `empty message from ${this.remoteAddress}`
        : `unexpected message kind ${kind} from ${this.remoteAddress} while ${state}`,
      { details: { kind } },
    );
  }

  private onPong(data: Buffer): void {
    this.heardFromPeer = true;
    this.stats.packetsIn++;
    if (data.length === PING_BODY_BYTES) this.pongReceived(data.readDoubleBE(0));
  }

  private onClose(code: number, reason: Buffer): void {
    this.linkClosed(
      this.closeNotice ?? { code: reportedCloseCode(code), reason: reason.toString() },
    );
  }

  private onError(error: Error): void {
    if (this.connectionState === 'connecting') {
      this.failOpen(
        new TickwireError(
          ErrorCode.CONNECT_FAILED,
          `websocket connect to ${this.remoteAddress} failed: ${error.message}`,
          { cause: error },
        ),
      );
      return;
    }
    // `ws` rejected a frame (oversize, bad opcode…) and already started closing with its code.
    const { code, closeCode } = classifyWsError(error);
    this.fail(
      new TickwireError(code, `websocket from ${this.remoteAddress}: ${error.message}`, {
        cause: error,
      }),
      closeCode,
      code === ErrorCode.MESSAGE_TOO_LARGE ? 'message too large' : 'protocol error',
    );
  }
}
