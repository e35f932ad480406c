// `pnpm --filter @tickwire/demo loadtest`: parses the command line, runs the load test with a
// live progress line on stderr, prints the summary on stdout and exits with its verdict. The
// process ends whatever happens: a hard deadline exits it 30 s after the planned duration.
import { isUsageError, type LoadtestCommand, parseLoadtestArgs, USAGE } from './args.js';
import { HARD_DEADLINE_GRACE_MS, runLoadtest } from './loadtest.js';
import { exitCodeOf, formatProgress, formatSummary } from './report.js';

/** Exit code of a usage error. */
const USAGE_EXIT_CODE = 2;

/** Longest wait for the event loop to empty after the summary (sockets flushing their goodbyes). */
const EXIT_GRACE_MS = 2000;

/**
 * Writes `text` and ends the process with `code`: by itself once the last socket has sent its
 * goodbye (exiting at once would cut UDP disconnects short and leave the server waiting for a
 * timeout), by force after EXIT_GRACE_MS.
 */
const exit = (code: number, text = '', stream: NodeJS.WriteStream = process.stdout): void => {
  process.exitCode = code;
  stream.write(text);
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
};

let command: LoadtestCommand | null = null;
try {
  command = parseLoadtestArgs(process.argv.slice(2));
} catch (error) {
  if (!isUsageError(error)) throw error;
  exit(USAGE_EXIT_CODE, `error: ${error.message}\n\n${USAGE}`, process.stderr);
}

if (command?.help === true) exit(0, USAGE);
else if (command !== null) {
  const { options } = command;
  const stderr = process.stderr;
  const live = stderr.isTTY === true;
  let progressLines = 0;
  let lineOpen = false;
  const closeLine = () => {
    if (lineOpen) stderr.write('\n');
    lineOpen = false;
  };

  // The last resort: whatever hangs, the process is gone 30 s after the planned end.
  setTimeout(() => {
    closeLine();
    stderr.write(
      `loadtest: still running ${HARD_DEADLINE_GRACE_MS / 1000} s after the planned end: exiting\n`,
    );
    process.exit(1);
  }, options.durationMs + HARD_DEADLINE_GRACE_MS).unref();

  // Ctrl-C once: stop early and print the summary; twice: leave at once.
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) process.exit(130);
    closeLine();
    stderr.write(`loadtest: ${signal}: stopping (again to quit at once)\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  runLoadtest({
    ...options,
    signal: abort.signal,
    onStart(target) {
      stderr.write(
        target.inProcessServer
          ? `loadtest: no --url: started a demo server in this process (${target.url}, tcp and udp on too)\n`
          : `loadtest: using the server at ${target.url}\n`,
      );
      stderr.write(
        `loadtest: ${options.bots} bots over ${target.transport} for ${options.durationMs / 1000} s\n`,
      );
    },
    onProgress(progress) {
      const line = formatProgress(progress);
      if (live) {
        stderr.write(`\r\x1b[2K${line}`);
        lineOpen = true;
      } else if (progressLines++ % 2 === 1) stderr.write(`${line}\n`);
    },
  }).then(
    (summary) => {
      closeLine();
      exit(exitCodeOf(summary), formatSummary(summary));
    },
    (error: unknown) => {
      closeLine();
      if (isUsageError(error)) exit(USAGE_EXIT_CODE, `error: ${error.message}\n\n${USAGE}`, stderr);
      else
        exit(
          1,
          `loadtest failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
          stderr,
        );
    },
  );
}
