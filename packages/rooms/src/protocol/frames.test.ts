import {
  ErrorCode,
  isTickwireError,
  Opcode,
  PROTOCOL_VERSION,
  TickwireError,
} from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import {
  decodeError,
  decodeGoodbye,
  decodeHello,
  decodeJoinRoom,
  decodeLeaveRoom,
  decodeReceived,
  decodeRoomJoined,
  decodeRoomLeft,
  decodeWelcome,
  encodeError,
  encodeGoodbye,
  encodeHello,
  encodeJoinRoom,
  encodeLeaveRoom,
  encodeReceived,
  encodeRoomJoined,
  encodeRoomLeft,
  encodeRoomMessage,
  encodeWelcome,
  errorFrameOf,
  FrameLimits,
  JoinMode,
  opcodeName,
  peekHelloVersion,
  truncateUtf8,
} from './frames.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isTickwireError(error) ? error.code : 'not a TickwireError';
  }
  return undefined;
}

describe('engine frames', () => {
  it('round-trip every frame with its opcode in front', () => {
    const hello = {
      version: PROTOCOL_VERSION,
      token: 'abc.def',
      received: 42,
      auth: { name: 'ann' },
    };
    const helloBytes = encodeHello(hello);
    expect(helloBytes[0]).toBe(Opcode.Hello);
    expect(decodeHello(helloBytes)).toEqual(hello);
    expect(decodeHello(encodeHello({ ...hello, auth: undefined })).auth).toBeUndefined();

    const welcome = {
      version: 1,
      sessionId: 's-1',
      token: 't',
      received: 3,
      resume: 'resumed' as const,
      tickRateHz: 20,
      graceMs: 30_000,
      userData: { id: 7 },
    };
    expect(decodeWelcome(encodeWelcome(welcome))).toEqual(welcome);
    expect(decodeReceived(encodeReceived(Opcode.Ping, 9))).toBe(9);
    expect(decodeReceived(encodeReceived(Opcode.Pong, 0))).toBe(0);
    const join = {
      requestId: 5,
      mode: JoinMode.JoinOrCreate,
      target: 'arena',
      options: { map: 'x' },
    };
    expect(decodeJoinRoom(encodeJoinRoom(join))).toEqual(join);
    const joined = { requestId: 5, roomId: 'r1', name: 'arena', metadata: { mode: 'ffa' } };
    expect(decodeRoomJoined(encodeRoomJoined(joined))).toEqual(joined);
    expect(() => decodeLeaveRoom(encodeLeaveRoom())).not.toThrow();
    const left = { roomId: 'r1', code: 4004, reason: 'kicked' };
    expect(decodeRoomLeft(encodeRoomLeft(left))).toEqual(left);
    const error = { requestId: 0, code: 'FORBIDDEN', message: 'no' };
    expect(decodeError(encodeError(error))).toEqual(error);
    expect(decodeGoodbye(encodeGoodbye({ code: 1012, reason: 'restart' }))).toEqual({
      code: 1012,
      reason: 'restart',
    });
    const message = encodeRoomMessage(new Uint8Array([1, 2]));
    expect([...message]).toEqual([Opcode.RoomMessage, 0, 1, 2]);
  });

  it('reads the version of a Hello whose layout it does not know', () => {
    const future = new Uint8Array([Opcode.Hello, 0, 9, 0xff, 0xff, 0xff]);
    expect(peekHelloVersion(future)).toBe(9);
    expect(codeOf(() => decodeHello(future))).toBe(ErrorCode.DECODE_FAILED);
  });

  it('refuses truncated, trailing, wrong-opcode and over-limit frames with typed errors', () => {
    const hello = encodeHello({ version: 1, token: 'tok', received: 0, auth: { a: 1 } });
    for (let cut = 0; cut < hello.byteLength; cut++)
      expect(codeOf(() => decodeHello(hello.subarray(0, cut)))).toBe(ErrorCode.DECODE_FAILED);
    const trailing = new Uint8Array([...hello, 0]);
    expect(codeOf(() => decodeHello(trailing))).toBe(ErrorCode.DECODE_FAILED);
    expect(codeOf(() => decodeWelcome(hello))).toBe(ErrorCode.PROTOCOL_ERROR);
    // A token length over the limit is refused before reading it.
    const big = new Uint8Array([Opcode.Hello, 0, 1, 0xff, 0xff, 0x03]);
    expect(codeOf(() => decodeHello(big))).toBe(ErrorCode.DECODE_FAILED);
    const badMode = new Uint8Array([Opcode.JoinRoom, 0, 1, 9, 0, 0]);
    expect(codeOf(() => decodeJoinRoom(badMode))).toBe(ErrorCode.DECODE_FAILED);
    const badWelcome = encodeWelcome({
      version: 1,
      sessionId: 's',
      token: '',
      received: 0,
      resume: 'new',
      tickRateHz: 20,
      graceMs: 1,
      userData: undefined,
    });
    badWelcome[7] = 7; // the resumed flag byte
    expect(codeOf(() => decodeWelcome(badWelcome))).toBe(ErrorCode.DECODE_FAILED);
    // not JSON inside a value
    const garbage = new Uint8Array([Opcode.Hello, 0, 1, 0, 0, 1, 0x7b]);
    expect(codeOf(() => decodeHello(garbage))).toBe(ErrorCode.DECODE_FAILED);
  });

  it('says why a frame is malformed', () => {
    const welcome = encodeWelcome({
      version: 1,
      sessionId: 's',
      token: 't',
      received: 0,
      resume: 'new',
      tickRateHz: 20,
      graceMs: 1,
      userData: { a: 1 },
    });
    expect(() => decodeWelcome(welcome.subarray(0, welcome.byteLength - 3))).toThrow(
      'malformed Welcome frame: truncated: unexpected end of input',
    );
    const badUtf8 = encodeHello({ version: 1, token: 'tok', received: 0, auth: undefined });
    badUtf8[4] = 0xff; // inside the token
    expect(() => decodeHello(badUtf8)).toThrow('malformed Hello frame: invalid UTF-8');
  });

  it('encodes JSON values as UTF-8 and refuses what JSON cannot hold', () => {
    const options = { name: 'é😀', list: [1, null, 'x'] };
    const join = { requestId: 1, mode: JoinMode.Join, target: 'a', options };
    expect(decodeJoinRoom(encodeJoinRoom(join)).options).toEqual(options);
    expect(decodeJoinRoom(encodeJoinRoom({ ...join, options: undefined })).options).toBe(undefined);
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    expect(() => encodeJoinRoom({ ...join, options: cyclic })).toThrow(
      expect.objectContaining({
        code: ErrorCode.INVALID_ARGUMENT,
        message: 'options cannot be encoded as JSON',
        cause: expect.any(TypeError),
      }),
    );
    expect(() => encodeJoinRoom({ ...join, options: Symbol('x') })).toThrow(
      'options cannot be encoded as JSON',
    );
    const big = 'x'.repeat(FrameLimits.value);
    expect(() => encodeJoinRoom({ ...join, options: big })).toThrow(
      `options is ${FrameLimits.value + 2} bytes as JSON; the limit is ${FrameLimits.value}`,
    );
  });

  it('refuses bad values on encode with INVALID_ARGUMENT', () => {
    expect(
      codeOf(() =>
        encodeHello({ version: 1, token: 'x'.repeat(FrameLimits.token + 1), received: 0, auth: 0 }),
      ),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(codeOf(() => encodeHello({ version: -1, token: '', received: 0, auth: 0 }))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(
      codeOf(() => encodeJoinRoom({ requestId: 1, mode: 7 as JoinMode, target: 'a', options: 0 })),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(
      codeOf(() => encodeJoinRoom({ requestId: 1, mode: 0, target: 'a', options: () => 1 })),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(
      codeOf(() => encodeRoomLeft({ roomId: 5 as unknown as string, code: 1, reason: '' })),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('truncates long reasons and messages on a character boundary', () => {
    const reason = 'é'.repeat(100);
    const frame = decodeGoodbye(encodeGoodbye({ code: 1000, reason }));
    expect(new TextEncoder().encode(frame.reason).byteLength).toBeLessThanOrEqual(
      FrameLimits.reason,
    );
    expect(frame.reason.endsWith('...')).toBe(true);
    expect(truncateUtf8('short', 10)).toBe('short');
  });

  it('turns caught errors into Error frames without leaking internals', () => {
    const typed = decodeError(
      errorFrameOf(3, new TickwireError(ErrorCode.FORBIDDEN, 'room is locked')),
    );
    expect(typed).toEqual({ requestId: 3, code: 'FORBIDDEN', message: 'room is locked' });
    const other = decodeError(errorFrameOf(0, new Error('secret stack')));
    expect(other).toEqual({ requestId: 0, code: 'INTERNAL', message: 'internal server error' });
  });

  it('names opcodes', () => {
    expect(opcodeName(Opcode.RoomMessage)).toBe('RoomMessage');
    expect(opcodeName(0x99)).toBe('0x99');
  });
});
