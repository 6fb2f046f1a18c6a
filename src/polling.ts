// The long-poll loop: offsets, dispatch, the retry policy for transport faults, and a graceful stop
// that confirms the offset past every update handed to a handler.

import type { Update } from '@grammyjs/types';
import type { Bot } from './bot.js';
import { NetworkError, TelegramError } from './errors.js';
import { handledUpdateKinds, type Msg } from './glance.js';
import { describeError, type Logger } from './log.js';

export type Handler = (msg: Msg) => unknown;

export interface PollingOptions {
  /** Long-poll timeout sent to getUpdates, in seconds. */
  timeoutSeconds?: number;
  /**
   * Added to the long-poll timeout to make the client-side timeout of each getUpdates, in ms. Keep it
   * at 1000 or more in production: undici checks its timers about every 500 ms, so a smaller margin
   * may cut a healthy poll (harmlessly: it is retried, nothing is lost).
   */
  requestMarginMs?: number;
  /** Updates per getUpdates, 1–100. */
  limit?: number;
  /** Update kinds to receive; default: the kinds handlers understand. */
  allowedUpdates?: ReadonlyArray<Exclude<keyof Update, 'update_id'>>;
  /** Exponential backoff after a fault: the first delay and the cap, in ms. */
  backoffInitialMs?: number;
  backoffCapMs?: number;
  /**
   * Stop fetching while this many updates wait for their handlers (`bot.backlog`), until half are
   * done; after `backlogWaitMs` it fetches anyway, so one stuck handler cannot stall every chat.
   */
  maxBacklog?: number;
  backlogWaitMs?: number;
  /** How long stop() waits for running handlers, in ms. */
  stopDeadlineMs?: number;
  /** Random numbers in [0, 1) for the backoff jitter (seedable in tests). */
  random?: () => number;
  log?: Logger;
}

export type RetryDecision = { retry: true; delayMs: number; reason: string } | { retry: false; reason: string };

/**
 * What to do after getUpdates failed: the whole fault policy in one place. Network errors, 5xx,
 * malformed answers and 409 back off exponentially with jitter up to the cap; 429 waits as long as
 * the server asks; a rejected token stops the loop.
 */
export function retryPolicy(error: unknown, attempt: number, options: { initialMs: number; capMs: number; random: () => number }): RetryDecision {
  const ceiling = Math.min(options.capMs, options.initialMs * 2 ** Math.min(attempt, 30));
  const backoff = ceiling / 2 + (options.random() * ceiling) / 2;
  if (error instanceof TelegramError) {
    if (error.errorCode === 401 || error.errorCode === 404) {
      return { retry: false, reason: `the bot token was rejected (${error.errorCode} ${error.description}): check TELEGRAM_BOT_TOKEN against what @BotFather gave you` };
    }
    if (error.errorCode === 429) {
      const seconds = error.parameters.retry_after;
      if (typeof seconds === 'number' && seconds >= 0) return { retry: true, delayMs: seconds * 1000, reason: `rate limited: retrying after ${seconds} s as the Bot API asks` };
    }
    if (error.errorCode === 409) return { retry: true, delayMs: backoff, reason: `409 ${error.description}` };
    return { retry: true, delayMs: backoff, reason: `${error.errorCode} ${error.description}` };
  }
  if (error instanceof NetworkError) return { retry: true, delayMs: backoff, reason: error.message };
  return { retry: true, delayMs: backoff, reason: describeError(error) };
}

const conflictExplanation =
  'getUpdates got 409 Conflict: another program is receiving this bot\'s updates (a second telepi, or a webhook set ' +
  'elsewhere). Only one may poll at a time: stop the other one, or call deleteWebhook if a webhook is set. Retrying with backoff.';

/** A running message loop. `stop()` ends it gracefully; `done` settles when it has ended. */
export class MessageLoop {
  /** Resolves when the loop has stopped; rejects when it stopped on a fatal error (a rejected token). */
  readonly done: Promise<void>;
  /** The offset of the next getUpdates: one past the last update handed to a handler. */
  offset = 0;
  /** performance.now() of the last successful getUpdates. */
  lastPollAtMs = performance.now();
  /** performance.now() when the last getUpdates ended, well or not: the watchdog checks the loop goes on. */
  lastActivityAtMs = performance.now();
  private confirmedOffset = 0;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly polled: Promise<void>;
  private readonly bot: Bot;
  private readonly handler: Handler;
  private readonly log: Logger;
  private readonly options: Required<Omit<PollingOptions, 'log'>>;
  private explainedConflict = false;

  constructor(bot: Bot, handler: Handler, options: PollingOptions) {
    this.bot = bot;
    this.handler = handler;
    this.log = options.log ?? bot.log;
    this.options = {
      timeoutSeconds: options.timeoutSeconds ?? 30,
      requestMarginMs: options.requestMarginMs ?? 10_000,
      limit: options.limit ?? 100,
      allowedUpdates: options.allowedUpdates ?? handledUpdateKinds,
      backoffInitialMs: options.backoffInitialMs ?? 500,
      backoffCapMs: options.backoffCapMs ?? 30_000,
      stopDeadlineMs: options.stopDeadlineMs ?? 5_000,
      maxBacklog: options.maxBacklog ?? 1000,
      backlogWaitMs: options.backlogWaitMs ?? 30_000,
      random: options.random ?? Math.random,
    };
    bot.onLoopStart();
    this.polled = this.poll();
    this.done = this.polled.then(() => this.stopPromise);
    this.done.catch(() => {});
  }

  get running(): boolean {
    return !this.stopping;
  }

  private async poll(): Promise<void> {
    let attempt = 0;
    const { timeoutSeconds, requestMarginMs, limit, allowedUpdates } = this.options;
    while (!this.stopping) {
      if (this.bot.backlog >= this.options.maxBacklog) await this.waitForBacklog();
      let updates: Update[];
      try {
        const sent = this.offset;
        updates = await this.bot.getUpdates(
          { offset: sent, limit, timeout: timeoutSeconds, allowed_updates: allowedUpdates },
          { timeoutMs: timeoutSeconds * 1000 + requestMarginMs, signal: this.abort.signal },
        );
        this.confirmedOffset = sent;
      } catch (error) {
        this.lastActivityAtMs = performance.now();
        if (this.stopping) break;
        const decision = retryPolicy(error, attempt++, { initialMs: this.options.backoffInitialMs, capMs: this.options.backoffCapMs, random: this.options.random });
        if (!decision.retry) {
          this.log.error(`polling stopped: ${decision.reason}`);
          this.stopping = true;
          this.bot.onLoopStop();
          throw new Error(decision.reason, { cause: error });
        }
        this.reportFault(error, decision.reason, decision.delayMs);
        await this.sleep(decision.delayMs);
        continue;
      }
      if (attempt > 0) this.log.info(`getUpdates works again after ${attempt} failed attempt${attempt === 1 ? '' : 's'}`);
      attempt = 0;
      this.lastPollAtMs = this.lastActivityAtMs = performance.now();
      for (const update of updates) this.dispatch(update);
    }
  }

  /** Waits until the handlers have caught up with half the backlog, or backlogWaitMs has passed. */
  private async waitForBacklog(): Promise<void> {
    const { maxBacklog, backlogWaitMs } = this.options;
    this.log.debug(`${this.bot.backlog} updates wait for their handlers: pausing getUpdates`);
    let caughtUp = false;
    await this.sleep(backlogWaitMs, this.bot.whenBacklogAtMost(Math.floor(maxBacklog / 2)).then(() => (caughtUp = true)));
    if (!caughtUp && !this.stopping) {
      this.log.warn(`${this.bot.backlog} updates still wait for their handlers after ${backlogWaitMs} ms: fetching more anyway`);
    }
  }

  private reportFault(error: unknown, reason: string, delayMs: number): void {
    if (error instanceof TelegramError && error.errorCode === 409) {
      if (!this.explainedConflict) this.log.warn(conflictExplanation);
      this.explainedConflict = true;
    }
    this.log.warn(`getUpdates failed: ${reason}; retrying in ${Math.round(delayMs)} ms`);
  }

  private dispatch(update: Update): void {
    // Never hand an update out twice, even if a server repeats one below the offset.
    if (update.update_id < this.offset) return;
    this.offset = update.update_id + 1;
    let payload: Msg | undefined;
    for (const kind of handledUpdateKinds) {
      payload = update[kind];
      if (payload !== undefined) break;
    }
    if (payload === undefined) {
      this.log.debug(`update ${update.update_id} is of a kind no handler takes; skipped`);
      return;
    }
    let result: unknown;
    try {
      result = this.handler(payload);
    } catch (error) {
      this.handlerFailed(update.update_id, error);
      return;
    }
    if (result instanceof Promise) this.bot.track(result, (error) => this.handlerFailed(update.update_id, error));
  }

  private handlerFailed(updateId: number, error: unknown): void {
    this.log.error(`handler failed on update ${updateId}: ${describeError(error)}`);
  }

  /** Resolves after `ms`, or sooner when the loop stops or `until` settles; leaves no timer behind. */
  private sleep(ms: number, until?: Promise<unknown>): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      void until?.then(done, done);
    });
  }


  /**
   * Ends the loop: aborts the pending getUpdates, rejects pending listener waits, waits for running
   * handlers up to the deadline, then confirms the offset so a restart does not repeat those updates.
   */
  stop(options: { deadlineMs?: number } = {}): Promise<void> {
    this.stopPromise ??= this.shutdown(options.deadlineMs ?? this.options.stopDeadlineMs);
    return this.stopPromise;
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    const alreadyStopped = this.stopping;
    this.stopping = true;
    this.abort.abort();
    await this.polled.catch(() => {});
    if (!alreadyStopped) this.bot.onLoopStop();
    await this.drain(deadlineMs);
    if (this.offset > this.confirmedOffset) {
      try {
        await this.bot.getUpdates({ offset: this.offset, limit: 1, timeout: 0 }, { timeoutMs: 5_000 });
        this.confirmedOffset = this.offset;
      } catch (error) {
        this.log.warn(`could not confirm the offset on stop (${describeError(error)}): the last updates may be handled again after a restart`);
      }
    }
  }

  private async drain(deadlineMs: number): Promise<void> {
    const tasks = [...this.bot.runningTasks];
    if (tasks.length === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
    const outcome = await Promise.race([Promise.allSettled(tasks), deadline]);
    clearTimeout(timer);
    if (outcome === 'late') this.log.warn(`${this.bot.runningTasks.size} handler(s) still running after ${deadlineMs} ms; stopping without them`);
  }
}
