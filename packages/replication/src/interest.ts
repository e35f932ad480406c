import { ErrorCode, TickwireError } from '@tickwire/core';
import { type ClientId, type Entity, type World, worldInternals } from './world.js';

/**
 * Which entities each client may see (area of interest). The server calls `prepare` once per
 * tick, then `visible` once per client.
 */
export interface Interest {
  /** Called once per tick before any `visible` call (rebuild indexes here). */
  prepare(world: World): void;
  /** Appends the ids of entities `clientId` may see to `out` (no duplicates). */
  visible(clientId: ClientId, out: number[]): void;
}

/** A point in world units; {@link GridInterestOptions.position} writes into one. */
export interface Point {
  x: number;
  y: number;
}

/** Where a client looks from and how far, in world units. */
export interface View {
  readonly x: number;
  readonly y: number;
  /**
   * Entities with `dx² + dy² ≤ radius²` (in doubles) are visible; a radius whose square
   * overflows (above about 1.3e154, or `Infinity`) sees every positioned entity.
   */
  readonly radius: number;
}

/** Options of {@link createGridInterest}. */
export interface GridInterestOptions {
  /** Side of a square grid cell in world units; about the typical view radius is a good value. */
  cellSize: number;
  /**
   * Writes the position of `entity` into `out` and returns true, or returns false for an entity
   * without one (see `global`). Called once per entity per `prepare`; `out` is one reused
   * object, so no allocation is needed. `out` starts as NaN, and a non-finite coordinate counts
   * as no position.
   */
  position(entity: Entity, out: Point): boolean;
  /**
   * Where the client looks from, or undefined to see nothing spatial (entities without a
   * position still follow `global`). A view with a non-finite `x`/`y` or a negative or NaN
   * `radius` counts as undefined. Called once per `visible` call.
   */
  view(clientId: ClientId): View | undefined;
  /** Entities without a position are visible to every client (true) or to none (false). @default true */
  global?: boolean;
  /**
   * Extra per-client filter applied to every entity that passes the spatial test, and to the
   * entities without a position when `global` is on (e.g. team visibility, ownership).
   */
  filter?(clientId: ClientId, entity: Entity): boolean;
  /**
   * Keep an entity visible until it is this much farther than `radius` (against flicker at the
   * edge): an entity enters at `radius` and leaves beyond `radius + hysteresis`. Needs the set
   * each client saw at its previous `visible` call; drop it with `forget` when a client leaves.
   * @default 0
   */
  hysteresis?: number;
}

/** Size of a grid after the last `prepare`. */
export interface GridInterestStats {
  /** Occupied grid cells. */
  readonly cells: number;
  /** Entities with a position (the ones in the grid). */
  readonly entities: number;
}

/** A uniform-grid {@link Interest}; see {@link createGridInterest}. */
export interface GridInterest extends Interest {
  /** Drops what the grid remembers about a client (its last visible set, for `hysteresis`). */
  forget(clientId: ClientId): void;
  /** Updated by every `prepare`. */
  readonly stats: GridInterestStats;
}

/** An {@link Interest} whose entities the game lists per client; see {@link createManualInterest}. */
export interface ManualInterest extends Interest {
  /** Makes an entity visible to a client (until `hide` or `forget`). */
  show(clientId: ClientId, entityId: number): void;
  /** Undoes `show`. */
  hide(clientId: ClientId, entityId: number): void;
  /** Drops every entity shown to a client. */
  forget(clientId: ClientId): void;
}

const invalid = (message: string): TickwireError =>
  new TickwireError(ErrorCode.INVALID_ARGUMENT, message);

const EMPTY = -1;
/** Placeholder for the query's output between queries (never written). */
const NO_IDS: number[] = [];
/** Stamps wrap here; the stamp arrays are then cleared. */
const MAX_STAMP = 0xffffffff;
/**
 * Relative widening of a query box, far above float rounding (2^-52), so an entity that passes
 * the squared-distance test is never in a cell outside the box.
 */
const BOX_MARGIN = 2 ** -44;

const slotCache = new WeakMap<World, readonly (Entity | undefined)[] | null>();

/**
 * The entity slots of a world made by `createWorld`, iterated without the generator of
 * `entities()` (several times faster); undefined for another `World` implementation.
 */
function slotsOf(world: World): readonly (Entity | undefined)[] | undefined {
  let slots = slotCache.get(world);
  if (slots === undefined) {
    try {
      slots = worldInternals(world).slots;
    } catch {
      slots = null;
    }
    slotCache.set(world, slots);
  }
  return slots ?? undefined;
}

const nextPow2 = (n: number): number => {
  let size = 16;
  while (size < n) size *= 2;
  return size;
};

/** Hash of a cell; `| 0` keeps the low 32 bits of any finite integer (0 for ±Infinity). */
const hashCell = (cx: number, cy: number): number => {
  const h = Math.imul(cx | 0, 0x9e3779b1) ^ Math.imul(cy | 0, 0x85ebca77);
  return h ^ (h >>> 15);
};

function checkGridOptions(options: GridInterestOptions): void {
  if (typeof options !== 'object' || options === null)
    throw invalid('createGridInterest: options must be an object');
  const { cellSize, hysteresis } = options;
  if (typeof cellSize !== 'number' || !Number.isFinite(cellSize) || cellSize <= 0)
    throw invalid(`createGridInterest: cellSize must be a finite number > 0, got ${cellSize}`);
  if (typeof options.position !== 'function')
    throw invalid('createGridInterest: position must be a function');
  if (typeof options.view !== 'function')
    throw invalid('createGridInterest: view must be a function');
  if (options.global !== undefined && typeof options.global !== 'boolean')
    throw invalid('createGridInterest: global must be a boolean');
  if (options.filter !== undefined && typeof options.filter !== 'function')
    throw invalid('createGridInterest: filter must be a function');
  if (
    hysteresis !== undefined &&
    (typeof hysteresis !== 'number' || !Number.isFinite(hysteresis) || hysteresis < 0)
  )
    throw invalid(`createGridInterest: hysteresis must be a finite number ≥ 0, got ${hysteresis}`);
}

/** The visible set of a client at its previous `visible` call (for hysteresis). */
interface Memory {
  ids: Int32Array;
  generations: Int32Array;
  count: number;
}

/** Appends to a memory, doubling its buffers when full. */
function remember(memory: Memory, id: number, generation: number): void {
  const at = memory.count++;
  if (at === memory.ids.length) {
    const ids = new Int32Array(at * 2);
    const generations = new Int32Array(at * 2);
    ids.set(memory.ids);
    generations.set(memory.generations);
    memory.ids = ids;
    memory.generations = generations;
  }
  memory.ids[at] = id;
  memory.generations[at] = generation;
}

/**
 * Area of interest on a uniform grid: a client sees the entities within `radius` of its view
 * (`dx² + dy² ≤ radius²`), plus the entities without a position when `global` is on, all
 * passed through `filter`.
 *
 * `prepare` sorts the positioned entities into cells (a hash map of occupied cells and a
 * counting sort into flat typed arrays, reused between ticks), so memory follows the number
 * of entities, never the extent of the world. `visible` visits only the occupied cells that
 * overlap the bounding box of the view circle (or scans the occupied cells when the box holds
 * more cells than that) and tests squared distances.
 */
export function createGridInterest(options: GridInterestOptions): GridInterest {
  checkGridOptions(options);
  const { cellSize, position, view, filter } = options;
  const global = options.global ?? true;
  const hysteresis = options.hysteresis ?? 0;
  const memories = new Map<ClientId, Memory>();
  const stats = { cells: 0, entities: 0 };
  const point: Point = { x: Number.NaN, y: Number.NaN };

  // Entities in gather order (k < count), then sorted by cell (s*).
  let capacity = 0;
  let count = 0;
  let xs = new Float64Array(0);
  let ys = new Float64Array(0);
  let ids = new Int32Array(0);
  let generations = new Int32Array(0);
  let cellOf = new Int32Array(0);
  let sx = new Float64Array(0);
  let sy = new Float64Array(0);
  let sids = new Int32Array(0);
  let sgenerations = new Int32Array(0);
  const gathered: Entity[] = [];
  const sorted: Entity[] = [];

  // Occupied cells: coordinates, start in the sorted arrays (entities of cell c are
  // cellStart[c] .. cellStart[c + 1] - 1) and an open-addressing table from cell to index.
  let cellCount = 0;
  let cellX = new Float64Array(0);
  let cellY = new Float64Array(0);
  let cellStart = new Int32Array(1);
  let cellStamp = new Uint32Array(0);
  let table = new Int32Array(0);
  let mask = 0;
  let minCx = 0;
  let maxCx = 0;
  let minCy = 0;
  let maxCy = 0;

  let globalCount = 0;
  const globalIds: number[] = [];
  const globalEntities: Entity[] = [];

  // Hysteresis: entity ids the client saw last time, marked with the query's stamp.
  let markStamp = new Uint32Array(0);
  let markGeneration = new Int32Array(0);
  let stamp = 0;

  // The running query, read by scanCell.
  let qClient: ClientId = 0;
  let qOut = NO_IDS;
  let qMemory: Memory | undefined;
  let qx = 0;
  let qy = 0;
  let qInner = 0;
  let qOuter = 0;

  /** Makes room for `needed` entities (and as many cells), keeping what prepare gathered. */
  const grow = (needed: number): void => {
    const size = nextPow2(needed);
    const f64 = (from: Float64Array, used: number) => {
      const to = new Float64Array(size);
      to.set(from.subarray(0, used));
      return to;
    };
    const i32 = (from: Int32Array, used: number, extra = 0) => {
      const to = new Int32Array(size + extra);
      to.set(from.subarray(0, used));
      return to;
    };
    xs = f64(xs, count);
    ys = f64(ys, count);
    ids = i32(ids, count);
    generations = i32(generations, count);
    cellOf = i32(cellOf, count);
    sx = new Float64Array(size);
    sy = new Float64Array(size);
    sids = new Int32Array(size);
    sgenerations = new Int32Array(size);
    cellX = f64(cellX, cellCount);
    cellY = f64(cellY, cellCount);
    cellStart = i32(cellStart, cellCount, 1);
    // Zeroed stamps never equal a query's stamp (≥ 1).
    cellStamp = new Uint32Array(size);
    capacity = size;
    // Rehash the cells found so far into a table at most half full.
    table = new Int32Array(size * 2).fill(EMPTY);
    mask = size * 2 - 1;
    for (let c = 0; c < cellCount; c++) {
      let slot = hashCell(cellX[c]!, cellY[c]!) & mask;
      while (table[slot] !== EMPTY) slot = (slot + 1) & mask;
      table[slot] = c;
    }
  };

  /** The table slot holding cell (cx, cy), or the empty slot where it would go. */
  const findSlot = (cx: number, cy: number): number => {
    let slot = hashCell(cx, cy) & mask;
    for (;;) {
      const c = table[slot]!;
      if (c === EMPTY || (cellX[c] === cx && cellY[c] === cy)) return slot;
      slot = (slot + 1) & mask;
    }
  };

  const nextStamp = (): number => {
    if (++stamp === MAX_STAMP) {
      cellStamp.fill(0);
      markStamp.fill(0);
      stamp = 1;
    }
    return stamp;
  };

  const scanCell = (c: number): void => {
    const end = cellStart[c + 1]!;
    for (let k = cellStart[c]!; k < end; k++) {
      const dx = sx[k]! - qx;
      const dy = sy[k]! - qy;
      const d2 = dx * dx + dy * dy;
      if (d2 > qInner) {
        if (d2 > qOuter || qMemory === undefined) continue;
        const id = sids[k]!;
        if (markStamp[id] !== stamp || markGeneration[id] !== sgenerations[k]) continue;
      }
      if (filter !== undefined && !filter(qClient, sorted[k]!)) continue;
      const id = sids[k]!;
      qOut.push(id);
      if (qMemory !== undefined) remember(qMemory, id, sgenerations[k]!);
    }
  };

  let maxId = -1;

  /** Files one entity during prepare: into the grid, the global list, or nowhere. */
  const gather = (entity: Entity): void => {
    point.x = Number.NaN;
    point.y = Number.NaN;
    if (position(entity, point)) {
      const x = point.x;
      const y = point.y;
      // x - x is 0 for a finite x, NaN for ±Infinity and NaN.
      if (x - x === 0 && y - y === 0) {
        if (count === capacity) grow(count + 1);
        const cx = Math.floor(x / cellSize);
        const cy = Math.floor(y / cellSize);
        const slot = findSlot(cx, cy);
        let c = table[slot]!;
        if (c === EMPTY) {
          c = cellCount++;
          table[slot] = c;
          cellX[c] = cx;
          cellY[c] = cy;
          cellStart[c] = 0;
          if (c === 0) {
            minCx = maxCx = cx;
            minCy = maxCy = cy;
          } else {
            if (cx < minCx) minCx = cx;
            else if (cx > maxCx) maxCx = cx;
            if (cy < minCy) minCy = cy;
            else if (cy > maxCy) maxCy = cy;
          }
        }
        cellStart[c]!++;
        const id = entity.id;
        if (id > maxId) maxId = id;
        xs[count] = x;
        ys[count] = y;
        ids[count] = id;
        generations[count] = entity.generation;
        cellOf[count] = c;
        if (filter !== undefined) gathered[count] = entity;
        count++;
        return;
      }
    }
    if (global) {
      globalIds[globalCount] = entity.id;
      if (filter !== undefined) globalEntities[globalCount] = entity;
      globalCount++;
    }
  };

  return {
    stats,

    prepare(world) {
      count = 0;
      cellCount = 0;
      globalCount = 0;
      if (capacity < world.size) grow(world.size);
      table.fill(EMPTY);
      maxId = -1;
      const slots = slotsOf(world);
      if (slots !== undefined) {
        for (let i = 0; i < slots.length; i++) {
          const entity = slots[i];
          if (entity !== undefined) gather(entity);
        }
      } else for (const entity of world.entities()) gather(entity);
      // Counting sort by cell: cellStart[c] becomes the end of cell c, then, filled backwards,
      // its start.
      let sum = 0;
      for (let c = 0; c < cellCount; c++) {
        sum += cellStart[c]!;
        cellStart[c] = sum;
      }
      cellStart[cellCount] = count;
      for (let k = count - 1; k >= 0; k--) {
        const at = --cellStart[cellOf[k]!]!;
        sx[at] = xs[k]!;
        sy[at] = ys[k]!;
        sids[at] = ids[k]!;
        sgenerations[at] = generations[k]!;
        if (filter !== undefined) sorted[at] = gathered[k]!;
      }
      // Drop references to entities gone since the last tick.
      globalIds.length = globalCount;
      if (filter !== undefined) {
        gathered.length = count;
        sorted.length = count;
        globalEntities.length = globalCount;
      }
      if (hysteresis > 0 && maxId >= markStamp.length) {
        const size = nextPow2(maxId + 1);
        markStamp = new Uint32Array(size);
        markGeneration = new Int32Array(size);
      }
      stats.cells = cellCount;
      stats.entities = count;
    },

    visible(clientId, out) {
      const s = nextStamp();
      for (let i = 0; i < globalCount; i++)
        if (filter === undefined || filter(clientId, globalEntities[i]!)) out.push(globalIds[i]!);
      const v = view(clientId);
      const radius = v?.radius ?? Number.NaN;
      if (v === undefined || !(radius >= 0) || v.x - v.x !== 0 || v.y - v.y !== 0) {
        memories.delete(clientId);
        return;
      }
      let memory: Memory | undefined;
      if (hysteresis > 0) {
        memory = memories.get(clientId);
        if (memory === undefined) {
          memory = { ids: new Int32Array(16), generations: new Int32Array(16), count: 0 };
          memories.set(clientId, memory);
        }
        const remembered = memory.ids;
        for (let i = 0; i < memory.count; i++) {
          const id = remembered[i]!;
          if (id < markStamp.length) {
            markStamp[id] = s;
            markGeneration[id] = memory.generations[i]!;
          }
        }
        memory.count = 0;
      }
      if (cellCount === 0) return;
      const x = v.x;
      const y = v.y;
      let reach = radius + hysteresis;
      qClient = clientId;
      qOut = out;
      qMemory = memory;
      qx = x;
      qy = y;
      qInner = radius * radius;
      qOuter = reach * reach;
      // The test is `dx² + dy² ≤ radius²` in doubles: a squared radius that overflows sees all.
      if (qOuter === Number.POSITIVE_INFINITY) reach = qOuter;

      const margin = (Math.abs(x) + Math.abs(y) + reach) * BOX_MARGIN;
      let lox = Math.floor((x - reach - margin) / cellSize);
      let hix = Math.floor((x + reach + margin) / cellSize);
      let loy = Math.floor((y - reach - margin) / cellSize);
      let hiy = Math.floor((y + reach + margin) / cellSize);
      if (lox < minCx) lox = minCx;
      if (hix > maxCx) hix = maxCx;
      if (loy < minCy) loy = minCy;
      if (hiy > maxCy) hiy = maxCy;
      if (lox > hix || loy > hiy) return;
      const width = hix - lox + 1;
      const height = hiy - loy + 1;
      // Counted loops: near 2^53 `cx + 1 === cx`, and lox + i still reaches every cell there.
      // NaN (a cell at ±Infinity) also takes the scan.
      if (width * height <= cellCount) {
        for (let j = 0; j < height; j++) {
          const cy = loy + j;
          for (let i = 0; i < width; i++) {
            const c = table[findSlot(lox + i, cy)]!;
            if (c !== EMPTY && cellStamp[c] !== s) {
              cellStamp[c] = s;
              scanCell(c);
            }
          }
        }
      } else {
        for (let c = 0; c < cellCount; c++) {
          const cx = cellX[c]!;
          const cy = cellY[c]!;
          if (cx >= lox && cx <= hix && cy >= loy && cy <= hiy) scanCell(c);
        }
      }
      qOut = NO_IDS;
      qMemory = undefined;
    },

    forget(clientId) {
      memories.delete(clientId);
    },
  };
}

/** Interest from a plain predicate (small worlds; O(clients × entities)). */
export function createFilterInterest(
  filter: (clientId: ClientId, entity: Entity) => boolean,
): Interest {
  if (typeof filter !== 'function')
    throw invalid('createFilterInterest: filter must be a function');
  const entities: Entity[] = [];
  return {
    prepare(world) {
      let n = 0;
      const slots = slotsOf(world);
      if (slots !== undefined) {
        for (let i = 0; i < slots.length; i++) {
          const entity = slots[i];
          if (entity !== undefined) entities[n++] = entity;
        }
      } else for (const entity of world.entities()) entities[n++] = entity;
      entities.length = n;
    },
    visible(clientId, out) {
      for (let i = 0; i < entities.length; i++) {
        const entity = entities[i]!;
        if (filter(clientId, entity)) out.push(entity.id);
      }
    },
  };
}

/** Ids above this are deduplicated with a Set rather than the stamp array. */
const MAX_MARKED_ID = 1 << 26;

/**
 * Union of several interests (e.g. a grid plus a list of always-visible entities): an entity is
 * visible when any of them shows it, and is listed once. With one interest, returns it.
 */
export function unionInterest(...interests: Interest[]): Interest {
  for (const interest of interests)
    if (
      typeof interest !== 'object' ||
      interest === null ||
      typeof interest.prepare !== 'function' ||
      typeof interest.visible !== 'function'
    )
      throw invalid('unionInterest: every argument must be an Interest');
  if (interests.length === 1) return interests[0]!;
  let marks = new Uint32Array(64);
  let stamp = 0;
  const others = new Set<number>();
  return {
    prepare(world) {
      for (let i = 0; i < interests.length; i++) interests[i]!.prepare(world);
    },
    visible(clientId, out) {
      const start = out.length;
      for (let i = 0; i < interests.length; i++) interests[i]!.visible(clientId, out);
      if (++stamp === MAX_STAMP) {
        marks.fill(0);
        stamp = 1;
      }
      // Keep the first occurrence of each id appended by the interests.
      let kept = start;
      for (let i = start; i < out.length; i++) {
        const id = out[i]!;
        if (id >>> 0 === id && id < MAX_MARKED_ID) {
          if (id >= marks.length) {
            const bigger = new Uint32Array(nextPow2(id + 1));
            bigger.set(marks);
            marks = bigger;
          }
          if (marks[id] === stamp) continue;
          marks[id] = stamp;
        } else {
          if (others.has(id)) continue;
          others.add(id);
        }
        out[kept++] = id;
      }
      out.length = kept;
      others.clear();
    },
  };
}

const checkEntityId = (method: string, entityId: number): void => {
  if (!Number.isSafeInteger(entityId) || entityId < 0)
    throw invalid(`${method}: entityId must be an integer ≥ 0, got ${entityId}`);
};

/**
 * An always-visible set managed by the game (e.g. the client's own player, teammates). Only
 * live entities are listed; ids are reused after a despawn, so `hide` an entity when it goes.
 */
export function createManualInterest(): ManualInterest {
  const shown = new Map<ClientId, Set<number>>();
  let world: World | undefined;
  return {
    prepare(next) {
      world = next;
    },
    visible(clientId, out) {
      const ids = shown.get(clientId);
      if (ids === undefined || world === undefined) return;
      for (const id of ids) if (world.get(id) !== undefined) out.push(id);
    },
    show(clientId, entityId) {
      checkEntityId('show', entityId);
      let ids = shown.get(clientId);
      if (ids === undefined) {
        ids = new Set();
        shown.set(clientId, ids);
      }
      ids.add(entityId);
    },
    hide(clientId, entityId) {
      checkEntityId('hide', entityId);
      const ids = shown.get(clientId);
      if (ids === undefined) return;
      ids.delete(entityId);
      if (ids.size === 0) shown.delete(clientId);
    },
    forget(clientId) {
      shown.delete(clientId);
    },
  };
}
