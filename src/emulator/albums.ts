// sendMediaGroup, editMessageMedia, sendPaidMedia and sticker sets: media described by InputMedia
// objects whose files are `attach://name` parts of the same request (or file_ids and URLs).
import { randomBytes } from 'node:crypto';
import type { Message } from '@grammyjs/types';
import { nowSeconds, sendBotMessage, type EmulatorState, type Handler, type MethodContext } from './context.js';
import type { MediaKind } from './files.js';
import { badRequest } from './http.js';
import { mediaContent, resolveFile } from './media.js';
import { arr, int, obj, str, type Params } from './params.js';

const CAPTION_LIMIT = 1024;
const ALBUM_KINDS: ReadonlySet<string> = new Set(['photo', 'video', 'document', 'audio']);
/** Message fields an edit of the media replaces. */
const MEDIA_FIELDS = ['photo', 'video', 'document', 'audio', 'animation', 'caption', 'caption_entities'];

interface InputMedia {
  kind: MediaKind;
  item: Params;
}

function inputMedia(value: unknown, where: string, kinds: ReadonlySet<string> = ALBUM_KINDS): InputMedia {
  const item = obj(value);
  const type = str(item?.type);
  if (!item || !type || !kinds.has(type)) throw badRequest(`${where}: media type must be one of ${[...kinds].join(', ')}`);
  return { kind: type as MediaKind, item };
}

/** The message content of one InputMedia: its file (an attach:// part, a file_id or a URL) and caption. */
function itemContent(state: EmulatorState, ctx: MethodContext, { kind, item }: InputMedia): Record<string, unknown> {
  const itemCtx: MethodContext = { ...ctx, params: { ...ctx.params, ...item } };
  const content = mediaContent(kind, resolveFile(state, itemCtx, kind, item.media, 'media'), itemCtx);
  const caption = str(item.caption);
  if (caption !== undefined && caption.length > CAPTION_LIMIT) throw badRequest('message caption is too long');
  if (caption) content.caption = caption;
  return content;
}

const sendMediaGroup: Handler = (state, ctx) => {
  const chat = state.store.resolve(ctx.params.chat_id);
  const media = arr(ctx.params.media);
  if (!media || media.length < 2 || media.length > 10) throw badRequest('media must hold 2 to 10 items');
  // Every file is checked before any message is sent: an album arrives whole or not at all.
  const contents = media.map((value, i) => itemContent(state, ctx, inputMedia(value, `media[${i}]`)));
  const groupId = BigInt(`0x${randomBytes(7).toString('hex')}`).toString();
  const { reply_markup: _markup, ...params } = ctx.params;
  return contents.map((content) => sendBotMessage(state, { ...ctx, params }, chat, { ...content, media_group_id: groupId }));
};

const editMessageMedia: Handler = (state, ctx) => {
  const p = ctx.params;
  const content = itemContent(state, ctx, inputMedia(p.media, 'media', new Set([...ALBUM_KINDS, 'animation'])));
  if (str(p.inline_message_id)) return true; // inline messages are not kept
  const chat = state.store.resolve(p.chat_id);
  const messageId = int(p.message_id);
  const current = messageId === undefined ? undefined : state.store.get(chat.chat.id, messageId);
  if (!current) throw badRequest('message to edit not found');
  if (current.from?.id !== state.bot.id) throw badRequest("message can't be edited");
  const edited: Record<string, unknown> = { ...current, edit_date: nowSeconds() };
  for (const field of MEDIA_FIELDS) delete edited[field];
  Object.assign(edited, content);
  const message = edited as unknown as Message;
  state.store.replace(message);
  state.botMessage(message, ctx.method);
  return message;
};

const sendPaidMedia: Handler = (state, ctx) => {
  const chat = state.store.resolve(ctx.params.chat_id);
  const stars = int(ctx.params.star_count);
  if (stars === undefined || stars < 1 || stars > 10_000) throw badRequest('star_count must be 1 to 10000');
  const media = arr(ctx.params.media);
  if (!media || media.length < 1 || media.length > 10) throw badRequest('media must hold 1 to 10 items');
  const paid = media.map((value, i) => {
    const input = inputMedia(value, `media[${i}]`, new Set(['photo', 'video']));
    return { type: input.kind, ...mediaContent(input.kind, resolveFile(state, ctx, input.kind, input.item.media, 'media'), ctx) };
  });
  const content: Record<string, unknown> = { paid_media: { star_count: stars, paid_media: paid } };
  const caption = str(ctx.params.caption);
  if (caption) content.caption = caption;
  return sendBotMessage(state, ctx, chat, content);
};

/** Checks each InputSticker's file (uploaded or named); sticker sets themselves are not kept. */
function stickerFiles(state: EmulatorState, ctx: MethodContext, stickers: unknown[]): true {
  stickers.forEach((value, i) => {
    const sticker = obj(value);
    if (!sticker || !str(sticker.format) || !arr(sticker.emoji_list)?.length) throw badRequest(`stickers[${i}]: an InputSticker needs sticker, format and emoji_list`);
    resolveFile(state, ctx, 'sticker', sticker.sticker, `stickers[${i}]`);
  });
  return true;
}

export const ALBUM_METHODS: Record<string, Handler> = {
  sendMediaGroup,
  editMessageMedia,
  sendPaidMedia,
  createNewStickerSet: (state, ctx) => {
    const stickers = arr(ctx.params.stickers);
    if (!str(ctx.params.name) || !str(ctx.params.title) || !stickers?.length || stickers.length > 50) {
      throw badRequest('createNewStickerSet needs a name, a title and 1 to 50 stickers');
    }
    return stickerFiles(state, ctx, stickers);
  },
  addStickerToSet: (state, ctx) => {
    if (!str(ctx.params.name)) throw badRequest('STICKERSET_INVALID');
    return stickerFiles(state, ctx, [ctx.params.sticker]);
  },
};
