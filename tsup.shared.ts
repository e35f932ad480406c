import { defineConfig, type Options } from 'tsup';

/** What a package sets: its entry points, what stays external, and the platform. */
export interface LibraryOptions {
  entry: Record<string, string>;
  external?: string[];
  /** `node` for packages that use Node modules; `neutral` (browser and Node) otherwise. */
  platform?: 'neutral' | 'node';
}

/** The build every package uses: ESM and CJS with declarations, ES2022, source maps. */
export function defineLibrary(options: LibraryOptions): Options {
  return defineConfig({
    entry: options.entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    platform: options.platform ?? 'neutral',
    external: options.external ?? [],
    treeshake: true,
  }) as Options;
}
