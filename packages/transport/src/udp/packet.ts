// Wire format of every UDP packet: a common header, the handshake packets, the connected-packet
// header (session, sequence, ack, ack bits) and the messages aggregated in a DATA packet.
import { ErrorCode, TickwireError } from '@tickwire/core';

/** Version of the UDP wire format, in every packet header. */
export const UDP_WIRE_VERSION = 1;

/** Default protocol id (`'TWUD'`), in every packet header; packets with another one are dropped. */
export const DEFAULT_PROTOCOL_ID = 0x54575544;

/** Kinds of packet (header byte 5). */
export const PacketType = {
  /** client → server: salt, optional connect token, padding. */
  Request: 1,
  /** server → client: salt echo and the stateless cookie. */
  Challenge: 2,
  /** client → server: salt, the cookie echoed, optional connect token. */
  Response: 3,
  /** server → client: the connection exists (session id, limits). */
  Accepted: 4,
  /** server → client: refused (reason byte). */
  Denied: 5,
  /** Messages, piggybacked acks; asks for an ack. */
  Data: 16,
  /** Acks only; asks for no ack. */
  Ack: 17,
  /** No messages; asks for an ack (keeps the connection alive and measures RTT). */
  KeepAlive: 18,
  /** Close code and reason; sent a few times. */
  Disconnect: 19,
} as const;

/** One of the {@link PacketType} values. */
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** Why the server refused a handshake (byte of a DENIED packet). */
export const DenyReason = {
  /** At `maxConnections`. */
  ServerFull: 1,
  /** The connect token is missing, malformed, tampered or for another protocol. */
  InvalidToken: 2,
  /** The connect token expired. */
  ExpiredToken: 3,
  /** The connect token was already used. */
  ReplayedToken: 4,
} as const;

/** One of the {@link DenyReason} values. */
export type DenyReason = (typeof DenyReason)[keyof typeof DenyReason];

/** `[protocolId u32][version u8][type u8]`. */
export const HEADER_BYTES = 6;
/** Random client salt echoed in every handshake packet: the client's proof of its own attempt. */
export const SALT_BYTES = 8;
/** HMAC-SHA256 cookie of a CHALLENGE. */
export const COOKIE_BYTES = 32;
/** CHALLENGE: header, salt, cookie. */
export const CHALLENGE_BYTES = HEADER_BYTES + SALT_BYTES + COOKIE_BYTES;
/** DENIED: header, salt, reason. */
export const DENIED_BYTES = HEADER_BYTES + SALT_BYTES + 1;
/** Bytes of the ACCEPTED body: salt, session id, max message bytes. */
export const ACCEPTED_BODY_BYTES = SALT_BYTES + 4 + 4;
/** AEAD tag length (chacha20-poly1305). */
export const AEAD_TAG_BYTES = 16;
/** Largest server reply before the client proved its address (a sealed ACCEPTED). */
export const MAX_HANDSHAKE_REPLY_BYTES = HEADER_BYTES + ACCEPTED_BODY_BYTES + AEAD_TAG_BYTES;
/** A REQUEST is padded to this size, so no reply is ever larger than the request. */
export const REQUEST_MIN_BYTES = 128;
/** Largest connect token a REQUEST may carry. */
export const MAX_TOKEN_BYTES = 1024;

/** Offset of the session id in connected packets. */
export const SESSION_OFFSET = 6;
/** Offset of `[sequence u16][ack u16][ackBits u32]` in a plain connected packet. */
export const PLAIN_SEQUENCE_OFFSET = 10;
/** Offset of the 64-bit nonce in an encrypted connected packet. */
export const NONCE_OFFSET = 10;
/** Bytes of `[sequence][ack][ackBits]`. */
export const ACK_FIELDS_BYTES = 8;
/** Header of a plain connected packet. */
export const PLAIN_HEADER_BYTES = PLAIN_SEQUENCE_OFFSET + ACK_FIELDS_BYTES;
/** Cleartext header (the AAD) of an encrypted connected packet: common header, session, nonce. */
export const SEALED_HEADER_BYTES = NONCE_OFFSET + 8;

/** Message flags: channel in bits 0–1. */
export const CHANNEL_MASK = 0x03;
/** Message flags: the message is one fragment of a larger one. */
export const FRAGMENT_FLAG = 0x04;

/** Wire channel numbers. */
export const WireChannel = {
  ReliableOrdered: 0,
  ReliableUnordered: 1,
  UnreliableSequenced: 2,
  Unreliable: 3,
} as const;

/** One of the {@link WireChannel} values. */
export type WireChannel = (typeof WireChannel)[keyof typeof WireChannel];

/** Bytes of a message header: flags, id (not on an unfragmented unreliable one), fragment, length. */
export function messageHeaderBytes(channel: number, fragmented: boolean): number {
  if (fragmented) return 1 + 2 + 4 + 2;
  return channel === WireChannel.Unreliable ? 3 : 5;
}

/** A TickwireError DECODE_FAILED with the drop `reason` in its details. */
export function decodeError(reason: string, message: string): TickwireError {
  return new TickwireError(ErrorCode.DECODE_FAILED, `udp packet: ${message}`, {
    details: { reason },
  });
}

/** Reads a big-endian u16. */
export function readU16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

/** Reads a big-endian u32. */
export function readU32(bytes: Uint8Array, offset: number): number {
  return (
    bytes[offset]! * 0x100_0000 +
    ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!)
  );
}

/** Writes a big-endian u16. */
export function writeU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 8;
  bytes[offset + 1] = value;
}

/** Writes a big-endian u32. */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

/** Writes a 53-bit unsigned integer as a big-endian u64. */
export function writeU64(bytes: Uint8Array, offset: number, value: number): void {
  writeU32(bytes, offset, Math.floor(value / 0x1_0000_0000));
  writeU32(bytes, offset + 4, value >>> 0);
}

/** Reads a big-endian u64 as a number; values above 2^53 lose precision (callers bound them). */
export function readU64(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset) * 0x1_0000_0000 + readU32(bytes, offset + 4);
}

/** Writes the common header. */
export function writeHeader(bytes: Uint8Array, protocolId: number, type: PacketType): void {
  writeU32(bytes, 0, protocolId);
  bytes[4] = UDP_WIRE_VERSION;
  bytes[5] = type;
}

const KNOWN_TYPES = new Set<number>(Object.values(PacketType));

/**
 * Checks the common header of `bytes` and returns the packet type. Throws DECODE_FAILED with
 * reason `short`, `protocol`, `version` or `type`.
 */
export function readPacketType(bytes: Uint8Array, protocolId: number): PacketType {
  if (bytes.length < HEADER_BYTES) throw decodeError('short', `${bytes.length} bytes is too short`);
  if (readU32(bytes, 0) !== protocolId) throw decodeError('protocol', 'wrong protocol id');
  if (bytes[4] !== UDP_WIRE_VERSION) {
    throw decodeError('version', `wire version ${bytes[4]} is not ${UDP_WIRE_VERSION}`);
  }
  const type = bytes[5]!;
  if (!KNOWN_TYPES.has(type)) throw decodeError('type', `unknown packet type ${type}`);
  return type as PacketType;
}

/** Writes one message header at `offset`; returns the offset of its payload. */
export function writeMessageHeader(
  bytes: Uint8Array,
  offset: number,
  channel: number,
  id: number,
  fragmentIndex: number,
  fragmentCount: number,
  length: number,
): number {
  let at = offset;
  const fragmented = fragmentCount > 0;
  bytes[at++] = channel | (fragmented ? FRAGMENT_FLAG : 0);
  if (fragmented || channel !== WireChannel.Unreliable) {
    writeU16(bytes, at, id);
    at += 2;
  }
  if (fragmented) {
    writeU16(bytes, at, fragmentIndex);
    writeU16(bytes, at + 2, fragmentCount);
    at += 4;
  }
  writeU16(bytes, at, length);
  return at + 2;
}

/** Iterates the messages of a DATA packet body without allocating; throws DECODE_FAILED. */
export class MessageReader {
  /** Channel of the current message (a {@link WireChannel}). */
  channel = 0;
  /** Message id (reliable), sequence (unreliable-sequenced) or fragment group (unreliable). */
  id = 0;
  /** Fragment index, and count (0 when not fragmented). */
  fragmentIndex = 0;
  fragmentCount = 0;
  /** Where the current message's bytes are in the packet. */
  offset = 0;
  length = 0;
  #bytes: Uint8Array = new Uint8Array(0);
  #at = 0;
  #end = 0;

  /** Starts reading messages in `bytes[start, end)`. */
  reset(bytes: Uint8Array, start: number, end: number): void {
    this.#bytes = bytes;
    this.#at = start;
    this.#end = end;
  }

  /** Moves to the next message; false at the end of the packet. */
  next(): boolean {
    const bytes = this.#bytes;
    let at = this.#at;
    const end = this.#end;
    if (at >= end) return false;
    const flags = bytes[at++]!;
    if ((flags & ~(CHANNEL_MASK | FRAGMENT_FLAG)) !== 0) {
      throw decodeError('malformed', `bad message flags 0x${flags.toString(16)}`);
    }
    const channel = flags & CHANNEL_MASK;
    const fragmented = (flags & FRAGMENT_FLAG) !== 0;
    const headerRest = messageHeaderBytes(channel, fragmented) - 1;
    if (end - at < headerRest) throw decodeError('malformed', 'truncated message header');
    let id = 0;
    if (fragmented || channel !== WireChannel.Unreliable) {
      id = readU16(bytes, at);
      at += 2;
    }
    let fragmentIndex = 0;
    let fragmentCount = 0;
    if (fragmented) {
      fragmentIndex = readU16(bytes, at);
      fragmentCount = readU16(bytes, at + 2);
      at += 4;
      if (fragmentCount < 2 || fragmentIndex >= fragmentCount) {
        throw decodeError('malformed', `fragment ${fragmentIndex} of ${fragmentCount}`);
      }
    }
    const length = readU16(bytes, at);
    at += 2;
    if (length > end - at) throw decodeError('malformed', 'message longer than the packet');
    this.channel = channel;
    this.id = id;
    this.fragmentIndex = fragmentIndex;
    this.fragmentCount = fragmentCount;
    this.offset = at;
    this.length = length;
    this.#at = at + length;
    return true;
  }
}

/** A decoded message (see {@link decodePacket}). */
export interface DecodedMessage {
  channel: WireChannel;
  id: number;
  fragmentIndex: number;
  fragmentCount: number;
  data: Uint8Array;
}

/** A fully decoded packet, for tests and tools (the connection code reads packets in place). */
export type DecodedPacket =
  | { type: typeof PacketType.Request; salt: Uint8Array; token: Uint8Array }
  | { type: typeof PacketType.Challenge; salt: Uint8Array; cookie: Uint8Array }
  | { type: typeof PacketType.Response; salt: Uint8Array; cookie: Uint8Array; token: Uint8Array }
  | { type: typeof PacketType.Accepted; body: Uint8Array }
  | { type: typeof PacketType.Denied; salt: Uint8Array; reason: number }
  | {
      type:
        | typeof PacketType.Data
        | typeof PacketType.Ack
        | typeof PacketType.KeepAlive
        | typeof PacketType.Disconnect;
      sessionId: number;
      sequence: number;
      ack: number;
      ackBits: number;
      messages: DecodedMessage[];
      close: { code: number; reason: string } | null;
    };

/** Reads the token of a REQUEST or RESPONSE at `offset`; throws DECODE_FAILED. */
export function readToken(bytes: Uint8Array, offset: number): Uint8Array {
  if (bytes.length < offset + 2) throw decodeError('short', 'truncated token length');
  const length = readU16(bytes, offset);
  if (length > MAX_TOKEN_BYTES) throw decodeError('malformed', `token of ${length} bytes`);
  if (bytes.length < offset + 2 + length) throw decodeError('short', 'truncated token');
  return bytes.subarray(offset + 2, offset + 2 + length);
}

/** Reads the body of a DISCONNECT at `offset`; throws DECODE_FAILED. */
export function readDisconnect(
  bytes: Uint8Array,
  offset: number,
  end: number,
): { code: number; reason: string } {
  if (end - offset < 3) throw decodeError('malformed', 'truncated disconnect');
  const code = readU16(bytes, offset);
  const length = bytes[offset + 2]!;
  if (end - offset - 3 < length) throw decodeError('malformed', 'truncated disconnect reason');
  const valid =
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
  if (!valid) throw decodeError('malformed', `close code ${code}`);
  const reason = textDecoder.decode(bytes.subarray(offset + 3, offset + 3 + length));
  return { code, reason };
}

const textDecoder = new TextDecoder();

/**
 * Decodes any packet of protocol `protocolId` (plain connected packets only; an encrypted one
 * decodes as its cleartext header would). Returns the packet or throws DECODE_FAILED: nothing else.
 */
export function decodePacket(bytes: Uint8Array, protocolId = DEFAULT_PROTOCOL_ID): DecodedPacket {
  const type = readPacketType(bytes, protocolId);
  const salt = (): Uint8Array => {
    if (bytes.length < HEADER_BYTES + SALT_BYTES) throw decodeError('short', 'truncated salt');
    return bytes.subarray(HEADER_BYTES, HEADER_BYTES + SALT_BYTES);
  };
  switch (type) {
    case PacketType.Request: {
      if (bytes.length < REQUEST_MIN_BYTES) throw decodeError('short', 'request not padded');
      return { type, salt: salt(), token: readToken(bytes, HEADER_BYTES + SALT_BYTES) };
    }
    case PacketType.Challenge: {
      if (bytes.length !== CHALLENGE_BYTES) throw decodeError('malformed', 'challenge size');
      return { type, salt: salt(), cookie: bytes.subarray(HEADER_BYTES + SALT_BYTES) };
    }
    case PacketType.Response: {
      const cookieAt = HEADER_BYTES + SALT_BYTES;
      if (bytes.length < cookieAt + COOKIE_BYTES) throw decodeError('short', 'truncated cookie');
      return {
        type,
        salt: salt(),
        cookie: bytes.subarray(cookieAt, cookieAt + COOKIE_BYTES),
        token: readToken(bytes, cookieAt + COOKIE_BYTES),
      };
    }
    case PacketType.Accepted: {
      if (bytes.length < HEADER_BYTES + ACCEPTED_BODY_BYTES) {
        throw decodeError('short', 'truncated accept');
      }
      return { type, body: bytes.subarray(HEADER_BYTES) };
    }
    case PacketType.Denied: {
      if (bytes.length !== DENIED_BYTES) throw decodeError('malformed', 'denied size');
      return { type, salt: salt(), reason: bytes[DENIED_BYTES - 1]! };
    }
    default: {
      if (bytes.length < PLAIN_HEADER_BYTES) throw decodeError('short', 'truncated header');
      const packet = {
        type,
        sessionId: readU32(bytes, SESSION_OFFSET),
        sequence: readU16(bytes, PLAIN_SEQUENCE_OFFSET),
        ack: readU16(bytes, PLAIN_SEQUENCE_OFFSET + 2),
        ackBits: readU32(bytes, PLAIN_SEQUENCE_OFFSET + 4),
        messages: [] as DecodedMessage[],
        close: null as { code: number; reason: string } | null,
      };
      if (type === PacketType.Disconnect) {
        packet.close = readDisconnect(bytes, PLAIN_HEADER_BYTES, bytes.length);
      } else if (type === PacketType.Data) {
        const reader = new MessageReader();
        reader.reset(bytes, PLAIN_HEADER_BYTES, bytes.length);
        while (reader.next()) {
          packet.messages.push({
            channel: reader.channel as WireChannel,
            id: reader.id,
            fragmentIndex: reader.fragmentIndex,
            fragmentCount: reader.fragmentCount,
            data: bytes.subarray(reader.offset, reader.offset + reader.length),
          });
        }
      } else if (bytes.length !== PLAIN_HEADER_BYTES) {
        throw decodeError('malformed', 'trailing bytes after an ack or keep-alive');
      }
      return packet;
    }
  }
}
