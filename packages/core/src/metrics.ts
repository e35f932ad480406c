/** Label values of one series. */
export type Labels = Readonly<Record<string, string | number>>;

/** A monotonically increasing count. */
export interface Counter {
  /** Adds `value` (default 1, must be >= 0). */
  inc(value?: number, labels?: Labels): void;
}

/** A value that goes up and down. */
export interface Gauge {
  set(value: number, labels?: Labels): void;
  inc(value?: number, labels?: Labels): void;
  dec(value?: number, labels?: Labels): void;
}

/** A distribution of observed values, in buckets. */
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

/** Options shared by every metric. */
export interface MetricOptions {
  /** One line that says what is measured, with its unit. */
  help?: string;
}

/** Options of a histogram. */
export interface HistogramOptions extends MetricOptions {
  /**
   * Upper bounds of the buckets, ascending.
   * @default [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]
   */
  buckets?: readonly number[];
}

/** A metrics sink (Prometheus-shaped). Registering a name twice returns the same metric. */
export interface Metrics {
  counter(name: string, options?: MetricOptions): Counter;
  gauge(name: string, options?: MetricOptions): Gauge;
  histogram(name: string, options?: HistogramOptions): Histogram;
}

const noopCounter: Counter = { inc: () => {} };
const noopGauge: Gauge = { set: () => {}, inc: () => {}, dec: () => {} };
const noopHistogram: Histogram = { observe: () => {} };

/** A sink that records nothing: the default of every library package. */
export const noopMetrics: Metrics = {
  counter: () => noopCounter,
  gauge: () => noopGauge,
  histogram: () => noopHistogram,
};
