import { createRequire } from 'node:module';
import {
  createLinkConditioner,
  createManualTime,
  type LinkOptions,
  type ManualTime,
  type TimeSource,
} from '@tickwire/core';
import {
  createTimeSyncClient,
  createTimeSyncResponder,
  type TimeSyncClient,
  type TimeSyncOptions,
} from '@tickwire/timesync';
import { type Row, type RowInput, rowFactory, type Suite, type SuiteOptions } from '../report.js';

const row = rowFactory('timesync');
const require = createRequire(import.meta.url);

/** The npm `timesync` instance surface the simulation drives. */
interface PeerTimesync {
  offset: number;
  now(): number;
  sync(): Promise<void>;
  receive(from: string | undefined, data: unknown): void;
  send: (to: string, data: { id: number }, timeout: number) => Promise<void>;
  on(event: string, fn: (value: unknown) => void): void;
}
const timesync = require('timesync') as { create(options: object): PeerTimesync };

const CLIENT_BASE_MS = 1_000_000;
const SERVER_BASE_MS = 5_000_000.25;
const SKEW = 50e-6;
const SYMMETRIC: LinkOptions = { latencyMs: 50, jitterMs: 10, lossRate: 0.02 };
const EXPONENTIAL: LinkOptions = {
  latencyMs: 40,
  jitterMs: 10,
  jitterDistribution: 'exponential',
  lossRate: 0.02,
};
/** A bound on every simulated wait: a sync not over by then counts as hung. */
const BOUND_MS = 60_000;

/** The local clock: `SKEW` fast, over the true (server) time of the manual clock. */
function localClock(manual: ManualTime): TimeSource {
  const rate = 1 + SKEW;
  return {
    now: () => CLIENT_BASE_MS + rate * manual.now(),
    setTimeout: (callback, delayMs) => manual.setTimeout(callback, delayMs / rate),
    setInterval: (callback, periodMs) => manual.setInterval(callback, periodMs / rate),
  };
}

interface World {
  manual: ManualTime;
  local: TimeSource;
  serverNow: () => number;
  trueOffset: () => number;
  up: ReturnType<typeof createLinkConditioner>;
  down: ReturnType<typeof createLinkConditioner>;
}

function world(seed: number, up: LinkOptions, down: LinkOptions): World {
  const manual = createManualTime();
  const local = localClock(manual);
  const serverNow = () => SERVER_BASE_MS + manual.now();
  return {
    manual,
    local,
    serverNow,
    trueOffset: () => serverNow() - local.now(),
    up: createLinkConditioner({ ...up, time: manual, seed: seed * 2 + 1 }),
    down: createLinkConditioner({ ...down, time: manual, seed: seed * 2 + 2 }),
  };
}

interface TickwireRun {
  /** serverNow() − truth at each probe time. */
  errors: number[];
  /** Estimated minus true offset at the end of the burst. */
  burstError: number;
  /** Floor estimators on the burst's true delays: midrange of each direction, lower edges. */
  floorMidrange: number;
  floorEdge: number;
  requests: number;
  completed: boolean;
}

/** One Tickwire client on a simulated link; probes serverNow() at `probesMs` (true time). */
async function runTickwire(
  seed: number,
  up: LinkOptions,
  down: LinkOptions,
  durationMs: number,
  probesMs: readonly number[],
  options: TimeSyncOptions = {},
): Promise<TickwireRun> {
  const w = world(seed, up, down);
  const responder = createTimeSyncResponder({ time: { now: w.serverNow } });
  const client: TimeSyncClient = createTimeSyncClient({
    ...options,
    time: w.local,
    send: (request) =>
      w.up.transmit(13, () => {
        const response = responder.respond(request);
        w.down.transmit(29, () => client.receive(response));
      }),
  });
  const delaysUp: number[] = [];
  const delaysDown: number[] = [];
  let burstError = Number.NaN;
  let completed = false;
  client.on('sample', ({ sample }) => {
    if (completed) return;
    // True one-way delays in true ms (the local clock runs 1 + SKEW).
    const trueAt = (localMs: number) => (localMs - CLIENT_BASE_MS) / (1 + SKEW);
    delaysUp.push(sample.t1 - SERVER_BASE_MS - trueAt(sample.t0));
    delaysDown.push(trueAt(sample.t3) - (sample.t2 - SERVER_BASE_MS));
  });
  client.sync().then(
    () => {
      completed = true;
      burstError = client.stats().offsetMs - w.trueOffset();
    },
    () => {
      completed = true;
    },
  );
  const errors: number[] = [];
  for (const at of probesMs) {
    w.manual.advanceTo(at);
    await undefined;
    errors.push(client.serverNow() - w.serverNow());
  }
  w.manual.advanceTo(durationMs);
  await undefined;
  await undefined;
  const requests = client.stats().requests;
  client.close();
  const range = (v: number[]) => [Math.min(...v), Math.max(...v)] as const;
  const [upMin, upMax] = range(delaysUp);
  const [downMin, downMax] = range(delaysDown);
  return {
    errors,
    burstError,
    floorMidrange: (upMin + upMax - downMin - downMax) / 4,
    floorEdge: (upMin - downMin) / 2,
    requests,
    completed,
  };
}

interface PeerRun {
  errors: number[];
  /** Offset error when the first sync ended (NaN if it hung). */
  firstSyncError: number;
  hung: boolean;
}

/**
 * One npm `timesync` client on the same simulated link. Its clock is the `now` option, its
 * transport the overridden `send`; its internal waits (`setTimeout`) and promise jobs (the
 * `promise` package's `asap`, on `process.nextTick`) run on the manual clock during the trial.
 */
function runPeer(
  seed: number,
  up: LinkOptions,
  down: LinkOptions,
  options: { repeat: number; resyncMs: number | null },
  durationMs: number,
  probesMs: readonly number[],
): PeerRun {
  const w = world(seed, up, down);
  const jobs: (() => void)[] = [];
  const saved = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    setImmediate: globalThis.setImmediate,
    nextTick: process.nextTick,
  };
  const g = globalThis as unknown as Record<string, unknown>;
  g.setTimeout = (fn: () => void, delayMs?: number) => w.manual.setTimeout(fn, delayMs ?? 0);
  g.clearTimeout = (timer?: { cancel?: () => void }) => timer?.cancel?.();
  g.setImmediate = (fn: () => void) => jobs.push(fn);
  process.nextTick = ((fn: (...args: unknown[]) => void, ...args: unknown[]) =>
    jobs.push(() => fn(...args))) as typeof process.nextTick;
  const drain = () => {
    for (let i = 0; i < jobs.length; i++) jobs[i]!();
    jobs.length = 0;
  };
  try {
    const ts = timesync.create({
      server: 'server',
      interval: null,
      repeat: options.repeat,
      now: () => w.local.now(),
    });
    ts.send = (_to, data) => {
      w.up.transmit(64, () => {
        const reply = { jsonrpc: '2.0', id: data.id, result: w.serverNow() };
        w.down.transmit(64, () => {
          ts.receive(undefined, reply);
          drain();
        });
      });
      return Promise.resolve();
    };
    let firstSyncError = Number.NaN;
    let ended = false;
    ts.on('sync', (state) => {
      if (state === 'end' && !ended) {
        ended = true;
        firstSyncError = ts.offset - w.trueOffset();
      }
    });
    const start = () => {
      ts.sync();
      drain();
    };
    start();
    if (options.resyncMs !== null) w.manual.setInterval(start, options.resyncMs);
    const errors: number[] = [];
    for (const at of probesMs) probe(at);
    function probe(at: number) {
      while (w.manual.runNext() && w.manual.now() < at) drain();
      drain();
      w.manual.advanceTo(at);
      drain();
      errors.push(ts.now() - w.serverNow());
    }
    while (!ended && w.manual.now() < durationMs && w.manual.runNext()) drain();
    return { errors, firstSyncError, hung: !ended };
  } finally {
    g.setTimeout = saved.setTimeout;
    g.clearTimeout = saved.clearTimeout;
    g.setImmediate = saved.setImmediate;
    process.nextTick = saved.nextTick;
  }
}

function p95Abs(values: readonly number[]): number {
  const sorted = values
    .filter(Number.isFinite)
    .map(Math.abs)
    .sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? Number.NaN;
}

const median = (values: readonly number[]) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

const errorRow = (name: string, tickwire: number, peer?: number): RowInput => ({
  case: name,
  metric: 'p95_abs_error',
  unit: 'ms',
  better: 'lower',
  tickwire,
  ...(peer === undefined ? {} : { peer: 'timesync', peerValue: peer }),
});

// One-shot: a burst of 10 samples and no steady sampling afterwards.
const ONE_SHOT: TimeSyncOptions = { minIntervalMs: 1e9, maxIntervalMs: 1e9 };

async function oneShot(
  name: string,
  link: LinkOptions,
  trials: number,
  rows: Row[],
  floorOf: 'midrange' | 'edge',
  down: LinkOptions = link,
): Promise<{ tickwire: number[]; peer: number[] }> {
  const tw: number[] = [];
  const floor: number[] = [];
  const peer: number[] = [];
  let hungPeer = 0;
  for (let seed = 1; seed <= trials; seed++) {
    const run = await runTickwire(seed, link, down, 5_000, [], ONE_SHOT);
    tw.push(run.burstError);
    floor.push(floorOf === 'midrange' ? run.floorMidrange : run.floorEdge);
    const p = runPeer(seed, link, down, { repeat: 10, resyncMs: null }, BOUND_MS, []);
    if (p.hung) hungPeer++;
    else peer.push(p.firstSyncError);
  }
  rows.push(row(errorRow(name, p95Abs(tw), p95Abs(peer))));
  rows.push(
    row({
      case: `${name}/floor (${floorOf === 'midrange' ? 'midrange' : 'lower edges'}, true delays)`,
      metric: 'p95_abs_error',
      unit: 'ms',
      better: 'lower',
      tickwire: p95Abs(floor),
    }),
  );
  rows.push(
    row({
      case: `${name}/hung syncs (of ${trials}; timesync: completed only above)`,
      metric: 'hung',
      unit: 'count',
      better: 'lower',
      tickwire: 0,
      peer: 'timesync',
      peerValue: hungPeer,
    }),
  );
  return { tickwire: tw, peer };
}

export const suite: Suite = {
  name: 'timesync',
  async run({ quick }: SuiteOptions): Promise<Row[]> {
    const trials = quick ? 500 : 5_000;
    const rows: Row[] = [];

    await oneShot('one-shot uniform ±10, 2% loss, 10 samples', SYMMETRIC, trials, rows, 'midrange');
    await oneShot('one-shot exponential mean 10, 2% loss', EXPONENTIAL, trials, rows, 'edge');

    // Steady state: serverNow() after 60 s with adaptive sampling.
    {
      const tw: number[] = [];
      const peer: number[] = [];
      let requests = 0;
      for (let seed = 1; seed <= trials; seed++) {
        const run = await runTickwire(seed, SYMMETRIC, SYMMETRIC, 60_000, [60_000]);
        tw.push(run.errors[0]!);
        requests += run.requests;
        const p = runPeer(
          seed,
          SYMMETRIC,
          SYMMETRIC,
          { repeat: 5, resyncMs: 10_000 },
          60_000,
          [60_000],
        );
        peer.push(p.errors[0]!);
      }
      rows.push(
        row(errorRow('steady 60 s (timesync: re-sync every 10 s)', p95Abs(tw), p95Abs(peer))),
      );
      rows.push(
        row({
          case: 'steady 60 s: requests per second',
          metric: 'rate',
          unit: 'req/s',
          better: 'lower',
          tickwire: requests / trials / 60,
          peer: 'timesync',
          peerValue: 30 / 60,
        }),
      );
    }

    // Drift: 10 minutes, 50 ppm, serverNow() probed every second from 5 s on.
    {
      const driftTrials = quick ? 200 : trials;
      const probes = Array.from({ length: 596 }, (_, i) => 5_000 + i * 1_000);
      const tw: number[] = [];
      const peerDefault: number[] = [];
      const peer10s: number[] = [];
      for (let seed = 1; seed <= driftTrials; seed++) {
        tw.push(...(await runTickwire(seed, SYMMETRIC, SYMMETRIC, 600_000, probes)).errors);
        peerDefault.push(
          ...runPeer(seed, SYMMETRIC, SYMMETRIC, { repeat: 5, resyncMs: null }, 600_000, probes)
            .errors,
        );
        peer10s.push(
          ...runPeer(seed, SYMMETRIC, SYMMETRIC, { repeat: 5, resyncMs: 10_000 }, 600_000, probes)
            .errors,
        );
      }
      rows.push(
        row(
          errorRow(
            `drift 10 min 50 ppm vs timesync defaults (${driftTrials} runs)`,
            p95Abs(tw),
            p95Abs(peerDefault),
          ),
        ),
      );
      rows.push(
        row(
          errorRow(
            `drift 10 min 50 ppm vs timesync every 10 s (${driftTrials} runs)`,
            p95Abs(tw),
            p95Abs(peer10s),
          ),
        ),
      );
    }

    // Asymmetric 60/40: the bias (up − down)/2 = 10 ms is unobservable from round trips.
    {
      const upLink = { ...SYMMETRIC, latencyMs: 60 };
      const downLink = { ...SYMMETRIC, latencyMs: 40 };
      const tw: number[] = [];
      const peer: number[] = [];
      for (let seed = 1; seed <= trials; seed++) {
        tw.push((await runTickwire(seed, upLink, downLink, 5_000, [], ONE_SHOT)).burstError);
        const p = runPeer(seed, upLink, downLink, { repeat: 10, resyncMs: null }, BOUND_MS, []);
        if (!p.hung) peer.push(p.firstSyncError);
      }
      rows.push(row(errorRow('asymmetric 60/40 one-shot (bias 10 ms)', p95Abs(tw), p95Abs(peer))));
      rows.push(
        row({
          case: 'asymmetric 60/40: median error (bias)',
          metric: 'median_error',
          unit: 'ms',
          better: 'lower',
          tickwire: median(tw),
          peer: 'timesync',
          peerValue: median(peer),
        }),
      );
    }

    // 20 % loss both ways: Tickwire's sync always completes; timesync's hangs on a lost reply.
    {
      const lossy = { ...SYMMETRIC, lossRate: 0.2 };
      const tw: number[] = [];
      const peer: number[] = [];
      let hungTickwire = 0;
      let hungPeer = 0;
      for (let seed = 1; seed <= trials; seed++) {
        const run = await runTickwire(seed, lossy, lossy, BOUND_MS, [], ONE_SHOT);
        if (!run.completed) hungTickwire++;
        tw.push(run.burstError);
        const p = runPeer(seed, lossy, lossy, { repeat: 10, resyncMs: null }, BOUND_MS, []);
        if (p.hung) hungPeer++;
        else peer.push(p.firstSyncError);
      }
      rows.push(
        row(errorRow('20% loss one-shot (timesync: completed only)', p95Abs(tw), p95Abs(peer))),
      );
      rows.push(
        row({
          case: `20% loss: hung syncs (of ${trials}, bound 60 s)`,
          metric: 'hung',
          unit: 'count',
          better: 'lower',
          tickwire: hungTickwire,
          peer: 'timesync',
          peerValue: hungPeer,
        }),
      );
    }
    return rows;
  },
};
