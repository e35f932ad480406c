import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { type Row, rowFactory, type Suite, type SuiteOptions } from '../report.js';
import { createDriver, type DriverName, type Link } from '../transport/drivers.js';
import type { PeerCommand, PeerReply } from '../transport/peer.js';
import { END_MARKER_BYTES } from '../transport/peer.js';
import {
  type CountingProxy,
  createTcpCountingProxy,
  createUdpCountingProxy,
} from '../transport/proxy.js';

const row = rowFactory('transport');

/** A Tickwire transport and the raw library it is measured against. */
interface Pairing {
  /** Case prefix, e.g. `ws`. */
  label: string;
  tickwire: DriverName;
  peer: DriverName;
  /** Peer library name in the rows. */
  peerName: string;
  /** May the channel lose messages (then a marker ends a burst)? */
  lossy: boolean;
  proxy: 'tcp' | 'udp';
}

const pairings: Pairing[] = [
  { label: 'ws', tickwire: 'tickwire-ws', peer: 'ws', peerName: 'ws', lossy: false, proxy: 'tcp' },
  {
    label: 'tcp',
    tickwire: 'tickwire-tcp',
    peer: 'net',
    peerName: 'node:net',
    lossy: false,
    proxy: 'tcp',
  },
  {
    label: 'tcp-vs-corked',
    tickwire: 'tickwire-tcp',
    peer: 'net-corked',
    peerName: 'node:net (corked per turn)',
    lossy: false,
    proxy: 'tcp',
  },
  {
    label: 'udp-reliable',
    tickwire: 'tickwire-udp-reliable',
    peer: 'dgram',
    peerName: 'node:dgram',
    lossy: true,
    proxy: 'udp',
  },
  {
    label: 'udp-unreliable',
    tickwire: 'tickwire-udp-unreliable',
    peer: 'dgram',
    peerName: 'node:dgram',
    lossy: true,
    proxy: 'udp',
  },
];

const SIZES = [32, 1024] as const;
const peerScript = fileURLToPath(new URL('../transport/peer.ts', import.meta.url));
const REPORT_TIMEOUT_MS = 2_000;

/** The receiving process of one driver. */
class PeerProcess {
  readonly port: number;
  readonly #child: ChildProcess;
  #waiting: ((reply: PeerReply) => void)[] = [];

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.port = port;
    child.on('message', (reply: PeerReply) => this.#waiting.shift()?.(reply));
  }

  static async start(driver: DriverName): Promise<PeerProcess> {
    // Same loader flags as this process: tsx and the @tickwire/source condition.
    const child = fork(peerScript, [], { execArgv: process.execArgv, stdio: 'inherit' });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('message', (reply: PeerReply) => {
        if (reply.type === 'listening') resolve(reply.port);
        else reject(new Error(`peer answered ${reply.type} to listen`));
      });
      child.send({ type: 'listen', driver } satisfies PeerCommand);
    });
    return new PeerProcess(child, port);
  }

  /** Sends a command; resolves with the next reply. */
  request(command: PeerCommand): Promise<PeerReply> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#child.send(command);
    });
  }

  /** The next reply without sending anything (the peer's 'counted'). */
  next(): Promise<PeerReply> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.send({ type: 'close' } satisfies PeerCommand);
    await exited;
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function sendAll(link: Link, count: number, payload: Uint8Array): Promise<void> {
  for (let i = 0; i < count; i++) {
    const wait = link.ready();
    if (wait) await wait;
    link.send(payload);
  }
}

/** Sends `count` messages and resolves with how many the peer counted. */
async function burst(
  peer: PeerProcess,
  link: Link,
  count: number,
  payload: Uint8Array,
  lossy: boolean,
): Promise<number> {
  await peer.request({ type: 'count', expected: count });
  const counted = peer.next();
  await sendAll(link, count, payload);
  if (lossy) {
    // The marker may itself be lost: send it a few times; the peer answers once.
    const marker = new Uint8Array(END_MARKER_BYTES);
    for (let i = 0; i < 3; i++) {
      const wait = link.ready();
      if (wait) await wait;
      link.send(marker);
      await nextTurn();
    }
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), REPORT_TIMEOUT_MS).unref(),
    );
    const first = await Promise.race([counted, timeout]);
    if (first === 'timeout') throw new Error('peer never reported (marker lost three times)');
    if (first.type !== 'counted') throw new Error(`unexpected reply ${first.type}`);
    return first.received;
  }
  const reply = await counted;
  if (reply.type !== 'counted') throw new Error(`unexpected reply ${reply.type}`);
  if (reply.received !== count) throw new Error(`peer counted ${reply.received} of ${count}`);
  return reply.received;
}

interface Throughput {
  messagesPerSecond: number;
  deliveredRatio: number;
}

async function measureThroughput(
  driver: DriverName,
  size: number,
  lossy: boolean,
  options: SuiteOptions,
): Promise<Throughput> {
  const count = options.quick ? 20_000 : 100_000;
  const peer = await PeerProcess.start(driver);
  const link = await (await createDriver(driver)).connect(peer.port);
  const payload = new Uint8Array(size).fill(7);
  let sent = 0;
  let delivered = 0;
  try {
    const bench = new Bench({
      name: `transport/${driver}/${size}B`,
      time: 1,
      iterations: options.quick ? 2 : 5,
      warmupTime: 1,
      warmupIterations: 1,
      timestampProvider: 'hrtimeNow',
      throws: true,
    });
    bench.add(
      driver,
      async () => {
        const received = await burst(peer, link, count, payload, lossy);
        sent += count;
        delivered += received;
      },
      { async: true },
    );
    await bench.run();
    const result = bench.tasks[0]?.result;
    if (result?.state !== 'completed') throw new Error(`${driver} did not complete`);
    const deliveredRatio = delivered / sent;
    const messagesPerSecond = (count * deliveredRatio * 1000) / result.latency.mean;
    process.stderr.write(
      `  ${driver} ${size} B: ${Math.round(messagesPerSecond).toLocaleString('en-US')} msg/s delivered ` +
        `(${(deliveredRatio * 100).toFixed(1)} % of sent) ±${result.latency.rme.toFixed(1)}%\n`,
    );
    return { messagesPerSecond, deliveredRatio };
  } finally {
    await link.close();
    await peer.stop();
  }
}

interface RoundTrips {
  p50: number;
  p99: number;
  lost: number;
}

/** An echo link to a peer process, timing one round trip at a time. */
class EchoProbe {
  readonly samples: number[] = [];
  lost = 0;
  #resolveEcho: (() => void) | null = null;

  private constructor(
    readonly peer: PeerProcess,
    readonly link: Link,
  ) {
    link.onMessage(() => {
      this.#resolveEcho?.();
      this.#resolveEcho = null;
    });
  }

  static async start(driver: DriverName): Promise<EchoProbe> {
    const peer = await PeerProcess.start(driver);
    const link = await (await createDriver(driver)).connect(peer.port);
    await peer.request({ type: 'echo' });
    return new EchoProbe(peer, link);
  }

  async rounds(count: number, payload: Uint8Array, record: boolean): Promise<void> {
    for (let i = 0; i < count; i++) {
      const echoed = new Promise<boolean>((resolve) => {
        this.#resolveEcho = () => resolve(true);
        setTimeout(() => resolve(false), 1_000).unref();
      });
      const started = performance.now();
      this.link.send(payload);
      const ok = await echoed;
      if (!record) continue;
      if (ok) this.samples.push(performance.now() - started);
      else this.lost++;
    }
  }

  result(): RoundTrips {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    return { p50: at(0.5), p99: at(0.99), lost: this.lost };
  }

  async stop(): Promise<void> {
    await this.link.close();
    await this.peer.stop();
  }
}

/** Ping-pong of 32 B messages, Tickwire and peer interleaved in blocks so drift hits both alike. */
async function measureRtt(
  tickwire: DriverName,
  peer: DriverName,
  options: SuiteOptions,
): Promise<{ tickwire: RoundTrips; peer: RoundTrips }> {
  const blocks = options.quick ? 3 : 30;
  const perBlock = 100;
  const payload = new Uint8Array(32).fill(3);
  const ours = await EchoProbe.start(tickwire);
  const theirs = await EchoProbe.start(peer);
  try {
    await ours.rounds(50, payload, false);
    await theirs.rounds(50, payload, false);
    for (let block = 0; block < blocks; block++) {
      await ours.rounds(perBlock, payload, true);
      await theirs.rounds(perBlock, payload, true);
    }
    return { tickwire: ours.result(), peer: theirs.result() };
  } finally {
    await ours.stop();
    await theirs.stop();
  }
}

/** Application-layer bytes on the wire per 32-byte message, both directions, beyond the payload. */
async function measureOverhead(driver: DriverName, pairing: Pairing): Promise<number> {
  const count = 10_000;
  const size = 32;
  const peer = await PeerProcess.start(driver);
  let proxy: CountingProxy | null = null;
  try {
    proxy =
      pairing.proxy === 'tcp'
        ? await createTcpCountingProxy(peer.port)
        : await createUdpCountingProxy(peer.port);
    const link = await (await createDriver(driver)).connect(proxy.port);
    // Let the handshake and its acknowledgements finish before counting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = proxy.bytes();
    const received = await burst(peer, link, count, new Uint8Array(size).fill(1), pairing.lossy);
    // Trailing acknowledgements of the last packets.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const markerBytes = pairing.lossy ? 3 * END_MARKER_BYTES : 0;
    const perMessage = (proxy.bytes() - before - markerBytes) / received;
    await link.close();
    return perMessage - size;
  } finally {
    await proxy?.close();
    await peer.stop();
  }
}

async function run(options: SuiteOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const rawThroughput = new Map<string, Throughput>();
  const raw = async (driver: DriverName, size: number, lossy: boolean) => {
    const key = `${driver}/${size}`;
    let result = rawThroughput.get(key);
    if (!result) {
      result = await measureThroughput(driver, size, lossy, options);
      rawThroughput.set(key, result);
    }
    return result;
  };

  for (const pairing of pairings) {
    for (const size of SIZES) {
      const peerResult = await raw(pairing.peer, size, pairing.lossy);
      const ours = await measureThroughput(pairing.tickwire, size, pairing.lossy, options);
      const name = `${pairing.label}/${size}B`;
      rows.push(
        row({
          case: name,
          metric: 'messages_per_s',
          unit: 'msg/s',
          better: 'higher',
          tickwire: ours.messagesPerSecond,
          peer: pairing.peerName,
          peerValue: peerResult.messagesPerSecond,
        }),
        row({
          case: name,
          metric: 'payload_throughput',
          unit: 'MB/s',
          better: 'higher',
          tickwire: (ours.messagesPerSecond * size) / 1e6,
          peer: pairing.peerName,
          peerValue: (peerResult.messagesPerSecond * size) / 1e6,
        }),
      );
      if (pairing.lossy) {
        rows.push(
          row({
            case: name,
            metric: 'delivered_ratio',
            unit: '',
            better: 'higher',
            tickwire: ours.deliveredRatio,
            peer: pairing.peerName,
            peerValue: peerResult.deliveredRatio,
          }),
        );
      }
    }
  }

  for (const pairing of pairings) {
    const rtt = await measureRtt(pairing.tickwire, pairing.peer, options);
    for (const [metric, ourValue, peerValue] of [
      ['rtt_p50', rtt.tickwire.p50, rtt.peer.p50],
      ['rtt_p99', rtt.tickwire.p99, rtt.peer.p99],
    ] as const) {
      rows.push(
        row({
          case: `${pairing.label}/ping-pong-32B`,
          metric,
          unit: 'ms',
          better: 'lower',
          tickwire: ourValue,
          peer: pairing.peerName,
          peerValue,
        }),
      );
    }
  }

  const rawOverhead = new Map<string, number>();
  for (const pairing of pairings) {
    let peerOverhead = rawOverhead.get(pairing.peer);
    if (peerOverhead === undefined) {
      peerOverhead = await measureOverhead(pairing.peer, pairing);
      rawOverhead.set(pairing.peer, peerOverhead);
    }
    rows.push(
      row({
        case: `${pairing.label}/32B`,
        metric: 'wire_overhead_per_message',
        unit: 'B',
        better: 'lower',
        tickwire: await measureOverhead(pairing.tickwire, pairing),
        peer: pairing.peerName,
        peerValue: peerOverhead,
      }),
    );
  }
  return rows;
}

/** Tickwire's ws, tcp and udp transports against raw ws, net and dgram on loopback. */
export const suite: Suite = { name: 'transport', run };
