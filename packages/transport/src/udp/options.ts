// Options of UDP connections shared by the server and the client, their defaults and validation.
import { ErrorCode, systemTime, TickwireError, type TimeSource } from '@tickwire/core';
import type { EndpointConfig } from './endpoint.js';
import { AEAD_TAG_BYTES, DEFAULT_PROTOCOL_ID } from './packet.js';

/** Limits and timers of every UDP connection (server and client). */
export interface UdpConnectionOptions {
  /**
   * Protocol id written in every packet header; packets with another one are dropped. Client and
   * server (and connect tokens) must agree.
   * @default 0x54575544 ('TWUD')
   */
  protocolId?: number;
  /**
   * Largest datagram sent, in bytes of UDP payload (headers and encryption included). Messages are
   * aggregated up to it and larger ones fragmented into it.
   * @default 1200
   */
  mtuBytes?: number;
  /**
   * Largest message in bytes, either channel. A bigger send throws MESSAGE_TOO_LARGE; a bigger
   * message from the peer closes the connection with CloseCode.MessageTooLarge.
   * @default 262144
   */
  maxMessageBytes?: number;
  /**
   * A reliable send that would take `bufferedAmount` above this many bytes closes the connection
   * with CloseCode.Backpressure (and returns false) instead of buffering without bound.
   * @default the larger of 8 MiB and 2 × maxMessageBytes
   */
  maxBufferedBytes?: number;
  /**
   * Unreliable sends are dropped (`send` returns false, `stats.unreliableDropped` counts them)
   * while `bufferedAmount` is above this many bytes.
   * @default 65536
   */
  unreliableDropThresholdBytes?: number;
  /**
   * The connection closes with CloseCode.Timeout when no packet arrived from the peer for this
   * many ms.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * A keep-alive packet (which also measures RTT) is sent when nothing asking for an ack was sent
   * for this many ms.
   * @default the smaller of 1000 and timeoutMs / 4
   */
  keepAliveIntervalMs?: number;
  /**
   * `close()` flushes queued reliable messages for at most this many ms before the DISCONNECT.
   * @default 5000
   */
  closeTimeoutMs?: number;
  /**
   * Cap of the paced send rate in bytes per second (congestion control stays below it); 0: no cap.
   * @default 0
   */
  maxSendBytesPerSec?: number;
  /**
   * Incomplete fragmented unreliable messages are dropped after this many ms.
   * @default 2000
   */
  fragmentTimeoutMs?: number;
  /**
   * Receive and send buffer size requested for the socket, in bytes (the OS may cap it, e.g.
   * Linux at net.core.rmem_max).
   * @default 4194304
   */
  socketBufferBytes?: number;
  /**
   * Clock and scheduler of every timer (retransmission, pacing, keep-alive, timeouts).
   * @default systemTime
   */
  time?: TimeSource;
}

/** {@link UdpConnectionOptions} with defaults applied and values checked. */
export interface ResolvedUdpOptions {
  protocolId: number;
  mtuBytes: number;
  maxMessageBytes: number;
  maxBufferedBytes: number;
  unreliableDropThresholdBytes: number;
  timeoutMs: number;
  keepAliveIntervalMs: number;
  closeTimeoutMs: number;
  maxSendBytesPerSec: number;
  fragmentTimeoutMs: number;
  socketBufferBytes: number;
  time: TimeSource;
}

/** Smallest mtuBytes: room for headers, encryption and a useful fragment. */
export const MIN_MTU_BYTES = 256;
/** Largest mtuBytes: a UDP datagram over IPv4. */
export const MAX_MTU_BYTES = 65_507;
const MAX_TIMER_MS = 2_147_483_647;

/** Checks that `value` is an integer in [min, max]; returns it. */
export function intOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `udp option ${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
  return value;
}

/** Applies defaults to `options` and checks every value (INVALID_ARGUMENT when out of range). */
export function resolveUdpOptions(options: UdpConnectionOptions): ResolvedUdpOptions {
  const maxMessageBytes = intOption(
    'maxMessageBytes',
    options.maxMessageBytes ?? 262_144,
    1,
    64 * 1_048_576,
  );
  const timeoutMs = intOption('timeoutMs', options.timeoutMs ?? 10_000, 10, MAX_TIMER_MS);
  const keepAliveIntervalMs = intOption(
    'keepAliveIntervalMs',
    options.keepAliveIntervalMs ?? Math.max(1, Math.min(1_000, Math.floor(timeoutMs / 4))),
    1,
    MAX_TIMER_MS,
  );
  if (keepAliveIntervalMs >= timeoutMs) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `udp option keepAliveIntervalMs (${keepAliveIntervalMs}) must be less than timeoutMs (${timeoutMs})`,
    );
  }
  const mtuBytes = intOption('mtuBytes', options.mtuBytes ?? 1200, MIN_MTU_BYTES, MAX_MTU_BYTES);
  // A message is at most 65535 fragments (u16 count) of the smallest fragment payload.
  const fragmentLimit = 0xffff * (mtuBytes - SEAL_OVERHEAD_BYTES - 18 - 9);
  if (maxMessageBytes > fragmentLimit) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `udp option maxMessageBytes (${maxMessageBytes}) is over ${fragmentLimit}, the most ${mtuBytes}-byte packets can fragment`,
    );
  }
  return {
    protocolId: intOption('protocolId', options.protocolId ?? DEFAULT_PROTOCOL_ID, 0, 0xffff_ffff),
    mtuBytes,
    maxMessageBytes,
    maxBufferedBytes: intOption(
      'maxBufferedBytes',
      options.maxBufferedBytes ?? Math.max(8 * 1_048_576, 2 * maxMessageBytes),
      maxMessageBytes,
      Number.MAX_SAFE_INTEGER,
    ),
    unreliableDropThresholdBytes: intOption(
      'unreliableDropThresholdBytes',
      options.unreliableDropThresholdBytes ?? 65_536,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    timeoutMs,
    keepAliveIntervalMs,
    closeTimeoutMs: intOption('closeTimeoutMs', options.closeTimeoutMs ?? 5_000, 1, MAX_TIMER_MS),
    maxSendBytesPerSec: intOption(
      'maxSendBytesPerSec',
      options.maxSendBytesPerSec ?? 0,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    fragmentTimeoutMs: intOption(
      'fragmentTimeoutMs',
      options.fragmentTimeoutMs ?? 2_000,
      1,
      MAX_TIMER_MS,
    ),
    socketBufferBytes: intOption(
      'socketBufferBytes',
      options.socketBufferBytes ?? 4 * 1_048_576,
      0,
      1 << 30,
    ),
    time: options.time ?? systemTime,
  };
}

/** Formats `host:port`, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Bytes encryption adds to a connected packet: the 8-byte nonce and the 16-byte tag. */
export const SEAL_OVERHEAD_BYTES = 8 + AEAD_TAG_BYTES;

/** The endpoint settings of one connection. */
export function endpointConfig(
  options: ResolvedUdpOptions,
  sessionId: number,
  encrypted: boolean,
  receiveMaxMessageBytes: number,
): EndpointConfig {
  return {
    protocolId: options.protocolId,
    sessionId,
    mtuBytes: options.mtuBytes,
    sealOverheadBytes: encrypted ? SEAL_OVERHEAD_BYTES : 0,
    maxMessageBytes: receiveMaxMessageBytes,
    timeoutMs: options.timeoutMs,
    keepAliveIntervalMs: options.keepAliveIntervalMs,
    closeTimeoutMs: options.closeTimeoutMs,
    ackDelayMs: 1,
    initialRtoMs: 250,
    minRtoMs: 50,
    maxRtoMs: Math.max(100, Math.min(2_000, options.timeoutMs / 2)),
    initialSendBytesPerSec: 2 * 1_048_576,
    minSendBytesPerSec: 65_536,
    maxSendBytesPerSec: options.maxSendBytesPerSec,
    fragmentTimeoutMs: options.fragmentTimeoutMs,
    unreliableDropThresholdBytes: options.unreliableDropThresholdBytes,
  };
}
