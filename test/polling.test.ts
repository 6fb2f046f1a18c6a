import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import type { Message } from '@grammyjs/types';
import { Bot } from '../src/bot.js';
import { undici } from '../src/undici.js';
import type { Msg } from '../src/glance.js';
import { retryPolicy } from '../src/polling.js';
import { NetworkError, TelegramError } from '../src/errors.js';
import { eventually, harness, TOKEN } from './support.js';

const textOf = (msg: Msg) => ('text' in msg ? msg.text : undefined);

test('the loop hands every update to the handler in order', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  for (let i = 0; i < 250; i++) h.emu.pushText(`m${i}`, { chatId: 1 + (i % 3) });
  await eventually(() => seen.length === 250);
  assert.deepEqual(seen, Array.from({ length: 250 }, (_, i) => `m${i}`));
});

test('edited messages, channel posts and callback queries reach the handler', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const kinds: string[] = [];
  const { flavor } = await import('../src/glance.js');
  h.loop(bot, (msg: Msg) => kinds.push(flavor(msg)));
  h.emu.pushText('a');
  h.emu.pushText('b', { kind: 'edited_message' });
  h.emu.pushText('c', { kind: 'channel_post', chatId: -100, chatType: 'channel' });
  h.emu.pushText('d', { kind: 'edited_channel_post', chatId: -100, chatType: 'channel' });
  h.emu.pushCallbackQuery({ data: 'yes' });
  await eventually(() => kinds.length === 5);
  assert.deepEqual(kinds, ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'callback_query']);
  const poll = h.emu.callsOf('getUpdates')[0];
  assert.deepEqual(poll?.params.allowed_updates, ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'callback_query']);
});

test('a handler that throws or rejects is logged and the loop goes on', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  h.loop(bot, async (msg: Msg) => {
    const text = textOf(msg) ?? '';
    seen.push(text);
    if (text === 'sync') throw new Error('boom sync');
    if (text === 'async') return Promise.reject(new Error('boom async'));
  });
  h.emu.pushText('sync');
  h.emu.pushText('async');
  h.emu.pushText('after');
  await eventually(() => seen.includes('after'));
  await eventually(() => h.log.lines.filter((l) => l.includes('handler failed')).length === 2);
  assert.ok(h.log.lines.some((l) => l.includes('boom sync')));
  assert.ok(h.log.lines.some((l) => l.includes('boom async')));
});

test('messageLoop without a handler uses handle(), and says so when there is none', async (t) => {
  const h = await harness(t);
  const seen: string[] = [];
  class Mine extends Bot {
    override handle(msg: Msg) {
      seen.push(textOf(msg) ?? '');
    }
  }
  h.loop(new Mine(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  h.emu.pushText('hello');
  await eventually(() => seen.length === 1);
  const plain = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  assert.throws(() => plain.messageLoop(), /no handler: pass one to messageLoop\(\) or override handle\(\)/);
});

for (const fault of [
  { kind: 'reset' },
  { kind: 'status', status: 500 },
  { kind: 'status', status: 502 },
  { kind: 'malformed' },
  { kind: 'truncated' },
  { kind: 'conflict' },
  { kind: 'retryAfter', seconds: 0 },
] as const) {
  test(`after ${fault.kind}${'status' in fault ? ` ${fault.status}` : ''} on getUpdates the loop goes on and loses no update`, async (t) => {
    const h = await harness(t);
    const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
    const seen: string[] = [];
    h.emu.pushText('before');
    h.emu.injectFault(fault, { method: 'getUpdates', count: 3 });
    const loop = h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
    h.emu.pushText('after');
    await eventually(() => seen.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, ['before', 'after']);
    assert.equal(loop.running, true);
    assert.ok(h.log.lines.some((l) => l.includes('getUpdates failed')), 'the fault was logged');
  });
}

test('429 waits retry_after seconds before polling again', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  h.emu.injectFault({ kind: 'retryAfter', seconds: 1 }, { method: 'getUpdates' });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  h.emu.pushText('x');
  await eventually(() => seen.length === 1, 5000);
  const polls = h.emu.callsOf('getUpdates');
  assert.ok((polls[1]?.atMs ?? 0) - (polls[0]?.atMs ?? 0) >= 950, 'the second poll came after retry_after');
  assert.ok(h.log.lines.some((l) => l.includes('retrying after 1 s')));
});

test('409 Conflict is explained once, however often it repeats', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  h.emu.injectFault({ kind: 'conflict' }, { method: 'getUpdates', count: 4 });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  h.emu.pushText('x');
  await eventually(() => seen.length === 1);
  assert.equal(h.log.lines.filter((l) => l.includes('another program is receiving')).length, 1);
});

test('a hanging getUpdates is cut by the client-side timeout and the loop recovers within the margin', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''), { timeoutSeconds: 1, requestMarginMs: 300 });
  await h.emu.waitForCall('getUpdates');
  // The next poll hangs as if the network dropped it (a 30 s hang is the same: the client gives up first).
  h.emu.injectFault({ kind: 'hang' }, { method: 'getUpdates' });
  await eventually(() => h.emu.callsOf('getUpdates').length >= 2, 3000);
  const hungAt = performance.now();
  h.emu.pushText('through');
  await eventually(() => seen.length === 1, 5000);
  const recoveryMs = performance.now() - hungAt;
  assert.ok(recoveryMs < 1000 + 300 + 500, `recovered in ${recoveryMs.toFixed(0)} ms`);
  assert.ok(h.log.lines.some((l) => l.includes('client-side timeout')));
});

test('a rejected token stops the loop with a clear error, and the token is never logged', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN.replace('AAH', 'BBH'), { apiRoot: h.emu.apiRoot, log: h.log });
  const loop = h.loop(bot, () => {});
  await assert.rejects(loop.done, /token was rejected \(401 Unauthorized\): check TELEGRAM_BOT_TOKEN/);
  assert.equal(loop.running, false);
  for (const line of h.log.lines) assert.ok(!line.includes('BBH-distinctive'), line);
});

/** An undici Pool whose first `failures` connections fail with `error()`, then connect for real. */
function failingPool(t: TestContext, origin: string, failures: number, error: () => Error) {
  const { Pool } = undici();
  const pool = new Pool(origin, {
    connect(options, callback) {
      if (failures-- > 0) {
        callback(error(), null);
        return;
      }
      const socket = connect({ host: options.hostname, port: Number(options.port) });
      socket.once('connect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, null));
    },
  });
  t.after(() => pool.close());
  return pool;
}

test('a DNS failure from an injected dispatcher backs off and recovers', async (t) => {
  const h = await harness(t);
  // The lowest seam of the transport: the pool's connector, where a name lookup would fail.
  const pool = failingPool(t, h.emu.apiRoot, 2, () => Object.assign(new Error('getaddrinfo ENOTFOUND api.telegram.org'), { code: 'ENOTFOUND' }));
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, dispatcher: pool });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  h.emu.pushText('resolved');
  await eventually(() => seen.length === 1);
  assert.equal(h.log.lines.filter((l) => l.includes('ENOTFOUND')).length, 2);
});

test('stop() confirms the offset, so a new loop starts after the last handled update', async (t) => {
  const h = await harness(t);
  const first = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  const loop = h.loop(first, (msg: Msg) => seen.push(`1:${textOf(msg)}`));
  h.emu.pushText('a');
  h.emu.pushText('b');
  await eventually(() => seen.length === 2);
  await loop.stop();
  assert.equal(h.emu.queuedUpdates, 0, 'the handled updates were confirmed');
  h.emu.pushText('c');
  const second = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(second, (msg: Msg) => seen.push(`2:${textOf(msg)}`));
  await eventually(() => seen.length === 3);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, ['1:a', '1:b', '2:c']);
});

test('delivery is at least once: after a crash, unconfirmed updates come again', async (t) => {
  const h = await harness(t);
  const crashed = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  // A crash: the updates were fetched and handed out, but no later getUpdates confirmed them.
  const updates = await crashed.getUpdates({ timeout: 0 });
  assert.equal(updates.length, 0);
  h.emu.pushText('a');
  const fetched = await crashed.getUpdates({ timeout: 0 });
  assert.equal(fetched.length, 1);
  const seen: string[] = [];
  h.loop(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }), (msg: Msg) => seen.push(textOf(msg) ?? ''));
  await eventually(() => seen.length === 1);
  assert.deepEqual(seen, ['a']);
});

test('stop() waits for running handlers up to the deadline', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  let finished = 0;
  const loop = h.loop(bot, async () => {
    await new Promise((r) => setTimeout(r, 100));
    finished++;
  });
  h.emu.pushText('slow');
  await eventually(() => bot.runningTasks.size === 1);
  await loop.stop();
  assert.equal(finished, 1, 'stop waited for the handler');
  // The handler finished after the last poll: only stop's own getUpdates can tell the server.
  assert.equal(h.emu.queuedUpdates, 0, 'stop confirmed the update its handler finished while stopping');

  const stuck = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  let release: () => void = () => {};
  const stuckLoop = h.loop(stuck, () => new Promise<void>((r) => (release = r)));
  h.emu.pushText('stuck');
  await eventually(() => stuck.runningTasks.size === 1);
  const started = performance.now();
  await stuckLoop.stop({ deadlineMs: 100 });
  assert.ok(performance.now() - started < 1000, 'stop did not wait past its deadline');
  assert.ok(h.log.lines.some((l) => l.includes('still running after 100 ms')));
  release();
  assert.equal(h.emu.queuedUpdates, 1, 'the unfinished update stays unconfirmed: it comes again after a restart');
});

test('the retry policy backs off exponentially with jitter and never beyond the cap', () => {
  const options = { initialMs: 100, capMs: 2000 };
  const network = new NetworkError('getUpdates', 'network', 'reset');
  const low = (attempt: number) => retryPolicy(network, attempt, { ...options, random: () => 0 });
  const high = (attempt: number) => retryPolicy(network, attempt, { ...options, random: () => 0.999 });
  const delays = [0, 1, 2, 3, 4, 5, 10, 50].map((a) => { const d = high(a); return d.retry ? d.delayMs : -1; });
  assert.ok(delays.every((d, i) => i === 0 || d >= (delays[i - 1] as number)), `grows: ${delays}`);
  assert.ok(delays.every((d) => d <= 2000), `capped: ${delays}`);
  const floor = low(3);
  assert.ok(floor.retry && floor.delayMs === 400, 'jitter spans the upper half of the window');
  const fatal = retryPolicy(new TelegramError('getUpdates', 401, 'Unauthorized'), 0, { ...options, random: Math.random });
  assert.equal(fatal.retry, false);
  const wait = retryPolicy(new TelegramError('getUpdates', 429, 'Too Many Requests', { retry_after: 7 }), 0, { ...options, random: Math.random });
  assert.ok(wait.retry && wait.delayMs === 7000);
  void ({} as Message);
});

test('a handler stuck on one update holds the confirmation only for stuckAfterMs, and the log names the update', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => {
    const text = textOf(msg) ?? '';
    seen.push(text);
    if (text === 'stuck') return new Promise(() => {});
  }, { stuckAfterMs: 150, limit: 2, stopDeadlineMs: 10 });
  const stuck = h.emu.pushText('stuck');
  for (let i = 0; i < 8; i++) h.emu.pushText(`m${i}`);
  await eventually(() => seen.length === 9, 5000);
  await eventually(() => h.emu.confirmedOffset > stuck.update_id, 5000, 'the offset moved past the stuck update');
  assert.ok(h.log.lines.some((l) => l.includes(`update ${stuck.update_id} is still unfinished after 150 ms`)), 'the log names the update');
});

for (const [body, what] of [
  ['{"ok":true}', /the result is missing, not a list of updates/],
  ['{"ok":true,"result":{}}', /the result is an object, not a list/],
  ['{"ok":true,"result":null}', /the result is null, not a list/],
  ['{"ok":true,"result":[null]}', /result\[0\] is null, not an update/],
  ['{"ok":true,"result":[{"update_id":"7"}]}', /result\[0\]\.update_id is the string "7", not a whole number/],
  ['{"ok":true,"result":[{"update_id":-1}]}', /update_id is the number -1/],
  ['{"ok":true,"result":"[]"}', /the result is the string/],
] as const) {
  test(`an answer that is not an update list (${body}) is a fault: logged with what was wrong, retried, nothing lost`, async (t) => {
    const h = await harness(t);
    const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
    const seen: string[] = [];
    h.emu.pushText('before');
    h.emu.injectFault({ kind: 'answer', body }, { method: 'getUpdates', count: 2 });
    const loop = h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
    h.emu.pushText('after');
    await eventually(() => seen.length >= 2);
    assert.deepEqual(seen, ['before', 'after']);
    assert.equal(loop.running, true);
    const faults = h.log.lines.filter((l) => l.startsWith('WARN getUpdates failed') && what.test(l));
    assert.equal(faults.length, 2, `each odd answer was logged with what was wrong:\n${h.log.lines.join('\n')}`);
    assert.ok(faults.every((l) => /retrying in \d+ ms/.test(l)));
  });
}

test('an update far above the sequence is handled and logged, and later updates are not confirmed away', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  const first = h.emu.pushText('first');
  await eventually(() => seen.length === 1 && h.emu.confirmedOffset > first.update_id, 5000, 'the sequence started');
  const far = 2 ** 40;
  const message = { message_id: 1, date: 1, chat: { id: 5, type: 'private', first_name: 'x' }, text: 'far' };
  h.emu.injectFault({ kind: 'answer', body: JSON.stringify({ ok: true, result: [{ update_id: far, message }] }) }, { method: 'getUpdates' });
  // Wake the waiting poll so the next one meets the odd answer.
  h.emu.pushText('second');
  await eventually(() => seen.includes('far') && seen.includes('second'));
  for (let i = 0; i < 5; i++) h.emu.pushText(`later${i}`);
  await eventually(() => seen.length === 8);
  assert.deepEqual(seen.filter((s) => s.startsWith('later')), ['later0', 'later1', 'later2', 'later3', 'later4']);
  assert.ok(h.log.lines.some((l) => l.includes(`update ${far} is far from the sequence`)), 'the far update is logged');
  assert.ok(h.emu.confirmedOffset < far, 'the offset never jumped to the far update');
});

/**
 * Telegram after a quiet week: the numbering restarts at `restart` (far above or below the sequence that
 * began at `firstUpdateId`), and the server answers the new ids from their start on every poll, whatever
 * offset is sent, until one past them is. Each is handled once, in order, the offset follows them, and
 * then the loop is back to long polls (no spin).
 */
async function renumbered(t: TestContext, firstUpdateId: number, restart: number): Promise<void> {
  const h = await harness(t, { firstUpdateId });
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  h.emu.pushText('old');
  // The sequence starts once the server sends its first id again; only then is anything far from it.
  await eventually(() => seen.length === 1 && h.emu.callsOf('getUpdates').some((c) => Number(c.params.offset) === firstUpdateId + 1), 5000, 'the old sequence');
  const message = (text: string) => ({ message_id: 1, date: 1, chat: { id: 5, type: 'private', first_name: 'x' }, text });
  const answer = JSON.stringify({ ok: true, result: [{ update_id: restart, message: message('r0') }, { update_id: restart + 1, message: message('r1') }] });
  h.emu.injectFault({ kind: 'answer', body: answer }, { method: 'getUpdates', count: 3 });
  h.emu.pushText('wake');
  await eventually(() => h.emu.callsOf('getUpdates').some((c) => Number(c.params.offset) === restart + 2), 5000, 'the offset moved to the new sequence');
  assert.deepEqual(seen.filter((s) => s.startsWith('r')), ['r0', 'r1'], 'each handled once, in order');
  assert.ok(h.log.lines.some((l) => l.includes(`update ${restart} is far from the sequence`)), 'the restart is logged');
  const before = h.emu.callsOf('getUpdates').length;
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.ok(h.emu.callsOf('getUpdates').length - before <= 3, 'no spin after the restart');
}

test('an update id that restarts far above the sequence and is sent again first becomes it (Telegram after a quiet week)', (t) => renumbered(t, 10, 5_000_000));

test('an update id that restarts far below the sequence is handled once and becomes it, with no spin (Telegram after a quiet week)', (t) => renumbered(t, 5_000_000, 1_000));

test('messageLoop() refuses a second loop while one runs, and starts again after stop()', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const loop = h.loop(bot, () => {});
  assert.throws(() => bot.messageLoop(() => {}), /messageLoop\(\) is already running: stop\(\) the running loop before starting another/);
  await loop.stop();
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  h.emu.pushText('again');
  await eventually(() => seen.length === 1);
  assert.ok(!h.log.lines.some((l) => l.includes('409')), 'no two pollers fought');
});

test('the token never reaches a log line, even from a network error that names the URL', async (t) => {
  const h = await harness(t);
  // A proxy or resolver that puts the whole request URL in its message.
  const pool = failingPool(t, h.emu.apiRoot, 2, () => new Error(`connect ECONNREFUSED while fetching ${h.emu.apiRoot}/bot${TOKEN}/getUpdates`));
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, dispatcher: pool });
  const seen: string[] = [];
  h.loop(bot, (msg: Msg) => seen.push(textOf(msg) ?? ''));
  h.emu.pushText('through');
  await eventually(() => seen.length === 1);
  const lines = h.log.lines.filter((l) => l.includes('ECONNREFUSED while fetching'));
  assert.equal(lines.length, 2, 'the error reached the log');
  for (const line of lines) assert.ok(!line.includes(TOKEN.split(':')[1] as string), `the token is in: ${line}`);
  assert.ok(lines.every((l) => l.includes('/bot<token>/getUpdates')), 'redacted in place');
});

test('stop() is bounded when the last getUpdates hangs: it gives up on confirming after 3 s and says so', async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  const loop = h.loop(bot, () => new Promise((resolve) => setTimeout(resolve, 100)));
  const first = h.emu.pushText('started');
  await eventually(() => h.emu.confirmedOffset > first.update_id, 5000, 'the sequence started');
  h.emu.pushText('finishes while stopping');
  await eventually(() => bot.runningTasks.size === 1);
  h.emu.injectFault({ kind: 'hang' }, { method: 'getUpdates', count: 5 });
  const started = performance.now();
  await loop.stop({ deadlineMs: 1000 });
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 1000 + 3000 + 1000, `stop took ${tookMs.toFixed(0)} ms`);
  assert.ok(h.log.lines.some((l) => l.includes('could not confirm the offset on stop')), `the give-up is logged (${tookMs.toFixed(0)} ms):\n${h.log.lines.join('\n')}`);
});
