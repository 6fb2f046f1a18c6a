// Emodi: answers each text with the Unicode code points of its characters (emoji → U+1F60A).

import { Bot, type BotOptions } from '../bot.js';
import { chatOf, isText, type Msg } from '../glance.js';
import { exampleEnv, isMain, runUntilSignal } from './run.js';

/** "😊!" → "U+1F60A U+0021" */
export function codePoints(text: string): string {
  return [...text].map((ch) => `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`).join(' ');
}

export function createEmodi(token: string, options?: BotOptions): Bot {
  const bot = new Bot(token, options);
  bot.handle = async (msg: Msg): Promise<void> => {
    const chatId = chatOf(msg)?.id;
    if (chatId === undefined) return;
    if (!isText(msg)) {
      await bot.sendMessage(chatId, 'Send me some emoji, and I will tell you their code points.');
      return;
    }
    await bot.sendMessage(chatId, codePoints(msg.text));
  };
  return bot;
}

if (isMain(import.meta.url)) {
  const { token, apiRoot } = exampleEnv();
  await runUntilSignal(createEmodi(token, { apiRoot }));
}
