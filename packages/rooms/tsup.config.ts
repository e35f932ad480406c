import { defineLibrary } from '../../tsup.shared.js';

export default defineLibrary({
  entry: { index: 'src/index.ts', 'protocol/index': 'src/protocol/index.ts' },
  external: ['@tickwire/core', '@tickwire/serialization'],
  platform: 'node',
});
