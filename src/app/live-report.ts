// REPORT_STYLE=edit: one live message per chat, edited in place by each report instead of a new
// message each time; an unchanged reading is not sent again.
import type { Bot } from '../bot.js';
import { TelegramError } from '../errors.js';

interface LiveMessage {
  messageId: number;
  text: string;
}

export class LiveReports {
  readonly #messages = new Map<number, LiveMessage>();

  constructor(private readonly bot: Pick<Bot, 'sendMessage' | 'editMessageText'>) {}

  /** Shows `text` in the chat's live message: edited when there is one, sent (and remembered) when not. */
  readonly send = async (chatId: number, text: string): Promise<void> => {
    const live = this.#messages.get(chatId);
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
  };
}
