import { defineProject } from '../../vitest.shared.js';

export default defineProject({
  coverage: {
    include: ['src/**/*.ts'],
    exclude: ['src/**/*.test.ts', 'src/**/index.ts'],
  },
});
