import { defineLibrary } from '../../tsup.shared.js';

export default defineLibrary({
  entry: { index: 'src/index.ts' },
  external: [
    '@tickwire/core',
    '@tickwire/rooms',
    '@tickwire/serialization',
    '@tickwire/replication',
    '@tickwire/timesync',
    '@tickwire/transport',
    'pino',
    'prom-client',
  ],
  platform: 'node',
});
