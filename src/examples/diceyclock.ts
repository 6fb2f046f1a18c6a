// Dicey clock: /roll answers a die roll (1–6), /time the current time.

import { randomInt } from 'node:crypto';
import { Bot, type BotOptions } from '../bot.js';
import { isText, type Msg } from '../glance.js';
import { exampleEnv, isMain, runUntilSignal } from './run.js';

export function createDiceyClock(token: string, options?: BotOptions & { now?: () => Date }): Bot {
  const now = options?.now ?? (() => new Date());
  const bot = new Bot(token, options);
  const handle = async (msg: Msg): Promise<void> => {
    if (!isText(msg)) return;
    const chatId = msg.chat.id;
    const command = msg.text.trim().split(/[\s@]/)[0];
    if (command === '/roll') await bot.sendMessage(chatId, String(randomInt(1, 7)));
    else if (command === '/time') await bot.sendMessage(chatId, now().toISOString().replace('T', ' ').slice(0, 19));
    else await bot.sendMessage(chatId, 'Try /roll or /time');
  };
  bot.handle = handle;
  return bot;
}

if (isMain(import.meta.url)) {
  const { token, apiRoot } = exampleEnv();
  await runUntilSignal(createDiceyClock(token, { apiRoot }));
}
