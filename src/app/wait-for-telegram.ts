// Start-up's first contact with Telegram. A Pi often boots before its network (or its clock) is up:
// telepi tells systemd it is ready at once, says "waiting for Telegram" in its status and keeps the
// watchdog fed while getMe is retried, so systemd neither times the start out nor restart-loops.

import type { UserFromGetMe } from '@grammyjs/types';
import type { Bot } from '../bot.js';
import { TelegramError } from '../errors.js';
import { describeError, type Logger } from '../log.js';
import type { Clock } from './scheduler.js';
import type { SystemdNotifier } from './watchdog.js';

export interface WaitForTelegramOptions {
  log: Logger;
  notifier: SystemdNotifier | null;
  /** Runs the retry delays and the watchdog pings while waiting. */
  clock: Clock;
  /** The first retry's delay, doubling up to maxDelayMs. Default 1 s … 30 s. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * getMe until it works. A rejected token (401/404) is final: it rejects with that TelegramError and
 * stops the pings. On success the pings go on until the poll loop's health check replaces them.
 */
export async function waitForTelegram(bot: Pick<Bot, 'getMe'>, options: WaitForTelegramOptions): Promise<UserFromGetMe> {
  const { log, notifier, clock } = options;
  void notifier?.ready();
  // Fed while waiting: the process is alive and retrying.
  const stopWatchdog = notifier?.startWatchdog(() => true, clock);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const me = await bot.getMe();
        void notifier?.status(`connected to Telegram as @${me.username}`);
        return me;
      } catch (error) {
        if (error instanceof TelegramError && (error.errorCode === 401 || error.errorCode === 404)) throw error;
        const delayMs = Math.min(options.maxDelayMs ?? 30_000, (options.initialDelayMs ?? 1000) * 2 ** attempt);
        const why = `cannot reach the Bot API yet (${describeError(error)}); retrying in ${delayMs / 1000} s`;
        log.warn(why);
        void notifier?.status(`waiting for Telegram: ${why}`);
        await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), delayMs));
      }
    }
  } catch (error) {
    stopWatchdog?.();
    throw error;
  }
}
