// Adapters of core's Metrics and Logger to prom-client and pino, and the engine's metric names.
import {
  type Counter,
  ErrorCode,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type Labels,
  type Logger,
  type MetricOptions,
  type Metrics,
  TickwireError,
} from '@tickwire/core';
import {
  type DestinationStream,
  type LoggerOptions,
  type Logger as PinoInstance,
  pino,
} from 'pino';
import {
  collectDefaultMetrics,
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry,
} from 'prom-client';

/** Options of one metric of {@link createPromMetrics}: core's options plus label names. */
export interface PromMetricOptions extends MetricOptions {
  /**
   * Names of the labels its series carry. Prometheus fixes them when the metric is created:
   * when absent, the label names of the first `inc`/`set`/`observe` fix them.
   * @default the label names of the first observation
   */
  labelNames?: readonly string[];
}

/** Options of a histogram of {@link createPromMetrics}. */
export interface PromHistogramOptions extends HistogramOptions, PromMetricOptions {}

/** A {@link Metrics} sink backed by a prom-client registry. */
export interface PromMetrics extends Metrics {
  counter(name: string, options?: PromMetricOptions): Counter;
  gauge(name: string, options?: PromMetricOptions): Gauge;
  histogram(name: string, options?: PromHistogramOptions): Histogram;
  /** The registry every metric is registered in. */
  readonly registry: Registry;
  /** The Content-Type of {@link text}'s output, e.g. `text/plain; version=0.0.4; charset=utf-8`. */
  readonly contentType: string;
  /** Every metric of the registry in the Prometheus text exposition format. */
  text(): Promise<string>;
}

/** Options of {@link createPromMetrics}. */
export interface PromMetricsOptions {
  /**
   * Registry to register in (share one to expose other metrics on the same endpoint).
   * @default a new Registry (not prom-client's global one)
   */
  registry?: Registry;
  /**
   * Prepended to every metric name that does not already start with it.
   * @default 'tickwire_'
   */
  prefix?: string;
  /**
   * Also export prom-client's process metrics (CPU, memory, event loop lag, GC), unprefixed.
   * @default false
   */
  processMetrics?: boolean;
}

type MetricType = 'counter' | 'gauge' | 'histogram';
type PromMetric = PromCounter | PromGauge | PromHistogram;
type PromLabels = Partial<Record<string, string | number>>;

interface Entry {
  name: string;
  type: MetricType;
  help: string;
  buckets: readonly number[];
  /** Sorted label names, or undefined until the first observation fixes them. */
  labelNames: readonly string[] | undefined;
  metric: PromMetric;
  api: Counter | Gauge | Histogram;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const DEFAULT_BUCKETS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000];

function invalid(message: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message);
}

const list = (names: readonly string[]) => `[${names.join(', ')}]`;

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function checkLabelNames(name: string, type: MetricType, labelNames: readonly string[]): void {
  for (const label of labelNames) {
    if (
      !LABEL_NAME.test(label) ||
      label.startsWith('__') ||
      (type === 'histogram' && label === 'le')
    ) {
      throw invalid(
        `metric '${name}': label name '${label}' must match ${LABEL_NAME.source}, not start with '__'` +
          `${type === 'histogram' ? " and not be 'le'" : ''}`,
      );
    }
  }
  if (new Set(labelNames).size !== labelNames.length) {
    throw invalid(`metric '${name}': label names ${list(labelNames)} repeat a name`);
  }
}

function checkBuckets(name: string, buckets: readonly number[]): void {
  const ascending = buckets.every(
    (bound, i) => Number.isFinite(bound) && (i === 0 || bound > buckets[i - 1]!),
  );
  if (buckets.length === 0 || !ascending) {
    throw invalid(
      `histogram '${name}': buckets must be finite numbers in strictly ascending order, got ${list(buckets.map(String))}`,
    );
  }
}

/**
 * Creates a {@link Metrics} sink on prom-client. Registering a name again returns the same
 * metric; doing so with another type, other label names or other buckets throws
 * INVALID_ARGUMENT, as do a bad name and a label name the metric was not created with.
 */
export function createPromMetrics(options: PromMetricsOptions = {}): PromMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'tickwire_';
  if (prefix !== '' && !METRIC_NAME.test(prefix)) {
    throw invalid(`prefix must be '' or match ${METRIC_NAME.source}, got '${prefix}'`);
  }
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry });
  const entries = new Map<string, Entry>();

  const create = (entry: Entry, labelNames: readonly string[]): PromMetric => {
    const config = {
      name: entry.name,
      help: entry.help,
      labelNames: [...labelNames],
      registers: [registry],
    };
    try {
      if (entry.type === 'counter') return new PromCounter(config);
      if (entry.type === 'gauge') return new PromGauge(config);
      return new PromHistogram({ ...config, buckets: [...entry.buckets] });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `metric '${entry.name}' could not be registered: ${reason}`,
        { cause: error },
      );
    }
  };

  /** Fixes the label names of a metric registered without them. */
  const settle = (entry: Entry, labelNames: readonly string[]): void => {
    checkLabelNames(entry.name, entry.type, labelNames);
    if (labelNames.length > 0) {
      registry.removeSingleMetric(entry.name);
      entry.metric = create(entry, labelNames);
    }
    entry.labelNames = labelNames;
  };

  const metricFor = (entry: Entry, labels: Labels | undefined): PromMetric => {
    if (entry.labelNames === undefined) settle(entry, labels ? Object.keys(labels).sort() : []);
    return entry.metric;
  };

  const checkValue = (entry: Entry, value: number): void => {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw invalid(`metric '${entry.name}': value must be a finite number, got ${String(value)}`);
    }
  };

  // prom-client throws a plain Error for a label it was not created with.
  const labelError = (entry: Entry, labels: Labels | undefined, error: unknown): TickwireError =>
    new TickwireError(
      ErrorCode.INVALID_ARGUMENT,
      `metric '${entry.name}' has labels ${list(entry.labelNames ?? [])}, got ${list(Object.keys(labels ?? {}))}` +
        ' (declare labelNames when registering, or use the same labels on every call)',
      { cause: error },
    );

  const record = (
    entry: Entry,
    labels: Labels | undefined,
    apply: (metric: PromMetric, labels: PromLabels | undefined) => void,
  ): void => {
    const metric = metricFor(entry, labels);
    try {
      // A copy: prom-client keeps the labels object of a new series, and the caller may reuse
      // and change its object afterwards.
      apply(metric, labels === undefined ? undefined : { ...labels });
    } catch (error) {
      throw labelError(entry, labels, error);
    }
  };

  const makeApi = (entry: Entry): Counter | Gauge | Histogram => {
    if (entry.type === 'counter') {
      return {
        inc(value = 1, labels) {
          checkValue(entry, value);
          if (value < 0) {
            throw invalid(`counter '${entry.name}' can only increase, got ${value}`);
          }
          record(entry, labels, (m, l) =>
            l ? (m as PromCounter).inc(l, value) : (m as PromCounter).inc(value),
          );
        },
      } satisfies Counter;
    }
    if (entry.type === 'gauge') {
      return {
        set(value, labels) {
          checkValue(entry, value);
          record(entry, labels, (m, l) =>
            l ? (m as PromGauge).set(l, value) : (m as PromGauge).set(value),
          );
        },
        inc(value = 1, labels) {
          checkValue(entry, value);
          record(entry, labels, (m, l) =>
            l ? (m as PromGauge).inc(l, value) : (m as PromGauge).inc(value),
          );
        },
        dec(value = 1, labels) {
          checkValue(entry, value);
          record(entry, labels, (m, l) =>
            l ? (m as PromGauge).dec(l, value) : (m as PromGauge).dec(value),
          );
        },
      } satisfies Gauge;
    }
    return {
      observe(value, labels) {
        checkValue(entry, value);
        record(entry, labels, (m, l) =>
          l ? (m as PromHistogram).observe(l, value) : (m as PromHistogram).observe(value),
        );
      },
    } satisfies Histogram;
  };

  function register(
    rawName: string,
    type: MetricType,
    metricOptions: PromHistogramOptions = {},
  ): Counter | Gauge | Histogram {
    const name = rawName.startsWith(prefix) ? rawName : prefix + rawName;
    const declared =
      metricOptions.labelNames === undefined ? undefined : [...metricOptions.labelNames].sort();
    const existing = entries.get(name);
    if (existing) {
      if (existing.type !== type) {
        throw invalid(
          `metric '${name}' is already registered as a ${existing.type}, not a ${type}`,
        );
      }
      if (declared) {
        if (existing.labelNames === undefined) settle(existing, declared);
        else if (!sameList(existing.labelNames, declared)) {
          throw invalid(
            `metric '${name}' is already registered with labels ${list(existing.labelNames)}, not ${list(declared)}`,
          );
        }
      }
      if (
        type === 'histogram' &&
        metricOptions.buckets &&
        !sameList(existing.buckets, metricOptions.buckets)
      ) {
        throw invalid(
          `histogram '${name}' is already registered with buckets ${list(existing.buckets.map(String))}`,
        );
      }
      return existing.api;
    }
    if (!METRIC_NAME.test(name)) {
      throw invalid(`metric name '${name}' must match ${METRIC_NAME.source}`);
    }
    const buckets = type === 'histogram' ? (metricOptions.buckets ?? DEFAULT_BUCKETS) : [];
    if (type === 'histogram') checkBuckets(name, buckets);
    if (declared) checkLabelNames(name, type, declared);
    const entry: Entry = {
      name,
      type,
      // prom-client refuses an empty help text.
      help: metricOptions.help || name,
      buckets: [...buckets],
      labelNames: declared,
      metric: undefined as unknown as PromMetric,
      api: undefined as unknown as Counter,
    };
    entry.metric = create(entry, declared ?? []);
    entry.api = makeApi(entry);
    entries.set(name, entry);
    return entry.api;
  }

  return {
    counter: (name, metricOptions) => register(name, 'counter', metricOptions) as Counter,
    gauge: (name, metricOptions) => register(name, 'gauge', metricOptions) as Gauge,
    histogram: (name, metricOptions) => register(name, 'histogram', metricOptions) as Histogram,
    registry,
    get contentType() {
      return registry.contentType;
    },
    text: () => registry.metrics(),
  };
}

/** Names of the metrics the Tickwire server exports (label names in each comment). */
export const ServerMetric = {
  /** Gauge: open connections, by `transport`. */
  connections: 'tickwire_connections',
  /** Counter: connections accepted since start, by `transport`. */
  connectionsTotal: 'tickwire_connections_accepted_total',
  /** Gauge: live rooms. */
  rooms: 'tickwire_rooms',
  /** Gauge: sessions, connected or within their reconnection grace. */
  sessions: 'tickwire_sessions',
  /** Counter: frames received, by `type` (opcode name). */
  messagesIn: 'tickwire_messages_received_total',
  /** Counter: frames sent, by `type` (opcode name). */
  messagesOut: 'tickwire_messages_sent_total',
  /** Counter: bytes received, by `type` (opcode name). */
  bytesIn: 'tickwire_received_bytes_total',
  /** Counter: bytes sent, by `type` (opcode name). */
  bytesOut: 'tickwire_sent_bytes_total',
  /** Counter: refused connections and messages, by `reason`. */
  rejections: 'tickwire_rejections_total',
  /** Histogram: time spent in one server tick in ms, by `phase`. */
  tickDuration: 'tickwire_tick_duration_milliseconds',
  /** Histogram: connection round-trip times in ms, by `transport`. */
  rtt: 'tickwire_rtt_milliseconds',
  /** Gauge: recent packet loss ratio in [0, 1], by `transport`. */
  loss: 'tickwire_packet_loss_ratio',
} as const;

/** One of the {@link ServerMetric} names. */
export type ServerMetric = (typeof ServerMetric)[keyof typeof ServerMetric];

/** Buckets of {@link ServerMetric.tickDuration}, in ms (a 20–60 Hz tick lasts 16–50 ms). */
export const TICK_DURATION_BUCKETS_MS: readonly number[] = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 16, 25, 50,
];

/** Buckets of {@link ServerMetric.rtt}, in ms. */
export const RTT_BUCKETS_MS: readonly number[] = [
  5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000,
];

/** The server's metrics, registered with their help texts, label names and buckets. */
export interface ServerMetrics {
  connections: Gauge;
  connectionsTotal: Counter;
  rooms: Gauge;
  sessions: Gauge;
  messagesIn: Counter;
  messagesOut: Counter;
  bytesIn: Counter;
  bytesOut: Counter;
  rejections: Counter;
  tickDuration: Histogram;
  rtt: Histogram;
  loss: Gauge;
}

/** Registers every {@link ServerMetric} in `metrics` (any core Metrics sink). */
export function createServerMetrics(metrics: Metrics): ServerMetrics {
  // Label names are an extension prom metrics read; other sinks ignore them.
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    metrics.counter(name, { help, labelNames } as PromMetricOptions);
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    metrics.gauge(name, { help, labelNames } as PromMetricOptions);
  const histogram = (
    name: string,
    help: string,
    labelNames: string[],
    buckets: readonly number[],
  ) => metrics.histogram(name, { help, labelNames, buckets } as PromHistogramOptions);
  return {
    connections: gauge(ServerMetric.connections, 'Open connections', ['transport']),
    connectionsTotal: counter(ServerMetric.connectionsTotal, 'Connections accepted', ['transport']),
    rooms: gauge(ServerMetric.rooms, 'Live rooms'),
    sessions: gauge(ServerMetric.sessions, 'Sessions, connected or within their grace period'),
    messagesIn: counter(ServerMetric.messagesIn, 'Frames received, by opcode', ['type']),
    messagesOut: counter(ServerMetric.messagesOut, 'Frames sent, by opcode', ['type']),
    bytesIn: counter(ServerMetric.bytesIn, 'Bytes received, by opcode', ['type']),
    bytesOut: counter(ServerMetric.bytesOut, 'Bytes sent, by opcode', ['type']),
    rejections: counter(ServerMetric.rejections, 'Refused connections and messages, by reason', [
      'reason',
    ]),
    tickDuration: histogram(
      ServerMetric.tickDuration,
      'Time spent in one server tick in ms, by phase',
      ['phase'],
      TICK_DURATION_BUCKETS_MS,
    ),
    rtt: histogram(
      ServerMetric.rtt,
      'Connection round-trip time in ms',
      ['transport'],
      RTT_BUCKETS_MS,
    ),
    loss: gauge(ServerMetric.loss, 'Recent packet loss ratio in [0, 1]', ['transport']),
  };
}

/** A core {@link Logger} writing through pino. */
export interface PinoLogger extends Logger {
  /** The pino instance behind it (its level can be changed at run time). */
  readonly pino: PinoInstance;
  child(bindings: Record<string, unknown>): PinoLogger;
}

type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
type AnyLogFn = (...args: unknown[]) => void;

function isPinoInstance(value: unknown): value is PinoInstance {
  const candidate = value as Partial<PinoInstance> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.child === 'function' &&
    typeof candidate.info === 'function'
  );
}

function wrap(instance: PinoInstance): PinoLogger {
  // Looked up at each call, so a level changed later on the instance takes effect.
  const level =
    (name: LevelName): AnyLogFn =>
    (...args) =>
      (instance[name] as AnyLogFn).apply(instance, args);
  return {
    pino: instance,
    trace: level('trace'),
    debug: level('debug'),
    info: level('info'),
    warn: level('warn'),
    error: level('error'),
    fatal: level('fatal'),
    child: (bindings) => wrap(instance.child(bindings)),
  };
}

/**
 * A core {@link Logger} on pino: pass pino options (and optionally a destination stream) to
 * create one, or an existing pino instance to adapt it. Errors logged as `{ err }` keep their
 * `code` and `details`.
 */
export function createPinoLogger(
  options: LoggerOptions | PinoInstance = {},
  destination?: DestinationStream,
): PinoLogger {
  if (isPinoInstance(options)) {
    if (destination !== undefined) {
      throw invalid(
        'createPinoLogger: pass a destination only with options, not with a pino instance',
      );
    }
    return wrap(options);
  }
  if (typeof options !== 'object' || options === null) {
    throw invalid('createPinoLogger: options must be pino options or a pino instance');
  }
  return wrap(destination === undefined ? pino(options) : pino(options, destination));
}
