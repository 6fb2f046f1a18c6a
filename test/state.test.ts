import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { memoryLogger, silentLogger } from '../src/log.js';
import { StateStore, writeFileAtomic, type AppState } from '../src/app/state.js';
import { sequenceNumberOf, stateFor } from './fixtures/state-sequence.js';

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'telepi-state-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirCount = 0;
async function freshDir(): Promise<string> {
  const dir = path.join(root, `case-${dirCount++}`);
  return dir;
}

const sample: AppState = {
  version: 1,
  subscriptions: [{ chatId: 42, intervalMs: 900_000, anchorMs: 1_700_000_000_000 }],
  motion: { enabled: true },
  portMapping: { externalPort: 54321, createdAtMs: 1_700_000_100_000 },
};

test('a new state dir is created private and starts with the fresh state', async () => {
  const dir = path.join(await freshDir(), 'nested');
  const store = await StateStore.open(dir, silentLogger);
  assert.deepEqual(store.state, { version: 1, subscriptions: [], motion: { enabled: false }, portMapping: null });
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
});

test('state written by one store is read back by the next', async () => {
  const dir = await freshDir();
  const first = await StateStore.open(dir, silentLogger);
  await first.update((draft) => Object.assign(draft, structuredClone(sample)));
  const second = await StateStore.open(dir, silentLogger);
  assert.deepEqual(second.state, sample);
  assert.equal((await stat(path.join(dir, 'state.json'))).mode & 0o777, 0o600);
});

test('the state is frozen: changes go through update', async () => {
  const store = await StateStore.open(await freshDir(), silentLogger);
  assert.throws(() => { (store.state as AppState).motion.enabled = true; }, TypeError);
});

test('a mutator that throws leaves the state and the file unchanged', async () => {
  const dir = await freshDir();
  const store = await StateStore.open(dir, silentLogger);
  await store.update((draft) => { draft.motion.enabled = true; });
  await assert.rejects(store.update((draft) => { draft.motion.enabled = false; throw new Error('no'); }), /no/);
  assert.equal(store.state.motion.enabled, true);
  await assert.rejects(store.update((draft) => { draft.subscriptions.push({ chatId: 1, intervalMs: -5, anchorMs: 0 }); }), /bad subscription/);
  assert.deepEqual(store.state.subscriptions, []);
  assert.equal(JSON.parse(await readFile(store.file, 'utf8')).motion.enabled, true);
});

async function expectMovedAside(contents: string, expectedWarning: RegExp): Promise<void> {
  const dir = await freshDir();
  await StateStore.open(dir, silentLogger);
  await writeFile(path.join(dir, 'state.json'), contents);
  const log = memoryLogger();
  const store = await StateStore.open(dir, log);
  assert.deepEqual(store.state.subscriptions, []);
  const names = await readdir(dir);
  const aside = names.find((name) => name.startsWith('state.json.corrupt-'));
  assert.ok(aside !== undefined, `not moved aside: ${names.join(', ')}`);
  assert.ok(!names.includes('state.json'), 'the bad file is still in place');
  assert.equal(await readFile(path.join(dir, aside), 'utf8'), contents);
  assert.equal(log.lines.filter((line) => line.startsWith('WARN')).length, 1);
  assert.match(log.lines.join('\n'), expectedWarning);
  // The fresh state is usable and written over the gap.
  await store.update((draft) => { draft.motion.enabled = true; });
  assert.equal((await StateStore.open(dir, silentLogger)).state.motion.enabled, true);
}

test('a corrupt file is moved aside with a warning and telepi starts fresh', async () => {
  await expectMovedAside('{"version":1,"subscriptions":[', /is not valid JSON; moved it to .*state\.json\.corrupt-/);
});

test('an empty file is moved aside', async () => {
  await expectMovedAside('', /is empty/);
});

test('a file of an unknown version is moved aside', async () => {
  await expectMovedAside(JSON.stringify({ ...sample, version: 2 }), /unknown shape \(version 2, expected 1\)/);
});

test('a file of the right version but a wrong shape is moved aside', async () => {
  await expectMovedAside(JSON.stringify({ ...sample, subscriptions: [{ chatId: 'x' }] }), /bad subscription/);
  await expectMovedAside(JSON.stringify({ ...sample, motion: null }), /motion.enabled/);
  await expectMovedAside(JSON.stringify({ ...sample, portMapping: { externalPort: 0, createdAtMs: 1 } }), /portMapping/);
});

test('unknown extra fields are dropped on read', async () => {
  const dir = await freshDir();
  await StateStore.open(dir, silentLogger);
  await writeFile(path.join(dir, 'state.json'), JSON.stringify({ ...sample, extra: 1, motion: { enabled: true, x: 2 } }));
  assert.deepEqual((await StateStore.open(dir, silentLogger)).state, sample);
});

test('concurrent updates apply in call order, their writes one at a time, and the last one wins', async () => {
  const dir = await freshDir();
  const store = await StateStore.open(dir, silentLogger);
  const resolved: number[] = [];
  const fileSeen: number[] = [];
  const updates = Array.from({ length: 25 }, (_, i) =>
    store.update((draft) => { draft.subscriptions.push({ chatId: i, intervalMs: 60_000, anchorMs: i }); })
      .then(async () => {
        resolved.push(i);
        const onDisk = JSON.parse(await readFile(store.file, 'utf8')) as AppState;
        fileSeen.push(onDisk.subscriptions.length - 1);
      }));
  assert.equal(store.state.subscriptions.length, 25, 'updates apply at call time');
  await Promise.all(updates);
  await store.flush();
  assert.deepEqual(resolved, [...Array(25).keys()]);
  // A resolved update's state (or a later one) is on disk, never an earlier one.
  fileSeen.forEach((seen, i) => assert.ok(seen >= i, `after update ${i} the file held update ${seen}`));
  const final = JSON.parse(await readFile(store.file, 'utf8')) as AppState;
  assert.deepEqual(final.subscriptions.map((s) => s.chatId), [...Array(25).keys()]);
  assert.deepEqual(await readdir(dir), ['state.json'], 'a temp file was left behind');
});

test('a failed write rejects its update with the path, and later writes still happen', async () => {
  const dir = await freshDir();
  const store = await StateStore.open(dir, silentLogger);
  await rm(dir, { recursive: true });
  await assert.rejects(store.update((draft) => { draft.motion.enabled = true; }), (error: Error) =>
    error.message.includes(`cannot write ${store.file}`));
  await StateStore.open(dir, silentLogger);
  await store.update((draft) => { draft.motion.enabled = false; });
  assert.equal(JSON.parse(await readFile(store.file, 'utf8')).motion.enabled, false);
});

test('writeFileAtomic replaces a file whole and leaves no temp file', async () => {
  const dir = await freshDir();
  await StateStore.open(dir, silentLogger);
  const file = path.join(dir, 'other.txt');
  await writeFileAtomic(file, 'first');
  await writeFileAtomic(file, Buffer.from('second'));
  assert.equal(await readFile(file, 'utf8'), 'second');
  assert.deepEqual((await readdir(dir)).sort(), ['other.txt']);
});

test('temp files left by an interrupted write are removed at open', async () => {
  const dir = await freshDir();
  await StateStore.open(dir, silentLogger);
  await writeFile(path.join(dir, '.state.json.999.abcd.tmp'), '{"version":');
  await writeFile(path.join(dir, 'unrelated.tmp'), 'keep');
  await StateStore.open(dir, silentLogger);
  assert.deepEqual((await readdir(dir)).sort(), ['unrelated.tmp']);
});

// The writer is bundled once with esbuild and run with plain node: `node --import tsx` costs ~0.35 s of
// CPU per start, and 50 starts would not fit the time budget. The code under test is the same.
test('state.json survives SIGKILL at random moments: always one whole written state', async () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const script = path.join(root, 'state-writer.mjs');
  await build({
    entryPoints: [path.join(here, 'fixtures', 'state-writer.ts')],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: script, logLevel: 'silent',
  });
  const seen = new Set<number>();
  // Two writers in two directories at once: the kills are independent, the wall time halves.
  const lane = async (dir: string, kills: number) => {
    for (let kill = 0; kill < kills; kill++) seen.add(await killAndCheck(script, dir, kill));
  };
  await Promise.all([lane(await freshDir(), 25), lane(await freshDir(), 25)]);
  assert.ok(seen.size > 1, 'every kill landed on the same state: the writer did not run');
});

async function killAndCheck(script: string, dir: string, kill: number): Promise<number> {
  await runAndKill(script, dir, Math.random() * 15);
  const text = await readFile(path.join(dir, 'state.json'), 'utf8');
  assert.notEqual(text, '', `empty after kill ${kill}`);
  const state = JSON.parse(text) as AppState;
  const n = sequenceNumberOf(state);
  assert.ok(n !== undefined, `no subscriptions after kill ${kill}`);
  assert.deepEqual(state, stateFor(n), `after kill ${kill} the file mixes states`);
  // Reopening reads it as is, warns about nothing, and clears any temp file the kill left.
  const log = memoryLogger();
  const store = await StateStore.open(dir, log);
  assert.deepEqual(store.state, stateFor(n));
  assert.deepEqual(log.lines.filter((line) => line.startsWith('WARN')), []);
  assert.deepEqual(await readdir(dir), ['state.json']);
  return n;
}

async function runAndKill(script: string, dir: string, delayMs: number): Promise<void> {
  const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before writing`)));
    });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL');
}
