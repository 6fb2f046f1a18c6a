// Shared set-up for the library tests: an emulator on loopback, bots with fast polling, and teardown.

import type { TestContext } from 'node:test';
import { BotApiEmulator, type EmulatorOptions } from '../src/emulator/index.js';
import type { Bot } from '../src/bot.js';
import { memoryLogger, type Logger } from '../src/log.js';
import type { MessageLoop, PollingOptions } from '../src/polling.js';

/** A distinctive token: tests assert it never appears in logs or error texts. */
export const TOKEN = '9876543:AAH-distinctive_TOKEN_x1Y2z3W4v5U6t7S8r9';

/** Polling fast enough for tests: faults recover in tens of milliseconds. */
export const fastPolling: PollingOptions = {
  timeoutSeconds: 1,
  requestMarginMs: 500,
  backoffInitialMs: 5,
  backoffCapMs: 50,
  stopDeadlineMs: 1000,
};

export interface Harness {
  emu: BotApiEmulator;
  log: Logger & { lines: string[] };
  /** Runs the bot's loop; it is stopped (and the bot closed) in teardown. */
  loop(bot: Bot, handler?: (msg: never) => unknown, options?: PollingOptions): MessageLoop;
  /** Registers a bot for teardown. */
  own<B extends Bot>(bot: B): B;
}

export async function harness(t: TestContext, options: EmulatorOptions = {}): Promise<Harness> {
  const emu = await BotApiEmulator.start({ token: TOKEN, ...options });
  const log = memoryLogger();
  const loops: MessageLoop[] = [];
  const bots: Bot[] = [];
  t.after(async () => {
    await Promise.all(loops.map((l) => l.stop({ deadlineMs: 200 })));
    await Promise.all(bots.map((b) => b.close()));
    await emu.close();
    // Across every test that uses the harness: the token never reaches a log line.
    const leaks = log.lines.filter((line) => line.includes(TOKEN) || line.includes(TOKEN.split(':')[1] as string));
    if (leaks.length > 0) throw new Error(`the token reached the log: ${leaks.length} line(s)`);
  });
  return {
    emu,
    log,
    own(bot) {
      bots.push(bot);
      return bot;
    },
    loop(bot, handler, options) {
      if (!bots.includes(bot)) bots.push(bot);
      const loop = bot.messageLoop(handler as ((msg: unknown) => unknown) | undefined, { ...fastPolling, log, ...options });
      loops.push(loop);
      return loop;
    },
  };
}

/** Polls `condition` every few ms until it holds, failing after `timeoutMs`. */
export async function eventually(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Texts the bot sent to a chat, in order. */
export function textsTo(emu: BotApiEmulator, chatId: number): string[] {
  return emu.sentMessages(chatId).map((m) => ('text' in m && typeof m.text === 'string' ? m.text : ''));
}
