// Outgoing flow control: paces message sends under Telegram's rates (overall, per chat, per group) so
// a report to hundreds of chats meets no 429, while a lone reply goes out at once.

/** At most `count` requests within any `windowMs`. */
export interface RateWindow {
  count: number;
  windowMs: number;
}

/** Monotonic time and timers; tests inject a fake one. */
export interface FlowClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RateLimits {
  /** Every send of the bot: Telegram's ~30 messages/s. */
  global: RateWindow;
  /** Sends to one private chat (positive chat id): about 1/s, with short bursts tolerated. */
  perChat: RateWindow;
  /** Sends to one group, supergroup or channel (negative id or @username): 20/min. */
  perGroup: RateWindow;
}

export const telegramRateLimits: RateLimits = {
  global: { count: 30, windowMs: 1000 },
  perChat: { count: 3, windowMs: 3000 },
  perGroup: { count: 20, windowMs: 60_000 },
};

const systemClock: FlowClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The methods Telegram's message limits count: those that post a message into a chat. */
export function isMessageSend(method: string): boolean {
  return (method.startsWith('send') && method !== 'sendChatAction') || method.startsWith('forward') || method.startsWith('copy');
}

/**
 * One sliding window. A request counts from when it is handed out until `windowMs` after its answer
 * came back: the server received it somewhere in between, so spacing by answers can never overrun it,
 * whatever the network delay.
 */
class Window {
  private inFlight = 0;
  private readonly doneAtMs: number[] = [];
  private head = 0;
  private blockedUntilMs = 0;

  constructor(private readonly rate: RateWindow) {}

  /** ms until a request may start: 0 now, Infinity until one in flight is answered. */
  waitMs(nowMs: number): number {
    if (nowMs < this.blockedUntilMs) return this.blockedUntilMs - nowMs;
    const { count, windowMs } = this.rate;
    while (this.head < this.doneAtMs.length && (this.doneAtMs[this.head] as number) + windowMs <= nowMs) this.head++;
    if (this.head > 256 && this.head * 2 > this.doneAtMs.length) {
      this.doneAtMs.splice(0, this.head);
      this.head = 0;
    }
    const recent = this.doneAtMs.length - this.head;
    if (this.inFlight + recent < count) return 0;
    return recent > 0 ? (this.doneAtMs[this.head] as number) + windowMs - nowMs : Infinity;
  }

  take(): void {
    this.inFlight++;
  }

  finish(nowMs: number): void {
    this.inFlight--;
    this.doneAtMs.push(nowMs);
  }

  /** Telegram said 429: nothing more until it allows. */
  block(untilMs: number): void {
    this.blockedUntilMs = Math.max(this.blockedUntilMs, untilMs);
  }

  idle(nowMs: number): boolean {
    return this.inFlight === 0 && this.waitMs(nowMs) === 0 && this.head === this.doneAtMs.length;
  }
}

interface Waiter {
  resolve(lane: Lane): void;
  reject(error: Error): void;
}

/** The sends of one chat, in order. */
interface Lane {
  readonly key: number | string;
  readonly window: Window;
  readonly queue: Waiter[];
}

export class SendScheduler {
  private readonly limits: RateLimits;
  private readonly clock: FlowClock;
  private readonly global: Window;
  private readonly lanes = new Map<number | string, Lane>();
  /** Lanes with queued sends, oldest first: the pump serves them in turn. */
  private readonly waiting = new Set<Lane>();
  private timer: unknown;
  private timerAtMs = Infinity;
  private sweepAt = 1024;
  private sweepAfterMs: number;

  constructor(limits: Partial<RateLimits> = {}, clock: FlowClock = systemClock) {
    this.limits = { ...telegramRateLimits, ...limits };
    for (const [name, rate] of Object.entries(this.limits) as Array<[string, RateWindow]>) {
      if (!(rate.count >= 1) || !(rate.windowMs >= 0)) {
        throw new RangeError(`flow control: ${name} must allow at least 1 request per window of 0 ms or more, got ${rate.count} per ${rate.windowMs} ms`);
      }
    }
    this.clock = clock;
    this.global = new Window(this.limits.global);
    this.sweepAfterMs = clock.now() + this.longestWindowMs;
  }

  private get longestWindowMs(): number {
    return Math.max(this.limits.global.windowMs, this.limits.perChat.windowMs, this.limits.perGroup.windowMs);
  }

  /**
   * A permit to send to `chatId` now (the common case, no promise), or a promise of one once the
   * rates allow. Hand it back with release() when the answer has come.
   */
  admit(chatId: number | string, signal?: AbortSignal): Lane | Promise<Lane> {
    const lane = this.laneOf(chatId);
    const nowMs = this.clock.now();
    if (lane.queue.length === 0 && this.global.waitMs(nowMs) === 0 && lane.window.waitMs(nowMs) === 0) {
      this.global.take();
      lane.window.take();
      return lane;
    }
    return new Promise<Lane>((resolve, reject) => {
      const onAbort = () => {
        const index = lane.queue.indexOf(waiter);
        if (index >= 0) lane.queue.splice(index, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted while waiting for its turn under the rate limits'));
      };
      const waiter: Waiter = {
        resolve: (granted) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(granted);
        },
        reject,
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      lane.queue.push(waiter);
      this.waiting.add(lane);
      this.pump();
    });
  }

  /** The request with this permit has its answer (or failed): its slot frees `windowMs` from now. */
  release(lane: Lane): void {
    const nowMs = this.clock.now();
    this.global.finish(nowMs);
    lane.window.finish(nowMs);
    if (this.waiting.size > 0) this.pump();
  }

  /** Holds every send to `chatId` for `ms` (Telegram answered 429 with retry_after). */
  pause(chatId: number | string, ms: number): void {
    this.laneOf(chatId).window.block(this.clock.now() + ms);
  }

  /** Sends waiting for their turn. */
  get queued(): number {
    let count = 0;
    for (const lane of this.waiting) count += lane.queue.length;
    return count;
  }

  /** Chats tracked (recently sent to or waiting): bounded by the sweep. */
  get chats(): number {
    return this.lanes.size;
  }

  /** Rejects every waiting send (the client closes). */
  close(error: Error): void {
    for (const lane of this.waiting) for (const waiter of lane.queue.splice(0)) waiter.reject(error);
    this.waiting.clear();
    this.clock.clearTimeout(this.timer);
    this.timerAtMs = Infinity;
  }

  private laneOf(chatId: number | string): Lane {
    let lane = this.lanes.get(chatId);
    if (lane === undefined) {
      if (this.lanes.size >= this.sweepAt || (this.lanes.size >= 1024 && this.clock.now() >= this.sweepAfterMs)) this.sweep();
      const isGroup = typeof chatId === 'string' || chatId < 0;
      lane = { key: chatId, window: new Window(isGroup ? this.limits.perGroup : this.limits.perChat), queue: [] };
      this.lanes.set(chatId, lane);
    }
    return lane;
  }

  /** Forgets chats whose windows are empty, so ten thousand chats reported once cost nothing later. */
  private sweep(): void {
    const nowMs = this.clock.now();
    for (const [key, lane] of this.lanes) if (lane.queue.length === 0 && lane.window.idle(nowMs)) this.lanes.delete(key);
    this.sweepAt = Math.max(1024, this.lanes.size * 2);
    this.sweepAfterMs = nowMs + this.longestWindowMs;
  }

  /** Hands out every permit the windows allow, lane by lane, and sets a timer for the next one. */
  private pump(): void {
    const nowMs = this.clock.now();
    let nextMs = Infinity;
    serving: for (const lane of this.waiting) {
      while (lane.queue.length > 0) {
        const globalMs = this.global.waitMs(nowMs);
        if (globalMs > 0) {
          nextMs = Math.min(nextMs, globalMs);
          break serving;
        }
        const laneMs = lane.window.waitMs(nowMs);
        if (laneMs > 0) {
          nextMs = Math.min(nextMs, laneMs);
          break;
        }
        this.global.take();
        lane.window.take();
        (lane.queue.shift() as Waiter).resolve(lane);
      }
      if (lane.queue.length === 0) this.waiting.delete(lane);
    }
    if (nextMs !== Infinity) this.wakeIn(nowMs, nextMs);
  }

  private wakeIn(nowMs: number, ms: number): void {
    const atMs = nowMs + ms;
    if (atMs >= this.timerAtMs) return;
    this.clock.clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = this.clock.setTimeout(() => {
      this.timerAtMs = Infinity;
      this.pump();
    }, Math.ceil(ms));
  }
}

export type Permit = Lane;
