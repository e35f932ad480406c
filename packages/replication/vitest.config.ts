import { defineProject } from '../../vitest.shared.js';

export default defineProject({
  // The property and differential tests run thousands of seeded cases; under coverage on two
  // cores some take 10–20 s.
  testTimeoutMs: 60_000,
  coverage: {
    include: ['src/**/*.ts'],
    exclude: ['src/**/*.test.ts', 'src/index.ts'],
    thresholds: { lines: 90, statements: 90, functions: 90, branches: 80 },
  },
});
