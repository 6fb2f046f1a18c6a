// Red team: state.json as a dying SD card, a bad restore or a stranger leaves it. A value nested
// 200,000 deep opens (set aside, not a crash) and does not make every later save fail; a file of
// 100,000 subscriptions opens in well under the start-up budget; a state.json that is a symlink to
// another file is replaced, never written through; a state.lock that is a folder is named as such
// (not "another process keeps re-creating it"), and an empty or garbage one is taken over; a full card
// leaves no half-written lock file behind.
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { StateDirError, StateStore } from '../src/app/state.js';
import { memoryLogger } from '../src/log.js';
import { smallDisk } from './fakes/small-disk.js';

const DEEP = 200_000;
const deep = `${'['.repeat(DEEP)}${']'.repeat(DEEP)}`;

async function folder(t: TestContext, stateJson?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-redteam-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  if (stateJson !== undefined) await writeFile(join(dir, 'state.json'), stateJson);
  return dir;
}

const valid = (subscriptions: string) => `{"version":1,"subscriptions":[${subscriptions}],"motion":{"enabled":false},"portMapping":null}`;
const good = '{"chatId":42,"intervalMs":3600000,"anchorMs":0}';

for (const [name, text] of [
  ['a subscription nested 200,000 deep', valid(`${deep},${good}`)],
  ['a chatId nested 200,000 deep', valid(`{"chatId":${deep},"intervalMs":60000,"anchorMs":0},${good}`)],
  ['an unknown field nested 200,000 deep in a bad entry', valid(`{"chatId":1,"x":${deep}},${good}`)],
] as const) {
  test(`${name} is set aside, and saving still works`, { timeout: 20_000 }, async (t) => {
    const dir = await folder(t, text);
    const log = memoryLogger();
    const store = await StateStore.open(dir, log);
    t.after(() => store.close());
    assert.deepEqual(store.state.subscriptions.map((s) => s.chatId), [42], 'the good entry is kept');
    await store.update((draft) => {
      draft.motion.enabled = true;
    });
    const saved = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { motion: { enabled: boolean }; subscriptions: unknown[] };
    assert.equal(saved.motion.enabled, true);
    assert.equal(saved.subscriptions.length, 1);
    const rejected = (await readdir(dir)).filter((f) => f.startsWith('state.rejected-'));
    assert.equal(rejected.length, 1, 'the bad entry is kept aside in a file');
    assert.ok(log.lines.every((line) => line.length < 1000), 'no log line carries the whole value');
  });
}

test('a version nested 200,000 deep is an unreadable file, moved aside', { timeout: 20_000 }, async (t) => {
  const dir = await folder(t, `{"version":${deep}}`);
  const store = await StateStore.open(dir, memoryLogger());
  t.after(() => store.close());
  assert.deepEqual(store.state.subscriptions, []);
  assert.ok((await readdir(dir)).some((f) => f.startsWith('state.json.corrupt-')));
});

test('100,000 subscriptions open within 4 s', { timeout: 30_000 }, async (t) => {
  const subs = Array.from({ length: 100_000 }, (_, i) => `{"chatId":${i + 1},"intervalMs":60000,"anchorMs":0}`);
  // and one duplicate at the end, set aside
  const dir = await folder(t, valid([...subs, '{"chatId":7,"intervalMs":60000,"anchorMs":0}'].join(',')));
  const started = performance.now();
  const store = await StateStore.open(dir, memoryLogger());
  const took = performance.now() - started;
  t.after(() => store.close());
  assert.equal(store.state.subscriptions.length, 100_000);
  assert.ok(took < 4000, `opened in ${Math.round(took)} ms`);
});

test('a state.json that is a symlink is replaced by a file, its target left untouched', { timeout: 10_000 }, async (t) => {
  const dir = await folder(t);
  const target = join(dir, 'not-ours.txt');
  await writeFile(target, valid(good));
  await symlink(target, join(dir, 'state.json'));
  const store = await StateStore.open(dir, memoryLogger());
  t.after(() => store.close());
  await store.update((draft) => {
    draft.motion.enabled = true;
  });
  assert.equal(await readFile(target, 'utf8'), valid(good), 'the target is not written through the link');
  assert.equal((await lstat(join(dir, 'state.json'))).isSymbolicLink(), false);
});

test('a state.lock that is a folder stops start-up naming it, not blaming another process', { timeout: 10_000 }, async (t) => {
  const dir = await folder(t);
  await mkdir(join(dir, 'state.lock'));
  const error = await StateStore.open(dir, memoryLogger()).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof StateDirError, `a StateDirError (exit 78), not ${String(error)}`);
  assert.match(error.message, /state\.lock is a folder; it is not a telepi lock: move it away/);
  assert.doesNotMatch(error.message, /re-creating/);
});

for (const [name, text] of [['empty', ''], ['garbage', '\u0000{{{'], ['a pid that is not a number', '{"pid":"1"}']] as const) {
  test(`a state.lock that is ${name} is taken over`, { timeout: 10_000 }, async (t) => {
    const dir = await folder(t);
    await writeFile(join(dir, 'state.lock'), text);
    const store = await StateStore.open(dir, memoryLogger());
    t.after(() => store.close());
    assert.equal(JSON.parse(await readFile(join(dir, 'state.lock'), 'utf8')).pid, process.pid);
  });
}

test('on a full card, taking the lock leaves no half-written temp file behind', { timeout: 10_000 }, async (t) => {
  const disk = smallDisk(t, 64);
  if (disk === null) return;
  disk.fill();
  const log = memoryLogger();
  const store = await StateStore.open(disk.dir, log);
  t.after(() => store.close());
  assert.ok(log.lines.some((line) => /cannot lock .*full/.test(line)), 'runs without the lock, saying why');
  assert.deepEqual((await readdir(disk.dir)).filter((name) => name.startsWith('.state.lock.')), []);
});
