import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';

/** Which direction of a metric is an improvement. */
export type Better = 'lower' | 'higher';

/** One measured figure, the shape of `results/<suite>.json` (see DESIGN.md "Benchmark output"). */
export interface Row {
  suite: string;
  case: string;
  metric: string;
  unit: string;
  better: Better;
  tickwire: number;
  /** Name of the peer library measured on the same case, or null where none exists. */
  peer: string | null;
  peerValue: number | null;
  /** Always tickwire / peerValue; null where there is no peer. */
  ratio: number | null;
}

/** A benchmark suite: one file in `src/suites/`, listed in `src/suites/index.ts`. */
export interface Suite {
  /** Name used on the command line: `pnpm bench <name>`. */
  name: string;
  /** Runs every case; `quick` shortens the run to well under 60 s. */
  run(options: SuiteOptions): Promise<Row[]>;
}

/** Options every suite takes. */
export interface SuiteOptions {
  /** Short run (smoke test, noisier figures). */
  quick: boolean;
}

/** Fields of a row that a suite supplies; `peerValue` given means a peer was measured. */
export interface RowInput {
  case: string;
  metric: string;
  unit: string;
  better: Better;
  tickwire: number;
  peer?: string;
  peerValue?: number;
}

/** Builds rows of one suite, computing the ratio (tickwire / peer) where a peer exists. */
export function rowFactory(suite: string): (input: RowInput) => Row {
  return (input) => {
    const hasPeer = input.peer !== undefined && input.peerValue !== undefined;
    const peerValue = hasPeer ? round(input.peerValue!) : null;
    return {
      suite,
      case: input.case,
      metric: input.metric,
      unit: input.unit,
      better: input.better,
      tickwire: round(input.tickwire),
      peer: hasPeer ? input.peer! : null,
      peerValue,
      ratio: hasPeer && input.peerValue !== 0 ? round(input.tickwire / input.peerValue!) : null,
    };
  };
}

// Six significant digits are far beyond the precision of any benchmark here.
function round(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(6)) : value;
}

/** Formats a figure for a table: integers with separators from 1000 up, else 4 significant digits. */
export function formatValue(value: number | null): string {
  if (value === null) return '—';
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(Number(value.toPrecision(4)));
}

function formatRatio(ratio: number | null): string {
  return ratio === null ? '—' : ratio.toFixed(3);
}

/** A markdown table of one suite's rows. */
export function markdownTable(suite: string, rows: readonly Row[]): string {
  const header = ['case', 'metric', 'unit', 'tickwire', 'peer', 'peer value', 'ratio'];
  const right = new Set([3, 5, 6]);
  const body = rows.map((row) => [
    row.case,
    `${row.metric} (${row.better === 'lower' ? '↓' : '↑'})`,
    row.unit,
    formatValue(row.tickwire),
    row.peer ?? '—',
    formatValue(row.peerValue),
    formatRatio(row.ratio),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => cells[column]!.length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((cell, column) =>
        right.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!),
      )
      .join(' | ')} |`;
  // The delimiter row as Biome formats markdown, so pasted output stays as printed.
  const rule = line(
    widths.map((width, column) =>
      right.has(column) ? `${'-'.repeat(width - 1)}:` : '-'.repeat(width),
    ),
  );
  return [`### ${suite}`, '', line(header), rule, ...body.map(line)].join('\n');
}

/** Node version, CPU model and cores, as markdown, printed once at the top of a run. */
export function machineInfo(quick: boolean): string {
  const cpuList = cpus();
  const model = cpuList[0]?.model.trim() ?? 'unknown CPU';
  const memoryGiB = (totalmem() / 2 ** 30).toFixed(1);
  return [
    `**Tickwire benchmarks**, ${quick ? 'quick run (--quick: short, noisier figures)' : 'full run'}`,
    '',
    `- node ${process.version} (${process.platform}/${process.arch})`,
    `- cpu: ${model}, ${availableParallelism()} cores available (${cpuList.length} logical CPUs)`,
    `- memory: ${memoryGiB} GiB`,
    `- date: ${new Date().toISOString()}`,
  ].join('\n');
}

/** Where results go: `tooling/bench/results/`, git-ignored. */
export const resultsDirectory = new URL('../results/', import.meta.url);

/** Writes `results/<suite>.json` (an array of rows) and returns its path. */
export async function writeResults(suite: string, rows: readonly Row[]): Promise<string> {
  await mkdir(resultsDirectory, { recursive: true });
  const file = new URL(`${suite}.json`, resultsDirectory);
  await writeFile(file, `${JSON.stringify(rows, null, 2)}\n`);
  return file.pathname;
}
