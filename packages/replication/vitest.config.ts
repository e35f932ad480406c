import { defineProject } from '../../vitest.shared.js';

export default defineProject({
  coverage: {
    include: ['src/**/*.ts'],
    exclude: ['src/**/*.test.ts', 'src/index.ts'],
    thresholds: { lines: 90, statements: 90, functions: 90, branches: 80 },
  },
});
