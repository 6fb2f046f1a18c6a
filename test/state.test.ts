import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { ConfigError } from '../src/app/config.js';
import { StateStore, StateWriteError, writeFileAtomic, type AppState } from '../src/app/state.js';
import { memoryLogger, silentLogger, type Logger } from '../src/log.js';
import { smallDisk } from './fakes/small-disk.js';
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

// Fixture writers are bundled with esbuild and run with plain node: `node --import tsx` costs ~0.35 s of
// CPU per start, and 50 starts would not fit the time budget. The code under test is the same.
const bundles = new Map<string, Promise<string>>();
function bundle(fixture: string): Promise<string> {
  let script = bundles.get(fixture);
  if (script === undefined) {
    const out = path.join(root, fixture.replace(/\.ts$/, '.mjs'));
    script = build({
      entryPoints: [path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', fixture)],
      bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, logLevel: 'silent',
    }).then(() => out);
    bundles.set(fixture, script);
  }
  return script;
}

const sample: AppState = {
  version: 1,
  subscriptions: [{ chatId: 42, intervalMs: 900_000, anchorMs: 1_700_000_000_000 }],
  motion: { enabled: true },
  portMapping: { externalPort: 54321, createdAtMs: 1_700_000_100_000 },
};

/** Opens a store and closes it (giving the folder's lock back) when the test ends. */
async function opened(t: TestContext, dir: string, log: Logger = silentLogger): Promise<StateStore> {
  const store = await StateStore.open(dir, log);
  t.after(() => store.close());
  return store;
}

/** Opens, reads and closes: what the next start would find. */
async function reopen(dir: string, log: Logger = silentLogger): Promise<Readonly<AppState>> {
  const store = await StateStore.open(dir, log);
  await store.close();
  return store.state;
}

test('a new state dir is created private and starts with the fresh state', async (t) => {
  const dir = path.join(await freshDir(), 'nested');
  const store = await opened(t, dir);
  assert.deepEqual(store.state, { version: 1, subscriptions: [], motion: { enabled: false }, portMapping: null });
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
});

test('state written by one store is read back by the next', async (t) => {
  const dir = await freshDir();
  const first = await StateStore.open(dir, silentLogger);
  await first.update((draft) => Object.assign(draft, structuredClone(sample)));
  await first.close();
  const second = await opened(t, dir);
  assert.deepEqual(second.state, sample);
  assert.equal((await stat(path.join(dir, 'state.json'))).mode & 0o777, 0o600);
});

test('a live message id is kept with its subscription; one that is not a message id costs only itself', async (t) => {
  const dir = await freshDir();
  const subs = [
    { chatId: 42, intervalMs: 900_000, anchorMs: 1_700_000_000_000, liveMessageId: 77 },
    { chatId: 43, intervalMs: 900_000, anchorMs: 1_700_000_000_000, liveMessageId: 'x' },
    { chatId: 44, intervalMs: 900_000, anchorMs: 1_700_000_000_000, liveMessageId: -3 },
  ];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, 'state.json'), JSON.stringify({ ...sample, subscriptions: subs }));
  const log = memoryLogger();
  const store = await opened(t, dir, log);
  assert.deepEqual(store.state.subscriptions, [
    { chatId: 42, intervalMs: 900_000, anchorMs: 1_700_000_000_000, liveMessageId: 77 },
    { chatId: 43, intervalMs: 900_000, anchorMs: 1_700_000_000_000 },
    { chatId: 44, intervalMs: 900_000, anchorMs: 1_700_000_000_000 },
  ]);
  assert.equal(log.lines.filter((line) => line.includes('set aside')).length, 0, 'no subscription set aside for it');
  await assert.rejects(store.update((draft) => Object.assign(draft.subscriptions[0] as object, { liveMessageId: 0 })), /liveMessageId 0 is not a message id/);
});

test('the state is frozen: changes go through update', async (t) => {
  const store = await opened(t, await freshDir());
  assert.throws(() => { (store.state as AppState).motion.enabled = true; }, TypeError);
});

test('a mutator that throws, or an out-of-bounds value, leaves the state and the file unchanged', async (t) => {
  const store = await opened(t, await freshDir());
  await store.update((draft) => { draft.motion.enabled = true; });
  await assert.rejects(store.update((draft) => { draft.motion.enabled = false; throw new Error('no'); }), /no/);
  assert.equal(store.state.motion.enabled, true);
  for (const bad of [{ chatId: 1, intervalMs: -5, anchorMs: 0 }, { chatId: 1, intervalMs: 1, anchorMs: 0 }, { chatId: 1, intervalMs: 60_000, anchorMs: 1e300 }]) {
    await assert.rejects(store.update((draft) => { draft.subscriptions.push(bad); }), /bad subscription/);
  }
  assert.deepEqual(store.state.subscriptions, []);
  assert.equal(JSON.parse(await readFile(store.file, 'utf8')).motion.enabled, true);
});

async function expectMovedAside(contents: string, expectedWarning: RegExp): Promise<void> {
  const dir = await freshDir();
  await reopen(dir);
  await writeFile(path.join(dir, 'state.json'), contents);
  const log = memoryLogger();
  const store = await StateStore.open(dir, log);
  try {
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
  } finally {
    await store.close();
  }
  assert.equal((await reopen(dir)).motion.enabled, true);
}

test('a file that is not JSON at all is moved aside with a warning and telepi starts fresh', async () => {
  await expectMovedAside('{"version":1,"subscriptions":[', /is not valid JSON; moved it to .*state\.json\.corrupt-/);
  await expectMovedAside('', /is empty/);
  await expectMovedAside('[1,2]', /does not hold an object/);
  await expectMovedAside(JSON.stringify({ ...sample, version: 'one' }), /unknown version "one"/);
});

// Issue 10 row 5: one bad entry used to move the whole file aside, and every chat's reports with it.
test('a bad entry is set aside to state.rejected-*.json and named in the log; every other entry is kept', async (t) => {
  const dir = await freshDir();
  await reopen(dir);
  const good = { chatId: -100, intervalMs: 3_600_000, anchorMs: 1_700_000_000_000 };
  const badInterval = { chatId: 77, intervalMs: 'soon', anchorMs: 1_700_000_000_000 };
  const duplicate = { ...good, intervalMs: 60_000 };
  await writeFile(path.join(dir, 'state.json'), JSON.stringify({ ...sample, subscriptions: [good, badInterval, duplicate, 'x'], motion: null }));
  const log = memoryLogger();
  const store = await opened(t, dir, log);
  assert.deepEqual(store.state.subscriptions, [good]);
  assert.deepEqual(store.state.motion, { enabled: false }, 'a bad motion entry falls back to off');
  assert.deepEqual(store.state.portMapping, sample.portMapping);
  assert.deepEqual(store.setAside.map((s) => [s.where, s.chatId]), [['subscriptions[1]', 77], ['subscriptions[2]', null], ['subscriptions[3]', null], ['motion', null]]);
  const warnings = log.lines.filter((line) => line.startsWith('WARN'));
  assert.equal(warnings.length, 4);
  assert.match(warnings[0] ?? '', /subscriptions\[1\] set aside \(intervalMs "soon" is not from 1m to 24h\); kept in .*state\.rejected-.*\.json/);
  assert.ok(store.setAsideFile !== null);
  const kept = JSON.parse(await readFile(store.setAsideFile, 'utf8')) as { entries: Array<{ entry: unknown }> };
  assert.deepEqual(kept.entries.map((e) => e.entry), [badInterval, duplicate, 'x', null], 'nothing set aside is lost');
  // Written back clean: the next start finds nothing to set aside, so no chat is told twice.
  await store.close();
  const next = await opened(t, dir);
  assert.deepEqual(next.setAside, []);
  assert.deepEqual(next.state.subscriptions, [good]);
});

// Issue 10 row 4: an absurd but finite anchor or a tiny interval used to pass and make the scheduler spin.
test('every number is bounded: absurd anchors, tiny or huge intervals, fractional or zero chat ids are set aside', async (t) => {
  const dir = await freshDir();
  await reopen(dir);
  const anchor = 1_700_000_000_000;
  const absurd = [
    { chatId: 1, intervalMs: 60_000, anchorMs: 1e300 },
    { chatId: 2, intervalMs: 60_000, anchorMs: -1e300 },
    { chatId: 3, intervalMs: 1, anchorMs: anchor },
    { chatId: 4, intervalMs: 59_999, anchorMs: anchor },
    { chatId: 5, intervalMs: 86_400_001, anchorMs: anchor },
    { chatId: 6, intervalMs: 60_000.5, anchorMs: anchor },
    { chatId: 1.5, intervalMs: 60_000, anchorMs: anchor },
    { chatId: 0, intervalMs: 60_000, anchorMs: anchor },
    { chatId: 2 ** 60, intervalMs: 60_000, anchorMs: anchor },
  ];
  const fine = [{ chatId: 9, intervalMs: 60_000, anchorMs: 0 }, { chatId: -10, intervalMs: 86_400_000, anchorMs: anchor }];
  await writeFile(path.join(dir, 'state.json'), JSON.stringify({ ...sample, subscriptions: [...absurd, ...fine] }));
  const store = await opened(t, dir);
  assert.deepEqual(store.state.subscriptions, fine);
  assert.equal(store.setAside.length, absurd.length);
});

test('a UTF-8 byte order mark, as an editor may add, is read past', async (t) => {
  const dir = await freshDir();
  await reopen(dir);
  await writeFile(path.join(dir, 'state.json'), `\uFEFF${JSON.stringify(sample)}`);
  const log = memoryLogger();
  assert.deepEqual((await opened(t, dir, log)).state, sample);
  assert.deepEqual(log.lines.filter((line) => line.startsWith('WARN')), []);
});

test('a state file from a newer telepi stops start-up with exit 78 and is left untouched', async () => {
  const dir = await freshDir();
  await reopen(dir);
  const text = JSON.stringify({ ...sample, version: 2, newField: [1] });
  await writeFile(path.join(dir, 'state.json'), text);
  await assert.rejects(StateStore.open(dir, silentLogger), (error: ConfigError) => {
    assert.equal(error.exitCode, 78);
    assert.match(error.message, /^TELEPI_STATE_DIR: .*state\.json was written by a newer telepi \(state version 2; this one reads 1\); upgrade telepi/);
    return true;
  });
  assert.equal(await readFile(path.join(dir, 'state.json'), 'utf8'), text);
  assert.deepEqual((await readdir(dir)).sort(), ['state.json'], 'nothing moved aside, and the lock given back');
});

// Issue 10 row 12: both used to end in a stack trace and exit 1, which systemd restarts forever.
test('a state folder that is a file, or a state.json that is a folder, is a one-line configuration error (exit 78)', async () => {
  const dir = await freshDir();
  await mkdir(dir);
  const file = path.join(dir, 'not-a-folder');
  await writeFile(file, 'x');
  for (const target of [file, path.join(file, 'below')]) {
    await assert.rejects(StateStore.open(target, silentLogger), (error: ConfigError) =>
      error.exitCode === 78 && /^TELEPI_STATE_DIR: .* is a file, not a folder; point TELEPI_STATE_DIR at a folder$/.test(error.message));
  }
  const other = await freshDir();
  await mkdir(path.join(other, 'state.json'), { recursive: true });
  await assert.rejects(StateStore.open(other, silentLogger), (error: ConfigError) =>
    error.exitCode === 78 && /state\.json is a folder, not a file; move it away/.test(error.message));
});

test('updates run in call order, their writes one at a time; state changes only once each is on disk', async (t) => {
  const dir = await freshDir();
  const store = await opened(t, dir);
  const resolved: number[] = [];
  const fileSeen: number[] = [];
  const updates = Array.from({ length: 25 }, (_, i) =>
    store.update((draft) => { draft.subscriptions.push({ chatId: i + 1, intervalMs: 60_000, anchorMs: i }); })
      .then(async () => {
        resolved.push(i);
        assert.ok(store.state.subscriptions.length >= i + 1, 'resolved before memory changed');
        const onDisk = JSON.parse(await readFile(store.file, 'utf8')) as AppState;
        fileSeen.push(onDisk.subscriptions.length - 1);
      }));
  assert.equal(store.state.subscriptions.length, 0, 'memory changed before anything was written');
  await Promise.all(updates);
  await store.flush();
  assert.deepEqual(resolved, [...Array(25).keys()]);
  // A resolved update's state (or a later one) is on disk, never an earlier one.
  fileSeen.forEach((seen, i) => assert.ok(seen >= i, `after update ${i} the file held update ${seen}`));
  const final = JSON.parse(await readFile(store.file, 'utf8')) as AppState;
  assert.deepEqual(final.subscriptions.map((s) => s.chatId), Array.from({ length: 25 }, (_, i) => i + 1));
  assert.deepEqual((await readdir(dir)).sort(), ['state.json', 'state.lock'], 'a temp file was left behind');
});

// Issue 10 row 6: a failed write used to leave memory changed, and the next unrelated write saved it.
test('a failed write rejects with the path, changes nothing in memory, and a later write does not carry it', async (t) => {
  const dir = await freshDir();
  const store = await opened(t, dir);
  await store.update((draft) => { draft.subscriptions.push({ chatId: 5, intervalMs: 60_000, anchorMs: 0 }); });
  await rm(dir, { recursive: true });
  await assert.rejects(store.update((draft) => { draft.subscriptions = []; }), (error: StateWriteError) =>
    error instanceof StateWriteError && error.message.includes(`cannot write ${store.file}`) && /state folder is gone/.test(error.userMessage));
  assert.equal(store.state.subscriptions.length, 1, 'the failed /cancel changed memory');
  await mkdir(dir);
  await store.update((draft) => { draft.motion.enabled = true; });
  const onDisk = JSON.parse(await readFile(store.file, 'utf8')) as AppState;
  assert.deepEqual(onDisk.subscriptions.map((s) => s.chatId), [5], 'the failed change was saved by a later write');
  assert.equal(onDisk.motion.enabled, true);
});

// Issue 10 row 3: a read-only or full card must give an answer a chat can show, never a crash.
test('a read-only or full SD card: the update rejects with a plain sentence and the state is unchanged', async (t) => {
  for (const [make, words] of [['readOnly', /^Could not save: the SD card is read-only/], ['fill', /^Could not save: the SD card is full\.$/]] as const) {
    const disk = smallDisk(t);
    if (disk === null) return;
    const store = await StateStore.open(disk.dir, silentLogger);
    await store.update((draft) => { draft.motion.enabled = true; });
    disk[make]();
    await assert.rejects(store.update((draft) => { draft.motion.enabled = false; }), (error: StateWriteError) =>
      error instanceof StateWriteError && words.test(error.userMessage));
    assert.equal(store.state.motion.enabled, true);
    assert.equal(JSON.parse(await readFile(store.file, 'utf8')).motion.enabled, true, 'the file was damaged');
    await store.close();
  }
});

test('a damaged state.json on a read-only card still opens: nothing is lost, the set-aside entries are kept once the card works', async (t) => {
  const disk = smallDisk(t);
  if (disk === null) return;
  const good = { chatId: 5, intervalMs: 60_000, anchorMs: 0 };
  const bad = { chatId: 6, intervalMs: 1, anchorMs: 0 };
  const text = JSON.stringify({ ...sample, subscriptions: [good, bad] });
  await writeFile(path.join(disk.dir, 'state.json'), text);
  disk.readOnly();
  const log = memoryLogger();
  const store = await StateStore.open(disk.dir, log);
  assert.deepEqual(store.state.subscriptions, [good]);
  assert.match(log.lines.join('\n'), /cannot lock .*read-only.*changes will not be saved/);
  assert.match(log.lines.join('\n'), /subscriptions\[1\] skipped \(intervalMs 1 is not from 1m to 24h\); it stays in the file/);
  assert.equal(await readFile(path.join(disk.dir, 'state.json'), 'utf8'), text);
  await assert.rejects(store.update((draft) => { draft.motion.enabled = false; }), StateWriteError);
  // The card works again (a remount): the first write keeps the bad entry aside before state.json drops it.
  execFileSync('mount', ['-o', 'remount,rw', disk.dir]);
  await store.update((draft) => { draft.motion.enabled = false; });
  const aside = (await readdir(disk.dir)).find((name) => name.startsWith('state.rejected-'));
  assert.ok(aside !== undefined, 'the set-aside entry was lost');
  assert.deepEqual((JSON.parse(await readFile(path.join(disk.dir, aside), 'utf8')) as { entries: Array<{ entry: unknown }> }).entries.map((e) => e.entry), [bad]);
  await store.close();
  await writeFile(path.join(disk.dir, 'state.json'), '{"version":1,"subscriptions":[');
  disk.readOnly();
  const fresh = await StateStore.open(disk.dir, log);
  assert.deepEqual(fresh.state.subscriptions, []);
  assert.match(log.lines.at(-1) ?? '', /is not valid JSON, and it cannot be moved aside \(the SD card is read-only/);
  await fresh.close();
});

// Issue 10 row 14: two processes on one folder used to interleave writes and lose confirmed subscriptions.
test('a second process on the same folder is refused (exit 78, naming the holder); after kill -9 the lock is taken over', async (t) => {
  const dir = await freshDir();
  const script = await bundle('subscription-writer.ts');
  const child = spawn(process.execPath, [script, dir, '1'], { stdio: ['ignore', 'pipe', 'inherit'], env: {} });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  await assert.rejects(StateStore.open(dir, silentLogger), (error: ConfigError) =>
    error.exitCode === 78 && error.message.includes(`is in use by another telepi (pid ${child.pid})`) && /systemctl stop telepi/.test(error.message));
  // In the same process too: a second store would write over the first one's updates.
  child.kill('SIGKILL');
  await exited;
  const log = memoryLogger();
  const store = await opened(t, dir, log);
  assert.match(log.lines.join('\n'), new RegExp(`left by pid ${child.pid}, which is no longer running.*taking it over`));
  assert.ok(store.state.subscriptions.length > 0, 'the writer wrote nothing');
  await assert.rejects(StateStore.open(dir, silentLogger), /in use by another telepi \(pid \d+\)/);
  await store.close();
  await reopen(dir);
  assert.ok(!(await readdir(dir)).includes('state.lock'), 'the lock was not given back at close');
});

test('writeFileAtomic replaces a file whole and leaves no temp file', async () => {
  const dir = await freshDir();
  await mkdir(dir);
  const file = path.join(dir, 'other.txt');
  await writeFileAtomic(file, 'first');
  await writeFileAtomic(file, Buffer.from('second'));
  assert.equal(await readFile(file, 'utf8'), 'second');
  assert.deepEqual((await readdir(dir)).sort(), ['other.txt']);
});

test('temp files left by an interrupted write are removed at open', async () => {
  const dir = await freshDir();
  await mkdir(dir);
  await writeFile(path.join(dir, '.state.json.999.abcd.tmp'), '{"version":');
  await writeFile(path.join(dir, '.state.lock.99999999.abcd'), '{}');
  await writeFile(path.join(dir, 'unrelated.tmp'), 'keep');
  await reopen(dir);
  assert.deepEqual((await readdir(dir)).sort(), ['unrelated.tmp']);
});

test('state.json survives SIGKILL at random moments: always one whole written state', async () => {
  const script = await bundle('state-writer.ts');
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
  await store.close();
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
