// The part of a Connection every stream adapter shares: state, close-once, stats, send checks,
// backpressure, heartbeat liveness and RTT. Browser-safe: no Node APIs.
import {
  type Channel,
  CloseCode,
  type CloseInfo,
  type Connection,
  type ConnectionEvents,
  type ConnectionState,
  type ConnectionStats,
  checkCloseArgs,
  checkSend,
  createConnectionStats,
  Emitter,
  ErrorCode,
  type Listener,
  ListenerList,
  TickwireError,
  type Timer,
} from '@tickwire/core';
import type { ResolvedStreamOptions } from './options.js';
import { FrameKind } from './wire.js';

type OpenWaiter = { url: string; settle: (error?: TickwireError) => void };

/** Largest plausible RTT sample; anything else in a pong is garbage from the peer. */
const MAX_RTT_SAMPLE_MS = 600_000;

/**
 * Base of the ws, browser and tcp connections. Subclasses move bytes; this class decides.
 * Close paths: `close()` → graceful (`beginClose`, then the link closes, or `closeTimeoutMs`
 * forces it); `abort()` → immediate (Timeout, Backpressure): the close event fires at once and
 * the link is destroyed; `fail()` → a protocol error from the peer: error event, graceful close.
 */
export abstract class StreamConnection implements Connection {
  readonly id: string;
  readonly remoteAddress: string;
  /** Lowered to the peer's limit when its Hello announces a smaller one. */
  maxMessageBytes: number;
  readonly stats: ConnectionStats = createConnectionStats();
  /** Called once when the connection closes (servers drop it from their set). */
  onClosed: ((connection: StreamConnection) => void) | null = null;

  protected readonly options: ResolvedStreamOptions;
  protected connectionState: ConnectionState;
  /** Set by subclasses on every frame from the peer; read and cleared by the heartbeat. */
  protected heardFromPeer = false;
  /** Set after a protocol error: subclasses ignore further input. */
  protected inputStopped = false;
  /** What this side asked for when it started closing; reported with `local: true`. */
  protected closeRequest: { code: number; reason: string } | null = null;

  private readonly events = new Emitter<ConnectionEvents>();
  /** 'message' listeners, called here directly rather than through `events` (every message). */
  private readonly messageListeners = new ListenerList<[data: Uint8Array, channel: Channel]>();
  /** True once `close` has fired (or the connection was dropped before it opened). */
  protected finished = false;
  /** The close timeout and the client's heartbeat, cancelled when the connection finishes. */
  private readonly timers: Timer[] = [];
  private lastHeardMs: number;
  // Client side: events that arrive before the caller of connect() could attach listeners.
  private inbox: Array<() => void> | null;
  private opening: OpenWaiter | null = null;

  constructor(
    id: string,
    remoteAddress: string,
    options: ResolvedStreamOptions,
    isClient: boolean,
  ) {
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.options = options;
    this.maxMessageBytes = options.maxMessageBytes;
    this.connectionState = 'connecting';
    this.lastHeardMs = options.time.now();
    this.inbox = isClient ? [] : null;
  }

  get state(): ConnectionState {
    return this.connectionState;
  }

  /** Bytes accepted by `send` and not yet handed to the network. */
  abstract get bufferedAmount(): number;

  /** Queues one user message of `kind` Reliable or Unreliable (bytes copied or sent now). */
  protected abstract writeMessage(data: Uint8Array, kind: number): void;
  /** Sends a heartbeat ping carrying `nowMs`. */
  protected abstract writePing(nowMs: number): void;
  /** Starts the transport's close handshake after queued data. */
  protected abstract beginClose(code: number, reason: string): void;
  /** Tears the link down now (best-effort close notice to the peer). */
  protected abstract destroyLink(code: number, reason: string): void;

  on<E extends keyof ConnectionEvents & string>(
    event: E,
    listener: Listener<ConnectionEvents, E>,
  ): () => void {
    if (event === 'message')
      return this.messageListeners.add(listener as Listener<ConnectionEvents, 'message'>);
    return this.events.on(event, listener);
  }

  once<E extends keyof ConnectionEvents & string>(
    event: E,
    listener: Listener<ConnectionEvents, E>,
  ): () => void {
    if (event === 'message')
      return this.messageListeners.once(listener as Listener<ConnectionEvents, 'message'>);
    return this.events.once(event, listener);
  }

  off<E extends keyof ConnectionEvents & string>(
    event: E,
    listener: Listener<ConnectionEvents, E>,
  ): void {
    if (event === 'message')
      this.messageListeners.remove(listener as Listener<ConnectionEvents, 'message'>);
    else this.events.off(event, listener);
  }

  /** Calls the 'message' listeners (those there when delivery starts), as core's Emitter would. */
  private emitMessage(data: Uint8Array, channel: Channel): void {
    const list = this.messageListeners;
    const items = list.items;
    for (let i = 0; i < items.length; i++) {
      try {
        items[i]!(data, channel);
      } catch (error) {
        list.report(error);
      }
    }
  }

  send(data: Uint8Array, channel: Channel = 'reliable'): boolean {
    checkSend(this.id, this.connectionState, data, channel, this.maxMessageBytes);
    const buffered = this.bufferedAmount;
    if (channel === 'unreliable') {
      if (buffered > this.options.unreliableDropThresholdBytes) {
        this.stats.unreliableDropped++;
        return false;
      }
      this.writeMessage(data, FrameKind.Unreliable);
    } else {
      if (buffered + data.byteLength > this.options.maxBufferedBytes) {
        this.abort(CloseCode.Backpressure, 'send buffer over maxBufferedBytes');
        return false;
      }
      this.writeMessage(data, FrameKind.Reliable);
    }
    this.stats.messagesOut++;
    this.stats.bytesOut += data.byteLength;
    return true;
  }

  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.connectionState !== 'open') return;
    checkCloseArgs(code, reason);
    this.startClosing(code, reason);
  }

  /** One heartbeat: closes with Timeout if the peer went quiet, else sends a ping. */
  heartbeat(nowMs: number): void {
    if (this.connectionState !== 'open') return;
    if (this.heardFromPeer) {
      this.heardFromPeer = false;
      this.lastHeardMs = nowMs;
    } else if (nowMs - this.lastHeardMs >= this.options.heartbeatTimeoutMs) {
      this.abort(CloseCode.Timeout, 'heartbeat timeout');
      return;
    }
    this.writePing(nowMs);
  }

  /** Client side: resolves with this connection once `opened()` runs, rejects on failure. */
  waitForOpen(url: string, timeoutMs: number, signal?: AbortSignal): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const failWith = (code: ErrorCode, why: string) => () =>
        this.failOpen(new TickwireError(code, `connect to ${url} ${why}`));
      const onAbort = failWith(ErrorCode.CONNECT_FAILED, 'aborted');
      const timer = this.options.time.setTimeout(
        failWith(ErrorCode.TIMEOUT, `timed out after ${timeoutMs} ms`),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort);
      this.opening = {
        url,
        settle: (error) => {
          timer.cancel();
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(this);
        },
      };
      if (signal?.aborted) onAbort();
    });
  }

  /**
   * The handshake finished: the connection is open. `peerMaxMessageBytes` (from the peer's Hello)
   * lowers `maxMessageBytes` so that a send the peer would refuse fails here, typed.
   */
  protected opened(peerMaxMessageBytes: number): void {
    if (this.connectionState !== 'connecting') return;
    this.connectionState = 'open';
    if (peerMaxMessageBytes < this.maxMessageBytes) this.maxMessageBytes = peerMaxMessageBytes;
    this.lastHeardMs = this.options.time.now();
    const waiter = this.opening;
    this.opening = null;
    if (waiter) {
      waiter.settle();
      // The caller attaches listeners after `await connect()`; hold events until it has. A
      // macrotask of the host, not the injected scheduler: this is event-loop ordering, not time.
      globalThis.setTimeout(() => this.flushInbox(), 0);
    }
    if (this.options.heartbeatIntervalMs > 0) this.writePing(this.lastHeardMs);
  }

  /** Client side: runs the heartbeat on this connection's own timer. */
  protected startOwnHeartbeat(): void {
    const interval = this.options.heartbeatIntervalMs;
    if (interval > 0) {
      this.timers.push(
        this.options.time.setInterval(() => this.heartbeat(this.options.time.now()), interval),
      );
    }
  }

  /** The connect attempt failed before the connection opened. */
  protected failOpen(error: TickwireError): void {
    const waiter = this.opening;
    if (!waiter) return;
    this.opening = null;
    this.discard();
    this.destroyLink(CloseCode.GoingAway, 'connect failed');
    waiter.settle(error);
  }

  /** Delivers one user message (the bytes now belong to the listeners). */
  protected deliver(data: Uint8Array, channel: Channel): void {
    const stats = this.stats;
    stats.messagesIn++;
    stats.bytesIn += data.byteLength;
    if (this.inbox !== null) {
      this.inbox.push(() => this.emitMessage(data, channel));
      return;
    }
    this.emitMessage(data, channel);
  }

  /**
   * Whether a ping from the peer gets its pong now: not while more than
   * unreliableDropThresholdBytes is buffered, like an unreliable send, so that a peer that pings
   * without reading cannot grow the send buffer without bound.
   */
  protected mayAnswerPing(): boolean {
    return (
      this.connectionState === 'open' &&
      this.bufferedAmount <= this.options.unreliableDropThresholdBytes
    );
  }

  /** A pong echoed `sentAtMs` of one of our pings: one RTT sample (RFC 6298 smoothing, α = 1/8). */
  protected pongReceived(sentAtMs: number): void {
    const sample = this.options.time.now() - sentAtMs;
    if (!(sample >= 0 && sample <= MAX_RTT_SAMPLE_MS)) return;
    const stats = this.stats;
    // rttMs 0 means unknown: the first sample replaces it.
    stats.rttMs = stats.rttMs === 0 ? sample : stats.rttMs + (sample - stats.rttMs) / 8;
  }

  /** Starts a graceful close from this side. */
  protected startClosing(code: number, reason: string): void {
    this.connectionState = 'closing';
    this.closeRequest = { code, reason };
    this.timers.push(
      this.options.time.setTimeout(() => this.abort(code, reason), this.options.closeTimeoutMs),
    );
    this.beginClose(code, reason);
  }

  /** Closes now, reporting `code` locally (heartbeat timeout, backpressure). */
  protected abort(code: number, reason: string): void {
    if (this.finished) return;
    const info = this.closeRequest ?? { code, reason };
    this.finish({ ...info, local: true });
    this.destroyLink(info.code, info.reason);
  }

  /** The peer broke the protocol: error event, stop reading, close with `closeCode`. */
  protected fail(error: TickwireError, closeCode: number, reason: string): void {
    if (this.finished) return;
    this.inputStopped = true;
    if (this.opening) {
      this.finish({ code: closeCode, reason: error.message, local: true });
      return;
    }
    this.post(() => this.events.emit('error', error));
    if (this.connectionState === 'open') this.startClosing(closeCode, reason);
  }

  /** The link closed; `remote` is what the peer said (or an abnormal-closure code). */
  protected linkClosed(remote: { code: number; reason: string }): void {
    this.finish({ ...(this.closeRequest ?? remote), local: this.closeRequest !== null });
  }

  /** Emits `close` exactly once (or fails a pending connect). */
  protected finish(info: CloseInfo): void {
    if (this.finished) return;
    if (this.opening) {
      this.failOpen(
        new TickwireError(
          ErrorCode.CONNECT_FAILED,
          `connect to ${this.opening.url} failed: ${info.code} ${info.reason}`,
          { details: { closeCode: info.code, reason: info.reason } },
        ),
      );
      return;
    }
    this.discard();
    this.onClosed?.(this);
    this.post(() => this.events.emit('close', info));
  }

  /** Drops a connection that never opened (server side: refused handshake), with no events. */
  protected discard(): void {
    this.finished = true;
    this.connectionState = 'closed';
    for (const timer of this.timers.splice(0)) timer.cancel();
  }

  private post(emit: () => void): void {
    if (this.inbox !== null) this.inbox.push(emit);
    else emit();
  }

  private flushInbox(): void {
    const waiting = this.inbox;
    this.inbox = null;
    if (waiting) for (const emit of waiting) emit();
  }
}
