// REPORT_STYLE=edit: one live message per chat, edited in place by each report instead of a new
// message each time; an unchanged reading is not sent again.
import type { Bot } from '../bot.js';
import { TelegramError } from '../errors.js';

interface LiveMessage {
  messageId: number;
  /** What it shows; unknown for a message recalled after a restart. */
  text: string | undefined;
}

/** Where the live messages' ids outlive the process (the state file's subscriptions). */
export interface LiveMessageMemory {
  recall(chatId: number): number | undefined;
  /** Keeps the id; a failure only means the next restart starts a new live message. */
  remember(chatId: number, messageId: number): Promise<void>;
}

export class LiveReports {
  readonly #messages = new Map<number, LiveMessage>();

  constructor(
    private readonly bot: Pick<Bot, 'sendMessage' | 'editMessageText'>,
    private readonly memory?: LiveMessageMemory,
  ) {}

  /** Shows `text` in the chat's live message: edited when there is one, sent (and remembered) when not. */
  readonly send = async (chatId: number, text: string): Promise<void> => {
    const live = this.#messages.get(chatId) ?? this.#recalled(chatId);
    if (live?.text === text) return;
    if (live !== undefined) {
      try {
        await this.bot.editMessageText([chatId, live.messageId], text);
        live.text = text;
        return;
      } catch (error) {
        if (error instanceof TelegramError && /not modified/i.test(error.description)) return;
        // Deleted by the user, or too old to edit: a new live message takes its place; anything else is the caller's.
        if (!(error instanceof TelegramError && /not found|can't be edited/i.test(error.description))) throw error;
        this.#messages.delete(chatId);
      }
    }
    const message = await this.bot.sendMessage(chatId, text);
    this.#messages.set(chatId, { messageId: message.message_id, text });
    // Not waited for: the report is out either way, and a card that cannot take the id costs only a new
    // live message after a restart (the state store finishes queued writes before it closes).
    void this.memory?.remember(chatId, message.message_id).catch(() => undefined);
  };

  #recalled(chatId: number): LiveMessage | undefined {
    const messageId = this.memory?.recall(chatId);
    if (messageId === undefined) return undefined;
    const live = { messageId, text: undefined };
    this.#messages.set(chatId, live);
    return live;
  }
}
