// A Connection over one node:net socket, framed as described in ./frame.ts.
import type { Socket } from 'node:net';
import { CloseCode, ErrorCode, isTickwireError, TickwireError, type Timer } from '@tickwire/core';
import type { ResolvedStreamOptions } from '../shared/options.js';
import { StreamConnection } from '../shared/stream-connection.js';
import {
  ABNORMAL_CLOSE_CODE,
  decodeCloseBody,
  encodeCloseBody,
  FrameKind,
  HELLO_BODY_BYTES,
  PING_BODY_BYTES,
  readHelloBody,
  writeHelloBody,
} from '../shared/wire.js';
import { FrameDecoder, varintSize, writeVarint } from './frame.js';

/** First size of the write-coalescing buffer; it doubles (up to the max) when a turn fills it. */
const INITIAL_BATCH_BYTES = 2048;
/** Largest write-coalescing buffer; bigger frames are written on their own. */
const MAX_BATCH_BYTES = 65_536;
/** Smallest batch limit, whatever unreliableDropThresholdBytes is. */
const MIN_BATCH_BYTES = 512;
/** Below this size a byte loop beats TypedArray#set. */
const COPY_LOOP_BYTES = 32;

const controlScratch = new Uint8Array(8);
const controlView = new DataView(controlScratch.buffer);

/** Close code for a decode error: MessageTooLarge, VersionMismatch or ProtocolError. */
function closeCodeOf(error: TickwireError): number {
  if (error.code === ErrorCode.MESSAGE_TOO_LARGE) return CloseCode.MessageTooLarge;
  const fromDetails = error.details?.closeCode;
  return typeof fromDetails === 'number' ? fromDetails : CloseCode.ProtocolError;
}

/** One TCP connection; the client and server factories create it around a socket. */
export class TcpConnection extends StreamConnection {
  /** Server side: the client's Hello arrived; the server accepts (`accept`) or refuses (`refuse`). */
  onHello: ((connection: TcpConnection, peerMaxMessageBytes: number) => void) | null = null;
  /** Server side: the handshake broke the protocol. */
  onHandshakeError: ((error: TickwireError) => void) | null = null;

  private readonly socket: Socket;
  private readonly isClient: boolean;
  private readonly decoder: FrameDecoder;
  /** At most the drop threshold, so that a batch alone never makes unreliable sends drop. */
  private readonly maxBatchBytes: number;
  private batch: Buffer;
  private batchLength = 0;
  private flushQueued = false;
  private socketClosed = false;
  private socketError: Error | null = null;
  private destroyTimer: Timer | null = null;
  private readonly flushQueuedBatch = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(
    socket: Socket,
    id: string,
    remoteAddress: string,
    options: ResolvedStreamOptions,
    isClient: boolean,
  ) {
    super(id, remoteAddress, options, isClient);
    this.socket = socket;
    this.isClient = isClient;
    this.maxBatchBytes = Math.min(
      MAX_BATCH_BYTES,
      Math.max(MIN_BATCH_BYTES, options.unreliableDropThresholdBytes),
    );
    this.batch = Buffer.allocUnsafeSlow(Math.min(INITIAL_BATCH_BYTES, this.maxBatchBytes));
    // Until the peer's Hello, a frame header is refused unless a Hello or a Close could follow.
    this.decoder = new FrameDecoder(
      options.maxMessageBytes,
      (kind, source, offset, length) => this.onFrame(kind, source, offset, length),
      true,
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => {
      this.socketError = error;
      this.failOpen(
        new TickwireError(
          ErrorCode.CONNECT_FAILED,
          `tcp connect to ${this.remoteAddress} failed: ${error.message}`,
          { cause: error },
        ),
      );
    });
    socket.on('close', () => this.onSocketClose());
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + this.batchLength;
  }

  /** Client side: sends the Hello once the socket is connected. */
  sendHello(): void {
    this.writeHello();
    this.flush();
  }

  /** Server side: accepts the client (answers its Hello); the connection is open. */
  accept(peerMaxMessageBytes: number): void {
    this.writeHello();
    this.opened(peerMaxMessageBytes);
  }

  /** Server side: refuses a connection that never opened, telling the client why. */
  refuse(code: number, reason: string): void {
    if (this.finished) return;
    this.discard();
    this.inputStopped = true;
    this.onClosed?.(this);
    if (this.socketClosed) return;
    this.writeClose(code, reason);
    this.endSocket();
  }

  protected writeMessage(data: Uint8Array, kind: number): void {
    this.writeFrame(kind, data, 0, data.byteLength);
  }

  protected writePing(nowMs: number): void {
    controlView.setFloat64(0, nowMs);
    this.writeFrame(FrameKind.Ping, controlScratch, 0, PING_BODY_BYTES);
  }

  protected beginClose(code: number, reason: string): void {
    this.writeClose(code, reason);
    this.socket.end();
  }

  protected destroyLink(code: number, reason: string): void {
    if (this.socketClosed) return;
    // Best effort: the peer learns why if nothing is queued ahead of the close frame.
    if (this.socket.writableLength === 0 && !this.socket.connecting) {
      this.batchLength = 0;
      this.writeClose(code, reason);
    }
    this.batchLength = 0;
    this.socket.destroy();
  }

  private writeHello(): void {
    writeHelloBody(controlScratch, 0, this.options.maxMessageBytes);
    this.writeFrame(FrameKind.Hello, controlScratch, 0, HELLO_BODY_BYTES);
  }

  private writeClose(code: number, reason: string): void {
    const body = encodeCloseBody(code, reason);
    this.writeFrame(FrameKind.Close, body, 0, body.length);
    this.flush();
  }

  /** Appends one frame to the batch flushed at the end of this turn (write coalescing). */
  private writeFrame(kind: number, source: Uint8Array, offset: number, length: number): void {
    const needed = (length < 0x80 ? 1 : varintSize(length)) + 1 + length;
    if (this.batchLength + needed > this.batch.length && !this.makeRoom(needed)) {
      this.writeAlone(kind, source, offset, length, needed);
      return;
    }
    const batch = this.batch;
    let at = this.batchLength;
    if (length < 0x80) batch[at++] = length;
    else at = writeVarint(batch, at, length);
    batch[at++] = kind;
    if (length <= COPY_LOOP_BYTES) {
      for (let i = 0; i < length; i++) batch[at + i] = source[offset + i]!;
    } else if (offset === 0 && length === source.length) batch.set(source, at);
    else batch.set(source.subarray(offset, offset + length), at);
    this.batchLength = at + length;
    this.stats.packetsOut++;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushQueuedBatch);
    }
  }

  /** Flushes a full batch and grows the next one; false if the frame must be written alone. */
  private makeRoom(needed: number): boolean {
    const filledATurn = this.batchLength > 0;
    this.flush();
    const size = this.batch.length;
    const limit = this.maxBatchBytes;
    if (needed > limit) return false;
    if (needed > size || (filledATurn && size < limit)) {
      let next = size * 2;
      while (next < needed) next *= 2;
      this.batch = Buffer.allocUnsafeSlow(Math.min(next, limit));
    }
    return true;
  }

  private writeAlone(
    kind: number,
    source: Uint8Array,
    offset: number,
    length: number,
    needed: number,
  ): void {
    const frame = Buffer.allocUnsafe(needed);
    const at = writeVarint(frame, 0, length);
    frame[at] = kind;
    frame.set(source.subarray(offset, offset + length), at + 1);
    this.stats.packetsOut++;
    if (!this.socketClosed) this.socket.write(frame);
  }

  /** Hands the batch to the socket: reused if the kernel took it at once, else replaced. */
  private flush(): void {
    const length = this.batchLength;
    if (length === 0) return;
    this.batchLength = 0;
    if (this.socketClosed) return;
    const socket = this.socket;
    if (socket.writableLength === 0) {
      socket.write(length === this.batch.length ? this.batch : this.batch.subarray(0, length));
      // Still queued: the socket owns that buffer until written.
      if (socket.writableLength !== 0) this.batch = Buffer.allocUnsafeSlow(this.batch.length);
    } else {
      const chunk = Buffer.allocUnsafe(length);
      this.batch.copy(chunk, 0, 0, length);
      socket.write(chunk);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.inputStopped || this.finished) return;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      if (!isTickwireError(error)) throw error;
      this.protocolError(error);
    }
  }

  private protocolError(error: TickwireError): void {
    const code = closeCodeOf(error);
    const reason =
      error.code === ErrorCode.MESSAGE_TOO_LARGE ? 'message too large' : 'protocol error';
    if (this.state === 'connecting' && !this.isClient) {
      this.onHandshakeError?.(error);
      this.refuse(code, reason);
      return;
    }
    this.fail(error, code, reason);
  }

  private onFrame(kind: number, source: Uint8Array, offset: number, length: number): void {
    if (this.inputStopped || this.finished) return;
    this.heardFromPeer = true;
    this.stats.packetsIn++;
    if (kind <= FrameKind.Unreliable && this.connectionState !== 'connecting') {
      this.deliver(
        offset === 0 && length === source.length
          ? source
          : new Uint8Array(source.buffer, source.byteOffset + offset, length),
        kind === FrameKind.Reliable ? 'reliable' : 'unreliable',
      );
      return;
    }
    switch (kind) {
      case FrameKind.Ping:
        if (this.connectionState === 'connecting') break;
        if (this.mayAnswerPing()) this.writeFrame(FrameKind.Pong, source, offset, length);
        return;
      case FrameKind.Pong:
        if (this.connectionState === 'connecting') break;
        if (length === PING_BODY_BYTES) {
          this.pongReceived(
            new DataView(source.buffer, source.byteOffset + offset, length).getFloat64(0),
          );
        }
        return;
      case FrameKind.Close: {
        const { code, reason } = decodeCloseBody(source, offset, length);
        this.remoteClose(code, reason);
        return;
      }
      case FrameKind.Hello:
        if (this.connectionState !== 'connecting') break;
        this.decoder.helloReceived();
        this.helloReceived(readHelloBody(source, offset, length));
        return;
    }
    throw new TickwireError(
      ErrorCode.PROTOCOL_ERROR,
      `unexpected frame kind ${kind} while ${this.connectionState}`,
    );
  }

  private helloReceived(peerMaxMessageBytes: number): void {
    if (this.isClient) {
      this.opened(peerMaxMessageBytes);
      this.startOwnHeartbeat();
    } else if (this.onHello) this.onHello(this, peerMaxMessageBytes);
    else this.accept(peerMaxMessageBytes);
  }

  private remoteClose(code: number, reason: string): void {
    this.inputStopped = true;
    if (this.connectionState === 'closing') return;
    // Open: the peer closed first. Connecting: the server refused us (connect() rejects).
    this.finish({ code, reason, local: false });
    this.batchLength = 0;
    if (!this.socketClosed) this.endSocket();
  }

  /**
   * Ends the socket after what is queued; destroys it if the peer has not closed its side within
   * closeTimeoutMs, so that a half-open socket never outlives its connection.
   */
  private endSocket(): void {
    this.socket.end();
    this.destroyTimer ??= this.options.time.setTimeout(
      () => this.socket.destroy(),
      this.options.closeTimeoutMs,
    );
  }

  private onSocketClose(): void {
    this.socketClosed = true;
    this.batchLength = 0;
    this.destroyTimer?.cancel();
    if (this.finished) return;
    if (this.connectionState === 'connecting') {
      if (this.isClient) {
        this.failOpen(
          new TickwireError(
            ErrorCode.CONNECT_FAILED,
            `tcp connection to ${this.remoteAddress} closed during the handshake${this.socketError ? `: ${this.socketError.message}` : ''}`,
            { cause: this.socketError ?? undefined },
          ),
        );
      } else {
        this.discard();
        this.onClosed?.(this);
      }
      return;
    }
    const errorCode = (this.socketError as { code?: unknown } | null)?.code;
    this.linkClosed({
      code: ABNORMAL_CLOSE_CODE,
      reason: typeof errorCode === 'string' ? errorCode : 'connection lost',
    });
  }
}
