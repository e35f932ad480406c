// The load generator against a real demo server (started by the run itself, on 127.0.0.1),
// and the command line as a process: exit codes, the summary on stdout, and that it ends.
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import {
  type LoadtestProgress,
  type LoadtestSummary,
  resolveTarget,
  runLoadtest,
} from './loadtest.js';
import { exitCodeOf, formatSummary } from './report.js';

const appRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** What a failing assertion shows: the whole summary table. */
const explain = (summary: LoadtestSummary) => `\n${formatSummary(summary)}`;

function expectHealthy(summary: LoadtestSummary, bots: number) {
  expect(summary.errors, explain(summary)).toEqual([]);
  expect(summary.botsConnected, explain(summary)).toBe(bots);
  expect(summary.botsPlayingAtEnd, explain(summary)).toBe(bots);
  expect(summary.disconnects, explain(summary)).toBe(0);
  expect(summary.ok).toBe(true);
  expect(exitCodeOf(summary)).toBe(0);
  // Both ways: snapshots and room messages in; inputs, acks and clock sync out.
  expect(summary.messagesIn).toBeGreaterThan(0);
  expect(summary.messagesOut).toBeGreaterThan(0);
  expect(summary.bytesIn).toBeGreaterThan(summary.bytesOut);
  expect(summary.inputs).toBeGreaterThan(0);
  expect(Number.isFinite(summary.rttMs.p99), explain(summary)).toBe(true);
  expect(summary.rttMs.p50).toBeLessThanOrEqual(summary.rttMs.p99);
}

describe('runLoadtest', () => {
  it('plays 200 bots over ws for 20 s without an error', { timeout: 90_000 }, async () => {
    const progress: LoadtestProgress[] = [];
    const summary = await runLoadtest({
      bots: 200,
      durationMs: 20_000,
      transport: 'ws',
      onProgress: (report) => progress.push(report),
    });
    expectHealthy(summary, 200);
    expect(summary.inProcessServer).toBe(true);
    expect(summary.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    // Quick-play fills the arena's 16 seats: 200 bots take 13 rooms.
    expect(summary.rooms).toBe(13);
    // The ramp (50/s) starts 200 connections in 4 s.
    expect(summary.rampMs).toBeLessThan(5000);
    // Each bot gets the room's snapshots at its tick rate (30 Hz) and sends an input per tick.
    expect(summary.snapshotsPerBotPerSecond, explain(summary)).toBeGreaterThan(26);
    expect(summary.snapshotsPerBotPerSecond, explain(summary)).toBeLessThan(31);
    expect(summary.messagesInPerSecond).toBeGreaterThan(200 * 25);
    expect(summary.messagesOutPerSecond).toBeGreaterThan(200 * 25);
    expect(summary.rttMs.samples).toBeGreaterThan(200);
    expect(summary.shots).toBeGreaterThan(0);
    // A progress report every second, the last one with everyone playing.
    expect(progress.length).toBeGreaterThanOrEqual(18);
    expect(progress.at(-1)).toMatchObject({ botsPlaying: 200, botsStarted: 200, errors: 0 });
  });

  it('plays over udp', { timeout: 30_000 }, async () => {
    const summary = await runLoadtest({ bots: 10, durationMs: 3000, transport: 'udp' });
    expectHealthy(summary, 10);
    expect(summary.url).toMatch(/^udp:\/\//);
    expect(summary.snapshotsPerBotPerSecond, explain(summary)).toBeGreaterThan(20);
  });

  it('plays over tcp, in rooms of --room-size bots', { timeout: 30_000 }, async () => {
    const summary = await runLoadtest({
      bots: 10,
      durationMs: 3000,
      transport: 'tcp',
      roomSize: 5,
    });
    expectHealthy(summary, 10);
    expect(summary.url).toMatch(/^tcp:\/\//);
    expect(summary.rooms).toBe(2);
    expect(summary.snapshotsPerBotPerSecond, explain(summary)).toBeGreaterThan(20);
  });

  it('refuses bad options before starting anything', async () => {
    await expect(runLoadtest({ bots: 0, durationMs: 1000 })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await expect(runLoadtest({ bots: 1, durationMs: 601_000 })).rejects.toThrow(/--duration/);
    await expect(
      runLoadtest({ bots: 1, durationMs: 1000, url: 'http://203.0.113.5:8080' }),
    ).rejects.toThrow(/must name this machine/);
  });

  it('counts a server that cannot be reached as errors and a failed run', {
    timeout: 30_000,
  }, async () => {
    // A port nobody listens on (the in-process server is not started with --url).
    const summary = await runLoadtest({ bots: 2, durationMs: 1500, url: 'tcp://127.0.0.1:1' });
    expect(summary.botsConnected).toBe(0);
    expect(summary.errors.map((error) => error.kind)).toEqual(['connect:CONNECT_FAILED']);
    expect(summary.errorCount).toBe(2);
    expect(summary.ok).toBe(false);
    expect(exitCodeOf(summary)).toBe(1);
    expect(formatSummary(summary)).toMatch(
      /result\s+FAILED \(2 bots never joined a room; 2 errors\)/,
    );
  });
});

describe('resolveTarget', () => {
  it('maps http:// to the demo server ports: ws on PORT, tcp on PORT+1, udp on PORT+2', () => {
    expect(resolveTarget('http://127.0.0.1:8080')).toEqual({
      transport: 'ws',
      url: 'ws://127.0.0.1:8080',
    });
    expect(resolveTarget('http://localhost:8080', 'tcp')).toEqual({
      transport: 'tcp',
      url: 'tcp://localhost:8081',
    });
    expect(resolveTarget('http://[::1]:8080', 'udp')).toEqual({
      transport: 'udp',
      url: 'udp://[::1]:8082',
    });
  });

  it('takes a transport URL as it is, and its scheme as the transport', () => {
    expect(resolveTarget('udp://127.0.0.1:9002')).toEqual({
      transport: 'udp',
      url: 'udp://127.0.0.1:9002',
    });
  });
});

/** Runs the CLI as `pnpm loadtest` does; resolves with its exit code and output. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@tickwire/source', '--import', 'tsx', 'src/loadtest/cli.ts', ...args],
      { cwd: appRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('the loadtest command', () => {
  it('exits with 2 and the usage on a bad value', { timeout: 30_000 }, async () => {
    const run = await runCli(['--bots', '0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('error: --bots must be an integer in [1, 5000], got 0');
    expect(run.stderr).toContain('Usage: pnpm --filter @tickwire/demo loadtest');
    expect(run.stdout).toBe('');
  });

  it('refuses a server that is not on this machine', { timeout: 30_000 }, async () => {
    const run = await runCli(['--url', 'http://198.51.100.4:8080']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--url must name this machine/);
  });

  it('runs, reports progress on stderr and the summary on stdout, and exits with 0', {
    timeout: 60_000,
  }, async () => {
    const run = await runCli(['--bots', '3', '--duration', '3', '--transport', 'tcp']);
    expect(run.stderr).toMatch(/no --url: started a demo server in this process/);
    // Not a TTY: one progress line per 2 s.
    expect(run.stderr).toMatch(
      /\[ {3}2s\] playing 3\/3 · msg\/s in [\d,]+ out [\d,]+ · RTT p50 [\d.]+ ms p99 [\d.]+ ms · errors 0/,
    );
    expect(run.stdout).toMatch(/bots requested \/ connected\s+3 \/ 3/);
    expect(run.stdout).toMatch(/result\s+OK/);
    expect(run.code, run.stdout + run.stderr).toBe(0);
  });
});
