// sendMessage, forwardMessage, editMessageText, deleteMessage, sendLocation and sendChatAction.
import type { Message } from '@grammyjs/types';
import { nowSeconds, replyMarkup, sendBotMessage, type Handler } from './context.js';
import { badRequest } from './http.js';
import { int, num, pick, str } from './params.js';

const TEXT_LIMIT = 4096;

const CHAT_ACTIONS = new Set([
  'typing', 'upload_photo', 'record_video', 'upload_video', 'record_voice', 'upload_voice', 'upload_document',
  'choose_sticker', 'find_location', 'record_video_note', 'upload_video_note',
]);

/** Fields of a message that are about the message rather than its content. */
const NOT_CONTENT = new Set([
  'message_id', 'message_thread_id', 'from', 'sender_chat', 'chat', 'date', 'edit_date', 'reply_to_message',
  'reply_markup', 'forward_origin', 'is_topic_message', 'is_automatic_forward', 'has_protected_content',
  'author_signature', 'via_bot', 'quote', 'external_reply',
]);

function messageText(value: unknown): string {
  const text = str(value) ?? '';
  if (text.trim() === '') throw badRequest('message text is empty');
  if (text.length > TEXT_LIMIT) throw badRequest('message is too long');
  return text;
}

const sendMessage: Handler = (state, ctx) => {
  const chat = state.store.resolve(ctx.params.chat_id);
  const content: Record<string, unknown> = { text: messageText(ctx.params.text) };
  pick(ctx.params, ['entities', 'link_preview_options'], content);
  return sendBotMessage(state, ctx, chat, content);
};

const forwardMessage: Handler = (state, ctx) => {
  const chat = state.store.resolve(ctx.params.chat_id);
  const from = state.store.resolve(ctx.params.from_chat_id);
  const messageId = int(ctx.params.message_id);
  const source = messageId === undefined ? undefined : state.store.get(from.chat.id, messageId);
  if (!source) throw badRequest('message to forward not found');
  const content: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) if (!NOT_CONTENT.has(key)) content[key] = value;
  content.forward_origin = source.forward_origin ?? (source.from
    ? { type: 'user', sender_user: source.from, date: source.date }
    : { type: 'channel', chat: source.chat, message_id: source.message_id, date: source.date });
  const { reply_markup: _markup, reply_parameters: _reply, reply_to_message_id: _replyId, ...params } = ctx.params;
  return sendBotMessage(state, { ...ctx, params }, chat, content);
};

const NOT_MODIFIED = 'message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message';

const editMessageText: Handler = (state, ctx) => {
  const p = ctx.params;
  const text = messageText(p.text);
  if (str(p.inline_message_id)) return true; // inline messages are not kept
  const chat = state.store.resolve(p.chat_id);
  const messageId = int(p.message_id);
  const current = messageId === undefined ? undefined : state.store.get(chat.chat.id, messageId);
  if (!current || messageId === undefined) throw badRequest('message to edit not found');
  if (current.from?.id !== state.bot.id) throw badRequest("message can't be edited");
  if (current.text === undefined) throw badRequest('there is no text in the message to edit');
  const markup = replyMarkup(p.reply_markup);
  const edited: Record<string, unknown> = { ...current, text, edit_date: nowSeconds() };
  delete edited.entities;
  delete edited.reply_markup;
  pick(p, ['entities', 'link_preview_options'], edited);
  if (markup) edited.reply_markup = markup;
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (current.text === text && same(current.entities, edited.entities) && same(current.reply_markup, edited.reply_markup)) {
    throw badRequest(NOT_MODIFIED);
  }
  const message = edited as unknown as Message;
  state.store.replace(message);
  state.botMessage(message, ctx.method);
  return message;
};

const deleteMessage: Handler = (state, ctx) => {
  const chat = state.store.resolve(ctx.params.chat_id);
  const messageId = int(ctx.params.message_id);
  if (messageId === undefined || !state.store.delete(chat.chat.id, messageId)) throw badRequest('message to delete not found');
  return true;
};

const sendLocation: Handler = (state, ctx) => {
  const chat = state.store.resolve(ctx.params.chat_id);
  const latitude = num(ctx.params.latitude);
  const longitude = num(ctx.params.longitude);
  if (latitude === undefined || latitude < -90 || latitude > 90) throw badRequest('wrong latitude specified');
  if (longitude === undefined || longitude < -180 || longitude > 180) throw badRequest('wrong longitude specified');
  const location: Record<string, unknown> = { latitude, longitude };
  for (const key of ['horizontal_accuracy', 'live_period', 'heading', 'proximity_alert_radius']) {
    const value = num(ctx.params[key]);
    if (value !== undefined) location[key] = value;
  }
  return sendBotMessage(state, ctx, chat, { location });
};

const sendChatAction: Handler = (state, ctx) => {
  state.store.resolve(ctx.params.chat_id);
  const action = str(ctx.params.action);
  if (!action || !CHAT_ACTIONS.has(action)) throw badRequest('wrong parameter action in request');
  return true;
};

export const MESSAGE_METHODS: Record<string, Handler> = {
  sendMessage,
  forwardMessage,
  editMessageText,
  deleteMessage,
  sendLocation,
  sendChatAction,
};
