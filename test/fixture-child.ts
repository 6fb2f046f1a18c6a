// A fixture script run as a child and killed with SIGKILL at a chosen moment: bundled once with esbuild
// (a tsx start costs ~0.35 s), run with plain node in a bare environment, its stdout read line by line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Bundles test/fixtures/<name>.ts into `dir` and returns the script's path. */
export async function bundleFixture(name: string, dir: string): Promise<string> {
  const script = path.join(dir, `${name}.mjs`);
  await build({
    entryPoints: [path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', `${name}.ts`)],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: script, logLevel: 'silent',
  });
  return script;
}

/**
 * Runs `script args`, waits for its `ready` line, lets `delayMs` pass and kills it with SIGKILL. Every
 * stdout line (split into a word and the rest) goes to `onLine`; 'close' comes after the end of stdout,
 * so every line written before the kill has been seen when this resolves.
 */
export async function runUntilKilled(script: string, args: readonly string[], delayMs: number, onLine: (word: string, rest: string) => void): Promise<void> {
  // A bare environment: NODE_EXTRA_CA_CERTS alone (set on some machines) makes every node start parse a CA bundle.
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: {} });
  let stderr = '';
  let pending = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const [word = '', ...rest] = line.split(' ');
      onLine(word, rest.join(' '));
      if (word === 'ready') onReady();
    }
  });
  const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  try {
    const early = closed.then((signal) => { throw new Error(`${path.basename(script)} ended (${signal}) before it was ready: ${stderr}`); });
    await Promise.race([ready, early]);
    early.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await closed, 'SIGKILL', `${path.basename(script)} was not killed: ${stderr}`);
}
