// The whole fault policy of a getUpdates (and of a send the client may repeat) in one function.

import { NetworkError, TelegramError } from './errors.js';
import { describeError } from './log.js';

export type RetryDecision = { retry: true; delayMs: number; reason: string } | { retry: false; reason: string };

/**
 * What to do after getUpdates failed: the whole fault policy in one place. Network errors, 5xx,
 * malformed answers and 409 back off exponentially with jitter up to the cap; 429 waits as long as
 * the server asks; a rejected token stops the loop.
 */
export function retryPolicy(error: unknown, attempt: number, options: { initialMs: number; capMs: number; random: () => number; retryAfterCapMs?: number }): RetryDecision {
  const ceiling = Math.min(options.capMs, options.initialMs * 2 ** Math.min(attempt, 30));
  const backoff = ceiling / 2 + (options.random() * ceiling) / 2;
  if (error instanceof TelegramError) {
    if (error.errorCode === 401 || error.errorCode === 404) {
      return { retry: false, reason: `the bot token was rejected (${error.errorCode} ${error.description}): check TELEGRAM_BOT_TOKEN against what @BotFather gave you` };
    }
    if (error.errorCode === 429) {
      const seconds = error.parameters.retry_after;
      const capMs = options.retryAfterCapMs ?? 600_000;
      if (typeof seconds === 'number' && seconds >= 0 && seconds * 1000 <= capMs) {
        return { retry: true, delayMs: seconds * 1000, reason: `rate limited: retrying after ${seconds} s as the Bot API asks` };
      }
      if (typeof seconds === 'number' && seconds > 0) return { retry: true, delayMs: capMs, reason: `rate limited with retry_after ${seconds} s: waiting at most ${capMs / 1000} s` };
    }
    if (error.errorCode === 409) return { retry: true, delayMs: backoff, reason: `409 ${error.description}` };
    return { retry: true, delayMs: backoff, reason: `${error.errorCode} ${error.description}` };
  }
  if (error instanceof NetworkError) return { retry: true, delayMs: backoff, reason: error.message };
  return { retry: true, delayMs: backoff, reason: describeError(error) };
}
