// ChatHandler: "the one talking to the user" — one per chat, with a listener and a sender.

import type { Bot, ChatId } from './bot.js';
import type { DelegatorBot, SeedTuple } from './delegate.js';
import { chatOf, type Msg } from './glance.js';
import type { Listener } from './speaker.js';

/** A Bot method's first parameter (undefined for one that takes none). */
type FirstParameter<Fn> = Fn extends (...args: infer Args) => unknown ? Args[0] : never;
/** The Bot methods that send, forward or copy something to the chat named by their first parameter. */
type ChatScopedSend = {
  [M in keyof Bot]: M extends `${'send' | 'forward' | 'copy'}${string}`
    ? [FirstParameter<Bot[M]>] extends [ChatId] ? ([ChatId] extends [FirstParameter<Bot[M]>] ? M : never) : never
    : never;
}[keyof Bot];

const sendMethods = [
  'sendMessage', 'forwardMessage', 'sendPhoto', 'sendAudio', 'sendDocument', 'sendSticker', 'sendVideo',
  'sendVoice', 'sendMediaGroup', 'sendLocation', 'sendChatAction',
] as const satisfies ReadonlyArray<ChatScopedSend>;
type SendMethod = (typeof sendMethods)[number];
// Fails to compile when Bot gains a send*, forward* or copy* method taking the chat id first that sendMethods does not list.
const everySendListed: [Exclude<ChatScopedSend, SendMethod>] extends [never] ? true : never = true;
void everySendListed;

type WithoutChatId<Fn> = Fn extends (chatId: ChatId, ...rest: infer Rest) => infer Result ? (...rest: Rest) => Result : never;

/** The bot's methods that send, forward or copy to a chat, with the chat id filled in. */
export type Sender = { readonly [M in SendMethod]: WithoutChatId<Bot[M]> };

export function createSender(bot: Bot, chatId: ChatId): Sender {
  const sender: Record<string, unknown> = {};
  for (const method of sendMethods) {
    const send = bot[method] as (chatId: ChatId, ...rest: unknown[]) => unknown;
    sender[method] = (...rest: unknown[]) => send.call(bot, chatId, ...rest);
  }
  return sender as Sender;
}

export interface ChatHandlerOptions {
  /** Seconds a listener.wait() may last (listener.timeout); default: wait forever. */
  timeout?: number;
}

export class ChatHandler {
  readonly bot: DelegatorBot;
  readonly initialMessage: Msg;
  readonly chatId: number;
  /** Receives the messages of this chat that arrive after the initial one. */
  readonly listener: Listener;
  readonly sender: Sender;

  constructor(seedTuple: SeedTuple, options: ChatHandlerOptions = {}) {
    const [bot, msg] = seedTuple;
    const chat = chatOf(msg);
    if (chat === undefined) throw new Error('a ChatHandler needs a message with a chat (an inline callback query has none)');
    this.bot = bot;
    this.initialMessage = msg;
    this.chatId = chat.id;
    this.listener = bot.createListener(options.timeout);
    this.listener.captureChat(chat.id);
    this.sender = createSender(bot, chat.id);
  }

  /** The conversation; override it. The handler lives until it returns or throws (WaitTooLong ends it quietly). */
  async run(): Promise<unknown> {
    throw new Error(`${this.constructor.name} must override run()`);
  }
}
