#!/usr/bin/env node
// The full test run: lint, typecheck, build, every package's tests, package checks.
// Keeps going after a failure so one run shows every problem, and ends with the totals
// over all packages, alone on the last line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const groups = ['packages', 'apps', 'tooling'];
const projects = groups
  .filter((group) => existsSync(join(root, group)))
  .flatMap((group) =>
    readdirSync(join(root, group), { withFileTypes: true })
      .filter(
        (entry) => entry.isDirectory() && existsSync(join(root, group, entry.name, 'package.json')),
      )
      .map((entry) => join(group, entry.name)),
  );

for (const project of projects)
  rmSync(join(root, project, '.vitest'), { recursive: true, force: true });

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', FORCE_COLOR: '0' };
const failedSteps = [];
function step(name, command, args) {
  console.log(`\n=== ${name}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) failedSteps.push(name);
}

step('lint', 'biome', ['check', '.']);
step('typecheck (root)', 'tsc', ['-p', 'tsconfig.json']);
step('turbo: typecheck, build, test, check:package', 'turbo', [
  'run',
  'typecheck',
  'build',
  'test',
  'check:package',
  '--continue',
  '--output-logs=full',
  '--log-order=grouped',
]);

let passed = 0;
let failed = 0;
console.log('\n=== test results by package');
for (const project of projects) {
  const file = join(root, project, '.vitest', 'results.json');
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  // A test file that fails to load has no tests in it: count it as a failure.
  const brokenFiles = report.testResults.filter(
    (suite) => suite.status === 'failed' && suite.assertionResults.length === 0,
  ).length;
  passed += report.numPassedTests;
  failed += report.numFailedTests + brokenFiles;
  console.log(
    `${project}: ${report.numPassedTests} passed, ${report.numFailedTests + brokenFiles} failed, ${report.numPendingTests + report.numTodoTests} skipped`,
  );
}
if (failedSteps.length > 0) console.log(`failed steps: ${failedSteps.join(', ')}`);
if (passed + failed === 0) console.log('no test ran');
console.log(`${passed} passed, ${failed} failed`);
process.exit(failedSteps.length > 0 || failed > 0 || passed === 0 ? 1 : 0);
