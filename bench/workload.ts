// The updates every contestant gets (generated once, pushed unchanged into each run's emulator) and
// the check that each chat's replies came back in the order of its messages.
import type { Update } from '@grammyjs/types';
import { BotApiEmulator, type RecordedCall } from '../src/emulator/index.js';

export interface Workload {
  name: string;
  chats: number;
  updates: ReadonlyArray<Omit<Update, 'update_id'>>;
}

/**
 * `count` text messages spread round-robin over `chats` private chats; each text is the message's
 * sequence number within its chat, so an echoed reply says where it belongs.
 */
export async function makeWorkload(name: string, count: number, chats: number, firstChatId = 1001): Promise<Workload> {
  const emu = await BotApiEmulator.start();
  try {
    const updates: Array<Omit<Update, 'update_id'>> = [];
    for (let i = 0; i < count; i++) {
      const chatId = firstChatId + (i % chats);
      const { update_id: _id, ...update } = emu.pushText(String(Math.floor(i / chats)), { chatId, userId: chatId });
      updates.push(update);
    }
    return { name, chats, updates };
  } finally {
    await emu.close();
  }
}

export function push(emu: BotApiEmulator, workload: Workload): void {
  for (const update of workload.updates) emu.pushUpdate(update);
}

/** True when every chat got exactly its messages' numbers back, in order. */
export function orderKept(calls: readonly RecordedCall[], workload: Workload): boolean {
  const next = new Map<number, number>();
  for (const call of calls) {
    const chatId = Number(call.params.chat_id);
    const expected = next.get(chatId) ?? 0;
    if (String(call.params.text) !== String(expected)) return false;
    next.set(chatId, expected + 1);
  }
  const perChat = workload.updates.length / workload.chats;
  return next.size === workload.chats && [...next.values()].every((n) => n === perChat);
}
