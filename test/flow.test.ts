import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pool } from 'undici';
import { Bot } from '../src/bot.js';
import { SendScheduler, type Permit } from '../src/flow.js';
import { FakeClock, settle } from './fakes/clock.js';
import { harness, textsTo, TOKEN } from './support.js';

const limits = { global: { count: 30, windowMs: 1000 }, perChat: { count: 3, windowMs: 3000 }, perGroup: { count: 20, windowMs: 60_000 } };

/** Admits a send and says whether it got its permit at once (no promise) or later. */
function admitNow(scheduler: SendScheduler, chatId: number | string): Permit {
  const permit = scheduler.admit(chatId);
  assert.ok(!(permit instanceof Promise), `a send to ${chatId} should go out at once`);
  return permit;
}

test('a lone reply goes out at once, and a short burst in one chat too', { timeout: 5000 }, () => {
  const scheduler = new SendScheduler(limits, new FakeClock());
  for (let i = 0; i < 3; i++) scheduler.release(admitNow(scheduler, 42));
  assert.ok(scheduler.admit(42) instanceof Promise, 'a fourth message within the window waits');
  scheduler.release(admitNow(scheduler, 43));
});

test('a busy chat waits for its window without holding up other chats, and keeps its order', { timeout: 5000 }, async () => {
  const clock = new FakeClock();
  const scheduler = new SendScheduler(limits, clock);
  for (let i = 0; i < 3; i++) scheduler.release(admitNow(scheduler, 42));
  const order: number[] = [];
  const later = [4, 5, 6].map((n) => Promise.resolve(scheduler.admit(42)).then((permit) => {
    order.push(n);
    scheduler.release(permit);
  }));
  scheduler.release(admitNow(scheduler, 7)); // another chat is not stuck behind chat 42's queue
  await settle();
  assert.deepEqual(order, []);
  clock.advance(2999);
  await settle();
  assert.deepEqual(order, [], 'nothing before the window has passed');
  clock.advance(1);
  await settle();
  assert.deepEqual(order, [4, 5, 6], 'the window frees three slots, served in order');
  await Promise.all(later);
});

test('the global rate holds every chat back, and each waits for its turn', { timeout: 5000 }, async () => {
  const clock = new FakeClock();
  const scheduler = new SendScheduler(limits, clock);
  const permits = Array.from({ length: 30 }, (_, i) => admitNow(scheduler, 1000 + i));
  let granted = 0;
  const waiting = Array.from({ length: 5 }, (_, i) => Promise.resolve(scheduler.admit(2000 + i)).then(() => granted++));
  await settle();
  assert.equal(granted, 0, '30 in flight: the 31st waits');
  assert.equal(scheduler.queued, 5);
  for (const permit of permits.slice(0, 5)) scheduler.release(permit);
  await settle();
  assert.equal(granted, 0, 'an answered send still counts until its window has passed');
  clock.advance(1000);
  await settle();
  assert.equal(granted, 5);
  await Promise.all(waiting);
});

test('a 429 holds the chat for retry_after', { timeout: 5000 }, async () => {
  const clock = new FakeClock();
  const scheduler = new SendScheduler(limits, clock);
  scheduler.pause(42, 2000);
  let sent = false;
  const waiting = Promise.resolve(scheduler.admit(42)).then(() => (sent = true));
  clock.advance(1999);
  await settle();
  assert.equal(sent, false);
  clock.advance(1);
  await settle();
  assert.equal(sent, true);
  await waiting;
});

test('a waiting send that is aborted leaves the queue with an error, and close() rejects the rest', { timeout: 5000 }, async () => {
  const scheduler = new SendScheduler(limits, new FakeClock());
  for (let i = 0; i < 3; i++) admitNow(scheduler, 42);
  const controller = new AbortController();
  const aborted = Promise.resolve(scheduler.admit(42, controller.signal));
  const closed = Promise.resolve(scheduler.admit(42));
  controller.abort(new Error('the caller gave up'));
  await assert.rejects(aborted, /the caller gave up/);
  assert.equal(scheduler.queued, 1);
  scheduler.close(new Error('the client was closed'));
  await assert.rejects(closed, /the client was closed/);
  assert.equal(scheduler.queued, 0);
});

test('ten thousand chats sent to once are forgotten after their windows', { timeout: 5000 }, () => {
  const clock = new FakeClock();
  const scheduler = new SendScheduler({ ...limits, global: { count: 1e9, windowMs: 1000 } }, clock);
  for (let i = 1; i <= 10_000; i++) scheduler.release(admitNow(scheduler, i));
  clock.advance(60_000);
  for (let i = 1; i <= 10; i++) scheduler.release(admitNow(scheduler, 20_000 + i));
  assert.ok(scheduler.chats < 2048, `${scheduler.chats} chats still tracked`);
});

test('limits that allow nothing are refused with a clear error', () => {
  assert.throws(() => new SendScheduler({ perChat: { count: 0, windowMs: 1000 } }), /perChat must allow at least 1 request/);
});

// Telegram's limits scaled down in time (a group's 20/min to 8/s: stricter than a chat's), so the report takes about a second.
const scaled = { global: { count: 30, windowMs: 100 }, perChat: { count: 3, windowMs: 300 }, perGroup: { count: 8, windowMs: 1000 } };

/** 150 private chats and 50 groups once each, then 12 to one group and 8 to one chat: all at once. */
async function report(bot: Bot): Promise<void> {
  const chats = [...Array.from({ length: 150 }, (_, i) => 1000 + i), ...Array.from({ length: 50 }, (_, i) => -2000 - i)];
  const sends = chats.map((chatId) => bot.sendMessage(chatId, 'report'));
  for (let i = 0; i < 12; i++) sends.push(bot.sendMessage(-2000, `group ${i}`));
  for (let i = 0; i < 8; i++) sends.push(bot.sendMessage(1000, `chat ${i}`));
  await Promise.all(sends);
}

test('a report to 200 chats meets no 429 from an emulator that enforces the limits', { timeout: 20_000 }, async (t) => {
  const h = await harness(t, { rateLimits: scaled });
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: { limits: scaled } }));
  await report(bot);
  assert.equal(h.emu.calls.filter((call) => call.rateLimited).length, 0, '429s answered');
  assert.equal(h.emu.sentMessages().length, 220);
  assert.deepEqual(textsTo(h.emu, -2000), ['report', ...Array.from({ length: 12 }, (_, i) => `group ${i}`)], 'in order');
  assert.deepEqual(textsTo(h.emu, 1000), ['report', ...Array.from({ length: 8 }, (_, i) => `chat ${i}`)]);

  // The control: the same report unpaced does meet the emulator's limits.
  const unpaced = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: false }));
  await report(unpaced).catch(() => undefined);
  assert.ok(h.emu.calls.filter((call) => call.rateLimited).length > 0, 'without pacing, the emulator answers 429');
});

test('pacing is on by default for Telegram, and off for an API root on loopback unless limits are given', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const clock = new FakeClock();
  // Telegram's name, the emulator's socket: the client sees a remote API root.
  const dispatcher = new Pool(h.emu.apiRoot);
  t.after(() => dispatcher.close());
  const remote = h.own(new Bot(TOKEN, { apiRoot: 'http://api.telegram.test', dispatcher, log: h.log, flow: { clock } }));
  for (let i = 0; i < 3; i++) await remote.sendMessage(42, `burst ${i}`);
  let fourth = false;
  const later = remote.sendMessage(42, 'fourth').then(() => (fourth = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(fourth, false, 'a fourth message within 3 s waits');
  await clock.advanceAsync(3000);
  await later;

  const local = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: { clock } }));
  await Promise.all(Array.from({ length: 10 }, (_, i) => local.sendMessage(43, `unpaced ${i}`)));
  assert.equal(h.emu.sentMessages(43).length, 10);
});

test('under a seeded storm of sends, answers and aborts, no window ever holds more than its count, and every send settles', { timeout: 10_000 }, async () => {
  const seed = Number(process.env.FLOW_SEED ?? Math.floor(Math.random() * 2 ** 31));
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const clock = new FakeClock();
  const rates = { global: { count: 10, windowMs: 100 }, perChat: { count: 2, windowMs: 300 }, perGroup: { count: 4, windowMs: 1000 } };
  const scheduler = new SendScheduler(rates, clock);
  interface Sent { chatId: number; grantedMs: number; releasedMs?: number; permit: Permit }
  const sent: Sent[] = [];
  const inFlight: Sent[] = [];
  let settled = 0;
  const total = 2000;
  const holds = (rate: { count: number; windowMs: number }, of: Sent[], nowMs: number) =>
    of.filter((s) => s.grantedMs <= nowMs && (s.releasedMs === undefined || s.releasedMs + rate.windowMs > nowMs)).length <= rate.count;
  const granted = (chatId: number) => (permit: Permit) => {
    const entry = { chatId, grantedMs: clock.now(), permit };
    const nowMs = clock.now();
    assert.ok(holds(rates.global, [...sent, entry], nowMs), `[FLOW_SEED=${seed}] global window overrun at ${nowMs} ms`);
    const mine = [...sent, entry].filter((s) => s.chatId === chatId);
    assert.ok(holds(chatId < 0 ? rates.perGroup : rates.perChat, mine, nowMs), `[FLOW_SEED=${seed}] chat ${chatId} window overrun at ${nowMs} ms`);
    sent.push(entry);
    inFlight.push(entry);
    settled++;
  };
  for (let i = 0; i < total; i++) {
    const chatId = Math.floor(random() * 40) - 10 || 1; // 29 private chats and 10 groups
    const controller = new AbortController();
    const permit = scheduler.admit(chatId, controller.signal);
    if (permit instanceof Promise) permit.then(granted(chatId), () => settled++);
    else granted(chatId)(permit);
    if (random() < 0.05) controller.abort(new Error('gave up'));
    // Answers come back in any order after a few ms; time moves on between sends.
    while (inFlight.length > 0 && random() < 0.6) {
      const [answered] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
      if (answered === undefined) break;
      answered.releasedMs = clock.now();
      scheduler.release(answered.permit);
    }
    await clock.advanceAsync(Math.floor(random() * 8));
  }
  for (let round = 0; settled < total && round < 10_000; round++) {
    for (const answered of inFlight.splice(0)) {
      answered.releasedMs = clock.now();
      scheduler.release(answered.permit);
    }
    await clock.advanceAsync(50);
  }
  assert.equal(settled, total, `[FLOW_SEED=${seed}] every send was granted or aborted`);
  assert.equal(scheduler.queued, 0);
});
