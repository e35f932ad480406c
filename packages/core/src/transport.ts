import type { Subscribable } from './emitter.js';
import { ErrorCode, TickwireError } from './errors.js';

/** Delivery channels every transport offers. */
export const Channel = {
  /** Ordered, nothing lost. */
  Reliable: 'reliable',
  /** Sequenced: may be lost, a packet older than one already delivered is dropped, never duplicated. */
  Unreliable: 'unreliable',
} as const;

/** A delivery channel: `'reliable'` or `'unreliable'`. */
export type Channel = (typeof Channel)[keyof typeof Channel];

/** Lifecycle of a connection. */
export type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

/** Live figures of a connection, updated by the transport. */
export interface ConnectionStats {
  /** Smoothed round-trip time in ms; 0 while unknown. */
  rttMs: number;
  /** Payload bytes received / sent (messages, not framing). */
  bytesIn: number;
  bytesOut: number;
  /** Messages received / sent. */
  messagesIn: number;
  messagesOut: number;
  /** Packets (datagrams, frames) received / sent on the wire. */
  packetsIn: number;
  packetsOut: number;
  /** Packets known lost (never acknowledged); 0 on stream transports. */
  packetsLost: number;
  /** Recent loss ratio in [0, 1]. */
  lossRate: number;
  /** Unreliable sends dropped locally because the send buffer was over its threshold. */
  unreliableDropped: number;
}

/** Why a connection closed. */
export interface CloseInfo {
  /** A close code, see `CloseCode` (1000–4999). */
  code: number;
  /** Human-readable reason, at most 123 UTF-8 bytes. */
  reason: string;
  /** True if this side called `close()`. */
  local: boolean;
}

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  [event: string]: unknown[];
  /** A message arrived; the bytes belong to the listener (not reused by the transport). */
  message: [data: Uint8Array, channel: Channel];
  /** The connection closed (emitted once, on both sides). */
  close: [info: CloseInfo];
  /** A non-fatal transport error (fatal ones are followed by `close`). */
  error: [error: TickwireError];
}

/** One bidirectional, message-oriented link between two peers. */
export interface Connection extends Subscribable<ConnectionEvents> {
  /** Unique among the connections of one server transport. */
  readonly id: string;
  /** Address of the peer, e.g. `127.0.0.1:50123`. */
  readonly remoteAddress: string;
  readonly state: ConnectionState;
  /** Bytes accepted by `send` and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Largest message `send` accepts, in bytes. */
  readonly maxMessageBytes: number;
  readonly stats: Readonly<ConnectionStats>;
  /**
   * Sends one message. Returns false if an unreliable message was dropped because the send
   * buffer is over its threshold. Throws `TickwireError` MESSAGE_TOO_LARGE over
   * `maxMessageBytes` and CONNECTION_CLOSED unless the state is `open`.
   * The bytes are copied or sent before returning: the caller may reuse its buffer.
   */
  send(data: Uint8Array, channel?: Channel): boolean;
  /** Closes the connection after queued reliable messages; idempotent. */
  close(code?: number, reason?: string): void;
}

/** Where a server transport listens. */
export interface TransportAddress {
  /** e.g. `ws`, `tcp`, `udp`, `memory`. */
  protocol: string;
  host: string;
  port: number;
  /** What a client passes to `connect`, e.g. `ws://127.0.0.1:4000`. */
  url: string;
}

/** Events of a {@link ServerTransport}. */
export interface ServerTransportEvents {
  [event: string]: unknown[];
  /** A client connected; the connection is `open`. */
  connection: [connection: Connection];
  /** A non-fatal error (a rejected handshake, a malformed packet…). */
  error: [error: TickwireError];
}

/** The listening side of a transport. */
export interface ServerTransport extends Subscribable<ServerTransportEvents> {
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<TransportAddress>;
  /** The bound address, or null before `listen` resolves and after `close`. */
  address(): TransportAddress | null;
  /** The open connections. */
  readonly connections: ReadonlySet<Connection>;
  /**
   * Stops accepting, closes every connection (code GoingAway unless given), then resolves.
   * Idempotent: a second call resolves too. A connection leaves `connections` before its
   * `close` event reaches other listeners.
   */
  close(code?: number, reason?: string): Promise<void>;
}

/** Options of {@link ClientTransport.connect}. */
export interface ConnectOptions {
  /** Give up after this many ms (rejects with TIMEOUT). */
  timeoutMs?: number;
  /** Abort the attempt (rejects with CONNECT_FAILED). */
  signal?: AbortSignal;
}

/** The connecting side of a transport. */
export interface ClientTransport {
  /** Connects to `url`; resolves with an `open` connection, rejects with `TickwireError`. */
  connect(url: string, options?: ConnectOptions): Promise<Connection>;
}

/** Fresh zeroed stats, for transport implementations. */
export function createConnectionStats(): ConnectionStats {
  return {
    rttMs: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    packetsIn: 0,
    packetsOut: 0,
    packetsLost: 0,
    lossRate: 0,
    unreliableDropped: 0,
  };
}

/**
 * The checks every `Connection.send` makes, in one place so all transports word errors alike:
 * CONNECTION_CLOSED unless open, INVALID_ARGUMENT for a non-Uint8Array or unknown channel,
 * MESSAGE_TOO_LARGE over the limit.
 */
export function checkSend(
  connectionId: string,
  state: ConnectionState,
  data: Uint8Array,
  channel: Channel,
  maxMessageBytes: number,
): void {
  if (state !== 'open') {
    throw new TickwireError(
      ErrorCode.CONNECTION_CLOSED,
      `connection ${connectionId} is ${state}; cannot send`,
    );
  }
  if (!(data instanceof Uint8Array)) {
    throw new TickwireError(ErrorCode.INVALID_ARGUMENT, 'send() takes a Uint8Array');
  }
  if (channel !== 'reliable' && channel !== 'unreliable') {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `channel must be 'reliable' or 'unreliable', got ${String(channel)}`,
    );
  }
  if (data.byteLength > maxMessageBytes) {
    throw new TickwireError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `message of ${data.byteLength} bytes exceeds maxMessageBytes ${maxMessageBytes} on connection ${connectionId}`,
      { details: { size: data.byteLength, limit: maxMessageBytes } },
    );
  }
}
