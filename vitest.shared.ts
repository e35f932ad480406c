import { resolve } from 'node:path';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

/** What a package may set: its coverage thresholds and extra test options. */
export interface ProjectOptions {
  coverage?: {
    include?: string[];
    exclude?: string[];
    thresholds?: { lines?: number; statements?: number; functions?: number; branches?: number };
  };
  testTimeoutMs?: number;
}

// Workspace packages resolve to their src/ through this export condition: no build before tests.
const conditions = ['@tickwire/source', 'module', 'node', 'import', 'default'];

/** The vitest config every package uses: source condition, JSON results for the run summary. */
export function defineProject(options: ProjectOptions = {}): ViteUserConfig {
  const cwd = process.cwd();
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: conditions } },
    test: {
      include: ['src/**/*.test.ts'],
      // Seeded property, fuzz and statistics tests take 10–20 s under coverage on two busy cores;
      // the limit is there to end a hang, not to time them.
      testTimeout: options.testTimeoutMs ?? 60_000,
      reporters: ['default', ['json', { outputFile: resolve(cwd, '.vitest/results.json') }]],
      coverage: {
        provider: 'v8',
        reporter: ['text-summary', 'json-summary'],
        reportsDirectory: resolve(cwd, 'coverage'),
        ...options.coverage,
      },
    },
  });
}
