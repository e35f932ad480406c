import {
  type Channel,
  createManualTime,
  ErrorCode,
  isTickwireError,
  TickwireError,
} from '@tickwire/core';
import { BinaryWriter, defineSchema, type Type, t } from '@tickwire/serialization';
import fc from 'fast-check';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  createRpcClient,
  createRpcRegistry,
  createRpcServer,
  defineRpc,
  type Rpc,
  type RpcRegistry,
  type RpcServerOptions,
  type RpcStats,
} from './rpc.js';
import type { ClientId } from './server.js';

const Move = defineSchema({
  seq: t.varuint(),
  pos: t.object({ x: t.quantized(-100, 100, 0.5), y: t.quantized(-100, 100, 0.5) }),
  jump: t.optional(t.bool()),
});

const move = defineRpc('move', Move, { direction: 'toServer', reliable: false });
const fire = defineRpc('fire', t.object({ weapon: t.uint(3) }), {
  direction: 'toServer',
  rateLimit: { perSecond: 4, burst: 2 },
});
const chat = defineRpc('chat', t.string({ maxBytes: 8 }));
const hit = defineRpc('hit', t.object({ target: t.varuint(), damage: t.u8() }), {
  direction: 'toClient',
});
const level = defineRpc('level', t.quantized(0, 10, 1), { direction: 'toClient' });
const rpcs = [move, fire, chat, hit, level];

/** The code of what `fn` throws (fails the test if it does not throw a TickwireError). */
function thrown(fn: () => unknown): TickwireError {
  try {
    fn();
  } catch (error) {
    if (isTickwireError(error)) return error;
    throw error;
  }
  throw new Error('expected a TickwireError');
}

function totalRejected(stats: RpcStats): number {
  const { decode, validation, forbidden, rate } = stats.rejected;
  return decode + validation + forbidden + rate;
}

interface Sent {
  clientId: ClientId;
  bytes: Uint8Array;
  channel: Channel;
}

function setup(overrides: Partial<RpcServerOptions> = {}) {
  const time = createManualTime();
  const registry = createRpcRegistry(rpcs);
  const sent: Sent[] = [];
  const clients: ClientId[] = ['a', 'b', 7];
  const server = createRpcServer({
    registry,
    clock: time,
    send: (clientId, bytes, channel) => sent.push({ clientId, bytes, channel }),
    clients: () => clients,
    observers: (entityId) => (entityId === 1 ? ['a', 7] : []),
    ...overrides,
  });
  const rejected: [ClientId, TickwireError][] = [];
  server.on('rejected', (clientId, error) => rejected.push([clientId, error]));
  return { time, registry, sent, server, rejected };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('defineRpc', () => {
  it('defaults to reliable, both directions and no rate limit', () => {
    const rpc = defineRpc('ping', t.u8());
    expect(rpc).toMatchObject({ name: 'ping', reliable: true, direction: 'both' });
    expect(rpc.rateLimit).toBeUndefined();
    expect(Object.isFrozen(rpc)).toBe(true);
  });

  it('takes the field type of a schema and infers the argument type', () => {
    expect(move.type).toBe(Move.type);
    expect(fire.rateLimit).toEqual({ perSecond: 4, burst: 2 });
    expectTypeOf(move.name).toEqualTypeOf<'move'>();
    expectTypeOf(chat).toEqualTypeOf<Rpc<'chat', string>>();
    expectTypeOf<Parameters<typeof fire.type.write>[1]>().toEqualTypeOf<{ weapon: number }>();
  });

  it('rejects invalid names, types and options with INVALID_ARGUMENT', () => {
    const cases: (() => unknown)[] = [
      () => defineRpc('', t.u8()),
      () => defineRpc('x', {} as Type<number>),
      () => defineRpc('x', t.u8(), null as never),
      () => defineRpc('x', t.u8(), { reliable: 1 as never }),
      () => defineRpc('x', t.u8(), { direction: 'sideways' as never }),
      () => defineRpc('x', t.u8(), { rateLimit: 3 as never }),
      () => defineRpc('x', t.u8(), { rateLimit: { perSecond: 0, burst: 1 } }),
      () => defineRpc('x', t.u8(), { rateLimit: { perSecond: Number.NaN, burst: 1 } }),
      () => defineRpc('x', t.u8(), { rateLimit: { perSecond: 1, burst: 0.5 } }),
      () => defineRpc('x', t.u8(), { rateLimit: { perSecond: 1, burst: 0 } }),
      () =>
        defineRpc('x', t.u8(), { direction: 'toClient', rateLimit: { perSecond: 1, burst: 1 } }),
    ];
    for (const make of cases) expect(thrown(make).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe('createRpcRegistry', () => {
  const registry = createRpcRegistry(rpcs);

  it('round-trips a defineSchema schema and plain t.* types', () => {
    const args = { seq: 300, pos: { x: -12.5, y: 99.5 }, jump: true };
    expect(registry.decode(registry.encode(move, args))).toEqual({ rpc: move, args });
    const noJump = { seq: 1, pos: { x: 0, y: 0 } };
    expect(registry.decode(registry.encode(move, noJump)).args).toEqual(noJump);
    expect(registry.decode(registry.encode(chat, 'héllo'))).toEqual({ rpc: chat, args: 'héllo' });
    expect(registry.decode(registry.encode(hit, { target: 9, damage: 255 })).args).toEqual({
      target: 9,
      damage: 255,
    });
    expect(registry.peek(registry.encode(level, 3))).toBe(level);
  });

  it('puts the varuint rpc index before the bit-packed argument', () => {
    // fire is index 1; weapon 5 fits in 3 bits.
    expect([...registry.encode(fire, { weapon: 5 })]).toEqual([1, 5]);
    const many = Array.from({ length: 130 }, (_, i) => defineRpc(`r${i}`, t.bool()));
    const big = createRpcRegistry(many);
    const bytes = big.encode(many[129]!, true);
    expect([...bytes]).toEqual([0x81, 0x01, 1]);
    expect(big.decode(bytes)).toEqual({ rpc: many[129], args: true });
  });

  it('fingerprints names, order, direction, channel and layout', () => {
    const same = createRpcRegistry([
      defineRpc('move', Move, { direction: 'toServer', reliable: false }),
      fire,
      chat,
      hit,
      level,
    ]);
    expect(same.fingerprint).toBe(registry.fingerprint);
    expect(createRpcRegistry([fire, move, chat, hit, level]).fingerprint).not.toBe(
      registry.fingerprint,
    );
    const a = createRpcRegistry([defineRpc('x', t.u8())]).fingerprint;
    expect(createRpcRegistry([defineRpc('x', t.u16())]).fingerprint).not.toBe(a);
    expect(createRpcRegistry([defineRpc('x', t.u8(), { reliable: false })]).fingerprint).not.toBe(
      a,
    );
    expect(
      createRpcRegistry([defineRpc('x', t.u8(), { direction: 'toServer' })]).fingerprint,
    ).not.toBe(a);
    expect(createRpcRegistry([defineRpc('y', t.u8())]).fingerprint).not.toBe(a);
  });

  it('refuses duplicate names and things that are not rpcs', () => {
    expect(thrown(() => createRpcRegistry([chat, defineRpc('chat', t.u8())])).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(thrown(() => createRpcRegistry({} as never)).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(thrown(() => createRpcRegistry([null as never])).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(
      thrown(() => createRpcRegistry([{ ...chat, direction: 'up' } as never])).message,
    ).toContain('rpcs[0]');
  });

  it('refuses to encode an rpc it does not hold', () => {
    const other = defineRpc('chat', t.string({ maxBytes: 8 }));
    const error = thrown(() => registry.encode(other, 'hi'));
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.message).toContain("'chat'");
  });

  it('validates arguments on encode, naming the rpc and the field path', () => {
    const error = thrown(() => registry.encode(move, { seq: 1, pos: { x: 1000, y: 0 } }));
    expect(error.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(error.message).toContain("rpc 'move': pos.x:");
    expect(error.details).toMatchObject({ rpc: 'move', path: ['pos', 'x'] });
    expect(thrown(() => registry.encode(chat, 'much too long')).code).toBe(
      ErrorCode.VALIDATION_FAILED,
    );
    // @ts-expect-error the argument type is checked at compile time too
    expect(thrown(() => registry.encode(chat, 5)).code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(thrown(() => registry.encode(hit, null as never)).code).toBe(
      ErrorCode.VALIDATION_FAILED,
    );
  });

  it('decode refuses malformed bytes with DECODE_FAILED', () => {
    const valid = registry.encode(hit, { target: 300, damage: 1 });
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'truncated'],
      [new Uint8Array([99]), 'unknown rpc index 99'],
      [new Uint8Array([0x80, 0x00]), 'overlong'],
      [valid.subarray(0, valid.length - 1), 'truncated'],
      [Uint8Array.from([...valid, 0]), 'trailing'],
    ];
    for (const [bytes, text] of cases) {
      const error = thrown(() => registry.decode(bytes));
      expect(error.code).toBe(ErrorCode.DECODE_FAILED);
      expect(error.message).toContain(text);
    }
    expect(thrown(() => registry.decode(new Uint8Array([99]))).details).toEqual({ index: 99 });
    expect(thrown(() => registry.decode('nope' as never)).code).toBe(ErrorCode.DECODE_FAILED);
    expect(thrown(() => registry.peek(new Uint8Array([5]))).code).toBe(ErrorCode.DECODE_FAILED);
  });

  it('decode refuses out-of-bounds arguments with VALIDATION_FAILED and the path', () => {
    // level is index 4; quantized(0, 10, 1) has 10 steps in 4 bits: 15 is out of range.
    const error = thrown(() => registry.decode(new Uint8Array([4, 15])));
    expect(error.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(error.details).toMatchObject({ rpc: 'level', path: [] });
    const writer = new BinaryWriter();
    writer.writeVarUint(0);
    writer.writeVarUint(1);
    writer.writeBits(0, 9);
    writer.writeBits(500, 9); // y step 500 > 400
    writer.writeBool(false);
    const nested = thrown(() => registry.decode(writer.toBytes()));
    expect(nested.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(nested.details).toMatchObject({ rpc: 'move', path: ['pos', 'y'] });
  });

  it('turns whatever a field type throws into DECODE_FAILED or VALIDATION_FAILED', () => {
    const base = t.u8();
    const weird = (read: () => number, write: () => void): Type<number> => ({
      ...base,
      read,
      write,
    });
    const plain = defineRpc(
      'plain',
      weird(
        () => {
          throw new TypeError('boom');
        },
        () => {
          throw 'bad';
        },
      ),
    );
    const internal = defineRpc(
      'internal',
      weird(
        () => {
          throw new TickwireError(ErrorCode.INTERNAL, 'inner');
        },
        () => {
          throw new TickwireError(ErrorCode.MESSAGE_TOO_LARGE, 'big');
        },
      ),
    );
    const registry = createRpcRegistry([plain, internal]);
    const encodePlain = thrown(() => registry.encode(plain, 1));
    expect(encodePlain.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(encodePlain.message).toBe("rpc 'plain': bad");
    // Any TickwireError from encode passes through (MESSAGE_TOO_LARGE…)…
    expect(thrown(() => registry.encode(internal, 1)).code).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    // …but decode only ever throws DECODE_FAILED or VALIDATION_FAILED.
    const decodePlain = thrown(() => registry.decode(new Uint8Array([0])));
    expect(decodePlain.code).toBe(ErrorCode.DECODE_FAILED);
    expect(decodePlain.cause).toBeInstanceOf(TypeError);
    expect(thrown(() => registry.decode(new Uint8Array([1]))).code).toBe(ErrorCode.DECODE_FAILED);
  });
});

describe('createRpcServer', () => {
  it('decodes, validates and dispatches client calls to typed handlers', () => {
    const { registry, server, rejected } = setup();
    const moves: [ClientId, unknown][] = [];
    server.on(move, (clientId, args) => {
      expectTypeOf(args.pos.x).toEqualTypeOf<number>();
      moves.push([clientId, args]);
    });
    const args = { seq: 4, pos: { x: 1, y: 2 } };
    expect(server.receive('a', registry.encode(move, args))).toBe(true);
    expect(server.receive(7, registry.encode(chat, 'hi'))).toBe(true); // no handler: still fine
    expect(moves).toEqual([['a', args]]);
    expect(rejected).toEqual([]);
    expect(server.stats).toMatchObject({ received: 2, handled: 2, sent: 0, errors: 0 });
  });

  it('stops calling a handler once unsubscribed', () => {
    const { registry, server } = setup();
    const calls: string[] = [];
    const off1 = server.on(chat, (_, text) => calls.push(`1:${text}`));
    server.on(chat, (_, text) => calls.push(`2:${text}`));
    server.receive('a', registry.encode(chat, 'x'));
    off1();
    off1();
    server.receive('a', registry.encode(chat, 'y'));
    expect(calls).toEqual(['1:x', '2:x', '2:y']);
  });

  it('refuses handlers of unknown or toClient rpcs', () => {
    const { server } = setup();
    expect(thrown(() => server.on(defineRpc('other', t.u8()), () => {})).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(thrown(() => server.on(hit, () => {})).code).toBe(ErrorCode.FORBIDDEN);
  });

  it('rejects malformed and invalid messages without throwing', () => {
    const { server, rejected } = setup();
    expect(server.receive('a', new Uint8Array([42]))).toBe(false);
    expect(server.receive('a', new Uint8Array([2, 200]))).toBe(false); // chat: 200 bytes announced
    expect(server.receive('b', undefined as never)).toBe(false);
    expect(rejected.map(([id, e]) => [id, e.code])).toEqual([
      ['a', ErrorCode.DECODE_FAILED],
      ['a', ErrorCode.DECODE_FAILED],
      ['b', ErrorCode.DECODE_FAILED],
    ]);
    expect(rejected[1]![1].details).toMatchObject({ rpc: 'chat' });
    expect(server.stats.rejected).toEqual({ decode: 3, validation: 0, forbidden: 0, rate: 0 });
  });

  it('counts a payload out of bounds as a validation rejection', () => {
    const registry = createRpcRegistry([defineRpc('lvl', t.quantized(0, 10, 1))]);
    const { server, rejected } = setup({ registry });
    expect(server.receive('a', new Uint8Array([0, 15]))).toBe(false);
    expect(rejected[0]![1]).toMatchObject({
      code: ErrorCode.VALIDATION_FAILED,
      details: { rpc: 'lvl', path: [] },
    });
    expect(server.stats.rejected.validation).toBe(1);
  });

  it('never throws on 10,000 random messages and counts every one', () => {
    const { server, rejected } = setup();
    const client = createRpcClient({ registry: createRpcRegistry(rpcs), send: () => {} });
    const codes = new Set<string>([
      ErrorCode.DECODE_FAILED,
      ErrorCode.VALIDATION_FAILED,
      ErrorCode.FORBIDDEN,
      ErrorCode.RATE_LIMITED,
    ]);
    const clientErrors: TickwireError[] = [];
    client.on('rejected', (error) => clientErrors.push(error));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 48 }),
        fc.constantFrom<ClientId>('a', 'b', 1),
        (bytes, clientId) => {
          server.receive(clientId, bytes);
          client.receive(bytes);
        },
      ),
      { numRuns: 10_000, seed: 42 },
    );
    expect(server.stats.received).toBe(10_000);
    expect(server.stats.handled + totalRejected(server.stats)).toBe(10_000);
    expect(rejected).toHaveLength(totalRejected(server.stats));
    expect(rejected.every(([, e]) => isTickwireError(e) && codes.has(e.code))).toBe(true);
    expect(client.stats.received).toBe(10_000);
    expect(client.stats.handled + totalRejected(client.stats)).toBe(10_000);
    expect(clientErrors).toHaveLength(totalRejected(client.stats));
    expect(clientErrors.every((e) => isTickwireError(e) && codes.has(e.code))).toBe(true);
    // Random bytes hit every outcome.
    expect(server.stats.handled).toBeGreaterThan(0);
    expect(server.stats.rejected.decode).toBeGreaterThan(0);
    expect(server.stats.rejected.forbidden).toBeGreaterThan(0);
    expect(server.stats.rejected.rate).toBeGreaterThan(0);
  });

  it('normalises what a custom registry throws into DECODE_FAILED', () => {
    const registry: RpcRegistry = {
      ...createRpcRegistry(rpcs),
      peek: () => {
        throw new Error('broken');
      },
    };
    const { server, rejected } = setup({ registry });
    expect(server.receive('a', new Uint8Array([2, 0]))).toBe(false);
    expect(rejected[0]![1]).toMatchObject({ code: ErrorCode.DECODE_FAILED });
    expect(rejected[0]![1].cause).toBeInstanceOf(Error);
  });

  describe('rate limiting', () => {
    it('refuses calls over the limit until tokens refill; other traffic continues', () => {
      const { time, registry, server, rejected } = setup();
      const fires: ClientId[] = [];
      server.on(fire, (clientId) => fires.push(clientId));
      const shot = registry.encode(fire, { weapon: 1 });
      const step = registry.encode(move, { seq: 1, pos: { x: 0, y: 0 } });

      // Burst of 2, then refused.
      expect(server.receive('a', shot)).toBe(true);
      expect(server.receive('a', shot)).toBe(true);
      expect(server.receive('a', shot)).toBe(false);
      const [clientId, error] = rejected[0]!;
      expect(clientId).toBe('a');
      expect(error.code).toBe(ErrorCode.RATE_LIMITED);
      expect(error.details).toMatchObject({ rpc: 'fire', perSecond: 4, burst: 2 });

      // The sender's other rpcs and other clients are unaffected.
      for (let i = 0; i < 20; i++) expect(server.receive('a', step)).toBe(true);
      expect(server.receive('b', shot)).toBe(true);
      expect(server.receive(7, shot)).toBe(true);

      // 4 per second: one token after 250 ms; refused calls take none.
      time.advance(249);
      expect(server.receive('a', shot)).toBe(false);
      time.advance(1);
      expect(server.receive('a', shot)).toBe(true);
      expect(server.receive('a', shot)).toBe(false);

      // The bucket never holds more than `burst`.
      time.advance(60_000);
      expect([1, 2, 3].map(() => server.receive('a', shot))).toEqual([true, true, false]);

      expect(fires).toEqual(['a', 'a', 'b', 7, 'a', 'a', 'a']);
      expect(server.stats.rejected.rate).toBe(4);
      expect(server.stats.handled + totalRejected(server.stats)).toBe(server.stats.received);
    });

    it('spends a token on a call whose payload is then refused', () => {
      const { server, rejected } = setup();
      expect(server.receive('a', new Uint8Array([1]))).toBe(false); // fire, truncated
      expect(server.receive('a', new Uint8Array([1]))).toBe(false);
      expect(server.receive('a', new Uint8Array([1]))).toBe(false);
      expect(rejected.map(([, e]) => e.code)).toEqual([
        ErrorCode.DECODE_FAILED,
        ErrorCode.DECODE_FAILED,
        ErrorCode.RATE_LIMITED,
      ]);
    });

    it('removeClient drops the buckets', () => {
      const { registry, server } = setup();
      const shot = registry.encode(fire, { weapon: 0 });
      server.receive('a', shot);
      server.receive('a', shot);
      expect(server.receive('a', shot)).toBe(false);
      server.removeClient('a');
      server.removeClient('never-seen');
      expect(server.receive('a', shot)).toBe(true);
    });
  });

  describe('sending', () => {
    it('toClient encodes and sends on the rpc channel', () => {
      const { registry, server, sent } = setup();
      server.toClient('b', hit, { target: 3, damage: 9 });
      server.toClient('a', chat, 'yo');
      expect(sent.map((s) => [s.clientId, s.channel])).toEqual([
        ['b', 'reliable'],
        ['a', 'reliable'],
      ]);
      expect(registry.decode(sent[0]!.bytes)).toEqual({ rpc: hit, args: { target: 3, damage: 9 } });
      expect(server.stats.sent).toBe(2);
    });

    it('uses the unreliable channel for unreliable rpcs', () => {
      const flash = defineRpc('flash', t.bool(), { reliable: false, direction: 'toClient' });
      const { server, sent } = setup({ registry: createRpcRegistry([flash]) });
      server.toClient('a', flash, true);
      expect(sent[0]!.channel).toBe('unreliable');
    });

    it('toAll sends the same encoded bytes to every client', () => {
      const { server, sent } = setup();
      expect(server.toAll(hit, { target: 1, damage: 2 })).toBe(3);
      expect(sent.map((s) => s.clientId)).toEqual(['a', 'b', 7]);
      expect(sent[1]!.bytes).toBe(sent[0]!.bytes);
      expect(sent[2]!.bytes).toBe(sent[0]!.bytes);
    });

    it('toObservers routes only to the observers of the entity', () => {
      const { registry, server, sent } = setup();
      expect(server.toObservers(1, level, 4)).toBe(2);
      expect(sent.map((s) => s.clientId)).toEqual(['a', 7]);
      expect(sent[0]!.bytes).toBe(sent[1]!.bytes);
      expect(registry.decode(sent[0]!.bytes).args).toBe(4);
      expect(server.toObservers(2, level, 4)).toBe(0);
      expect(sent).toHaveLength(2);
      expect(server.stats.sent).toBe(2);
    });

    it('toObservers needs the observers option', () => {
      const { server } = setup({ observers: undefined });
      expect(thrown(() => server.toObservers(1, level, 4)).code).toBe(ErrorCode.INVALID_STATE);
    });

    it('refuses toServer rpcs, unknown rpcs and invalid arguments', () => {
      const { server, sent } = setup();
      expect(thrown(() => server.toClient('a', move, { seq: 0, pos: { x: 0, y: 0 } })).code).toBe(
        ErrorCode.FORBIDDEN,
      );
      expect(thrown(() => server.toAll(fire, { weapon: 0 })).code).toBe(ErrorCode.FORBIDDEN);
      expect(thrown(() => server.toObservers(1, fire, { weapon: 0 })).code).toBe(
        ErrorCode.FORBIDDEN,
      );
      expect(thrown(() => server.toAll(defineRpc('x', t.u8()), 1)).code).toBe(
        ErrorCode.INVALID_ARGUMENT,
      );
      const invalid = thrown(() => server.toAll(hit, { target: -1, damage: 0 }));
      expect(invalid.code).toBe(ErrorCode.VALIDATION_FAILED);
      expect(invalid.details).toMatchObject({ path: ['target'] });
      expect(sent).toEqual([]);
    });

    it('a throwing send in a broadcast is reported and the others still receive', () => {
      const delivered: ClientId[] = [];
      const { server } = setup({
        send: (clientId) => {
          if (clientId === 'b') throw new Error('closed');
          delivered.push(clientId);
        },
      });
      const errors: [ClientId, TickwireError][] = [];
      server.on('error', (clientId, error) => errors.push([clientId, error]));
      expect(server.toAll(chat, 'hey')).toBe(2);
      expect(delivered).toEqual(['a', 7]);
      expect(errors).toHaveLength(1);
      expect(errors[0]![0]).toBe('b');
      expect(errors[0]![1]).toMatchObject({ code: ErrorCode.INTERNAL, details: { rpc: 'chat' } });
      expect(server.stats).toMatchObject({ sent: 2, errors: 1 });
    });
  });

  describe('handlers', () => {
    it('isolates a throwing handler: the others run and it is reported', () => {
      const { registry, server } = setup();
      const seen: string[] = [];
      const failure = new Error('handler bug');
      server.on(chat, () => {
        throw failure;
      });
      server.on(chat, (_, text) => seen.push(text));
      const errors: [ClientId, TickwireError, Rpc][] = [];
      server.on('error', (clientId, error, rpc) => errors.push([clientId, error, rpc]));
      expect(server.receive('a', registry.encode(chat, 'ok'))).toBe(true);
      expect(seen).toEqual(['ok']);
      expect(errors).toHaveLength(1);
      const [clientId, error, rpc] = errors[0]!;
      expect([clientId, rpc]).toEqual(['a', chat]);
      expect(error.code).toBe(ErrorCode.INTERNAL);
      expect(error.cause).toBe(failure);
      expect(error.message).toContain('handler bug');
      expect(server.stats).toMatchObject({ handled: 1, errors: 1 });
    });

    it('rethrows a handler error in a microtask when nobody listens to error', () => {
      const later: (() => void)[] = [];
      vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((task) => later.push(task));
      const { registry, server } = setup();
      server.on(chat, () => {
        throw 'oops';
      });
      expect(server.receive('a', registry.encode(chat, 'x'))).toBe(true);
      expect(later).toHaveLength(1);
      expect(() => later[0]!()).toThrow(/oops/);
    });
  });
});

describe('createRpcClient', () => {
  function pair() {
    const { registry, server, sent, rejected } = setup();
    const calls: [Uint8Array, Channel][] = [];
    const client = createRpcClient({
      registry: createRpcRegistry(rpcs),
      send: (bytes, channel) => {
        calls.push([bytes, channel]);
        server.receive('a', bytes);
      },
    });
    const clientRejected: TickwireError[] = [];
    client.on('rejected', (error) => clientRejected.push(error));
    return { registry, server, sent, rejected, client, calls, clientRejected };
  }

  it('calls the server with validated, typed arguments', () => {
    const { server, client, calls } = pair();
    const got: unknown[] = [];
    server.on(move, (_, args) => got.push(args));
    client.call(move, { seq: 9, pos: { x: 3, y: -3 }, jump: false });
    expect(got).toEqual([{ seq: 9, pos: { x: 3, y: -3 }, jump: false }]);
    expect(calls[0]![1]).toBe('unreliable');
    expect(client.stats.sent).toBe(1);
    const error = thrown(() => client.call(move, { seq: -1, pos: { x: 0, y: 0 } }));
    expect(error.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(error.details).toMatchObject({ path: ['seq'] });
    expect(client.stats.sent).toBe(1);
  });

  it('receives what the server sends', () => {
    const { server, sent, client } = pair();
    const hits: { target: number; damage: number }[] = [];
    const off = client.on(hit, (args) => hits.push(args));
    server.toClient('a', hit, { target: 5, damage: 50 });
    expect(client.receive(sent[0]!.bytes)).toBe(true);
    off();
    expect(client.receive(sent[0]!.bytes)).toBe(true);
    expect(hits).toEqual([{ target: 5, damage: 50 }]);
    expect(client.stats).toMatchObject({ received: 2, handled: 2 });
  });

  it('rejects malformed and out-of-bounds messages without throwing', () => {
    const { client, clientRejected } = pair();
    expect(client.receive(new Uint8Array([77]))).toBe(false);
    expect(client.receive(new Uint8Array([4, 15]))).toBe(false);
    expect(clientRejected.map((e) => e.code)).toEqual([
      ErrorCode.DECODE_FAILED,
      ErrorCode.VALIDATION_FAILED,
    ]);
    expect(client.stats.rejected).toEqual({ decode: 1, validation: 1, forbidden: 0, rate: 0 });
  });

  it('isolates a throwing handler', () => {
    const { registry, client } = pair();
    const seen: number[] = [];
    client.on(level, () => {
      throw new Error('bad');
    });
    client.on(level, (n) => seen.push(n));
    const errors: [TickwireError, Rpc][] = [];
    client.on('error', (error, rpc) => errors.push([error, rpc]));
    expect(client.receive(registry.encode(level, 2))).toBe(true);
    expect(seen).toEqual([2]);
    expect(errors[0]![0].code).toBe(ErrorCode.INTERNAL);
    expect(errors[0]![1]).toBe(level);
    expect(client.stats.errors).toBe(1);
  });

  it('rethrows a handler error in a microtask when nobody listens to error', () => {
    const later: (() => void)[] = [];
    vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((task) => later.push(task));
    const { registry, client } = pair();
    client.on(level, () => {
      throw new Error('unheard');
    });
    expect(client.receive(registry.encode(level, 1))).toBe(true);
    expect(() => later[0]!()).toThrow(/unheard/);
  });
});

describe('direction enforcement', () => {
  it('a client may not call, nor the server accept, a toClient rpc', () => {
    const { registry, server, rejected } = setup();
    const client = createRpcClient({ registry, send: () => {} });
    const clientRejected: TickwireError[] = [];
    client.on('rejected', (error) => clientRejected.push(error));
    expect(thrown(() => client.call(hit, { target: 1, damage: 1 })).code).toBe(ErrorCode.FORBIDDEN);
    expect(thrown(() => client.call(defineRpc('x', t.u8()), 1)).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    // A hostile client crafting the bytes anyway.
    expect(server.receive('a', registry.encode(hit, { target: 1, damage: 1 }))).toBe(false);
    expect(rejected[0]![1]).toMatchObject({ code: ErrorCode.FORBIDDEN, details: { rpc: 'hit' } });
    expect(server.stats.rejected.forbidden).toBe(1);

    // And the server may not send, nor a client accept, a toServer rpc.
    expect(thrown(() => server.toClient('a', fire, { weapon: 2 })).code).toBe(ErrorCode.FORBIDDEN);
    expect(thrown(() => client.on(fire, () => {})).code).toBe(ErrorCode.FORBIDDEN);
    expect(thrown(() => client.on(defineRpc('y', t.u8()), () => {})).code).toBe(
      ErrorCode.INVALID_ARGUMENT,
    );
    expect(client.receive(registry.encode(fire, { weapon: 2 }))).toBe(false);
    expect(clientRejected[0]).toMatchObject({
      code: ErrorCode.FORBIDDEN,
      details: { rpc: 'fire' },
    });
    expect(client.stats.rejected.forbidden).toBe(1);
  });

  it('a both-ways rpc travels both ways', () => {
    const { registry, server, sent } = setup();
    const client = createRpcClient({
      registry,
      send: (bytes) => server.receive('b', bytes),
    });
    const atServer: [ClientId, string][] = [];
    const atClient: string[] = [];
    server.on(chat, (clientId, text) => atServer.push([clientId, text]));
    client.on(chat, (text) => atClient.push(text));
    client.call(chat, 'up');
    server.toClient('b', chat, 'down');
    client.receive(sent[0]!.bytes);
    expect(atServer).toEqual([['b', 'up']]);
    expect(atClient).toEqual(['down']);
  });
});
