import {
  type Connection,
  conditionConnection,
  createLinkConditioner,
  createManualTime,
  type LinkOptions,
  systemTime,
  type TimeSource,
} from '@tickwire/core';
import {
  createMemoryClient,
  createMemoryConnectionPair,
  createMemoryNetwork,
  createMemoryServer,
} from '@tickwire/core/memory';
import { type BatchTask, createBench, resultOf, runBatches } from '../measure.js';
import { type Row, rowFactory, type Suite, type SuiteOptions } from '../report.js';

const row = rowFactory('core');

const MESSAGE_BYTES = 64;
/** Packets per tinybench iteration of the link conditioner and conditioned connection cases. */
const PACKET_BATCH = 1_000;
/** Messages per tinybench iteration of the memory transport throughput cases. */
const THROUGHPUT_BATCH = 10_000;
const SEED = 42;

/** Moderate impairment: a decent mobile link. */
const MODERATE: LinkOptions = {
  latencyMs: 50,
  jitterMs: 10,
  lossRate: 0.02,
  duplicateRate: 0.01,
  reorderRate: 0.01,
};
/** 1 MB/s: a batch of 1000 × 64 B queues for 64 ms, within the default 64 KiB queue. */
const BANDWIDTH_BYTES_PER_SEC = 1_000_000;
/** Longer than any delay above (serialization + latency + jitter + reorder delay). */
const DRAIN_MS = 1_000;

/** Link conditioner alone: `transmit()` of a batch, then manual time delivers all of it. */
function linkConditionerTasks(): BatchTask[] {
  const task = (name: string, options: LinkOptions, ordered: boolean): BatchTask => {
    const time = createManualTime();
    const link = createLinkConditioner({ ...options, time, seed: SEED });
    let delivered = 0;
    const deliver = () => {
      delivered++;
    };
    return {
      name,
      batchSize: PACKET_BATCH,
      async: false,
      fn: () => {
        link.resetStats();
        delivered = 0;
        for (let i = 0; i < PACKET_BATCH; i++) link.transmit(MESSAGE_BYTES, deliver, ordered);
        time.advance(DRAIN_MS);
        const { sent, lost, queueDropped, duplicated, inFlight } = link.stats;
        const expected = sent - lost - queueDropped + duplicated;
        if (delivered !== expected || inFlight !== 0 || queueDropped !== 0) {
          throw new Error(
            `${name}: delivered ${delivered} of ${expected} (in flight ${inFlight}, queue drops ${queueDropped})`,
          );
        }
      },
    };
  };
  return [
    task('link-conditioner/moderate', MODERATE, false),
    task(
      'link-conditioner/moderate+1MBps',
      { ...MODERATE, bandwidthBytesPerSec: BANDWIDTH_BYTES_PER_SEC },
      false,
    ),
    task('link-conditioner/moderate-ordered', MODERATE, true),
  ];
}

/** Resolves when `target` messages arrived at `connection` since the last `expect()`. */
function messageCounter(connection: Connection) {
  let received = 0;
  let target = 0;
  let resolve: (() => void) | null = null;
  connection.on('message', () => {
    received++;
    if (received === target && resolve) {
      resolve();
      resolve = null;
    }
  });
  return {
    expect(count: number): Promise<void> {
      received = 0;
      target = count;
      return new Promise<void>((done) => {
        resolve = done;
      });
    },
    get received() {
      return received;
    },
  };
}

/** A 64-byte payload; transports copy it on send, so one buffer serves every message. */
const payload = new Uint8Array(MESSAGE_BYTES).fill(7);

/** Bare memory pair vs the same pair with a zero-impairment conditioner on one end. */
function conditionedConnectionTasks(): BatchTask[] {
  const bare = (): BatchTask => {
    const [a, b] = createMemoryConnectionPair();
    const arrivals = messageCounter(b);
    return {
      name: 'conditioned-connection/bare-pair',
      batchSize: PACKET_BATCH,
      async: true,
      fn: async () => {
        const all = arrivals.expect(PACKET_BATCH);
        for (let i = 0; i < PACKET_BATCH; i++) a.send(payload);
        await all;
      },
    };
  };
  const outbound = (name: string, time: TimeSource, drain: () => void): BatchTask => {
    const [a, b] = createMemoryConnectionPair();
    const conditioned = conditionConnection(a, { time, seed: SEED });
    const arrivals = messageCounter(b);
    return {
      name,
      batchSize: PACKET_BATCH,
      async: true,
      fn: async () => {
        const all = arrivals.expect(PACKET_BATCH);
        for (let i = 0; i < PACKET_BATCH; i++) conditioned.send(payload);
        drain();
        await all;
      },
    };
  };
  const manualOutbound = () => {
    const time = createManualTime();
    return outbound('conditioned-connection/zero-impairment-send', time, () => time.advance(0));
  };
  const inbound = (): BatchTask => {
    const time = createManualTime();
    const [a, b] = createMemoryConnectionPair();
    const conditioned = conditionConnection(a, { time, seed: SEED });
    const arrivals = messageCounter(conditioned);
    return {
      name: 'conditioned-connection/zero-impairment-receive',
      batchSize: PACKET_BATCH,
      async: true,
      fn: async () => {
        const all = arrivals.expect(PACKET_BATCH);
        for (let i = 0; i < PACKET_BATCH; i++) b.send(payload);
        // The pair flushes in one microtask; zero-delay deliveries follow in microtasks too.
        await all;
      },
    };
  };
  // The real clock, as in the demo's live switch (zero delay: no timer is involved).
  const systemOutbound = () =>
    outbound('conditioned-connection/zero-impairment-send-system-time', systemTime, () => {});
  return [bare(), manualOutbound(), inbound(), systemOutbound()];
}

/** Throughput of 64-byte reliable messages over memory connections. */
async function memoryTransportTasks(): Promise<{ tasks: BatchTask[]; close: () => Promise<void> }> {
  const batch = (name: string, from: Connection, to: Connection): BatchTask => {
    const arrivals = messageCounter(to);
    return {
      name,
      batchSize: THROUGHPUT_BATCH,
      async: true,
      fn: async () => {
        const all = arrivals.expect(THROUGHPUT_BATCH);
        for (let i = 0; i < THROUGHPUT_BATCH; i++) from.send(payload, 'reliable');
        await all;
      },
    };
  };
  const [a, b] = createMemoryConnectionPair();

  const network = createMemoryNetwork();
  const server = createMemoryServer({ network, name: 'bench' });
  const address = await server.listen();
  const accepted = new Promise<Connection>((resolve) => {
    server.once('connection', resolve);
  });
  const client = await createMemoryClient({ network }).connect(address.url);
  const serverSide = await accepted;
  // The client end starts delivering a macrotask after connect resolves.
  await new Promise((resolve) => setTimeout(resolve, 10));

  return {
    tasks: [
      batch('memory-transport/pair', a, b),
      batch('memory-transport/client-to-server', client, serverSide),
      batch('memory-transport/server-to-client', serverSide, client),
    ],
    close: async () => {
      a.close();
      await server.close();
    },
  };
}

async function run(options: SuiteOptions): Promise<Row[]> {
  const rows: Row[] = [];

  const linkTasks = linkConditionerTasks();
  const linkResults = await runBatches(createBench('link-conditioner', options), linkTasks);
  for (const { name } of linkTasks) {
    const result = resultOf(linkResults, name);
    rows.push(
      row({
        case: name,
        metric: 'ns_per_message',
        unit: 'ns',
        better: 'lower',
        tickwire: result.nsPerOperation,
      }),
      row({
        case: name,
        metric: 'messages_per_s',
        unit: 'msg/s',
        better: 'higher',
        tickwire: result.operationsPerSecond,
      }),
    );
  }

  const conditionedTasks = conditionedConnectionTasks();
  const conditioned = await runBatches(
    createBench('conditioned-connection', options),
    conditionedTasks,
  );
  const bareNs = resultOf(conditioned, 'conditioned-connection/bare-pair').nsPerOperation;
  for (const { name } of conditionedTasks) {
    const result = resultOf(conditioned, name);
    rows.push(
      row({
        case: name,
        metric: 'ns_per_message',
        unit: 'ns',
        better: 'lower',
        tickwire: result.nsPerOperation,
      }),
    );
    if (name === 'conditioned-connection/bare-pair') continue;
    // Overhead of the wrapper over the bare pair: a Tickwire-to-Tickwire figure, not a peer ratio.
    rows.push(
      row({
        case: name,
        metric: 'time_vs_bare_pair',
        unit: '×',
        better: 'lower',
        tickwire: result.nsPerOperation / bareNs,
      }),
    );
  }

  const memory = await memoryTransportTasks();
  try {
    const throughput = await runBatches(createBench('memory-transport', options), memory.tasks);
    for (const { name } of memory.tasks) {
      const result = resultOf(throughput, name);
      rows.push(
        row({
          case: `${name}/64B-reliable`,
          metric: 'messages_per_s',
          unit: 'msg/s',
          better: 'higher',
          tickwire: result.operationsPerSecond,
        }),
        row({
          case: `${name}/64B-reliable`,
          metric: 'payload_throughput',
          unit: 'MB/s',
          better: 'higher',
          tickwire: (result.operationsPerSecond * MESSAGE_BYTES) / 1e6,
        }),
      );
    }
  } finally {
    await memory.close();
  }
  return rows;
}

/** Overheads of core's simulation tools and in-memory transport; no peer library. */
export const suite: Suite = {
  name: 'core',
  run,
};
