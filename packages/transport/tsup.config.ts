import { defineLibrary } from '../../tsup.shared.js';

export default defineLibrary({
  entry: {
    'ws/index': 'src/ws/index.ts',
    'browser/index': 'src/browser/index.ts',
    'tcp/index': 'src/tcp/index.ts',
    'udp/index': 'src/udp/index.ts',
  },
  external: ['@tickwire/core', 'ws'],
  platform: 'node',
});
