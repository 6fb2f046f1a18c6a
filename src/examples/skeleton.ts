// Skeleton: the smallest telepi program — glance at each message and print what it is.

import { Bot, type BotOptions } from '../bot.js';
import { glance, type Msg } from '../glance.js';
import { exampleEnv, isMain, runUntilSignal } from './run.js';

export class SkeletonBot extends Bot {
  readonly seen: Array<ReturnType<typeof glance>> = [];

  override handle(msg: Msg): void {
    const [contentType, chatType, chatId] = glance(msg);
    this.seen.push([contentType, chatType, chatId]);
    this.log.info(`${contentType} ${chatType ?? '-'} ${chatId ?? '-'}`);
  }
}

export function createSkeleton(token: string, options?: BotOptions): SkeletonBot {
  return new SkeletonBot(token, options);
}

if (isMain(import.meta.url)) {
  const { token, apiRoot } = exampleEnv();
  await runUntilSignal(createSkeleton(token, { apiRoot }));
}
