// The telepi library as users run it: dist/src/index.js from scripts/build.mjs, or, while the full
// build cannot run (an entry point of the appliance missing), the library entry alone, built the same way.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface BuiltLibrary {
  /** file: URL of the library's entry point. */
  entry: string;
  note: string;
}

export async function buildTelepi(): Promise<BuiltLibrary> {
  const full = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, encoding: 'utf8' });
  const dist = `${root}dist/src/index.js`;
  if (full.status === 0 && existsSync(dist)) return { entry: pathToFileURL(dist).href, note: 'telepi ran from dist/src/index.js (scripts/build.mjs)' };
  const reason = (full.stderr.split('\n').find((line) => line.includes('ERROR')) ?? `exit ${full.status}`).replace(/^✘ /, '').trim();
  // Under node_modules/ so that the bundle's bare imports (undici, …) resolve as they do from dist/.
  const outdir = `${root}node_modules/.cache/telepi-bench`;
  await build({
    entryPoints: [`${root}src/index.ts`],
    outdir,
    outbase: root,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return {
    entry: pathToFileURL(`${outdir}/src/index.js`).href,
    note: `scripts/build.mjs failed (${reason}): telepi ran from src/index.ts bundled alone with the same esbuild options`,
  };
}
