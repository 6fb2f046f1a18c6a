// The indoor climate monitor: readings on demand, and per-chat reports on a schedule that survives
// restarts. A failing sensor is reported once per chat, and again when it works.

import type { ClimateSensor } from '../../hardware/types.js';
import { TelegramError } from '../errors.js';
import { describeError, type Logger } from '../log.js';
import { formatReading } from './format.js';
import { ReportScheduler, type Clock } from './scheduler.js';
import type { StateStore, Subscription } from './state.js';

export interface ClimateServiceOptions {
  sensor: ClimateSensor;
  store: StateStore;
  /** Sends a text to a chat (the bot's sendMessage). */
  send: (chatId: number, text: string) => Promise<unknown>;
  clock: Clock;
  log: Logger;
  /** A read with no answer after this long is a failed one (default 10 s): a stuck I2C bus must not hold the chat. */
  readTimeoutMs?: number;
  /** Called when a report finds that its group became a supergroup, so the chat's other settings (alerts) follow. */
  onMigrate?: (fromChatId: number, toChatId: number) => Promise<unknown>;
}

export type ReadingText = { ok: true; text: string } | { ok: false; text: string; reason: string };

export class ClimateService {
  readonly scheduler: ReportScheduler;
  /** The outcome of the last read, for /status. */
  lastOutcome: ReadingText | undefined;
  private readonly failedChats = new Set<number>();

  constructor(private readonly options: ClimateServiceOptions) {
    this.scheduler = new ReportScheduler({ clock: options.clock, log: options.log, onReport: (chatId) => this.report(chatId) });
  }

  /** Reads the sensor once: the reply to /now, e.g. `21.4°C  45.2%  1,013.2hPa`. */
  async reading(): Promise<ReadingText> {
    let outcome: ReadingText;
    const { clock } = this.options;
    const timeoutMs = this.options.readTimeoutMs ?? 10_000;
    let timer: unknown;
    const late = new Promise<never>((_resolve, reject) => {
      timer = clock.setTimeout(() => reject(new Error(`no answer from the sensor within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      outcome = { ok: true, text: formatReading(await Promise.race([this.options.sensor.read(), late])) };
    } catch (error) {
      const reason = describeError(error);
      outcome = { ok: false, text: `Sensor unavailable: ${reason}`, reason };
    } finally {
      clock.clearTimeout(timer);
    }
    this.lastOutcome = outcome;
    return outcome;
  }

  /** Schedules every subscription the state file holds, in its original phase. */
  resume(): void {
    for (const sub of this.options.store.state.subscriptions) this.scheduler.schedule(sub);
  }

  subscription(chatId: number): Subscription | undefined {
    return this.scheduler.get(chatId);
  }

  /** Reports to `chatId` every `intervalMs` from now on, persisted before it is scheduled. */
  async subscribe(chatId: number, intervalMs: number): Promise<void> {
    const sub: Subscription = { chatId, intervalMs, anchorMs: this.options.clock.now() };
    await this.options.store.update((state) => {
      // A new interval keeps the chat's live message (REPORT_STYLE=edit).
      const liveMessageId = state.subscriptions.find((s) => s.chatId === chatId)?.liveMessageId;
      state.subscriptions = [...state.subscriptions.filter((s) => s.chatId !== chatId), liveMessageId === undefined ? sub : { ...sub, liveMessageId }];
    });
    this.scheduler.schedule(sub);
  }

  /** Stops this chat's reports, persisted before the schedule stops (a failed write leaves both running); false when it had none. */
  async cancel(chatId: number): Promise<boolean> {
    const stored = this.options.store.state.subscriptions.some((s) => s.chatId === chatId);
    if (stored) {
      await this.options.store.update((state) => {
        state.subscriptions = state.subscriptions.filter((s) => s.chatId !== chatId);
      });
    }
    const had = this.scheduler.cancel(chatId);
    this.failedChats.delete(chatId);
    return stored || had;
  }

  /**
   * Moves a chat's subscription to the id its group got on becoming a supergroup, in phase; persisted
   * before it is rescheduled. False when the old chat had none (or the new one has its own already).
   */
  async migrate(fromChatId: number, toChatId: number): Promise<boolean> {
    const sub = this.options.store.state.subscriptions.find((s) => s.chatId === fromChatId);
    if (sub === undefined || this.options.store.state.subscriptions.some((s) => s.chatId === toChatId)) return false;
    // The live message stays behind in the old chat: the new one gets its own.
    const { liveMessageId: _left, ...kept } = sub;
    const moved: Subscription = { ...kept, chatId: toChatId };
    await this.options.store.update((state) => {
      state.subscriptions = [...state.subscriptions.filter((s) => s.chatId !== fromChatId), moved];
    });
    this.scheduler.cancel(fromChatId);
    this.scheduler.schedule(moved);
    if (this.failedChats.delete(fromChatId)) this.failedChats.add(toChatId);
    this.options.log.info(`chat ${fromChatId} became supergroup ${toChatId}: its reports moved there`);
    return true;
  }

  /** One scheduled report: the reading, or the sensor's failure said once until it recovers. */
  async report(chatId: number): Promise<void> {
    const outcome = await this.reading();
    let text: string | undefined;
    if (outcome.ok) {
      text = this.failedChats.delete(chatId) ? `Sensor is back. ${outcome.text}` : outcome.text;
    } else if (!this.failedChats.has(chatId)) {
      this.failedChats.add(chatId);
      text = `${outcome.text}\nI will tell you when it works again.`;
    }
    if (text === undefined) return;
    try {
      await this.options.send(chatId, text);
    } catch (error) {
      const newChatId = migratedTo(error, chatId);
      if (newChatId !== null) {
        // The report goes to the new id now; the subscription follows it even if this one send fails.
        await this.migrate(chatId, newChatId).catch((moveError: unknown) =>
          this.options.log.warn(`chat ${chatId} became supergroup ${newChatId}, but its subscription could not be moved: ${describeError(moveError)}`));
        await this.options.onMigrate?.(chatId, newChatId).catch((moveError: unknown) =>
          this.options.log.warn(`chat ${chatId} became supergroup ${newChatId}, but its other settings could not be moved: ${describeError(moveError)}`));
        await this.options.send(newChatId, text);
        return;
      }
      if (chatIsGone(error)) {
        this.options.log.info(`chat ${chatId} blocked the bot or is gone: its reports are cancelled`);
        await this.cancel(chatId);
        return;
      }
      this.options.log.warn(`report to chat ${chatId} failed: ${describeError(error)}`);
    }
  }

  stop(): void {
    this.scheduler.stop();
  }
}

/**
 * The supergroup a group became, when Telegram refused a send for that reason; else null. Only a group
 * (a negative id) becomes one, and a supergroup's id is negative too: a migrate_to_chat_id for a
 * private chat, to a positive id or to the chat itself is an odd answer, not a move.
 */
export function migratedTo(error: unknown, fromChatId?: number): number | null {
  const id = error instanceof TelegramError ? error.parameters.migrate_to_chat_id : undefined;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id >= 0) return null;
  if (fromChatId !== undefined && (fromChatId >= 0 || fromChatId === id)) return null;
  return id;
}

/** 403 (the user blocked the bot, or it left the group) and "chat not found" will not heal by retrying. */
export function chatIsGone(error: unknown): boolean {
  return error instanceof TelegramError && (error.errorCode === 403 || /chat not found/i.test(error.description));
}
