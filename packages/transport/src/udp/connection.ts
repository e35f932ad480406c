// A UDP connection as core's `Connection`: an Endpoint driven by the time source, its packets
// sealed when encrypted and handed to the owner's socket.
import {
  type Channel,
  CloseCode,
  type CloseInfo,
  type Connection,
  type ConnectionEvents,
  type ConnectionState,
  checkCloseArgs,
  checkSend,
  Emitter,
  ErrorCode,
  TickwireError,
  type Timer,
  type TimeSource,
} from '@tickwire/core';
import type { PacketCipher } from './crypto.js';
import {
  Endpoint,
  type EndpointConfig,
  EndpointDrop,
  type EndpointHost,
  type UdpConnectionStats,
} from './endpoint.js';
import {
  AEAD_TAG_BYTES,
  PLAIN_HEADER_BYTES,
  PLAIN_SEQUENCE_OFFSET,
  readU32,
  SEALED_HEADER_BYTES,
  SESSION_OFFSET,
} from './packet.js';

/** The four delivery channels of a UDP connection. */
export type UdpChannel =
  | 'reliable-ordered'
  | 'reliable-unordered'
  | 'unreliable-sequenced'
  | 'unreliable';

/** Wire channel of each {@link UdpChannel}. */
const WIRE_CHANNELS: Readonly<Record<string, 0 | 1 | 2 | 3>> = {
  'reliable-ordered': 0,
  'reliable-unordered': 1,
  'unreliable-sequenced': 2,
  unreliable: 3,
};

/** Core channel reported for each wire channel. */
const CORE_CHANNELS: readonly Channel[] = ['reliable', 'reliable', 'unreliable', 'unreliable'];

/**
 * A `Connection` over UDP. Core's `'reliable'` is reliable-ordered and `'unreliable'` is
 * unreliable-sequenced; `sendOn` reaches all four channels.
 */
export interface UdpConnection extends Connection {
  readonly stats: Readonly<UdpConnectionStats>;
  /**
   * Sends on one of the four channels; received messages report core's channel (`reliable-*` →
   * `'reliable'`, `unreliable*` → `'unreliable'`). Same return value and errors as `send`.
   */
  sendOn(data: Uint8Array, channel: UdpChannel): boolean;
  /** The client id of the connect token (server side, with tokens); null otherwise. */
  readonly clientId: string | null;
  /** The user data of the connect token (server side, with tokens); null otherwise. */
  readonly userData: Uint8Array | null;
}

/** What a connection needs from the socket that owns it. */
export interface UdpLink {
  /** Sends one datagram to the peer (the bytes are not reused by the caller). */
  sendDatagram(bytes: Uint8Array): void;
  /** The connection closed: forget it. */
  release(connection: UdpConnectionImpl): void;
}

/** Why a connection refused a datagram (server drop counters use the same names). */
export type ConnectionDropReason =
  | 'session'
  | 'duplicate'
  | 'closed'
  | 'replayed'
  | 'tampered'
  | 'malformed';

/** Settings of a {@link UdpConnectionImpl}. */
export interface UdpConnectionInit {
  id: string;
  remoteAddress: string;
  endpoint: EndpointConfig;
  /** Largest message `send` accepts (the smaller of ours and the peer's). */
  sendMaxMessageBytes: number;
  maxBufferedBytes: number;
  time: TimeSource;
  link: UdpLink;
  cipher: PacketCipher | null;
  clientId?: string | null;
  userData?: Uint8Array | null;
  /** Hold messages and the close until `start()` (the client's connect() has not resolved yet). */
  deferEvents?: boolean;
}

/** The {@link UdpConnection} implementation shared by server and client. */
export class UdpConnectionImpl implements UdpConnection {
  readonly id: string;
  readonly remoteAddress: string;
  readonly maxMessageBytes: number;
  readonly clientId: string | null;
  readonly userData: Uint8Array | null;
  readonly #events = new Emitter<ConnectionEvents>();
  readonly #endpoint: Endpoint;
  readonly #sessionId: number;
  readonly #time: TimeSource;
  readonly #link: UdpLink;
  readonly #cipher: PacketCipher | null;
  readonly #maxBufferedBytes: number;
  #closed = false;
  #pollQueued = false;
  #receiving = false;
  readonly #eagerFlushBytes: number;
  #timer: Timer | null = null;
  #timerAtMs = Number.POSITIVE_INFINITY;
  #inbox: (Uint8Array | Channel)[] | null;
  #pendingClose: CloseInfo | null = null;
  readonly #runPoll = (): void => {
    this.#pollQueued = false;
    this.#poll();
  };
  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
    this.#poll();
  };

  constructor(init: UdpConnectionInit) {
    this.id = init.id;
    this.remoteAddress = init.remoteAddress;
    this.maxMessageBytes = init.sendMaxMessageBytes;
    this.clientId = init.clientId ?? null;
    this.userData = init.userData ?? null;
    this.#sessionId = init.endpoint.sessionId;
    this.#time = init.time;
    this.#link = init.link;
    this.#cipher = init.cipher;
    this.#maxBufferedBytes = init.maxBufferedBytes;
    this.#inbox = init.deferEvents ? [] : null;
    const host: EndpointHost = {
      transmitPacket: (bytes, length) => this.#transmit(bytes, length),
      deliverMessage: (data, channel) => this.#deliver(data, channel),
      endpointClosed: (code, reason, local) => this.#endpointClosed({ code, reason, local }),
    };
    this.#endpoint = new Endpoint(init.endpoint, host, init.time.now());
    this.#eagerFlushBytes = 4 * this.#endpoint.packetCapacity;
    this.#pollSoon();
  }

  get state(): ConnectionState {
    return this.#closed ? 'closed' : this.#endpoint.state;
  }

  get bufferedAmount(): number {
    return this.#endpoint.bufferedAmount;
  }

  get stats(): Readonly<UdpConnectionStats> {
    return this.#endpoint.stats;
  }

  on: UdpConnection['on'] = (event, listener) => this.#events.on(event, listener);
  once: UdpConnection['once'] = (event, listener) => this.#events.once(event, listener);
  off: UdpConnection['off'] = (event, listener) => this.#events.off(event, listener);

  send(data: Uint8Array, channel: Channel = 'reliable'): boolean {
    checkSend(this.id, this.state, data, channel, this.maxMessageBytes);
    return this.#queue(data, channel === 'reliable' ? 0 : 2);
  }

  sendOn(data: Uint8Array, channel: UdpChannel): boolean {
    const wire = WIRE_CHANNELS[channel];
    if (wire === undefined || !Object.hasOwn(WIRE_CHANNELS, channel)) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `channel must be 'reliable-ordered', 'reliable-unordered', 'unreliable-sequenced' or 'unreliable', got ${String(channel)}`,
      );
    }
    checkSend(this.id, this.state, data, CORE_CHANNELS[wire]!, this.maxMessageBytes);
    return this.#queue(data, wire);
  }

  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.state !== 'open') return;
    checkCloseArgs(code, reason);
    this.#endpoint.close(code, reason, this.#time.now());
    this.#pollSoon();
  }

  /** Closes at once without flushing (server shutdown deadline, socket failure). */
  abort(code: number, reason: string): void {
    if (this.#closed) return;
    this.#endpoint.abort(code, reason);
  }

  /**
   * Processes one datagram of a connected-packet `type` from the peer; returns why it was dropped,
   * or null. Throws TickwireError DECODE_FAILED if malformed.
   */
  receiveDatagram(bytes: Uint8Array, type: number): ConnectionDropReason | null {
    if (this.#closed) return 'closed';
    const cipher = this.#cipher;
    let result: EndpointDrop;
    if (cipher === null) {
      if (bytes.length < PLAIN_HEADER_BYTES) return 'malformed';
      if (readU32(bytes, SESSION_OFFSET) !== this.#sessionId) return 'session';
      result = this.#receive(type, bytes, PLAIN_SEQUENCE_OFFSET);
    } else {
      if (bytes.length < SEALED_HEADER_BYTES + AEAD_TAG_BYTES) return 'malformed';
      if (readU32(bytes, SESSION_OFFSET) !== this.#sessionId) return 'session';
      const plain = cipher.open(bytes);
      if (plain === null) {
        this.#endpoint.stats.rejectedPackets++;
        return cipher.failure;
      }
      result = this.#receive(type, plain, 0);
    }
    if (result === EndpointDrop.Duplicate) return 'duplicate';
    if (result === EndpointDrop.Closed) return 'closed';
    // Poll only when there is something to do; a pending ack just needs its timer.
    if (this.#endpoint.pollWanted) this.#pollSoon();
    else this.#wakeAt(this.#endpoint.ackDeadlineMs);
    return null;
  }

  /** Releases messages and a close held since creation (client: after connect() resolved). */
  start(): void {
    const inbox = this.#inbox;
    if (inbox === null) return;
    this.#inbox = null;
    for (let i = 0; i < inbox.length; i += 2) {
      this.#emitMessage(inbox[i] as Uint8Array, inbox[i + 1] as Channel);
    }
    const pending = this.#pendingClose;
    if (pending !== null) {
      this.#pendingClose = null;
      this.#events.emit('close', pending);
    }
  }

  #receive(type: number, bytes: Uint8Array, offset: number): EndpointDrop {
    this.#receiving = true;
    try {
      return this.#endpoint.receive(type, bytes, offset, this.#time.now());
    } finally {
      this.#receiving = false;
    }
  }

  #queue(data: Uint8Array, wire: 0 | 1 | 2 | 3): boolean {
    const endpoint = this.#endpoint;
    if (wire < 2) {
      if (endpoint.bufferedAmount + data.length > this.#maxBufferedBytes) {
        endpoint.abort(
          CloseCode.Backpressure,
          `send buffer over maxBufferedBytes ${this.#maxBufferedBytes}`,
        );
        return false;
      }
      endpoint.queueReliable(data, wire as 0 | 1);
    } else if (!endpoint.queueUnreliable(data, wire as 2 | 3)) {
      return false;
    }
    // Full packets leave at once (as far as the pacer allows); the rest at the end of the turn.
    if (endpoint.bufferedAmount >= this.#eagerFlushBytes && !this.#receiving) {
      endpoint.flush(this.#time.now());
    }
    this.#pollSoon();
    return true;
  }

  // One flush per event-loop turn, however many sends it made.
  #pollSoon(): void {
    if (this.#pollQueued || this.#closed) return;
    this.#pollQueued = true;
    queueMicrotask(this.#runPoll);
  }

  #poll(): void {
    if (this.#closed) return;
    const wakeMs = this.#endpoint.poll(this.#time.now());
    if (!this.#closed) this.#wakeAt(wakeMs);
  }

  /** Makes sure a poll runs by `wakeMs` (one timer per connection, moved only earlier). */
  #wakeAt(wakeMs: number): void {
    if (wakeMs === Number.POSITIVE_INFINITY) return;
    if (this.#timer !== null && this.#timerAtMs <= wakeMs) return;
    this.#timer?.cancel();
    this.#timerAtMs = wakeMs;
    this.#timer = this.#time.setTimeout(this.#onTimer, Math.max(0, wakeMs - this.#time.now()));
  }

  #transmit(bytes: Uint8Array, length: number): void {
    const cipher = this.#cipher;
    if (cipher !== null) {
      this.#link.sendDatagram(cipher.seal(bytes, length));
      return;
    }
    this.#link.sendDatagram(length === bytes.length ? bytes : bytes.subarray(0, length));
  }

  #deliver(data: Uint8Array, channel: Channel): void {
    if (this.#inbox !== null) {
      this.#inbox.push(data, channel);
      return;
    }
    this.#emitMessage(data, channel);
  }

  #emitMessage(data: Uint8Array, channel: Channel): void {
    try {
      this.#events.emit('message', data, channel);
    } catch (error) {
      // A listener's exception must not unwind the packet processing; rethrow it on its own.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #endpointClosed(info: CloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#link.release(this);
    if (this.#inbox !== null) {
      this.#pendingClose = info;
      return;
    }
    try {
      this.#events.emit('close', info);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
