// Telegram's message rate limits, enforced on demand: too many sends overall, to one chat or to one
// group within a window are answered 429 with retry_after, as Telegram does.
// Apart from the client's flow.ts on purpose: the emulator models Telegram and the client obeys it; one
// shared definition would let a test of the client agree with itself.
import type { Chat } from '@grammyjs/types';

export interface EmulatorRateWindow {
  count: number;
  windowMs: number;
}

export interface EmulatorRateLimits {
  global: EmulatorRateWindow;
  perChat: EmulatorRateWindow;
  perGroup: EmulatorRateWindow;
}

/** The published limits: ~30 messages/s overall, about 1/s in a chat (short bursts pass), 20/min in a group. */
export const TELEGRAM_RATE_LIMITS: EmulatorRateLimits = {
  global: { count: 30, windowMs: 1000 },
  perChat: { count: 3, windowMs: 3000 },
  perGroup: { count: 20, windowMs: 60_000 },
};

/** Methods that post a message into a chat: the ones the limits count. */
export const MESSAGE_SEND = /^(?:send(?!chataction$)|forward|copy)/i;

/** Arrival times of accepted sends within the window, oldest first. */
class Arrivals {
  private times: number[] = [];

  constructor(private readonly rate: EmulatorRateWindow) {}

  /** ms until one more fits, 0 if it fits now. */
  waitMs(nowMs: number): number {
    const { count, windowMs } = this.rate;
    let stale = 0;
    while (stale < this.times.length && (this.times[stale] as number) + windowMs <= nowMs) stale++;
    if (stale > 0) this.times = this.times.slice(stale);
    return this.times.length < count ? 0 : (this.times[this.times.length - count] as number) + windowMs - nowMs;
  }

  add(nowMs: number): void {
    this.times.push(nowMs);
  }
}

export class RateLimiter {
  private readonly global: Arrivals;
  private readonly chats = new Map<number, Arrivals>();

  constructor(private readonly limits: EmulatorRateLimits) {
    this.global = new Arrivals(limits.global);
  }

  /** Counts a send to `chat` at `nowMs`; returns the seconds to wait instead when it is one too many. */
  admit(chat: Chat, nowMs: number): number | undefined {
    let arrivals = this.chats.get(chat.id);
    if (!arrivals) {
      arrivals = new Arrivals(chat.type === 'private' ? this.limits.perChat : this.limits.perGroup);
      this.chats.set(chat.id, arrivals);
    }
    const waitMs = Math.max(this.global.waitMs(nowMs), arrivals.waitMs(nowMs));
    if (waitMs > 0) return Math.max(1, Math.ceil(waitMs / 1000));
    this.global.add(nowMs);
    arrivals.add(nowMs);
    return undefined;
  }
}
