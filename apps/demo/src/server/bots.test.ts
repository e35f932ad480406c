import { createRandom } from '@tickwire/core';
import { afterEach, describe, expect, it } from 'vitest';
import { isFree, OBSTACLES, TICK_MS, WEAPON } from '../shared/game.js';
import {
  BOT_SIGHT_RANGE,
  type BotSelf,
  type BotTarget,
  botName,
  createBotBrain,
  hasLineOfSight,
  normalizeAngle,
  pickWaypoint,
  randomFreePoint,
  wantedBots,
} from './bots.js';
import { type ArenaHarness, createArenaHarness } from './test-harness.js';

const self = (x: number, y: number, angle = 0): BotSelf => ({
  entityId: 1,
  x,
  y,
  angle,
  alive: true,
});
const enemy = (x: number, y: number, alive = true): BotTarget => ({ entityId: 2, x, y, alive });

describe('bot brain', () => {
  it('counts the bots a room needs', () => {
    expect(wantedBots(1, 6, 16)).toBe(5);
    expect(wantedBots(6, 6, 16)).toBe(0);
    expect(wantedBots(9, 6, 16)).toBe(0);
    expect(wantedBots(1, 30, 16)).toBe(15); // never above capacity
    expect(botName(1)).toBe('Ada (bot)');
    expect(botName(21)).toBe('Ada (bot) 2');
  });

  it('sees through open floor but not through walls', () => {
    const block = OBSTACLES[8]!; // the central block
    const y = block.y + block.h / 2;
    expect(hasLineOfSight({ x: block.x - 100, y }, { x: block.x + block.w + 100, y })).toBe(false);
    expect(hasLineOfSight({ x: 800, y: 1250 }, { x: 1300, y: 1250 })).toBe(true);
    expect(normalizeAngle(3 * Math.PI)).toBeCloseTo(Math.PI);
    expect(normalizeAngle(-3 * Math.PI)).toBeCloseTo(Math.PI);
  });

  it('picks free waypoints', () => {
    const random = createRandom(5);
    for (let i = 0; i < 200; i++) {
      expect(isFree(randomFreePoint(random))).toBe(true);
      expect(isFree(pickWaypoint(random, { x: 1500, y: 900 }))).toBe(true);
    }
  });

  it('wanders towards a waypoint when no enemy is in sight', () => {
    const brain = createBotBrain(createRandom(1));
    const input = brain.think(self(800, 1250), [enemy(800 + BOT_SIGHT_RANGE + 50, 1250)], 0);
    expect(brain.target).toBeNull();
    expect(brain.waypoint).not.toBeNull();
    expect(input.fire).toBe(false);
    expect(Math.hypot(input.dx, input.dy)).toBeCloseTo(1);
    // Moving towards the waypoint.
    const toward = Math.atan2(brain.waypoint!.y - 1250, brain.waypoint!.x - 800);
    expect(Math.atan2(input.dy, input.dx)).toBeCloseTo(toward);
  });

  it('ignores enemies behind walls and dead ones', () => {
    const brain = createBotBrain(createRandom(1));
    const block = OBSTACLES[8]!;
    const y = block.y + block.h / 2;
    brain.think(self(block.x - 50, y), [enemy(block.x + block.w + 50, y)], 0);
    expect(brain.target).toBeNull();
    brain.think(self(800, 1250), [enemy(1000, 1250, false)], 0);
    expect(brain.target).toBeNull();
    // Its own entity is not an enemy.
    brain.think(self(800, 1250), [{ entityId: 1, x: 810, y: 1250, alive: true }], 0);
    expect(brain.target).toBeNull();
  });

  it('turns towards a visible enemy, reacts, and fires once aimed', () => {
    const brain = createBotBrain(createRandom(3), { aimErrorRad: 0 });
    const at = self(800, 1250, Math.PI); // facing away
    const target = enemy(1100, 1250);
    const inputs = [];
    let angle = at.angle;
    for (let tick = 0; tick < 30; tick++) {
      const input = brain.think({ ...at, angle }, [target], tick * TICK_MS);
      angle = input.angle;
      inputs.push(input);
    }
    expect(brain.target).toBe(2);
    expect(inputs[0]!.fire).toBe(false); // not aimed yet, and reaction time
    expect(Math.abs(normalizeAngle(inputs.at(-1)!.angle))).toBeLessThan(0.01);
    expect(inputs.some((input) => input.fire)).toBe(true);
    expect(inputs.map((input) => input.seq)).toEqual(inputs.map((_, i) => i + 1));
    // The view time rides along.
    expect(inputs[3]!.viewTime).toBe(3 * TICK_MS);
    // Beyond the weapon's range it does not fire.
    const far = createBotBrain(createRandom(3), { aimErrorRad: 0 });
    for (let tick = 0; tick < 30; tick++) {
      const input = far.think(self(100, 250), [enemy(100 + WEAPON.range + 50, 250)], 0);
      expect(input.fire).toBe(false);
    }
  });

  it('is deterministic for a seed', () => {
    const run = (seed: number) => {
      const brain = createBotBrain(createRandom(seed));
      const out = [];
      let at = self(200, 200);
      for (let tick = 0; tick < 50; tick++) {
        const input = brain.think(at, [enemy(2800, 2800)], 0);
        at = { ...at, x: at.x + input.dx * 8, y: at.y + input.dy * 8, angle: input.angle };
        out.push(input);
      }
      return out;
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('idles while dead', () => {
    const brain = createBotBrain(createRandom(1));
    const input = brain.think({ ...self(800, 1250), alive: false }, [enemy(900, 1250)], 0);
    expect(input).toMatchObject({ dx: 0, dy: 0, fire: false });
  });
});

describe('a room of bots', () => {
  let harness: ArenaHarness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it('a room of 20 bots runs 60 s of simulated play without errors; the server p99 tick time is reported', async () => {
    const durations: number[] = [];
    harness = createArenaHarness({
      seed: 2024,
      botsEnabled: true,
      minPlayers: 21,
      capacity: 21,
      onTick(run) {
        const start = performance.now();
        run();
        durations.push(performance.now() - start);
      },
    });
    const h = harness;
    const watcher = await h.join({ name: 'watcher' }); // one human: the room exists while it stays
    const state = h.room().state;
    expect([...state.players.values()].filter((p) => p.bot !== null)).toHaveLength(20);

    const ticks = Math.round(60_000 / TICK_MS);
    await h.tick(ticks);

    expect(h.room().tick).toBe(ticks);
    expect(h.room().stats.hookErrors).toBe(0);
    expect(h.room().stats.droppedTicks).toBe(0);
    expect(durations).toHaveLength(ticks);
    const sorted = [...durations].sort((a, b) => a - b);
    const p99 = sorted[Math.ceil(sorted.length * 0.99) - 1]!;
    const p50 = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `arena, 20 bots + 1 client, ${ticks} ticks: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms, max ${sorted.at(-1)!.toFixed(3)} ms per tick (simulation + replication); ${state.stats.kills} kills, ${state.stats.hits}/${state.stats.shots} hits`,
    );
    expect(p99).toBeGreaterThan(0);
    // The bots fought: shots, hits and kills, and the scores add up to the kills.
    expect(state.stats.kills).toBeGreaterThan(5);
    expect(state.stats.hits).toBeGreaterThan(state.stats.kills);
    let scores = 0;
    for (const player of state.players.values()) scores += player.entity.get('score');
    expect(scores).toBe(state.stats.kills);
    expect(watcher.received('kill').length).toBe(state.stats.kills);
    // Nobody ended up inside a wall.
    for (const player of state.players.values())
      expect(isFree({ x: player.entity.get('x'), y: player.entity.get('y') })).toBe(true);
    // The watcher's replica holds what it can see, with every bot flagged as one.
    const seen = [...watcher.replica.entities()];
    expect(seen.length).toBeGreaterThan(1);
  }, 60_000);

  it('plays the same game for the same seed', async () => {
    const play = async (seed: number) => {
      const h = createArenaHarness({ seed, botsEnabled: true, minPlayers: 8 });
      try {
        await h.join();
        await h.tick(300);
        return [...h.room().state.players.values()].map((p) => p.entity.values());
      } finally {
        await h.close();
      }
    };
    const a = await play(11);
    expect(await play(11)).toEqual(a);
    expect(await play(12)).not.toEqual(a);
  });
});
