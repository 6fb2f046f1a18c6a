// Builds dist/ with esbuild: fast and small enough in memory for a Raspberry Pi Zero 2 (512 MB).
// Packages stay external (node_modules is installed beside dist/); code splitting keeps the
// hardware layer and the appliance in chunks loaded only when used.
// `--types` also writes the .d.ts files beside the JavaScript (tsc, ~220 MB: for `npm pack`, not the Pi).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';

const withTypes = process.argv.includes('--types');
// Start clean: chunk names are content hashes, so old ones would pile up beside the new. The .d.ts
// files stay unless they are rebuilt now: `npm pack` runs `prepare` (this, without --types) after `prepack`.
if (withTypes || !existsSync('dist')) {
  rmSync('dist', { recursive: true, force: true });
} else {
  for (const entry of readdirSync('dist', { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && !entry.name.endsWith('.d.ts')) rmSync(join(entry.parentPath, entry.name));
  }
}
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
if (withTypes) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.types.json'], { stdio: 'inherit' });
}
