import { performance } from 'node:perf_hooks';
import { createRollback, createRollbackUintCodec, type Rollback } from '@tickwire/prediction';
import { type Row, rowFactory } from '../report.js';

// GGPO-style rollback cost on a 100-entity deterministic simulation (integer math, a PRNG in
// the state). Two players: the local one (0) and a remote one (1) whose inputs arrive exactly
// `DEPTH` frames late and always differ from the prediction, so every `advanceFrame()` first
// rolls back `DEPTH` frames: load the snapshot, resimulate 8 frames (saving 7 snapshots), then
// simulate the new frame. Snapshots come from a pool (`discard` returns them), as a game would.

const row = rowFactory('prediction');
const ENTITIES = 100;
const FIELDS = 4;
const WORLD = 1 << 16;
const DEPTH = 8;
/** Timed batches per case; the median batch is reported. */
const BATCHES = 7;
const WARMUP_MS = 100;

/** The simulation: entity i follows player i % 2's stick, bounces off the walls, gets gusts. */
function createWorld() {
  const state = new Int32Array(1 + ENTITIES * FIELDS);
  state[0] = 0x2545f491;
  for (let i = 0; i < ENTITIES; i++) {
    state[1 + i * FIELDS] = (i * 7919) % WORLD;
    state[2 + i * FIELDS] = (i * 104_729) % WORLD;
  }
  const pool: Int32Array[] = [];
  return {
    state,
    save(): Int32Array {
      const snapshot = pool.pop() ?? new Int32Array(state.length);
      snapshot.set(state);
      return snapshot;
    },
    load(snapshot: Int32Array): void {
      state.set(snapshot);
    },
    discard(snapshot: Int32Array): void {
      pool.push(snapshot);
    },
    advance(inputs: readonly number[]): void {
      let r = state[0]!;
      for (let i = 0; i < ENTITIES; i++) {
        const base = 1 + i * FIELDS;
        const input = inputs[i & 1]!;
        r ^= r << 13;
        r ^= r >>> 17;
        r ^= r << 5;
        const ax = (input & 2 ? 4 : 0) - (input & 1 ? 4 : 0) + ((r & 3) - 1);
        const ay = (input & 8 ? 4 : 0) - (input & 4 ? 4 : 0) + (((r >>> 2) & 3) - 1);
        let vx = state[base + 2]! + ax - (state[base + 2]! >> 4);
        let vy = state[base + 3]! + ay - (state[base + 3]! >> 4);
        let x = state[base]! + vx;
        let y = state[base + 1]! + vy;
        if (x < 0 || x >= WORLD) {
          vx = -vx;
          x = x < 0 ? 0 : WORLD - 1;
        }
        if (y < 0 || y >= WORLD) {
          vy = -vy;
          y = y < 0 ? 0 : WORLD - 1;
        }
        state[base] = x;
        state[base + 1] = y;
        state[base + 2] = vx;
        state[base + 3] = vy;
      }
      state[0] = r;
    },
  };
}

interface Timings {
  /** Load + DEPTH resimulated frames (with their snapshots), µs. */
  rollbackMicros: number;
  /** A whole `advanceFrame()`, µs. */
  frameMicros: number;
}

/** Median-batch figures of `advanceFrame()` with (or without) a DEPTH-frame rollback each frame. */
function measure(mispredict: boolean, iterations: number): Timings {
  const world = createWorld();
  const rollback: Rollback<number> = createRollback<Int32Array, number>({
    players: 2,
    localPlayers: [0],
    inputDelay: 0,
    maxRollback: DEPTH,
    inputCodec: createRollbackUintCodec(1),
    save: world.save,
    load: world.load,
    discard: world.discard,
    advance: world.advance,
  });
  let frameStart = 0;
  let rollbackSum = 0;
  let rollbacks = 0;
  rollback.on('rollback', (_from, frames) => {
    rollbackSum += performance.now() - frameStart;
    if (frames !== DEPTH) throw new Error(`prediction-rollback: rolled back ${frames} frames`);
    rollbacks++;
  });
  const step = (): void => {
    const frame = rollback.currentFrame;
    rollback.addLocalInput(frame & 15);
    // The remote input of DEPTH frames ago arrives; it differs from the one before (or not).
    if (frame >= DEPTH) rollback.addRemoteInput(1, frame - DEPTH, mispredict ? frame & 15 : 0);
    frameStart = performance.now();
    if (!rollback.advanceFrame()) throw new Error('prediction-rollback: stalled');
  };
  const run = (count: number): number => {
    rollbackSum = 0;
    rollbacks = 0;
    const start = performance.now();
    for (let i = 0; i < count; i++) step();
    return performance.now() - start;
  };
  const warmupStart = performance.now();
  do run(iterations);
  while (performance.now() - warmupStart < WARMUP_MS);
  const frames: number[] = [];
  const rollbackTimes: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const elapsedMs = run(iterations);
    frames.push((elapsedMs * 1000) / iterations);
    if (mispredict && rollbacks !== iterations) {
      throw new Error(`prediction-rollback: ${rollbacks} rollbacks in ${iterations} frames`);
    }
    rollbackTimes.push(rollbacks > 0 ? (rollbackSum * 1000) / rollbacks : 0);
  }
  if (!mispredict && rollback.stats.rollbacks !== 0) {
    throw new Error('prediction-rollback: unexpected rollback');
  }
  const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]!;
  return { rollbackMicros: median(rollbackTimes), frameMicros: median(frames) };
}

/** Rows of the rollback cost (load + 8 resimulated frames) of a 100-entity simulation (no peer). */
export function rollbackRows(quick: boolean): Row[] {
  const iterations = quick ? 1000 : 5000;
  const steady = measure(false, iterations);
  const rolling = measure(true, iterations);
  const name = `rollback/${DEPTH}-frames-${ENTITIES}-entities`;
  return [
    row({
      case: name,
      metric: 'us_per_rollback',
      unit: 'µs',
      better: 'lower',
      tickwire: rolling.rollbackMicros,
    }),
    row({
      case: name,
      metric: 'us_per_frame_with_rollback',
      unit: 'µs',
      better: 'lower',
      tickwire: rolling.frameMicros,
    }),
    row({
      case: `frame/${ENTITIES}-entities`,
      metric: 'us_per_frame',
      unit: 'µs',
      better: 'lower',
      tickwire: steady.frameMicros,
    }),
  ];
}
