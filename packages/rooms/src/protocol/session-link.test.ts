import {
  CloseCode,
  type Connection,
  createManualTime,
  ErrorCode,
  isTickwireError,
  Opcode,
} from '@tickwire/core';
import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, encodeGoodbye } from './frames.js';
import { createSessionLink, type SessionLink } from './session-link.js';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The code of the error `fn` throws ('none' when it throws nothing). */
const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    return (error as { code: string }).code;
  }
  return 'none';
};

/** A frame of a session opcode carrying one number, so order and duplicates show. */
const frame = (n: number) => new Uint8Array([Opcode.RoomMessage, 0, n & 0xff, n >> 8]);
const numberOf = (data: Uint8Array) => data[2]! | (data[3]! << 8);

function setup(options: { maxReplayBytes?: number } = {}, lazy: readonly number[] = []) {
  const time = createManualTime();
  const server = createSessionLink({ id: 's1', role: 'server', time, ...options });
  const client = createSessionLink({
    id: 's1',
    role: 'client',
    time,
    ackIntervalMs: 100,
    lazyOpcodes: lazy,
    lazyDelayMs: 20,
    ...options,
  });
  const atServer: number[] = [];
  const atClient: number[] = [];
  server.on('message', (data, channel) => {
    if (channel === 'reliable') atServer.push(numberOf(data));
  });
  client.on('message', (data, channel) => {
    if (channel === 'reliable') atClient.push(numberOf(data));
  });
  let pair: [Connection, Connection] | null = null;
  const connect = () => {
    pair = createMemoryConnectionPair();
    const [c, s] = pair;
    // The handshake: each side learns the other's count (Hello / Welcome).
    const clientReceived = client.counters.received;
    const serverReceived = server.counters.received;
    server.attach(s, clientReceived);
    client.attach(c, serverReceived);
    return pair;
  };
  const cut = () => {
    // An abrupt drop: nothing queued is delivered.
    const [c, s] = pair!;
    s.close(CloseCode.GoingAway, 'cut');
    c.close(CloseCode.GoingAway, 'cut');
  };
  return { time, server, client, atServer, atClient, connect, cut };
}

describe('session link', () => {
  it('delivers reliable frames exactly once and in order across cuts, both ways', async () => {
    const t = setup();
    t.connect();
    let next = 0;
    let nextUp = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) t.server.send(frame(next++));
      for (let i = 0; i < 7; i++) t.client.send(frame(nextUp++));
      if (round % 2 === 0) await flush(); // some rounds deliver before the cut, some do not
      t.cut();
      // Sent while no transport is attached: kept for replay.
      for (let i = 0; i < 3; i++) t.server.send(frame(next++));
      t.client.send(frame(nextUp++));
      await flush();
      t.connect();
      await flush();
      t.time.advance(100); // an acknowledgement round trip trims the replay buffers
      await flush();
    }
    expect(t.atClient).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(t.atServer).toEqual(Array.from({ length: nextUp }, (_, i) => i));
    expect(t.server.counters.replayed).toBeGreaterThan(0);
    expect(t.server.counters.pending).toBe(0);
    expect(t.client.counters.pending).toBe(0);
    expect(t.server.counters.attaches).toBe(6);
  });

  it('drops unreliable frames while detached and sends them while attached', async () => {
    const t = setup();
    const unreliable: number[] = [];
    t.client.on('message', (data, channel) => {
      if (channel === 'unreliable') unreliable.push(numberOf(data));
    });
    expect(t.server.send(frame(1), 'unreliable')).toBe(false);
    t.connect();
    expect(t.server.send(frame(2), 'unreliable')).toBe(true);
    await flush();
    expect(unreliable).toEqual([2]);
    expect(t.server.counters.sent).toBe(0);
  });

  it('lets lazy frames ride in one Batch with the next frame, or go alone when the time is up', async () => {
    const t = setup({}, [Opcode.SnapshotAck]);
    const [c, s] = t.connect();
    const wire: number[] = [];
    // What travels, without the link's own acknowledgements (Ping every 100 ms).
    s.on('message', (data) => {
      if (data[0] !== Opcode.Ping) wire.push(data[0]!);
    });
    const arrived: string[] = [];
    t.server.on('message', (data, channel) => arrived.push(`${data[0]}:${channel}`));
    const ack = new Uint8Array([Opcode.SnapshotAck, 0, 7]);
    // An ack then a reliable frame: one message on the wire, two frames delivered in order.
    expect(t.client.send(ack, 'unreliable')).toBe(true);
    t.client.send(frame(1));
    await flush();
    expect(wire).toEqual([Opcode.Batch]);
    expect(arrived).toEqual([`${Opcode.SnapshotAck}:unreliable`, `${Opcode.RoomMessage}:reliable`]);
    expect(t.atServer).toEqual([1]);
    // An ack then an unreliable frame: one Batch on the unreliable channel.
    t.client.send(ack, 'unreliable');
    t.client.send(frame(2), 'unreliable');
    // An ack with no company: alone after lazyDelayMs.
    t.client.send(ack, 'unreliable');
    await flush();
    expect(wire).toEqual([Opcode.Batch, Opcode.Batch]);
    t.time.advance(19);
    await flush();
    expect(wire).toHaveLength(2);
    t.time.advance(1);
    await flush();
    expect(wire).toEqual([Opcode.Batch, Opcode.Batch, Opcode.SnapshotAck]);
    // Reliable counting holds through batches: the acknowledgement round trip empties the buffer.
    t.time.advance(100);
    await flush();
    expect(t.client.counters.pending).toBe(0);
    expect(t.server.counters.received).toBe(1);
    // Waiting lazy frames are dropped when the transport goes.
    t.client.send(ack, 'unreliable');
    t.cut();
    t.time.advance(50);
    await flush();
    expect(wire).toHaveLength(3);
    expect(c.state).toBe('closed');
  });

  it('replays a reliable frame that travelled in a batch exactly once after a cut', async () => {
    const t = setup({}, [Opcode.SnapshotAck]);
    t.connect();
    const ack = new Uint8Array([Opcode.SnapshotAck, 0, 1]);
    const newer = new Uint8Array([Opcode.SnapshotAck, 0, 2]);
    const acks: number[] = [];
    t.server.on('message', (data) => {
      if (data[0] === Opcode.SnapshotAck) acks.push(data[2]!);
    });
    // A newer ack replaces the waiting one; it rides with the reliable frame.
    t.client.send(ack, 'unreliable');
    t.client.send(newer, 'unreliable');
    t.client.send(frame(1));
    // Cut with frame 1 unacknowledged: the reattach replays it, and the server's count keeps
    // it from arriving twice.
    t.cut();
    t.client.send(frame(2));
    await flush();
    t.connect();
    await flush();
    expect(t.atServer).toEqual([1, 2]);
    expect(t.client.counters.replayed).toBeGreaterThan(0);
    expect(acks).toEqual([2]); // the replaced ack never travelled
    t.client.send(ack, 'unreliable');
    t.client.send(frame(3));
    await flush();
    expect(t.atServer).toEqual([1, 2, 3]);
    expect(acks).toEqual([2, 1]);
  });

  it('asks a lazyDelayMs function each time a frame starts waiting; 0 sends it at once', async () => {
    const time = createManualTime();
    let delay = 30;
    const client = createSessionLink({
      id: 's',
      role: 'client',
      time,
      lazyOpcodes: [Opcode.SnapshotAck],
      lazyDelayMs: () => delay,
    });
    const [c, s] = createMemoryConnectionPair();
    client.attach(c, 0);
    const wire: number[] = [];
    s.on('message', (data) => wire.push(data[2]!));
    client.send(new Uint8Array([Opcode.SnapshotAck, 0, 1]), 'unreliable');
    time.advance(29);
    await flush();
    expect(wire).toEqual([]);
    time.advance(1);
    await flush();
    expect(wire).toEqual([1]);
    delay = 0;
    client.send(new Uint8Array([Opcode.SnapshotAck, 0, 2]), 'unreliable');
    await flush();
    expect(wire).toEqual([1, 2]);
  });

  it('refuses batches from its user and lazy control opcodes', () => {
    const t = setup();
    t.connect();
    expect(code(() => t.client.send(encodeBatch([{ frame: frame(1), reliable: true }])))).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    for (const opcode of [Opcode.Ping, Opcode.Batch, 300])
      expect(
        code(() => createSessionLink({ id: 'x', role: 'client', lazyOpcodes: [opcode] })),
      ).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('closes with ProtocolError on a malformed batch or reliable frames in an unreliable one', async () => {
    for (const bad of [
      new Uint8Array([Opcode.Batch, 0, 9, Opcode.RoomMessage]),
      encodeBatch([{ frame: frame(1), reliable: true }]),
    ]) {
      const t = setup();
      const [c] = t.connect();
      const errors: string[] = [];
      t.server.on('error', (error) => errors.push(error.code));
      c.send(bad, 'unreliable');
      await flush();
      expect(t.server.state).toBe('closed');
      expect(errors).toHaveLength(1);
    }
  });

  it('round-trips batches and refuses what a batch never carries', () => {
    const frames = [
      { frame: frame(1), reliable: true },
      { frame: new Uint8Array(300).fill(Opcode.RoomMessage), reliable: false },
    ];
    const decoded = decodeBatch(encodeBatch(frames), 'reliable');
    expect(decoded.map((e) => [Array.from(e.frame), e.reliable])).toEqual(
      frames.map((e) => [Array.from(e.frame), e.reliable]),
    );
    expect(code(() => encodeBatch([]))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(
      code(() =>
        encodeBatch([{ frame: encodeGoodbye({ code: 1000, reason: '' }), reliable: true }]),
      ),
    ).toBe(ErrorCode.INVALID_ARGUMENT);
    const nested = encodeBatch([{ frame: frame(1), reliable: false }]);
    for (const bad of [
      new Uint8Array([Opcode.Batch, 0]),
      new Uint8Array([Opcode.Batch, 0, 0x80]),
      new Uint8Array([Opcode.Batch, 0, 2, Opcode.RoomMessage]),
      new Uint8Array([Opcode.RoomMessage, 0]),
      new Uint8Array([Opcode.Batch, 0, nested.byteLength * 2, ...nested]),
      new Uint8Array([
        Opcode.Batch,
        0,
        ...Array.from({ length: 33 }, () => [4, Opcode.RoomMessage, 0]).flat(),
      ]),
    ])
      expect(code(() => decodeBatch(bad, 'reliable'))).toBe(ErrorCode.DECODE_FAILED);
    const reliableInside = encodeBatch([{ frame: frame(1), reliable: true }]);
    expect(code(() => decodeBatch(reliableInside, 'unreliable'))).toBe(ErrorCode.PROTOCOL_ERROR);
  });

  it('emits detached (not close) when the transport drops, and close only when closed', async () => {
    const t = setup();
    t.connect();
    const events: string[] = [];
    t.server.on('detached', (info) => events.push(`detached ${info.code}`));
    t.server.on('close', (info) => events.push(`close ${info.code}`));
    t.cut();
    await flush();
    expect(t.server.state).toBe('open');
    expect(t.server.transport).toBeNull();
    expect(t.server.remoteAddress).toBe('detached');
    expect(t.server.stats.rttMs).toBe(0);
    t.server.close(CloseCode.Kicked, 'bye');
    t.server.close(); // idempotent
    expect(events).toEqual([`detached ${CloseCode.GoingAway}`, `close ${CloseCode.Kicked}`]);
    expect(t.server.state).toBe('closed');
    expect(() => t.server.send(frame(1))).toThrow(/closed/);
    expect(() => t.server.attach(createMemoryConnectionPair()[0], 0)).toThrow(/closed/);
  });

  it('closes the transport when the link is closed while attached', async () => {
    const t = setup();
    const [c] = t.connect();
    const closed = new Promise<number>((resolve) => c.on('close', (info) => resolve(info.code)));
    t.server.close(CloseCode.SessionExpired, 'expired');
    expect(await closed).toBe(CloseCode.SessionExpired);
  });

  it('refuses a peer count it cannot honour', async () => {
    const t = setup();
    t.connect();
    for (let i = 0; i < 5; i++) t.server.send(frame(i));
    await flush();
    t.time.advance(100); // the client acknowledges 5
    await flush();
    expect(t.server.counters.pending).toBe(0);
    const codeOf = (link: SessionLink, count: number) => {
      try {
        link.attach(createMemoryConnectionPair()[1], count);
      } catch (error) {
        return isTickwireError(error) ? error.code : 'other';
      }
      return 'ok';
    };
    expect(codeOf(t.server, 6)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(codeOf(t.server, 2)).toBe(ErrorCode.CONFLICT);
    expect(codeOf(t.server, -1)).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(codeOf(t.server, 5)).toBe('ok');
  });

  it('replaces an attached transport: the old one is no longer listened to', async () => {
    const t = setup();
    const [, oldServerEnd] = t.connect();
    const [oldClientEnd] = [t.client.transport!];
    const detached: number[] = [];
    t.server.on('detached', (info) => detached.push(info.code));
    const [c2, s2] = createMemoryConnectionPair();
    t.server.attach(s2, 0);
    t.client.attach(c2, 0);
    expect(detached).toEqual([CloseCode.Replaced]);
    oldClientEnd.send(frame(99)); // arrives on the replaced connection: ignored
    t.client.send(frame(1));
    await flush();
    expect(t.atServer).toEqual([1]);
    oldServerEnd.close();
  });

  it('closes with Backpressure when the replay buffer overflows', () => {
    const t = setup({ maxReplayBytes: 40 });
    const closes: number[] = [];
    t.server.on('close', (info) => closes.push(info.code));
    for (let i = 0; i < 10; i++) t.server.send(frame(i)); // 4 bytes each
    expect(t.server.state).toBe('open');
    expect(t.server.send(frame(10))).toBe(false);
    expect(closes).toEqual([CloseCode.Backpressure]);
  });

  it('passes Hello/Welcome/Goodbye up as control frames and refuses to send them', async () => {
    const t = setup();
    const [c] = t.connect();
    const control: number[] = [];
    t.server.on('control', (data) => control.push(data[0]!));
    c.send(encodeGoodbye({ code: 1000, reason: 'bye' }));
    await flush();
    expect(control).toEqual([Opcode.Goodbye]);
    expect(t.server.counters.received).toBe(0);
    expect(() => t.server.send(new Uint8Array([Opcode.Welcome, 0]))).toThrow(/control frames/);
    // A frame without its header would be counted here and ignored there.
    expect(() => t.server.send(new Uint8Array([Opcode.RoomMessage]))).toThrow(/header/);
  });

  it('closes with ProtocolError on an acknowledgement of frames never sent', async () => {
    const t = setup();
    const [c] = t.connect();
    const errors: string[] = [];
    t.server.on('error', (error) => errors.push(error.code));
    c.send(new Uint8Array([Opcode.Ping, 0, 50]));
    await flush();
    expect(errors).toEqual([ErrorCode.PROTOCOL_ERROR]);
    expect(t.server.state).toBe('closed');
  });

  it('validates its options', () => {
    expect(() => createSessionLink({ id: 'x', role: 'server', maxReplayBytes: 0 })).toThrow(
      /maxReplayBytes/,
    );
  });
});
