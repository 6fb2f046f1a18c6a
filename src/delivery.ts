// Delivery: which fetched updates a handler has not finished with. The loop confirms updates only
// below the oldest unfinished one (the low-water mark), so a crash repeats updates and never loses one.

import type { Update } from '@grammyjs/types';
import { payloadIn, type Msg, type Payload, type UpdateKind } from './glance.js';
import { describeError, type Logger } from './log.js';

/**
 * One update's claim on the confirmation, held by whoever still has to finish with it: the loop
 * while the handler runs, each listener it was queued for, a delegate until its first wait().
 */
export class Receipt {
  private holds = 0;
  private done = false;
  /** Kept in the inbox: it does not hold the confirmation back. */
  durable = false;
  /** performance.now() when it began holding back the confirmation (for stuckAfterMs). */
  heldSinceMs = 0;
  /** The chat it is counted against while unfinished (DeliveryLedger.countChat). */
  chatId: number | undefined;
  /** The update itself, kept while it may still have to go into the inbox. */
  update: Update | undefined;

  constructor(
    readonly updateId: number,
    /** True when this update was handed out before (replayed from the inbox after a restart). */
    readonly redelivered: boolean,
    private readonly onFinished: (receipt: Receipt) => void,
  ) {}

  get finished(): boolean {
    return this.done;
  }

  hold(): void {
    if (!this.done) this.holds++;
  }

  release(): void {
    if (this.done || --this.holds > 0) return;
    this.finish();
  }

  /** Finishes it whatever still holds it (a stuck handler's update, given up on). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.onFinished(this);
  }
}

/**
 * Where a payload keeps its receipt: a non-enumerable symbol property, invisible to JSON, Object.keys and
 * console.log. (A WeakMap was measured dearer: every message became an ephemeron the collector traces.)
 */
const receiptKey = Symbol('telepi.receipt');
type Carrier = { [receiptKey]?: Receipt };
/** Receipts of payloads that cannot take a property (frozen by the caller of handleUpdate). */
const frozenReceipts = new WeakMap<object, Receipt>();

/** One descriptor for every payload (a new one each time would be garbage on the hot path). */
const receiptSlot: PropertyDescriptor = { value: undefined, configurable: true, writable: true };

function attachReceipt(payload: object, receipt: Receipt): void {
  if (!Object.isExtensible(payload)) {
    frozenReceipts.set(payload, receipt);
    return;
  }
  receiptSlot.value = receipt;
  Object.defineProperty(payload, receiptKey, receiptSlot);
  receiptSlot.value = undefined;
}

/** The receipt of the update that carried `msg` (undefined for a message the loop did not deliver). */
export function receiptOf(msg: Msg): Receipt | undefined {
  return (msg as Carrier)[receiptKey] ?? frozenReceipts.get(msg);
}

/** True when `msg` was handed to a handler before a restart that did not finish with it (at least once). */
export function isRedelivery(msg: Msg): boolean {
  return receiptOf(msg)?.redelivered ?? false;
}

/**
 * Messages kept for one listener that is busy between waits. Each holds its update unfinished, so the
 * loop stops fetching long before this (`maxBacklog` is kept below it); only a listener that never waits
 * again, while the loop gives up on its updates one by one (`stuckAfterMs`), reaches it, and loses the oldest.
 */
export const maxQueued = 50_000;

/** An update id this far past the sequence is not taken as the sequence until the server repeats it. */
export const farGap = 100_000;

export type Arrival = 'new' | 'seen' | 'far';

/**
 * The updates handed out and not finished, and the offset that is safe to confirm: one past the last
 * update of the sequence, or the oldest unfinished update that nothing durable holds (the inbox).
 */
export class DeliveryLedger {
  /** Unfinished updates that hold back the confirmation, in id order. */
  private readonly holding = new Map<number, Receipt>();
  /** Unfinished updates that do not: kept in the inbox, or far from the sequence. */
  private readonly free = new Map<number, Receipt>();
  private readonly far = new Set<number>();
  private next = 0;
  private opened = 0;
  /** Unfinished updates per chat, for those counted with countChat(). */
  private readonly perChat = new Map<number, number>();
  private changed: (() => void) | undefined;
  /** One function for every receipt (a closure each would be garbage on the hot path). */
  private readonly close = (receipt: Receipt): void => this.closed(receipt);

  constructor(private readonly onFinished: (receipt: Receipt) => void = () => {}) {}

  /** One past the highest update id of the sequence handed out (0 before any). */
  get nextId(): number {
    return this.next;
  }

  /** The offset the next getUpdates may send: everything below it is finished or kept durably. */
  get mark(): number {
    for (const id of this.holding.keys()) return id;
    return this.next;
  }

  /** Whether any update was handed out since this ledger began. */
  get handedOutAny(): boolean {
    return this.opened > 0;
  }

  get unfinished(): number {
    return this.holding.size + this.free.size;
  }

  /** Chats with an update counted by countChat() still unfinished. */
  get busyChats(): number {
    return this.perChat.size;
  }

  /** Unfinished updates that hold back the confirmation, oldest first. */
  holdingReceipts(): Receipt[] {
    return [...this.holding.values()];
  }

  /** Whether an update holding the confirmation waits behind another unfinished one of its chat (a busy chat). */
  get queuedBehind(): boolean {
    for (const receipt of this.holding.values()) {
      if (receipt.chatId !== undefined && (this.perChat.get(receipt.chatId) ?? 0) >= 2) return true;
    }
    return false;
  }

  /** Counts an unfinished update against its chat until it finishes; call it before handing the update out. */
  countChat(receipt: Receipt, chatId: number | undefined): void {
    if (chatId === undefined || receipt.finished) return;
    receipt.chatId = chatId;
    this.perChat.set(chatId, (this.perChat.get(chatId) ?? 0) + 1);
  }

  /** Updates between the mark and the end of the sequence that still hold it. */
  get holdingCount(): number {
    return this.holding.size;
  }

  /** Starts the sequence after a restart: updates below `nextId` are known (in the inbox). */
  resume(nextId: number): void {
    this.next = Math.max(this.next, nextId);
  }

  /**
   * Whether an update the server sent is new, already handed out, or far from the sequence, above or
   * below it (handled once, but the sequence moves to it only when the server sends it again first in
   * an answer). Telegram picks a random id after a week without updates, lower or higher, and keeps
   * answering with it whatever offset is sent until one past it is.
   */
  classify(updateId: number, firstInAnswer: boolean): Arrival {
    if (this.far.has(updateId)) {
      if (firstInAnswer || (updateId >= this.next && updateId - this.next < farGap)) this.adopt(updateId);
      return 'seen';
    }
    // Before any update, the sequence is unknown: the first one starts it only once the server sends it again.
    if (this.next === 0) return 'far';
    if (updateId < this.next) return this.next - updateId >= farGap ? 'far' : 'seen';
    return updateId - this.next >= farGap ? 'far' : 'new';
  }

  /** The server really holds this far update: the sequence goes on from it (up or down). */
  private adopt(updateId: number): void {
    this.far.delete(updateId);
    this.next = updateId < this.next ? updateId + 1 : Math.max(this.next, updateId + 1);
    const receipt = this.free.get(updateId);
    if (receipt === undefined || receipt.durable) return;
    // Part of the sequence now: unfinished, it holds the confirmation like any other.
    this.free.delete(updateId);
    this.holding.set(updateId, receipt);
    receipt.heldSinceMs = performance.now();
  }

  /**
   * Records an update handed out; `durable` ones (in the inbox) do not hold the confirmation back.
   * `nowMs` is performance.now() (one reading serves a whole batch).
   */
  open(updateId: number, arrival: 'new' | 'far', durable: boolean, redelivered = false, nowMs = performance.now()): Receipt {
    const receipt = new Receipt(updateId, redelivered, this.close);
    receipt.durable = durable;
    this.opened++;
    if (arrival === 'far') {
      this.far.add(updateId);
      // A hostile or broken server could send endless far ids: keep the newest few thousand.
      if (this.far.size > 4096) this.far.delete(this.far.values().next().value as number);
      this.free.set(updateId, receipt);
    } else {
      this.next = Math.max(this.next, updateId + 1);
      (durable ? this.free : this.holding).set(updateId, receipt);
      receipt.heldSinceMs = nowMs;
    }
    return receipt;
  }

  /** The updates are now in the inbox: they no longer hold the confirmation back. */
  madeDurable(receiptsKept: readonly Receipt[]): void {
    for (const receipt of receiptsKept) {
      receipt.durable = true;
      if (receipt.finished || !this.holding.delete(receipt.updateId)) continue;
      this.free.set(receipt.updateId, receipt);
    }
    this.changed?.();
  }

  /** The oldest update holding the mark (its heldSinceMs says since when). */
  oldestHolding(): Receipt | undefined {
    for (const receipt of this.holding.values()) return receipt;
    return undefined;
  }

  /** Calls `listener` after every change until the returned function is called. */
  onChange(listener: () => void): () => void {
    this.changed = listener;
    return () => {
      if (this.changed === listener) this.changed = undefined;
    };
  }

  private closed(receipt: Receipt): void {
    const id = receipt.updateId;
    if (!this.holding.delete(id)) this.free.delete(id);
    const chatId = receipt.chatId;
    if (chatId !== undefined) {
      const left = (this.perChat.get(chatId) ?? 1) - 1;
      if (left > 0) this.perChat.set(chatId, left);
      else this.perChat.delete(chatId);
    }
    this.onFinished(receipt);
    this.changed?.();
  }
}

/**
 * A handler of payloads: by default messages and callback queries (`Msg`); a loop whose allowedUpdates
 * asks for other kinds hands it those kinds' payloads too (`HandlerFor<K>` types that).
 */
export type Handler<P = Msg> = (msg: P) => unknown;

/** The payload a handler gets for the update kinds `K`: `HandlerFor<'message' | 'inline_query'>` takes Message | InlineQuery. */
export type HandlerFor<K extends UpdateKind> = Handler<NonNullable<Update[K]>>;

/** Any handler the loop may call; it hands each one the payloads its kinds carry. */
export type AnyHandler = Handler<Msg> | Handler<Payload>;

/**
 * Hands an update's payload to `handler` and releases `receipt` once the handler has finished with
 * it (its promise settled, or the listeners it was queued for asked for the next message).
 */
export function dispatch(update: Update, handler: AnyHandler, receipt: Receipt, log: Logger, track: (task: Promise<unknown>) => void): void {
  // Kinds beyond the default five reach handlers only when allowedUpdates asks for them.
  const payload = payloadIn(update) as (Msg & Payload) | undefined;
  receipt.hold();
  if (payload === undefined) {
    log.debug(`update ${update.update_id} carries no payload a handler takes; skipped`);
    receipt.release();
    return;
  }
  attachReceipt(payload, receipt);
  let result: unknown;
  try {
    result = handler(payload);
  } catch (error) {
    log.error(`handler failed on update ${update.update_id}: ${describeError(error)}`);
    receipt.release();
    return;
  }
  if (!(result instanceof Promise)) {
    receipt.release();
    return;
  }
  const task = result.then(
    () => receipt.release(),
    (error: unknown) => {
      log.error(`handler failed on update ${update.update_id}: ${describeError(error)}`);
      receipt.release();
    },
  );
  track(task);
}
