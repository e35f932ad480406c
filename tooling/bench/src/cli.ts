import { relative } from 'node:path';
import { machineInfo, markdownTable, writeResults } from './report.js';
import { type SuiteEntry, suites } from './suites/index.js';

const usage = `Usage: pnpm bench [suite...] [--quick]

Runs every suite, or the ones named, prints markdown tables and writes
tooling/bench/results/<suite>.json.

Options:
  --quick   short run (each suite well under 60 s; noisier figures)
  --help    show this help

Suites:
${suites.map((entry) => `  ${entry.name.padEnd(14)}${entry.description}`).join('\n')}`;

interface Arguments {
  quick: boolean;
  selected: SuiteEntry[];
}

class UsageError extends Error {}

function parseArguments(args: readonly string[]): Arguments | 'help' {
  let quick = false;
  const names: string[] = [];
  for (const arg of args) {
    if (arg === '--') continue;
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--quick') quick = true;
    else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
    else names.push(arg);
  }
  const known = suites.map((entry) => entry.name);
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    const list = unknown.map((name) => `'${name}'`).join(', ');
    throw new UsageError(`unknown suite ${list}; suites: ${known.join(', ')}`);
  }
  const selected =
    names.length === 0 ? [...suites] : suites.filter((entry) => names.includes(entry.name));
  return { quick, selected };
}

async function main(): Promise<number> {
  let parsed: Arguments | 'help';
  try {
    parsed = parseArguments(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const { quick, selected } = parsed;
  process.stdout.write(`${machineInfo(quick)}\n`);
  for (const entry of selected) {
    const started = performance.now();
    process.stderr.write(`\nbench: running '${entry.name}'${quick ? ' (quick)' : ''}…\n`);
    const suite = await entry.load();
    if (suite.name !== entry.name) {
      throw new Error(`suite registered as '${entry.name}' calls itself '${suite.name}'`);
    }
    const rows = await suite.run({ quick });
    const file = await writeResults(suite.name, rows);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`\n${markdownTable(suite.name, rows)}\n`);
    process.stderr.write(
      `bench: '${suite.name}' took ${seconds} s; wrote ${relative(process.cwd(), file)}\n`,
    );
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
