// The telepi library as users run it: dist/src/index.js, built by scripts/build.mjs.
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface BuiltLibrary {
  /** file: URL of the library's entry point. */
  entry: string;
  note: string;
}

export async function buildTelepi(): Promise<BuiltLibrary> {
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`scripts/build.mjs failed (exit ${build.status}): ${build.stderr.trim()}`);
  return { entry: pathToFileURL(`${root}dist/src/index.js`).href, note: 'telepi ran from dist/src/index.js (scripts/build.mjs)' };
}
