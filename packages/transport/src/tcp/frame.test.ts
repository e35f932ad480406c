import { ErrorCode, isTickwireError } from '@tickwire/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameKind } from '../shared/wire.js';
import { encodeFrame, FrameDecoder, varintSize, writeVarint } from './frame.js';

interface Decoded {
  kind: number;
  body: number[];
}

/** A decoder that records frames as plain arrays (copies, so later chunks cannot alter them). */
function recorder(maxMessageBytes: number): { decoder: FrameDecoder; frames: Decoded[] } {
  const frames: Decoded[] = [];
  const decoder = new FrameDecoder(maxMessageBytes, (kind, source, offset, length) => {
    frames.push({ kind, body: [...source.subarray(offset, offset + length)] });
  });
  return { decoder, frames };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Splits `bytes` at the given cut points (any numbers; taken modulo the length, sorted). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(previous, point));
    previous = point;
  }
  return chunks;
}

describe('tcp frame varint', () => {
  it('encodes lengths in 1–5 bytes, LEB128', () => {
    const cases: Array<[number, number[]]> = [
      [0, [0]],
      [127, [0x7f]],
      [128, [0x80, 0x01]],
      [16_383, [0xff, 0x7f]],
      [16_384, [0x80, 0x80, 0x01]],
      [0x7fff_0000, [0x80, 0x80, 0xfc, 0xff, 0x07]],
    ];
    for (const [value, bytes] of cases) {
      const target = new Uint8Array(5);
      const end = writeVarint(target, 0, value);
      expect([...target.subarray(0, end)]).toEqual(bytes);
      expect(varintSize(value)).toBe(bytes.length);
    }
  });

  it('frames a small message with 2 bytes of overhead', () => {
    const frame = encodeFrame(FrameKind.Reliable, new Uint8Array(32));
    expect(frame.length).toBe(34);
    expect(frame[0]).toBe(32);
    expect(frame[1]).toBe(FrameKind.Reliable);
  });
});

describe('FrameDecoder', () => {
  it('decodes many frames from one chunk, as views of that chunk', () => {
    const views: Uint8Array[] = [];
    const decoder = new FrameDecoder(1024, (_kind, source, offset, length) => {
      views.push(source.subarray(offset, offset + length));
    });
    const chunk = concat(
      Array.from({ length: 100 }, (_, i) => encodeFrame(i % 2, new Uint8Array(i).fill(i & 0xff))),
    );
    decoder.push(chunk);
    expect(views.length).toBe(100);
    views.forEach((view, i) => {
      expect(view.length).toBe(i);
      expect(view.every((byte) => byte === (i & 0xff))).toBe(true);
      expect(view.buffer).toBe(chunk.buffer);
    });
    expect(decoder.pendingBytes).toBe(0);
  });

  it('decodes a frame fed one byte at a time, header and body split', () => {
    const { decoder, frames } = recorder(100_000);
    const body = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    const bytes = concat([
      encodeFrame(FrameKind.Unreliable, body),
      encodeFrame(FrameKind.Reliable, new Uint8Array(0)),
    ]);
    for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
    expect(frames).toEqual([
      { kind: FrameKind.Unreliable, body: [...body] },
      { kind: FrameKind.Reliable, body: [] },
    ]);
  });

  it('rejects a length over maxMessageBytes from the header alone', () => {
    const { decoder, frames } = recorder(1000);
    const header = new Uint8Array(6);
    const end = writeVarint(header, 0, 1001);
    header[end] = FrameKind.Reliable;
    let caught: unknown;
    try {
      decoder.push(header.subarray(0, end + 1));
    } catch (error) {
      caught = error;
    }
    expect(isTickwireError(caught, ErrorCode.MESSAGE_TOO_LARGE)).toBe(true);
    expect(frames).toEqual([]);
    // A failed decoder stays failed.
    expect(() => decoder.push(encodeFrame(0, new Uint8Array(1)))).toThrow(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }),
    );
  });

  it('rejects an unknown kind, a long varint and an oversize control frame', () => {
    const bad = [
      Uint8Array.of(0, 0x42),
      Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
      concat([encodeFrame(FrameKind.Ping, new Uint8Array(126))]),
    ];
    for (const bytes of bad) {
      const { decoder } = recorder(1 << 20);
      expect(() => decoder.push(bytes)).toThrow(
        expect.objectContaining({ code: ErrorCode.PROTOCOL_ERROR }),
      );
    }
  });

  it('before hello, refuses from its header any frame but a small hello or close', () => {
    const awaiting = (): { decoder: FrameDecoder; frames: number[] } => {
      const frames: number[] = [];
      const decoder = new FrameDecoder(
        1 << 20,
        (kind) => {
          frames.push(kind);
          if (kind === FrameKind.Hello) decoder.helloReceived();
        },
        true,
      );
      return { decoder, frames };
    };
    const header = (length: number, kind?: number): Uint8Array => {
      const bytes = new Uint8Array(6);
      const end = writeVarint(bytes, 0, length);
      if (kind === undefined) return bytes.subarray(0, end);
      bytes[end] = kind;
      return bytes.subarray(0, end + 1);
    };
    // A length too big for a hello is refused before its kind byte arrives.
    for (const refused of [header(126), header(1 << 20), header(3, FrameKind.Reliable)]) {
      const { decoder } = awaiting();
      let caught: unknown;
      try {
        decoder.push(refused);
      } catch (error) {
        caught = error;
      }
      expect(isTickwireError(caught, ErrorCode.PROTOCOL_ERROR)).toBe(true);
      expect(decoder.pendingBytes).toBe(0);
    }
    // Hello then a big message in one chunk: the limit lifts with the hello.
    const { decoder, frames } = awaiting();
    decoder.push(
      concat([
        encodeFrame(FrameKind.Hello, new Uint8Array(5)),
        encodeFrame(FrameKind.Reliable, new Uint8Array(5000)),
      ]),
    );
    expect(frames).toEqual([FrameKind.Hello, FrameKind.Reliable]);
  });

  it('any byte string, in any chunks, is decoded or rejected with a TickwireError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.integer({ min: 1, max: 300 }),
        (bytes, cuts, maxMessageBytes) => {
          const { decoder } = recorder(maxMessageBytes);
          try {
            for (const chunk of split(bytes, cuts)) decoder.push(chunk);
          } catch (error) {
            if (!isTickwireError(error)) throw error;
            expect([ErrorCode.PROTOCOL_ERROR, ErrorCode.MESSAGE_TOO_LARGE]).toContain(error.code);
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('decodes any sequence of valid frames the same way whatever the chunking', () => {
    const frame = fc.record({
      kind: fc.constantFrom(FrameKind.Reliable, FrameKind.Unreliable, FrameKind.Ping),
      body: fc.uint8Array({ maxLength: 200 }),
    });
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, cuts) => {
          const valid = frames.map((f) =>
            f.kind === FrameKind.Ping ? { kind: f.kind, body: f.body.subarray(0, 8) } : f,
          );
          const { decoder, frames: decoded } = recorder(200);
          const stream = concat(valid.map((f) => encodeFrame(f.kind, f.body)));
          for (const chunk of split(stream, cuts)) decoder.push(chunk);
          expect(decoded).toEqual(valid.map((f) => ({ kind: f.kind, body: [...f.body] })));
          expect(decoder.pendingBytes).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
