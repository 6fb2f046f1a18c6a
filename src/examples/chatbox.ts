// Chatbox, a mailbox for chats: people message the bot, it keeps their messages, and the owner reads
// them later with /unread (who, how many) and /next (the next sender's messages). In memory only.

import type { Message } from '@grammyjs/types';
import type { BotOptions } from '../bot.js';
import { DelegatorBot, call, createRun, perChatIdExcept, perChatIdIn, type SeedTuple } from '../delegate.js';
import { isMessage, isText } from '../glance.js';
import { ChatHandler } from '../handler.js';
import { exampleEnv, isMain, runUntilSignal } from './run.js';

/** Unread messages per sender's chat, oldest sender first. */
export class Mailbox {
  private readonly byChat = new Map<number, Message[]>();

  put(message: Message): void {
    const list = this.byChat.get(message.chat.id);
    if (list === undefined) this.byChat.set(message.chat.id, [message]);
    else list.push(message);
  }

  unread(): Array<{ chatId: number; name: string; count: number }> {
    return [...this.byChat.entries()].map(([chatId, list]) => ({ chatId, name: senderName(list[0] as Message), count: list.length }));
  }

  takeNext(): Message[] | undefined {
    const first = this.byChat.entries().next();
    if (first.done === true) return undefined;
    this.byChat.delete(first.value[0]);
    return first.value[1];
  }
}

function senderName(message: Message): string {
  const from = message.from;
  if (from === undefined) return message.chat.title ?? String(message.chat.id);
  return [from.first_name, from.last_name].filter(Boolean).join(' ') + (from.username ? ` (@${from.username})` : '');
}

class OwnerHandler extends ChatHandler {
  private readonly mailbox: Mailbox;

  constructor(seedTuple: SeedTuple, options: { mailbox: Mailbox }) {
    super(seedTuple, { timeout: 60 });
    this.mailbox = options.mailbox;
  }

  override async run(): Promise<void> {
    let msg = this.initialMessage;
    for (;;) {
      const text = isText(msg) ? msg.text.trim() : undefined;
      if (text === '/unread') await this.sendUnread();
      else if (text === '/next') await this.sendNext();
      else await this.sender.sendMessage('Commands: /unread, /next');
      msg = await this.listener.wait();
    }
  }

  private async sendUnread(): Promise<void> {
    const lines = this.mailbox.unread().map((u) => `${u.name}: ${u.count}`);
    await this.sender.sendMessage(lines.length === 0 ? 'No unread messages' : lines.join('\n'));
  }

  private async sendNext(): Promise<void> {
    const messages = this.mailbox.takeNext();
    if (messages === undefined) {
      await this.sender.sendMessage('No unread messages');
      return;
    }
    await this.sender.sendMessage(`From ${senderName(messages[0] as Message)}:`);
    for (const message of messages) await this.sender.forwardMessage(message.chat.id, message.message_id);
  }
}

export function createChatbox(token: string, ownerId: number, options?: BotOptions & { mailbox?: Mailbox }): DelegatorBot {
  const mailbox = options?.mailbox ?? new Mailbox();
  return new DelegatorBot(
    token,
    [
      [perChatIdIn([ownerId], ['private']), createRun(OwnerHandler, { mailbox })],
      // Everyone else: keep the message (an array seed spawns for every message).
      [(msg) => (perChatIdExcept([ownerId])(msg) === null ? null : [msg]), call(([, msg]) => {
        if (isMessage(msg)) mailbox.put(msg);
      })],
    ],
    options,
  );
}

if (isMain(import.meta.url)) {
  const { token, apiRoot } = exampleEnv();
  const ownerId = Number((process.env.TELEPI_OWNERS ?? '').split(',')[0]);
  if (!Number.isSafeInteger(ownerId) || ownerId <= 0) {
    process.stderr.write('Set TELEPI_OWNERS to your Telegram user id: the chatbox shows messages to its owner only.\n');
    process.exit(78);
  }
  await runUntilSignal(createChatbox(token, ownerId, { apiRoot }));
}
