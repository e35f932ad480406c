import { isTickwireError } from '@tickwire/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ArenaMetadata,
  type Input,
  isFree,
  MAX_REWIND_MS,
  PLAYER,
  quantizePosition,
  RESPAWN_MS,
  SPAWNS,
  stepMovement,
  TICK_MS,
  TICK_RATE_HZ,
  VIEW_RADIUS,
  WEAPON,
} from '../shared/game.js';
import {
  cleanName,
  inputsToConsume,
  MAX_INPUTS_PER_TICK,
  MAX_QUEUED_INPUTS,
  tickTime,
} from './arena.js';
import {
  type ArenaHarness,
  type ArenaHarnessOptions,
  createArenaHarness,
  type HarnessClient,
} from './test-harness.js';

let harness: ArenaHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function setup(options: ArenaHarnessOptions = {}): ArenaHarness {
  harness = createArenaHarness({ botsEnabled: false, ...options });
  return harness;
}

const input = (seq: number, fields: Partial<Omit<Input, 'seq'>> = {}): Input => ({
  seq,
  dx: 0,
  dy: 0,
  angle: 0,
  fire: false,
  viewTime: 0,
  ...fields,
});

/** Puts a player's avatar somewhere (tests only: the game never teleports a living avatar). */
function place(h: ArenaHarness, who: HarnessClient, x: number, y: number): void {
  const entity = h.player(who).entity;
  entity.set('x', x);
  entity.set('y', y);
}

const position = (h: ArenaHarness, who: HarnessClient) => {
  const entity = h.player(who).entity;
  return { x: entity.get('x'), y: entity.get('y') };
};

describe('arena: joining', () => {
  it('spawns an avatar at a free spawn, names it and tells the client which one is its own', async () => {
    const h = setup();
    const ada = await h.join({ name: '  Ada  ' });
    const anon = await h.join();
    const [you] = ada.received('you');
    expect(you?.entityId).toBe(h.player(ada).entity.id);
    expect(you?.entityId).toBeGreaterThan(0); // 0 means "nobody" in shot messages
    const entity = h.player(ada).entity;
    expect(entity.values()).toMatchObject({ hp: PLAYER.maxHp, alive: true, score: 0, bot: false });
    expect(entity.get('name')).toBe('Ada');
    expect(h.player(anon).entity.get('name')).toBe('player-2');
    const spawnOf = (who: HarnessClient) => SPAWNS.find((s) => s.x === position(h, who).x);
    expect(spawnOf(ada)).toBeDefined();
    expect(spawnOf(anon)).toBeDefined();
    // The second player spawns as far as possible from the first.
    const distance = Math.hypot(
      position(h, ada).x - position(h, anon).x,
      position(h, ada).y - position(h, anon).y,
    );
    for (const spawn of SPAWNS) {
      if (!isFree(spawn)) continue;
      expect(distance).toBeGreaterThanOrEqual(
        Math.hypot(spawn.x - position(h, ada).x, spawn.y - position(h, ada).y) - 1e-9,
      );
    }
    await h.tick();
    expect(ada.avatar()?.get('name')).toBe('Ada');
  });

  it('publishes the tick origin, the tick rate and the head counts as metadata', async () => {
    const h = setup();
    const origin = h.time.now();
    await h.join();
    const metadata = h.room().metadata as unknown as ArenaMetadata;
    expect(metadata).toEqual({ tickOrigin: origin, tickRateHz: TICK_RATE_HZ, humans: 1, bots: 0 });
    // Tick n runs at tickOrigin + n × TICK_MS on the server clock.
    await h.tick(3);
    expect(h.room().tick).toBe(3);
    expect(h.time.now() - metadata.tickOrigin).toBeCloseTo(tickTime(3), 2);
  });

  it('tells its members the new tick origin when a stall drops ticks (metadata reaches joins only)', async () => {
    const h = setup();
    const ada = await h.join();
    const before = (h.room().metadata as unknown as ArenaMetadata).tickOrigin;
    await h.tick(2);
    expect(ada.received('timeline')).toEqual([]);
    // The process stalls for a second: the tick loop catches up a few steps and drops the rest.
    h.stall(1000);
    await h.tick();
    const dropped = h.room().stats.droppedMs;
    expect(dropped).toBeGreaterThan(0);
    const origin = before + dropped;
    expect((h.room().metadata as unknown as ArenaMetadata).tickOrigin).toBe(origin);
    expect(ada.received('timeline')).toEqual([{ tickOrigin: origin }]);
    // Tick n runs at the new origin + n × TICK_MS on the server clock.
    expect(h.time.now() - origin).toBeGreaterThan(tickTime(h.room().tick) - 1e-6);
    expect(h.time.now() - origin).toBeLessThan(tickTime(h.room().tick + 1));
    // Later joins get it in the metadata; nothing more is said while the loop keeps time.
    await h.tick(3);
    expect(ada.received('timeline')).toHaveLength(1);
  });

  it('refuses join options that are not { name?: string }', async () => {
    const h = setup();
    const error = await h.join({ name: 42 }).catch((e: unknown) => e);
    expect(isTickwireError(error) && error.code).toBe('VALIDATION_FAILED');
    expect(String((error as Error).message)).toContain('name');
    await expect(h.join('Ada')).rejects.toThrow(/expected an object/);
  });

  it('cleans names: trimmed, no control characters, at most 24 UTF-8 bytes', () => {
    expect(cleanName('  Bob \n')).toBe('Bob');
    expect(cleanName('\u0007\u0000 ')).toBeNull();
    expect(cleanName('x'.repeat(40))).toBe('x'.repeat(24));
    const long = cleanName('é'.repeat(20)); // 2 bytes each
    expect(long).toBe('é'.repeat(12));
  });

  it('renames on a name message, ignoring blank names', async () => {
    const h = setup();
    const ada = await h.join({ name: 'Ada' });
    ada.send('name', { name: '  Grace ' });
    expect(h.player(ada).entity.get('name')).toBe('Grace');
    ada.send('name', { name: '   ' });
    expect(h.player(ada).entity.get('name')).toBe('Grace');
  });

  it('despawns the avatar when its player leaves', async () => {
    const h = setup();
    const ada = await h.join();
    const bob = await h.join();
    const id = h.player(ada).entity.id;
    place(h, bob, 1000, 250);
    place(h, ada, 1100, 250);
    await h.tick();
    expect(bob.see(id)).toBeDefined();
    await ada.leave();
    await h.tick();
    expect(bob.see(id)).toBeUndefined();
    expect(h.room().state.byEntity.has(id)).toBe(false);
    expect((h.room().metadata as unknown as ArenaMetadata).humans).toBe(1);
  });
});

describe('arena: movement', () => {
  it('moves the avatar exactly as stepMovement predicts, and the owner sees it', async () => {
    const h = setup();
    const ada = await h.join();
    let expected = position(h, ada);
    const steps: [number, number][] = [
      [1, 0],
      [1, 0.5],
      [0, -1],
      [-0.75, 0.25],
      [1, 1],
    ];
    let seq = 0;
    for (const [dx, dy] of steps) {
      ada.send('input', input(++seq, { dx, dy, angle: 0.5 }));
      await h.tick();
      expected = quantizePosition(stepMovement(expected, dx, dy, TICK_MS));
      expect(position(h, ada)).toEqual(expected);
    }
    expect(ada.avatar()?.get('x')).toBe(expected.x);
    expect(ada.avatar()?.get('y')).toBe(expected.y);
    expect(ada.avatar()?.get('lastInput')).toBe(seq);
    expect(ada.avatar()?.get('angle')).toBeCloseTo(0.5, 2);
  });

  it('takes two queued inputs a tick, up to four while catching up, and drops the oldest beyond MAX_QUEUED_INPUTS', async () => {
    expect([0, 1, 2, 3, 4, 5, 8].map(inputsToConsume)).toEqual([0, 1, 2, 2, 2, 4, 4]);
    const h = setup();
    const ada = await h.join();
    const player = h.player(ada);
    for (let seq = 1; seq <= 3; seq++) ada.send('input', input(seq, { dx: 1 }));
    await h.tick();
    expect(player.entity.get('lastInput')).toBe(2);
    expect(player.inputs).toHaveLength(1);
    await h.tick();
    expect(player.entity.get('lastInput')).toBe(3);
    // A burst of MAX_QUEUED_INPUTS + 2 (a second of stall): the two oldest are dropped.
    const last = 3 + MAX_QUEUED_INPUTS + 2;
    for (let seq = 4; seq <= last; seq++) ada.send('input', input(seq, { dx: 1 }));
    expect(player.inputs.map((i) => i.seq)).toEqual(
      Array.from({ length: MAX_QUEUED_INPUTS }, (_, i) => 6 + i),
    );
    await h.tick();
    expect(player.entity.get('lastInput')).toBe(9);
    const dropped = h.room().state.stats.droppedInputs;
    // Repeated and old sequence numbers are dropped.
    ada.send('input', input(last, { dx: 1 }));
    ada.send('input', input(2, { dx: 1 }));
    expect(h.room().state.stats.droppedInputs).toBe(dropped + 2);
    expect(player.inputs).toHaveLength(MAX_QUEUED_INPUTS - 4);
  });

  it('paces inputs by time: four inputs a tick do not move a player four times as fast', async () => {
    const h = setup();
    const ada = await h.join();
    const player = h.player(ada);
    const start = player.entity.get('x');
    let seq = 0;
    for (let tick = 0; tick < 30; tick++) {
      for (let i = 0; i < 4; i++) ada.send('input', input(++seq, { dx: 1 }));
      await h.tick();
    }
    // 30 ticks earn 30 inputs, plus the initial credit of MAX_INPUTS_PER_TICK.
    expect(h.room().state.stats.inputs).toBeLessThanOrEqual(30 + 4);
    const step = (PLAYER.speed * TICK_MS) / 1000;
    expect(player.entity.get('x') - start).toBeLessThanOrEqual(34 * step + 1e-6);
  });

  it('refuses malformed inputs and survives odd ones without stopping the room', async () => {
    const h = setup();
    const ada = await h.join();
    // Bytes that are no valid input: refused by the registry (the server answers with an error).
    expect(() => h.manager.receive(ada.client, new Uint8Array([1, 0xff]), 'reliable')).toThrow(
      /input|decode|bytes/i,
    );
    expect(h.room().stats.rejectedMessages).toBe(1);
    // A view time that is no time at all: the shot is tested at the present.
    ada.send('input', input(1, { fire: true, viewTime: Number.NaN }));
    ada.send('input', input(2, { viewTime: Number.POSITIVE_INFINITY }));
    await h.tick();
    expect(h.room().stats.hookErrors).toBe(0);
    expect(h.player(ada).entity.get('lastInput')).toBe(2);
    expect(ada.received('shot')).toHaveLength(1);
    expect(h.room().state.lagCompensation.stats().shots['invalid-claim']).toBe(1);
  });
});

describe('arena: visibility', () => {
  it("sends lastInput to the avatar's owner only, and nothing beyond the view radius", async () => {
    const h = setup();
    const ada = await h.join();
    const bob = await h.join();
    const far = await h.join();
    place(h, ada, 800, 1250);
    place(h, bob, 1000, 1250);
    place(h, far, 800 + VIEW_RADIUS + 400, 2800);
    ada.send('input', input(7));
    await h.tick(2);
    const adaId = h.player(ada).entity.id;
    expect(ada.see(adaId)?.get('lastInput')).toBe(7);
    const seenByBob = bob.see(adaId);
    expect(seenByBob?.get('x')).toBe(800);
    expect(seenByBob?.get('lastInput')).toBeUndefined();
    expect(far.see(adaId)).toBeUndefined();
    expect(ada.see(h.player(far).entity.id)).toBeUndefined();
    expect([...ada.replica.entities()].map((e) => e.id)).not.toContain(0);
  });
});

describe('arena: shooting', () => {
  // An open lane: y = 1250 between x = 700 and 1350 has no wall.
  const lane = { shooterX: 800, targetX: 1200, y: 1250 };

  async function duel(options: ArenaHarnessOptions = {}) {
    const h = setup(options);
    const shooter = await h.join({ name: 'shooter' });
    const target = await h.join({ name: 'target' });
    place(h, shooter, lane.shooterX, lane.y);
    place(h, target, lane.targetX, lane.y);
    await h.tick();
    return { h, shooter, target };
  }

  let seqs = new Map<HarnessClient, number>();
  afterEach(() => {
    seqs = new Map();
  });
  const next = (who: HarnessClient) => {
    const seq = (seqs.get(who) ?? 0) + 1;
    seqs.set(who, seq);
    return seq;
  };

  const fire = (h: ArenaHarness, who: HarnessClient, angle: number, viewTime?: number) =>
    who.send(
      'input',
      input(next(who), { angle, fire: true, viewTime: viewTime ?? tickTime(h.room().tick) }),
    );

  /** The weapon cools down on the player's own inputs: ten idle ones, one a tick. */
  const cool = async (h: ArenaHarness, who: HarnessClient) => {
    for (let i = 0; i < 10; i++) {
      who.send('input', input(next(who)));
      await h.tick();
    }
  };

  it('hits where the target was at the view time and misses where it is now (lag compensation)', async () => {
    const { h, shooter, target } = await duel();
    const seen = tickTime(h.room().tick); // the shooter's view: the target on the lane
    for (let i = 0; i < 10; i++) {
      target.send('input', input(next(target), { dy: 1 }));
      await h.tick();
    }
    expect(position(h, target).y - lane.y).toBeGreaterThan(PLAYER.radius * 4);
    expect(h.room().tick * TICK_MS - seen).toBeLessThan(MAX_REWIND_MS);

    fire(h, shooter, 0, seen);
    await h.tick();
    const targetId = h.player(target).entity.id;
    const [hit] = shooter.received('shot');
    expect(hit).toMatchObject({ shooter: h.player(shooter).entity.id, target: targetId });
    expect(hit?.toX).toBeCloseTo(lane.targetX - PLAYER.radius, 3); // the rewound circle's edge
    expect(h.player(target).entity.get('hp')).toBe(PLAYER.maxHp - WEAPON.damage);
    expect(target.received('shot')).toHaveLength(1); // everyone gets the tracer

    await cool(h, shooter);
    fire(h, shooter, 0); // what is there now: nothing
    await h.tick();
    const miss = shooter.received('shot')[1];
    expect(miss?.target).toBe(0);
    expect(h.player(target).entity.get('hp')).toBe(PLAYER.maxHp - WEAPON.damage);
  });

  it('rewinds at most MAX_REWIND_MS: an older view time is tested at the window edge', async () => {
    const { h, shooter, target } = await duel();
    const seen = tickTime(h.room().tick);
    for (let i = 0; i < 20; i++) {
      target.send('input', input(next(target), { dy: 1 }));
      await h.tick();
    }
    expect(h.room().tick * TICK_MS - seen).toBeGreaterThan(MAX_REWIND_MS + 100);
    fire(h, shooter, 0, seen);
    await h.tick();
    expect(shooter.received('shot')[0]?.target).toBe(0);
    expect(h.room().state.lagCompensation.stats().shots.window).toBe(1);
    // A view time in the future is tested at the present (the target is off the lane): a miss.
    await cool(h, shooter);
    fire(h, shooter, 0, tickTime(h.room().tick) + 5_000);
    await h.tick();
    expect(shooter.received('shot')[1]?.target).toBe(0);
    expect(h.player(target).entity.get('hp')).toBe(PLAYER.maxHp);
  });

  it('stops shots at walls and at the weapon range, and honours the cooldown', async () => {
    const { h, shooter, target } = await duel();
    // The central block (1400..1600 on both axes) between the two.
    place(h, shooter, 1300, 1500);
    place(h, target, 1700, 1500);
    await h.tick();
    fire(h, shooter, 0);
    fire(h, shooter, 0); // same tick: the weapon is cooling down
    await h.tick();
    const shots = shooter.received('shot');
    expect(shots).toHaveLength(1);
    expect(shots[0]).toMatchObject({ target: 0 });
    expect(shots[0]?.toX).toBeCloseTo(1400, 3);
    await cool(h, shooter);
    place(h, shooter, 100, 250);
    await h.tick();
    fire(h, shooter, 0);
    await h.tick();
    const long = shooter.received('shot')[1]!;
    expect(Math.hypot(long.toX - long.fromX, long.toY - long.fromY)).toBeCloseTo(WEAPON.range, 3);
    expect(h.player(target).entity.get('hp')).toBe(PLAYER.maxHp);
  });

  it('kills at 0 hp: kill message, score, a dead avatar that cannot act, then a respawn at full hp', async () => {
    const { h, shooter, target } = await duel();
    const shooterId = h.player(shooter).entity.id;
    const targetId = h.player(target).entity.id;
    const shotsToKill = Math.ceil(PLAYER.maxHp / WEAPON.damage);
    for (let i = 0; i < shotsToKill; i++) {
      fire(h, shooter, 0);
      await cool(h, shooter);
    }
    expect(shooter.received('kill')).toEqual([{ killer: shooterId, victim: targetId }]);
    expect(target.received('kill')).toHaveLength(1);
    const victim = h.player(target).entity;
    expect(victim.values()).toMatchObject({ hp: 0, alive: false });
    expect(h.player(shooter).entity.get('score')).toBe(1);
    expect(shooter.see(targetId)?.get('alive')).toBe(false);

    // The dead neither move nor shoot (their inputs are still acknowledged).
    const at = position(h, target);
    target.send('input', input(next(target), { dx: 1, fire: true, angle: Math.PI }));
    await h.tick();
    expect(position(h, target)).toEqual(at);
    expect(victim.get('lastInput')).toBe(seqs.get(target));
    expect(target.received('shot')).toHaveLength(shotsToKill);
    // Nor can they be hit.
    fire(h, shooter, 0);
    await h.tick();
    expect(shooter.received('shot').at(-1)?.target).toBe(0);

    const youBefore = target.received('you').length;
    await h.tick(Math.ceil(RESPAWN_MS / TICK_MS));
    expect(victim.values()).toMatchObject({ hp: PLAYER.maxHp, alive: true });
    expect(SPAWNS.some((s) => s.x === victim.get('x') && s.y === victim.get('y'))).toBe(true);
    expect(target.received('you')).toHaveLength(youBefore + 1);
    expect(target.received('you').at(-1)).toEqual({ entityId: targetId });
    expect(h.room().stats.hookErrors).toBe(0);
  });

  it('counts the inputs still queued when a player is killed as dropped', async () => {
    const { h, shooter, target } = await duel();
    const shotsToKill = Math.ceil(PLAYER.maxHp / WEAPON.damage);
    for (let i = 0; i < shotsToKill - 1; i++) {
      fire(h, shooter, 0);
      await cool(h, shooter);
    }
    const dropped = h.room().state.stats.droppedInputs;
    const applied = h.room().state.stats.inputs;
    // The killing shot's tick: the target sends six idle inputs (a burst), the step takes four,
    // and the two left in the queue die with the player.
    fire(h, shooter, 0);
    for (let i = 0; i < 6; i++) target.send('input', input(next(target)));
    await h.tick();
    expect(h.player(target).entity.get('alive')).toBe(false);
    expect(h.player(target).inputs).toHaveLength(0);
    expect(h.room().state.stats.inputs).toBe(applied + 1 + MAX_INPUTS_PER_TICK);
    expect(h.room().state.stats.droppedInputs).toBe(dropped + 6 - MAX_INPUTS_PER_TICK);
  });

  it('never hits a newcomer where a player who left stood, though it got the same entity id', async () => {
    const { h, shooter, target } = await duel();
    const goneId = h.player(target).entity.id;
    const seen = tickTime(h.room().tick); // the shooter's view: the target on the lane
    await target.leave();
    const newcomer = await h.join({ name: 'newcomer' });
    // The world hands the freed id to the next avatar (here, far from the lane).
    expect(h.player(newcomer).entity.id).toBe(goneId);
    expect(Math.abs(position(h, newcomer).y - lane.y)).toBeGreaterThan(PLAYER.radius * 4);
    await h.tick();
    fire(h, shooter, 0, seen);
    await h.tick();
    // What the shooter saw was the player who left: nobody to hit now.
    expect(shooter.received('shot')[0]?.target).toBe(0);
    expect(h.player(newcomer).entity.get('hp')).toBe(PLAYER.maxHp);
  });

  it('a player killed earlier in a tick neither shoots in it nor shields the one behind', async () => {
    const h = setup();
    const a = await h.join();
    const b = await h.join();
    const c = await h.join();
    place(h, a, 800, 1250);
    place(h, b, 1000, 1250);
    place(h, c, 1200, 1250);
    h.player(b).entity.set('hp', WEAPON.damage);
    await h.tick();
    const alive = tickTime(h.room().tick); // b stands between a and c
    fire(h, a, 0); // kills b…
    fire(h, b, Math.PI); // …who fired back in the same tick
    await h.tick();
    expect(h.player(b).entity.get('alive')).toBe(false);
    expect(h.player(a).entity.get('hp')).toBe(PLAYER.maxHp);
    await cool(h, a);
    // Rewound to when b still stood there, but b is dead now: the shot goes through to c.
    fire(h, a, 0, alive);
    await h.tick();
    expect(a.received('shot').at(-1)?.target).toBe(h.player(c).entity.id);
  });
});

describe('arena: bots', () => {
  it('tops the room up to minPlayers with bots, who leave as humans join', async () => {
    const h = setup({ botsEnabled: true, minPlayers: 4 });
    const counts = () => {
      const metadata = h.room().metadata as unknown as ArenaMetadata;
      return [metadata.humans, metadata.bots];
    };
    const first = await h.join();
    expect(counts()).toEqual([1, 3]);
    const bots = [...h.room().state.players.values()].filter((p) => p.bot !== null);
    expect(bots.every((p) => p.entity.get('bot') && p.entity.get('name').includes('bot'))).toBe(
      true,
    );
    await h.join();
    expect(counts()).toEqual([2, 2]);
    const third = await h.join();
    await h.join();
    expect(counts()).toEqual([4, 0]);
    await h.join();
    expect(counts()).toEqual([5, 0]);
    await third.leave();
    await first.leave();
    expect(counts()).toEqual([3, 1]);
    expect(h.room().state.players.size).toBe(4);
  });

  it('never exceeds the capacity, and adds no bots when disabled', async () => {
    const h = setup({ botsEnabled: true, minPlayers: 10, capacity: 3 });
    await h.join();
    expect(h.room().state.players.size).toBe(3);
    const quiet = createArenaHarness({ botsEnabled: false, minPlayers: 10 });
    try {
      await quiet.join();
      expect(quiet.room().state.players.size).toBe(1);
    } finally {
      await quiet.close();
    }
  });

  it('moves bots with the same input path as humans', async () => {
    const h = setup({ botsEnabled: true, minPlayers: 2 });
    await h.join();
    const bot = [...h.room().state.players.values()].find((p) => p.bot !== null)!;
    const start = { x: bot.entity.get('x'), y: bot.entity.get('y') };
    await h.tick(15);
    expect(bot.entity.get('lastInput')).toBe(15);
    const moved = Math.hypot(bot.entity.get('x') - start.x, bot.entity.get('y') - start.y);
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual((PLAYER.speed * 15 * TICK_MS) / 1000 + 1e-6);
  });
});
