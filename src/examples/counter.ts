// Message counter: one ChatHandler per chat counts the messages it has sent; 10 s of silence resets it.

import type { BotOptions } from '../bot.js';
import { DelegatorBot, createRun, perChatId, type SeedTuple } from '../delegate.js';
import { ChatHandler } from '../handler.js';
import { exampleEnv, isMain, runUntilSignal } from './run.js';

export class MessageCounter extends ChatHandler {
  constructor(seedTuple: SeedTuple, options?: { timeout?: number }) {
    super(seedTuple);
    this.listener.timeout = options?.timeout ?? 10;
  }

  override async run(): Promise<void> {
    let count = 1;
    await this.sender.sendMessage(String(count));
    for (;;) {
      await this.listener.wait({ chat: { id: this.chatId } }); // throws WaitTooLong after the timeout
      await this.sender.sendMessage(String(++count));
    }
  }
}

export function createCounter(token: string, options?: BotOptions & { timeout?: number }): DelegatorBot {
  return new DelegatorBot(token, [[perChatId(), createRun(MessageCounter, { timeout: options?.timeout })]], options);
}

if (isMain(import.meta.url)) {
  const { token, apiRoot } = exampleEnv();
  await runUntilSignal(createCounter(token, { apiRoot }));
}
