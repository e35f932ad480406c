import { defineLibrary } from '../../tsup.shared.js';

export default defineLibrary({
  entry: {
    index: 'src/index.ts',
    'memory/index': 'src/memory/index.ts',
    'testing/index': 'src/testing/index.ts',
  },
  external: ['vitest'],
});
