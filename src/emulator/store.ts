// Chats and messages the emulator knows about: per-chat message ids (shared by the user's and the
// bot's messages, as in Telegram), the messages themselves, and what the bot sent, in order.
import type { Chat, Message } from '@grammyjs/types';
import { badRequest } from './http.js';
import { int, str } from './params.js';

export interface ChatState {
  chat: Chat;
  nextMessageId: number;
  messages: Map<number, Message>;
  /** Messages created by the bot in this chat, in creation order, latest version. */
  botMessages: Map<number, Message>;
  lastUserMessageId: number | undefined;
}

/** A chat as Telegram would describe one with this id, when nothing better is known. */
export function defaultChat(id: number): Chat {
  if (id > 0) return { id, type: 'private', first_name: `User ${id}` };
  if (id <= -1_000_000_000_000) return { id, type: 'supergroup', title: `Supergroup ${-id}` };
  return { id, type: 'group', title: `Group ${-id}` };
}

export class MessageStore {
  private readonly chats = new Map<number, ChatState>();
  private readonly usernames = new Map<string, number>();
  /** Every bot message, in creation order (a Map keeps a key's place when its value is replaced). */
  private readonly botLog = new Map<string, { chatId: number; messageId: number }>();

  /** The chat with this id, created on first use; `chat` (when given) replaces what was known. */
  chat(id: number, chat?: Chat): ChatState {
    let state = this.chats.get(id);
    if (!state) {
      state = { chat: chat ?? defaultChat(id), nextMessageId: 1, messages: new Map(), botMessages: new Map(), lastUserMessageId: undefined };
      this.chats.set(id, state);
    } else if (chat) {
      state.chat = chat;
    }
    if (chat && 'username' in chat && chat.username) this.usernames.set(chat.username.toLowerCase(), id);
    return state;
  }

  /** The chat a `chat_id` parameter names: an integer id (any is accepted) or a known @username. */
  resolve(value: unknown): ChatState {
    const id = int(value);
    if (id !== undefined && id !== 0 && Number.isSafeInteger(id)) return this.chat(id);
    const name = str(value);
    if (name?.startsWith('@')) {
      const known = this.usernames.get(name.slice(1).toLowerCase());
      if (known !== undefined) return this.chat(known);
    }
    throw badRequest('chat not found');
  }

  /** The chat if it is known, without creating it. */
  find(id: number): ChatState | undefined {
    return this.chats.get(id);
  }

  nextMessageId(state: ChatState): number {
    return state.nextMessageId++;
  }

  /** Stores a message in its chat: one the bot sent (recorded in order), a user's, or another. */
  add(message: Message, origin: 'bot' | 'user' | 'other'): Message {
    const state = this.chat(message.chat.id);
    state.messages.set(message.message_id, message);
    if (message.message_id >= state.nextMessageId) state.nextMessageId = message.message_id + 1;
    if (origin === 'bot') {
      state.botMessages.set(message.message_id, message);
      this.botLog.set(`${message.chat.id}:${message.message_id}`, { chatId: message.chat.id, messageId: message.message_id });
    } else if (origin === 'user') {
      state.lastUserMessageId = message.message_id;
    }
    return message;
  }

  get(chatId: number, messageId: number): Message | undefined {
    return this.chats.get(chatId)?.messages.get(messageId);
  }

  /** Replaces the stored version of an existing message (an edit). */
  replace(message: Message): void {
    const state = this.chat(message.chat.id);
    state.messages.set(message.message_id, message);
    if (state.botMessages.has(message.message_id)) state.botMessages.set(message.message_id, message);
  }

  /** Deletes a message from its chat; the bot's record of having sent it stays. */
  delete(chatId: number, messageId: number): boolean {
    return this.chats.get(chatId)?.messages.delete(messageId) ?? false;
  }

  /** The bot's messages (latest versions), in the order they were sent; in one chat when chatId is given. */
  sentMessages(chatId?: number): Message[] {
    if (chatId !== undefined) return [...(this.chats.get(chatId)?.botMessages.values() ?? [])];
    const out: Message[] = [];
    for (const { chatId: c, messageId } of this.botLog.values()) {
      const message = this.chats.get(c)?.botMessages.get(messageId);
      if (message) out.push(message);
    }
    return out;
  }
}
