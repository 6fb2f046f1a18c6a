// The long-poll loop: offsets, dispatch, the retry policy for transport faults, and a graceful stop.
// An update is confirmed to Telegram only once its handler has finished with it (see delivery.ts).

import type { Update } from '@grammyjs/types';
import { loopAccess, type Bot, type LoopAccess } from './bot.js';
import { DeliveryLedger, dispatch, maxQueued, type AnyHandler, type Receipt } from './delivery.js';
import { TelegramError } from './errors.js';
import { chatOf, handledUpdateKinds, payloadIn, type Msg } from './glance.js';
import { Inbox } from './inbox.js';
import { describeError, type Logger } from './log.js';
import { retryPolicy } from './retry-policy.js';
import { updateList } from './update-list.js';

export type { AnyHandler, Handler, HandlerFor } from './delivery.js';
export { retryPolicy, type RetryDecision } from './retry-policy.js';
export { updateList } from './update-list.js';

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
  /** The longest a 429's retry_after is obeyed, in ms: a broken or hostile answer cannot park the loop for days. */
  retryAfterCapMs?: number;
  /**
   * A directory for the durable inbox (inbox.ts): fetched updates are kept there (one fsync per batch)
   * and confirmed to Telegram at once, so a busy chat never holds back another; unfinished ones are
   * handed out again after a restart. Without it, confirmation waits for the oldest unfinished update.
   */
  inboxDir?: string;
  /** With an inbox: stop fetching while this many updates are unfinished, until half are done. */
  maxBacklog?: number;
  /**
   * An update unfinished this long (ms) stops holding back the confirmation, with a warning naming
   * it: one stuck handler cannot stall every chat. That update will not come again after a crash.
   */
  stuckAfterMs?: number;
  /** Without an inbox, while a handler holds the oldest update: how often to look for new ones, in ms. */
  recheckMs?: number;
  /** How long stop() waits for handlers to finish what is queued for them, in ms. */
  stopDeadlineMs?: number;
  /** Random numbers in [0, 1) for the backoff jitter (seedable in tests). */
  random?: () => number;
  log?: Logger;
}

/** The chat an update belongs to, if any (for the inbox's fetch-ahead rule). */
function chatIdOf(update: Update): number | undefined {
  const payload = payloadIn(update);
  return payload === undefined ? undefined : chatOf(payload as Msg)?.id;
}

const conflictExplanation =
  'getUpdates got 409 Conflict: another program is receiving this bot\'s updates (a second telepi, or a webhook set ' +
  'elsewhere). Only one may poll at a time: stop the other one, or call deleteWebhook if a webhook is set. Retrying with backoff.';

/** How long stop() waits for the last getUpdates that confirms the offset, and for the inbox to close. */
const confirmTimeoutMs = 3_000;

/** A running message loop. `stop()` ends it gracefully; `done` settles when it has ended. */
export class MessageLoop {
  /** Resolves when the loop has stopped; rejects when it stopped on a fatal error (a rejected token). */
  readonly done: Promise<void>;
  /** Resolves once the inbox (if any) is open and what it kept has been handed out again. */
  readonly ready: Promise<void>;
  private markReady: () => void = () => {};
  /** performance.now() of the last successful getUpdates. */
  lastPollAtMs = performance.now();
  /** performance.now() when the last getUpdates ended, well or not: the watchdog checks the loop goes on. */
  lastActivityAtMs = performance.now();
  private readonly ledger: DeliveryLedger;
  private inbox: Inbox | undefined;
  private confirmedOffset = 0;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly polled: Promise<void>;
  private readonly access: LoopAccess;
  private readonly bot: Bot;
  private readonly handler: AnyHandler;
  private readonly log: Logger;
  private readonly options: Required<Omit<PollingOptions, 'log' | 'inboxDir'>> & { inboxDir: string | undefined };
  private explainedConflict = false;

  constructor(bot: Bot, handler: AnyHandler, options: PollingOptions) {
    this.bot = bot;
    this.access = bot[loopAccess]();
    this.handler = handler;
    this.log = options.log ?? bot.log;
    this.options = {
      timeoutSeconds: options.timeoutSeconds ?? 30,
      requestMarginMs: options.requestMarginMs ?? 10_000,
      limit: options.limit ?? 100,
      allowedUpdates: options.allowedUpdates ?? handledUpdateKinds,
      backoffInitialMs: options.backoffInitialMs ?? 500,
      backoffCapMs: options.backoffCapMs ?? 30_000,
      retryAfterCapMs: options.retryAfterCapMs ?? 600_000,
      inboxDir: options.inboxDir,
      // Below a listener's queue limit, so that the backlog of one busy chat never overflows its queue.
      maxBacklog: Math.min(options.maxBacklog ?? 20_000, maxQueued - 100),
      stuckAfterMs: options.stuckAfterMs ?? 60_000,
      recheckMs: options.recheckMs ?? 250,
      stopDeadlineMs: options.stopDeadlineMs ?? 5_000,
      random: options.random ?? Math.random,
    };
    this.ledger = new DeliveryLedger((receipt) => this.inbox?.finished(receipt.updateId));
    this.access.started();
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.polled = this.poll();
    void this.polled.catch(() => {}).finally(() => this.markReady());
    this.done = this.polled.then(() => this.stopPromise);
    this.done.catch(() => {});
  }

  get running(): boolean {
    return !this.stopping;
  }

  /** The offset the next getUpdates sends: every update below it is finished (or kept in the inbox). */
  get offset(): number {
    return this.ledger.mark;
  }

  /** Updates handed out whose handlers have not finished with them. */
  get unfinished(): number {
    return this.ledger.unfinished;
  }

  private async poll(): Promise<void> {
    await this.openInbox();
    this.markReady();
    let attempt = 0;
    const { timeoutSeconds, requestMarginMs, limit, allowedUpdates } = this.options;
    while (!this.stopping) {
      await this.waitForRoom();
      if (this.stopping) break;
      let updates: Update[];
      const offset = this.ledger.mark;
      try {
        updates = updateList(await this.bot.getUpdates(
          { offset, limit, timeout: timeoutSeconds, allowed_updates: allowedUpdates },
          { timeoutMs: timeoutSeconds * 1000 + requestMarginMs, signal: this.abort.signal },
        ));
        this.confirmedOffset = offset;
      } catch (error) {
        this.lastActivityAtMs = performance.now();
        if (this.stopping) break;
        const decision = retryPolicy(error, attempt++, {
          initialMs: this.options.backoffInitialMs, capMs: this.options.backoffCapMs, random: this.options.random, retryAfterCapMs: this.options.retryAfterCapMs,
        });
        if (!decision.retry) {
          this.log.error(`polling stopped: ${decision.reason}`);
          this.stopping = true;
          this.access.stopped();
          await this.inbox?.close();
          throw new Error(decision.reason, { cause: error });
        }
        this.reportFault(error, decision.reason, decision.delayMs);
        await this.sleep(decision.delayMs);
        continue;
      }
      if (attempt > 0) this.log.info(`getUpdates works again after ${attempt} failed attempt${attempt === 1 ? '' : 's'}`);
      attempt = 0;
      this.lastPollAtMs = this.lastActivityAtMs = performance.now();
      const fresh = this.take(updates);
      // Only updates already handed out: nothing new on the server right now, and those handlers are slower
      // than a round trip. With an inbox they go into it, and the next poll waits for new ones; without,
      // ask again once the offset can move past them (asking again with the same offset at once would spin).
      if (fresh.length === 0 && updates.length > 0 && !(await this.spill())) {
        await this.waitFor(() => this.ledger.holdingCount === 0 && this.ledger.mark !== offset, this.options.recheckMs);
      }
    }
  }

  /** Hands out the updates not seen before, in id order; returns their receipts. */
  private take(updates: Update[]): Receipt[] {
    const fresh: Receipt[] = [];
    const nowMs = performance.now();
    for (let index = 0; index < updates.length; index++) {
      const update = updates[index] as Update;
      const id = update.update_id;
      const arrival = this.ledger.classify(id, index === 0);
      if (arrival === 'seen') continue;
      if (arrival === 'far' && this.ledger.nextId > 0) {
        this.log.warn(`update ${id} is far from the sequence (next expected about ${this.ledger.nextId}; Telegram renumbers after a week ` +
          'without updates): handled, but the offset stays until the server sends it again first, so no update is confirmed away');
      }
      const receipt = this.ledger.open(id, arrival, false, false, nowMs);
      if (this.inbox !== undefined) {
        receipt.update = update;
        this.ledger.countChat(receipt, chatIdOf(update));
      }
      fresh.push(receipt);
      dispatch(update, this.handler, receipt, this.log, this.access.track);
    }
    return fresh;
  }

  /**
   * With an inbox: writes every update still holding back the confirmation into it (one fsync), after
   * which they no longer do. False when there was nothing to write, no inbox, or the disk failed.
   */
  private async spill(): Promise<boolean> {
    const inbox = this.inbox;
    if (inbox === undefined || this.ledger.holdingCount === 0) return false;
    const receipts = this.ledger.holdingReceipts();
    for (const receipt of receipts) if (receipt.update !== undefined) inbox.stage(receipt.update);
    if (!(await inbox.commit(this.ledger.nextId))) return false;
    this.ledger.madeDurable(receipts);
    return true;
  }

  private async openInbox(): Promise<void> {
    const dir = this.options.inboxDir;
    if (dir === undefined) return;
    try {
      this.inbox = await Inbox.open(dir, this.log, this.access.identity);
    } catch (error) {
      this.log.error(`the inbox in ${dir} cannot be used (${describeError(error)}): running without it, so a busy chat may delay others`);
      return;
    }
    this.ledger.resume(this.inbox.nextId);
    const replayed = this.inbox.replay();
    if (replayed.length > 0) this.log.info(`handing out again ${replayed.length} update(s) the last run had not finished`);
    for (const update of replayed) {
      const receipt = this.ledger.open(update.update_id, 'new', true, true);
      this.ledger.countChat(receipt, chatIdOf(update));
      dispatch(update, this.handler, receipt, this.log, this.access.track);
    }
  }

  /**
   * Waits until fetching makes sense: while at most a tenth of a batch holds the confirmation (each
   * getUpdates repeats those from the mark: waiting for fewer brings more new ones per request, waiting
   * for none would stall the pipeline). A tenth measured best at 1,000 chats (bench/delivery.ts): a
   * quarter repeated a third more updates, none at all left the pipe empty while the next batch came.
   *
   * With an inbox, updates that would hold the confirmation longer go into it instead, and fetching
   * goes on past them: at once for an update queued behind another of its chat (a busy chat must not
   * hold back the others), after recheckMs for handlers slower than that. Updates that finish quickly,
   * nearly all of them, are never written: the inbox costs the SD card only what is slow.
   */
  private async waitForRoom(): Promise<void> {
    this.giveUpStuck();
    const { limit, recheckMs } = this.options;
    const room = limit / 10;
    if (this.inbox !== undefined) {
      const { maxBacklog } = this.options;
      if (this.ledger.unfinished >= maxBacklog) {
        this.log.debug(`${this.ledger.unfinished} updates wait for their handlers: pausing getUpdates`);
        while (!this.stopping && this.ledger.unfinished > maxBacklog / 2) await this.waitFor(() => this.ledger.unfinished <= maxBacklog / 2, 60_000);
        return;
      }
      // Fetching ahead is for reaching quiet chats behind a few flooded ones. With many chats busy at once
      // their handlers have work enough, and fetching further would only queue updates in memory (the
      // collector pays for every one). The wait is short, so many slow handlers cannot hold others back.
      if (this.ledger.busyChats >= limit) await this.waitFor(() => this.ledger.busyChats < limit, recheckMs);
      // Handlers that finish at once (within a turn of the event loop) are done before anything is judged.
      if (this.ledger.holdingCount > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const queued = this.ledger.queuedBehind;
      if (!queued && this.ledger.holdingCount > room) await this.waitFor(() => this.ledger.holdingCount <= room, recheckMs);
      if (!queued && this.ledger.holdingCount <= room) return;
      if (await this.spill()) return;
      // The disk failed: wait as without an inbox (so a full card costs fairness, never an update).
    }
    while (!this.stopping && this.ledger.holdingCount > room) {
      await this.waitFor(() => this.ledger.holdingCount <= room, Number.POSITIVE_INFINITY);
      this.giveUpStuck();
    }
  }

  /** Confirms past updates unfinished for longer than stuckAfterMs, naming each in the log. */
  private giveUpStuck(): void {
    const limitMs = this.options.stuckAfterMs;
    for (;;) {
      const oldest = this.ledger.oldestHolding();
      if (oldest === undefined || performance.now() - oldest.heldSinceMs < limitMs) return;
      this.log.warn(`update ${oldest.updateId} is still unfinished after ${limitMs} ms: confirming it anyway so other updates go on; ` +
        'it will not come again after a crash');
      oldest.finish();
    }
  }

  /** Resolves when `ready()` holds after a change, after `maxMs`, when the oldest update gets stuck, or on stop. */
  private waitFor(ready: () => boolean, maxMs: number): Promise<void> {
    if (ready()) return Promise.resolve();
    const oldest = this.ledger.oldestHolding();
    const stuckInMs = oldest === undefined ? Number.POSITIVE_INFINITY : oldest.heldSinceMs + this.options.stuckAfterMs - performance.now();
    const ms = Math.max(0, Math.min(maxMs, stuckInMs));
    let unsubscribe = () => {};
    const changed = new Promise<void>((resolve) => {
      unsubscribe = this.ledger.onChange(() => {
        if (ready()) resolve();
      });
    });
    return this.sleep(ms, changed).finally(unsubscribe);
  }

  private reportFault(error: unknown, reason: string, delayMs: number): void {
    if (error instanceof TelegramError && error.errorCode === 409) {
      if (!this.explainedConflict) this.log.warn(conflictExplanation);
      this.explainedConflict = true;
    }
    this.log.warn(`getUpdates failed: ${reason}; retrying in ${Math.round(delayMs)} ms`);
  }

  /** Resolves after `ms` (never, when infinite), or sooner when the loop stops or `until` settles; leaves no timer. */
  private sleep(ms: number, until?: Promise<unknown>): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      signal.addEventListener('abort', done);
      if (signal.aborted) done();
      void until?.then(done, done);
    });
  }

  /**
   * Ends the loop: aborts the pending getUpdates, lets handlers finish what is queued for them until
   * the deadline (waits with nothing queued reject with LoopStopped), then confirms the offset past
   * every finished update. Unfinished ones stay unconfirmed and come again after a restart.
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
    if (!alreadyStopped) this.access.stopped();
    await this.drain(deadlineMs);
    const answering = await this.startSequence();
    const offset = this.ledger.mark;
    if (answering && offset > this.confirmedOffset) {
      try {
        await this.bot.getUpdates({ offset, limit: 1, timeout: 0 }, { timeoutMs: confirmTimeoutMs });
        this.confirmedOffset = offset;
      } catch (error) {
        this.log.warn(`could not confirm the offset on stop (${describeError(error)}): the last updates may be handled again after a restart`);
      }
    }
    if (this.ledger.unfinished > 0) this.log.info(`${this.ledger.unfinished} update(s) left unfinished: they come again after a restart`);
    await this.inbox?.close(confirmTimeoutMs);
  }

  /**
   * Stopped before the sequence started (the first updates are confirmed only once the server repeats
   * them): asks the server once what it holds, so what was handled is not handed out again.
   */
  private async startSequence(): Promise<boolean> {
    if (this.ledger.nextId > 0 || !this.ledger.handedOutAny) return true;
    try {
      const held = updateList(await this.bot.getUpdates({ offset: 0, limit: this.options.limit, timeout: 0 }, { timeoutMs: confirmTimeoutMs }));
      for (const [index, update] of held.entries()) this.ledger.classify(update.update_id, index === 0);
      return true;
    } catch (error) {
      // One wait for a server that does not answer, not two.
      this.log.warn(`could not confirm the offset on stop (${describeError(error)}): the last updates may be handled again after a restart`);
      return false;
    }
  }

  /** Waits for running handlers and delegates, new ones included, up to the deadline. */
  private async drain(deadlineMs: number): Promise<void> {
    const running = this.bot.runningTasks;
    if (running.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
    let outcome: unknown;
    while (running.size > 0 && outcome !== 'late') outcome = await Promise.race([Promise.allSettled([...running]), deadline]);
    clearTimeout(timer);
    if (outcome !== 'late') return;
    this.log.warn(`${running.size} handler(s) still running after ${deadlineMs} ms; stopping without them`);
    this.access.abandoned();
  }
}
