import { defineLibrary } from '../../tsup.shared.js';

export default defineLibrary({
  entry: { index: 'src/index.ts' },
  external: ['@tickwire/core'],
});
