import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Update } from '@grammyjs/types';
import { Bot } from '../src/bot.js';
import { flavor, handledUpdateKinds, updateKinds, type Payload } from '../src/glance.js';
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
