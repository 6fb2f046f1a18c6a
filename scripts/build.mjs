// Builds dist/ with esbuild: fast and small enough in memory for a Raspberry Pi Zero 2 (512 MB).
// Packages stay external (node_modules is installed beside dist/); code splitting keeps the
// hardware layer and the appliance in chunks loaded only when used.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Start clean: chunk names are content hashes, so old ones would pile up beside the new.
rmSync('dist', { recursive: true, force: true });
await build({
  // The chart renderer runs as its own process (src/app/history/render.ts spawns it), so it is an entry of its own.
  entryPoints: ['src/index.ts', 'src/app/cli.ts', 'hardware/index.ts', 'src/examples/*.ts', 'src/app/history/render-child.ts'],
  outdir: 'dist',
  outbase: '.',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
