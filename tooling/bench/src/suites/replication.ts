import { schema as colyseusSchema, t as ct, Decoder, Encoder } from '@colyseus/schema';
import { createRandom } from '@tickwire/core';
import {
  createReplica,
  createReplicationServer,
  createWorld,
  defineEntityType,
} from '@tickwire/replication';
import { t } from '@tickwire/serialization';
import { type Row, rowFactory, type Suite, type SuiteOptions } from '../report.js';
import { aoiRows } from './replication-aoi.js';

const row = rowFactory('replication');
const PEER = '@colyseus/schema';

// A tick loop simulated in process: each phase of each tick is timed with performance.now()
// and the times are summed over the ticks. This is not a micro-benchmark (no tinybench
// sampling); per-tick figures include whatever a real server loop would pay (GC, cache misses).

const ENTITIES = 1000;
const CHANGED_PER_TICK = 100;
const ARENA = 1000;
const TWO_PI = 2 * Math.PI;
const MAX_MOVE = 4;
const MAX_TURN = 0.1;
const LOSS = 0.05;

type Precision = 'f32' | 'quantized';
type Motion = 'random' | 'smooth';

// Quantized precision = Colyseus's `t.quantized({ min: 0, max: 1024, bits: 16 })` and
// `t.angle()` (16 bits). Tickwire's max is 1024 − 1/64 so that 65,535 steps of exactly 1/64 fit
// 16 bits (Colyseus's step is 1024/65535, a hair above 1/64).
const X_STEP = 1 / 64;
const X_MAX = 1024 - X_STEP;
const ANGLE_BITS = 16;

const TickwireF32 = defineEntityType('entity', {
  id: t.u32(),
  x: t.f32(),
  y: t.f32(),
  angle: t.f32(),
  hp: t.u8(),
});
const TickwireQuantized = defineEntityType('entity', {
  id: t.u32(),
  x: t.quantized(0, X_MAX, X_STEP),
  y: t.quantized(0, X_MAX, X_STEP),
  angle: t.angle(ANGLE_BITS),
  hp: t.u8(),
});

const ColyseusF32Entity = colyseusSchema(
  { id: ct.uint32(), x: ct.float32(), y: ct.float32(), angle: ct.float32(), hp: ct.uint8() },
  'EntityF32',
);
const ColyseusF32State = colyseusSchema({ entities: ct.array(ColyseusF32Entity) }, 'StateF32');
const ColyseusQuantizedEntity = colyseusSchema(
  {
    id: ct.uint32(),
    x: ct.quantized({ min: 0, max: 1024, bits: 16 }),
    y: ct.quantized({ min: 0, max: 1024, bits: 16 }),
    angle: ct.angle(),
    hp: ct.uint8(),
  },
  'EntityQuantized',
);
const ColyseusQuantizedState = colyseusSchema(
  { entities: ct.array(ColyseusQuantizedEntity) },
  'StateQuantized',
);

/** The field values both libraries hold, as plain numbers. */
interface Values {
  x: number;
  y: number;
  angle: number;
  hp: number;
}

/** Every tick's mutations, generated once so both libraries replay the same sequence. */
interface Plan {
  initial: Values[];
  ticks: {
    /** Distinct entity indexes whose x, y, angle change, with their new values. */
    moved: Int32Array;
    x: Float64Array;
    y: Float64Array;
    angle: Float64Array;
    /** Entity whose hp changes (smooth case), or −1. */
    hpIndex: number;
    hp: number;
    /** Distinct entities changed this tick. */
    changed: number;
  }[];
  final: Values[];
}

function makePlan(motion: Motion, ticks: number, seed: number): Plan {
  const random = createRandom(seed);
  const state: Values[] = [];
  for (let i = 0; i < ENTITIES; i++) {
    state.push({
      x: random.range(0, ARENA),
      y: random.range(0, ARENA),
      angle: random.range(0, TWO_PI),
      hp: random.int(101),
    });
  }
  const initial = state.map((v) => ({ ...v }));
  const plan: Plan['ticks'] = [];
  const order = Array.from({ length: ENTITIES }, (_, i) => i);
  for (let tick = 0; tick < ticks; tick++) {
    // A partial Fisher-Yates shuffle: the first 100 of `order` are distinct random entities.
    for (let i = 0; i < CHANGED_PER_TICK; i++) {
      const j = i + random.int(ENTITIES - i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const moved = Int32Array.from(order.slice(0, CHANGED_PER_TICK));
    const x = new Float64Array(CHANGED_PER_TICK);
    const y = new Float64Array(CHANGED_PER_TICK);
    const angle = new Float64Array(CHANGED_PER_TICK);
    for (let i = 0; i < CHANGED_PER_TICK; i++) {
      const e = state[moved[i]!]!;
      if (motion === 'random') {
        e.x = random.range(0, ARENA);
        e.y = random.range(0, ARENA);
        e.angle = random.range(0, TWO_PI);
      } else {
        e.x = clampToArena(e.x + random.range(-MAX_MOVE, MAX_MOVE));
        e.y = clampToArena(e.y + random.range(-MAX_MOVE, MAX_MOVE));
        const a = (e.angle + random.range(-MAX_TURN, MAX_TURN)) % TWO_PI;
        e.angle = a < 0 ? a + TWO_PI : a;
      }
      x[i] = e.x;
      y[i] = e.y;
      angle[i] = e.angle;
    }
    let hpIndex = -1;
    let hp = 0;
    let changed = CHANGED_PER_TICK;
    if (motion === 'smooth') {
      hpIndex = random.int(ENTITIES);
      const e = state[hpIndex]!;
      e.hp = (e.hp + 1 + random.int(255)) % 256; // always a different value
      hp = e.hp;
      if (!moved.includes(hpIndex)) changed++;
    }
    plan.push({ moved, x, y, angle, hpIndex, hp, changed });
  }
  return { initial, ticks: plan, final: state };
}

function clampToArena(v: number): number {
  return v < 0 ? 0 : v >= ARENA ? ARENA - 1e-6 : v;
}

/** Checks a replicated value against the source at the declared precision. */
function sameAtPrecision(field: keyof Values, precision: Precision, got: number, want: number) {
  if (field === 'hp') return got === want;
  if (precision === 'f32') {
    // Tickwire's f32 and Colyseus's float32 both carry Math.fround of the value.
    return got === Math.fround(want);
  }
  if (field === 'angle') {
    let d = Math.abs(got - want) % TWO_PI;
    if (d > Math.PI) d = TWO_PI - d;
    return d <= Math.PI / 2 ** ANGLE_BITS + 1e-9;
  }
  // Half a step of the coarser of the two (Colyseus's 1024/65535).
  return Math.abs(got - want) <= 1024 / 65535 / 2 + 1e-9;
}

function verify(
  who: string,
  precision: Precision,
  expected: readonly Values[],
  actual: (index: number) => Values | undefined,
): void {
  for (let i = 0; i < expected.length; i++) {
    const got = actual(i);
    if (!got) throw new Error(`replication bench: ${who} lacks entity ${i}`);
    for (const field of ['x', 'y', 'angle', 'hp'] as const) {
      if (!sameAtPrecision(field, precision, got[field], expected[i]![field]))
        throw new Error(
          `replication bench: ${who} (${precision}) entity ${i}.${field} = ${got[field]}, world has ${expected[i]![field]}`,
        );
    }
  }
}

interface Figures {
  fullStateBytes: number;
  bytesPerTick: number;
  encodeMicros: number;
  decodeMicros: number;
  /** Tickwire only: replica.ack() plus server.receiveAck() per tick. */
  ackMicros: number;
  changedPerTick: number;
}

/** A loosely typed view of a Tickwire entity: both entity types have the same numeric fields. */
interface NumericEntity {
  set(field: string, value: number): void;
}

function runTickwire(plan: Plan, precision: Precision, loss: boolean, seed: number): Figures {
  const type = precision === 'f32' ? TickwireF32 : TickwireQuantized;
  const world = createWorld({ types: [type] });
  const server = createReplicationServer({ world });
  server.addClient('client');
  const replica = createReplica({ types: [type] });
  const entities: NumericEntity[] = [];
  const ids: number[] = [];
  for (let i = 0; i < ENTITIES; i++) {
    const v = plan.initial[i]!;
    const entity = world.spawn(type, { id: i + 1, x: v.x, y: v.y, angle: v.angle, hp: v.hp });
    entities.push(entity as unknown as NumericEntity);
    ids.push(entity.id);
  }
  server.update();
  const full = server.snapshotFor('client');
  if (replica.apply(full) !== undefined) server.receiveAck('client', replica.ack());
  const drop = createRandom(seed);
  let bytes = 0;
  let encode = 0;
  let decode = 0;
  let ack = 0;
  let changed = 0;
  for (const tick of plan.ticks) {
    // Encode: the world writes (with their change tracking), update() (tick advance, interest
    // preparation, retuning of the numeric delta coder) and snapshotFor().
    const t0 = performance.now();
    const { moved, x, y, angle } = tick;
    for (let i = 0; i < moved.length; i++) {
      const e = entities[moved[i]!]!;
      e.set('x', x[i]!);
      e.set('y', y[i]!);
      e.set('angle', angle[i]!);
    }
    if (tick.hpIndex >= 0) entities[tick.hpIndex]!.set('hp', tick.hp);
    server.update();
    const snapshot = server.snapshotFor('client');
    const t1 = performance.now();
    encode += t1 - t0;
    bytes += snapshot.byteLength;
    changed += tick.changed;
    if (loss && drop.chance(LOSS)) continue;
    const t2 = performance.now();
    const applied = replica.apply(snapshot);
    const t3 = performance.now();
    decode += t3 - t2;
    // The ack (replica.ack() on the client, receiveAck() on the server) is in neither the
    // encode nor the decode timing: it is server work Colyseus has no counterpart for (it relies
    // on an ordered reliable channel), so it gets its own row (ack_us_per_tick, no peer).
    if (applied !== undefined) server.receiveAck('client', replica.ack());
    ack += performance.now() - t3;
  }
  // One more snapshot, delivered, so a lossy run ends converged too (not counted).
  server.update();
  if (replica.apply(server.snapshotFor('client')) !== undefined)
    server.receiveAck('client', replica.ack());
  verify(`tickwire replica`, precision, plan.final, (i) => {
    const e = replica.get(ids[i]!);
    return e ? (e.values() as unknown as Values) : undefined;
  });
  const n = plan.ticks.length;
  return {
    fullStateBytes: full.byteLength,
    bytesPerTick: bytes / n,
    encodeMicros: (encode * 1000) / n,
    decodeMicros: (decode * 1000) / n,
    ackMicros: (ack * 1000) / n,
    changedPerTick: changed / n,
  };
}

interface ColyseusEntityLike extends Values {
  id: number;
}

function runColyseus(plan: Plan, precision: Precision): Figures {
  const Entity = precision === 'f32' ? ColyseusF32Entity : ColyseusQuantizedEntity;
  const State = precision === 'f32' ? ColyseusF32State : ColyseusQuantizedState;
  const state = new State();
  const entities: ColyseusEntityLike[] = [];
  for (let i = 0; i < ENTITIES; i++) {
    const v = plan.initial[i]!;
    const entity = new Entity();
    entity.id = i + 1;
    entity.x = v.x;
    entity.y = v.y;
    entity.angle = v.angle;
    entity.hp = v.hp;
    state.entities.push(entity);
    entities.push(entity as ColyseusEntityLike);
  }
  // Large enough for the full state, so Colyseus does not grow its buffer while timed.
  Encoder.BUFFER_SIZE = 128 * 1024;
  const encoder = new Encoder(state);
  const clientState = new State();
  const decoder = new Decoder(clientState);
  const full = encoder.encodeAll();
  const fullStateBytes = full.byteLength;
  decoder.decode(full);
  encoder.discardChanges();
  let bytes = 0;
  let encode = 0;
  let decode = 0;
  let changed = 0;
  for (const tick of plan.ticks) {
    const t0 = performance.now();
    const { moved, x, y, angle } = tick;
    for (let i = 0; i < moved.length; i++) {
      const e = entities[moved[i]!]!;
      e.x = x[i]!;
      e.y = y[i]!;
      e.angle = angle[i]!;
    }
    if (tick.hpIndex >= 0) entities[tick.hpIndex]!.hp = tick.hp;
    // encode() emits the changes since the last discard; discardChanges() resets them for the
    // next tick (what a Colyseus room does after broadcasting a patch).
    const patch = encoder.encode();
    encoder.discardChanges();
    const t1 = performance.now();
    encode += t1 - t0;
    bytes += patch.byteLength;
    changed += tick.changed;
    const t2 = performance.now();
    decoder.decode(patch);
    decode += performance.now() - t2;
  }
  verify(`${PEER} decoder`, precision, plan.final, (i) => {
    const e = clientState.entities[i] as ColyseusEntityLike | undefined;
    return e ? { x: e.x, y: e.y, angle: e.angle, hp: e.hp } : undefined;
  });
  const n = plan.ticks.length;
  return {
    fullStateBytes,
    bytesPerTick: bytes / n,
    encodeMicros: (encode * 1000) / n,
    decodeMicros: (decode * 1000) / n,
    ackMicros: 0,
    changedPerTick: changed / n,
  };
}

// --- entropy floors -------------------------------------------------------------------------

/** log2(C(n, k)): the bits to name which k of n entities changed. */
function log2Choose(n: number, k: number): number {
  let bits = 0;
  for (let i = 0; i < k; i++) bits += Math.log2((n - i) / (k - i));
  return bits;
}

/**
 * Sums `weight(p, ulpLog2)` over the float32 binades of [0, hi): p is the binade's share of a
 * uniform value in [0, hi), ulpLog2 the log2 of its float32 spacing.
 */
function overF32Binades(hi: number, weight: (p: number, ulpLog2: number) => number): number {
  let sum = 0;
  for (let e = Math.floor(Math.log2(hi)); e >= -126; e--) {
    const lo = 2 ** e;
    const top = Math.min(2 ** (e + 1), hi);
    if (top <= lo) continue;
    const p = (top - lo) / hi;
    if (p < 1e-12) break;
    sum += weight(p, e - 23);
  }
  return sum;
}

/** Entropy in bits of Math.fround(uniform in [0, hi)). */
function f32UniformBits(hi: number): number {
  // Each binade holds (width / ulp) equally likely floats, each of probability ulp / hi.
  return overF32Binades(hi, (p, ulpLog2) => p * (Math.log2(hi) - ulpLog2));
}

/** Mean entropy in bits of Math.fround(v + uniform in [−d, d]) given v, v uniform in [0, hi). */
function f32StepBits(hi: number, d: number): number {
  return overF32Binades(hi, (p, ulpLog2) => p * Math.max(0, Math.log2(2 * d) - ulpLog2));
}

interface Floor {
  bytesPerTick: number;
  bytesPerChanged: number | null;
}

function entropyFloor(motion: Motion, precision: Precision, changedPerTick: number): Floor {
  const naming = log2Choose(ENTITIES, CHANGED_PER_TICK);
  let perEntity: number;
  let extra = 0;
  if (motion === 'random') {
    perEntity =
      precision === 'f32'
        ? 2 * f32UniformBits(ARENA) + f32UniformBits(TWO_PI)
        : 2 * Math.log2(ARENA / X_STEP) + ANGLE_BITS;
  } else {
    perEntity =
      precision === 'f32'
        ? 2 * f32StepBits(ARENA, MAX_MOVE) + f32StepBits(TWO_PI, MAX_TURN)
        : 2 * Math.log2((2 * MAX_MOVE) / X_STEP) +
          Math.log2((2 * MAX_TURN) / (TWO_PI / 2 ** ANGLE_BITS));
    // The hp change: which entity, and which of the 255 other values.
    extra = Math.log2(ENTITIES) + Math.log2(255);
  }
  const bytesPerTick = (naming + CHANGED_PER_TICK * perEntity + extra) / 8;
  return {
    bytesPerTick,
    bytesPerChanged: motion === 'smooth' ? bytesPerTick / changedPerTick : null,
  };
}

// --- the suite ------------------------------------------------------------------------------

/**
 * Timed runs per case and library; each time is the median over them. One 600-tick run is
 * exposed to whatever else the machine does for its 30–60 ms and to the JIT's state at that
 * moment (a run now and then is 2–3× slower, see the README); the median of several is not.
 */
const REPEATS = (quick: boolean) => (quick ? 3 : 11);

/**
 * Runs both libraries `count` times, taking turns (so a slow moment of the machine hits both),
 * and returns each one's median times; the byte figures are the same in every run (seeded and
 * deterministic), which is checked.
 */
function pairedRuns(
  count: number,
  ours: () => Figures,
  theirs: () => Figures,
): [ours: Figures, theirs: Figures] {
  const a: Figures[] = [];
  const b: Figures[] = [];
  for (let i = 0; i < count; i++) {
    // Each goes first every other time: what one run leaves (GC, JIT work) hits both.
    if (i % 2 === 0) {
      a.push(ours());
      b.push(theirs());
    } else {
      b.push(theirs());
      a.push(ours());
    }
  }
  return [medianOf(a), medianOf(b)];
}

function medianOf(runs: readonly Figures[]): Figures {
  const first = runs[0]!;
  for (const run of runs)
    if (run.bytesPerTick !== first.bytesPerTick || run.fullStateBytes !== first.fullStateBytes)
      throw new Error('replication bench: byte counts differ between repeated runs');
  const median = (pick: (figures: Figures) => number) =>
    runs.map(pick).sort((x, y) => x - y)[runs.length >> 1]!;
  return {
    ...first,
    encodeMicros: median((f) => f.encodeMicros),
    decodeMicros: median((f) => f.decodeMicros),
    ackMicros: median((f) => f.ackMicros),
  };
}

async function run(options: SuiteOptions): Promise<Row[]> {
  const ticks = options.quick ? 120 : 600;
  const cases: { motion: Motion; precision: Precision; seed: number }[] = [
    { motion: 'random', precision: 'f32', seed: 61 },
    { motion: 'random', precision: 'quantized', seed: 61 },
    { motion: 'smooth', precision: 'quantized', seed: 62 },
    { motion: 'smooth', precision: 'f32', seed: 62 },
  ];
  // Warm-up: untimed runs of every case and library (as many ticks as a timed run, twice), so
  // the timed runs measure steady state — a game server's rooms run for minutes — and not the
  // JIT's compilation and tiering.
  for (let round = 0; round < 2; round++)
    for (const { motion, precision, seed } of cases) {
      const warm = makePlan(motion, ticks, seed + 1000 + round);
      runTickwire(warm, precision, false, 1);
      runColyseus(warm, precision);
    }
  const rows: Row[] = [];
  const lossRows: Row[] = [];
  for (const { motion, precision, seed } of cases) {
    const plan = makePlan(motion, ticks, seed);
    const [ours, theirs] = pairedRuns(
      REPEATS(options.quick),
      () => runTickwire(plan, precision, false, 1),
      () => runColyseus(plan, precision),
    );
    const name = `arena-1000-${motion}/${precision}`;
    const peer = { peer: PEER } as const;
    rows.push(
      row({
        case: name,
        metric: 'full_state_bytes',
        unit: 'B',
        better: 'lower',
        tickwire: ours.fullStateBytes,
        ...peer,
        peerValue: theirs.fullStateBytes,
      }),
      row({
        case: name,
        metric: 'bytes_per_tick',
        unit: 'B',
        better: 'lower',
        tickwire: ours.bytesPerTick,
        ...peer,
        peerValue: theirs.bytesPerTick,
      }),
    );
    if (motion === 'smooth')
      rows.push(
        row({
          case: name,
          metric: 'bytes_per_changed_entity',
          unit: 'B',
          better: 'lower',
          tickwire: ours.bytesPerTick / ours.changedPerTick,
          ...peer,
          peerValue: theirs.bytesPerTick / theirs.changedPerTick,
        }),
      );
    rows.push(
      row({
        case: name,
        metric: 'encode_us_per_tick',
        unit: 'µs',
        better: 'lower',
        tickwire: ours.encodeMicros,
        ...peer,
        peerValue: theirs.encodeMicros,
      }),
      row({
        case: name,
        metric: 'decode_apply_us_per_tick',
        unit: 'µs',
        better: 'lower',
        tickwire: ours.decodeMicros,
        ...peer,
        peerValue: theirs.decodeMicros,
      }),
      row({
        case: name,
        metric: 'ack_us_per_tick',
        unit: 'µs',
        better: 'lower',
        tickwire: ours.ackMicros,
      }),
    );
    const floor = entropyFloor(motion, precision, ours.changedPerTick);
    rows.push(
      row({
        case: name,
        metric: 'entropy_floor_bytes_per_tick',
        unit: 'B',
        better: 'lower',
        tickwire: floor.bytesPerTick,
      }),
    );
    if (floor.bytesPerChanged !== null)
      rows.push(
        row({
          case: name,
          metric: 'entropy_floor_bytes_per_changed_entity',
          unit: 'B',
          better: 'lower',
          tickwire: floor.bytesPerChanged,
        }),
      );
    // 5 % of snapshots lost (seeded); only received ones are acked, so baselines age.
    const lossy = runTickwire(plan, precision, true, seed + 500);
    lossRows.push(
      row({
        case: `${name}/loss-5%`,
        metric: 'bytes_per_tick',
        unit: 'B',
        better: 'lower',
        tickwire: lossy.bytesPerTick,
      }),
    );
  }
  return [...rows, ...lossRows, ...aoiRows(options.quick)];
}

/**
 * Delta snapshots of a 1000-entity arena against @colyseus/schema patches: bytes per tick,
 * encode (with change tracking) and decode+apply time, ack handling, entropy floors, and
 * snapshot loss; then the `aoi-100x1000` area-of-interest case (see replication-aoi.ts) against
 * @colyseus/schema StateViews.
 */
export const suite: Suite = { name: 'replication', run };
