import { describe, expect, it } from 'vitest';
import { ErrorCode } from './errors.js';
import { CloseCode, checkCloseArgs, FrameFlag, Opcode, PROTOCOL_VERSION } from './protocol.js';
import { utf8Length } from './utf8.js';

describe('wire protocol constants', () => {
  it('has unique one-byte opcodes and distinct flag bits', () => {
    const values = Object.values(Opcode);
    expect(new Set(values).size).toBe(values.length);
    for (const v of values) expect(v > 0 && v < 256).toBe(true);
    const flags = Object.values(FrameFlag);
    expect(flags.reduce((a, b) => a | b, 0)).toBe(flags.reduce((a, b) => a + b, 0));
    expect(PROTOCOL_VERSION).toBeGreaterThanOrEqual(1);
  });

  it('has unique close codes that connections accept', () => {
    const codes = Object.values(CloseCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(() => checkCloseArgs(code, '')).not.toThrow();
  });

  it('rejects reserved close codes and long reasons', () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 2000, 5000, 4000.5]) {
      expect(() => checkCloseArgs(code, '')).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    expect(() => checkCloseArgs(1000, 'é'.repeat(62))).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => checkCloseArgs(1000, 'é'.repeat(61))).not.toThrow();
    expect(() => checkCloseArgs(1000, 5 as unknown as string)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});

describe('utf8Length', () => {
  it('matches TextEncoder for ASCII, 2-, 3- and 4-byte characters and lone surrogates', () => {
    const encoder = new TextEncoder();
    for (const text of ['', 'abc', 'héllo', '€uro', '🎮 game', 'a\ud800b', '\udc00', 'x\ud83c']) {
      expect(utf8Length(text)).toBe(encoder.encode(text).length);
    }
  });
});
