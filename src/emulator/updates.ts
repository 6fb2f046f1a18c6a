// The pending-update queue behind getUpdates: offsets confirm, long polls wait for pushes, a newer
// poll makes the older waiting one fail with 409, and allowed_updates filters like Telegram.
import type { Update } from '@grammyjs/types';
import { pollConflict, webhookConflict } from './http.js';

/** Telegram's default: every update type except these three. */
const NOT_BY_DEFAULT = new Set(['chat_member', 'message_reaction', 'message_reaction_count']);

export interface PollRequest {
  offset?: number;
  limit: number;
  /** Seconds to wait when there is nothing to return (already capped). */
  timeout: number;
  /** allowed_updates, when given in this request. */
  allowedUpdates?: string[];
}

interface Waiter {
  wake(): void;
  fail(error: Error): void;
}

/** Thrown into a waiting poll whose client went away or whose server closed: nothing is answered. */
export class PollAborted extends Error {
  constructor() {
    super('long poll abandoned');
  }
}

export function updateType(update: Update): string | undefined {
  for (const key of Object.keys(update)) if (key !== 'update_id') return key;
  return undefined;
}

export class UpdateQueue {
  private items: Update[] = [];
  private head = 0;
  private nextId: number;
  private allowed: Set<string> | undefined; // undefined: Telegram's default set
  private waiter: Waiter | undefined;
  confirmedOffset = 0;
  webhookActive = false;

  constructor(firstUpdateId = 1) {
    this.nextId = firstUpdateId;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  get allowedUpdates(): string[] {
    return this.allowed ? [...this.allowed] : [];
  }

  push(update: Omit<Update, 'update_id'>): Update {
    const full = { ...update, update_id: this.nextId++ } as Update;
    this.items.push(full);
    if (this.waiter && !this.webhookActive && this.isAllowed(full)) this.waiter.wake();
    return full;
  }

  /** Forgets every pending update (drop_pending_updates). */
  dropAll(): void {
    this.items = [];
    this.head = 0;
  }

  /** setWebhook / deleteWebhook: a waiting poll cannot go on while a webhook is set. */
  setWebhookActive(active: boolean): void {
    this.webhookActive = active;
    if (active) this.waiter?.fail(webhookConflict());
  }

  /** Ends a waiting poll without an answer (close()). */
  abandonWaiting(): void {
    this.waiter?.fail(new PollAborted());
  }

  async poll(request: PollRequest, signal: AbortSignal): Promise<Update[]> {
    if (this.webhookActive) throw webhookConflict();
    this.waiter?.fail(pollConflict());
    if (request.allowedUpdates) this.allowed = request.allowedUpdates.length ? new Set(request.allowedUpdates) : undefined;
    if (request.offset !== undefined) this.confirm(request.offset);
    const ready = this.select(request.limit);
    if (ready.length > 0 || request.timeout <= 0) return ready;
    await this.wait(request.timeout * 1000, signal);
    return this.select(request.limit);
  }

  private wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(new PollAborted());
        return;
      }
      const settle = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (this.waiter === waiter) this.waiter = undefined;
      };
      const onAbort = (): void => {
        settle();
        reject(new PollAborted());
      };
      const waiter: Waiter = {
        wake: () => { settle(); resolve(); },
        fail: (error) => { settle(); reject(error); },
      };
      const timer = setTimeout(waiter.wake, ms);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = waiter;
    });
  }

  private isAllowed(update: Update): boolean {
    const type = updateType(update);
    if (type === undefined) return true;
    return this.allowed ? this.allowed.has(type) : !NOT_BY_DEFAULT.has(type);
  }

  private confirm(offset: number): void {
    if (offset < 0) {
      // -N: only the last N updates stay; all earlier ones are forgotten.
      this.head = Math.max(this.head, this.items.length - Math.min(-offset, this.size));
      const first = this.items[this.head];
      const effective = first ? first.update_id : this.nextId;
      this.confirmedOffset = Math.max(this.confirmedOffset, effective);
    } else {
      while (this.head < this.items.length && (this.items[this.head]?.update_id ?? 0) < offset) this.head++;
      this.confirmedOffset = Math.max(this.confirmedOffset, offset);
    }
    this.compact();
  }

  /** Up to `limit` pending updates of allowed types. Unallowed ones at the end are dropped, as Telegram never delivers them. */
  private select(limit: number): Update[] {
    const out: Update[] = [];
    let lastMatch = this.head - 1;
    let i = this.head;
    for (; i < this.items.length && out.length < limit; i++) {
      const update = this.items[i] as Update;
      if (this.isAllowed(update)) {
        out.push(update);
        lastMatch = i;
      }
    }
    if (i === this.items.length && lastMatch < this.items.length - 1) {
      if (lastMatch < this.head) {
        this.head = this.items.length;
        this.compact();
      } else {
        this.items.length = lastMatch + 1;
      }
    }
    return out;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
