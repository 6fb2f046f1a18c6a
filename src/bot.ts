// Bot: the Bot API methods telepot names, a typed call() for every other method, file download,
// and the message loop.

import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ApiMethods, BotCommand, File, Message, Opts, Update, UserFromGetMe, UserProfilePhotos } from '@grammyjs/types';
import { ApiClient, type CallOptions, type ClientOptions } from './client.js';
import type { Msg } from './glance.js';
import type { FileInput } from './inputfile.js';
import { createLogger, type Logger } from './log.js';
import { MessageLoop, type Handler, type PollingOptions } from './polling.js';

/** The file type in method parameters: whatever `FileInput` accepts besides strings. */
type F = Exclude<FileInput, string>;
export type Methods = ApiMethods<F>;
export type MethodName = keyof Methods;
export type Params<M extends MethodName> = Opts<F>[M];
export type Result<M extends MethodName> = ReturnType<Methods[M]>;
export type ChatId = number | string;
type Options<M extends MethodName, Given extends string> = Omit<Params<M>, Given>;

/** Where a message to edit is: `[chatId, messageId]`, an inline message id, or the message itself. */
export type MessageIdentifier =
  | readonly [chatId: ChatId, messageId: number]
  | string
  | { chat_id: ChatId; message_id: number }
  | { inline_message_id: string }
  | Pick<Message, 'chat' | 'message_id'>;

export interface BotOptions extends ClientOptions {
  log?: Logger;
  /** Defaults for messageLoop(); each call may override them. */
  polling?: PollingOptions;
}

export class Bot {
  readonly client: ApiClient;
  readonly log: Logger;
  protected readonly pollingDefaults: PollingOptions;
  /** Handlers (or delegates) still running: the message loop waits for them when it stops. */
  protected readonly running = new Set<Promise<unknown>>();

  constructor(token: string, options: BotOptions = {}) {
    this.client = new ApiClient(token, options);
    this.log = options.log ?? createLogger();
    this.pollingDefaults = options.polling ?? {};
  }

  /** Calls any Bot API method by name, typed from the Bot API declarations. */
  call<M extends MethodName>(method: M, ...args: Record<never, never> extends Params<M> ? [params?: Params<M>, options?: CallOptions] : [params: Params<M>, options?: CallOptions]): Promise<Result<M>> {
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

  /** Long-polls for updates and hands each payload to `handler` (default: this.handle). */
  messageLoop(handler?: Handler, options: PollingOptions = {}): MessageLoop {
    if (handler === undefined && this.handle === Bot.prototype.handle) {
      throw new Error(`${this.constructor.name} has no handler: pass one to messageLoop() or override handle()`);
    }
    const handle = handler ?? ((msg: Msg) => this.handle(msg));
    return new MessageLoop(this, handle, { ...this.pollingDefaults, ...options });
  }

  /** Tracks a running handler or delegate so that stopping the loop can wait for it. */
  track(task: Promise<unknown>, onError: (error: unknown) => void): void {
    this.running.add(task);
    task.then(
      () => {
        this.running.delete(task);
        this.backlogChanged();
      },
      (error: unknown) => {
        this.running.delete(task);
        this.backlogChanged();
        onError(error);
      },
    );
  }

  private backlogWaiters: Array<{ limit: number; resolve: () => void }> = [];

  /** Resolves once the backlog is at most `limit`: the loop waits on it instead of polling a timer. */
  whenBacklogAtMost(limit: number): Promise<void> {
    if (this.backlog <= limit) return Promise.resolve();
    return new Promise((resolve) => this.backlogWaiters.push({ limit, resolve }));
  }

  /** Subclasses whose backlog is counted elsewhere call this when it shrinks. */
  protected backlogChanged(): void {
    if (this.backlogWaiters.length === 0) return;
    const backlog = this.backlog;
    this.backlogWaiters = this.backlogWaiters.filter((waiter) => {
      if (backlog > waiter.limit) return true;
      waiter.resolve();
      return false;
    });
  }

  /**
   * Work handed out and not yet done: the message loop stops fetching while it is high, so a burst
   * waits on the server (unconfirmed, safe) instead of in memory. For a Bot, its running handlers.
   */
  get backlog(): number {
    return this.running.size;
  }

  /** The handlers and delegates still running. */
  get runningTasks(): ReadonlySet<Promise<unknown>> {
    return this.running;
  }

  /** Called by the message loop when it stops; SpeakerBot rejects pending waits here. */
  onLoopStop(): void {}

  /** Called by the message loop when it starts. */
  onLoopStart(): void {}

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
