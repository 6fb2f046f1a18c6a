// Which failed requests go out again, and when. A 429 always (Telegram did nothing and says when to
// come back); a request that provably never left (connection refused, no DNS) always; one that may
// have arrived (5xx, reset, timeout, a garbled answer) only when doing it twice does no harm.

import { NetworkError, TelegramError } from './errors.js';
import { retryPolicy, type RetryDecision } from './polling.js';

export interface ResendOptions {
  /** Attempts per request, the first included; 1 sends once. Default 4. */
  maxAttempts?: number;
  /** A 429 asking to wait longer than this fails at once instead. Default 60 s. */
  maxRetryAfterSeconds?: number;
  /** Backoff after a fault other than 429: the first delay and the cap, in ms. Default 500 ms, 10 s. */
  backoffInitialMs?: number;
  backoffCapMs?: number;
  /**
   * Also resend a message whose request may have reached Telegram (5xx, reset, timeout): a lost reply
   * then becomes a possible duplicate. Default false.
   */
  resendAmbiguous?: boolean;
  /** Random numbers in [0, 1) for the backoff jitter. */
  random?: () => number;
}

/** Methods that do no harm when Telegram gets them twice: reads, settings, edits, answers, moderation. */
const repeatable =
  /^(?:get|set|delete|edit|answer|pin|unpin|ban|unban|restrict|promote|approve|decline|leave|verify|remove|revoke|reopen|hide|unhide|close.|stopPoll$|sendChatAction$)/;

/** True when Telegram doing `method` twice leaves the same state as once. */
export function isRepeatable(method: string): boolean {
  return repeatable.test(method);
}

/**
 * What to do after attempt number `attempt` (0 for the first) of `method` failed with `error`.
 * `replayable` is false when the body cannot be sent again (an upload read from a stream).
 */
export function resendDecision(method: string, error: unknown, attempt: number, replayable: boolean, options: ResendOptions = {}): RetryDecision {
  const maxAttempts = options.maxAttempts ?? 4;
  const backoff = { initialMs: options.backoffInitialMs ?? 500, capMs: options.backoffCapMs ?? 10_000, random: options.random ?? Math.random };
  if (attempt + 1 >= maxAttempts) return { retry: false, reason: `failed ${attempt + 1} time${attempt === 0 ? '' : 's'}` };
  let ambiguous: boolean;
  if (error instanceof TelegramError) {
    if (error.errorCode === 429) {
      const seconds = error.parameters.retry_after ?? 0;
      const limit = options.maxRetryAfterSeconds ?? 60;
      if (seconds > limit) return { retry: false, reason: `Telegram asks to wait ${seconds} s, more than maxRetryAfterSeconds (${limit} s)` };
      ambiguous = false;
    } else if (error.errorCode >= 500) {
      ambiguous = true;
    } else {
      return { retry: false, reason: `${error.errorCode} is an answer, not a fault` };
    }
  } else if (error instanceof NetworkError) {
    if (error.failure === 'aborted') return { retry: false, reason: 'aborted' };
    ambiguous = !error.notSent;
  } else {
    return { retry: false, reason: 'not a transport fault' };
  }
  if (!replayable) return { retry: false, reason: 'an upload read from a stream cannot be sent twice (use InputFile.fromPath or a Buffer)' };
  if (ambiguous && !options.resendAmbiguous && !isRepeatable(method)) {
    return { retry: false, reason: `the request may have reached Telegram, and ${method} is not sent twice blindly (resendAmbiguous allows it)` };
  }
  return retryPolicy(error, attempt, backoff);
}
