// Shared start-up for the examples: token and API root from the environment, Ctrl-C stops gracefully.

import { pathToFileURL } from 'node:url';
import type { Bot } from '../bot.js';
import type { MessageLoop } from '../polling.js';

export interface ExampleEnv {
  token: string;
  apiRoot: string | undefined;
}

export function exampleEnv(env: NodeJS.ProcessEnv = process.env): ExampleEnv {
  const token = env.TELEGRAM_BOT_TOKEN;
  if (token === undefined || token === '') {
    process.stderr.write('Set TELEGRAM_BOT_TOKEN (and TELEGRAM_API_ROOT for a local Bot API server or emulator).\n');
    process.exit(78);
  }
  return { token, apiRoot: env.TELEGRAM_API_ROOT || undefined };
}

/** True when `moduleUrl` is the program node was asked to run. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && moduleUrl === pathToFileURL(script).href;
}

/** Runs a bot's message loop until SIGINT or SIGTERM, then stops it gracefully. */
export async function runUntilSignal(bot: Bot, start: (bot: Bot) => MessageLoop = (b) => b.messageLoop()): Promise<void> {
  const loop = start(bot);
  process.stderr.write('Listening… (Ctrl-C to stop)\n');
  const stop = () => void loop.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await loop.done;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await bot.close();
  }
}
