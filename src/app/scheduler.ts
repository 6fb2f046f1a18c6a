// Per-chat interval reports (/1m, /1h, /every 15m) on an injectable clock, in phase across restarts.
import type { Logger } from '../log.js';
import { describeError } from '../log.js';
import { formatDuration } from './duration.js';
import type { Subscription } from './state.js';

/** Wall-clock time and timers; tests inject a fake one. */
export interface Clock {
  /** Wall-clock ms since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days): longer waits are taken in steps.
const maxTimerMs = 2 ** 31 - 1;
// Below this a schedule is a bug or a hand-edited file, not a report rate: refused rather than spun on.
const minIntervalMs = 1000;
// The range of a JavaScript Date: beyond it anchor + k·interval loses the precision the grid needs.
const maxAbsEpochMs = 8.64e15;

/** The first fire time anchorMs + k·intervalMs strictly after nowMs (k may be negative). */
export function nextFireAfter(sub: Subscription, nowMs: number): number {
  const k = Math.floor((nowMs - sub.anchorMs) / sub.intervalMs) + 1;
  return sub.anchorMs + k * sub.intervalMs;
}

export interface ReportSchedulerOptions {
  clock: Clock;
  onReport: (chatId: number) => Promise<void> | void;
  log: Logger;
}

interface Entry {
  sub: Subscription;
  targetMs: number;
  timer: unknown;
}

/**
 * Calls onReport(chatId) at anchorMs + k·intervalMs for each subscription, one timer per subscription.
 * - The report "now" that /1m or /every sends is the caller's; the scheduler starts with the next one.
 * - Reports missed while telepi was down, or while the event loop or the machine stood still, are
 *   skipped: the next fire is always the first grid point strictly after now, never a burst.
 * - A report still running when the next is due makes that tick skip (with a warning); the grid, not the
 *   end of a report, sets the next fire, so a slow report never shifts the phase.
 * - Timers run on the monotonic clock, the grid on the wall clock: after a forward wall-clock jump (NTP
 *   at boot on a Pi without RTC) the pending timer fires as planned and the next fire snaps back onto the
 *   grid; after a backward jump a timer that wakes before its wall-clock time waits again, so no report
 *   comes early.
 */
export class ReportScheduler {
  readonly #clock: Clock;
  readonly #onReport: (chatId: number) => Promise<void> | void;
  readonly #log: Logger;
  readonly #entries = new Map<number, Entry>();
  // Keyed by chat, not entry: a report from before a reschedule still blocks an overlapping one.
  readonly #running = new Set<number>();

  constructor(options: ReportSchedulerOptions) {
    this.#clock = options.clock;
    this.#onReport = options.onReport;
    this.#log = options.log;
  }

  /** Starts (or replaces) the chat's schedule. @throws RangeError for an interval under 1 s or an anchor outside a Date's range. */
  schedule(sub: Subscription): void {
    if (!Number.isFinite(sub.intervalMs) || sub.intervalMs < minIntervalMs || !(Math.abs(sub.anchorMs) <= maxAbsEpochMs)) {
      throw new RangeError(`cannot schedule chat ${sub.chatId}: interval ${sub.intervalMs} ms, anchor ${sub.anchorMs}`);
    }
    this.cancel(sub.chatId);
    const entry: Entry = { sub: { ...sub }, targetMs: nextFireAfter(sub, this.#clock.now()), timer: undefined };
    this.#entries.set(sub.chatId, entry);
    this.#arm(entry);
  }

  /** Stops the chat's reports; false when it had none. A report already running finishes. */
  cancel(chatId: number): boolean {
    const entry = this.#entries.get(chatId);
    if (entry === undefined) return false;
    this.#clock.clearTimeout(entry.timer);
    this.#entries.delete(chatId);
    return true;
  }

  get(chatId: number): Subscription | undefined {
    const entry = this.#entries.get(chatId);
    return entry === undefined ? undefined : { ...entry.sub };
  }

  /** Wall-clock ms of the chat's next report, or undefined when it has none. */
  nextFireMs(chatId: number): number | undefined {
    return this.#entries.get(chatId)?.targetMs;
  }

  /** Every scheduled subscription. */
  list(): Subscription[] {
    return [...this.#entries.values()].map((entry) => ({ ...entry.sub }));
  }

  /** Clears every timer and forgets every subscription; reports already running finish. */
  stop(): void {
    for (const chatId of [...this.#entries.keys()]) this.cancel(chatId);
  }

  #arm(entry: Entry): void {
    const delayMs = Math.min(Math.max(entry.targetMs - this.#clock.now(), 0), maxTimerMs);
    entry.timer = this.#clock.setTimeout(() => this.#wake(entry), delayMs);
  }

  #wake(entry: Entry): void {
    const { chatId, intervalMs } = entry.sub;
    if (this.#entries.get(chatId) !== entry) return;
    const nowMs = this.#clock.now();
    if (nowMs < entry.targetMs) {
      this.#arm(entry);
      return;
    }
    const missed = Math.floor((nowMs - entry.targetMs) / intervalMs);
    if (missed > 0) this.#log.info(`chat ${chatId}: skipped ${missed} missed report(s); the clock moved on`);
    entry.targetMs = nextFireAfter(entry.sub, nowMs);
    // The grid must move forward; if arithmetic ever says otherwise, stop this chat rather than spin.
    if (!(entry.targetMs > nowMs)) {
      this.#log.error(`chat ${chatId}: the next report time ${entry.targetMs} is not after now; its reports are stopped`);
      this.cancel(chatId);
      return;
    }
    this.#arm(entry);
    if (this.#running.has(chatId)) {
      this.#log.warn(`chat ${chatId}: the previous report is still running after ${formatDuration(intervalMs)}; skipping this one`);
      return;
    }
    void this.#report(chatId);
  }

  async #report(chatId: number): Promise<void> {
    this.#running.add(chatId);
    try {
      await this.#onReport(chatId);
    } catch (error) {
      this.#log.warn(`chat ${chatId}: the interval report failed: ${describeError(error)}`);
    } finally {
      this.#running.delete(chatId);
    }
  }
}
