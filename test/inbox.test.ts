// The durable inbox on its own and under a failing disk: what survives a torn or damaged file, how it
// shrinks as handlers finish, and that a full or read-only card costs fairness, never an update.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Update } from '@grammyjs/types';
import { Bot } from '../src/bot.js';
import type { Msg } from '../src/glance.js';
import { Inbox, inboxFileName } from '../src/inbox.js';
import { memoryLogger } from '../src/log.js';
import { smallDisk } from './fakes/small-disk.js';
import { eventually, harness, TOKEN } from './support.js';

const update = (id: number, text = `m${id}`): Update =>
  ({ update_id: id, message: { message_id: id, date: 1, chat: { id: 1, type: 'private', first_name: 'x' }, text } }) as Update;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-inbox-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a restart replays the updates not marked done, skipping a damaged line (named) and a torn last line', async (t) => {
  const dir = await tempDir(t);
  const lines = [JSON.stringify({ next: 10 }), JSON.stringify(update(10)), JSON.stringify(update(11)), 'not json {', JSON.stringify({ done: [10] }),
    JSON.stringify(update(12)), JSON.stringify(update(13)).slice(0, 25)];
  await writeFile(join(dir, inboxFileName), lines.join('\n'));
  const log = memoryLogger();
  const inbox = await Inbox.open(dir, log);
  t.after(() => inbox.close());
  assert.deepEqual(inbox.replay().map((u) => u.update_id), [11, 12]);
  assert.equal(inbox.nextId, 10);
  assert.ok(log.lines.some((l) => l.startsWith('WARN') && l.includes(`${inboxFileName}: skipped unreadable line(s) 4`)), log.lines.join('\n'));
  assert.ok(log.lines.some((l) => l.includes('ignored a last line cut short by a crash')));
  const rewritten = (await readFile(join(dir, inboxFileName), 'utf8')).trim().split('\n');
  assert.equal(rewritten.length, 3, 'opening rewrote the file with the next id and the two unfinished updates');
});

test('the file shrinks back to the unfinished updates as handlers finish', async (t) => {
  const dir = await tempDir(t);
  const inbox = await Inbox.open(dir, memoryLogger());
  t.after(() => inbox.close());
  const text = 'x'.repeat(500);
  for (let batch = 0; batch < 30; batch++) {
    for (let i = 0; i < 100; i++) inbox.stage(update(batch * 100 + i + 1, text));
    assert.equal(await inbox.commit(batch * 100 + 101), true);
  }
  const full = (await stat(join(dir, inboxFileName))).size;
  assert.ok(full > 1_500_000, `${full} bytes with 3,000 updates`);
  for (let id = 1; id <= 3000; id++) if (id !== 1234 && id !== 2999) inbox.finished(id);
  await inbox.close();
  const left = (await stat(join(dir, inboxFileName))).size;
  assert.ok(left < full / 2, `compacted to ${left} bytes`);
  t.diagnostic(`3,000 updates of ~600 bytes: ${inbox.written.bytes} bytes written and ${inbox.written.fsyncs} fsyncs (30 batches), file ${full} → ${left} bytes`);
  const reopened = await Inbox.open(dir, memoryLogger());
  t.after(() => reopened.close());
  assert.deepEqual(reopened.replay().map((u) => u.update_id), [1234, 2999]);
  assert.equal(reopened.nextId, 3001);
});

test('a full card: the inbox says so once and the loop confirms only finished updates; nothing is lost, and it recovers', async (t) => {
  const disk = smallDisk(t, 256);
  if (disk === null) return;
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  let release = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  let releaseLast = () => {};
  const lastGate = new Promise<void>((resolve) => (releaseLast = resolve));
  const loop = h.loop(bot, async (msg: Msg) => {
    const text = 'text' in msg ? (msg.text ?? '').trim() : '';
    seen.push(text);
    if (text === 'held') await gate;
    // Slow, so the loop writes it to the inbox (the inbox is written only for what is slow or queued).
    if (text === 'recovered') await lastGate;
  }, { inboxDir: disk.dir });
  h.emu.pushText('first');
  await eventually(() => seen.length === 1 && h.emu.queuedUpdates === 0);
  disk.fill();
  // Longer than a page, so the write needs a block the full tmpfs does not have.
  const held = h.emu.pushText(`held${' '.repeat(8192)}`);
  h.emu.pushText('after');
  await eventually(() => seen.length === 3);
  await eventually(() => h.log.lines.some((l) => l.startsWith('ERROR the inbox in')), 5000, 'the failure logged');
  // The poll that fetches one more message carries the offset the loop considers safe.
  h.emu.pushText('probe');
  await eventually(() => seen.length === 4);
  assert.equal(h.emu.confirmedOffset <= held.update_id, true, 'an update not on disk is not confirmed before its handler finished');
  release();
  await eventually(() => h.emu.confirmedOffset > held.update_id + 1 || h.emu.queuedUpdates === 0, 5000, 'confirmed once finished');
  await unlink(join(disk.dir, 'filler'));
  h.emu.pushText('recovered');
  await eventually(() => h.log.lines.some((l) => l.includes('the inbox can be written again')), 5000, 'the recovery logged');
  releaseLast();
  assert.deepEqual(seen, ['first', 'held', 'after', 'probe', 'recovered']);
  assert.equal(h.log.lines.filter((l) => l.startsWith('ERROR the inbox in')).length, 1, 'said once');
  assert.equal(loop.running, true);
});

test('an inbox folder that cannot be used: the loop says why and runs without it', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'a-file');
  await writeFile(file, 'x');
  const h = await harness(t);
  const seen: string[] = [];
  h.loop(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }), (msg: Msg) => seen.push('text' in msg ? (msg.text ?? '') : ''), { inboxDir: join(file, 'inbox') });
  h.emu.pushText('still works');
  await eventually(() => seen.length === 1);
  assert.ok(h.log.lines.some((l) => l.startsWith('ERROR the inbox in') && l.includes('running without it')), h.log.lines.join('\n'));
});

test('an inbox left by another bot or server is set aside: its ids do not shadow this bot\'s updates', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, inboxFileName), `${JSON.stringify({ next: 1_000_000, for: 'another-bot' })}\n${JSON.stringify(update(999_999, 'theirs'))}\n`);
  const h = await harness(t);
  const seen: string[] = [];
  h.loop(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }), (msg: Msg) => seen.push('text' in msg ? (msg.text ?? '') : ''), { inboxDir: dir });
  h.emu.pushText('mine');
  await eventually(() => seen.length === 1);
  assert.deepEqual(seen, ['mine'], 'the other bot\'s update was not replayed, and this one\'s id 1 was not taken as seen');
  assert.ok(h.log.lines.some((l) => l.startsWith('WARN') && l.includes('belongs to another bot or Bot API server: set aside as')));
  assert.ok((await readdir(dir)).some((name) => name.startsWith(`${inboxFileName}.other-`)), 'kept aside, not deleted');
});

test('updates whose handlers finish quickly are never written: the card pays only for what is slow or queued', async (t) => {
  const dir = await tempDir(t);
  const h = await harness(t);
  const seen: string[] = [];
  let releaseSlow = () => {};
  const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
  h.loop(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }), async (msg: Msg) => {
    const text = 'text' in msg ? (msg.text ?? '') : '';
    seen.push(text);
    if (text === 'slow') await slowGate;
  }, { inboxDir: dir });
  for (let i = 0; i < 300; i++) h.emu.pushText(`quick ${i}`, { chatId: 100 + (i % 30) });
  await eventually(() => seen.length === 300 && h.emu.queuedUpdates === 0, 10_000, '300 quick updates handled and confirmed');
  const lines = async () => (await readFile(join(dir, inboxFileName), 'utf8')).split('\n').filter((line) => line.includes('"update_id"'));
  assert.equal((await lines()).length, 0, 'no quick update was written to the inbox');
  // A slow one is: a crash while it runs must not lose it, and the loop goes on past it.
  const slow = h.emu.pushText('slow', { chatId: 7 });
  h.emu.pushText('after the slow one', { chatId: 8 });
  for (const startedAt = performance.now(); !(await lines()).some((line) => line.includes(`"update_id":${slow.update_id}`));) {
    if (performance.now() - startedAt > 5000) assert.fail('the slow update never reached the inbox');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await eventually(() => seen.includes('after the slow one'), 5000, 'another chat answered meanwhile');
  releaseSlow();
});
