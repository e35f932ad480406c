import {
  CloseCode,
  createManualTime,
  createRandom,
  ErrorCode,
  type ManualTime,
  Opcode,
  type TickwireError,
} from '@tickwire/core';
import { createMemoryClient, createMemoryNetwork, type MemoryNetwork } from '@tickwire/core/memory';
import {
  createReplicationServer,
  createRpcClient,
  createRpcRegistry,
  createRpcServer,
  createWorld,
  defineEntityType,
  defineRpc,
  desyncDiagnosis,
  ownedFields,
  RESYNC_FLAG,
} from '@tickwire/replication';
import {
  encodeError,
  encodeRoomJoined,
  encodeRoomLeft,
  encodeRoomMessage,
} from '@tickwire/rooms/protocol';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Client, createClient } from './client.js';
import { type FakeServer, type FakeSession, flush, startFakeServer } from './fake-server.js';
import type { ClientRoom } from './room.js';

const clientMessages = defineMessages({
  move: { id: 1, schema: defineSchema({ dx: t.i8(), dy: t.i8() }) },
  say: { id: 2, schema: defineSchema({ text: t.string({ maxBytes: 16 }) }) },
});
const serverMessages = defineMessages({
  said: {
    id: 1,
    schema: defineSchema({ from: t.string({ maxBytes: 16 }), text: t.string({ maxBytes: 16 }) }),
  },
  score: { id: 2, schema: defineSchema({ points: t.u16() }) },
});
const roomOptions = { messages: { client: clientMessages, server: serverMessages } };

type ServerMessage = Parameters<typeof serverMessages.encode>;
const frameOf = (...[type, value]: ServerMessage) =>
  encodeRoomMessage(serverMessages.encode(type, value));

let network: MemoryNetwork;
let time: ManualTime;
let server: FakeServer;
let client: Client;
let session: FakeSession;

beforeEach(async () => {
  network = createMemoryNetwork();
  time = createManualTime();
  server = await startFakeServer({ network, time, name: 'rooms', echo: false });
  client = createClient({
    endpoints: [{ url: server.url, transport: createMemoryClient({ network }) }],
    time,
    random: createRandom(1),
    timesync: false,
    requestTimeoutMs: 2000,
  });
  await client.connect();
  session = server.session();
});

afterEach(() => client.close());

async function join(): Promise<
  ClientRoom<typeof clientMessages.definitions, typeof serverMessages.definitions>
> {
  return client.join('arena', undefined, roomOptions);
}

/** The room messages the fake server received, decoded, with their channel. */
function received(): [type: string, value: unknown, channel: string][] {
  return session.frames
    .filter((frame) => frame.opcode === Opcode.RoomMessage)
    .map((frame) => {
      const message = clientMessages.decode(frame.data.subarray(2));
      return [message.type, message.value, frame.channel];
    });
}

describe('send', () => {
  it('encodes with the client registry, reliable by default', async () => {
    const room = await join();
    expect(room.send('say', { text: 'hi' })).toBe(true);
    expect(room.send('move', { dx: 1, dy: -1 }, { reliable: true })).toBe(true);
    await flush();
    expect(received()).toEqual([
      ['say', { text: 'hi' }, 'reliable'],
      ['move', { dx: 1, dy: -1 }, 'reliable'],
    ]);
  });

  it('sends unreliably with reliable: false', async () => {
    const room = await join();
    expect(room.send('move', { dx: 0, dy: 1 }, { reliable: false })).toBe(true);
    await flush();
    expect(received()).toEqual([['move', { dx: 0, dy: 1 }, 'unreliable']]);
  });

  it('throws VALIDATION_FAILED naming the field, and sends nothing', async () => {
    const room = await join();
    expect(() => room.send('move', { dx: 300, dy: 0 })).toThrow(
      expect.objectContaining({
        code: ErrorCode.VALIDATION_FAILED,
        message: expect.stringContaining('dx'),
      }),
    );
    expect(() => room.send('nope' as 'move', { dx: 0, dy: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    await flush();
    expect(received()).toEqual([]);
  });

  it('throws NOT_FOUND without a client registry', async () => {
    const room = await client.join('arena');
    expect(() => room.send('anything', {} as never)).toThrow(
      expect.objectContaining({
        code: ErrorCode.NOT_FOUND,
        message: 'room arena: pass messages.client to send messages',
      }),
    );
  });

  it('throws INVALID_STATE after leaving', async () => {
    const room = await join();
    await room.leave();
    expect(() => room.send('say', { text: 'late' })).toThrow(
      expect.objectContaining({
        code: ErrorCode.INVALID_STATE,
        message: 'room arena: already left',
      }),
    );
  });
});

describe('receiving', () => {
  it('emits every decoded message and dispatches by type with onMessage', async () => {
    const room = await join();
    const all: unknown[] = [];
    const said: { from: string; text: string }[] = [];
    const scores: number[] = [];
    room.on('message', (message) => all.push(message));
    room.onMessage('said', (value) => said.push(value));
    const offScore = room.onMessage('score', (value) => scores.push(value.points));
    server.send(session, frameOf('said', { from: 'bob', text: 'yo' }));
    server.send(session, frameOf('score', { points: 10 }), 'unreliable');
    await flush();
    offScore();
    server.send(session, frameOf('score', { points: 20 }));
    await flush();
    expect(said).toEqual([{ from: 'bob', text: 'yo' }]);
    expect(scores).toEqual([10]);
    expect(all).toEqual([
      { type: 'said', value: { from: 'bob', text: 'yo' } },
      { type: 'score', value: { points: 10 } },
      { type: 'score', value: { points: 20 } },
    ]);
  });

  it("reports an undecodable message as the room's 'error' and carries on", async () => {
    const room = await join();
    const errors: TickwireError[] = [];
    const messages: unknown[] = [];
    room.on('error', (error) => errors.push(error));
    room.on('message', (message) => messages.push(message));
    server.send(session, encodeRoomMessage(new Uint8Array([99, 1, 2])));
    server.send(session, encodeRoomMessage(new Uint8Array([2])));
    server.send(session, frameOf('score', { points: 1 }));
    await flush();
    expect(errors.map((error) => error.code)).toEqual([
      ErrorCode.DECODE_FAILED,
      ErrorCode.DECODE_FAILED,
    ]);
    expect(errors[0]!.message).toContain('unknown message id 99');
    expect(messages).toEqual([{ type: 'score', value: { points: 1 } }]);
    expect(room.state).toBe('joined');
  });

  it("reports a message without a server registry as the room's 'error' (NOT_FOUND)", async () => {
    const room = await client.join('arena', undefined, { messages: { client: clientMessages } });
    const errors: TickwireError[] = [];
    room.on('error', (error) => errors.push(error));
    server.send(session, frameOf('score', { points: 1 }));
    await flush();
    expect(errors).toEqual([
      expect.objectContaining({
        code: ErrorCode.NOT_FOUND,
        message: 'room arena: a message arrived but no messages.server was given',
      }),
    ]);
  });

  it("reports an Error frame that answers no request as the room's 'error'", async () => {
    const room = await join();
    const roomErrors: TickwireError[] = [];
    const clientErrors: TickwireError[] = [];
    room.on('error', (error) => roomErrors.push(error));
    client.on('error', (error) => clientErrors.push(error));
    server.send(
      session,
      encodeError({ requestId: 0, code: 'VALIDATION_FAILED', message: "message 'move': dx" }),
    );
    await flush();
    expect(roomErrors).toEqual([
      expect.objectContaining({
        code: ErrorCode.VALIDATION_FAILED,
        message: "server: message 'move': dx",
      }),
    ]);
    expect(clientErrors).toEqual([]);
  });
});

describe('messages before the first listener', () => {
  it('are held and delivered, in order, once a listener is added', async () => {
    server.options.onJoin = (join, s) => {
      // Greetings right behind RoomJoined, before `await join()` returns to the caller.
      queueMicrotask(() => {
        s.link.send(frameOf('said', { from: 'room', text: 'welcome' }));
        s.link.send(frameOf('score', { points: 5 }));
      });
      return { roomId: 'arena-1', name: join.target };
    };
    const room = await join();
    await flush();
    const said: string[] = [];
    const all: string[] = [];
    room.onMessage('said', (value) => said.push(value.text));
    room.on('message', (message) => all.push(message.type));
    expect(said).toEqual([]); // delivered in a microtask, after the caller added its listeners
    await flush();
    expect(said).toEqual(['welcome']);
    expect(all).toEqual(['said', 'score']);
    server.send(session, frameOf('score', { points: 6 }));
    await flush();
    expect(all).toEqual(['said', 'score', 'score']);
  });

  it('come before messages that arrive while their delivery waits for its microtask', async () => {
    const room = await join();
    const all: string[] = [];
    // The first listener is added while a burst of frames is being read (here: on the
    // 'error' of an undecodable one); the frame right behind must not overtake the held one.
    room.on('error', () => room.on('message', (message) => all.push(message.type)));
    server.send(session, frameOf('said', { from: 'room', text: 'welcome' }));
    server.send(session, encodeRoomMessage(new Uint8Array([99])));
    server.send(session, frameOf('score', { points: 5 }));
    await flush();
    expect(all).toEqual(['said', 'score']);
  });

  it(`are dropped beyond a limit, with a LIMIT_EXCEEDED 'error' each`, async () => {
    const room = await join();
    const errors: TickwireError[] = [];
    room.on('error', (error) => errors.push(error));
    for (let i = 0; i < 260; i++) server.send(session, frameOf('score', { points: i }));
    await flush();
    expect(errors).toHaveLength(4);
    expect(errors[0]!.code).toBe(ErrorCode.LIMIT_EXCEEDED);
    const points: number[] = [];
    room.onMessage('score', (value) => points.push(value.points));
    await flush();
    expect(points).toEqual(Array.from({ length: 256 }, (_, i) => i));
  });
});

describe('leave', () => {
  it("resolves when the server confirms, with a 'leave' event", async () => {
    const room = await join();
    const events: [number, string][] = [];
    room.on('leave', (code, reason) => events.push([code, reason]));
    const leaving = room.leave();
    expect(room.state).toBe('joined');
    await leaving;
    expect(room.state).toBe('left');
    expect(events).toEqual([[1000, 'left']]);
    expect(client.room).toBeNull();
    expect(session.frames.filter((frame) => frame.opcode === Opcode.LeaveRoom)).toHaveLength(1);
    // Already left: at once, nothing sent.
    await room.leave();
    await flush();
    expect(session.frames.filter((frame) => frame.opcode === Opcode.LeaveRoom)).toHaveLength(1);
    // And a new room can be joined.
    await expect(join()).resolves.toMatchObject({ id: 'arena-2' });
  });

  it('sends one LeaveRoom for concurrent leave() calls, and resolves them all', async () => {
    const room = await join();
    await Promise.all([room.leave(), room.leave(), room.leave()]);
    expect(session.frames.filter((frame) => frame.opcode === Opcode.LeaveRoom)).toHaveLength(1);
  });

  it('times out without an answer; a later leave() asks again', async () => {
    const room = await join();
    server.options.answerLeave = false;
    const leaving = room.leave().catch((error: TickwireError) => error);
    await flush();
    time.advance(2000);
    const error = await leaving;
    expect(error).toMatchObject({
      code: ErrorCode.TIMEOUT,
      message: 'room arena: no answer to leaving within 2000 ms',
    });
    expect(room.state).toBe('joined');

    server.options.answerLeave = true;
    await room.leave();
    expect(room.state).toBe('left');
    expect(session.frames.filter((frame) => frame.opcode === Opcode.LeaveRoom)).toHaveLength(2);
  });

  it("a kick (RoomLeft 4004) is a 'leave' event and ends the room", async () => {
    const room = await join();
    const events: [number, string][] = [];
    room.on('leave', (code, reason) => events.push([code, reason]));
    server.kick(session, CloseCode.Kicked, 'afk');
    await flush();
    expect(events).toEqual([[CloseCode.Kicked, 'afk']]);
    expect(room.state).toBe('left');
    expect(client.room).toBeNull();
    expect(client.state).toBe('open');
    expect(() => room.send('say', { text: 'hey' })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );
    // Messages for the room that come after are dropped.
    const messages: unknown[] = [];
    room.on('message', (message) => messages.push(message));
    server.send(session, frameOf('score', { points: 1 }));
    await flush();
    expect(messages).toEqual([]);
  });

  it('ignores a RoomLeft for another room', async () => {
    const room = await join();
    server.send(session, encodeRoomLeft({ roomId: 'elsewhere', code: 1001, reason: 'disposed' }));
    await flush();
    expect(room.state).toBe('joined');
    expect(client.room).toBe(room);
  });

  it('resolves a pending leave() when the client closes', async () => {
    const room = await join();
    server.options.answerLeave = false;
    const leaving = room.leave();
    await flush();
    client.close();
    await expect(leaving).resolves.toBeUndefined();
    expect(room.state).toBe('left');
  });
});

describe('replication', () => {
  const Player = defineEntityType('player', { x: t.u16(), hp: t.u8() });

  /** The server answers a join with RoomJoined and, in the same burst, `snapshot`. */
  const sendOnJoin = (snapshot: Uint8Array) => {
    server.options.onJoin = (join, s) => {
      queueMicrotask(() => {
        const frame = new Uint8Array(2 + snapshot.byteLength);
        frame[0] = Opcode.Snapshot;
        frame.set(snapshot, 2);
        s.link.send(frame, 'unreliable');
      });
      return { roomId: `${join.target}-r`, name: join.target };
    };
  };

  /** The server answers a join with RoomJoined and, in the same burst, a snapshot of one player. */
  const snapshotOnJoin = (values: { x: number; hp: number }) => {
    const world = createWorld({ types: [Player] });
    const replication = createReplicationServer({ world });
    replication.addClient('c');
    world.spawn(Player, values);
    replication.update();
    const snapshot = replication.snapshotFor('c');
    sendOnJoin(snapshot);
  };

  it('gives the room a replica that applies the snapshot right behind RoomJoined', async () => {
    snapshotOnJoin({ x: 7, hp: 100 });
    const room = await client.join('arena', undefined, { replication: { types: [Player] } });
    await flush();
    expect(room.replica).not.toBeNull();
    expect(room.replication).not.toBeNull();
    expect(room.replica!.size).toBe(1);
    expect([...room.replica!.entities()][0]!.values()).toEqual({ x: 7, hp: 100 });
    // The replica acknowledged it: the ack waits for company, here half the 50 ms tick interval
    // (the RTT is unknown: no transport RTT, no clock sync).
    const acks = () => session.frames.filter((frame) => frame.opcode === Opcode.SnapshotAck);
    expect(acks()).toHaveLength(0);
    time.advance(25);
    await flush();
    expect(acks()).toHaveLength(1);

    server.kick(session);
    await flush();
    expect(room.replication!.closed).toBe(true);
  });

  it('sends a snapshot ack with the next frame instead of alone', async () => {
    snapshotOnJoin({ x: 1, hp: 2 });
    const room = await client.join('arena', undefined, {
      ...roomOptions,
      replication: { types: [Player] },
    });
    await flush();
    expect(room.replica!.size).toBe(1);
    const before = session.frames.length;
    // No time passes: the ack goes with the room message, in one Batch, ahead of it.
    room.send('say', { text: 'hi' });
    await flush();
    expect(session.frames.slice(before).map((frame) => frame.opcode)).toEqual([
      Opcode.SnapshotAck,
      Opcode.RoomMessage,
    ]);
    time.advance(100);
    await flush();
    expect(session.frames.filter((frame) => frame.opcode === Opcode.SnapshotAck)).toHaveLength(1);
  });

  it('writes owned fields with the ownership option, and refuses owned types without it', async () => {
    const Ship = defineEntityType('ship', { x: t.u16(), hp: t.u8() }, { owned: ['x'] });
    const joins = () => session.frames.filter((frame) => frame.opcode === Opcode.JoinRoom);
    // Without it the request fails at once, before a seat is asked for.
    await expect(
      client.join('arena', undefined, { replication: { types: [Ship] } }),
    ).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
      message: expect.stringContaining("entity type 'ship' has owned fields"),
    });
    await flush();
    expect(joins()).toHaveLength(0);

    const world = createWorld({ types: [Ship] });
    const replication = createReplicationServer({ world });
    replication.addClient('c');
    const ship = world.spawn(Ship, { x: 1, hp: 2 }, { owner: 'c' });
    replication.update();
    const snapshot = replication.snapshotFor('c');
    sendOnJoin(snapshot);
    const room = await client.join('arena', undefined, {
      replication: { types: [Ship], ownership: ownedFields },
    });
    await flush();
    const mine = room.replica!.get(ship.id)!;
    expect(mine.owned).toBe(true);
    room.replica!.set(mine, 'x', 7);
    expect(mine.get('x')).toBe(7);
    expect(room.replication!.sendChanges()).toBe(true);
    await flush();
    const changes = session.frames.filter((frame) => frame.opcode === Opcode.OwnerChanges);
    expect(changes).toHaveLength(1);
    expect(replication.receiveChanges('c', changes[0]!.data.subarray(2)).accepted).toBe(1);
    expect(ship.get('x')).toBe(7);
  });

  it('names the field of a desync with the diagnosis option', async () => {
    const world = createWorld({ types: [Player] });
    const replication = createReplicationServer({ world, checksums: true });
    replication.addClient('c');
    const player = world.spawn(Player, { x: 1, hp: 2 });
    let send = (_opcode: number, _flags: number, _payload: Uint8Array): void => {};
    server.options.onJoin = (join, s) => {
      send = (opcode, flags, payload) => {
        const frame = new Uint8Array(2 + payload.byteLength);
        frame[0] = opcode;
        frame[1] = flags;
        frame.set(payload, 2);
        s.link.send(frame, 'reliable');
      };
      return { roomId: `${join.target}-r`, name: join.target };
    };
    const room = await client.join('arena', undefined, {
      replication: { types: [Player], diagnosis: desyncDiagnosis },
    });
    const replica = room.replica!;
    const desyncs: string[] = [];
    replica.on('desync', (desync) => desyncs.push(desync.path));
    const snapshot = async () => {
      replication.update();
      send(Opcode.Snapshot, 0, replication.snapshotFor('c'));
      await flush();
      replication.receiveAck('c', replica.ack());
    };
    await snapshot();
    (replica.get(player.id) as unknown as { fieldValues: unknown[] }).fieldValues[1] = 99;
    player.set('x', 3);
    await snapshot();
    expect(replica.mismatchedSnapshot).toBe(replica.lastSnapshotId);
    send(Opcode.Snapshot, RESYNC_FLAG, replication.resync('c', replica.mismatchedSnapshot)!);
    await flush();
    expect(desyncs).toEqual([`entity ${player.id} (player).hp`]);
    expect(room.replication!.stats.desyncs).toBe(1);
  });

  it('refuses replication options without entity types, before a seat is asked for', async () => {
    for (const types of [undefined, [{ name: 'player' }]])
      await expect(
        client.join('arena', undefined, { replication: { types: types as never } }),
      ).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await flush();
    expect(session.frames.filter((frame) => frame.opcode === Opcode.JoinRoom)).toHaveLength(0);
  });

  it("passes the server's rpc frames to the rpc option", async () => {
    const hit = defineRpc('hit', t.object({ damage: t.u8() }), { direction: 'toClient' });
    const registry = createRpcRegistry([hit]);
    let toClient = (_bytes: Uint8Array): void => {};
    const rpcServer = createRpcServer({
      registry,
      clock: time,
      clients: () => ['c'],
      send: (_id, bytes) => toClient(bytes),
    });
    server.options.onJoin = (join, s) => {
      toClient = (bytes) => {
        const frame = new Uint8Array(2 + bytes.byteLength);
        frame[0] = Opcode.Rpc;
        frame.set(bytes, 2);
        s.link.send(frame, 'reliable');
      };
      return { roomId: `${join.target}-r`, name: join.target };
    };
    const rpc = createRpcClient({ registry, send: () => {} });
    const hits: number[] = [];
    rpc.on(hit, ({ damage }) => hits.push(damage));
    const room = await client.join('arena', undefined, { replication: { types: [Player], rpc } });
    rpcServer.toClient('c', hit, { damage: 12 });
    await flush();
    expect(hits).toEqual([12]);
    expect(room.replication!.stats.rpcs).toBe(1);
    expect(room.replication!.stats.other).toBe(0);
  });

  it('asks for a resync on a checksum mismatch unless resyncOnMismatch is false', async () => {
    const resyncs: number[] = [];
    for (const resyncOnMismatch of [undefined, false]) {
      const world = createWorld({ types: [Player] });
      const replication = createReplicationServer({ world, checksums: true });
      replication.addClient('c');
      const player = world.spawn(Player, { x: 1, hp: 2 });
      replication.update();
      sendOnJoin(replication.snapshotFor('c'));
      const room = await client.join('arena', undefined, {
        replication: { types: [Player], resyncOnMismatch },
      });
      await flush();
      const replica = room.replica!;
      replication.receiveAck('c', replica.ack());
      (replica.get(player.id) as unknown as { fieldValues: unknown[] }).fieldValues[1] = 99;
      player.set('x', 3);
      replication.update();
      const snapshot = replication.snapshotFor('c');
      const frame = new Uint8Array(2 + snapshot.byteLength);
      frame[0] = Opcode.Snapshot;
      frame.set(snapshot, 2);
      server.send(session, frame);
      await flush();
      expect(replica.mismatchedSnapshot).toBe(replica.lastSnapshotId);
      resyncs.push(room.replication!.stats.resyncRequests);
      const requests = session.frames.filter(
        (f) => f.opcode === Opcode.SnapshotAck && f.data[1] === RESYNC_FLAG,
      );
      expect(requests).toHaveLength(resyncs.reduce((a, b) => a + b, 0));
      await room.leave();
    }
    expect(resyncs).toEqual([1, 0]);
  });

  it('frames sent before the room exists do not reach a room joined later', async () => {
    server.send(session, frameOf('score', { points: 1 }));
    await flush();
    const room = await join();
    const messages: unknown[] = [];
    room.on('message', (message) => messages.push(message));
    await flush();
    expect(messages).toEqual([]);
    expect(room.metadata).toEqual({ mode: 0 });
  });
});

describe('a RoomJoined nobody asked for', () => {
  it('is ignored', async () => {
    server.send(
      session,
      encodeRoomJoined({ requestId: 99, roomId: 'stray', name: 'stray', metadata: undefined }),
    );
    await flush();
    expect(client.room).toBeNull();
  });
});
