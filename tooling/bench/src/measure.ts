import { Bench, type Fn, type Task } from 'tinybench';
import type { SuiteOptions } from './report.js';

/** Time budgets of tinybench per task, by mode. */
export interface BenchBudget {
  /** Time budget per task in ms. */
  timeMs: number;
  /** Minimum measured iterations per task. */
  iterations: number;
  /** Warmup time budget per task in ms. */
  warmupTimeMs: number;
  /** Minimum warmup iterations per task. */
  warmupIterations: number;
}

/** Budgets of a full run (a few seconds per task) and of a `--quick` run (a fraction of one). */
export const budgets: Record<'full' | 'quick', BenchBudget> = {
  full: { timeMs: 5000, iterations: 64, warmupTimeMs: 500, warmupIterations: 16 },
  quick: { timeMs: 500, iterations: 10, warmupTimeMs: 100, warmupIterations: 4 },
};

/** A tinybench `Bench` with the budget of the mode; a failing task fails the run. */
export function createBench(name: string, options: SuiteOptions): Bench {
  const budget = options.quick ? budgets.quick : budgets.full;
  const bench = new Bench({
    name,
    time: budget.timeMs,
    iterations: budget.iterations,
    warmupTime: budget.warmupTimeMs,
    warmupIterations: budget.warmupIterations,
    timestampProvider: 'hrtimeNow',
    throws: true,
  });
  bench.addEventListener('warning', (event) => {
    process.stderr.write(`  warning: ${event.task?.name ?? name}: timer saturated\n`);
  });
  return bench;
}

/** A task whose every call does `batchSize` operations of one case. */
export interface BatchTask {
  name: string;
  /** Operations (messages) per call of `fn`. */
  batchSize: number;
  fn: Fn;
  /** Whether `fn` returns a promise (set explicitly, so tinybench makes no probing call). */
  async: boolean;
}

/** Mean time of one operation of a batch task, in ns, and the spread of its samples. */
export interface BatchResult {
  name: string;
  nsPerOperation: number;
  operationsPerSecond: number;
  /** Relative margin of error of the mean, in percent (95 % confidence). */
  rmePercent: number;
  samples: number;
}

/** Runs batch tasks one after another in a tinybench `Bench` and returns per-operation figures. */
export async function runBatches(
  bench: Bench,
  tasks: readonly BatchTask[],
): Promise<Map<string, BatchResult>> {
  for (const task of tasks) bench.add(task.name, task.fn, { async: task.async });
  await bench.run();
  const results = new Map<string, BatchResult>();
  for (const task of tasks) {
    const result = batchResult(bench.getTask(task.name), task);
    results.set(task.name, result);
    process.stderr.write(
      `  ${bench.name}: ${task.name}: ${result.nsPerOperation.toFixed(1)} ns/op ` +
        `±${result.rmePercent.toFixed(1)}% (${result.samples} batches of ${task.batchSize})\n`,
    );
  }
  return results;
}

function batchResult(task: Task | undefined, batch: BatchTask): BatchResult {
  const result = task?.result;
  if (!result) throw new Error(`bench task '${batch.name}' was not run`);
  if (result.state === 'errored') throw result.error;
  if (result.state !== 'completed') {
    throw new Error(`bench task '${batch.name}' did not complete (state: ${result.state})`);
  }
  const msPerBatch = result.latency.mean;
  const nsPerOperation = (msPerBatch * 1e6) / batch.batchSize;
  return {
    name: batch.name,
    nsPerOperation,
    operationsPerSecond: 1e9 / nsPerOperation,
    rmePercent: result.latency.rme,
    samples: result.latency.samplesCount,
  };
}

/** Looks up a result that `runBatches` returned. */
export function resultOf(results: Map<string, BatchResult>, name: string): BatchResult {
  const result = results.get(name);
  if (!result) throw new Error(`no result for bench task '${name}'`);
  return result;
}
