// sendPhoto, sendAudio, sendDocument, sendVideo, sendVoice, sendSticker and getFile.
import type { File } from '@grammyjs/types';
import { sendBotMessage, type EmulatorState, type Handler, type MethodContext } from './context.js';
import type { FileRef, MediaKind } from './files.js';
import { badRequest } from './http.js';
import { int, pick, str } from './params.js';

const CAPTION_LIMIT = 1024;

/** The file a send method names: an uploaded part (by field or attach://), a file_id, or a URL. */
export function resolveFile(state: EmulatorState, ctx: MethodContext, kind: MediaKind, value: unknown = ctx.params[kind], field: string = kind): FileRef {
  let part = ctx.files.get(field);
  if (!part && typeof value === 'string' && value.startsWith('attach://')) {
    part = ctx.files.get(value.slice('attach://'.length));
    if (!part) throw badRequest(`there is no ${value.slice('attach://'.length)} in the request for ${kind}`);
  }
  if (part) {
    if (part.size === 0) throw badRequest('file must be non-empty');
    return state.fileStore.addUpload(part, kind);
  }
  const id = str(value);
  if (!id) throw badRequest(`there is no ${kind} in the request`);
  return state.fileStore.refFor(kind, id);
}

function sized(ref: FileRef): Record<string, unknown> {
  const out: Record<string, unknown> = { file_id: ref.file_id, file_unique_id: ref.file_unique_id };
  if (ref.file_size !== undefined) out.file_size = ref.file_size;
  return out;
}

/** The message field for the file: photo is an array of PhotoSize, the others one object. */
export function mediaContent(kind: MediaKind, ref: FileRef, ctx: MethodContext): Record<string, unknown> {
  const p = ctx.params;
  const named = (o: Record<string, unknown>): Record<string, unknown> => {
    const fileName = str(p.file_name) ?? ref.file_name;
    if (fileName) o.file_name = fileName;
    if (ref.mime_type) o.mime_type = ref.mime_type;
    return o;
  };
  const duration = int(p.duration) ?? 0;
  switch (kind) {
    case 'photo':
      return { photo: [{ ...sized(ref), width: ref.width ?? 1280, height: ref.height ?? 720 }] };
    case 'document':
      return { document: named(sized(ref)) };
    case 'audio': {
      const audio = named({ ...sized(ref), duration });
      pick(p, ['performer', 'title'], audio);
      return { audio };
    }
    case 'video':
      return { video: named({ ...sized(ref), width: int(p.width) ?? ref.width ?? 1280, height: int(p.height) ?? ref.height ?? 720, duration }) };
    case 'voice': {
      const voice: Record<string, unknown> = { ...sized(ref), duration };
      voice.mime_type = ref.mime_type ?? 'audio/ogg';
      return { voice };
    }
    case 'sticker':
      return {
        sticker: { ...sized(ref), type: 'regular', width: ref.width ?? 512, height: ref.height ?? 512, is_animated: false, is_video: false },
      };
  }
}

function sendMedia(kind: MediaKind): Handler {
  return (state, ctx) => {
    const chat = state.store.resolve(ctx.params.chat_id);
    const caption = kind === 'sticker' ? undefined : str(ctx.params.caption);
    if (caption !== undefined && caption.length > CAPTION_LIMIT) throw badRequest('message caption is too long');
    const ref = resolveFile(state, ctx, kind);
    const content = mediaContent(kind, ref, ctx);
    if (caption) {
      content.caption = caption;
      pick(ctx.params, ['caption_entities'], content);
    }
    if (kind === 'sticker') {
      const emoji = str(ctx.params.emoji);
      if (emoji) (content.sticker as Record<string, unknown>).emoji = emoji;
    }
    pick(ctx.params, ['has_spoiler', 'show_caption_above_media'], content);
    return sendBotMessage(state, ctx, chat, content);
  };
}

const getFile: Handler = (state, ctx) => {
  const fileId = str(ctx.params.file_id);
  const file = fileId ? state.fileStore.get(fileId) : undefined;
  if (!file) throw badRequest('invalid file_id');
  const result: File = { file_id: file.fileId, file_unique_id: file.fileUniqueId, file_size: file.size, file_path: file.filePath };
  return result;
};

export const MEDIA_METHODS: Record<string, Handler> = {
  sendPhoto: sendMedia('photo'),
  sendAudio: sendMedia('audio'),
  sendDocument: sendMedia('document'),
  sendVideo: sendMedia('video'),
  sendVoice: sendMedia('voice'),
  sendSticker: sendMedia('sticker'),
  getFile,
};
