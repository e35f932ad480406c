import { createManualTime, ErrorCode, type TimeSource } from '@tickwire/core';
import {
  createMemoryConnectionPair,
  createMemoryLogger,
  createMemoryMetrics,
} from '@tickwire/core/memory';
import { defineMessages, defineSchema, t } from '@tickwire/serialization';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type AnyRoomDefinition, defineRoom, type RoomClient, type RoomMember } from './room.js';
import { createRoomManager } from './room-manager.js';

const client = (sessionId: string): RoomClient => ({
  sessionId,
  connection: createMemoryConnectionPair()[0],
});

const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('defineRoom', () => {
  it('infers state, message and option types for the hooks', () => {
    const definition = defineRoom({
      messages: {
        client: defineMessages({ move: { id: 0, schema: defineSchema({ dx: t.i8() }) } }),
        server: defineMessages({ moved: { id: 0, schema: defineSchema({ x: t.i32() }) } }),
      },
      options: defineSchema({ map: t.enum(['dust', 'aztec']) }),
      state: (_room, options) => ({ map: options.map, x: 0 }),
      onJoin(room, member, options) {
        expectTypeOf(options.map).toEqualTypeOf<'dust' | 'aztec'>();
        expectTypeOf(member).toEqualTypeOf<RoomMember>();
        room.send(member, 'moved', { x: room.state.x });
      },
      onMessage: {
        move(room, _member, value) {
          expectTypeOf(value.dx).toEqualTypeOf<number>();
          room.state.x += value.dx;
          room.broadcast('moved', { x: room.state.x });
        },
      },
    });
    // Typed definitions fit where any definition is taken (a server's rooms config).
    const config: Record<string, AnyRoomDefinition> = { arena: definition };
    expect(config.arena).toBe(definition);
    expect(Object.isFrozen(definition)).toBe(true);
    expect(definition.capacity).toBeUndefined();
  });

  it('refuses bad fields with INVALID_ARGUMENT naming them', () => {
    const registry = defineMessages({ move: { id: 0, schema: defineSchema({ dx: t.i8() }) } });
    const bad: [object, RegExp][] = [
      [{ name: '' }, /name must be a non-empty string/],
      [{ capacity: 1.5 }, /capacity must be a positive integer/],
      [{ tickRateHz: -1 }, /tickRateHz must be a number in \[0, 1000\]/],
      [{ tickRateHz: 2000 }, /tickRateHz/],
      [{ maxCatchUpSteps: 0 }, /maxCatchUpSteps/],
      [{ autoDispose: 'yes' }, /autoDispose must be a boolean/],
      [{ messages: { client: {} } }, /messages.client must be a registry/],
      [{ messages: { server: 5 } }, /messages.server must be a registry/],
      [{ options: { parse() {} } }, /options must be a defineSchema schema or a Standard Schema/],
      [{ onJoin: 'hello' }, /onJoin must be a function/],
      [{ onMessage: 5 }, /onMessage must be an object/],
      [{ onMessage: { move: 1 } }, /onMessage.move must be a function/],
      [{ onMessage: { move() {} } }, /onMessage.move handles no message of messages.client/],
      [
        { messages: { client: registry }, onMessage: { jump() {} } },
        /onMessage.jump handles no message/,
      ],
    ];
    for (const [definition, message] of bad) {
      expect(() => defineRoom({ name: 'r', ...definition } as never)).toThrow(message);
      expect(() => defineRoom(definition as never)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    expect(() => defineRoom(null as never)).toThrow(/must be an object/);
  });
});

describe('tick loop', () => {
  it('runs fixed steps at tickRateHz: onTick(room, dtMs, tick), then the tick event', async () => {
    const time = createManualTime();
    const metrics = createMemoryMetrics();
    const manager = createRoomManager({ time, metrics });
    const calls: string[] = [];
    manager.define('game', {
      tickRateHz: 20,
      onTick: (room, dtMs, tick) => {
        calls.push(`onTick ${tick} ${dtMs} ${room.tick}`);
      },
    });
    const room = await manager.create('game', client('a'));
    room.on('tick', (tick, dtMs) => calls.push(`tick ${tick} ${dtMs}`));
    time.advance(49);
    expect(calls).toEqual([]);
    time.advance(1);
    time.advance(100);
    expect(calls).toEqual([
      'onTick 1 50 1',
      'tick 1 50',
      'onTick 2 50 2',
      'tick 2 50',
      'onTick 3 50 3',
      'tick 3 50',
    ]);
    expect(room.tickRateHz).toBe(20);
    expect(room.stats.ticks).toBe(3);
    const series = metrics.snapshot().find((m) => m.name === 'tickwire_room_tick_duration_ms');
    expect(series?.series[0]).toMatchObject({ labels: { room: 'game' }, count: 3 });
  });

  it('keeps 60 Hz exact over a long run (no float drift)', async () => {
    const time = createManualTime();
    const manager = createRoomManager({ time });
    manager.define('game', { tickRateHz: 60 });
    const room = await manager.create('game', client('a'));
    time.advance(60_000);
    expect(room.tick).toBe(3_600);
    expect(room.stats.droppedTicks).toBe(0);
  });

  it('after a stall runs at most maxCatchUpSteps steps per callback and counts the dropped time', async () => {
    const time = createManualTime();
    let stalledMs = 0;
    // A clock that jumps while no timer runs: what a blocked event loop looks like.
    const stalling: TimeSource = {
      now: () => time.now() + stalledMs,
      setTimeout: (callback, delayMs) => time.setTimeout(callback, delayMs),
      setInterval: (callback, periodMs) => time.setInterval(callback, periodMs),
    };
    const metrics = createMemoryMetrics();
    const logger = createMemoryLogger();
    const manager = createRoomManager({ time: stalling, metrics, logger });
    manager.define('game', { tickRateHz: 20, maxCatchUpSteps: 5 });
    const room = await manager.create('game', client('a'));
    time.advance(100);
    expect(room.tick).toBe(2);
    stalledMs = 1_000;
    time.advance(50);
    // 21 steps were due: 5 ran, 16 were dropped.
    expect(room.tick).toBe(7);
    expect(room.stats).toMatchObject({ droppedTicks: 16, droppedMs: 800 });
    expect(metrics.value('tickwire_room_ticks_dropped_total', { room: 'game' })).toBe(16);
    expect(logger.records.filter((r) => r.level === 'warn')).toHaveLength(1);
    // Then it is back on schedule, one step per period.
    time.advance(50);
    expect(room.tick).toBe(8);
    expect(room.stats.droppedTicks).toBe(16);
  });

  it('does not drift when every wake-up is late: each one is armed for the next due time', async () => {
    const time = createManualTime();
    // Every timer fires 7 ms late, as on a busy event loop.
    const late: TimeSource = {
      now: () => time.now(),
      setTimeout: (callback, delayMs) => time.setTimeout(callback, delayMs + 7),
      setInterval: (callback, periodMs) => time.setInterval(callback, periodMs + 7),
    };
    const lateness: number[] = [];
    const manager = createRoomManager({ time: late });
    manager.define('game', {
      tickRateHz: 20,
      onTick: (_room, _dtMs, tick) => lateness.push(time.now() - tick * 50),
    });
    await manager.create('game', client('a'));
    time.advance(10_000);
    expect(lateness).toHaveLength(199); // step 200 is due at 10 000 and runs at 10 007
    expect(Math.max(...lateness)).toBeLessThanOrEqual(7);
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(7);
  });

  it('a throwing onTick is logged and counted; the loop goes on', async () => {
    const time = createManualTime();
    const metrics = createMemoryMetrics();
    const logger = createMemoryLogger();
    const manager = createRoomManager({ time, metrics, logger });
    const ticks: number[] = [];
    manager.define('buggy', {
      tickRateHz: 10,
      onTick: (_room, _dt, tick) => {
        if (tick % 2 === 0) throw new Error(`tick ${tick} bug`);
      },
    });
    const room = await manager.create('buggy', client('a'));
    room.on('tick', (tick) => ticks.push(tick));
    time.advance(400);
    expect(ticks).toEqual([1, 2, 3, 4]);
    expect(room.stats.hookErrors).toBe(2);
    expect(
      metrics.value('tickwire_room_hook_errors_total', { room: 'buggy', hook: 'onTick' }),
    ).toBe(2);
    expect(logger.records[0]).toMatchObject({
      level: 'error',
      fields: { hook: 'onTick', room: 'buggy' },
    });
  });

  it('an async onTick that rejects is counted too', async () => {
    const time = createManualTime();
    const manager = createRoomManager({ time });
    manager.define('async', {
      tickRateHz: 10,
      onTick: async () => {
        throw new Error('later');
      },
    });
    const room = await manager.create('async', client('a'));
    time.advance(100);
    await flush();
    expect(room.stats.hookErrors).toBe(1);
  });

  it('tickRateHz 0 sets no timer; disposal stops the loop', async () => {
    const time = createManualTime();
    const manager = createRoomManager({ time });
    manager.define('static', { tickRateHz: 0 });
    manager.define('game', { tickRateHz: 10 });
    const still = await manager.create('static', client('a'));
    expect(time.pending).toBe(0);
    const room = await manager.create('game', client('b'));
    expect(time.pending).toBe(1);
    time.advance(100);
    await room.dispose();
    expect(time.pending).toBe(0);
    time.advance(1_000);
    expect(room.tick).toBe(1);
    expect(still.tick).toBe(0);
  });
});
