import { defineConfig } from 'vite';

// The browser client: built from src/client into dist/client, which the demo server serves.
// The `@tickwire/source` condition bundles the workspace packages from their TypeScript
// sources, so nothing has to be built first.
export default defineConfig({
  root: 'src/client',
  build: { outDir: '../../dist/client', emptyOutDir: true, target: 'es2022' },
  resolve: { conditions: ['@tickwire/source', 'browser', 'module', 'import', 'default'] },
  logLevel: 'warn',
});
