// What the method implementations share: the emulator's state, the request being served, and the
// common part of every message the bot sends (id, from, chat, date, reply, reply_markup).
import type { BotCommand, Message, User, UserFromGetMe } from '@grammyjs/types';
import { badRequest } from './http.js';
import type { UploadedPart } from './multipart.js';
import { bool, int, obj, type Params } from './params.js';
import type { ChatState, MessageStore } from './store.js';
import type { FileStore } from './files.js';
import type { UpdateQueue } from './updates.js';

export interface WebhookState {
  url: string;
  maxConnections: number;
  allowedUpdates: string[] | undefined;
  hasCustomCertificate: boolean;
  ipAddress: string | undefined;
}

export interface EmulatorState {
  readonly bot: UserFromGetMe;
  readonly store: MessageStore;
  readonly fileStore: FileStore;
  readonly updates: UpdateQueue;
  /** Bot commands by scope + language (see commandsKey). */
  readonly commands: Map<string, BotCommand[]>;
  webhook: WebhookState | undefined;
  readonly maxPollTimeoutSeconds: number;
  /** Called for every message the bot sends or edits. */
  botMessage(message: Message, method: string): void;
}

export interface MethodContext {
  /** The method name as requested. */
  readonly method: string;
  readonly params: Params;
  readonly files: Map<string, UploadedPart>;
  /** Aborted when the client goes away or the emulator closes. */
  readonly signal: AbortSignal;
}

export type Handler = (state: EmulatorState, ctx: MethodContext) => unknown;

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function botUser(bot: UserFromGetMe): User {
  return { id: bot.id, is_bot: true, first_name: bot.first_name, username: bot.username };
}

const BUTTON_ACTIONS = [
  'url', 'callback_data', 'web_app', 'login_url', 'switch_inline_query', 'switch_inline_query_current_chat',
  'switch_inline_query_chosen_chat', 'copy_text', 'callback_game', 'pay',
];

/** A reply_markup parameter, checked roughly like Telegram; returned when it is an inline keyboard. */
export function replyMarkup(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const markup = obj(value);
  if (!markup) throw badRequest("can't parse reply keyboard markup JSON object");
  if (!('inline_keyboard' in markup)) return undefined; // reply keyboards and friends are not echoed
  const rows = markup.inline_keyboard;
  if (!Array.isArray(rows) || rows.some((row) => !Array.isArray(row))) throw badRequest('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays');
  for (const row of rows as unknown[][]) {
    for (const button of row) {
      const b = obj(button);
      if (!b || typeof b.text !== 'string') throw badRequest("can't parse inline keyboard button: Field \"text\" must be of type String");
      if (!BUTTON_ACTIONS.some((action) => b[action] !== undefined)) {
        throw badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard");
      }
      if (typeof b.callback_data === 'string' && (b.callback_data.length === 0 || Buffer.byteLength(b.callback_data) > 64)) {
        throw badRequest('BUTTON_DATA_INVALID');
      }
    }
  }
  return markup;
}

/** The message being replied to, from reply_parameters or the older reply_to_message_id. */
function replyTarget(state: EmulatorState, chat: ChatState, params: Params): Message | undefined {
  const reply = obj(params.reply_parameters);
  const id = int(reply?.message_id) ?? int(params.reply_to_message_id);
  if (id === undefined) return undefined;
  const inChat = int(reply?.chat_id) ?? chat.chat.id;
  const target = state.store.get(inChat, id);
  const lenient = bool(reply?.allow_sending_without_reply) ?? bool(params.allow_sending_without_reply) ?? false;
  if (!target && !lenient) throw badRequest('message to be replied not found');
  return target;
}

/**
 * Creates, stores and announces a message from the bot in `chat` with `content` (text, photo, …),
 * after checking the parameters every send method shares.
 */
export function sendBotMessage(state: EmulatorState, ctx: MethodContext, chat: ChatState, content: Record<string, unknown>): Message {
  const markup = replyMarkup(ctx.params.reply_markup);
  const replyTo = replyTarget(state, chat, ctx.params);
  const message: Record<string, unknown> = {
    message_id: state.store.nextMessageId(chat),
    from: botUser(state.bot),
    chat: chat.chat,
    date: nowSeconds(),
  };
  if (replyTo) {
    const { reply_to_message: _nested, ...shallow } = replyTo as Message & { reply_to_message?: unknown };
    message.reply_to_message = shallow;
  }
  Object.assign(message, content);
  if (bool(ctx.params.has_protected_content) ?? bool(ctx.params.protect_content)) message.has_protected_content = true;
  if (markup) message.reply_markup = markup;
  const stored = state.store.add(message as unknown as Message, 'bot');
  state.botMessage(stored, ctx.method);
  return stored;
}
