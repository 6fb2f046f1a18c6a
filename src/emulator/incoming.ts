// Realistic updates from a user: text messages (with bot_command entities) and callback queries.
import type { Chat, Message, MessageEntity, Update, User, UserFromGetMe } from '@grammyjs/types';
import { botUser, nowSeconds } from './context.js';
import type { MessageStore } from './store.js';
import type { PushCallbackQueryOptions, PushTextOptions } from './types.js';

const DEFAULT_USER_ID = 42;

function user(id: number, firstName?: string, username?: string): User {
  const u: User = { id, is_bot: false, first_name: firstName ?? 'Tester', language_code: 'en' };
  if (username) u.username = username;
  return u;
}

function chatFor(id: number, type: Chat['type'], from: User): Chat {
  switch (type) {
    case 'private': {
      const chat: Chat.PrivateChat = { id, type, first_name: from.first_name };
      if (from.username) chat.username = from.username;
      return chat;
    }
    case 'group': return { id, type, title: 'Test group' };
    case 'supergroup': return { id, type, title: 'Test supergroup' };
    case 'channel': return { id, type, title: 'Test channel' };
  }
}

function defaultChatId(type: Chat['type'], userId: number): number {
  if (type === 'private') return userId;
  if (type === 'group') return -userId;
  return -1_000_000_000_000 - userId;
}

/** `/command` or `/command@bot` at the start of the text. */
function commandEntities(text: string): MessageEntity[] | undefined {
  if (!text.startsWith('/')) return undefined;
  const match = /^\/[^\s]+/u.exec(text);
  const length = match ? match[0].length : 0;
  return length > 1 ? [{ type: 'bot_command', offset: 0, length }] : undefined;
}

export function textUpdate(store: MessageStore, text: string, opts: PushTextOptions = {}): Omit<Update, 'update_id'> {
  const kind = opts.kind ?? 'message';
  const isChannel = kind === 'channel_post' || kind === 'edited_channel_post';
  const userId = opts.userId ?? DEFAULT_USER_ID;
  const type = opts.chatType ?? (isChannel ? 'channel' : opts.chatId !== undefined && opts.chatId < 0
    ? (opts.chatId <= -1_000_000_000_000 ? 'supergroup' : 'group') : 'private');
  const from = user(userId, opts.firstName, opts.username);
  const chatId = opts.chatId ?? defaultChatId(type, userId);
  const known = opts.firstName === undefined && opts.username === undefined ? store.find(chatId)?.chat : undefined;
  const state = store.chat(chatId, known?.type === type ? known : chatFor(chatId, type, from));
  const edited = kind === 'edited_message' || kind === 'edited_channel_post';
  const messageId = edited && state.lastUserMessageId !== undefined ? state.lastUserMessageId : store.nextMessageId(state);
  const original = edited ? store.get(chatId, messageId) : undefined;
  const message: Record<string, unknown> = { message_id: messageId };
  if (isChannel || type === 'channel') message.sender_chat = state.chat;
  else message.from = from;
  message.chat = state.chat;
  message.date = original?.date ?? nowSeconds();
  if (edited) message.edit_date = nowSeconds();
  message.text = text;
  const entities = commandEntities(text);
  if (entities) message.entities = entities;
  store.add(message as unknown as Message, 'user');
  return { [kind]: message } as Omit<Update, 'update_id'>;
}

let queryCounter = 0; // callback query ids only need to be unique

export function callbackQueryUpdate(store: MessageStore, bot: UserFromGetMe, opts: PushCallbackQueryOptions): Omit<Update, 'update_id'> {
  const userId = opts.userId ?? DEFAULT_USER_ID;
  const known = store.find(userId)?.chat;
  const from = known?.type === 'private' ? user(userId, known.first_name, known.username) : user(userId);
  const chatId = opts.chatId ?? userId;
  const state = store.chat(chatId, store.find(chatId) ? undefined : chatFor(chatId, chatId > 0 ? 'private' : 'group', from));
  const lastBotId = [...state.botMessages.keys()].pop();
  const messageId = opts.messageId ?? lastBotId;
  let message = messageId === undefined ? undefined : store.get(chatId, messageId);
  if (!message) {
    const placeholder = { message_id: messageId ?? store.nextMessageId(state), from: botUser(bot), chat: state.chat, date: nowSeconds(), text: '…' };
    message = store.add(placeholder as unknown as Message, 'other');
  }
  queryCounter += 1;
  const id = `${BigInt(userId) * 4096n + BigInt(queryCounter)}`;
  const chatInstance = `${(BigInt.asUintN(63, BigInt(chatId) * 2654435761n) + BigInt(userId)).toString()}`;
  return { callback_query: { id, from, message, chat_instance: chatInstance, data: opts.data } };
}
