// TCP frame layout and an incremental decoder.
//
//   frame := length:varint  kind:u8  body:length bytes
//
// `length` is the body length as an unsigned LEB128 varint (1–5 bytes: 1 below 128 B, 2 below
// 16 KiB, 3 below 2 MiB), so a small message costs 2 bytes of framing. `kind` is a FrameKind
// (0 reliable, 1 unreliable, 2 ping, 3 pong, 4 close, 5 hello; see ../shared/wire.ts).
//
// Until the peer's Hello, the only frames it may send are a Hello and a Close, neither larger than
// MAX_CONTROL_BODY_BYTES: a decoder created with `awaitHello` refuses any other frame from its
// header, so a peer that has not said Hello can make it hold at most that many bytes.
import { ErrorCode, TickwireError } from '@tickwire/core';
import { FrameKind, MAX_CONTROL_BODY_BYTES, MAX_FRAME_KIND } from '../shared/wire.js';

/** Longest header: a 5-byte varint and the kind byte. */
export const MAX_FRAME_HEADER_BYTES = 6;

/** Receives one frame: `length` body bytes of `source` from `offset`, never overwritten later. */
export type FrameHandler = (
  kind: number,
  source: Uint8Array,
  offset: number,
  length: number,
) => void;

/** Bytes the varint of `value` takes. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  return 5;
}

/** Writes `value` (0 ≤ value < 2^31) as a varint at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  let rest = value;
  let at = offset;
  while (rest >= 0x80) {
    target[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  target[at++] = rest;
  return at;
}

/** One complete frame as a new array (for control frames and tests; the hot path writes in place). */
export function encodeFrame(kind: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(varintSize(body.byteLength) + 1 + body.byteLength);
  const at = writeVarint(frame, 0, body.byteLength);
  frame[at] = kind;
  frame.set(body, at + 1);
  return frame;
}

/**
 * Splits a byte stream into frames. Frames inside one chunk are handed out as views of that chunk
 * (no copy); a frame split across chunks is assembled in one array of its exact size, the only
 * allocation. Throws TickwireError (PROTOCOL_ERROR, or MESSAGE_TOO_LARGE for a message body over
 * `maxMessageBytes`, detected from the header alone) and stays failed afterwards. With
 * `awaitHello`, every frame but a Hello or a Close is a PROTOCOL_ERROR (from its header) until
 * `helloReceived()`.
 */
export class FrameDecoder {
  private readonly maxMessageBytes: number;
  private readonly maxBodyBytes: number;
  private readonly onFrame: FrameHandler;
  private readonly header = new Uint8Array(MAX_FRAME_HEADER_BYTES);
  private headerLength = 0;
  private body: Uint8Array | null = null;
  private bodyKind = 0;
  private bodyFilled = 0;
  // Result of the last parseHeader call.
  private parsedLength = 0;
  private parsedKind = 0;
  private failed: TickwireError | null = null;
  private awaitingHello: boolean;

  constructor(maxMessageBytes: number, onFrame: FrameHandler, awaitHello = false) {
    this.maxMessageBytes = maxMessageBytes;
    this.maxBodyBytes = Math.max(maxMessageBytes, MAX_CONTROL_BODY_BYTES);
    this.onFrame = onFrame;
    this.awaitingHello = awaitHello;
  }

  /** The peer's Hello was read: frames of every kind and size are accepted from now on. */
  helloReceived(): void {
    this.awaitingHello = false;
  }

  /** Bytes of an incomplete frame held between chunks. */
  get pendingBytes(): number {
    return this.headerLength + this.bodyFilled;
  }

  /** Feeds the next chunk of the stream; calls the handler for every frame it completes. */
  push(chunk: Uint8Array): void {
    if (this.failed) throw this.failed;
    try {
      this.decode(chunk);
    } catch (error) {
      if (error instanceof TickwireError) this.failed = error;
      throw error;
    }
  }

  private decode(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = 0;
    if (this.body !== null) pos = this.fillBody(chunk);
    else if (this.headerLength > 0) pos = this.fillHeader(chunk);
    while (pos < end) {
      const used = this.parseHeader(chunk, pos, end);
      if (used === 0) {
        // Incomplete header: keep its bytes (at most MAX_FRAME_HEADER_BYTES - 1).
        this.header.set(chunk.subarray(pos, end));
        this.headerLength = end - pos;
        return;
      }
      pos += used;
      pos = this.startBody(chunk, pos, end);
    }
  }

  /** The body of the frame whose header was just parsed starts at `pos` of `chunk`. */
  private startBody(chunk: Uint8Array, pos: number, end: number): number {
    const length = this.parsedLength;
    if (end - pos >= length) {
      this.onFrame(this.parsedKind, chunk, pos, length);
      return pos + length;
    }
    const body = new Uint8Array(length);
    body.set(chunk.subarray(pos, end));
    this.body = body;
    this.bodyKind = this.parsedKind;
    this.bodyFilled = end - pos;
    return end;
  }

  private fillHeader(chunk: Uint8Array): number {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      this.header[this.headerLength++] = chunk[pos++]!;
      if (this.parseHeader(this.header, 0, this.headerLength) > 0) {
        this.headerLength = 0;
        return this.startBody(chunk, pos, end);
      }
    }
    return pos;
  }

  private fillBody(chunk: Uint8Array): number {
    const body = this.body!;
    const take = Math.min(body.length - this.bodyFilled, chunk.length);
    body.set(take === chunk.length ? chunk : chunk.subarray(0, take), this.bodyFilled);
    this.bodyFilled += take;
    if (this.bodyFilled === body.length) {
      this.body = null;
      this.bodyFilled = 0;
      this.onFrame(this.bodyKind, body, 0, body.length);
    }
    return take;
  }

  /**
   * Parses a header at `pos`; returns its size, or 0 if `source` ends first. Sets
   * `parsedLength` / `parsedKind`; throws on a bad varint, a bad kind or an oversize length.
   */
  private parseHeader(source: Uint8Array, pos: number, end: number): number {
    let at = pos;
    let byte = source[at++]!;
    let length = byte & 0x7f;
    if (byte >= 0x80) {
      let scale = 0x80;
      for (;;) {
        if (at >= end) return 0;
        byte = source[at++]!;
        length += (byte & 0x7f) * scale;
        if (byte < 0x80) break;
        if (at - pos >= 5) {
          throw new TickwireError(
            ErrorCode.PROTOCOL_ERROR,
            'frame length varint longer than 5 bytes',
          );
        }
        scale *= 0x80;
      }
    }
    if (this.awaitingHello && length > MAX_CONTROL_BODY_BYTES) {
      throw new TickwireError(
        ErrorCode.PROTOCOL_ERROR,
        `frame with a ${length}-byte body before hello (at most ${MAX_CONTROL_BODY_BYTES})`,
      );
    }
    if (length > this.maxBodyBytes) throw this.tooLarge(length);
    if (at >= end) return 0;
    const kind = source[at++]!;
    if (kind > MAX_FRAME_KIND) {
      throw new TickwireError(ErrorCode.PROTOCOL_ERROR, `unknown frame kind ${kind}`, {
        details: { kind },
      });
    }
    if (this.awaitingHello && kind !== FrameKind.Hello && kind !== FrameKind.Close) {
      throw new TickwireError(ErrorCode.PROTOCOL_ERROR, `frame of kind ${kind} before hello`, {
        details: { kind },
      });
    }
    if (kind <= FrameKind.Unreliable) {
      if (length > this.maxMessageBytes) throw this.tooLarge(length);
    } else if (length > MAX_CONTROL_BODY_BYTES) {
      throw new TickwireError(
        ErrorCode.PROTOCOL_ERROR,
        `control frame of kind ${kind} with a ${length}-byte body (at most ${MAX_CONTROL_BODY_BYTES})`,
      );
    }
    this.parsedLength = length;
    this.parsedKind = kind;
    return at - pos;
  }

  private tooLarge(length: number): TickwireError {
    return new TickwireError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `frame of ${length} bytes exceeds maxMessageBytes ${this.maxMessageBytes}`,
      { details: { size: length, limit: this.maxMessageBytes } },
    );
  }
}
