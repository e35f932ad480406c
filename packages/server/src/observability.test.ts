import { Writable } from 'node:stream';
import { ErrorCode, isTickwireError, TickwireError } from '@tickwire/core';
import { createMemoryMetrics } from '@tickwire/core/memory';
import { pino } from 'pino';
import { Counter as PromCounter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  createPinoLogger,
  createPromMetrics,
  createServerMetrics,
  ServerMetric,
  TICK_DURATION_BUCKETS_MS,
} from './observability.js';

interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  /** Sample value by `name{label="value",…}` with labels sorted by name. */
  samples: Map<string, number>;
}

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Parses the Prometheus text exposition format (0.0.4), enough for these tests. */
function parseExposition(text: string): Exposition {
  const result: Exposition = { types: new Map(), help: new Map(), samples: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (TYPE|HELP) (\S+) (.*)$/.exec(line);
    if (comment) {
      (comment[1] === 'TYPE' ? result.types : result.help).set(comment[2]!, comment[3]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`unparsable exposition line: ${line}`);
    const labels: [string, string][] = [];
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (const match of (sample[2] ?? '').matchAll(labelPattern)) {
      labels.push([match[1]!, unescapeLabel(match[2]!)]);
    }
    labels.sort(([a], [b]) => (a < b ? -1 : 1));
    const key = `${sample[1]}{${labels.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
    const raw = sample[3]!;
    result.samples.set(key, raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw));
  }
  return result;
}

function invalidMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('createPromMetrics', () => {
  it('exports counters, gauges and histograms with labels in the text format', async () => {
    const metrics = createPromMetrics();
    const frames = metrics.counter('frames_total', { help: 'Frames', labelNames: ['type'] });
    frames.inc(1, { type: 'Hello' });
    frames.inc(2, { type: 'Hello' });
    frames.inc(undefined, { type: 'Ping' });
    const open = metrics.gauge('open', { help: 'Open things' });
    open.set(10);
    open.inc();
    open.dec(3);
    const latency = metrics.histogram('latency_ms', { buckets: [1, 5, 10] });
    for (const value of [0.5, 1, 4, 7, 50]) latency.observe(value, { phase: 'send' });

    const parsed = parseExposition(await metrics.text());
    expect(parsed.types.get('tickwire_frames_total')).toBe('counter');
    expect(parsed.help.get('tickwire_frames_total')).toBe('Frames');
    expect(parsed.samples.get('tickwire_frames_total{type="Hello"}')).toBe(3);
    expect(parsed.samples.get('tickwire_frames_total{type="Ping"}')).toBe(1);
    expect(parsed.types.get('tickwire_open')).toBe('gauge');
    expect(parsed.samples.get('tickwire_open{}')).toBe(8);
    expect(parsed.types.get('tickwire_latency_ms')).toBe('histogram');
    // A metric registered without help gets its name as help (prom-client requires one).
    expect(parsed.help.get('tickwire_latency_ms')).toBe('tickwire_latency_ms');
    expect(parsed.samples.get('tickwire_latency_ms_bucket{le="1",phase="send"}')).toBe(2);
    expect(parsed.samples.get('tickwire_latency_ms_bucket{le="5",phase="send"}')).toBe(3);
    expect(parsed.samples.get('tickwire_latency_ms_bucket{le="10",phase="send"}')).toBe(4);
    expect(parsed.samples.get('tickwire_latency_ms_bucket{le="+Inf",phase="send"}')).toBe(5);
    expect(parsed.samples.get('tickwire_latency_ms_sum{phase="send"}')).toBe(62.5);
    expect(parsed.samples.get('tickwire_latency_ms_count{phase="send"}')).toBe(5);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('returns the same metric for a name registered again, with or without the prefix', async () => {
    const metrics = createPromMetrics();
    const a = metrics.counter('hits_total');
    const b = metrics.counter('tickwire_hits_total');
    expect(b).toBe(a);
    a.inc();
    b.inc();
    expect(parseExposition(await metrics.text()).samples.get('tickwire_hits_total{}')).toBe(2);
  });

  it('exports an unlabelled counter at 0 before its first increment', async () => {
    const metrics = createPromMetrics();
    metrics.counter('idle_total');
    expect(parseExposition(await metrics.text()).samples.get('tickwire_idle_total{}')).toBe(0);
  });

  it('fixes label names at the first observation when none were declared', async () => {
    const metrics = createPromMetrics();
    const bytes = metrics.counter('bytes_total');
    bytes.inc(10, { type: 'Snapshot', dir: 'out' });
    bytes.inc(5, { type: 'Snapshot', dir: 'out' });
    expect(
      parseExposition(await metrics.text()).samples.get(
        'tickwire_bytes_total{dir="out",type="Snapshot"}',
      ),
    ).toBe(15);
    expect(invalidMessage(() => bytes.inc(1, { peer: 'x' }))).toBe(
      "metric 'tickwire_bytes_total' has labels [dir, type], got [peer] (declare labelNames when registering, or use the same labels on every call)",
    );
    // Declaring the same names later is fine; others are not.
    expect(metrics.counter('bytes_total', { labelNames: ['type', 'dir'] })).toBe(bytes);
    expect(invalidMessage(() => metrics.counter('bytes_total', { labelNames: ['type'] }))).toBe(
      "metric 'tickwire_bytes_total' is already registered with labels [dir, type], not [type]",
    );
  });

  it('counts increments through a reused labels object exactly, even after it changes', async () => {
    const metrics = createPromMetrics({ registry: new Registry() });
    const counter = metrics.counter('frames_total', { labelNames: ['room', 'type'] });
    const labels: Record<string, string> = { room: 'arena', type: 'input' };
    for (let i = 0; i < 5; i++) counter.inc(1, labels);
    const read = async () => parseExposition(await metrics.text()).samples;
    expect((await read()).get('tickwire_frames_total{room="arena",type="input"}')).toBe(5);
    counter.inc(2, labels);
    // The same object with another value is another series.
    labels.type = 'chat';
    counter.inc(1, labels);
    counter.inc(1, labels);
    let samples = await read();
    expect(samples.get('tickwire_frames_total{room="arena",type="input"}')).toBe(7);
    expect(samples.get('tickwire_frames_total{room="arena",type="chat"}')).toBe(2);
    // Read straight from the registry too.
    const direct = await metrics.registry.getSingleMetric('tickwire_frames_total')!.get();
    expect(direct.values.map((v) => v.value).sort()).toEqual([2, 7]);
    // A key added to it is refused as before, and counts nothing.
    labels.extra = 'x';
    expect(invalidMessage(() => counter.inc(1, labels))).toContain('got [room, type, extra]');
    delete labels.extra;
    expect(invalidMessage(() => counter.inc(Number.NaN, labels))).toContain('finite number');
    expect(invalidMessage(() => counter.inc(-1, labels))).toContain('can only increase');
    samples = await read();
    expect(samples.get('tickwire_frames_total{room="arena",type="chat"}')).toBe(2);
    // After a reset of the registry the same object counts again from zero.
    metrics.registry.resetMetrics();
    counter.inc(3, labels);
    expect((await read()).get('tickwire_frames_total{room="arena",type="chat"}')).toBe(3);
  });

  it('records gauges and histograms through a reused labels object, following its changes', async () => {
    const metrics = createPromMetrics();
    const gauge = metrics.gauge('members', { labelNames: ['room'] });
    const histogram = metrics.histogram('step_ms', { labelNames: ['room'], buckets: [1, 10] });
    const labels: Record<string, string> = { room: 'a' };
    gauge.set(5, labels);
    gauge.inc(2, labels);
    gauge.dec(1, labels);
    histogram.observe(0.5, labels);
    histogram.observe(5, labels);
    labels.room = 'b';
    gauge.set(9, labels);
    histogram.observe(20, labels);
    const samples = parseExposition(await metrics.text()).samples;
    expect(samples.get('tickwire_members{room="a"}')).toBe(6);
    expect(samples.get('tickwire_members{room="b"}')).toBe(9);
    expect(samples.get('tickwire_step_ms_bucket{le="1",room="a"}')).toBe(1);
    expect(samples.get('tickwire_step_ms_count{room="a"}')).toBe(2);
    expect(samples.get('tickwire_step_ms_bucket{le="10",room="b"}')).toBe(0);
    expect(samples.get('tickwire_step_ms_count{room="b"}')).toBe(1);
  });

  it('fixes no labels when the first observation has none', () => {
    const metrics = createPromMetrics();
    const plain = metrics.gauge('plain');
    plain.set(1);
    expect(invalidMessage(() => plain.set(2, { room: 'a' }))).toMatch(
      /^metric 'tickwire_plain' has labels \[\], got \[room\]/,
    );
  });

  it('adopts label names declared after registration but before any observation', async () => {
    const metrics = createPromMetrics();
    const rooms = metrics.gauge('rooms');
    metrics.gauge('rooms', { labelNames: ['name'] });
    rooms.set(3, { name: 'lobby' });
    expect(parseExposition(await metrics.text()).samples.get('tickwire_rooms{name="lobby"}')).toBe(
      3,
    );
  });

  it('throws INVALID_ARGUMENT on a name reused with another type, labels or buckets', () => {
    const metrics = createPromMetrics();
    metrics.counter('x_total', { labelNames: ['a'] });
    metrics.histogram('h', { buckets: [1, 2] });
    expect(invalidMessage(() => metrics.gauge('x_total'))).toBe(
      "metric 'tickwire_x_total' is already registered as a counter, not a gauge",
    );
    expect(invalidMessage(() => metrics.counter('x_total', { labelNames: ['b'] }))).toBe(
      "metric 'tickwire_x_total' is already registered with labels [a], not [b]",
    );
    expect(invalidMessage(() => metrics.histogram('h', { buckets: [1, 3] }))).toBe(
      "histogram 'tickwire_h' is already registered with buckets [1, 2]",
    );
    expect(metrics.histogram('h', { buckets: [1, 2] })).toBe(metrics.histogram('h'));
  });

  it('rejects bad names, label names, buckets and values', () => {
    const metrics = createPromMetrics();
    expect(invalidMessage(() => metrics.counter('bad-name'))).toBe(
      "metric name 'tickwire_bad-name' must match ^[a-zA-Z_:][a-zA-Z0-9_:]*$",
    );
    expect(invalidMessage(() => metrics.counter('c', { labelNames: ['__x'] }))).toMatch(
      /^metric 'tickwire_c': label name '__x' must match/,
    );
    expect(invalidMessage(() => metrics.histogram('h', { labelNames: ['le'] }))).toMatch(
      /and not be 'le'$/,
    );
    expect(invalidMessage(() => metrics.gauge('g', { labelNames: ['a', 'a'] }))).toBe(
      "metric 'tickwire_g': label names [a, a] repeat a name",
    );
    expect(invalidMessage(() => metrics.histogram('h2', { buckets: [2, 1] }))).toBe(
      "histogram 'tickwire_h2': buckets must be finite numbers in strictly ascending order, got [2, 1]",
    );
    const counter = metrics.counter('ok_total');
    expect(invalidMessage(() => counter.inc(-1))).toBe(
      "counter 'tickwire_ok_total' can only increase, got -1",
    );
    expect(invalidMessage(() => metrics.gauge('g2').set(Number.NaN))).toBe(
      "metric 'tickwire_g2': value must be a finite number, got NaN",
    );
    expect(invalidMessage(() => metrics.histogram('h3').observe(Number.POSITIVE_INFINITY))).toBe(
      "metric 'tickwire_h3': value must be a finite number, got Infinity",
    );
    expect(invalidMessage(() => metrics.counter('first_total').inc(1, { 'bad-label': 1 }))).toMatch(
      /label name 'bad-label' must match/,
    );
    expect(invalidMessage(() => createPromMetrics({ prefix: '1x' }))).toBe(
      "prefix must be '' or match ^[a-zA-Z_:][a-zA-Z0-9_:]*$, got '1x'",
    );
  });

  it('shares a given registry and reports a name taken by other code', async () => {
    const registry = new Registry();
    new PromCounter({ name: 'app_logins_total', help: 'Logins', registers: [registry] }).inc(4);
    const metrics = createPromMetrics({ registry, prefix: '' });
    expect(metrics.registry).toBe(registry);
    metrics.gauge('players').set(2);
    const parsed = parseExposition(await metrics.text());
    expect(parsed.samples.get('app_logins_total{}')).toBe(4);
    expect(parsed.samples.get('players{}')).toBe(2);
    expect(invalidMessage(() => metrics.counter('app_logins_total'))).toMatch(
      /^metric 'app_logins_total' could not be registered: /,
    );
  });

  it('exports process metrics on request', async () => {
    const metrics = createPromMetrics({ processMetrics: true });
    const parsed = parseExposition(await metrics.text());
    expect(parsed.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(parsed.types.get('nodejs_heap_size_used_bytes')).toBe('gauge');
  });
});

describe('createServerMetrics', () => {
  it('registers the standard metrics with their labels and tick buckets', async () => {
    const metrics = createPromMetrics();
    const server = createServerMetrics(metrics);
    server.connections.inc(1, { transport: 'ws' });
    server.connectionsTotal.inc(1, { transport: 'ws' });
    server.messagesIn.inc(1, { type: 'Hello' });
    server.bytesIn.inc(12, { type: 'Hello' });
    server.rejections.inc(1, { reason: 'rate_limited' });
    server.tickDuration.observe(0.3, { phase: 'simulate' });
    server.rtt.observe(42, { transport: 'ws' });
    server.loss.set(0.02, { transport: 'udp' });
    server.rooms.set(3);
    server.sessions.set(4);
    const parsed = parseExposition(await metrics.text());
    expect(parsed.samples.get(`${ServerMetric.connections}{transport="ws"}`)).toBe(1);
    expect(parsed.samples.get(`${ServerMetric.connectionsTotal}{transport="ws"}`)).toBe(1);
    expect(parsed.samples.get(`${ServerMetric.messagesIn}{type="Hello"}`)).toBe(1);
    expect(parsed.samples.get(`${ServerMetric.bytesIn}{type="Hello"}`)).toBe(12);
    expect(parsed.samples.get(`${ServerMetric.rejections}{reason="rate_limited"}`)).toBe(1);
    expect(parsed.samples.get(`${ServerMetric.loss}{transport="udp"}`)).toBe(0.02);
    expect(parsed.samples.get(`${ServerMetric.rooms}{}`)).toBe(3);
    expect(parsed.samples.get(`${ServerMetric.sessions}{}`)).toBe(4);
    expect(parsed.samples.get(`${ServerMetric.rtt}_count{transport="ws"}`)).toBe(1);
    const tickBuckets = [...parsed.samples.keys()]
      .filter((key) => key.startsWith(`${ServerMetric.tickDuration}_bucket{`))
      .map((key) => /le="([^"]+)"/.exec(key)![1]);
    expect(tickBuckets).toEqual([...TICK_DURATION_BUCKETS_MS.map(String), '+Inf']);
    expect(
      parsed.samples.get(`${ServerMetric.tickDuration}_bucket{le="0.25",phase="simulate"}`),
    ).toBe(0);
    expect(
      parsed.samples.get(`${ServerMetric.tickDuration}_bucket{le="0.5",phase="simulate"}`),
    ).toBe(1);
    // Label names are fixed: a typo in the engine fails loudly.
    expect(() => server.messagesOut.inc(1, { opcode: 'Hello' })).toThrow(TickwireError);
  });

  it('works on any core Metrics sink', () => {
    const memory = createMemoryMetrics();
    const server = createServerMetrics(memory);
    server.messagesOut.inc(2, { type: 'Snapshot' });
    expect(memory.value(ServerMetric.messagesOut, { type: 'Snapshot' })).toBe(2);
    expect(memory.snapshot().map((m) => m.name)).toEqual(Object.values(ServerMetric));
  });
});

/** A pino destination collecting parsed JSON lines. */
function collect(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe('createPinoLogger', () => {
  it('logs through pino with both call shapes and child bindings', () => {
    const { lines, stream } = collect();
    const logger = createPinoLogger({ level: 'debug', base: null, timestamp: false }, stream);
    logger.info('started');
    logger.debug({ port: 4000 }, 'listening on %d', 4000);
    logger.trace('hidden');
    logger.child({ room: 'r1' }).warn({ client: 'c1' }, 'kicked');
    expect(lines).toEqual([
      { level: 30, msg: 'started' },
      { level: 20, port: 4000, msg: 'listening on 4000' },
      { level: 40, room: 'r1', client: 'c1', msg: 'kicked' },
    ]);
  });

  it('serialises a TickwireError with its code and details', () => {
    const { lines, stream } = collect();
    const logger = createPinoLogger({ base: null, timestamp: false }, stream);
    logger.error(
      { err: new TickwireError(ErrorCode.RATE_LIMITED, 'too fast', { details: { limit: 60 } }) },
      'closed',
    );
    const err = lines[0]!.err as Record<string, unknown>;
    expect(err.type).toBe('TickwireError');
    expect(err.message).toBe('too fast');
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.details).toEqual({ limit: 60 });
    expect(typeof err.stack).toBe('string');
  });

  it('adapts an existing pino instance and follows its level changes', () => {
    const { lines, stream } = collect();
    const instance = pino({ base: null, timestamp: false, level: 'info' }, stream);
    const logger = createPinoLogger(instance);
    expect(logger.pino).toBe(instance);
    logger.debug('dropped');
    instance.level = 'debug';
    logger.debug('kept');
    logger.fatal('fatal');
    logger.error('error');
    expect(lines.map((line) => line.msg)).toEqual(['kept', 'fatal', 'error']);
    expect(logger.child({ a: 1 }).pino.bindings()).toEqual({ a: 1 });
  });

  it('refuses a destination with an instance, and non-object options', () => {
    const { stream } = collect();
    expect(invalidMessage(() => createPinoLogger(pino(), stream))).toBe(
      'createPinoLogger: pass a destination only with options, not with a pino instance',
    );
    expect(invalidMessage(() => createPinoLogger(null as never))).toBe(
      'createPinoLogger: options must be pino options or a pino instance',
    );
  });
});
