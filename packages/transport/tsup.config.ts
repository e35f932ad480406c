import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    'ws/index': 'src/ws/index.ts',
    'browser/index': 'src/browser/index.ts',
    'tcp/index': 'src/tcp/index.ts',
    'udp/index': 'src/udp/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'node',
  external: ['@tickwire/core', 'ws'],
  treeshake: true,
});
