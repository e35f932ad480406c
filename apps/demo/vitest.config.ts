import { defineProject } from '../../vitest.shared.js';

export default defineProject({
  coverage: {
    include: ['src/shared/**/*.ts', 'src/server/**/*.ts'],
    exclude: ['src/**/*.test.ts', 'src/server/main.ts'],
    thresholds: { lines: 80, statements: 80, functions: 80, branches: 70 },
  },
});
