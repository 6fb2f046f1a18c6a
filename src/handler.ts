// ChatHandler: "the one talking to the user" — one per chat, with a listener and a sender.

import type { Bot, ChatId } from './bot.js';
import type { DelegatorBot, SeedTuple } from './delegate.js';
import { chatOf, type Msg } from './glance.js';
import type { Listener } from './speaker.js';

const sendMethods = [
  'sendMessage', 'forwardMessage', 'sendPhoto', 'sendAudio', 'sendDocument', 'sendSticker', 'sendVideo',
  'sendVoice', 'sendLocation', 'sendChatAction',
] as const;
type SendMethod = (typeof sendMethods)[number];

type WithoutChatId<Fn> = Fn extends (chatId: ChatId, ...rest: infer Rest) => infer Result ? (...rest: Rest) => Result : never;

/** The bot's send* methods with the chat id filled in. */
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
