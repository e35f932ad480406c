import { schema as colyseusSchema, t as ct, Decoder, Encoder, StateView } from '@colyseus/schema';
import { createRandom, type SeededRandom } from '@tickwire/core';
import {
  type ClientId,
  createGridInterest,
  createReplica,
  createReplicationServer,
  createWorld,
  defineEntityType,
  type Entity,
  type Point,
  type Replica,
  type View,
} from '@tickwire/replication';
import { t } from '@tickwire/serialization';
import { type Row, rowFactory } from '../report.js';

// The issue's `aoi-100x1000` case: 100 clients, each with an area of interest of radius 150,
// over a 1000×1000 world of 1000 entities that all move every tick. Tickwire uses its own
// `createGridInterest`; @colyseus/schema 5.0.34 uses per-client `StateView`s over a
// `t.map(Unit).view()` collection (default-tag @view(): every unit is shipped only to the views
// that `view.add()` it), with the membership computed by the bench's own uniform grid (the same
// design as createGridInterest: cells of 150, squared-distance test `dx² + dy² ≤ 150²` in
// doubles), so both libraries ship exactly the same entity sets (checked at the end).
//
// Timings per tick, summed over the ticks (performance.now(), as in the arena cases):
// - world_write: writing every entity's x, y, angle (and 10 hp values) into the library's
//   state, with its change tracking;
// - encode (all 100 clients, the goal is ≤ 5 ms): Tickwire `server.update()` (tick
//   advance, grid rebuild, delta-coder retune) + 100 × `snapshotFor` (each runs its client's
//   grid query); Colyseus: the bench grid rebuild + 100 queries + `view.add`/`view.remove` for
//   the entities that entered/left each view, `encode()` once (shared part), 100 ×
//   `encodeView` and `discardChanges()`;
// - interest_query: each library's "who sees what" alone (a second createGridInterest's
//   prepare + 100 `visible` calls; the bench grid's rebuild + 100 queries), measured apart and
//   contained in the encode figures above;
// - decode_apply: one client's `replica.apply` / `decoder.decode`, mean over clients and ticks;
// - ack: Tickwire's 100 × (`replica.ack()` + `server.receiveAck`), in no other timing
//   (Colyseus has no acks: it relies on an ordered reliable channel).
// The motion is generated outside every timing. Both libraries read positions from the
// bench's own arrays (as a game keeping its simulation state in typed arrays would).

const row = rowFactory('replication');
const PEER = '@colyseus/schema';
const CASE = 'aoi-100x1000';

const CLIENTS = 100;
const UNITS = 1000;
const WORLD = 1000;
const RADIUS = 150;
const CELL = 150;
/** Units whose hp changes each tick (random, may repeat). */
const HP_CHANGES = 10;
const MAX_MOVE = 4;
const MAX_TURN = 0.1;
const TWO_PI = 2 * Math.PI;
/** Client c's player (its view centre) is unit c × PLAYER_STRIDE. */
const PLAYER_STRIDE = UNITS / CLIENTS;

// Wire precision as in the arena's quantized variant: 16-bit x, y over [0, 1024), 16-bit angle.
const X_STEP = 1 / 64;
const X_MAX = 1024 - X_STEP;
const ANGLE_BITS = 16;

const TickwireUnit = defineEntityType('unit', {
  x: t.quantized(0, X_MAX, X_STEP),
  y: t.quantized(0, X_MAX, X_STEP),
  angle: t.angle(ANGLE_BITS),
  hp: t.u8(),
});

const ColyseusUnit = colyseusSchema(
  {
    x: ct.quantized({ min: 0, max: 1024, bits: 16 }),
    y: ct.quantized({ min: 0, max: 1024, bits: 16 }),
    angle: ct.angle(),
    hp: ct.uint8(),
  },
  'AoiUnit',
);
// A map keyed by the unit's index (the key is the id on the wire, sent once per view entry).
const ColyseusAoiState = colyseusSchema({ units: ct.map(ColyseusUnit).view() }, 'AoiState');

/** The simulation: every unit takes a small seeded random step each tick, clamped at the borders. */
class Motion {
  readonly x = new Float64Array(UNITS);
  readonly y = new Float64Array(UNITS);
  readonly angle = new Float64Array(UNITS);
  readonly hp = new Uint8Array(UNITS);
  /** Units whose hp changed in the last step. */
  readonly hpChanged = new Int32Array(HP_CHANGES);
  private readonly random: SeededRandom;

  constructor(seed: number) {
    const random = createRandom(seed);
    this.random = random;
    for (let i = 0; i < UNITS; i++) {
      this.x[i] = random.range(0, WORLD);
      this.y[i] = random.range(0, WORLD);
      this.angle[i] = random.range(0, TWO_PI);
      this.hp[i] = random.int(101);
    }
  }

  step(): void {
    const random = this.random;
    for (let i = 0; i < UNITS; i++) {
      this.x[i] = clamp(this.x[i]! + random.range(-MAX_MOVE, MAX_MOVE));
      this.y[i] = clamp(this.y[i]! + random.range(-MAX_MOVE, MAX_MOVE));
      const a = (this.angle[i]! + random.range(-MAX_TURN, MAX_TURN)) % TWO_PI;
      this.angle[i] = a < 0 ? a + TWO_PI : a;
    }
    for (let k = 0; k < HP_CHANGES; k++) {
      const i = random.int(UNITS);
      this.hp[i] = (this.hp[i]! + 1 + random.int(255)) % 256;
      this.hpChanged[k] = i;
    }
  }
}

function clamp(v: number): number {
  return v < 0 ? 0 : v >= WORLD ? WORLD - 1e-6 : v;
}

/**
 * The bench's area-of-interest grid for the peer: a counting sort of the units into cells of
 * 150 each tick, then per query the cells overlapping the view circle's bounding box and the
 * squared-distance test (the same test createGridInterest applies).
 */
class BenchGrid {
  private readonly side = Math.ceil(WORLD / CELL);
  private readonly start = new Int32Array(this.side * this.side + 1);
  private readonly cellOf = new Int32Array(UNITS);
  private readonly order = new Int32Array(UNITS);
  private readonly sx = new Float64Array(UNITS);
  private readonly sy = new Float64Array(UNITS);

  private cell(v: number): number {
    const c = Math.floor(v / CELL);
    return c < 0 ? 0 : c >= this.side ? this.side - 1 : c;
  }

  build(xs: Float64Array, ys: Float64Array): void {
    const { start, cellOf } = this;
    start.fill(0);
    for (let i = 0; i < UNITS; i++) {
      const c = this.cell(ys[i]!) * this.side + this.cell(xs[i]!);
      cellOf[i] = c;
      start[c + 1]!++;
    }
    for (let c = 0; c < this.side * this.side; c++) start[c + 1]! += start[c]!;
    const fill = start.slice();
    for (let i = 0; i < UNITS; i++) {
      const at = fill[cellOf[i]!]!++;
      this.order[at] = i;
      this.sx[at] = xs[i]!;
      this.sy[at] = ys[i]!;
    }
  }

  /** Writes the indexes of the units within `radius` of (x, y) into `out`; returns how many. */
  query(x: number, y: number, radius: number, out: Int32Array): number {
    const r2 = radius * radius;
    const lox = this.cell(x - radius);
    const hix = this.cell(x + radius);
    const loy = this.cell(y - radius);
    const hiy = this.cell(y + radius);
    let n = 0;
    for (let cy = loy; cy <= hiy; cy++) {
      for (let cx = lox; cx <= hix; cx++) {
        const c = cy * this.side + cx;
        const end = this.start[c + 1]!;
        for (let k = this.start[c]!; k < end; k++) {
          const dx = this.sx[k]! - x;
          const dy = this.sy[k]! - y;
          if (dx * dx + dy * dy <= r2) out[n++] = this.order[k]!;
        }
      }
    }
    return n;
  }
}

/** The unit indexes each client sees at the motion's current state (the reference). */
function expectedView(motion: Motion, client: number): number[] {
  const p = client * PLAYER_STRIDE;
  const px = motion.x[p]!;
  const py = motion.y[p]!;
  const out: number[] = [];
  for (let i = 0; i < UNITS; i++) {
    const dx = motion.x[i]! - px;
    const dy = motion.y[i]! - py;
    if (dx * dx + dy * dy <= RADIUS * RADIUS) out.push(i);
  }
  return out;
}

interface UnitValues {
  x: number;
  y: number;
  angle: number;
  hp: number;
}

/** A replicated value against the world at wire precision (as the arena's quantized check). */
function sameAtWirePrecision(field: keyof UnitValues, got: number, want: number): boolean {
  if (field === 'hp') return got === want;
  if (field === 'angle') {
    let d = Math.abs(got - want) % TWO_PI;
    if (d > Math.PI) d = TWO_PI - d;
    return d <= Math.PI / 2 ** ANGLE_BITS + 1e-9;
  }
  // Half a step of the coarser of the two (Colyseus's 1024/65535).
  return Math.abs(got - want) <= 1024 / 65535 / 2 + 1e-9;
}

/**
 * Checks that every client holds exactly the units within its view, at wire precision.
 * `holds(c)` lists the unit indexes client c holds; `valuesOf(c, i)` its copy of unit i.
 */
function verifyViews(
  who: string,
  motion: Motion,
  holds: (client: number) => number[],
  valuesOf: (client: number, unit: number) => UnitValues | undefined,
): void {
  for (let c = 0; c < CLIENTS; c++) {
    const want = expectedView(motion, c);
    const got = holds(c).sort((a, b) => a - b);
    if (got.length !== want.length || got.some((unit, k) => unit !== want[k]))
      throw new Error(
        `replication bench: ${who} client ${c} holds ${got.length} units, its view has ${want.length}`,
      );
    for (const i of want) {
      const v = valuesOf(c, i);
      if (!v) throw new Error(`replication bench: ${who} client ${c} lacks unit ${i}`);
      const world = {
        x: motion.x[i]!,
        y: motion.y[i]!,
        angle: motion.angle[i]!,
        hp: motion.hp[i]!,
      };
      for (const field of ['x', 'y', 'angle', 'hp'] as const)
        if (!sameAtWirePrecision(field, v[field], world[field]))
          throw new Error(
            `replication bench: ${who} client ${c} unit ${i}.${field} = ${v[field]}, world has ${world[field]}`,
          );
    }
  }
}

interface AoiFigures {
  joinBytesPerClient: number;
  bytesPerClientTick: number;
  writeMicros: number;
  encodeMicros: number;
  queryMicros: number;
  decodeMicrosPerClient: number;
  ackMicros: number;
  /** Scenario figures (peer run only): mean view size and entries per client per tick. */
  visiblePerClient: number;
  entersPerClientTick: number;
}

/** A loosely typed Tickwire unit: numeric fields written by name. */
interface UnitEntity {
  readonly id: number;
  set(field: string, value: number): void;
}

function runTickwireAoi(ticks: number, seed: number): AoiFigures {
  const motion = new Motion(seed);
  const world = createWorld({ types: [TickwireUnit] });
  const units: UnitEntity[] = [];
  const indexOf: number[] = [];
  for (let i = 0; i < UNITS; i++) {
    const unit = world.spawn(TickwireUnit, {
      x: motion.x[i]!,
      y: motion.y[i]!,
      angle: motion.angle[i]!,
      hp: motion.hp[i]!,
    });
    units.push(unit as unknown as UnitEntity);
    indexOf[unit.id] = i;
  }
  const position = (entity: Entity, out: Point): boolean => {
    const i = indexOf[entity.id]!;
    out.x = motion.x[i]!;
    out.y = motion.y[i]!;
    return true;
  };
  const view = (clientId: ClientId): View => {
    const p = (clientId as number) * PLAYER_STRIDE;
    return { x: motion.x[p]!, y: motion.y[p]!, radius: RADIUS };
  };
  const interest = createGridInterest({ cellSize: CELL, position, view });
  // A second grid with the same options, only to time the interest queries on their own.
  const probe = createGridInterest({ cellSize: CELL, position, view });
  const probeOut: number[] = [];
  const server = createReplicationServer({ world, interest });
  const replicas: Replica[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    server.addClient(c);
    replicas.push(createReplica({ types: [TickwireUnit] }));
  }
  const snapshots: Uint8Array[] = new Array(CLIENTS);
  const exchange = (): number => {
    server.update();
    let bytes = 0;
    for (let c = 0; c < CLIENTS; c++) {
      const snapshot = server.snapshotFor(c);
      bytes += snapshot.byteLength;
      if (replicas[c]!.apply(snapshot) !== undefined) server.receiveAck(c, replicas[c]!.ack());
    }
    return bytes;
  };
  // The join (full snapshots), then one unchanged round, both untimed (as for the peer).
  const joinBytes = exchange();
  exchange();

  let bytes = 0;
  let write = 0;
  let encode = 0;
  let query = 0;
  let decode = 0;
  let ack = 0;
  for (let tick = 0; tick < ticks; tick++) {
    motion.step();
    const t0 = performance.now();
    for (let i = 0; i < UNITS; i++) {
      const unit = units[i]!;
      unit.set('x', motion.x[i]!);
      unit.set('y', motion.y[i]!);
      unit.set('angle', motion.angle[i]!);
    }
    for (let k = 0; k < HP_CHANGES; k++) {
      const i = motion.hpChanged[k]!;
      units[i]!.set('hp', motion.hp[i]!);
    }
    const t1 = performance.now();
    server.update();
    for (let c = 0; c < CLIENTS; c++) snapshots[c] = server.snapshotFor(c);
    const t2 = performance.now();
    for (let c = 0; c < CLIENTS; c++) replicas[c]!.apply(snapshots[c]!);
    const t3 = performance.now();
    for (let c = 0; c < CLIENTS; c++) server.receiveAck(c, replicas[c]!.ack());
    const t4 = performance.now();
    probe.prepare(world);
    for (let c = 0; c < CLIENTS; c++) {
      probeOut.length = 0;
      probe.visible(c, probeOut);
    }
    const t5 = performance.now();
    write += t1 - t0;
    encode += t2 - t1;
    decode += t3 - t2;
    ack += t4 - t3;
    query += t5 - t4;
    for (let c = 0; c < CLIENTS; c++) bytes += snapshots[c]!.byteLength;
  }
  verifyViews(
    'tickwire replica',
    motion,
    (c) => Array.from(replicas[c]!.entities(), (entity) => indexOf[entity.id]!),
    (c, i) => replicas[c]!.get(units[i]!.id)?.values() as unknown as UnitValues | undefined,
  );
  const perTick = 1000 / ticks;
  return {
    joinBytesPerClient: joinBytes / CLIENTS,
    bytesPerClientTick: bytes / ticks / CLIENTS,
    writeMicros: write * perTick,
    encodeMicros: encode * perTick,
    queryMicros: query * perTick,
    decodeMicrosPerClient: (decode * perTick) / CLIENTS,
    ackMicros: ack * perTick,
    visiblePerClient: Number.NaN,
    entersPerClientTick: Number.NaN,
  };
}

type ColyseusUnitInstance = InstanceType<typeof ColyseusUnit>;
type ColyseusAoiStateInstance = InstanceType<typeof ColyseusAoiState>;

function runColyseusAoi(ticks: number, seed: number): AoiFigures {
  const motion = new Motion(seed);
  const state = new ColyseusAoiState();
  const units: ColyseusUnitInstance[] = [];
  for (let i = 0; i < UNITS; i++) {
    const unit = new ColyseusUnit();
    unit.x = motion.x[i]!;
    unit.y = motion.y[i]!;
    unit.angle = motion.angle[i]!;
    unit.hp = motion.hp[i]!;
    state.units.set(String(i), unit);
    units.push(unit);
  }
  // Large enough for the shared part plus one view, so Colyseus does not grow it while timed.
  Encoder.BUFFER_SIZE = 128 * 1024;
  const encoder = new Encoder(state);
  const views: StateView[] = [];
  const decoders: Decoder[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    views.push(new StateView());
    decoders.push(new Decoder(new ColyseusAoiState()));
  }
  const grid = new BenchGrid();
  const found = new Int32Array(UNITS);
  const mark = new Uint32Array(UNITS);
  let stamp = 0;
  // Per client: the unit indexes in its view (members[c][0 .. counts[c] − 1]).
  const members = Array.from({ length: CLIENTS }, () => new Int32Array(UNITS));
  const counts = new Int32Array(CLIENTS);
  const inView = Array.from({ length: CLIENTS }, () => new Uint8Array(UNITS));
  let enters = 0;
  let visible = 0;

  /** Brings every view's membership to the units within its radius (grid already built). */
  const updateViews = (): void => {
    for (let c = 0; c < CLIENTS; c++) {
      const p = c * PLAYER_STRIDE;
      const n = grid.query(motion.x[p]!, motion.y[p]!, RADIUS, found);
      const view = views[c]!;
      const member = inView[c]!;
      const list = members[c]!;
      stamp++;
      for (let k = 0; k < n; k++) {
        const i = found[k]!;
        mark[i] = stamp;
        if (member[i] === 0) {
          member[i] = 1;
          view.add(units[i]!);
          enters++;
        }
      }
      for (let k = 0; k < counts[c]!; k++) {
        const i = list[k]!;
        if (mark[i] !== stamp) {
          member[i] = 0;
          view.remove(units[i]!);
        }
      }
      list.set(found.subarray(0, n));
      counts[c] = n;
      visible += n;
    }
  };

  const it = { offset: 0 };
  const out: Uint8Array[] = new Array(CLIENTS);
  /** One patch round: shared encode, then each view; returns the bytes of all clients. */
  const encodeViews = (): number => {
    it.offset = 0;
    encoder.encode(it);
    const shared = it.offset;
    let bytes = 0;
    for (let c = 0; c < CLIENTS; c++) {
      // Each view is copied out by encodeView, so the next one reuses the same region.
      it.offset = shared;
      const patch = encoder.encodeView(views[c]!, shared, it);
      out[c] = patch;
      bytes += patch.byteLength;
    }
    encoder.discardChanges();
    return bytes;
  };

  // The join: full state of each view, untimed.
  grid.build(motion.x, motion.y);
  updateViews();
  it.offset = 0;
  encoder.encodeAll(it);
  const sharedAll = it.offset;
  let joinBytes = 0;
  for (let c = 0; c < CLIENTS; c++) {
    it.offset = sharedAll;
    const full = encoder.encodeAllView(views[c]!, sharedAll, it);
    joinBytes += full.byteLength;
    decoders[c]!.decode(full);
  }
  encoder.discardChanges();
  // One unchanged round, untimed: encodeAllView leaves the view.add() entries queued, and the
  // next encodeView sends them again (what a Colyseus room does after a join, too).
  encodeViews();
  for (let c = 0; c < CLIENTS; c++) decoders[c]!.decode(out[c]!);
  enters = 0;
  visible = 0;

  let bytes = 0;
  let write = 0;
  let encode = 0;
  let query = 0;
  let decode = 0;
  for (let tick = 0; tick < ticks; tick++) {
    motion.step();
    const t0 = performance.now();
    for (let i = 0; i < UNITS; i++) {
      const unit = units[i]!;
      unit.x = motion.x[i]!;
      unit.y = motion.y[i]!;
      unit.angle = motion.angle[i]!;
    }
    for (let k = 0; k < HP_CHANGES; k++) {
      const i = motion.hpChanged[k]!;
      units[i]!.hp = motion.hp[i]!;
    }
    const t1 = performance.now();
    grid.build(motion.x, motion.y);
    updateViews();
    bytes += encodeViews();
    const t2 = performance.now();
    for (let c = 0; c < CLIENTS; c++) decoders[c]!.decode(out[c]!);
    const t3 = performance.now();
    grid.build(motion.x, motion.y);
    for (let c = 0; c < CLIENTS; c++) {
      const p = c * PLAYER_STRIDE;
      grid.query(motion.x[p]!, motion.y[p]!, RADIUS, found);
    }
    const t4 = performance.now();
    write += t1 - t0;
    encode += t2 - t1;
    decode += t3 - t2;
    query += t4 - t3;
  }
  verifyViews(
    `${PEER} decoder`,
    motion,
    (c) => Array.from((decoders[c]!.state as ColyseusAoiStateInstance).units.keys(), Number),
    (c, i) => {
      const unit = (decoders[c]!.state as ColyseusAoiStateInstance).units.get(String(i));
      return unit ? { x: unit.x, y: unit.y, angle: unit.angle, hp: unit.hp } : undefined;
    },
  );
  const perTick = 1000 / ticks;
  return {
    joinBytesPerClient: joinBytes / CLIENTS,
    bytesPerClientTick: bytes / ticks / CLIENTS,
    writeMicros: write * perTick,
    encodeMicros: encode * perTick,
    queryMicros: query * perTick,
    decodeMicrosPerClient: (decode * perTick) / CLIENTS,
    ackMicros: 0,
    visiblePerClient: visible / ticks / CLIENTS,
    entersPerClientTick: enters / ticks / CLIENTS,
  };
}

/** Runs the `aoi-100x1000` case for both libraries (after an untimed warm-up) and returns its rows. */
export function aoiRows(quick: boolean): Row[] {
  const ticks = quick ? 60 : 600;
  const seed = 63;
  // Warm-up: untimed runs of each library on another seed, so the timed run measures steady
  // state rather than the JIT's compilation.
  for (let round = 0; round < 2; round++) {
    runTickwireAoi(quick ? 20 : 100, seed + 1000 + round);
    runColyseusAoi(quick ? 20 : 100, seed + 1000 + round);
  }
  const ours = runTickwireAoi(ticks, seed);
  const theirs = runColyseusAoi(ticks, seed);
  const peer = { peer: PEER } as const;
  return [
    row({
      case: CASE,
      metric: 'join_bytes_per_client',
      unit: 'B',
      better: 'lower',
      tickwire: ours.joinBytesPerClient,
      ...peer,
      peerValue: theirs.joinBytesPerClient,
    }),
    row({
      case: CASE,
      metric: 'bytes_per_client_per_tick',
      unit: 'B',
      better: 'lower',
      tickwire: ours.bytesPerClientTick,
      ...peer,
      peerValue: theirs.bytesPerClientTick,
    }),
    row({
      case: CASE,
      metric: 'world_write_us_per_tick',
      unit: 'µs',
      better: 'lower',
      tickwire: ours.writeMicros,
      ...peer,
      peerValue: theirs.writeMicros,
    }),
    row({
      case: CASE,
      metric: 'encode_all_clients_us_per_tick',
      unit: 'µs',
      better: 'lower',
      tickwire: ours.encodeMicros,
      ...peer,
      peerValue: theirs.encodeMicros,
    }),
    row({
      case: CASE,
      metric: 'encode_all_clients_ms_per_tick',
      unit: 'ms',
      better: 'lower',
      tickwire: ours.encodeMicros / 1000,
      ...peer,
      peerValue: theirs.encodeMicros / 1000,
    }),
    row({
      case: CASE,
      metric: 'interest_query_us_per_tick',
      unit: 'µs',
      better: 'lower',
      tickwire: ours.queryMicros,
      ...peer,
      peerValue: theirs.queryMicros,
    }),
    row({
      case: CASE,
      metric: 'decode_apply_us_per_client_tick',
      unit: 'µs',
      better: 'lower',
      tickwire: ours.decodeMicrosPerClient,
      ...peer,
      peerValue: theirs.decodeMicrosPerClient,
    }),
    row({
      case: CASE,
      metric: 'ack_all_clients_us_per_tick',
      unit: 'µs',
      better: 'lower',
      tickwire: ours.ackMicros,
    }),
    // Scenario figures (the same sets for both libraries), from the peer run's membership.
    row({
      case: CASE,
      metric: 'visible_units_per_client',
      unit: 'units',
      better: 'lower',
      tickwire: theirs.visiblePerClient,
    }),
    row({
      case: CASE,
      metric: 'view_entries_per_client_per_tick',
      unit: 'units',
      better: 'lower',
      tickwire: theirs.entersPerClientTick,
    }),
  ];
}
