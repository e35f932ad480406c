// Payloads of the engine's own frames (handshake, rooms, errors) and one encode/decode pair per
// frame. Every frame is `[opcode u8][flags u8][payload]`; free-form values (auth, options,
// metadata, user data) travel as UTF-8 JSON: they are small and rare, and JSON keeps a msgpack
// implementation out of browser bundles.
import {
  ErrorCode,
  FRAME_HEADER_BYTES,
  isTickwireError,
  Opcode,
  TickwireError,
  utf8Length,
} from '@tickwire/core';
import { BinaryReader, BinaryWriter } from '@tickwire/serialization';

/** How a JoinRoom request picks its room. */
export const JoinMode = {
  /** Join an existing room of that name with a free seat. */
  Join: 0,
  /** Create a new room of that name. */
  Create: 1,
  /** Join a room of that name with a free seat, or create one. */
  JoinOrCreate: 2,
  /** Join the room with that id. */
  JoinById: 3,
} as const;

/** One of the {@link JoinMode} values. */
export type JoinMode = (typeof JoinMode)[keyof typeof JoinMode];

/** Longest string fields in UTF-8 bytes, enforced on both encode and decode. */
export const FrameLimits = {
  token: 2048,
  id: 128,
  reason: 123,
  code: 64,
  message: 1024,
  /** JSON values: auth, options, metadata, user data. */
  value: 16_384,
} as const;

/** client → server, the first frame on a connection. */
export interface HelloFrame {
  /** The client's `PROTOCOL_VERSION`. */
  version: number;
  /** Reconnect token of the session to resume; '' opens a new session. */
  token: string;
  /** Reliable frames the client received in the session it resumes (0 for a new one). */
  received: number;
  /** Anything the server's auth hook reads (JSON); undefined when absent. */
  auth: unknown;
}

/** How a Welcome continues the client's session, see {@link WelcomeFrame.resume}. */
export type ResumeKind = 'new' | 'resumed' | 'restored';

const RESUME_KINDS: readonly ResumeKind[] = ['new', 'resumed', 'restored'];

/** server → client, the answer to a valid Hello. */
export interface WelcomeFrame {
  version: number;
  sessionId: string;
  /** Reconnect token; a new one at every welcome (the previous one stops working). */
  token: string;
  /** Reliable frames the server received in this session. */
  received: number;
  /**
   * `new`: a new session. `resumed`: the session and its link continue (frames past `received`
   * follow). `restored`: the session was read back from the store by a process that does not
   * hold its link (the server restarted): the client starts a new link and is in no room.
   */
  resume: ResumeKind;
  tickRateHz: number;
  /** How long the server keeps the session after the connection drops. */
  graceMs: number;
  /** What the auth hook returned for the client (JSON). */
  userData: unknown;
}

/** client → server: enter a room. */
export interface JoinRoomFrame {
  /** Echoed in the answer (RoomJoined or Error). */
  requestId: number;
  mode: JoinMode;
  /** A room name, or a room id for `JoinMode.JoinById`. */
  target: string;
  options: unknown;
}

/** server → client: the client is now in a room. */
export interface RoomJoinedFrame {
  requestId: number;
  roomId: string;
  name: string;
  metadata: unknown;
}

/** server → client: the client is no longer in its room. */
export interface RoomLeftFrame {
  roomId: string;
  /** 1000 when the client left, 4004 when kicked, 1001 when the room closed. */
  code: number;
  reason: string;
}

/** server → client: a request failed or a message was refused. */
export interface ErrorFrame {
  /** The request it answers, 0 when it answers none. */
  requestId: number;
  code: string;
  message: string;
}

/** Either way: an orderly goodbye; the sender closes the connection after it. */
export interface GoodbyeFrame {
  code: number;
  reason: string;
}

const textDecoder = /* @__PURE__ */ new TextDecoder('utf-8', { fatal: true });
const writer = /* @__PURE__ */ new BinaryWriter({ initialBytes: 256 });
const reader = /* @__PURE__ */ new BinaryReader();

function start(opcode: number): BinaryWriter {
  writer.reset();
  writer.writeBits(opcode, 8);
  writer.writeBits(0, 8);
  return writer;
}

function invalid(message: string, cause?: unknown): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message, { cause });
}

function writeString(
  w: BinaryWriter,
  name: string,
  text: string,
  limit: number,
  unit = 'UTF-8 bytes',
): void {
  if (typeof text !== 'string') throw invalid(`${name} must be a string`);
  const length = utf8Length(text);
  if (length > limit) throw invalid(`${name} is ${length} ${unit}; the limit is ${limit}`);
  w.writeVarUint(length);
  w.writeUtf8(text, length);
}

function writeCount(w: BinaryWriter, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw invalid(`${name} must be a non-negative integer, got ${value}`);
  w.writeVarUint(value);
}

function writeValue(w: BinaryWriter, name: string, value: unknown): void {
  let json: string | undefined;
  let cause: unknown;
  try {
    json = value === undefined ? '' : JSON.stringify(value);
  } catch (error) {
    cause = error;
  }
  if (json === undefined) throw invalid(`${name} cannot be encoded as JSON`, cause);
  // JSON.stringify escapes lone surrogates: the UTF-8 length is exact.
  writeString(w, name, json, FrameLimits.value, 'bytes as JSON');
}

/** The length of a string or value, at most `limit` bytes. */
function readLength(r: BinaryReader, limit: number, what: string): number {
  const length = r.readVarUint();
  if (length > limit) throw new Error(`${what} of ${length} bytes over the limit of ${limit}`);
  return length;
}

function readString(r: BinaryReader, limit: number): string {
  return r.readUtf8(readLength(r, limit, 'string'));
}

function readValue(r: BinaryReader): unknown {
  const length = readLength(r, FrameLimits.value, 'value');
  return length === 0 ? undefined : JSON.parse(textDecoder.decode(r.readBytes(length)));
}

const OPCODE_NAMES = /* @__PURE__ */ new Map<number, string>(
  Object.entries(Opcode).map(([name, value]) => [value, name]),
);

/** The name of an opcode (`Hello`), or its hex value when it is no engine opcode. */
export function opcodeName(opcode: number): string {
  return OPCODE_NAMES.get(opcode) ?? `0x${opcode.toString(16).padStart(2, '0')}`;
}

function decode<T>(frame: Uint8Array, opcode: number, read: (r: BinaryReader) => T): T {
  const name = opcodeName(opcode);
  if (!(frame instanceof Uint8Array) || frame.byteLength < FRAME_HEADER_BYTES)
    throw new TickwireError(ErrorCode.DECODE_FAILED, `${name} frame shorter than its header`);
  if (frame[0] !== opcode)
    throw new TickwireError(
      ErrorCode.PROTOCOL_ERROR,
      `expected a ${name} frame, got ${opcodeName(frame[0]!)}`,
    );
  try {
    reader.reset(frame.subarray(FRAME_HEADER_BYTES));
    const value = read(reader);
    reader.end();
    return value;
  } catch (error) {
    // The reader throws codec errors that carry a `reason` and are no `Error`s.
    const why =
      error instanceof Error
        ? error.message
        : String((error as { reason?: unknown }).reason ?? error);
    throw new TickwireError(ErrorCode.DECODE_FAILED, `malformed ${name} frame: ${why}`, {
      cause: error,
      details: { opcode },
    });
  }
}

export function encodeHello(hello: HelloFrame): Uint8Array {
  const w = start(Opcode.Hello);
  writeCount(w, 'version', hello.version);
  writeString(w, 'token', hello.token, FrameLimits.token);
  writeCount(w, 'received', hello.received);
  writeValue(w, 'auth', hello.auth);
  return w.toBytes();
}

/**
 * Reads only the protocol version of a Hello frame, so that a client speaking another version
 * gets a clear VersionMismatch even when the rest of its Hello has another layout.
 */
export function peekHelloVersion(frame: Uint8Array): number {
  return decode(frame, Opcode.Hello, (r) => {
    const version = r.readVarUint();
    r.readRest();
    return version;
  });
}

export function decodeHello(frame: Uint8Array): HelloFrame {
  return decode(frame, Opcode.Hello, (r) => ({
    version: r.readVarUint(),
    token: readString(r, FrameLimits.token),
    received: r.readVarUint(),
    auth: readValue(r),
  }));
}

export function encodeWelcome(welcome: WelcomeFrame): Uint8Array {
  const w = start(Opcode.Welcome);
  writeCount(w, 'version', welcome.version);
  writeString(w, 'sessionId', welcome.sessionId, FrameLimits.id);
  writeString(w, 'token', welcome.token, FrameLimits.token);
  writeCount(w, 'received', welcome.received);
  const kind = RESUME_KINDS.indexOf(welcome.resume);
  if (kind < 0) throw invalid(`resume must be one of ${RESUME_KINDS.join(', ')}`);
  w.writeBits(kind, 8);
  writeCount(w, 'tickRateHz', welcome.tickRateHz);
  writeCount(w, 'graceMs', welcome.graceMs);
  writeValue(w, 'userData', welcome.userData);
  return w.toBytes();
}

export function decodeWelcome(frame: Uint8Array): WelcomeFrame {
  return decode(frame, Opcode.Welcome, (r) => {
    const version = r.readVarUint();
    const sessionId = readString(r, FrameLimits.id);
    const token = readString(r, FrameLimits.token);
    const received = r.readVarUint();
    const resume = RESUME_KINDS[r.readBits(8)];
    if (resume === undefined) throw new Error('unknown resume kind');
    return {
      version,
      sessionId,
      token,
      received,
      resume,
      tickRateHz: r.readVarUint(),
      graceMs: r.readVarUint(),
      userData: readValue(r),
    };
  });
}

/** Ping (client → server) and Pong (server → client) carry how many reliable frames arrived. */
export function encodeReceived(opcode: typeof Opcode.Ping | typeof Opcode.Pong, received: number) {
  const w = start(opcode);
  writeCount(w, 'received', received);
  return w.toBytes();
}

export function decodeReceived(frame: Uint8Array): number {
  const opcode = frame[0] === Opcode.Pong ? Opcode.Pong : Opcode.Ping;
  return decode(frame, opcode, (r) => r.readVarUint());
}

/** One frame of a {@link encodeBatch Batch} and the channel it was sent on. */
export interface BatchEntry {
  frame: Uint8Array;
  reliable: boolean;
}

/** Most frames one Batch carries. */
export const MAX_BATCH_FRAMES = 32;

/** Frames a session link never counts or replays: the handshake and its own acknowledgements. */
export const CONTROL_OPCODES: ReadonlySet<number> = new Set([
  Opcode.Hello,
  Opcode.Welcome,
  Opcode.Ping,
  Opcode.Pong,
  Opcode.Goodbye,
]);

/** Opcodes a Batch never carries: the control frames and batches. */
export const UNBATCHABLE_OPCODES: ReadonlySet<number> = new Set([...CONTROL_OPCODES, Opcode.Batch]);

/**
 * Several frames in one message: `[Batch][0]`, then per frame a varuint of
 * `length × 2 + (reliable ? 1 : 0)` and the frame's bytes.
 */
export function encodeBatch(entries: readonly BatchEntry[]): Uint8Array {
  if (entries.length < 1 || entries.length > MAX_BATCH_FRAMES)
    throw invalid(`a batch holds 1 to ${MAX_BATCH_FRAMES} frames, got ${entries.length}`);
  const w = start(Opcode.Batch);
  for (const { frame, reliable } of entries) {
    if (frame.byteLength < FRAME_HEADER_BYTES || UNBATCHABLE_OPCODES.has(frame[0]!))
      throw invalid(`a batch cannot carry a ${opcodeName(frame[0] ?? 0)} frame`);
    w.writeVarUint(frame.byteLength * 2 + (reliable ? 1 : 0));
    w.writeBytes(frame);
  }
  return w.toBytes();
}

function malformedBatch(why: string): TickwireError {
  return new TickwireError(ErrorCode.DECODE_FAILED, `malformed Batch frame: ${why}`, {
    details: { opcode: Opcode.Batch },
  });
}

/**
 * The frames of a Batch that arrived on `channel`, as views into it. Throws DECODE_FAILED for
 * a malformed batch (a length past the end, a frame shorter than its header, a frame a batch
 * never carries, too many frames) and PROTOCOL_ERROR for reliable frames in a batch that came
 * on the unreliable channel.
 */
export function decodeBatch(batch: Uint8Array, channel: 'reliable' | 'unreliable'): BatchEntry[] {
  // Runs per message the server reads: no closure, and one object per frame.
  const fail = malformedBatch;
  if (batch.byteLength < FRAME_HEADER_BYTES || batch[0] !== Opcode.Batch)
    throw fail('not a Batch frame');
  const entries: BatchEntry[] = [];
  let anyReliable = false;
  let at = FRAME_HEADER_BYTES;
  while (at < batch.byteLength) {
    if (entries.length === MAX_BATCH_FRAMES) throw fail(`more than ${MAX_BATCH_FRAMES} frames`);
    let prefix = 0;
    let shift = 0;
    for (;;) {
      if (at >= batch.byteLength || shift > 21) throw fail('bad frame length');
      const byte = batch[at++]!;
      prefix += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) break;
    }
    const length = Math.floor(prefix / 2);
    if (length < FRAME_HEADER_BYTES || at + length > batch.byteLength)
      throw fail(`frame of ${length} bytes at offset ${at}`);
    const frame = batch.subarray(at, at + length);
    if (UNBATCHABLE_OPCODES.has(frame[0]!))
      throw fail(`it carries a ${opcodeName(frame[0]!)} frame`);
    const reliable = prefix % 2 === 1;
    if (reliable) anyReliable = true;
    entries.push({ frame, reliable });
    at += length;
  }
  if (entries.length === 0) throw fail('no frames');
  if (channel !== 'reliable' && anyReliable)
    throw new TickwireError(
      ErrorCode.PROTOCOL_ERROR,
      'a batch with reliable frames came on the unreliable channel',
    );
  return entries;
}

export function encodeJoinRoom(join: JoinRoomFrame): Uint8Array {
  const w = start(Opcode.JoinRoom);
  writeCount(w, 'requestId', join.requestId);
  if (!Object.values(JoinMode).includes(join.mode))
    throw invalid(`mode must be a JoinMode, got ${join.mode}`);
  w.writeBits(join.mode, 8);
  writeString(w, 'target', join.target, FrameLimits.id);
  writeValue(w, 'options', join.options);
  return w.toBytes();
}

export function decodeJoinRoom(frame: Uint8Array): JoinRoomFrame {
  return decode(frame, Opcode.JoinRoom, (r) => {
    const requestId = r.readVarUint();
    const mode = r.readBits(8);
    if (mode > JoinMode.JoinById) throw new Error(`unknown join mode ${mode}`);
    return {
      requestId,
      mode: mode as JoinMode,
      target: readString(r, FrameLimits.id),
      options: readValue(r),
    };
  });
}

export function encodeRoomJoined(joined: RoomJoinedFrame): Uint8Array {
  const w = start(Opcode.RoomJoined);
  writeCount(w, 'requestId', joined.requestId);
  writeString(w, 'roomId', joined.roomId, FrameLimits.id);
  writeString(w, 'name', joined.name, FrameLimits.id);
  writeValue(w, 'metadata', joined.metadata);
  return w.toBytes();
}

export function decodeRoomJoined(frame: Uint8Array): RoomJoinedFrame {
  return decode(frame, Opcode.RoomJoined, (r) => ({
    requestId: r.readVarUint(),
    roomId: readString(r, FrameLimits.id),
    name: readString(r, FrameLimits.id),
    metadata: readValue(r),
  }));
}

/** LeaveRoom has no payload: a session is in at most one room. */
export function encodeLeaveRoom(): Uint8Array {
  return new Uint8Array([Opcode.LeaveRoom, 0]);
}

export function decodeLeaveRoom(frame: Uint8Array): void {
  decode(frame, Opcode.LeaveRoom, () => undefined);
}

export function encodeRoomLeft(left: RoomLeftFrame): Uint8Array {
  const w = start(Opcode.RoomLeft);
  writeString(w, 'roomId', left.roomId, FrameLimits.id);
  writeCount(w, 'code', left.code);
  writeString(w, 'reason', left.reason, FrameLimits.reason);
  return w.toBytes();
}

export function decodeRoomLeft(frame: Uint8Array): RoomLeftFrame {
  return decode(frame, Opcode.RoomLeft, (r) => ({
    roomId: readString(r, FrameLimits.id),
    code: r.readVarUint(),
    reason: readString(r, FrameLimits.reason),
  }));
}

/** Truncates `text` to at most `limit` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, limit: number): string {
  if (utf8Length(text) <= limit) return text;
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = utf8Length(char);
    if (bytes + size > limit - 3) break;
    out += char;
    bytes += size;
  }
  return `${out}...`;
}

export function encodeError(error: ErrorFrame): Uint8Array {
  const w = start(Opcode.Error);
  writeCount(w, 'requestId', error.requestId);
  writeString(w, 'code', error.code, FrameLimits.code);
  writeString(w, 'message', truncateUtf8(error.message, FrameLimits.message), FrameLimits.message);
  return w.toBytes();
}

/** An Error frame for a caught error: its code when it is a TickwireError, INTERNAL otherwise. */
export function errorFrameOf(requestId: number, error: unknown): Uint8Array {
  const tickwire = isTickwireError(error);
  return encodeError({
    requestId,
    code: tickwire ? error.code : ErrorCode.INTERNAL,
    message: tickwire ? error.message : 'internal server error',
  });
}

export function decodeError(frame: Uint8Array): ErrorFrame {
  return decode(frame, Opcode.Error, (r) => ({
    requestId: r.readVarUint(),
    code: readString(r, FrameLimits.code),
    message: readString(r, FrameLimits.message),
  }));
}

export function encodeGoodbye(goodbye: GoodbyeFrame): Uint8Array {
  const w = start(Opcode.Goodbye);
  writeCount(w, 'code', goodbye.code);
  writeString(w, 'reason', truncateUtf8(goodbye.reason, FrameLimits.reason), FrameLimits.reason);
  return w.toBytes();
}

export function decodeGoodbye(frame: Uint8Array): GoodbyeFrame {
  return decode(frame, Opcode.Goodbye, (r) => ({
    code: r.readVarUint(),
    reason: readString(r, FrameLimits.reason),
  }));
}

/** `[Opcode.RoomMessage][0]` + a room message registry's bytes. */
export function encodeRoomMessage(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  frame[0] = Opcode.RoomMessage;
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}
