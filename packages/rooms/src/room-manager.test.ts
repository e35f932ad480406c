import {
  CloseCode,
  type Connection,
  createManualTime,
  createRandom,
  ErrorCode,
  isTickwireError,
  Opcode,
  TickwireError,
} from '@tickwire/core';
import {
  createMemoryConnectionPair,
  createMemoryLogger,
  createMemoryMetrics,
} from '@tickwire/core/memory';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { describe, expect, it } from 'vitest';
import { defineRoom, type Room, type RoomClient, type RoomMember } from './room.js';
import { createRoomManager, type RoomManagerOptions } from './room-manager.js';

const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const clientMessages = defineMessages({
  move: { id: 0, schema: defineSchema({ dir: t.enum(['left', 'right']) }) },
  chat: { id: 1, schema: defineSchema({ text: t.string({ maxBytes: 8 }) }) },
  ping: { id: 2, schema: defineSchema({}) },
});
const serverMessages = defineMessages({
  said: {
    id: 0,
    schema: defineSchema({ from: t.string({ maxBytes: 64 }), text: t.string({ maxBytes: 8 }) }),
  },
});

interface TestClient {
  client: RoomClient;
  remote: Connection;
  /** RoomMessage payloads the client received, decoded with serverMessages. */
  received: { type: string; value: unknown; channel: string }[];
}

function connect(sessionId: string, userId?: string): TestClient {
  const [server, remote] = createMemoryConnectionPair();
  const received: TestClient['received'] = [];
  remote.on('message', (data, channel) => {
    // Room messages only: `[Opcode.RoomMessage][flags 0][registry bytes]`.
    if (data[0] === Opcode.RoomMessage && data[1] === 0) {
      received.push({ ...serverMessages.decode(data.subarray(2)), channel });
    }
  });
  return {
    client: { sessionId, ...(userId === undefined ? {} : { userId }), connection: server },
    remote,
    received,
  };
}

function setup(options: RoomManagerOptions = {}) {
  const time = createManualTime();
  const metrics = createMemoryMetrics();
  const logger = createMemoryLogger();
  const manager = createRoomManager({
    time,
    metrics,
    logger,
    random: createRandom(1),
    ...options,
  });
  const log: string[] = [];
  manager.on('joined', (client, room) => log.push(`joined ${client.sessionId} ${room.name}`));
  manager.on('left', (client, room, code, reason) =>
    log.push(`left ${client.sessionId} ${room.name} ${code} ${reason}`),
  );
  manager.on('created', (room) => log.push(`created ${room.name}`));
  manager.on('disposed', (room) => log.push(`disposed ${room.name}`));
  return { time, metrics, logger, manager, log };
}

async function failure(promise: Promise<unknown>): Promise<TickwireError> {
  try {
    await promise;
  } catch (error) {
    if (isTickwireError(error)) return error;
    throw error;
  }
  throw new Error('expected a TickwireError');
}

function thrown(run: () => unknown): TickwireError {
  try {
    run();
  } catch (error) {
    if (isTickwireError(error)) return error;
    throw error;
  }
  throw new Error('expected a TickwireError');
}

const arena = defineRoom({
  capacity: 2,
  tickRateHz: 0,
  messages: { client: clientMessages, server: serverMessages },
  options: defineSchema({ mode: t.enum(['ffa', 'teams']) }),
  state: (_room, options) => ({ mode: options.mode, said: [] as string[] }),
  onMessage: {
    chat(room, member, value) {
      room.state.said.push(value.text);
      room.broadcast('said', { from: member.sessionId, text: value.text });
    },
  },
});

describe('joining', () => {
  it('joinOrCreate fills a room to capacity, then creates the next one', async () => {
    const { manager, log, metrics } = setup();
    manager.define('arena', arena);
    const [a, b, c] = [connect('a'), connect('b'), connect('c')];
    const first = await manager.joinOrCreate('arena', a.client, { mode: 'ffa' });
    const same = await manager.joinOrCreate('arena', b.client, { mode: 'ffa' });
    const next = await manager.joinOrCreate('arena', c.client, { mode: 'teams' });
    expect(same).toBe(first);
    expect(next).not.toBe(first);
    expect(first.state).toEqual({ mode: 'ffa', said: [] });
    expect([...first.clients.keys()]).toEqual(['a', 'b']);
    expect(manager.roomOf(b.client)).toBe(first);
    expect(manager.roomOf('c')).toBe(next);
    expect(manager.get(first.id)).toBe(first);
    expect(manager.rooms()).toEqual([first, next]);
    expect(manager.list('arena')).toEqual([
      { id: first.id, name: 'arena', clients: 2, capacity: 2, metadata: {}, locked: false },
      { id: next.id, name: 'arena', clients: 1, capacity: 2, metadata: {}, locked: false },
    ]);
    expect(manager.list('other')).toEqual([]);
    expect(log).toEqual([
      'created arena',
      'joined a arena',
      'joined b arena',
      'created arena',
      'joined c arena',
    ]);
    expect(metrics.value('tickwire_room_instances', { room: 'arena' })).toBe(2);
    expect(metrics.value('tickwire_room_clients', { room: 'arena' })).toBe(3);
  });

  it('join needs a room with a seat: NOT_FOUND without one, LIMIT_EXCEEDED when all are full', async () => {
    const { manager } = setup();
    manager.define('arena', arena);
    const none = await failure(manager.join('arena', connect('a').client, { mode: 'ffa' }));
    expect(none.code).toBe(ErrorCode.NOT_FOUND);
    expect(none.message).toMatch(/joinOrCreate/);
    expect((await failure(manager.join('nope', connect('a').client))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    const room = await manager.create('arena', connect('a').client, { mode: 'ffa' });
    expect(await manager.join('arena', connect('b').client, { mode: 'ffa' })).toBe(room);
    const full = await failure(manager.join('arena', connect('c').client, { mode: 'ffa' }));
    expect(full.code).toBe(ErrorCode.LIMIT_EXCEEDED);
    expect(full.details).toMatchObject({ reason: 'full' });
  });

  it('joinById: NOT_FOUND, FORBIDDEN when locked, LIMIT_EXCEEDED when full', async () => {
    const { manager } = setup();
    manager.define('arena', arena);
    const room = await manager.create('arena', connect('a').client, { mode: 'ffa' });
    expect((await failure(manager.joinById('zzz', connect('b').client))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    room.lock();
    const locked = await failure(manager.joinById(room.id, connect('b').client, { mode: 'ffa' }));
    expect(locked).toMatchObject({ code: ErrorCode.FORBIDDEN, details: { reason: 'locked' } });
    expect(manager.list()[0]?.locked).toBe(true);
    // A locked room is skipped by matchmaking: joinOrCreate makes another one.
    const other = await manager.joinOrCreate('arena', connect('x').client, { mode: 'ffa' });
    expect(other).not.toBe(room);
    room.unlock();
    expect(await manager.joinById(room.id, connect('b').client, { mode: 'ffa' })).toBe(room);
    const full = await failure(manager.joinById(room.id, connect('c').client, { mode: 'ffa' }));
    expect(full).toMatchObject({
      code: ErrorCode.LIMIT_EXCEEDED,
      details: { reason: 'full', capacity: 2 },
    });
    expect(full.message).toMatch(/full \(capacity 2\)/);
  });

  it('refuses a client already in or joining a room (CONFLICT)', async () => {
    const { manager } = setup();
    let admit: (value: boolean) => void = () => {};
    manager.define('slow', {
      tickRateHz: 0,
      onAuth: () => new Promise<boolean>((resolve) => (admit = resolve)),
    });
    manager.define('arena', arena);
    const a = connect('a');
    const pending = manager.create('slow', a.client);
    await flush();
    const joining = await failure(manager.create('arena', a.client, { mode: 'ffa' }));
    expect(joining).toMatchObject({ code: ErrorCode.CONFLICT });
    expect(joining.message).toMatch(/already joining/);
    admit(true);
    const room = await pending;
    const inRoom = await failure(manager.create('arena', a.client, { mode: 'ffa' }));
    expect(inRoom).toMatchObject({ code: ErrorCode.CONFLICT, details: { roomId: room.id } });
    expect(inRoom.message).toMatch(/leave it first/);
  });

  it('validates options with a defineSchema schema: VALIDATION_FAILED names the field', async () => {
    const { manager } = setup();
    manager.define('arena', arena);
    const error = await failure(
      manager.joinOrCreate('arena', connect('a').client, { mode: 'duel' }),
    );
    expect(error.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(error.message).toMatch(/invalid options for room 'arena': mode: /);
    expect(error.details).toMatchObject({ room: 'arena', path: ['mode'] });
    expect(manager.rooms()).toEqual([]);
  });

  it('validates options with any Standard Schema, sync or async, and passes its output on', async () => {
    const { manager } = setup();
    const seen: unknown[] = [];
    const level = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) => {
          const level = (value as { level?: unknown } | undefined)?.level;
          return typeof level === 'string'
            ? { value: { level: Number(level) } }
            : { issues: [{ message: 'expected a string', path: [{ key: 'level' }, 0] }] };
        },
      },
    };
    manager.define('lobby', {
      tickRateHz: 0,
      options: level,
      onJoin: (_room, _member, options) => {
        seen.push(options);
      },
    });
    await manager.joinOrCreate('lobby', connect('a').client, { level: '3' });
    expect(seen).toEqual([{ level: 3 }]);
    const error = await failure(manager.joinOrCreate('lobby', connect('b').client, {}));
    expect(error).toMatchObject({
      code: ErrorCode.VALIDATION_FAILED,
      details: { path: ['level', 0] },
    });
    expect(error.message).toMatch(/level\[0\]: expected a string/);
    manager.define('broken', {
      tickRateHz: 0,
      options: {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: () => {
            throw new Error('validator bug');
          },
        },
      },
    });
    const broken = await failure(manager.create('broken', connect('c').client));
    expect(broken.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(broken.message).toMatch(/validator threw: validator bug/);
  });

  it('onAuth: falsy or a throw refuses with FORBIDDEN, a TickwireError keeps its code, a value is kept', async () => {
    const { manager, metrics, log } = setup();
    const disposed: string[] = [];
    manager.define('vip', {
      tickRateHz: 0,
      onAuth: (_room, client) => {
        if (client.sessionId === 'no') return false;
        if (client.sessionId === 'bug') throw new Error('db down');
        if (client.sessionId === 'who') throw new TickwireError(ErrorCode.UNAUTHORIZED, 'log in');
        return { tier: 'gold' };
      },
      onDispose: (room) => {
        disposed.push(room.id);
      },
    });
    const no = await failure(manager.create('vip', connect('no').client));
    expect(no).toMatchObject({ code: ErrorCode.FORBIDDEN, details: { reason: 'auth' } });
    const bug = await failure(manager.create('vip', connect('bug').client));
    expect(bug).toMatchObject({ code: ErrorCode.FORBIDDEN, details: { hook: 'onAuth' } });
    expect(bug.message).toMatch(/onAuth threw: db down/);
    expect((bug.cause as Error).message).toBe('db down');
    expect((await failure(manager.create('vip', connect('who').client))).code).toBe(
      ErrorCode.UNAUTHORIZED,
    );
    await flush();
    // The rooms created for refused clients were disposed, and nothing leaked.
    expect(disposed).toHaveLength(3);
    expect(manager.rooms()).toEqual([]);
    expect(manager.roomOf('no')).toBeUndefined();
    expect(metrics.value('tickwire_room_hook_errors_total', { room: 'vip', hook: 'onAuth' })).toBe(
      1,
    );
    const room = await manager.create('vip', connect('ok').client);
    expect(room.clients.get('ok')?.authResult).toEqual({ tier: 'gold' });
    expect(log.filter((line) => line.startsWith('joined'))).toEqual(['joined ok vip']);
  });

  it('a throwing onJoin refuses the join and leaves the manager consistent', async () => {
    const { manager, log, metrics } = setup();
    const left: string[] = [];
    manager.define('picky', {
      tickRateHz: 0,
      autoDispose: false,
      onJoin: (_room, member) => {
        if (member.sessionId === 'bad') throw new Error('boom');
      },
      onLeave: (_room, member) => {
        left.push(member.sessionId);
      },
    });
    const room = await manager.create('picky', connect('good').client);
    const error = await failure(manager.joinById(room.id, connect('bad').client));
    expect(error).toMatchObject({ code: ErrorCode.INTERNAL, details: { hook: 'onJoin' } });
    expect([...room.clients.keys()]).toEqual(['good']);
    expect(manager.roomOf('bad')).toBeUndefined();
    expect(left).toEqual([]);
    expect(log).toEqual(['created picky', 'joined good picky']);
    expect(metrics.value('tickwire_room_clients', { room: 'picky' })).toBe(1);
    // The same client can try again elsewhere.
    manager.define('open', { tickRateHz: 0 });
    await manager.create('open', connect('bad').client);
    expect(manager.roomOf('bad')?.name).toBe('open');
  });

  it('a throwing state factory or onCreate refuses the create; no room remains', async () => {
    const { manager, log } = setup();
    manager.define('a', {
      tickRateHz: 0,
      state: () => {
        throw new Error('no state');
      },
    });
    manager.define('b', {
      tickRateHz: 0,
      onCreate: async () => {
        throw new TickwireError(ErrorCode.LIMIT_EXCEEDED, 'no more rooms today');
      },
    });
    const a = await failure(manager.create('a', connect('x').client));
    expect(a).toMatchObject({ code: ErrorCode.INTERNAL, details: { hook: 'state' } });
    const b = await failure(manager.joinOrCreate('b', connect('x').client));
    expect(b.message).toBe('no more rooms today');
    expect(manager.rooms()).toEqual([]);
    expect(manager.list()).toEqual([]);
    expect(log).toEqual([]);
    expect(manager.roomOf('x')).toBeUndefined();
  });

  it('concurrent joinOrCreate calls share the room being created', async () => {
    const { manager } = setup();
    let created = 0;
    manager.define('lazy', {
      tickRateHz: 0,
      onCreate: async () => {
        created++;
        await flush();
      },
    });
    const rooms = await Promise.all(
      ['a', 'b', 'c'].map((id) => manager.joinOrCreate('lazy', connect(id).client)),
    );
    expect(created).toBe(1);
    expect(new Set(rooms).size).toBe(1);
    expect(rooms[0]!.clients.size).toBe(3);
  });

  it('checks its arguments (INVALID_ARGUMENT) and refuses joins after close (CLOSED)', async () => {
    const { manager } = setup();
    manager.define('open', { tickRateHz: 0 });
    const bad: unknown[] = [
      null,
      { sessionId: '', connection: connect('x').client.connection },
      { sessionId: 'x' },
    ];
    for (const client of bad) {
      expect((await failure(manager.create('open', client as RoomClient))).code).toBe(
        ErrorCode.INVALID_ARGUMENT,
      );
    }
    expect((await failure(manager.create('', connect('x').client))).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect((await failure(manager.leave(5 as never))).code).toBe(ErrorCode.INVALID_ARGUMENT);
    await manager.close();
    expect((await failure(manager.create('open', connect('x').client))).code).toBe(
      ErrorCode.CLOSED,
    );
    expect(thrown(() => manager.define('late', {})).code).toBe(ErrorCode.CLOSED);
  });
});

it('refuses to create a room when the random source repeats itself (INTERNAL)', async () => {
  const { manager } = setup({ random: { next: () => 0.5 } });
  manager.define('game', { tickRateHz: 0 });
  await manager.create('game', connect('a').client);
  const error = await failure(manager.create('game', connect('b').client));
  expect(error.code).toBe(ErrorCode.INTERNAL);
  expect(error.message).toMatch(/room ids were all taken/);
});

describe('define', () => {
  it('takes a name or the definition name; CONFLICT on a second definition', () => {
    const { manager } = setup();
    manager.define(defineRoom({ name: 'named', tickRateHz: 0 }));
    manager.define('other', defineRoom({ name: 'ignored', tickRateHz: 0 }));
    expect(thrown(() => manager.define('named', {})).code).toBe(ErrorCode.CONFLICT);
    expect(thrown(() => manager.define({})).message).toMatch(/give the room type a name/);
    expect(thrown(() => manager.define('x', { capacity: 0 })).message).toMatch(
      /room 'x': capacity must be a positive integer, got 0/,
    );
  });
});

describe('leaving and disposal', () => {
  it('leave runs onLeave, emits leave and left (1000), and disposes the empty room', async () => {
    const { manager, log, metrics } = setup();
    const calls: string[] = [];
    manager.define('game', {
      tickRateHz: 0,
      onLeave: (_room, member, consented) => {
        calls.push(`onLeave ${member.sessionId} ${consented}`);
      },
      onDispose: () => {
        calls.push('onDispose');
      },
    });
    const room = await manager.create('game', connect('a').client);
    room.on('leave', (member, consented) => calls.push(`leave ${member.sessionId} ${consented}`));
    room.on('dispose', () => calls.push('dispose'));
    await manager.leave('a');
    await manager.leave('a');
    await flush();
    expect(calls).toEqual(['onLeave a true', 'leave a true', 'onDispose', 'dispose']);
    expect(log.slice(2)).toEqual(['left a game 1000 left', 'disposed game']);
    expect(room.disposed).toBe(true);
    expect(manager.get(room.id)).toBeUndefined();
    expect(metrics.value('tickwire_room_instances', { room: 'game' })).toBe(0);
    expect(metrics.value('tickwire_room_clients', { room: 'game' })).toBe(0);
  });

  it('a dropped client leaves with 1001 unless told otherwise; autoDispose false keeps the room', async () => {
    const { manager, log } = setup();
    manager.define('persistent', { tickRateHz: 0, autoDispose: false });
    const room = await manager.create('persistent', connect('a').client);
    await manager.joinById(room.id, connect('b').client);
    await manager.leave('a', false);
    await manager.leave(connect('b').client, false, CloseCode.SessionExpired, 'session expired');
    expect(log.slice(3)).toEqual([
      'left a persistent 1001 disconnected',
      'left b persistent 4009 session expired',
    ]);
    expect(manager.rooms()).toEqual([room]);
    expect(room.clients.size).toBe(0);
  });

  it('kick removes a member with 4004 (not consented); kicking a non-member does nothing', async () => {
    const { manager, log } = setup();
    const consents: boolean[] = [];
    manager.define('game', {
      tickRateHz: 0,
      onLeave: (_room, _member, consented) => {
        consents.push(consented);
      },
    });
    const room = await manager.create('game', connect('a').client);
    await manager.joinById(room.id, connect('b').client);
    await room.kick('a', 'cheating');
    await room.kick(connect('zz').client);
    expect(consents).toEqual([false]);
    expect(log).toContain('left a game 4004 cheating');
    await room.kick('b');
    expect(log).toContain('left b game 4004 kicked');
  });

  it('dispose removes every member (1001), runs onDispose once, and is idempotent', async () => {
    const { manager, log } = setup();
    let disposals = 0;
    manager.define('game', {
      tickRateHz: 0,
      onDispose: () => {
        disposals++;
      },
    });
    const room = await manager.create('game', connect('a').client);
    await manager.joinById(room.id, connect('b').client);
    await Promise.all([room.dispose(), manager.dispose(room.id), room.dispose()]);
    await manager.dispose('unknown');
    expect(disposals).toBe(1);
    expect(log.slice(3)).toEqual([
      'left a game 1001 room disposed',
      'left b game 1001 room disposed',
      'disposed game',
    ]);
    expect(manager.roomOf('a')).toBeUndefined();
    expect((await failure(manager.joinById(room.id, connect('c').client))).code).toBe(
      ErrorCode.NOT_FOUND,
    );
  });

  it('close disposes every room', async () => {
    const { manager, log } = setup();
    manager.define('game', { tickRateHz: 0 });
    await manager.create('game', connect('a').client);
    await manager.create('game', connect('b').client);
    await manager.close();
    expect(manager.rooms()).toEqual([]);
    expect(log.filter((line) => line.startsWith('disposed'))).toHaveLength(2);
  });

  it('hook errors in onLeave and onDispose are logged and counted; disposal completes', async () => {
    const { manager, metrics, logger } = setup();
    manager.define('buggy', {
      tickRateHz: 0,
      onLeave: () => {
        throw new Error('leave bug');
      },
      onDispose: async () => {
        throw new Error('dispose bug');
      },
    });
    const room = await manager.create('buggy', connect('a').client);
    await manager.leave('a');
    await flush();
    expect(room.disposed).toBe(true);
    expect(manager.rooms()).toEqual([]);
    expect(
      metrics.value('tickwire_room_hook_errors_total', { room: 'buggy', hook: 'onLeave' }),
    ).toBe(1);
    expect(
      metrics.value('tickwire_room_hook_errors_total', { room: 'buggy', hook: 'onDispose' }),
    ).toBe(1);
    expect(logger.records.filter((r) => r.level === 'error')).toHaveLength(2);
    expect(logger.records[0]?.fields).toMatchObject({ room: 'buggy', roomId: room.id });
  });

  it('a client leaving during onAuth makes its join fail; during onJoin it joins, then leaves', async () => {
    const { manager, log } = setup();
    let release: () => void = () => {};
    const gate = () => new Promise<void>((resolve) => (release = resolve));
    manager.define('slowAuth', {
      tickRateHz: 0,
      autoDispose: false,
      onAuth: async () => {
        await gate();
        return true;
      },
    });
    manager.define('slowJoin', { tickRateHz: 0, onJoin: () => gate() });
    const auth = manager.create('slowAuth', connect('a').client);
    await flush();
    await manager.leave('a', false);
    release();
    const error = await failure(auth);
    expect(error).toMatchObject({ code: ErrorCode.CONFLICT, details: { reason: 'left' } });
    expect(manager.roomOf('a')).toBeUndefined();

    const join = manager.create('slowJoin', connect('b').client);
    await flush();
    const room = manager.rooms().find((r) => r.name === 'slowJoin')!;
    await room.kick('b', 'too slow');
    await manager.leave('b', false);
    release();
    expect(await join).toBe(room);
    await flush();
    expect(room.disposed).toBe(true);
    expect(log.slice(-3)).toEqual([
      'joined b slowJoin',
      'left b slowJoin 4004 too slow',
      'disposed slowJoin',
    ]);
  });

  it('a room disposed during onJoin refuses that join (NOT_FOUND) without leave events', async () => {
    const { manager, log } = setup();
    let release: () => void = () => {};
    manager.define('game', {
      tickRateHz: 0,
      autoDispose: false,
      onJoin: (_room, member) =>
        member.sessionId === 'late'
          ? new Promise<void>((resolve) => (release = resolve))
          : undefined,
    });
    const room = await manager.create('game', connect('a').client);
    const late = manager.joinById(room.id, connect('late').client);
    await flush();
    const disposing = room.dispose();
    await flush();
    release();
    expect((await failure(late)).code).toBe(ErrorCode.NOT_FOUND);
    await disposing;
    expect(log).toEqual([
      'created game',
      'joined a game',
      'left a game 1001 room disposed',
      'disposed game',
    ]);
    expect(manager.roomOf('late')).toBeUndefined();
  });
});

describe('messages', () => {
  it('receive decodes with messages.client and runs the handler; broadcast reaches every member', async () => {
    const { manager, metrics } = setup();
    manager.define('arena', arena);
    const [a, b] = [connect('a'), connect('b')];
    const room = await manager.joinOrCreate('arena', a.client, { mode: 'ffa' });
    await manager.joinOrCreate('arena', b.client, { mode: 'ffa' });
    manager.receive(a.client, clientMessages.encode('chat', { text: 'hi' }), 'reliable');
    await flush();
    expect((room.state as { said: string[] }).said).toEqual(['hi']);
    for (const { received } of [a, b]) {
      expect(received).toEqual([
        { type: 'said', value: { from: 'a', text: 'hi' }, channel: 'reliable' },
      ]);
    }
    expect(room.stats).toMatchObject({ messagesIn: 1, messagesOut: 2 });
    expect(
      metrics.value('tickwire_room_messages_received_total', { room: 'arena', type: 'chat' }),
    ).toBe(1);
    expect(
      metrics.value('tickwire_room_messages_sent_total', { room: 'arena', type: 'said' }),
    ).toBe(2);
  });

  it('hands handlers the member and the channel', async () => {
    const { manager } = setup();
    const seen: [RoomMember, unknown, string][] = [];
    manager.define('game', {
      tickRateHz: 0,
      messages: { client: clientMessages },
      onMessage: {
        move: (_room, member, value, channel) => {
          seen.push([member, value, channel]);
        },
      },
    });
    const a = connect('a', 'user-a');
    const room = await manager.create('game', a.client);
    manager.receive('a', clientMessages.encode('move', { dir: 'left' }), 'unreliable');
    manager.receive('a', clientMessages.encode('move', { dir: 'right' }));
    expect(seen.map(([, value, channel]) => [value, channel])).toEqual([
      [{ dir: 'left' }, 'unreliable'],
      [{ dir: 'right' }, 'reliable'],
    ]);
    expect(seen[0]![0]).toBe(room.clients.get('a'));
    expect(seen[0]![0]).toMatchObject({ sessionId: 'a', userId: 'user-a', client: a.client });
  });

  it('refuses bad messages with DECODE_FAILED / VALIDATION_FAILED and the field path; counts them', async () => {
    const { manager, metrics } = setup();
    manager.define('arena', arena);
    const room = await manager.joinOrCreate('arena', connect('a').client, { mode: 'ffa' });
    const unknownId = thrown(() => manager.receive('a', new Uint8Array([9])));
    expect(unknownId.code).toBe(ErrorCode.DECODE_FAILED);
    expect(unknownId.message).toMatch(/^room 'arena' \(\w+\), session a: unknown message id 9/);
    expect(unknownId.details).toMatchObject({ roomId: room.id, sessionId: 'a' });
    const truncated = thrown(() => manager.receive('a', new Uint8Array([1])));
    expect(truncated.code).toBe(ErrorCode.DECODE_FAILED);
    const loose = defineMessages({
      chat: { id: 1, schema: defineSchema({ text: t.string({ maxBytes: 64 }) }) },
    });
    const tooLong = thrown(() =>
      manager.receive('a', loose.encode('chat', { text: 'far too long' })),
    );
    expect(tooLong.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(tooLong.message).toMatch(/message 'chat': text: longer than 8 bytes/);
    expect(tooLong.details).toMatchObject({ path: ['text'] });
    expect(room.stats.rejectedMessages).toBe(3);
    expect(
      metrics.value('tickwire_room_messages_rejected_total', {
        room: 'arena',
        code: 'DECODE_FAILED',
      }),
    ).toBe(2);
    expect(
      metrics.value('tickwire_room_messages_rejected_total', {
        room: 'arena',
        code: 'VALIDATION_FAILED',
      }),
    ).toBe(1);
    expect((room.state as { said: string[] }).said).toEqual([]);
  });

  it('validates Standard Schema messages on receive, with the path', async () => {
    const { manager } = setup();
    const say = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (value: unknown) =>
          typeof (value as { text?: unknown }).text === 'string'
            ? { value }
            : { issues: [{ message: 'expected a string', path: ['text'] }] },
      },
    };
    const strict = defineMessages({ say: { id: 0, schema: say } });
    const loose = defineMessages({
      say: {
        id: 0,
        schema: {
          '~standard': { version: 1, vendor: 'any', validate: (value: unknown) => ({ value }) },
        },
      },
    });
    manager.define('chat', { tickRateHz: 0, messages: { client: strict } });
    await manager.create('chat', connect('a').client);
    const error = thrown(() => manager.receive('a', loose.encode('say', { text: 5 })));
    expect(error.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(error.message).toMatch(/text: expected a string/);
  });

  it('NOT_FOUND outside a room; DECODE_FAILED in a room without messages.client; unhandled types are counted', async () => {
    const { manager } = setup();
    expect(thrown(() => manager.receive('a', new Uint8Array([0]))).code).toBe(ErrorCode.NOT_FOUND);
    manager.define('mute', { tickRateHz: 0 });
    manager.define('partial', { tickRateHz: 0, messages: { client: clientMessages } });
    const mute = await manager.create('mute', connect('a').client);
    const error = thrown(() => manager.receive('a', clientMessages.encode('ping', {})));
    expect(error.code).toBe(ErrorCode.DECODE_FAILED);
    expect(error.message).toMatch(/takes no client messages/);
    expect(mute.stats.rejectedMessages).toBe(1);
    const partial = await manager.create('partial', connect('b').client);
    manager.receive('b', clientMessages.encode('ping', {}));
    expect(partial.stats).toMatchObject({ messagesIn: 1, unhandledMessages: 1 });
  });

  it('a throwing handler is logged and counted; the room keeps running', async () => {
    const { manager, metrics, logger } = setup();
    let calls = 0;
    manager.define('buggy', {
      tickRateHz: 0,
      messages: { client: clientMessages },
      onMessage: {
        ping: () => {
          calls++;
          throw new Error('handler bug');
        },
        move: async () => {
          throw new Error('async handler bug');
        },
      },
    });
    const room = await manager.create('buggy', connect('a').client);
    manager.receive('a', clientMessages.encode('ping', {}));
    manager.receive('a', clientMessages.encode('ping', {}));
    manager.receive('a', clientMessages.encode('move', { dir: 'left' }));
    await flush();
    expect(calls).toBe(2);
    expect(room.stats.hookErrors).toBe(3);
    expect(
      metrics.value('tickwire_room_hook_errors_total', { room: 'buggy', hook: 'onMessage.ping' }),
    ).toBe(2);
    expect(logger.records.filter((r) => r.level === 'error')).toHaveLength(3);
    expect(manager.roomOf('a')).toBe(room);
  });

  it('send targets one member; broadcast skips `except`; a closed connection is counted, not thrown', async () => {
    const { manager, metrics } = setup();
    manager.define('arena', { ...arena, capacity: 3 });
    const [a, b, c] = [connect('a'), connect('b'), connect('c')];
    const room = (await manager.create('arena', a.client, { mode: 'ffa' })) as Room<
      unknown,
      typeof serverMessages.definitions
    >;
    await manager.joinById(room.id, b.client, { mode: 'ffa' });
    await manager.joinById(room.id, c.client, { mode: 'ffa' });
    expect(room.send('b', 'said', { from: 'server', text: 'psst' }, { reliable: false })).toBe(
      true,
    );
    expect(room.broadcast('said', { from: 'x', text: '1' }, { except: a.client })).toBe(2);
    expect(room.broadcast('said', { from: 'x', text: '2' }, { except: ['a', c.client] })).toBe(1);
    await flush();
    expect(a.received).toEqual([]);
    expect(b.received.map((m) => [m.value, m.channel])).toEqual([
      [{ from: 'server', text: 'psst' }, 'unreliable'],
      [{ from: 'x', text: '1' }, 'reliable'],
      [{ from: 'x', text: '2' }, 'reliable'],
    ]);
    expect(c.received).toHaveLength(1);
    b.client.connection.close();
    await flush();
    expect(room.broadcast('said', { from: 'x', text: '3' })).toBe(2);
    expect(room.send(b.client, 'said', { from: 'x', text: '4' })).toBe(false);
    expect(room.stats.sendFailures).toBe(2);
    expect(
      metrics.value('tickwire_room_send_failures_total', {
        room: 'arena',
        code: 'CONNECTION_CLOSED',
      }),
    ).toBe(2);
    expect(thrown(() => room.send('nobody', 'said', { from: 'x', text: '5' })).code).toBe(
      ErrorCode.NOT_FOUND,
    );
    expect(thrown(() => room.broadcast('said', { from: 'x', text: 'way too long' })).code).toBe(
      ErrorCode.VALIDATION_FAILED,
    );
  });

  it('holds what onJoin sends until the joined event (RoomJoined) went out; a refused join sends nothing', async () => {
    const { manager } = setup();
    const order: string[] = [];
    manager.define('arena', {
      ...arena,
      onJoin: (room, member) => {
        room.send(member, 'said', { from: 'server', text: 'welcome' });
        if (member.sessionId === 'bad') throw new Error('refused after sending');
      },
    });
    manager.on('joined', (client) => {
      order.push('joined');
      client.connection.send(new Uint8Array([Opcode.RoomJoined, 0]));
    });
    const a = connect('a');
    const frames: number[] = [];
    a.remote.on('message', (data) => frames.push(data[0]!));
    const room = await manager.create('arena', a.client, { mode: 'ffa' });
    room.on('join', () => order.push('join'));
    const bad = connect('bad');
    await failure(manager.joinById(room.id, bad.client, { mode: 'ffa' }));
    await flush();
    expect(frames).toEqual([Opcode.RoomJoined, Opcode.RoomMessage]);
    expect(bad.received).toEqual([]);
    expect(room.stats.messagesOut).toBe(1);
    const b = connect('b');
    await manager.joinById(room.id, b.client, { mode: 'ffa' });
    expect(order).toEqual(['joined', 'joined', 'join']);
  });

  it('runs the seated callback first (the reply to that join request); a throwing one is counted', async () => {
    const { manager, metrics } = setup();
    const order: string[] = [];
    manager.define('arena', {
      ...arena,
      onJoin: (room, member) => {
        order.push('onJoin');
        room.send(member, 'said', { from: 'server', text: 'welcome' });
      },
    });
    manager.on('joined', () => order.push('joined'));
    const a = connect('a');
    const frames: number[] = [];
    a.remote.on('message', (data) => frames.push(data[0]!));
    const room = await manager.create(
      'arena',
      a.client,
      { mode: 'ffa' },
      {
        seated(seatedRoom) {
          order.push(`seated ${seatedRoom.clients.size}`);
          a.client.connection.send(new Uint8Array([Opcode.RoomJoined, 0]));
        },
      },
    );
    await manager.joinById(
      room.id,
      connect('b').client,
      { mode: 'ffa' },
      {
        seated() {
          throw new Error('reply failed');
        },
      },
    );
    await flush();
    expect(order).toEqual(['onJoin', 'seated 1', 'joined', 'onJoin', 'joined']);
    expect(frames).toEqual([Opcode.RoomJoined, Opcode.RoomMessage]);
    expect(room.clients.has('b')).toBe(true);
    expect(
      metrics.value('tickwire_room_hook_errors_total', { room: 'arena', hook: 'seated' }),
    ).toBe(1);
  });

  it('a room without messages.server cannot send (INVALID_STATE)', async () => {
    const { manager } = setup();
    manager.define('mute', { tickRateHz: 0 });
    const room = await manager.create('mute', connect('a').client);
    expect(thrown(() => room.broadcast('anything' as never, undefined as never)).code).toBe(
      ErrorCode.INVALID_STATE,
    );
  });

  it('logs a throwing event listener instead of crashing', async () => {
    const { manager, logger } = setup();
    manager.define('game', { tickRateHz: 0 });
    manager.on('joined', () => {
      throw new Error('listener bug');
    });
    const room = await manager.create('game', connect('a').client);
    room.on('leave', () => {
      throw new Error('room listener bug');
    });
    await manager.leave('a');
    expect(logger.records.filter((r) => r.level === 'error').map((r) => r.message)).toEqual([
      "room manager 'joined' listener threw",
      "room 'game' 'leave' listener threw; the room goes on",
    ]);
  });
});

describe('messages during a join', () => {
  /** A room whose onAuth and onJoin wait for the test; its chat handler logs what it sees. */
  function slowRoom(refuse = false) {
    const { manager } = setup();
    const gates: { auth?: () => void; join?: () => void } = {};
    const completed = new Set<string>();
    const seen: string[] = [];
    manager.on('joined', (client) => completed.add(client.sessionId));
    manager.define('slow', {
      tickRateHz: 0,
      autoDispose: false,
      messages: { client: clientMessages, server: serverMessages },
      onAuth: () =>
        new Promise<boolean>((resolve) => {
          gates.auth = () => resolve(true);
        }),
      onJoin: () =>
        new Promise<void>((resolve, reject) => {
          gates.join = () => (refuse ? reject(new Error('not you')) : resolve());
        }),
      onMessage: {
        chat(room, member, value) {
          // Whether the member's join had completed when its handler ran.
          seen.push(`${value.text}${completed.has(member.sessionId) ? '' : ' (joining)'}`);
          if (value.text === 'bye') void room.kick(member, 'bye');
        },
      },
    });
    return { manager, gates, seen };
  }
  const chat = (text: string) => clientMessages.encode('chat', { text });

  it('holds what a member sends while onAuth and onJoin run; delivers it in order once joined', async () => {
    const { manager, gates, seen } = slowRoom();
    const a = connect('a');
    const order: string[] = [];
    const join = manager.create('slow', a.client, undefined, {
      seated: () => order.push('seated'),
    });
    manager.receive('a', chat('one'));
    await flush();
    manager.receive('a', chat('two'), 'unreliable');
    gates.auth!();
    await flush();
    manager.receive('a', chat('three'));
    await flush();
    expect(seen).toEqual([]);
    gates.join!();
    await join;
    order.push('after join');
    expect(seen).toEqual(['one', 'two', 'three']);
    expect(order).toEqual(['seated', 'after join']);
    manager.receive('a', chat('four'));
    expect(seen).toEqual(['one', 'two', 'three', 'four']);
  });

  it('a refused join drops what was held: no handler sees it, `refused` gets one NOT_FOUND', async () => {
    const { manager, gates, seen } = slowRoom(true);
    const refusals: TickwireError[] = [];
    const join = manager.create('slow', connect('a').client, undefined, {
      refused: (error) => refusals.push(error),
    });
    manager.receive('a', chat('one'));
    await flush();
    gates.auth!();
    await flush();
    manager.receive('a', chat('two'));
    gates.join!();
    expect((await failure(join)).code).toBe(ErrorCode.INTERNAL);
    await flush();
    expect(seen).toEqual([]);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      code: ErrorCode.NOT_FOUND,
      details: { sessionId: 'a', dropped: 2, reason: 'join-failed' },
    });
    expect(thrown(() => manager.receive('a', chat('three'))).code).toBe(ErrorCode.NOT_FOUND);
    expect(seen).toEqual([]);
  });

  it('holds at most 32 messages (LIMIT_EXCEEDED past them); a bad one is refused on delivery', async () => {
    const { manager, gates, seen } = slowRoom();
    const refusals: TickwireError[] = [];
    const join = manager.create('slow', connect('a').client, undefined, {
      refused: (error) => refusals.push(error),
    });
    await flush();
    manager.receive('a', new Uint8Array([9]));
    for (let i = 1; i < 32; i++) manager.receive('a', chat(`m${i}`));
    const over = thrown(() => manager.receive('a', chat('over')));
    expect(over).toMatchObject({
      code: ErrorCode.LIMIT_EXCEEDED,
      details: { sessionId: 'a', limit: 32 },
    });
    gates.auth!();
    await flush();
    gates.join!();
    await join;
    expect(seen).toEqual(Array.from({ length: 31 }, (_, i) => `m${i + 1}`));
    expect(refusals.map((error) => error.code)).toEqual([ErrorCode.DECODE_FAILED]);
  });

  it('a handler that kicks the member stops the delivery: the rest is dropped (NOT_FOUND)', async () => {
    const { manager, gates, seen } = slowRoom();
    const refusals: TickwireError[] = [];
    const join = manager.create('slow', connect('a').client, undefined, {
      refused: (error) => refusals.push(error),
    });
    for (const text of ['one', 'bye', 'three', 'four']) manager.receive('a', chat(text));
    await flush();
    gates.auth!();
    await flush();
    gates.join!();
    await join;
    expect(seen).toEqual(['one', 'bye']);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      code: ErrorCode.NOT_FOUND,
      details: { sessionId: 'a', dropped: 2, reason: 'left' },
    });
    expect(manager.roomOf('a')).toBeUndefined();
  });

  it('a member that leaves while joining: what it sent before is delivered, then it leaves; nothing after', async () => {
    const { manager, gates, seen } = slowRoom();
    const join = manager.create('slow', connect('a').client);
    await flush();
    gates.auth!();
    await flush();
    manager.receive('a', chat('before'));
    await manager.leave('a');
    expect(thrown(() => manager.receive('a', chat('after'))).code).toBe(ErrorCode.NOT_FOUND);
    gates.join!();
    await join;
    expect(seen).toEqual(['before']);
    expect(manager.roomOf('a')).toBeUndefined();
  });
});

describe('metadata', () => {
  it('setMetadata replaces the listing metadata; it must be a plain object', async () => {
    const { manager } = setup();
    manager.define('game', {
      tickRateHz: 0,
      onCreate: (room) => room.setMetadata({ map: 'dust' }),
    });
    const room = await manager.create('game', connect('a').client);
    expect(manager.list()[0]?.metadata).toEqual({ map: 'dust' });
    room.setMetadata({ map: 'aztec', round: 2 });
    expect(room.metadata).toEqual({ map: 'aztec', round: 2 });
    expect(Object.isFrozen(room.metadata)).toBe(true);
    expect(thrown(() => room.setMetadata([] as never)).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});
