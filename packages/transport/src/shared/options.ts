// Options every stream connection (ws, browser ws, tcp) shares, and their validation.
import { ErrorCode, systemTime, TickwireError, type TimeSource } from '@tickwire/core';

/** Limits and timers of one connection, shared by the WebSocket and TCP adapters. */
export interface StreamConnectionOptions {
  /**
   * Largest message in bytes, both ways. A bigger send throws MESSAGE_TOO_LARGE; a bigger message
   * from the peer closes the connection with CloseCode.MessageTooLarge.
   * @default 1048576
   */
  maxMessageBytes?: number;
  /**
   * Unreliable sends are dropped (`send` returns false, `stats.unreliableDropped` counts them)
   * while `bufferedAmount` is above this many bytes.
   * @default 65536
   */
  unreliableDropThresholdBytes?: number;
  /**
   * A reliable send that would take `bufferedAmount` above this many bytes closes the connection
   * with CloseCode.Backpressure (and returns false) instead of buffering without bound.
   * @default the larger of 8 MiB and 2 × maxMessageBytes
   */
  maxBufferedBytes?: number;
  /**
   * A ping is sent every this many ms (it measures `stats.rttMs`); 0 disables heartbeats.
   * @default 5000
   */
  heartbeatIntervalMs?: number;
  /**
   * The connection closes with CloseCode.Timeout when nothing arrived from the peer for this
   * many ms (checked every heartbeatIntervalMs).
   * @default the larger of 15000 and 3 × heartbeatIntervalMs
   */
  heartbeatTimeoutMs?: number;
  /**
   * A close whose handshake the peer does not complete within this many ms is forced.
   * @default 5000
   */
  closeTimeoutMs?: number;
  /**
   * Clock and scheduler of heartbeats and timeouts.
   * @default systemTime
   */
  time?: TimeSource;
}

/** {@link StreamConnectionOptions} with defaults applied and values checked. */
export interface ResolvedStreamOptions {
  maxMessageBytes: number;
  unreliableDropThresholdBytes: number;
  maxBufferedBytes: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  closeTimeoutMs: number;
  time: TimeSource;
}

/** Largest maxMessageBytes: fits the u32 of Hello and leaves room for framing. */
const MAX_MESSAGE_BYTES_LIMIT = 0x7fff_0000;
const MAX_INT = 0x7fff_ffff;

/** Checks that `value` is an integer in [min, max] (INVALID_ARGUMENT otherwise); returns it. */
export function intOption(name: string, value: number, min = 0, max = MAX_INT): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `${name} must be an integer in [${min}, ${max}], got ${value}`,
    );
  }
  return value;
}

/** Applies defaults to `options` and checks every value (INVALID_ARGUMENT when out of range). */
export function resolveStreamOptions(options: StreamConnectionOptions): ResolvedStreamOptions {
  const read = (
    name: Exclude<keyof StreamConnectionOptions, 'time'>,
    fallback: number,
    min?: number,
    max?: number,
  ): number => intOption(name, options[name] ?? fallback, min, max);
  const maxMessageBytes = read('maxMessageBytes', 1_048_576, 1, MAX_MESSAGE_BYTES_LIMIT);
  const heartbeatIntervalMs = read('heartbeatIntervalMs', 5_000);
  return {
    maxMessageBytes,
    unreliableDropThresholdBytes: read('unreliableDropThresholdBytes', 65_536),
    maxBufferedBytes: read(
      'maxBufferedBytes',
      Math.max(8 * 1_048_576, 2 * maxMessageBytes),
      maxMessageBytes,
    ),
    heartbeatIntervalMs,
    // Must exceed the interval, or a healthy peer would time out between two pings.
    heartbeatTimeoutMs: read(
      'heartbeatTimeoutMs',
      Math.max(15_000, 3 * heartbeatIntervalMs),
      heartbeatIntervalMs + 1,
    ),
    closeTimeoutMs: read('closeTimeoutMs', 5_000, 1),
    time: options.time ?? systemTime,
  };
}

/** Formats `host:port`, bracketing IPv6 literals. */
export function hostPort(host: string | undefined, port: number | undefined): string {
  const name = host ?? 'unknown';
  return name.includes(':') ? `[${name}]:${port ?? 0}` : `${name}:${port ?? 0}`;
}

let nextId = 1;

/** A connection id unique in this process, e.g. `tcp-1f`. */
export function nextConnectionId(prefix: string): string {
  return `${prefix}-${(nextId++).toString(36)}`;
}

/** Where and how many: the listening options every stream server takes. */
export interface ListenOptions {
  /**
   * Interface to listen on.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Clients beyond this many open connections are refused with CloseCode.ServerFull.
   * @default 10000
   */
  maxConnections?: number;
  /**
   * A client that has not completed the handshake within this many ms is dropped (WebSocket on
   * its own HTTP server: a socket that has sent no upgrade request by then, or whose
   * `verifyUpgrade` has not decided).
   * @default 5000
   */
  handshakeTimeoutMs?: number;
  /**
   * Clients from one IP address still in the handshake (TCP: before their Hello; WebSocket:
   * while `verifyUpgrade` runs, and on its own HTTP server from the moment the socket connects)
   * beyond this many are refused with CloseCode.ServerFull; one over a limit that has sent no
   * request yet is dropped at once. Those in the handshake also count toward maxConnections.
   * @default maxConnections
   */
  maxHandshakesPerAddress?: number;
}

/** {@link ListenOptions} with defaults applied and ranges checked (INVALID_ARGUMENT). */
export function resolveListenOptions(options: ListenOptions): Required<ListenOptions> {
  const maxConnections = intOption('maxConnections', options.maxConnections ?? 10_000, 1);
  return {
    host: options.host ?? '127.0.0.1',
    port: intOption('port', options.port ?? 0, 0, 65_535),
    maxConnections,
    handshakeTimeoutMs: intOption('handshakeTimeoutMs', options.handshakeTimeoutMs ?? 5_000, 1),
    maxHandshakesPerAddress: intOption(
      'maxHandshakesPerAddress',
      options.maxHandshakesPerAddress ?? maxConnections,
      1,
    ),
  };
}

/** Counts clients per address (handshakes in progress); an address at zero is forgotten. */
export function countPerAddress(): {
  count(address: string): number;
  add(address: string): void;
  remove(address: string): void;
} {
  const counts = new Map<string, number>();
  return {
    count: (address) => counts.get(address) ?? 0,
    add: (address) => counts.set(address, (counts.get(address) ?? 0) + 1),
    remove(address) {
      const current = counts.get(address) ?? 0;
      if (current <= 1) counts.delete(address);
      else counts.set(address, current - 1);
    },
  };
}
