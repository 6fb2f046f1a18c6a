import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Update } from '@grammyjs/types';
import { Bot } from '../src/bot.js';
import type { HandlerFor } from '../src/delivery.js';
import { flavor, handledUpdateKinds, isCallbackQuery, updateKinds, type Msg, type Payload } from '../src/glance.js';
import { sampleUpdates } from './fixtures/update-kinds.js';
import { eventually, harness, TOKEN } from './support.js';

const pushEveryKind = (push: (update: Omit<Update, 'update_id'>) => unknown): void => {
  for (const kind of updateKinds) push({ [kind]: structuredClone(sampleUpdates[kind]) } as Omit<Update, 'update_id'>);
};

test('every update kind reaches the handler when allowedUpdates asks for it, and flavor() names it', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const seen: string[] = [];
  h.loop(bot, (payload: Payload) => seen.push(flavor(payload)), { allowedUpdates: updateKinds });
  pushEveryKind((update) => h.emu.pushUpdate(update));
  await eventually(() => seen.length === updateKinds.length, 5000, `${updateKinds.length} updates`);
  assert.deepEqual(seen, [...updateKinds], 'each kind, in order, named exactly');
});

test('without allowedUpdates, only the kinds handlers understand by default arrive', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const seen: string[] = [];
  h.loop(bot, (payload: Payload) => seen.push(flavor(payload)));
  pushEveryKind((update) => h.emu.pushUpdate(update));
  await eventually(() => seen.length === handledUpdateKinds.length, 5000, 'the default kinds');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(seen, [...handledUpdateKinds]);
});

test('a handler is typed by the kinds allowedUpdates asks for (checked by tsc; the loop is never started)', () => {
  // Compiled by `npm test`'s typecheck step: each @ts-expect-error fails the build if the error went away.
  const typesOnly = (bot: Bot): void => {
    bot.messageLoop((msg) => (isCallbackQuery(msg) ? msg.data : msg.message_id));
    bot.messageLoop((payload) => ('query' in payload ? payload.query : payload.text), { allowedUpdates: ['message', 'inline_query'] });
    const inlineOnly: HandlerFor<'inline_query'> = (query) => query.query.length;
    bot.messageLoop(inlineOnly, { allowedUpdates: ['inline_query'] });
    // @ts-expect-error a handler of messages cannot take the inline queries it was asked to receive
    bot.messageLoop((msg: Msg) => msg, { allowedUpdates: ['inline_query'] });
    // @ts-expect-error the default kinds carry no inline query
    bot.messageLoop(inlineOnly);
  };
  assert.equal(typeof typesOnly, 'function');
});
