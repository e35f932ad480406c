import { createRandom, ErrorCode, isTickwireError, type SeededRandom } from '@tickwire/core';
import { t } from '@tickwire/serialization';
import { describe, expect, it } from 'vitest';
import { defineEntityType } from './entity-type.js';
import {
  createFilterInterest,
  createGridInterest,
  createManualInterest,
  type GridInterestOptions,
  type Interest,
  type Point,
  unionInterest,
  type View,
} from './interest.js';
import { type ClientId, createWorld, type Entity, type World } from './world.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return isTickwireError(error) ? error.code : 'not a TickwireError';
  }
  return undefined;
};

const Dot = defineEntityType('dot', { x: t.f64(), y: t.f64() });
const Flag = defineEntityType('flag', { on: t.bool() });

const newWorld = (): World => createWorld({ types: [Dot, Flag] });

/** Dots have a position (possibly non-finite); flags have none. */
const position = (entity: Entity, out: Point): boolean => {
  if (entity.type.name !== 'dot') return false;
  out.x = entity.get('x') as number;
  out.y = entity.get('y') as number;
  return true;
};

const finitePosition = (entity: Entity): Point | undefined => {
  const out = { x: Number.NaN, y: Number.NaN };
  return position(entity, out) && Number.isFinite(out.x) && Number.isFinite(out.y)
    ? out
    : undefined;
};

const visibleOf = (interest: Interest, clientId: ClientId): number[] => {
  const out: number[] = [];
  interest.visible(clientId, out);
  return out;
};

const sorted = (ids: number[]): number[] => [...ids].sort((a, b) => a - b);

interface Reference {
  global: boolean;
  filter?: (clientId: ClientId, entity: Entity) => boolean;
  hysteresis: number;
  /** Last visible set per client as `id:generation`, for hysteresis. */
  memory: Map<ClientId, Set<string>>;
}

/** The visible set by brute force: `dx² + dy² ≤ r²` over every entity. */
function bruteForce(
  world: World,
  view: View | undefined,
  clientId: ClientId,
  reference: Reference,
): number[] {
  const out: number[] = [];
  const previous = reference.memory.get(clientId);
  const next = new Set<string>();
  const valid =
    view !== undefined && Number.isFinite(view.x) && Number.isFinite(view.y) && view.radius >= 0;
  for (const entity of world.entities()) {
    if (reference.filter !== undefined && !reference.filter(clientId, entity)) continue;
    const p = finitePosition(entity);
    if (p === undefined) {
      if (reference.global) out.push(entity.id);
      continue;
    }
    if (!valid) continue;
    const dx = p.x - view.x;
    const dy = p.y - view.y;
    const d2 = dx * dx + dy * dy;
    const reach = view.radius + reference.hysteresis;
    const key = `${entity.id}:${entity.generation}`;
    if (d2 <= view.radius * view.radius || (d2 <= reach * reach && previous?.has(key))) {
      out.push(entity.id);
      next.add(key);
    }
  }
  reference.memory.set(clientId, next);
  return out.sort((a, b) => a - b);
}

/** Random coordinates: uniform, snapped to cell edges, or stacked on one point. */
function randomCoordinate(rng: SeededRandom, extent: number, cellSize: number): number {
  const roll = rng.next();
  if (roll < 0.6) return rng.range(-extent, extent);
  if (roll < 0.85) return Math.round(rng.range(-extent, extent) / cellSize) * cellSize;
  return 0;
}

function randomView(
  rng: SeededRandom,
  world: World,
  extent: number,
  cellSize: number,
): View | undefined {
  const roll = rng.next();
  if (roll < 0.05) return undefined;
  const radii = [0, cellSize / 2, cellSize, 3 * cellSize, rng.range(0, extent / 2), extent / 10];
  if (roll < 0.3) {
    // Exactly at distance = radius from an entity: a 3-4-5 triangle, or along an axis.
    const dots = [...world.entities()].filter((e) => finitePosition(e) !== undefined);
    const p = finitePosition(dots[rng.int(dots.length)]!)!;
    const k = rng.int(20) + 1;
    return rng.chance(0.5)
      ? { x: p.x - 3 * k, y: p.y + 4 * k, radius: 5 * k }
      : { x: p.x, y: p.y - cellSize, radius: cellSize };
  }
  if (roll < 0.32) return { x: 0, y: 0, radius: Number.POSITIVE_INFINITY };
  return {
    x: randomCoordinate(rng, extent * 1.2, cellSize),
    y: randomCoordinate(rng, extent * 1.2, cellSize),
    radius: radii[rng.int(radii.length)]!,
  };
}

interface Scenario {
  seed: number;
  cellSize: number;
  extent: number;
  global?: boolean;
  filter?: (clientId: ClientId, entity: Entity) => boolean;
  hysteresis?: number;
  ticks?: number;
}

/** Runs a random moving world and checks every client against brute force each tick. */
function checkAgainstBruteForce(scenario: Scenario): void {
  const { seed, cellSize, extent, ticks = 4 } = scenario;
  const rng = createRandom(seed);
  const world = newWorld();
  const views = new Map<ClientId, View | undefined>();
  const options: GridInterestOptions = {
    cellSize,
    position,
    view: (clientId) => views.get(clientId),
  };
  if (scenario.global !== undefined) options.global = scenario.global;
  if (scenario.filter !== undefined) options.filter = scenario.filter;
  if (scenario.hysteresis !== undefined) options.hysteresis = scenario.hysteresis;
  const interest = createGridInterest(options);
  const reference: Reference = {
    global: scenario.global ?? true,
    hysteresis: scenario.hysteresis ?? 0,
    memory: new Map(),
  };
  if (scenario.filter !== undefined) reference.filter = scenario.filter;
  const spawnOne = () => {
    if (rng.chance(0.1)) world.spawn(Flag, { on: true });
    else
      world.spawn(Dot, {
        x: randomCoordinate(rng, extent, cellSize),
        y: randomCoordinate(rng, extent, cellSize),
      });
  };
  for (let i = 0; i < 300; i++) spawnOne();
  const clients: ClientId[] = [];
  for (let i = 0; i < 24; i++) clients.push(i % 2 === 0 ? i : `c${i}`);

  for (let tick = 0; tick < ticks; tick++) {
    for (const entity of [...world.entities()]) {
      const roll = rng.next();
      if (roll < 0.05) world.despawn(entity);
      else if (roll < 0.4 && entity.type.name === 'dot') {
        const step = rng.range(-cellSize, cellSize) * 2;
        entity.set('x' as never, ((entity.get('x') as number) + step) as never);
      }
    }
    for (let i = 0; i < 15; i++) spawnOne();
    for (const clientId of clients) views.set(clientId, randomView(rng, world, extent, cellSize));
    interest.prepare(world);
    for (const clientId of clients) {
      const got = visibleOf(interest, clientId);
      expect(new Set(got).size, 'no duplicates').toBe(got.length);
      expect(sorted(got)).toEqual(bruteForce(world, views.get(clientId), clientId, reference));
    }
  }
}

describe('createGridInterest', () => {
  it('matches brute force over random worlds, cell sizes and radii', () => {
    let seed = 1;
    for (const cellSize of [0.1, 1, 7.5, 50, 333, 5000])
      for (let i = 0; i < 3; i++) checkAgainstBruteForce({ seed: seed++, cellSize, extent: 500 });
  });

  it('matches brute force with global off and with a filter', () => {
    const filter = (clientId: ClientId, entity: Entity) =>
      (entity.id + String(clientId).length) % 3 !== 0;
    for (const cellSize of [2, 40]) {
      checkAgainstBruteForce({ seed: 100 + cellSize, cellSize, extent: 300, global: false });
      checkAgainstBruteForce({ seed: 200 + cellSize, cellSize, extent: 300, filter });
      checkAgainstBruteForce({
        seed: 300 + cellSize,
        cellSize,
        extent: 300,
        global: false,
        filter,
      });
    }
  });

  it('matches brute force with hysteresis over moving worlds', () => {
    for (const [cellSize, hysteresis] of [
      [10, 5],
      [3, 20],
      [100, 1],
    ] as const)
      checkAgainstBruteForce({
        seed: 400 + cellSize,
        cellSize,
        extent: 200,
        hysteresis,
        ticks: 10,
        filter: (_clientId, entity) => entity.id % 7 !== 3,
      });
  });

  it('sees entities exactly at the radius and on cell edges, with negative coordinates', () => {
    const world = newWorld();
    const at = (x: number, y: number) => world.spawn(Dot, { x, y }).id;
    const inside = [at(3, 4), at(5, 0), at(0, -5), at(-5, 0), at(-3, -4), at(0, 0), at(-5, -0)];
    at(5, 0.0001);
    at(-3.0001, -4);
    at(10, 10);
    let radius = 5;
    const interest = createGridInterest({
      cellSize: 5,
      position,
      view: () => ({ x: 0, y: 0, radius }),
    });
    interest.prepare(world);
    expect(sorted(visibleOf(interest, 'a'))).toEqual(sorted(inside));
    radius = 0;
    expect(visibleOf(interest, 'a')).toEqual([inside[5]]);
  });

  it('finds entities exactly at the radius along an axis whatever the float rounding', () => {
    // A view at p ± r on an axis puts the entity on the edge of the query box; with
    // fractional cell sizes, rounding must not push it into a cell outside the box.
    let mismatches = 0;
    for (let seed = 0; seed < 40; seed++) {
      const rng = createRandom(1000 + seed);
      const cellSize = [0.1, 0.3, 0.7, 1 / 3, 3][seed % 5]!;
      const world = newWorld();
      const points: Point[] = [];
      for (let i = 0; i < 200; i++) {
        const p = {
          x:
            Math.round(rng.range(-50, 50)) * cellSize +
            (rng.chance(0.3) ? rng.range(-1e-12, 1e-12) : 0),
          y: Math.round(rng.range(-50, 50)) * cellSize,
        };
        points.push(p);
        world.spawn(Dot, p);
      }
      let current: View = { x: 0, y: 0, radius: 0 };
      const interest = createGridInterest({ cellSize, position, view: () => current });
      interest.prepare(world);
      const reference: Reference = { global: true, hysteresis: 0, memory: new Map() };
      for (let q = 0; q < 200; q++) {
        const p = points[rng.int(points.length)]!;
        const r = rng.chance(0.5) ? Math.round(rng.range(0, 5)) * cellSize : rng.range(0, 3);
        const sign = rng.chance(0.5) ? 1 : -1;
        current = rng.chance(0.5)
          ? { x: p.x + sign * r, y: p.y, radius: r }
          : { x: p.x, y: p.y + sign * r, radius: r };
        const got = sorted(visibleOf(interest, 1));
        if (got.join() !== bruteForce(world, current, 1, reference).join()) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('handles huge coordinates without allocating per cell', () => {
    checkAgainstBruteForce({ seed: 500, cellSize: 10, extent: 1e9 });
    checkAgainstBruteForce({ seed: 501, cellSize: 1e-3, extent: 1e12 });

    const world = newWorld();
    const big = 1e17;
    const coordinates = [
      [big, big],
      [big + 16, big],
      [big + 64, big - 32],
      [-big, 0],
      [1e300, -1e300],
      [-1e300, 1e300],
      [Number.MAX_VALUE, 0],
      [-Number.MAX_VALUE, Number.MAX_VALUE],
      [0, 0],
      [1, -1],
    ];
    for (const [x, y] of coordinates) world.spawn(Dot, { x: x!, y: y! });
    const views: View[] = [
      { x: big, y: big, radius: 100 },
      { x: big, y: big, radius: 0 },
      { x: big + 16, y: big, radius: 16 },
      { x: 0, y: 0, radius: Number.POSITIVE_INFINITY },
      { x: 0, y: 0, radius: 1e9 },
      { x: Number.MAX_VALUE, y: 0, radius: 0 },
      { x: -Number.MAX_VALUE, y: Number.MAX_VALUE, radius: 1e300 },
      { x: 1e300, y: -1e300, radius: 1e290 },
    ];
    for (const cellSize of [1e-3, 1, 10, 1e6]) {
      let current: View = views[0]!;
      const interest = createGridInterest({ cellSize, position, view: () => current });
      interest.prepare(world);
      expect(interest.stats.entities).toBe(coordinates.length);
      expect(interest.stats.cells).toBeLessThanOrEqual(coordinates.length);
      const reference: Reference = { global: true, hysteresis: 0, memory: new Map() };
      for (const view of views) {
        current = view;
        expect(sorted(visibleOf(interest, 1))).toEqual(bruteForce(world, view, 1, reference));
      }
    }
  });

  it('treats non-finite positions as no position (global on or off)', () => {
    const world = newWorld();
    const near = world.spawn(Dot, { x: 1, y: 1 }).id;
    world.spawn(Dot, { x: 1000, y: 1000 });
    const nan = world.spawn(Dot, { x: Number.NaN, y: 0 }).id;
    const inf = world.spawn(Dot, { x: 0, y: Number.NEGATIVE_INFINITY }).id;
    const flag = world.spawn(Flag, { on: true }).id;
    const unwritten = world.spawn(Flag, { on: false }).id;
    const view = () => ({ x: 0, y: 0, radius: 10 });
    // Returning true without writing `out` leaves NaN: no position.
    const lazy = (entity: Entity, out: Point) =>
      entity.id === unwritten ? true : position(entity, out);
    const on = createGridInterest({ cellSize: 10, position: lazy, view });
    on.prepare(world);
    expect(sorted(visibleOf(on, 1))).toEqual(sorted([near, nan, inf, flag, unwritten]));
    expect(on.stats).toEqual({ cells: 2, entities: 2 });
    const off = createGridInterest({ cellSize: 10, position: lazy, view, global: false });
    off.prepare(world);
    expect(visibleOf(off, 1)).toEqual([near]);
  });

  it('shows only global entities to a client without a valid view', () => {
    const world = newWorld();
    world.spawn(Dot, { x: 0, y: 0 });
    const flag = world.spawn(Flag, { on: true }).id;
    const views: Record<string, View | undefined> = {
      none: undefined,
      negative: { x: 0, y: 0, radius: -1 },
      nanRadius: { x: 0, y: 0, radius: Number.NaN },
      nanX: { x: Number.NaN, y: 0, radius: 5 },
      infY: { x: 0, y: Number.POSITIVE_INFINITY, radius: 5 },
    };
    const interest = createGridInterest({
      cellSize: 4,
      position,
      view: (clientId) => views[clientId as string],
    });
    interest.prepare(world);
    for (const clientId of Object.keys(views))
      expect(visibleOf(interest, clientId)).toEqual([flag]);
  });

  it('applies the filter to spatial and global entities', () => {
    const world = newWorld();
    const mine = world.spawn(Dot, { x: 1, y: 0 }, { owner: 'ann' }).id;
    world.spawn(Dot, { x: 2, y: 0 }, { owner: 'bob' });
    const annFlag = world.spawn(Flag, { on: true }, { owner: 'ann' }).id;
    const interest = createGridInterest({
      cellSize: 8,
      position,
      view: () => ({ x: 0, y: 0, radius: 8 }),
      filter: (clientId, entity) => entity.owner === clientId,
    });
    interest.prepare(world);
    expect(sorted(visibleOf(interest, 'ann'))).toEqual(sorted([mine, annFlag]));
    expect(visibleOf(interest, 'eve')).toEqual([]);
  });

  it('keeps an entity until it is beyond radius + hysteresis, and enters it at radius', () => {
    const world = newWorld();
    const dot = world.spawn(Dot, { x: 8, y: 0 });
    const interest = createGridInterest({
      cellSize: 10,
      position,
      view: () => ({ x: 0, y: 0, radius: 10 }),
      hysteresis: 5,
    });
    const seen = (x: number, clientId: ClientId = 1): boolean => {
      dot.set('x', x);
      interest.prepare(world);
      return visibleOf(interest, clientId).includes(dot.id);
    };
    expect([8, 12, 15, 15.01, 12, 10, 14.9, -15, -16, -11].map((x) => seen(x))).toEqual([
      true,
      true,
      true,
      false,
      false,
      true,
      true,
      true,
      false,
      false,
    ]);
    // Memory is per client: client 2 never saw the dot.
    expect(seen(9, 1)).toBe(true);
    expect(seen(12, 2)).toBe(false);
    expect(seen(12, 1)).toBe(true);
    // forget drops the memory.
    interest.forget(1);
    expect(seen(12, 1)).toBe(false);
  });

  it('does not carry hysteresis over to a new entity that reuses an id', () => {
    const world = newWorld();
    const first = world.spawn(Dot, { x: 5, y: 0 });
    const interest = createGridInterest({
      cellSize: 10,
      position,
      view: () => ({ x: 0, y: 0, radius: 10 }),
      hysteresis: 5,
    });
    interest.prepare(world);
    expect(visibleOf(interest, 1)).toEqual([first.id]);
    world.despawn(first);
    const second = world.spawn(Dot, { x: 12, y: 0 });
    expect(second.id).toBe(first.id);
    interest.prepare(world);
    expect(visibleOf(interest, 1)).toEqual([]);
  });

  it('clears hysteresis memory when the view goes away or the filter rejects', () => {
    const world = newWorld();
    const dot = world.spawn(Dot, { x: 5, y: 0 });
    let view: View | undefined = { x: 0, y: 0, radius: 10 };
    let allow = true;
    const interest = createGridInterest({
      cellSize: 10,
      position,
      view: () => view,
      filter: () => allow,
      hysteresis: 5,
    });
    const tick = (x: number) => {
      dot.set('x', x);
      interest.prepare(world);
      return visibleOf(interest, 1);
    };
    expect(tick(5)).toEqual([dot.id]);
    view = undefined;
    expect(tick(5)).toEqual([]);
    view = { x: 0, y: 0, radius: 10 };
    expect(tick(12)).toEqual([]);
    expect(tick(5)).toEqual([dot.id]);
    allow = false;
    expect(tick(5)).toEqual([]);
    allow = true;
    expect(tick(12)).toEqual([]);
    // Without a position the dot is global, and an empty grid forgets too.
    expect(tick(5)).toEqual([dot.id]);
    expect(tick(Number.NaN)).toEqual([dot.id]);
    expect(tick(12)).toEqual([]);
  });

  it('reports stats and reuses buffers as the world grows and shrinks', () => {
    const world = newWorld();
    const interest = createGridInterest({
      cellSize: 10,
      position,
      view: () => ({ x: 0, y: 0, radius: 1e6 }),
    });
    interest.prepare(world);
    expect(interest.stats).toEqual({ cells: 0, entities: 0 });
    expect(visibleOf(interest, 1)).toEqual([]);
    const entities: Entity[] = [];
    for (let i = 0; i < 100; i++) entities.push(world.spawn(Dot, { x: i % 20, y: -i }));
    interest.prepare(world);
    const cells = new Set(
      entities.map((_entity, i) => `${Math.floor((i % 20) / 10)},${Math.floor(-i / 10)}`),
    );
    expect(interest.stats).toEqual({ cells: cells.size, entities: 100 });
    expect(visibleOf(interest, 1).length).toBe(100);
    for (const entity of entities.slice(10)) world.despawn(entity);
    interest.prepare(world);
    expect(interest.stats).toEqual({ cells: 2, entities: 10 });
    expect(sorted(visibleOf(interest, 1))).toEqual(entities.slice(0, 10).map((e) => e.id));
  });

  it('grows while gathering when the world under-reports its size', () => {
    const real = newWorld();
    for (let i = 0; i < 200; i++) real.spawn(Dot, { x: i * 3, y: (i * 7) % 50 });
    const liar = Object.create(real, { size: { value: 0 } }) as World;
    const interest = createGridInterest({
      cellSize: 5,
      position,
      view: () => ({ x: 300, y: 25, radius: 40 }),
      filter: (_clientId, entity) => entity.id % 2 === 0,
    });
    interest.prepare(liar);
    expect(interest.stats.entities).toBe(200);
    const reference: Reference = {
      global: true,
      hysteresis: 0,
      memory: new Map(),
      filter: (_clientId, entity) => entity.id % 2 === 0,
    };
    expect(sorted(visibleOf(interest, 1))).toEqual(
      bruteForce(real, { x: 300, y: 25, radius: 40 }, 1, reference),
    );
  });

  it('validates its options', () => {
    const view = () => undefined;
    const good: GridInterestOptions = { cellSize: 10, position, view };
    const bad: unknown[] = [
      null,
      'grid',
      { ...good, cellSize: 0 },
      { ...good, cellSize: -1 },
      { ...good, cellSize: Number.NaN },
      { ...good, cellSize: Number.POSITIVE_INFINITY },
      { ...good, cellSize: '10' },
      { ...good, position: undefined },
      { ...good, view: 3 },
      { ...good, global: 1 },
      { ...good, filter: true },
      { ...good, hysteresis: -1 },
      { ...good, hysteresis: Number.NaN },
      { ...good, hysteresis: Number.POSITIVE_INFINITY },
      { ...good, hysteresis: '1' },
    ];
    for (const options of bad)
      expect(codeOf(() => createGridInterest(options as GridInterestOptions))).toBe(
        ErrorCode.INVALID_ARGUMENT,
      );
    expect(codeOf(() => createGridInterest(good))).toBeUndefined();
    expect(
      codeOf(() =>
        createGridInterest({ ...good, global: false, hysteresis: 0, filter: () => true }),
      ),
    ).toBeUndefined();
  });
});

describe('createFilterInterest', () => {
  it('lists the entities the predicate accepts, per tick', () => {
    const world = newWorld();
    const a = world.spawn(Dot, { x: 0, y: 0 });
    const b = world.spawn(Flag, { on: true }, { owner: 'ann' });
    const interest = createFilterInterest(
      (clientId, entity) => entity.owner === clientId || entity.type.name === 'dot',
    );
    interest.prepare(world);
    expect(sorted(visibleOf(interest, 'ann'))).toEqual([a.id, b.id]);
    expect(visibleOf(interest, 'bob')).toEqual([a.id]);
    world.despawn(a);
    interest.prepare(world);
    expect(visibleOf(interest, 'ann')).toEqual([b.id]);
    expect(visibleOf(interest, 'bob')).toEqual([]);
    // Any World implementation works, not only createWorld's.
    const other = Object.create(world, { size: { value: 0 } }) as World;
    interest.prepare(other);
    expect(visibleOf(interest, 'ann')).toEqual([b.id]);
  });

  it('rejects a non-function', () => {
    expect(codeOf(() => createFilterInterest(undefined as never))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe('createManualInterest', () => {
  it('shows, hides and forgets per client, listing only live entities', () => {
    const world = newWorld();
    const a = world.spawn(Flag, { on: true });
    const b = world.spawn(Flag, { on: true });
    const manual = createManualInterest();
    manual.show('ann', a.id);
    expect(visibleOf(manual, 'ann')).toEqual([]); // nothing before the first prepare
    manual.prepare(world);
    manual.show('ann', a.id);
    manual.show('ann', b.id);
    manual.show('bob', b.id);
    expect(sorted(visibleOf(manual, 'ann'))).toEqual([a.id, b.id]);
    expect(visibleOf(manual, 'bob')).toEqual([b.id]);
    expect(visibleOf(manual, 'eve')).toEqual([]);
    manual.hide('ann', a.id);
    manual.hide('eve', a.id);
    expect(visibleOf(manual, 'ann')).toEqual([b.id]);
    manual.hide('ann', b.id);
    expect(visibleOf(manual, 'ann')).toEqual([]);
    manual.show('ann', 99);
    expect(visibleOf(manual, 'ann')).toEqual([]); // no live entity 99
    manual.forget('bob');
    expect(visibleOf(manual, 'bob')).toEqual([]);
    world.despawn(a);
    manual.show('bob', a.id);
    manual.prepare(world);
    expect(visibleOf(manual, 'bob')).toEqual([]);
  });

  it('validates entity ids', () => {
    const manual = createManualInterest();
    for (const id of [-1, 1.5, Number.NaN, '3'])
      for (const call of [manual.show, manual.hide])
        expect(codeOf(() => call(1, id as number))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe('unionInterest', () => {
  it('lists every entity any interest shows, once, after what out already held', () => {
    const world = newWorld();
    const near = world.spawn(Dot, { x: 1, y: 1 });
    const far = world.spawn(Dot, { x: 500, y: 500 });
    const flag = world.spawn(Flag, { on: true });
    const grid = createGridInterest({
      cellSize: 10,
      position,
      view: () => ({ x: 0, y: 0, radius: 10 }),
    });
    const manual = createManualInterest();
    manual.show('ann', near.id);
    manual.show('ann', far.id);
    const everything = createFilterInterest(() => true);
    const union = unionInterest(grid, manual, everything, manual);
    union.prepare(world);
    const out = [near.id, 1234];
    union.visible('ann', out);
    expect(out.slice(0, 2)).toEqual([near.id, 1234]);
    expect(sorted(out.slice(2))).toEqual(sorted([near.id, far.id, flag.id]));
    union.visible('ann', out);
    expect(out.length).toBe(2 + 3 + 3);
  });

  it('dedupes ids of any value', () => {
    const odd = [-1, 2.5, 2 ** 40, -1, 2.5, 2 ** 40, 70000, 70000, 3, 3, 0];
    const custom: Interest = {
      prepare: () => {},
      visible: (_clientId, out) => {
        out.push(...odd);
      },
    };
    const union = unionInterest(custom, custom);
    union.prepare(newWorld());
    for (let i = 0; i < 3; i++)
      expect(visibleOf(union, 1)).toEqual([-1, 2.5, 2 ** 40, 70000, 3, 0]);
  });

  it('returns a single interest as is, handles none, and validates', () => {
    const manual = createManualInterest();
    expect(unionInterest(manual)).toBe(manual);
    const none = unionInterest();
    none.prepare(newWorld());
    expect(visibleOf(none, 1)).toEqual([]);
    for (const bad of [null, {}, { prepare: () => {} }, 'x'])
      expect(codeOf(() => unionInterest(manual, bad as never))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});
