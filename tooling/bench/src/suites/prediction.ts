import { createRequire } from 'node:module';
import type { SnapshotInterpolation as GeckosInterpolation } from '@geckos.io/snapshot-interpolation';
import { createLinkConditioner, createManualTime, createRandom } from '@tickwire/core';
import { createInterpolator } from '@tickwire/prediction';
import { type Row, type RowInput, rowFactory, type Suite, type SuiteOptions } from '../report.js';
import { reconcileRows } from './prediction-reconcile.js';
import { rollbackRows } from './prediction-rollback.js';

const row = rowFactory('prediction');
const require = createRequire(import.meta.url);
const { SnapshotInterpolation } = require('@geckos.io/snapshot-interpolation') as {
  SnapshotInterpolation: typeof GeckosInterpolation;
};
const GECKOS = '@geckos.io/snapshot-interpolation';

// The feed: 20 Hz snapshots over a link of 40 ms ± 20 ms (uniform) one way with 2 % loss,
// rendered at 60 fps. Client and server clocks agree (as after timesync), so "now" is true time.
const SNAPSHOT_INTERVAL_MS = 50;
const LINK = { latencyMs: 40, jitterMs: 20, lossRate: 0.02 };
const FRAME_MS = 1000 / 60;
const RADIUS = 100;
const SPEED = 157;
const SEEDS = [1, 2, 3, 4, 5];
// Frames before this (start-up of both libraries) are left out of every figure.
const WARMUP_MS = 2_000;
// Server time of the simulation's t = 0: well away from geckos' −1 "no offset yet" sentinel.
const BASE_MS = 1_000_000;
const FLOOR_MS = LINK.latencyMs + LINK.jitterMs + SNAPSHOT_INTERVAL_MS;
const GECKOS_BUFFERS_MS = [100, 125, 150, 200];
const MAX_UNDERRUN_RATE = 0.001;
const MAX_EXTRAPOLATION_MS = 250;

interface Arrival {
  serverTime: number;
  arrivalTime: number;
}

interface Point {
  x: number;
  y: number;
}

/** The true positions of the two entities at a simulation time (ms). */
interface Paths {
  circle(timeMs: number): Point;
  turner(timeMs: number): Point;
}

/** Which snapshots arrive, and when: one pass of the seeded link, replayed to every library. */
function simulateFeed(seed: number, durationMs: number): Arrival[] {
  const time = createManualTime();
  const link = createLinkConditioner({ ...LINK, time, seed });
  const arrivals: Arrival[] = [];
  for (let serverTime = 0; serverTime <= durationMs; serverTime += SNAPSHOT_INTERVAL_MS) {
    time.advanceTo(serverTime);
    link.transmit(64, () => arrivals.push({ serverTime, arrivalTime: time.now() }));
  }
  time.runAll();
  return arrivals;
}

/** A circle of radius 100 at 157 units/s, and a walker turning to a random heading every 0.5–1.5 s. */
function paths(seed: number, durationMs: number): Paths {
  const random = createRandom(1_000 + seed);
  const turns: { at: number; x: number; y: number; dx: number; dy: number }[] = [];
  let x = 0;
  let y = 0;
  for (let at = 0; at <= durationMs + 2_000; ) {
    const heading = random.range(0, 2 * Math.PI);
    const next = at + random.range(500, 1_500);
    const dx = Math.cos(heading) * (SPEED / 1000);
    const dy = Math.sin(heading) * (SPEED / 1000);
    turns.push({ at, x, y, dx, dy });
    x += dx * (next - at);
    y += dy * (next - at);
    at = next;
  }
  const omega = SPEED / RADIUS / 1000;
  return {
    circle: (timeMs) => ({
      x: RADIUS * Math.cos(omega * timeMs),
      y: RADIUS * Math.sin(omega * timeMs),
    }),
    turner(timeMs) {
      let low = 0;
      let high = turns.length - 1;
      while (low < high) {
        const mid = (low + high + 1) >> 1;
        if (turns[mid]!.at <= timeMs) low = mid;
        else high = mid - 1;
      }
      const turn = turns[low]!;
      const dt = timeMs - turn.at;
      return { x: turn.x + turn.dx * dt, y: turn.y + turn.dy * dt };
    },
  };
}

/** Per-frame figures of one library over every seed (frames after the warm-up only). */
interface Run {
  frames: number;
  underruns: number;
  extrapolated: number;
  delaysMs: number[];
  circleErrors: number[];
  turnerErrors: number[];
  late: number;
  received: number;
  /** Underrun frames of the worst seed, as a fraction of that seed's frames. */
  worstSeedUnderrunRate: number;
}

function emptyRun(): Run {
  return {
    frames: 0,
    underruns: 0,
    extrapolated: 0,
    delaysMs: [],
    circleErrors: [],
    turnerErrors: [],
    late: 0,
    received: 0,
    worstSeedUnderrunRate: 0,
  };
}

const distance = (a: Point, b: Point) => Math.hypot(a.x - b.x, a.y - b.y);

function recordFrame(
  run: Run,
  path: Paths,
  nowMs: number,
  renderTimeMs: number,
  circle: Point,
  turner: Point,
): void {
  run.frames++;
  run.delaysMs.push(nowMs - renderTimeMs);
  run.circleErrors.push(distance(circle, path.circle(renderTimeMs)));
  run.turnerErrors.push(distance(turner, path.turner(renderTimeMs)));
}

/** Tickwire's interpolator on one seed's feed. */
function runTickwire(run: Run, arrivals: readonly Arrival[], path: Paths, durationMs: number) {
  const interpolator = createInterpolator<Point>({
    fields: { x: 'linear', y: 'linear' },
    maxExtrapolationMs: MAX_EXTRAPOLATION_MS,
  });
  let next = 0;
  for (let frame = 0; frame * FRAME_MS <= durationMs; frame++) {
    const nowMs = frame * FRAME_MS;
    for (; next < arrivals.length && arrivals[next]!.arrivalTime <= nowMs; next++) {
      const { serverTime, arrivalTime } = arrivals[next]!;
      interpolator.push(
        BASE_MS + serverTime,
        new Map([
          ['circle', path.circle(serverTime)],
          ['turner', path.turner(serverTime)],
        ]),
        BASE_MS + arrivalTime,
      );
    }
    const sampled = interpolator.sample(BASE_MS + nowMs);
    if (nowMs < WARMUP_MS) continue;
    const circle = sampled.entities.get('circle');
    const turner = sampled.entities.get('turner');
    if (circle === undefined || turner === undefined) throw new Error('entity missing');
    if (sampled.mode === 'extrapolated') run.extrapolated++;
    else if (sampled.mode !== 'interpolated') run.underruns++;
    recordFrame(run, path, nowMs, sampled.renderTime - BASE_MS, circle, turner);
  }
  const stats = interpolator.stats();
  run.late += stats.lateSnapshots;
  run.received += stats.receivedSnapshots;
}

/**
 * geckos' SnapshotInterpolation on the same feed. It reads the time through
 * `SnapshotInterpolation.Now()`, which is `Date.now()`: for this run only, `Date.now` returns
 * the simulated time (restored in `finally`). It has no extrapolation: a frame where
 * `calcInterpolation` returns nothing is an underrun and shows the previous frame's positions.
 */
function runGeckos(
  run: Run,
  arrivals: readonly Arrival[],
  path: Paths,
  durationMs: number,
  bufferMs: number,
): void {
  const realNow = Date.now;
  let simulatedNow = BASE_MS;
  Date.now = () => simulatedNow;
  try {
    const geckos = new SnapshotInterpolation();
    geckos.interpolationBuffer.set(bufferMs);
    let circle: Point = { x: Number.NaN, y: Number.NaN };
    let turner: Point = { x: Number.NaN, y: Number.NaN };
    let next = 0;
    for (let frame = 0; frame * FRAME_MS <= durationMs; frame++) {
      const nowMs = frame * FRAME_MS;
      for (; next < arrivals.length && arrivals[next]!.arrivalTime <= nowMs; next++) {
        const { serverTime, arrivalTime } = arrivals[next]!;
        simulatedNow = BASE_MS + arrivalTime;
        geckos.snapshot.add({
          id: String(serverTime),
          time: BASE_MS + serverTime,
          state: [
            { id: 'circle', ...path.circle(serverTime) },
            { id: 'turner', ...path.turner(serverTime) },
          ],
        });
        run.received++;
      }
      simulatedNow = BASE_MS + nowMs;
      const result = geckos.calcInterpolation('x y');
      // The server time geckos means to show (its render time), whether or not it can.
      const renderTimeMs = nowMs - geckos.timeOffset - bufferMs;
      if (result !== undefined) {
        const byId = (id: string) => {
          const entity = result.state.find((e) => e.id === id)!;
          return { x: entity.x as number, y: entity.y as number };
        };
        circle = byId('circle');
        turner = byId('turner');
      }
      if (nowMs < WARMUP_MS) continue;
      if (result === undefined) run.underruns++;
      recordFrame(run, path, nowMs, renderTimeMs, circle, turner);
    }
  } finally {
    Date.now = realNow;
  }
}

function mean(values: readonly number[]): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

function p99(values: readonly number[]): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

const percent = (count: number, of: number) => (100 * count) / of;

/** Snapshot interpolation on the simulated feed, Tickwire vs geckos. */
export function interpolationRows({ quick }: SuiteOptions): Row[] {
  // Quick: fewer render frames per seed (20 s instead of 120 s).
  const durationMs = quick ? 20_000 : 120_000;
  const tickwire = emptyRun();
  const geckosRuns = new Map(GECKOS_BUFFERS_MS.map((bufferMs) => [bufferMs, emptyRun()]));
  for (const seed of SEEDS) {
    const arrivals = simulateFeed(seed, durationMs);
    const path = paths(seed, durationMs);
    const before = { frames: tickwire.frames, underruns: tickwire.underruns };
    runTickwire(tickwire, arrivals, path, durationMs);
    tickwire.worstSeedUnderrunRate = Math.max(
      tickwire.worstSeedUnderrunRate,
      (tickwire.underruns - before.underruns) / (tickwire.frames - before.frames),
    );
    for (const [bufferMs, run] of geckosRuns) {
      const before = { frames: run.frames, underruns: run.underruns };
      runGeckos(run, arrivals, path, durationMs, bufferMs);
      run.worstSeedUnderrunRate = Math.max(
        run.worstSeedUnderrunRate,
        (run.underruns - before.underruns) / (run.frames - before.frames),
      );
    }
  }
  // The fair buffer: the smallest candidate with at most 0.1 % underrun frames.
  const chosenBufferMs =
    GECKOS_BUFFERS_MS.find((bufferMs) => {
      const run = geckosRuns.get(bufferMs)!;
      return run.underruns <= MAX_UNDERRUN_RATE * run.frames;
    }) ?? GECKOS_BUFFERS_MS[GECKOS_BUFFERS_MS.length - 1]!;
  const geckos = geckosRuns.get(chosenBufferMs)!;
  const peer = `${GECKOS} (buffer ${chosenBufferMs} ms)`;
  const feed = `20 Hz, 40±20 ms, 2% loss, 60 fps, ${SEEDS.length}×${durationMs / 1000} s`;
  const compare = (input: Omit<RowInput, 'peer' | 'peerValue'>, peerValue: number) =>
    row({ ...input, peer, peerValue });
  const rows: Row[] = [
    row({
      case: `interpolation ${feed}: floor (one-way delay + jitter + snapshot interval)`,
      metric: 'render_delay',
      unit: 'ms',
      better: 'lower',
      tickwire: FLOOR_MS,
    }),
    compare(
      {
        case: `interpolation ${feed}: render delay (true time − rendered server time)`,
        metric: 'mean',
        unit: 'ms',
        better: 'lower',
        tickwire: mean(tickwire.delaysMs),
      },
      mean(geckos.delaysMs),
    ),
    compare(
      {
        case: 'interpolation: render delay',
        metric: 'p99',
        unit: 'ms',
        better: 'lower',
        tickwire: p99(tickwire.delaysMs),
      },
      p99(geckos.delaysMs),
    ),
    compare(
      {
        case: `interpolation: underrun frames (not interpolated, not within ${MAX_EXTRAPOLATION_MS} ms extrapolation)`,
        metric: 'underruns',
        unit: '%',
        better: 'lower',
        tickwire: percent(tickwire.underruns, tickwire.frames),
      },
      percent(geckos.underruns, geckos.frames),
    ),
    row({
      case: 'interpolation: extrapolated frames (geckos: none, it cannot)',
      metric: 'extrapolated',
      unit: '%',
      better: 'lower',
      tickwire: percent(tickwire.extrapolated, tickwire.frames),
    }),
    row({
      case: 'interpolation: late snapshots (arrived after render time passed them)',
      metric: 'late',
      unit: '%',
      better: 'lower',
      tickwire: percent(tickwire.late, tickwire.received),
    }),
    compare(
      {
        case: 'interpolation: circle r=100 at 157 u/s, position error (all frames)',
        metric: 'mean',
        unit: 'units',
        better: 'lower',
        tickwire: mean(tickwire.circleErrors),
      },
      mean(geckos.circleErrors),
    ),
    compare(
      {
        case: 'interpolation: circle r=100 at 157 u/s, position error (all frames)',
        metric: 'p99',
        unit: 'units',
        better: 'lower',
        tickwire: p99(tickwire.circleErrors),
      },
      p99(geckos.circleErrors),
    ),
    compare(
      {
        case: 'interpolation: random turns every 0.5–1.5 s at 157 u/s, position error',
        metric: 'mean',
        unit: 'units',
        better: 'lower',
        tickwire: mean(tickwire.turnerErrors),
      },
      mean(geckos.turnerErrors),
    ),
    compare(
      {
        case: 'interpolation: random turns every 0.5–1.5 s at 157 u/s, position error',
        metric: 'p99',
        unit: 'units',
        better: 'lower',
        tickwire: p99(tickwire.turnerErrors),
      },
      p99(geckos.turnerErrors),
    ),
  ];
  // The sweep the buffer was chosen from (on all seeds' frames together; geckos' delay also
  // depends on the first snapshot's transit, so the worst seed is shown too), Tickwire beside it.
  for (const [bufferMs, run] of geckosRuns) {
    const sweepPeer = `${GECKOS} (buffer ${bufferMs} ms)`;
    const sweepCase = `interpolation: geckos buffer sweep ${bufferMs} ms${bufferMs === chosenBufferMs ? ' (chosen)' : ''}`;
    rows.push(
      row({
        case: sweepCase,
        metric: 'underruns',
        unit: '%',
        better: 'lower',
        tickwire: percent(tickwire.underruns, tickwire.frames),
        peer: sweepPeer,
        peerValue: percent(run.underruns, run.frames),
      }),
      row({
        case: sweepCase,
        metric: 'underruns_worst_seed',
        unit: '%',
        better: 'lower',
        tickwire: 100 * tickwire.worstSeedUnderrunRate,
        peer: sweepPeer,
        peerValue: 100 * run.worstSeedUnderrunRate,
      }),
      row({
        case: sweepCase,
        metric: 'render_delay',
        unit: 'ms',
        better: 'lower',
        tickwire: mean(tickwire.delaysMs),
        peer: sweepPeer,
        peerValue: mean(run.delaysMs),
      }),
    );
  }
  return rows;
}

export const suite: Suite = {
  name: 'prediction',
  // Each row group comes from one helper; reconciliation and rollback groups join this list.
  async run(options: SuiteOptions): Promise<Row[]> {
    return [
      ...interpolationRows(options),
      ...reconcileRows(options.quick),
      ...rollbackRows(options.quick),
    ];
  },
};
