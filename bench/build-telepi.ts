// The telepi library as users run it (dist/src/index.js, built by scripts/build.mjs), or bundled for a
// bench that compares builds.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
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

/**
 * telepi's src/ bundled into node_modules/.cache/<name> (beside node_modules, so its imports resolve;
 * not dist/, which other work may be using): of the working tree, or of a git ref (`git archive`), to
 * measure a change against the commit before it in one run. Returns the bundle's file: URL.
 */
export async function bundleTelepi(name: string, ref?: string): Promise<string> {
  const { build } = await import('esbuild');
  const cache = join(root, 'node_modules', '.cache');
  let src = join(root, 'src');
  if (ref !== undefined) {
    const tree = join(cache, `${name}-src`);
    await rm(tree, { recursive: true, force: true });
    await mkdir(tree, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${JSON.stringify(ref)} src hardware | tar -x -C ${JSON.stringify(tree)}`], { cwd: root });
    src = join(tree, 'src');
  }
  const outdir = join(cache, name);
  await build({ entryPoints: [join(src, 'index.ts')], outdir, bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' });
  return pathToFileURL(join(outdir, 'index.js')).href;
}
