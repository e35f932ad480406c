import { performance } from 'node:perf_hooks';
import { createPrediction, type PredictionOptions } from '@tickwire/prediction';
import { type Row, rowFactory } from '../report.js';

const row = rowFactory('prediction');

/** A 2D character with simple physics: the small state a reconcile replays. */
interface Character {
  x: number;
  y: number;
  vx: number;
  vy: number;
}

interface Move {
  ax: number;
  ay: number;
}

const DT_MS = 1000 / 60;
const ACCEL = 0.00002;
const FRICTION = 0.9;
/** Inputs in flight at 60 Hz over about 150 ms RTT plus a lost update or two. */
const PENDING = 60;
/** Timed batches per case; the median batch is reported. */
const BATCHES = 7;
const WARMUP_MS = 100;

function walk(state: Character, input: Move, dt: number): Character {
  const vx = (state.vx + input.ax * ACCEL * dt) * FRICTION;
  const vy = (state.vy + input.ay * ACCEL * dt) * FRICTION;
  return { x: state.x + vx * dt, y: state.y + vy * dt, vx, vy };
}

const MOVES: readonly Move[] = [
  { ax: 1, ay: 0 },
  { ax: 1, ay: 1 },
  { ax: 0, ay: -1 },
  { ax: -1, ay: 0 },
];

/**
 * µs per `reconcile()` with `PENDING` inputs replayed. The acknowledged seq stays 0, so every
 * call replays the same 60 inputs; two authoritative states alternate, so with smoothing every
 * call is a misprediction (offset bookkeeping included).
 */
function microsecondsPerReconcile(
  options: Partial<PredictionOptions<Character, Move>>,
  iterations: number,
): number {
  const prediction = createPrediction<Character, Move>({
    initial: { x: 0, y: 0, vx: 0, vy: 0 },
    step: walk,
    dt: DT_MS,
    ...options,
  });
  for (let i = 0; i < PENDING; i++) prediction.input(MOVES[i % MOVES.length]!);
  const servers: Character[] = [
    { x: 1, y: 2, vx: 0.001, vy: 0 },
    { x: 1.05, y: 2, vx: 0.001, vy: 0 },
  ];
  let sink = 0;
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      prediction.reconcile(servers[i & 1]!, 0);
      sink += prediction.state.x;
    }
  };
  // Warm up until the JIT has settled: at least `iterations` calls and WARMUP_MS.
  const warmupStart = performance.now();
  do run(iterations);
  while (performance.now() - warmupStart < WARMUP_MS);
  const batches: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const start = performance.now();
    run(iterations);
    batches.push(((performance.now() - start) * 1000) / iterations);
  }
  if (!Number.isFinite(sink) || prediction.pending !== PENDING) {
    throw new Error(`prediction-reconcile: bad run (pending ${prediction.pending})`);
  }
  batches.sort((a, b) => a - b);
  return batches[BATCHES >> 1]!;
}

/** Rows of `reconcile()` cost with 60 pending inputs on a small 2D character state (no peer). */
export function reconcileRows(quick: boolean): Row[] {
  const iterations = quick ? 20_000 : 50_000;
  const spread = (state: Character): Character => ({ ...state });
  const cases: [name: string, options: Partial<PredictionOptions<Character, Move>>][] = [
    ['reconcile/60-pending (structuredClone)', {}],
    ['reconcile/60-pending (spread clone)', { clone: spread }],
    [
      'reconcile/60-pending+smoothing (spread clone)',
      {
        clone: spread,
        smoothing: {
          position: (state) => [state.x, state.y],
          apply: (state, offset) => ({
            ...state,
            x: state.x + offset[0]!,
            y: state.y + offset[1]!,
          }),
          decayMs: 100,
          snapDistance: 2,
          maxCorrectionPerFrame: 0.05,
        },
      },
    ],
  ];
  return cases.map(([name, options]) =>
    row({
      case: name,
      metric: 'us_per_reconcile',
      unit: 'µs',
      better: 'lower',
      tickwire: microsecondsPerReconcile(options, iterations),
    }),
  );
}
