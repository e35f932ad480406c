import { ErrorCode, Opcode, TickwireError } from '@tickwire/core';

/** A time request, client → server: an id and the client's send time t0 (local ms). */
export interface TimeRequest {
  /** Unsigned 32-bit id that the response echoes. */
  id: number;
  /** Local time the request left the client. */
  t0: number;
}

/** A time response, server → client: the request's fields plus server receive/send times. */
export interface TimeResponse {
  /** The request's id. */
  id: number;
  /** The request's t0, echoed. */
  t0: number;
  /** Server time the request arrived. */
  t1: number;
  /** Server time the response left. */
  t2: number;
}

/** Bytes of an encoded request: `[Opcode.TimeRequest u8][id u32][t0 f64]`, little-endian. */
export const TIME_REQUEST_BYTES = 13;
/** Bytes of an encoded response: `[Opcode.TimeResponse u8][id u32][t0 f64][t1 f64][t2 f64]`. */
export const TIME_RESPONSE_BYTES = 29;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function fail(message: string): never {
  throw new TickwireError(ErrorCode.DECODE_FAILED, `timesync: ${message}`);
}

/** Encodes a {@link TimeRequest} frame. */
export function encodeTimeRequest(request: TimeRequest): Uint8Array {
  const bytes = new Uint8Array(TIME_REQUEST_BYTES);
  const dv = view(bytes);
  dv.setUint8(0, Opcode.TimeRequest);
  dv.setUint32(1, request.id >>> 0, true);
  dv.setFloat64(5, request.t0, true);
  return bytes;
}

/** Encodes a {@link TimeResponse} frame. */
export function encodeTimeResponse(response: TimeResponse): Uint8Array {
  const bytes = new Uint8Array(TIME_RESPONSE_BYTES);
  const dv = view(bytes);
  dv.setUint8(0, Opcode.TimeResponse);
  dv.setUint32(1, response.id >>> 0, true);
  dv.setFloat64(5, response.t0, true);
  dv.setFloat64(13, response.t1, true);
  dv.setFloat64(21, response.t2, true);
  return bytes;
}

const finite = (value: number, name: string): number =>
  Number.isFinite(value) ? value : fail(`${name} must be finite, got ${value}`);

/** Decodes a request frame; throws `TickwireError` DECODE_FAILED on anything else. */
export function decodeTimeRequest(bytes: Uint8Array): TimeRequest {
  if (bytes.byteLength !== TIME_REQUEST_BYTES || bytes[0] !== Opcode.TimeRequest) {
    fail(`expected a ${TIME_REQUEST_BYTES}-byte TimeRequest frame, got ${bytes.byteLength} bytes`);
  }
  const dv = view(bytes);
  return { id: dv.getUint32(1, true), t0: finite(dv.getFloat64(5, true), 't0') };
}

/** Decodes a response frame; throws `TickwireError` DECODE_FAILED on anything else. */
export function decodeTimeResponse(bytes: Uint8Array): TimeResponse {
  if (bytes.byteLength !== TIME_RESPONSE_BYTES || bytes[0] !== Opcode.TimeResponse) {
    fail(
      `expected a ${TIME_RESPONSE_BYTES}-byte TimeResponse frame, got ${bytes.byteLength} bytes`,
    );
  }
  const dv = view(bytes);
  return {
    id: dv.getUint32(1, true),
    t0: finite(dv.getFloat64(5, true), 't0'),
    t1: finite(dv.getFloat64(13, true), 't1'),
    t2: finite(dv.getFloat64(21, true), 't2'),
  };
}
