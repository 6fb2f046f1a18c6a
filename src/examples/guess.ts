// Guess-a-number: each chat plays its own game against a number from 0 to 100; many players at once.

import { randomInt } from 'node:crypto';
import type { BotOptions } from '../bot.js';
import { DelegatorBot, createRun, perChatId, type SeedTuple } from '../delegate.js';
import { WaitTooLong } from '../errors.js';
import { isText, type Msg } from '../glance.js';
import { ChatHandler } from '../handler.js';
import { exampleEnv, isMain, runUntilSignal } from './run.js';

export interface GuessOptions {
  /** Seconds without a guess before the game expires. */
  timeout?: number;
  /** Picks the answer (tests may fix it); default: a uniform integer 0–100. */
  pick?: () => number;
}

function guessOf(msg: Msg): number | undefined {
  if (!isText(msg)) return undefined;
  const text = msg.text.trim();
  return /^\d{1,3}$/.test(text) ? Number(text) : undefined;
}

export class Player extends ChatHandler {
  private readonly answer: number;

  constructor(seedTuple: SeedTuple, options: GuessOptions = {}) {
    super(seedTuple, { timeout: options.timeout ?? 300 });
    this.answer = options.pick?.() ?? randomInt(0, 101);
  }

  override async run(): Promise<void> {
    await this.sender.sendMessage('Guess my number (0 to 100)');
    try {
      let msg = this.initialMessage;
      for (;;) {
        const guess = guessOf(msg);
        if (guess === undefined) await this.sender.sendMessage('Give me a number, please.');
        else if (guess === this.answer) {
          await this.sender.sendMessage('Correct!');
          return;
        } else await this.sender.sendMessage(guess < this.answer ? 'Larger' : 'Smaller');
        msg = await this.listener.wait();
      }
    } catch (error) {
      if (error instanceof WaitTooLong) await this.sender.sendMessage(`Game expired. The answer is ${this.answer}`);
      throw error;
    }
  }
}

export function createGuess(token: string, options?: BotOptions & GuessOptions): DelegatorBot {
  return new DelegatorBot(token, [[perChatId(), createRun(Player, options)]], options);
}

if (isMain(import.meta.url)) {
  const { token, apiRoot } = exampleEnv();
  await runUntilSignal(createGuess(token, { apiRoot }));
}
