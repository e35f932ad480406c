import { ErrorCode, TickwireError } from '../errors.js';
import {
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type Labels,
  type Metrics,
  noopMetrics,
} from '../metrics.js';

/** The kind of a metric. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** The current value of one labelled series. */
export interface SeriesSnapshot {
  labels: Labels;
  /** Counter or gauge value; for a histogram, the sum of observations. */
  value: number;
  /** Histogram only: number of observations. */
  count?: number;
  /** Histogram only: cumulative counts per bucket upper bound (last is +Inf). */
  buckets?: { le: number; count: number }[];
}

/** The current state of one metric. */
export interface MetricSnapshot {
  name: string;
  type: MetricType;
  help: string;
  series: SeriesSnapshot[];
}

/** Metrics kept in memory, readable by tests and by an exporter. */
export interface MemoryMetrics extends Metrics {
  /** Every metric and series, in registration order. */
  snapshot(): MetricSnapshot[];
  /** One series' value (counter/gauge value, histogram sum), or undefined if never touched. */
  value(name: string, labels?: Labels): number | undefined;
}

const DEFAULT_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000] as const;
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

interface Series {
  labels: Labels;
  value: number;
  count: number;
  bucketCounts: number[];
}

interface Entry {
  type: MetricType;
  help: string;
  buckets: readonly number[];
  series: Map<string, Series>;
  api: Counter | Gauge | Histogram;
}

function seriesKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  keys.sort();
  let key = '';
  for (const k of keys) key += `${k}\u0000${labels[k]}\u0001`;
  return key;
}

/** Creates an in-memory {@link Metrics} sink. */
export function createMemoryMetrics(): MemoryMetrics {
  const entries = new Map<string, Entry>();

  const seriesOf = (entry: Entry, labels: Labels | undefined): Series => {
    const key = seriesKey(labels);
    let series = entry.series.get(key);
    if (!series) {
      series = {
        labels: { ...labels },
        value: 0,
        count: 0,
        bucketCounts: new Array<number>(entry.buckets.length + 1).fill(0),
      };
      entry.series.set(key, series);
    }
    return series;
  };

  const checkNumber = (name: string, value: number): void => {
    if (!Number.isFinite(value)) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `metric '${name}': value must be a finite number, got ${value}`,
      );
    }
  };

  function register(name: string, type: MetricType, options: HistogramOptions = {}): Entry {
    const existing = entries.get(name);
    if (existing) {
      if (existing.type !== type) {
        throw new TickwireError(
          ErrorCode.CONFLICT,
          `metric '${name}' is already registered as a ${existing.type}, not a ${type}`,
        );
      }
      return existing;
    }
    if (!NAME.test(name)) {
      throw new TickwireError(
        ErrorCode.INVALID_ARGUMENT,
        `metric name '${name}' must match ${NAME.source}`,
      );
    }
    const buckets = options.buckets ?? DEFAULT_BUCKETS;
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) {
        throw new TickwireError(
          ErrorCode.INVALID_ARGUMENT,
          `histogram '${name}': buckets must be strictly ascending`,
        );
      }
    }
    const entry: Entry = {
      type,
      help: options.help ?? '',
      buckets: type === 'histogram' ? [...buckets] : [],
      series: new Map(),
      api: noopMetrics.counter(name),
    };
    if (type === 'counter') {
      entry.api = {
        inc(value = 1, labels) {
          checkNumber(name, value);
          if (value < 0) {
            throw new TickwireError(
              ErrorCode.INVALID_ARGUMENT,
              `counter '${name}' can only increase, got ${value}`,
            );
          }
          seriesOf(entry, labels).value += value;
        },
      } satisfies Counter;
    } else if (type === 'gauge') {
      entry.api = {
        set(value, labels) {
          checkNumber(name, value);
          seriesOf(entry, labels).value = value;
        },
        inc(value = 1, labels) {
          checkNumber(name, value);
          seriesOf(entry, labels).value += value;
        },
        dec(value = 1, labels) {
          checkNumber(name, value);
          seriesOf(entry, labels).value -= value;
        },
      } satisfies Gauge;
    } else {
      entry.api = {
        observe(value, labels) {
          checkNumber(name, value);
          const series = seriesOf(entry, labels);
          series.value += value;
          series.count++;
          let i = 0;
          while (i < entry.buckets.length && value > entry.buckets[i]!) i++;
          series.bucketCounts[i]!++;
        },
      } satisfies Histogram;
    }
    entries.set(name, entry);
    return entry;
  }

  return {
    counter: (name, options) => register(name, 'counter', options).api as Counter,
    gauge: (name, options) => register(name, 'gauge', options).api as Gauge,
    histogram: (name, options) => register(name, 'histogram', options).api as Histogram,
    value(name, labels) {
      return entries.get(name)?.series.get(seriesKey(labels))?.value;
    },
    snapshot() {
      const out: MetricSnapshot[] = [];
      for (const [name, entry] of entries) {
        const series: SeriesSnapshot[] = [];
        for (const s of entry.series.values()) {
          const snap: SeriesSnapshot = { labels: { ...s.labels }, value: s.value };
          if (entry.type === 'histogram') {
            snap.count = s.count;
            let cumulative = 0;
            snap.buckets = s.bucketCounts.map((count, i) => {
              cumulative += count;
              return { le: entry.buckets[i] ?? Number.POSITIVE_INFINITY, count: cumulative };
            });
          }
          series.push(snap);
        }
        out.push({ name, type: entry.type, help: entry.help, series });
      }
      return out;
    },
  };
}
