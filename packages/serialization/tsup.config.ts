import type { Options } from 'tsup';
import { defineLibrary } from '../../tsup.shared.js';

const config: Options = {
  ...defineLibrary({
    entry: {
      index: 'src/index.ts',
      'node/index': 'src/node/index.ts',
      't/index': 'src/t/index.ts',
    },
    external: ['@tickwire/core', '@msgpack/msgpack', '@standard-schema/spec', 'node:zlib'],
  }),
  // One copy of the code behind `.` and `./t` in CJS too: codec errors are checked with instanceof.
  splitting: true,
};

export default config;
