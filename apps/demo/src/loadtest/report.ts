// What a load test prints: percentiles over a bounded sample of round trips, the live progress
// line and the summary table, and the exit code the summary stands for.
import type { Random } from '@tickwire/core';
import type { LoadtestProgress, LoadtestSummary } from './loadtest.js';

/** Percentiles of a set of samples (NaN without samples). */
export interface Percentiles {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** The `q` quantile (0..1) of ascending values, nearest rank; NaN when empty. */
export function quantileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

/** A uniform sample of at most `capacity` values out of any number (Vitter's algorithm R). */
export interface Reservoir {
  add(value: number): void;
  /** Values offered so far. */
  readonly seen: number;
  percentiles(): Percentiles;
}

/** Creates a {@link Reservoir}; `random` picks what is kept once it is full. */
export function createReservoir(capacity: number, random: Random): Reservoir {
  const kept: number[] = [];
  let seen = 0;
  let max = Number.NaN;
  return {
    add(value) {
      if (!Number.isFinite(value)) return;
      seen++;
      if (!(value <= max)) max = value;
      if (kept.length < capacity) kept.push(value);
      else {
        const slot = Math.floor(random.next() * seen);
        if (slot < capacity) kept[slot] = value;
      }
    },
    get seen() {
      return seen;
    },
    percentiles() {
      const sorted = [...kept].sort((a, b) => a - b);
      return {
        samples: seen,
        p50: quantileOfSorted(sorted, 0.5),
        p95: quantileOfSorted(sorted, 0.95),
        p99: quantileOfSorted(sorted, 0.99),
        max,
      };
    },
  };
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 12,345 */
export const formatCount = (value: number): string =>
  Number.isFinite(value) ? integer.format(value) : '—';

/** 1.23 ms, 12.3 ms, 123 ms */
export const formatMs = (value: number): string =>
  !Number.isFinite(value)
    ? '—'
    : value < 10
      ? `${value.toFixed(2)} ms`
      : value < 100
        ? `${value.toFixed(1)} ms`
        : `${value.toFixed(0)} ms`;

/** 512 B, 12.3 kB, 4.56 MB (powers of 1000) */
export function formatBytes(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (value < 1000) return `${Math.round(value)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let scaled = value;
  let unit = 'B';
  for (const next of units) {
    if (scaled < 1000) break;
    scaled /= 1000;
    unit = next;
  }
  return `${scaled.toFixed(scaled < 10 ? 2 : scaled < 100 ? 1 : 0)} ${unit}`;
}

/** One line of progress: `[  12s] playing 200/200 · msg/s in 6,012 out 12,034 · …`. */
export function formatProgress(progress: LoadtestProgress): string {
  const seconds = (progress.elapsedMs / 1000).toFixed(0).padStart(4);
  const ramp =
    progress.botsStarted < progress.botsRequested ? ` (started ${progress.botsStarted})` : '';
  return [
    `[${seconds}s] playing ${progress.botsPlaying}/${progress.botsRequested}${ramp}`,
    `msg/s in ${formatCount(progress.messagesInPerSecond)} out ${formatCount(progress.messagesOutPerSecond)}`,
    `RTT p50 ${formatMs(progress.rttP50Ms)} p99 ${formatMs(progress.rttP99Ms)}`,
    `errors ${progress.errors}`,
  ].join(' · ');
}

/** Advice for errors with a known cause (the message text is the server's). */
function hintsFor(summary: LoadtestSummary): string[] {
  const hints: string[] = [];
  const text = summary.errors.map((error) => error.example).join('\n');
  if (/too many connections from your address/.test(text))
    hints.push(
      'The server caps connections per client address (limits.maxConnectionsPerAddress, 16 by default) and every bot comes from this machine: run without --url (the in-process server raises the cap) or start the server with a higher limit.',
    );
  if (/rate limit/i.test(text))
    hints.push(
      'The server rate-limited bots (limits.messagesPerSecond, 60 by default, counts every frame a client sends: inputs, snapshot acks, clock sync).',
    );
  return hints;
}

/** The summary as a two-column table, error kinds and advice below it. */
export function formatSummary(summary: LoadtestSummary): string {
  const where = `${summary.url}${summary.inProcessServer ? ', server in this process' : ''}`;
  const seconds = summary.durationMs / 1000;
  const rtt = summary.rttMs;
  const rows: [string, string][] = [
    ['bots requested / connected', `${summary.botsRequested} / ${summary.botsConnected}`],
    [
      'bots playing at the end',
      `${summary.botsPlayingAtEnd} in ${summary.rooms} room${summary.rooms === 1 ? '' : 's'}`,
    ],
    [
      'duration',
      `${seconds.toFixed(1)} s (planned ${(summary.plannedDurationMs / 1000).toFixed(1)} s, ramp ${Number.isFinite(summary.rampMs) ? `${(summary.rampMs / 1000).toFixed(1)} s` : 'unfinished'})`,
    ],
    [
      'messages in / out',
      `${formatCount(summary.messagesIn)} / ${formatCount(summary.messagesOut)}`,
    ],
    [
      'messages in / out per second',
      `${formatCount(summary.messagesInPerSecond)} / ${formatCount(summary.messagesOutPerSecond)}`,
    ],
    [
      'bytes in / out',
      `${formatBytes(summary.bytesIn)} / ${formatBytes(summary.bytesOut)} (${formatBytes(summary.bytesIn / seconds)}/s / ${formatBytes(summary.bytesOut / seconds)}/s)`,
    ],
    ['inputs sent', formatCount(summary.inputs)],
    [
      'RTT p50 / p95 / p99',
      `${formatMs(rtt.p50)} / ${formatMs(rtt.p95)} / ${formatMs(rtt.p99)} (max ${formatMs(rtt.max)}, ${formatCount(rtt.samples)} clock-sync samples)`,
    ],
    ['snapshots per bot per second', summary.snapshotsPerBotPerSecond.toFixed(1)],
    [
      'shots / hits / kills by bots',
      `${formatCount(summary.shots)} / ${formatCount(summary.hits)} / ${formatCount(summary.kills)}`,
    ],
    [
      'shot / kill messages received',
      `${formatCount(summary.shotMessages)} / ${formatCount(summary.killMessages)}`,
    ],
    ['disconnects', formatCount(summary.disconnects)],
    [
      'ticks skipped by the bots',
      summary.skippedTicks === 0
        ? '0'
        : `${formatCount(summary.skippedTicks)} (this process was saturated: the figures measure it too)`,
    ],
    ['errors', formatCount(summary.errorCount)],
  ];
  for (const error of summary.errors)
    rows.push([`  ${error.kind}`, `${formatCount(error.count)} (${error.example})`]);
  if (summary.serverRejections.length > 0) {
    const total = summary.serverRejections.reduce((count, kind) => count + kind.count, 0);
    rows.push(['server rejections', formatCount(total)]);
    for (const rejection of summary.serverRejections)
      rows.push([`  ${rejection.kind}`, `${formatCount(rejection.count)} (${rejection.example})`]);
  }
  rows.push(['result', summary.ok ? 'OK' : `FAILED (${failureReasons(summary).join('; ')})`]);

  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [
    `Tickwire load test: ${summary.botsRequested} bots over ${summary.transport} (${where})`,
    '',
    ...rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`),
  ];
  const hints = hintsFor(summary);
  if (hints.length > 0) lines.push('', ...hints);
  return `${lines.join('\n')}\n`;
}

/** Why a run failed, in words (empty when it did not). */
export function failureReasons(summary: LoadtestSummary): string[] {
  const reasons: string[] = [];
  if (summary.botsConnected < summary.botsRequested)
    reasons.push(`${summary.botsRequested - summary.botsConnected} bots never joined a room`);
  if (summary.errorCount > 0) reasons.push(`${summary.errorCount} errors`);
  return reasons;
}

/** The process exit code of a run: 0 when every bot connected and no error occurred, else 1. */
export const exitCodeOf = (summary: LoadtestSummary): number => (summary.ok ? 0 : 1);
