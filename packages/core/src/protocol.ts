import { ErrorCode, TickwireError } from './errors.js';
import { utf8Length } from './utf8.js';

/** Version of the wire protocol between `@tickwire/server` and `@tickwire/client`. */
export const PROTOCOL_VERSION = 2;

/** First byte of every engine frame: what the frame carries. */
export const Opcode = {
  /** client → server: protocol version, auth token, session to resume. */
  Hello: 0x01,
  /** server → client: session id, reconnect token, tick rate, server time. */
  Welcome: 0x02,
  /** Keep-alive and RTT probe, either way. */
  Ping: 0x03,
  Pong: 0x04,
  /** Time sync request / response (t0..t3 exchange). */
  TimeRequest: 0x05,
  TimeResponse: 0x06,
  /**
   * Several frames in one transport message, each with its channel (a client's snapshot ack
   * riding on its next input). Never nested, never holding handshake frames.
   */
  Batch: 0x07,
  /** A user message (registry id + payload). */
  Message: 0x10,
  /** A replication snapshot (delta against an acknowledged baseline). */
  Snapshot: 0x11,
  /** client → server: last snapshot applied. */
  SnapshotAck: 0x12,
  /** A remote procedure call, either way. */
  Rpc: 0x13,
  /** client → server: one tick of player input. */
  Input: 0x14,
  /** client → server: writes to fields the client owns (replication authority). */
  OwnerChanges: 0x15,
  /** server → client: authoritative values of owned fields (a rolled-back write, an override). */
  Correction: 0x16,
  /** Room membership and room-scoped messages. */
  JoinRoom: 0x20,
  LeaveRoom: 0x21,
  RoomJoined: 0x22,
  RoomLeft: 0x23,
  RoomMessage: 0x24,
  /** Lobby listing and live updates. */
  LobbyUpdate: 0x25,
  /** WebRTC / voice signalling (SDP, ICE). */
  Signal: 0x30,
  /** An error reply (code + message). */
  Error: 0x7e,
  /** Orderly goodbye with a close code. */
  Goodbye: 0x7f,
} as const;

/** One of the {@link Opcode} values. */
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Flags in the second header byte. */
export const FrameFlag = {
  /** The payload is deflate-compressed. */
  Compressed: 0x01,
  /** The frame expects an acknowledgement (request id follows the header). */
  Request: 0x02,
} as const;

/** Header layout: `[opcode u8][flags u8]`, then the payload. */
export const FRAME_HEADER_BYTES = 2;

/** Close codes: WebSocket's where they exist, Tickwire's in the 4000–4099 range. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  PolicyViolation: 1008,
  MessageTooLarge: 1009,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  /** The peer stopped answering (keep-alive timeout). */
  Timeout: 4000,
  /** Protocol versions of client and server differ. */
  VersionMismatch: 4001,
  /** Authentication failed or the token expired. */
  Unauthorized: 4002,
  /** The server is at its connection limit. */
  ServerFull: 4003,
  /** Removed by a moderator or the game. */
  Kicked: 4004,
  /** Banned (for a duration given in the reason). */
  Banned: 4005,
  /** Too many messages or bytes. */
  RateLimited: 4006,
  /** The same session connected elsewhere. */
  Replaced: 4007,
  /** The send buffer exceeded its limit. */
  Backpressure: 4008,
  /** Reconnection grace period over; the session is gone. */
  SessionExpired: 4009,
} as const;

/** One of the {@link CloseCode} values. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Largest close reason in UTF-8 bytes (the WebSocket limit, applied to every transport). */
export const MAX_CLOSE_REASON_BYTES = 123;

/** Throws INVALID_ARGUMENT unless `code` and `reason` are valid for `Connection.close`. */
export function checkCloseArgs(code: number, reason: string): void {
  const valid =
    Number.isInteger(code) &&
    ((code >= 1000 && code <= 1003) ||
      (code >= 1007 && code <= 1014) ||
      (code >= 3000 && code <= 4999));
  if (!valid) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `close code ${code} is not allowed: use 1000–1003, 1007–1014 or 3000–4999`,
    );
  }
  if (typeof reason !== 'string' || utf8Length(reason) > MAX_CLOSE_REASON_BYTES) {
    throw new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `close reason must be a string of at most ${MAX_CLOSE_REASON_BYTES} UTF-8 bytes`,
    );
  }
}
