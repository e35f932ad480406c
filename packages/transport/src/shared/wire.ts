// Wire constants shared by the WebSocket, browser and TCP adapters. Browser-safe: no Node APIs.
import { CloseCode, checkCloseArgs, ErrorCode, TickwireError } from '@tickwire/core';

/**
 * The kind byte that starts every WebSocket message and follows the length of every TCP frame.
 * Values 0 and 1 are the user's channels; the rest are transport control messages.
 */
export const FrameKind = {
  /** A message sent on the `reliable` channel. */
  Reliable: 0,
  /** A message sent on the `unreliable` channel. */
  Unreliable: 1,
  /** Keep-alive and RTT probe; body: the sender's clock as f64 big-endian ms. */
  Ping: 2,
  /** Answer to a ping; body: the ping's body, echoed. */
  Pong: 3,
  /** Orderly close; body: code u16 big-endian, then the UTF-8 reason (at most 123 bytes). */
  Close: 4,
  /** Handshake; body: wire version u8, then the sender's maxMessageBytes u32 big-endian. */
  Hello: 5,
} as const;

/** Highest valid kind byte. */
export const MAX_FRAME_KIND = 5;

/** Version of this wire layout, carried in Hello. */
export const WIRE_VERSION = 1;

/** Body size of a Hello. */
export const HELLO_BODY_BYTES = 5;

/** Body size of a Ping or Pong. */
export const PING_BODY_BYTES = 8;

/** Largest body of a control frame: a Close with a 2-byte code and the longest reason (123). */
export const MAX_CONTROL_BODY_BYTES = 125;

/** Reported when the link died without a close handshake (WebSocket's 1006). */
export const ABNORMAL_CLOSE_CODE = 1006;

/** WebSocket's "closed without a status code" (1005), reported as Normal. */
export const NO_STATUS_CLOSE_CODE = 1005;

/** Writes a Hello body at `offset` of `target`. */
export function writeHelloBody(target: Uint8Array, offset: number, maxMessageBytes: number): void {
  target[offset] = WIRE_VERSION;
  new DataView(target.buffer, target.byteOffset + offset + 1, 4).setUint32(0, maxMessageBytes);
}

/** Reads a Hello body; returns the peer's maxMessageBytes, throws PROTOCOL_ERROR when malformed. */
export function readHelloBody(source: Uint8Array, offset: number, length: number): number {
  const version = source[offset];
  if (length === HELLO_BODY_BYTES && version !== WIRE_VERSION) {
    throw new TickwireError(
      ErrorCode.PROTOCOL_ERROR,
      `peer speaks wire version ${version}, not ${WIRE_VERSION}`,
      { details: { closeCode: CloseCode.VersionMismatch } },
    );
  }
  const maxMessageBytes =
    length === HELLO_BODY_BYTES
      ? new DataView(source.buffer, source.byteOffset + offset + 1, 4).getUint32(0)
      : 0;
  if (maxMessageBytes === 0) throw new TickwireError(ErrorCode.PROTOCOL_ERROR, 'malformed hello');
  return maxMessageBytes;
}

/** Encodes a Close body: code u16 BE + UTF-8 reason (already checked by `checkCloseArgs`). */
export function encodeCloseBody(code: number, reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason);
  const body = new Uint8Array(2 + text.length);
  body[0] = code >>> 8;
  body[1] = code & 0xff;
  body.set(text, 2);
  return body;
}

/** Decodes a Close body; throws PROTOCOL_ERROR when malformed. */
export function decodeCloseBody(
  source: Uint8Array,
  offset: number,
  length: number,
): { code: number; reason: string } {
  if (length < 2 || length > MAX_CONTROL_BODY_BYTES) {
    throw new TickwireError(ErrorCode.PROTOCOL_ERROR, `close frame body of ${length} bytes`);
  }
  const code = ((source[offset] ?? 0) << 8) | (source[offset + 1] ?? 0);
  // Only codes a peer may send (checkCloseArgs): never 1005, 1006 or 1015, which report local states.
  try {
    checkCloseArgs(code, '');
  } catch {
    throw new TickwireError(ErrorCode.PROTOCOL_ERROR, `close frame with invalid code ${code}`);
  }
  const reason = new TextDecoder().decode(source.subarray(offset + 2, offset + length));
  return { code, reason };
}

/** Maps a close code reported by a WebSocket to the one users see. */
export function reportedCloseCode(code: number): number {
  return code === NO_STATUS_CLOSE_CODE ? CloseCode.Normal : code;
}
