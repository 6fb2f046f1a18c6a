// Bot: the Bot API methods telepot names, a typed call() for every other method, file download,
// and the message loop.

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ApiMethods, BotCommand, File, Message, Opts, Update, UserFromGetMe, UserProfilePhotos } from '@grammyjs/types';
import { ApiClient, type CallOptions, type ClientOptions } from './client.js';
import type { DefaultKind, Msg, Payload, UpdateKind } from './glance.js';
import type { FileInput } from './inputfile.js';
import { createLogger, type Logger } from './log.js';
import { dispatch, Receipt, type AnyHandler, type Handler, type HandlerFor } from './delivery.js';
import { MessageLoop, type PollingOptions } from './polling.js';

/** The file type in method parameters: whatever `FileInput` accepts besides strings. */
type F = Exclude<FileInput, string>;
export type Methods = ApiMethods<F>;
export type MethodName = keyof Methods;
export type Params<M extends MethodName> = Opts<F>[M];
export type Result<M extends MethodName> = ReturnType<Methods[M]>;
export type ChatId = number | string;
/** telepot's way to take a custom keyboard away: sent as today's `{ remove_keyboard: true }`. */
export interface HideKeyboard {
  hide_keyboard: true;
  selective?: boolean;
}
/** Parameters whose reply_markup may also be telepot's HideKeyboard. */
type WithHideKeyboard<P> = 'reply_markup' extends keyof P ? Omit<P, 'reply_markup'> & { reply_markup?: P[keyof P & 'reply_markup'] | HideKeyboard } : P;
type Options<M extends MethodName, Given extends string> = WithHideKeyboard<Omit<Params<M>, Given>>;

/** Where a message to edit is: `[chatId, messageId]`, an inline message id, or the message itself. */
export type MessageIdentifier =
  | readonly [chatId: ChatId, messageId: number]
  | string
  | { chat_id: ChatId; message_id: number }
  | { inline_message_id: string }
  | Pick<Message, 'chat' | 'message_id'>;

/** What the message loop needs from a bot, beyond its public methods. */
export interface LoopAccess {
  track(task: Promise<unknown>): void;
  /** Which bot on which server (a hash: neither the token nor the API root's credentials): an inbox belongs to one. */
  identity: string;
  started(): void;
  stopped(): void;
  /** stop()'s deadline passed: queued messages are no longer handed out (they stay unconfirmed). */
  abandoned(): void;
}
export const loopAccess = Symbol('telepi.loopAccess');

export interface BotOptions extends ClientOptions {
  log?: Logger;
  /** Defaults for messageLoop(); each call may override them. */
  polling?: PollingOptions;
}

export class Bot {
  readonly client: ApiClient;
  readonly log: Logger;
  protected readonly pollingDefaults: PollingOptions;
  private readonly running = new Set<Promise<unknown>>();
  private readonly identity: string;
  private loop: MessageLoop | undefined;

  constructor(token: string, options: BotOptions = {}) {
    this.log = options.log ?? createLogger();
    this.client = new ApiClient(token, { ...options, log: this.log });
    // The bot's id is the token's public part (before the colon); the secret part never goes in.
    this.identity = createHash('sha256').update(`${this.client.apiRoot} ${token.split(':')[0] ?? ''}`).digest('hex').slice(0, 16);
    this.pollingDefaults = options.polling ?? {};
  }

  /** Calls any Bot API method by name, typed from the Bot API declarations. */
  call<M extends MethodName>(method: M, ...args: Record<never, never> extends Params<M> ? [params?: WithHideKeyboard<Params<M>>, options?: CallOptions] : [params: WithHideKeyboard<Params<M>>, options?: CallOptions]): Promise<Result<M>> {
    const [params, options] = args;
    return this.client.call<Result<M>>(method, normalise(params ?? {}), options);
  }

  getMe(): Promise<UserFromGetMe> {
    return this.call('getMe');
  }

  getUpdates(options: Params<'getUpdates'> = {}, callOptions?: CallOptions): Promise<Update[]> {
    return this.call('getUpdates', options, callOptions);
  }

  sendMessage(chatId: ChatId, text: string, options?: Options<'sendMessage', 'chat_id' | 'text'>): Promise<Message.TextMessage> {
    return this.call('sendMessage', { ...options, chat_id: chatId, text });
  }

  forwardMessage(chatId: ChatId, fromChatId: ChatId, messageId: number, options?: Options<'forwardMessage', 'chat_id' | 'from_chat_id' | 'message_id'>): Promise<Message> {
    return this.call('forwardMessage', { ...options, chat_id: chatId, from_chat_id: fromChatId, message_id: messageId });
  }

  sendPhoto(chatId: ChatId, photo: FileInput, options?: Options<'sendPhoto', 'chat_id' | 'photo'>): Promise<Message.PhotoMessage> {
    return this.call('sendPhoto', { ...options, chat_id: chatId, photo });
  }

  sendAudio(chatId: ChatId, audio: FileInput, options?: Options<'sendAudio', 'chat_id' | 'audio'>): Promise<Message.AudioMessage> {
    return this.call('sendAudio', { ...options, chat_id: chatId, audio });
  }

  sendDocument(chatId: ChatId, document: FileInput, options?: Options<'sendDocument', 'chat_id' | 'document'>): Promise<Message.DocumentMessage> {
    return this.call('sendDocument', { ...options, chat_id: chatId, document });
  }

  sendSticker(chatId: ChatId, sticker: FileInput, options?: Options<'sendSticker', 'chat_id' | 'sticker'>): Promise<Message.StickerMessage> {
    return this.call('sendSticker', { ...options, chat_id: chatId, sticker });
  }

  sendVideo(chatId: ChatId, video: FileInput, options?: Options<'sendVideo', 'chat_id' | 'video'>): Promise<Message.VideoMessage> {
    return this.call('sendVideo', { ...options, chat_id: chatId, video });
  }

  sendVoice(chatId: ChatId, voice: FileInput, options?: Options<'sendVoice', 'chat_id' | 'voice'>): Promise<Message.VoiceMessage> {
    return this.call('sendVoice', { ...options, chat_id: chatId, voice });
  }

  /** An album of 2–10 photos, videos, documents or audio; each `media` may be an upload (sent as attach://). */
  sendMediaGroup(chatId: ChatId, media: Params<'sendMediaGroup'>['media'], options?: Options<'sendMediaGroup', 'chat_id' | 'media'>): Promise<Result<'sendMediaGroup'>> {
    return this.call('sendMediaGroup', { ...options, chat_id: chatId, media });
  }

  sendLocation(chatId: ChatId, latitude: number, longitude: number, options?: Options<'sendLocation', 'chat_id' | 'latitude' | 'longitude'>): Promise<Message.LocationMessage> {
    return this.call('sendLocation', { ...options, chat_id: chatId, latitude, longitude });
  }

  sendChatAction(chatId: ChatId, action: Params<'sendChatAction'>['action'], options?: Options<'sendChatAction', 'chat_id' | 'action'>): Promise<true> {
    return this.call('sendChatAction', { ...options, chat_id: chatId, action });
  }

  getUserProfilePhotos(userId: number, options?: Options<'getUserProfilePhotos', 'user_id'>): Promise<UserProfilePhotos> {
    return this.call('getUserProfilePhotos', { ...options, user_id: userId });
  }

  getFile(fileId: string): Promise<File> {
    return this.call('getFile', { file_id: fileId });
  }

  setWebhook(url: string, options?: Options<'setWebhook', 'url'>): Promise<true> {
    return this.call('setWebhook', { ...options, url });
  }

  deleteWebhook(options?: Params<'deleteWebhook'>): Promise<true> {
    return this.call('deleteWebhook', options ?? {});
  }

  setMyCommands(commands: readonly BotCommand[], options?: Options<'setMyCommands', 'commands'>): Promise<true> {
    return this.call('setMyCommands', { ...options, commands });
  }

  answerCallbackQuery(callbackQueryId: string, options?: Options<'answerCallbackQuery', 'callback_query_id'>): Promise<true> {
    return this.call('answerCallbackQuery', { ...options, callback_query_id: callbackQueryId });
  }

  editMessageText(message: MessageIdentifier, text: string, options?: Options<'editMessageText', 'chat_id' | 'message_id' | 'inline_message_id' | 'text'>): Promise<Result<'editMessageText'>> {
    return this.call('editMessageText', { ...options, ...messageIdentifier(message), text } as Params<'editMessageText'>);
  }

  /**
   * Streams a file to `dest`: a path (written to `dest.part`, renamed when complete, so a failed
   * download never leaves a partial file under the final name) or a writable stream (ended after).
   */
  async downloadFile(fileId: string, dest: string | Writable, options?: CallOptions): Promise<void> {
    const file = await this.getFile(fileId);
    if (file.file_path === undefined) throw new Error(`getFile gave no file_path for ${fileId}: the file may be too big to download (20 MB limit)`);
    const body = await this.client.download(file.file_path, options);
    if (dest instanceof Writable) {
      await pipeline(body, dest);
      return;
    }
    const partial = `${dest}.part`;
    try {
      await pipeline(body, createWriteStream(partial));
      await rename(partial, dest);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }

  /** The handler messageLoop() uses when given none: override it in a subclass, as in telepot. */
  handle(msg: Msg): unknown {
    void msg;
    throw new Error(`${this.constructor.name} has no handler: pass one to messageLoop() or override handle()`);
  }

  /**
   * Long-polls for updates and hands each payload to `handler` (default: this.handle). One loop per
   * bot at a time: two pollers would take turns failing with 409 Conflict.
   */
  messageLoop(handler?: Handler, options?: PollingOptions & { allowedUpdates?: ReadonlyArray<DefaultKind> }): MessageLoop;
  /** With allowedUpdates, the handler's payload type follows the kinds asked for. */
  messageLoop<K extends UpdateKind>(handler: HandlerFor<K> | undefined, options: PollingOptions & { allowedUpdates: ReadonlyArray<K> }): MessageLoop;
  /** Kinds known only at run time: the handler takes any payload. */
  messageLoop(handler: Handler<Payload> | undefined, options?: PollingOptions): MessageLoop;
  messageLoop(handler?: AnyHandler, options: PollingOptions = {}): MessageLoop {
    if (this.loop?.running === true) {
      throw new Error(`${this.constructor.name}.messageLoop() is already running: stop() the running loop before starting another`);
    }
    this.loop = new MessageLoop(this, this.handlerOrDefault(handler), { ...this.pollingDefaults, ...options });
    return this.loop;
  }

  /**
   * Hands one update to the handler (default: this.handle) through the same dispatch as the message
   * loop, for a webhook. Resolves once the handler has finished with it: then answer the request.
   */
  handleUpdate<P extends Payload = Msg>(update: Update, handler?: Handler<P>): Promise<void> {
    if (update === null || typeof update !== 'object' || !Number.isSafeInteger(update.update_id)) {
      return Promise.reject(new TypeError('handleUpdate: expected an Update object with an integer update_id'));
    }
    let handle: AnyHandler;
    try {
      handle = this.handlerOrDefault(handler as AnyHandler | undefined);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return new Promise((resolve) => dispatch(update, handle, new Receipt(update.update_id, false, () => resolve()), this.log, (task) => this.track(task)));
  }

  private handlerOrDefault(handler: AnyHandler | undefined): AnyHandler {
    if (handler !== undefined) return handler;
    if (this.handle === Bot.prototype.handle) {
      throw new Error(`${this.constructor.name} has no handler: pass one to messageLoop() or override handle()`);
    }
    return (msg: Msg) => this.handle(msg);
  }

  protected track(task: Promise<unknown>): void {
    this.running.add(task);
    void task.finally(() => this.running.delete(task));
  }

  /** The handlers and delegates still running: stopping the loop waits for them. */
  get runningTasks(): ReadonlySet<Promise<unknown>> {
    return this.running;
  }

  /** The message loop's way in; the symbol is not exported from the package, so this is not public surface. */
  [loopAccess](): LoopAccess {
    return { identity: this.identity, track: (task) => this.track(task), started: () => this.loopStarted(), stopped: () => this.loopStopped(), abandoned: () => this.loopAbandoned() };
  }

  /** When the loop starts; SpeakerBot reopens its microphone here. */
  protected loopStarted(): void {}

  /** When the loop stops; SpeakerBot ends waits that have nothing queued here. */
  protected loopStopped(): void {}

  /** When stop()'s deadline passed; SpeakerBot stops handing out queued messages here. */
  protected loopAbandoned(): void {}

  /** Closes the HTTP connections. */
  close(): Promise<void> {
    return this.client.close();
  }
}

function messageIdentifier(message: MessageIdentifier): { chat_id: ChatId; message_id: number } | { inline_message_id: string } {
  if (typeof message === 'string') return { inline_message_id: message };
  if (Array.isArray(message)) return { chat_id: message[0] as ChatId, message_id: message[1] as number };
  if ('inline_message_id' in message) return { inline_message_id: message.inline_message_id };
  if ('chat' in message) return { chat_id: message.chat.id, message_id: message.message_id };
  const { chat_id, message_id } = message as { chat_id: ChatId; message_id: number };
  return { chat_id, message_id };
}

/** telepot wrote `{ hide_keyboard: true }`; today's Bot API calls it `remove_keyboard`. */
function normalise<T extends object>(params: T): T {
  const markup = (params as { reply_markup?: unknown }).reply_markup;
  if (markup !== null && typeof markup === 'object' && 'hide_keyboard' in markup) {
    const { hide_keyboard, ...rest } = markup as { hide_keyboard: unknown };
    return { ...params, reply_markup: { ...rest, remove_keyboard: hide_keyboard } };
  }
  return params;
}
