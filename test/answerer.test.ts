import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallbackQuery, InlineQuery, Message } from '@grammyjs/types';
import { Answerer } from '../src/answerer.js';
import { Bot } from '../src/bot.js';
import { perCallbackQueryChatId, perCallbackQueryOrigin, perFromId, perInlineFromId } from '../src/delegate.js';
import type { Payload } from '../src/glance.js';
import { harness, TOKEN } from './support.js';

const ann = { id: 7, is_bot: false, first_name: 'Ann' };
const bob = { id: 8, is_bot: false, first_name: 'Bob' };
const query = (id: string, from: typeof ann, text: string): InlineQuery => ({ id, from, query: text, offset: '' });
const article = (text: string) => ({ type: 'article' as const, id: text, title: text, input_message_content: { message_text: text } });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('the Answerer answers only the latest query of a user, and cancels the one it replaced', { timeout: 5000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const answerer = new Answerer(bot);
  const slow = deferred();
  let cancelled = false;
  const first = answerer.answer(query('q1', ann, 't'), async (_q, signal) => {
    signal.addEventListener('abort', () => (cancelled = true));
    await slow.promise;
    return [article('t')];
  });
  const second = answerer.answer(query('q2', ann, 'tem'), (q) => ({ results: [article(q.query)], cache_time: 5 }));
  const other = answerer.answer(query('q3', bob, 'hum'), (q) => [article(q.query)]);
  assert.equal(await second, true);
  assert.equal(await other, true);
  assert.equal(cancelled, true, 'the replaced computation was told');
  slow.resolve();
  assert.equal(await first, false);
  const answered = h.emu.callsOf('answerInlineQuery').map((c) => [c.params.inline_query_id, (c.params.results as Array<{ id: string }>)[0]?.id]);
  assert.deepEqual(answered.sort(), [['q2', 'tem'], ['q3', 'hum']]);
  assert.equal(h.emu.callsOf('answerInlineQuery').find((c) => c.params.inline_query_id === 'q2')?.params.cache_time, 5);
  assert.equal(answerer.pending, 0, 'nothing kept once answered');
});

test('a failing computation rejects naming the query; a replaced one that fails does not', { timeout: 5000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const answerer = new Answerer(bot);
  await assert.rejects(answerer.answer(query('q9', ann, 'x'), () => Promise.reject(new Error('sensor gone'))), /inline query q9 failed: sensor gone/);
  const replaced = answerer.answer(query('q10', ann, 'x'), (_q, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled')))));
  await answerer.answer(query('q11', ann, 'xy'), () => [article('xy')]);
  assert.equal(await replaced, false);
});

const chat = { id: 42, type: 'private' as const, first_name: 'Ann' };
const group = { id: -100, type: 'supergroup' as const, title: 'Home' };
const message = (from: typeof ann, inChat: typeof chat | typeof group, id = 1) => ({ message_id: id, date: 1, chat: inChat, from, text: 'hi' }) as unknown as Message;
const callback = (fields: Partial<CallbackQuery>) => ({ id: 'cb', from: ann, chat_instance: 'ci', ...fields }) as CallbackQuery;

test('telepot\'s later seeds: per sender, per inline sender, per callback origin and per callback chat', () => {
  const inline = query('q1', ann, 'temp') as Payload;
  assert.equal(perFromId()(message(ann, chat)), 7);
  assert.equal(perFromId()(message(ann, group)), 7, 'one delegate per user across chats');
  assert.equal(perFromId()(inline), 7);
  assert.equal(perFromId(['message'])(inline), null);
  assert.equal(perFromId()({ poll_id: 'p', option_ids: [0], user: bob } as Payload), 8, 'a poll answer seeds by its user');
  assert.equal(perInlineFromId()(inline), 7);
  assert.equal(perInlineFromId()(message(ann, chat)), null);

  const onMessage = callback({ message: message(ann, group, 5) });
  const onInline = callback({ inline_message_id: 'AAQ-inline' });
  assert.equal(perCallbackQueryOrigin()(onMessage), '-100:5');
  assert.equal(perCallbackQueryOrigin()(onInline), 'AAQ-inline');
  assert.equal(perCallbackQueryOrigin('chat')(onInline), null);
  assert.equal(perCallbackQueryOrigin('inline')(onMessage), null);
  assert.equal(perCallbackQueryOrigin()(message(ann, chat)), null, 'a message is no callback query');
  assert.equal(perCallbackQueryChatId()(onMessage), -100);
  assert.equal(perCallbackQueryChatId(['private'])(onMessage), null);
  assert.equal(perCallbackQueryChatId()(message(ann, chat)), null);
});
