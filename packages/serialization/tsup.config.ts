import { defineLibrary } from '../../tsup.shared.js';

export default defineLibrary({
  entry: {
    index: 'src/index.ts',
    'node/index': 'src/node/index.ts',
  },
  external: ['@tickwire/core', '@msgpack/msgpack', '@standard-schema/spec', 'node:zlib'],
});
