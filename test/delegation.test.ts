import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from '@grammyjs/types';
import { DelegatorBot, call, createRun, perChatId, perChatIdExcept, perChatIdIn, type SeedTuple } from '../src/delegate.js';
import { LoopStopped, WaitTooLong } from '../src/errors.js';
import type { Msg } from '../src/glance.js';
import { ChatHandler } from '../src/handler.js';
import { eventually, harness, textsTo, TOKEN } from './support.js';

const textOf = (msg: Msg) => ('text' in msg ? (msg.text ?? '') : '');

test('a number seed maps to one live delegate; an array seed always spawns; null spawns nothing', async (t) => {
  const h = await harness(t);
  const spawned: string[] = [];
  const hold = new Promise(() => {});
  let seeded = 0;
  const bot = new DelegatorBot(TOKEN, [
    [(msg) => (seeded++, textOf(msg).startsWith('n') ? 7 : null), call(([, msg]) => { spawned.push(`number:${textOf(msg)}`); return hold; })],
    [(msg) => (textOf(msg).startsWith('a') ? [msg] : undefined), call(([, msg]) => { spawned.push(`array:${textOf(msg)}`); return hold; })],
    [(msg) => (textOf(msg).startsWith('s') ? 'key' : null), call(([, msg]) => { spawned.push(`string:${textOf(msg)}`); return hold; })],
  ], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { stopDeadlineMs: 50 });
  for (const text of ['n1', 'n2', 'a1', 'a2', 's1', 's2', 'x']) h.emu.pushText(text);
  await eventually(() => seeded === 7 || spawned.length >= 5);
  assert.deepEqual(spawned, ['number:n1', 'array:a1', 'array:a2', 'string:s1']);
});

test('the message that spawns a handler is its initialMessage and never reaches its own listener', async (t) => {
  const h = await harness(t);
  const received: string[] = [];
  class Echo extends ChatHandler {
    override async run() {
      received.push(`initial:${textOf(this.initialMessage)}`);
      for (;;) received.push(`waited:${textOf(await this.listener.wait())}`);
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Echo)]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { stopDeadlineMs: 50 });
  h.emu.pushText('one');
  h.emu.pushText('two');
  await eventually(() => received.length === 2);
  assert.deepEqual(received, ['initial:one', 'waited:two']);
});

test('messages of one chat reach its handler in update order, even while it is busy', async (t) => {
  const h = await harness(t);
  const order: string[] = [];
  class Slow extends ChatHandler {
    override async run() {
      order.push(textOf(this.initialMessage));
      for (;;) {
        const msg = await this.listener.wait();
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        order.push(textOf(msg));
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Slow)]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { stopDeadlineMs: 50 });
  const expected = Array.from({ length: 60 }, (_, i) => `m${i}`);
  for (const text of expected) h.emu.pushText(text, { chatId: 9 });
  await eventually(() => order.length === 60);
  assert.deepEqual(order, expected);
});

test('the MessageCounter of the telepot README counts each chat on its own', async (t) => {
  const h = await harness(t);
  class MessageCounter extends ChatHandler {
    constructor(seedTuple: SeedTuple) {
      super(seedTuple);
      this.listener.timeout = 10;
    }
    override async run() {
      let count = 1;
      await this.sender.sendMessage(String(count));
      for (;;) {
        await this.listener.wait({ chat: { id: this.chatId } });
        await this.sender.sendMessage(String(++count));
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(MessageCounter)]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { stopDeadlineMs: 50 });
  for (let round = 0; round < 3; round++) for (const chatId of [1, 2, 3]) if (chatId <= round + 1) h.emu.pushText('hi', { chatId });
  await eventually(() => h.emu.sentMessages().length === 6);
  assert.deepEqual(textsTo(h.emu, 1), ['1', '2', '3']);
  assert.deepEqual(textsTo(h.emu, 2), ['1', '2']);
  assert.deepEqual(textsTo(h.emu, 3), ['1']);
});

test('a handler whose listener times out ends, and its seed is free again', async (t) => {
  const h = await harness(t);
  const ends: unknown[] = [];
  let starts = 0;
  class Brief extends ChatHandler {
    override async run() {
      starts++;
      try {
        await this.listener.wait();
      } catch (error) {
        ends.push(error);
        throw error;
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Brief, { timeout: 0.05 })]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot);
  h.emu.pushText('first', { chatId: 4 });
  await eventually(() => ends.length === 1);
  assert.ok(ends[0] instanceof WaitTooLong);
  await eventually(() => bot.delegateCount === 0);
  h.emu.pushText('again', { chatId: 4 });
  await eventually(() => starts === 2);
  assert.ok(!h.log.lines.some((l) => l.startsWith('ERROR')), 'a timeout is a normal end, not an error');
});

test('after many chats time out, no delegate or listener is left behind', async (t) => {
  const h = await harness(t);
  class Brief extends ChatHandler {
    override async run() {
      await this.sender.sendMessage('hello');
      await this.listener.wait();
    }
  }
  // Without pacing: 500 greetings at Telegram's 30 messages/s would take the whole timeout.
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Brief, { timeout: 0.05 })]], { apiRoot: h.emu.apiRoot, log: h.log, flow: false });
  h.loop(bot);
  for (let chatId = 1; chatId <= 500; chatId++) h.emu.pushText('hi', { chatId });
  await eventually(() => h.emu.callsOf('sendMessage').length === 500, 10_000);
  await eventually(() => bot.delegateCount === 0 && bot.runningTasks.size === 0, 5000, 'all delegates ended');
  assert.equal(bot.mic.size, 0, 'every listener was detached');
});

test('stop() rejects pending waits with LoopStopped and waits for the handlers to end', async (t) => {
  const h = await harness(t);
  const outcomes: string[] = [];
  class Waiting extends ChatHandler {
    override async run() {
      try {
        await this.listener.wait();
      } catch (error) {
        outcomes.push(error instanceof LoopStopped ? 'stopped' : String(error));
        await this.sender.sendMessage('Bye');
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Waiting)]], { apiRoot: h.emu.apiRoot, log: h.log });
  const loop = h.loop(bot);
  h.emu.pushText('hi', { chatId: 1 });
  h.emu.pushText('hi', { chatId: 2 });
  await eventually(() => bot.delegateCount === 2);
  await loop.stop();
  assert.deepEqual(outcomes, ['stopped', 'stopped']);
  assert.equal(h.emu.callsOf('sendMessage').length, 2, 'the handlers finished their goodbyes before stop returned');
});

test('perChatIdIn and perChatIdExcept split chats, and chat types can be filtered', () => {
  const msg = (id: number, type: string) => ({ message_id: 1, date: 1, chat: { id, type }, text: 'x' }) as unknown as Message;
  assert.equal(perChatIdIn([1, 2])(msg(1, 'private')), 1);
  assert.equal(perChatIdIn([1, 2])(msg(3, 'private')), null);
  assert.equal(perChatIdExcept([1])(msg(1, 'private')), null);
  assert.equal(perChatIdExcept([1])(msg(3, 'private')), 3);
  assert.equal(perChatId(['private'])(msg(-5, 'group')), null);
  assert.equal(perChatId()(msg(-5, 'group')), -5);
  const query = { id: 'q', from: { id: 1, is_bot: false, first_name: 'a' }, chat_instance: 'c', message: msg(8, 'private') };
  assert.equal(perChatId()(query), 8, 'a callback query is seeded by its message\'s chat');
});

test('a delegate factory that throws is logged and later messages still work', async (t) => {
  const h = await harness(t);
  let calls = 0;
  const bot = new DelegatorBot(TOKEN, [[perChatId(), () => {
    if (calls++ === 0) throw new Error('factory broke');
    return Promise.resolve();
  }]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot);
  h.emu.pushText('a');
  h.emu.pushText('b', { chatId: 99 });
  await eventually(() => calls === 2);
  assert.ok(h.log.lines.some((l) => l.includes('factory broke')));
});

test('messages queued for a handler that fails go to a new handler for the chat, in order', async (t) => {
  const h = await harness(t);
  const seen: string[] = [];
  let handlers = 0;
  class Fragile extends ChatHandler {
    override async run() {
      const id = ++handlers;
      seen.push(`${id}:${textOf(this.initialMessage)}`);
      // The first handler is slow on its first message, then fails, with later messages queued.
      if (id === 1) {
        await new Promise((r) => setTimeout(r, 100));
        throw new Error('handler bug');
      }
      for (;;) seen.push(`${id}:${textOf(await this.listener.wait())}`);
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Fragile)]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { stopDeadlineMs: 50 });
  for (const text of ['a', 'b', 'c', 'd']) h.emu.pushText(text, { chatId: 5 });
  await eventually(() => seen.length === 4);
  assert.deepEqual(seen, ['1:a', '2:b', '2:c', '2:d']);
  assert.ok(h.log.lines.some((l) => l.includes('handler bug')));
});

test('a burst to one busy chat waits on the server, not in memory, and nothing is lost', async (t) => {
  const h = await harness(t);
  const seen: string[] = [];
  class Busy extends ChatHandler {
    override async run() {
      seen.push(textOf(this.initialMessage));
      for (;;) {
        const msg = await this.listener.wait();
        await new Promise((r) => setImmediate(r));
        seen.push(textOf(msg));
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Busy)]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { maxBacklog: 200, stopDeadlineMs: 50 });
  const expected = Array.from({ length: 3000 }, (_, i) => `m${i}`);
  for (const text of expected) h.emu.pushText(text, { chatId: 1 });
  let maxQueued = 0;
  const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, bot.mic.queued)), 1);
  t.after(() => clearInterval(sampler));
  await eventually(() => seen.length === expected.length, 20_000);
  assert.deepEqual(seen, expected);
  assert.equal(bot.mic.dropped, 0);
  assert.ok(maxQueued <= 200 + 100, `at most the backlog plus one batch waited in memory (saw ${maxQueued})`);
});
