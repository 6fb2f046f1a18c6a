// telepot's Microphone and Listener: the bot broadcasts each message to listeners, and a listener's
// wait(pattern) resolves with the next matching one, or rejects with WaitTooLong.

import { Bot } from './bot.js';
import { maxQueued, receiptOf } from './delivery.js';
import { LoopStopped, WaitTooLong } from './errors.js';
import { chatOf, type Msg } from './glance.js';

/** A value in a pattern: equal to it, matched by a RegExp, accepted by a predicate, or a nested pattern. */
export type PatternValue = string | number | boolean | null | RegExp | ((value: unknown) => boolean) | PatternObject;
export interface PatternObject {
  [field: string]: PatternValue;
}
/** A nested object pattern such as `{ chat: { id: 123 } }`, or a predicate on the whole message. */
export type Pattern = PatternObject | ((msg: Msg) => boolean);

/** True when `value` matches `pattern`: every field of the pattern is present and matches. */
export function matches(pattern: Pattern | PatternValue, value: unknown): boolean {
  if (typeof pattern === 'function') return (pattern as (v: unknown) => boolean)(value);
  if (pattern instanceof RegExp) return typeof value === 'string' && pattern.test(value);
  if (pattern === null || typeof pattern !== 'object') return pattern === value;
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  for (const field of Object.keys(pattern)) {
    if (!matches(pattern[field] as PatternValue, record[field])) return false;
  }
  return true;
}

interface Waiter {
  pattern: Pattern | undefined;
  resolve: (msg: Msg) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}


export class Listener {
  /** Seconds a wait() may last before it rejects with WaitTooLong; 0 or undefined waits forever. */
  timeout: number | undefined;
  /** True after a wait timed out (until the next wait): the handler behind it is winding down. */
  expired = false;
  private readonly mic: Microphone;
  private queue: Msg[] = [];
  private head = 0;
  private waiter: Waiter | undefined;
  private chatId: number | undefined;
  private attached = false;
  /** The message last handed out: its handler has finished with it once it waits again. */
  private current: Msg | undefined;

  constructor(mic: Microphone, timeout?: number) {
    this.mic = mic;
    this.timeout = timeout;
    this.attach();
  }

  /** Receives only messages of this chat (the microphone routes them without scanning every listener). */
  captureChat(chatId: number): void {
    this.detach();
    this.chatId = chatId;
    this.attach();
  }

  get capturedChat(): number | undefined {
    return this.chatId;
  }

  /**
   * Resolves with the next message matching `pattern` (any message without one); others are skipped.
   * Waiting again tells the loop this listener has finished with the message it had.
   */
  wait(pattern?: Pattern): Promise<Msg> {
    if (this.waiter !== undefined) return Promise.reject(new Error('this listener is already waiting'));
    this.finishCurrent();
    this.expired = false;
    this.attach();
    while (this.head < this.queue.length) {
      const msg = this.take();
      if (pattern === undefined || matches(pattern, msg)) {
        this.current = msg;
        return Promise.resolve(msg);
      }
      receiptOf(msg)?.release();
    }
    // After stop, queued messages are still handed out; only an empty queue ends the conversation.
    if (this.mic.stopped) return Promise.reject(new LoopStopped());
    return new Promise<Msg>((resolve, reject) => {
      const waiter: Waiter = { pattern, resolve, reject, timer: undefined };
      const seconds = this.timeout;
      if (seconds !== undefined && seconds > 0) {
        waiter.timer = setTimeout(() => {
          this.waiter = undefined;
          this.expired = true;
          this.detach();
          reject(new WaitTooLong(seconds));
        }, seconds * 1000);
      }
      this.waiter = waiter;
    });
  }

  /** The message this listener's owner is handling already (a delegate's initial one): finished at the next wait. */
  startWith(msg: Msg): void {
    this.finishCurrent();
    receiptOf(msg)?.hold();
    this.current = msg;
  }

  /** Called by the microphone with each message routed to this listener. */
  deliver(msg: Msg): void {
    const waiter = this.waiter;
    if (waiter !== undefined) {
      if (waiter.pattern !== undefined && !matches(waiter.pattern, msg)) return;
      this.waiter = undefined;
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      receiptOf(msg)?.hold();
      this.current = msg;
      waiter.resolve(msg);
      return;
    }
    receiptOf(msg)?.hold();
    if (this.queue.length - this.head >= maxQueued) {
      receiptOf(this.queue[this.head++] as Msg)?.release();
      this.mic.dropped++;
    } else {
      this.mic.queued++;
    }
    this.queue.push(msg);
  }

  /** Takes the queued messages no wait has read: the caller now answers for finishing them. */
  drain(): Msg[] {
    const unread = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.mic.queued -= unread.length;
    return unread;
  }

  /**
   * Rejects a pending wait with `error` and stops receiving messages. Unread messages are finished
   * with, unless the loop is stopping: then they stay unconfirmed and come again after a restart.
   */
  close(error: Error = new LoopStopped()): void {
    this.detach();
    this.finishCurrent();
    const unread = this.drain();
    if (!this.mic.stopped) for (const msg of unread) receiptOf(msg)?.release();
    this.interrupt(error);
  }

  /** Rejects a pending wait with `error`; queued messages stay for later waits. */
  interrupt(error: Error): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) {
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  private finishCurrent(): void {
    const current = this.current;
    this.current = undefined;
    if (current !== undefined) receiptOf(current)?.release();
  }

  private take(): Msg {
    const msg = this.queue[this.head++] as Msg;
    this.mic.queued--;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return msg;
  }

  private attach(): void {
    if (this.attached) return;
    this.attached = true;
    this.mic.add(this, this.chatId);
  }

  private detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.mic.remove(this, this.chatId);
  }
}

/** Broadcasts each message to the listeners attached to it. */
export class Microphone {
  stopped = false;
  /** Messages delivered to listeners and not yet read by a wait. */
  queued = 0;
  /** Messages a listener dropped because its handler never read them (see maxQueued). */
  dropped = 0;
  private readonly everywhere = new Set<Listener>();
  private readonly byChat = new Map<number, Set<Listener>>();

  add(listener: Listener, chatId?: number): void {
    if (chatId === undefined) {
      this.everywhere.add(listener);
      return;
    }
    let set = this.byChat.get(chatId);
    if (set === undefined) this.byChat.set(chatId, (set = new Set()));
    set.add(listener);
  }

  remove(listener: Listener, chatId?: number): void {
    if (chatId === undefined) {
      this.everywhere.delete(listener);
      return;
    }
    const set = this.byChat.get(chatId);
    if (set === undefined) return;
    set.delete(listener);
    if (set.size === 0) this.byChat.delete(chatId);
  }

  send(msg: Msg): void {
    for (const listener of this.everywhere) listener.deliver(msg);
    const chatId = chatOf(msg)?.id;
    if (chatId === undefined) return;
    const set = this.byChat.get(chatId);
    if (set !== undefined) for (const listener of set) listener.deliver(msg);
  }

  /** How many listeners are attached (for tests and leak checks). */
  get size(): number {
    let count = this.everywhere.size;
    for (const set of this.byChat.values()) count += set.size;
    return count;
  }

  /**
   * Rejects pending waits with LoopStopped; a listener with queued messages still hands them out, and
   * rejects once its queue is empty, until reopened.
   */
  stop(): void {
    this.stopped = true;
    const stopped = new LoopStopped();
    for (const listener of [...this.everywhere]) listener.interrupt(stopped);
    for (const set of [...this.byChat.values()]) for (const listener of [...set]) listener.interrupt(stopped);
  }

  /** After stop()'s deadline: queued messages are no longer handed out (they stay unconfirmed), every wait rejects. */
  abandon(): void {
    this.stopped = true;
    const stopped = new LoopStopped();
    for (const listener of [...this.everywhere, ...[...this.byChat.values()].flatMap((set) => [...set])]) {
      listener.drain();
      listener.interrupt(stopped);
    }
  }

  reopen(): void {
    this.stopped = false;
  }
}

/** A Bot whose microphone broadcasts every message to the listeners it creates. */
export class SpeakerBot extends Bot {
  readonly mic = new Microphone();

  /** A listener attached to this bot's microphone; `timeout` in seconds (0: wait forever). */
  createListener(timeout?: number): Listener {
    return new Listener(this.mic, timeout);
  }

  override handle(msg: Msg): unknown {
    this.mic.send(msg);
    return undefined;
  }

  protected override loopStarted(): void {
    this.mic.reopen();
  }

  protected override loopStopped(): void {
    this.mic.stop();
  }

  protected override loopAbandoned(): void {
    this.mic.abandon();
  }
}
