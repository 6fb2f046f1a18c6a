// telepot's delegation: for each message, a seed function picks a seed, and a delegate factory spawns
// a delegate (an async task) for a seed that has none alive.

import type { Chat } from '@grammyjs/types';
import type { BotOptions } from './bot.js';
import { receiptOf } from './delivery.js';
import { LoopStopped, WaitTooLong } from './errors.js';
import { chatOf, flavor, isCallbackQuery, type Msg, type Payload, type UpdateKind } from './glance.js';
import { describeError } from './log.js';
import { SpeakerBot, type Listener } from './speaker.js';

/** A number or string maps to at most one live delegate; an array always spawns; null does nothing. */
export type Seed = number | string | readonly unknown[] | null | undefined;
export type SeedFn = (msg: Msg) => Seed;
/** What a delegate factory receives, as in telepot: `[bot, msg, seed]`. */
export type SeedTuple = [bot: DelegatorBot, msg: Msg, seed: Seed];
/** A delegate is an async task: it is alive until its promise settles. */
export type Delegate = Promise<unknown>;
export type DelegateFactory = (seedTuple: SeedTuple) => Delegate | void;
export type DelegationPattern = readonly [seedFn: SeedFn, factory: DelegateFactory];

interface LiveDelegate {
  settled: boolean;
  /** The message it was spawned for: its listeners hold it until their first wait(). */
  initial: Msg;
  listeners: Listener[];
  /** Called once it settles, with the messages its listeners had queued but no wait had read. */
  onSettled?: (unread: Msg[]) => void;
}

type PatternState = { seedFn: SeedFn; factory: DelegateFactory; live: Map<number | string, LiveDelegate> };

/** A delegate is alive until it settles, or once every listener it made has timed out. */
function isAlive(delegate: LiveDelegate): boolean {
  if (delegate.settled) return false;
  if (delegate.listeners.length === 0) return true;
  for (const listener of delegate.listeners) if (!listener.expired) return true;
  return false;
}

export class DelegatorBot extends SpeakerBot {
  private readonly patterns: ReadonlyArray<PatternState>;
  private spawning: LiveDelegate | undefined;

  constructor(token: string, patterns: ReadonlyArray<DelegationPattern>, options?: BotOptions) {
    super(token, options);
    this.patterns = patterns.map(([seedFn, factory]) => ({ seedFn, factory, live: new Map() }));
  }

  /** Broadcasts the message to live listeners first, then spawns delegates for seeds that have none. */
  override handle(msg: Msg): unknown {
    this.mic.send(msg);
    for (const pattern of this.patterns) {
      let seed: Seed;
      try {
        seed = pattern.seedFn(msg);
      } catch (error) {
        this.log.error(`seed function failed: ${describeError(error)}`);
        continue;
      }
      if (seed === null || seed === undefined) continue;
      if (Array.isArray(seed)) {
        this.spawn(pattern.factory, msg, seed);
        continue;
      }
      const key = seed as number | string;
      const current = pattern.live.get(key);
      if (current === undefined || !isAlive(current)) this.spawnFor(pattern, key, msg, []);
    }
    return undefined;
  }

  /** Spawns the delegate of `key`, handing it `queued` messages as if they had come after `msg`. */
  private spawnFor(pattern: PatternState, key: number | string, msg: Msg, queued: readonly Msg[]): void {
    const spawned = this.spawn(pattern.factory, msg, key);
    if (spawned === undefined) return;
    for (const later of queued) for (const listener of spawned.listeners) listener.deliver(later);
    pattern.live.set(key, spawned);
    spawned.onSettled = (unread) => {
      if (pattern.live.get(key) === spawned) pattern.live.delete(key);
      // A handler that failed while messages waited for it: a new one gets them, in order.
      const [next, ...rest] = unread;
      if (next !== undefined && !this.mic.stopped && !pattern.live.has(key)) this.spawnFor(pattern, key, next, rest);
    };
  }

  override createListener(timeout?: number): Listener {
    const listener = super.createListener(timeout);
    if (this.spawning !== undefined) {
      this.spawning.listeners.push(listener);
      listener.startWith(this.spawning.initial);
    }
    return listener;
  }

  /** Live delegates per pattern (for tests and leak checks). */
  get delegateCount(): number {
    return this.patterns.reduce((sum, p) => sum + p.live.size, 0);
  }

  /**
   * Starts a delegate. Its initial message is finished with once one of its listeners waits, or,
   * for a delegate without listeners, once it settles.
   */
  private spawn(factory: DelegateFactory, msg: Msg, seed: Seed): LiveDelegate | undefined {
    const delegate: LiveDelegate = { settled: false, initial: msg, listeners: [] };
    const receipt = receiptOf(msg);
    receipt?.hold();
    let task: Delegate | void;
    this.spawning = delegate;
    try {
      task = factory([this, msg, seed]);
    } catch (error) {
      this.log.error(`delegate factory failed: ${describeError(error)}`);
      receipt?.release();
      return undefined;
    } finally {
      this.spawning = undefined;
    }
    const ownsInitial = delegate.listeners.length === 0;
    if (!ownsInitial) receipt?.release();
    const settle = () => {
      delegate.settled = true;
      const unread = delegate.listeners.map((listener) => listener.drain());
      // Handed to a new delegate first (it holds them), then let go here; on stop they stay unfinished.
      delegate.onSettled?.([...new Set(unread.flat())]);
      for (const listener of delegate.listeners) listener.close(new LoopStopped());
      if (!this.mic.stopped) for (const msgs of unread) for (const queued of msgs) receiptOf(queued)?.release();
      if (ownsInitial) receipt?.release();
    };
    this.track(Promise.resolve(task).then(settle, (error: unknown) => {
      settle();
      if (error instanceof WaitTooLong || error instanceof LoopStopped) this.log.debug(`delegate for ${describeSeed(seed)} ended: ${describeError(error)}`);
      else this.log.error(`delegate for ${describeSeed(seed)} failed: ${describeError(error)}`);
    }));
    return delegate;
  }
}

function describeSeed(seed: Seed): string {
  return Array.isArray(seed) ? 'an array seed' : `seed ${String(seed)}`;
}

type ChatType = Chat['type'];

function chatIdSeed(accept: (id: number) => boolean, types: readonly ChatType[] | undefined): SeedFn {
  return (msg) => {
    const chat = chatOf(msg);
    if (chat === undefined) return null;
    if (types !== undefined && !types.includes(chat.type)) return null;
    return accept(chat.id) ? chat.id : null;
  };
}

/** Seeds by chat id: one delegate per chat (optionally only chats of the given types). */
export function perChatId(types?: readonly ChatType[]): SeedFn {
  return chatIdSeed(() => true, types);
}

/** Seeds by chat id, only for the chats in `ids`. */
export function perChatIdIn(ids: Iterable<number>, types?: readonly ChatType[]): SeedFn {
  const set = new Set(ids);
  return chatIdSeed((id) => set.has(id), types);
}

/** Seeds by chat id, for every chat except those in `ids`. */
export function perChatIdExcept(ids: Iterable<number>, types?: readonly ChatType[]): SeedFn {
  const set = new Set(ids);
  return chatIdSeed((id) => !set.has(id), types);
}

/** A seed function that takes any update kind's payload (inline queries, polls, member changes…). */
export type PayloadSeedFn = (payload: Payload) => Seed;

/** The user a payload comes from: `from` of messages, queries and member changes, else its `user`. */
function senderId(payload: Payload): number | undefined {
  if ('from' in payload && payload.from !== undefined) return payload.from.id;
  if ('user' in payload && payload.user !== undefined) return payload.user.id;
  return undefined;
}

/** Seeds by the sender's user id, across chats (telepot's per_from_id); optionally only some update kinds. */
export function perFromId(kinds?: readonly UpdateKind[]): PayloadSeedFn {
  return (payload: Payload) => (kinds === undefined || kinds.includes(flavor(payload)) ? (senderId(payload) ?? null) : null);
}

/** Seeds inline queries and chosen inline results by their user (telepot's per_inline_from_id). */
export function perInlineFromId(): PayloadSeedFn {
  return perFromId(['inline_query', 'chosen_inline_result']);
}

/**
 * Seeds callback queries by the message their button is on (telepot's per_callback_query_origin):
 * `"<chatId>:<messageId>"` for a chat message, the inline_message_id for an inline one.
 */
export function perCallbackQueryOrigin(origins: 'all' | 'chat' | 'inline' = 'all'): PayloadSeedFn {
  return (payload: Payload) => {
    if (!isCallbackQuery(payload)) return null;
    if (payload.inline_message_id !== undefined) return origins === 'chat' ? null : payload.inline_message_id;
    const message = payload.message;
    return message === undefined || origins === 'inline' ? null : `${message.chat.id}:${message.message_id}`;
  };
}

/** Seeds callback queries by their message's chat id (telepot's per_callback_query_chat_id). */
export function perCallbackQueryChatId(types?: readonly ChatType[]): PayloadSeedFn {
  const byChat = chatIdSeed(() => true, types);
  return (payload: Payload) => (isCallbackQuery(payload) ? byChat(payload) : null);
}

/** A delegate factory that calls `fn` with the seed tuple: `(t) => fn(t)`. */
export function call(fn: (seedTuple: SeedTuple) => unknown): DelegateFactory {
  return (seedTuple) => Promise.resolve(fn(seedTuple));
}

/** What a delegate is made from: constructed with the seed tuple (and options), then run(). */
export interface Runnable {
  run(): Promise<unknown>;
}
export type RunnableClass<O = undefined> = new (seedTuple: SeedTuple, options: O) => Runnable;

/** A delegate factory that constructs `Cls` from the seed tuple and awaits its run(): `(t) => new Cls(t).run()`. */
export function createRun(Cls: new (seedTuple: SeedTuple) => Runnable): DelegateFactory;
export function createRun<O>(Cls: RunnableClass<O>, options: O): DelegateFactory;
export function createRun<O>(Cls: RunnableClass<O | undefined>, options?: O): DelegateFactory {
  return (seedTuple) => new Cls(seedTuple, options).run();
}
