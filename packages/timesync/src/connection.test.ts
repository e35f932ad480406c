import { createManualTime, ErrorCode, Opcode } from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { describe, expect, it } from 'vitest';
import { serveTimeSync, timeSyncOverConnection } from './connection.js';
import {
  decodeTimeRequest,
  decodeTimeResponse,
  encodeTimeRequest,
  encodeTimeResponse,
  TIME_REQUEST_BYTES,
  TIME_RESPONSE_BYTES,
} from './messages.js';

const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('frames', () => {
  it('round-trip with a 1-byte opcode header and f64 timestamps', () => {
    const request = encodeTimeRequest({ id: 0xfffffffe, t0: 1234.5678 });
    expect(request).toHaveLength(TIME_REQUEST_BYTES);
    expect(request[0]).toBe(Opcode.TimeRequest);
    expect(decodeTimeRequest(request)).toEqual({ id: 0xfffffffe, t0: 1234.5678 });
    const response = encodeTimeResponse({ id: 7, t0: 1, t1: 2.5, t2: 3.25 });
    expect(response).toHaveLength(TIME_RESPONSE_BYTES);
    expect(response[0]).toBe(Opcode.TimeResponse);
    expect(decodeTimeResponse(response)).toEqual({ id: 7, t0: 1, t1: 2.5, t2: 3.25 });
  });

  it('reject bad bytes with DECODE_FAILED', () => {
    const bad = [
      new Uint8Array(0),
      new Uint8Array([Opcode.TimeResponse, 1, 2]),
      encodeTimeRequest({ id: 1, t0: 0 }),
      encodeTimeResponse({ id: 1, t0: 0, t1: Number.NaN, t2: 0 }),
    ];
    for (const bytes of bad) {
      expect(() => decodeTimeResponse(bytes)).toThrow(
        expect.objectContaining({ code: ErrorCode.DECODE_FAILED }),
      );
    }
    expect(() =>
      decodeTimeRequest(encodeTimeRequest({ id: 1, t0: Number.POSITIVE_INFINITY })),
    ).toThrow(/t0 must be finite/);
    expect(() => decodeTimeRequest(new Uint8Array(13))).toThrow(/TimeRequest/);
  });
});

describe('timeSyncOverConnection', () => {
  it('syncs over a memory connection pair; bad and foreign frames are ignored and counted', async () => {
    const [clientEnd, serverEnd] = createMemoryConnectionPair();
    const time = createManualTime(100);
    const serverClock = { now: () => time.now() + 10_000 };
    const server = serveTimeSync(serverEnd, { time: serverClock });
    const client = timeSyncOverConnection(clientEnd, { time });
    const rejected: string[] = [];
    client.on('rejected', (error) => rejected.push(error.code));
    const done = client.sync();
    for (let i = 0; i < 30; i++) {
      time.advance(100);
      await flush();
    }
    const stats = await done;
    expect(stats.samples).toBe(10);
    // Delivery happens between manual-time steps, so some samples see a 100 ms round trip.
    expect(Math.abs(client.serverNow() - time.now() - 10_000)).toBeLessThan(1);
    expect(server.stats.served).toBeGreaterThanOrEqual(10);

    // Bad frames either way: counted, never thrown. Other opcodes pass untouched.
    serverEnd.send(new Uint8Array([Opcode.TimeResponse, 1, 2, 3]));
    serverEnd.send(encodeTimeResponse({ id: 424242, t0: 0, t1: 0, t2: 0 }));
    serverEnd.send(new Uint8Array([Opcode.Message, 1]));
    clientEnd.send(new Uint8Array([Opcode.TimeRequest, 9]));
    clientEnd.send(new Uint8Array([Opcode.Ping]));
    await flush();
    expect(rejected).toEqual([ErrorCode.DECODE_FAILED, ErrorCode.PROTOCOL_ERROR]);
    expect(client.stats().rejected).toBe(2);
    expect(server.stats.badFrames).toBe(1);

    client.close();
    server.close();
    serverEnd.send(encodeTimeResponse({ id: 1, t0: 0, t1: 0, t2: 0 }));
    await flush();
    expect(client.stats().rejected).toBe(2);
    clientEnd.close();
  });

  it('closes with the connection and stops sending', async () => {
    const [clientEnd, serverEnd] = createMemoryConnectionPair();
    const time = createManualTime();
    const client = timeSyncOverConnection(clientEnd, { time, channel: 'reliable' });
    const done = client.sync();
    const settled = expect(done).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    serverEnd.close();
    await flush();
    await settled;
    await expect(done).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    time.advance(5_000);
    expect(time.pending).toBe(0);
  });

  it('stops at once on a connection already closed: sync() rejects, nothing is sent', async () => {
    const [clientEnd, serverEnd] = createMemoryConnectionPair();
    const received: Uint8Array[] = [];
    serverEnd.on('message', (data) => received.push(data));
    clientEnd.close();
    await flush();
    expect(clientEnd.state).toBe('closed');
    const time = createManualTime();
    const client = timeSyncOverConnection(clientEnd, { time });
    expect(time.pending).toBe(0);
    const done = client.sync();
    await expect(done).rejects.toMatchObject({
      code: ErrorCode.CLOSED,
      message: expect.stringMatching(/connection is closed/),
    });
    time.advance(60_000);
    await flush();
    expect(client.stats().requests).toBe(0);
    expect(time.pending).toBe(0);
    expect(received).toHaveLength(0);
    client.close();
  });

  it('stops when its own end closes mid-sync, even while still closing at creation', async () => {
    for (const closeBeforeCreate of [false, true]) {
      const [clientEnd, serverEnd] = createMemoryConnectionPair();
      const time = createManualTime();
      const server = serveTimeSync(serverEnd, { time: { now: () => time.now() + 5_000 } });
      if (closeBeforeCreate) clientEnd.close();
      const client = timeSyncOverConnection(clientEnd, { time });
      const done = client.sync();
      const settled = expect(done).rejects.toMatchObject({ code: ErrorCode.CLOSED });
      if (!closeBeforeCreate) {
        // Two burst requests go out unanswered in time, then the client's end closes.
        time.advance(150);
        clientEnd.close();
      }
      expect(clientEnd.state).toBe('closing');
      await flush();
      await settled;
      const requests = client.stats().requests;
      expect(requests).toBe(closeBeforeCreate ? 0 : 2);
      time.advance(60_000);
      await flush();
      expect(client.stats().requests).toBe(requests);
      expect(client.stats().timeouts).toBe(0);
      expect(time.pending).toBe(0);
      server.close();
    }
  });
});
