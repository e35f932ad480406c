import type { Suite } from '../report.js';

/** A suite as the CLI knows it before loading it. */
export interface SuiteEntry {
  /** Must equal the loaded suite's `name`. */
  name: string;
  /** One line for `--help`. */
  description: string;
  load: () => Promise<Suite>;
}

/**
 * Every suite, in run order. Adding a suite: write `src/suites/<name>.ts` exporting
 * `suite: Suite`, then add one entry here. Suites load lazily, so running one suite never
 * imports the peer libraries of the others.
 */
export const suites: readonly SuiteEntry[] = [
  {
    name: 'core',
    description:
      'link conditioner, conditioned connection and memory transport overheads (no peer)',
    load: async () => (await import('./core.js')).suite,
  },
  {
    name: 'transport',
    description:
      'ws, tcp and udp against raw ws, net and dgram: msg/s, MB/s, RTT p50/p99, wire overhead',
    load: async () => (await import('./transport.js')).suite,
  },
  {
    name: 'serialization',
    description:
      'schema codec vs JSON, @msgpack/msgpack and @colyseus/schema: bytes, encode/decode ops/s',
    load: async () => (await import('./serialization.js')).suite,
  },
  {
    name: 'timesync',
    description:
      'clock sync error on a simulated link (one-shot, steady, drift, asymmetry, loss) vs npm timesync',
    load: async () => (await import('./timesync.js')).suite,
  },
  {
    name: 'replication',
    description:
      'delta snapshots of a 1000-entity arena vs @colyseus/schema patches: bytes/tick, encode, decode',
    load: async () => (await import('./replication.js')).suite,
  },
  {
    name: 'prediction',
    description:
      'snapshot interpolation on a 20 Hz, 40±20 ms, 2% loss feed vs @geckos.io/snapshot-interpolation (delay, underruns, error); reconciliation and rollback cost',
    load: async () => (await import('./prediction.js')).suite,
  },
  {
    name: 'server',
    description:
      'ws bots in rooms of 50 at 20 Hz against one server process: most bots with tick p99 <= 10 ms, server CPU us/bot/s',
    load: async () => (await import('./server.js')).suite,
  },
];
