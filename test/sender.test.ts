import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Message } from '@grammyjs/types';
import { Bot } from '../src/bot.js';
import { DelegatorBot, createRun, perChatId } from '../src/delegate.js';
import { ChatHandler, createSender } from '../src/handler.js';
import { eventually, harness, TOKEN } from './support.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Bot methods named send*, forward* or copy* whose first parameter is not a chat id, with the reason. */
const notChatScoped: Record<string, string> = {};

test('a ChatHandler\'s sender sends an album of three Buffers to its own chat', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const files = [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(3000, 3)];
  const albums: Message[][] = [];
  class Album extends ChatHandler {
    override async run() {
      albums.push(await this.sender.sendMediaGroup(files.map((media) => ({ type: 'photo' as const, media }))));
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Album)]], { apiRoot: h.emu.apiRoot, log: h.log });
  h.loop(bot, undefined, { stopDeadlineMs: 50 });
  h.emu.pushText('album please', { chatId: 77 });
  await eventually(() => albums.length === 1, 5000, 'the album to be sent');

  const calls = h.emu.callsOf('sendMediaGroup');
  assert.equal(calls.length, 1);
  const call = calls[0];
  assert.equal(Number(call?.params.chat_id), 77, 'sent to the handler\'s chat');
  assert.equal(call?.encoding, 'multipart');
  assert.deepEqual((call?.params.media as Array<{ media: string }>).map((m) => m.media), ['attach://file0', 'attach://file1', 'attach://file2']);
  assert.equal(Object.keys(call?.files ?? {}).length, 3);
  for (const [i, data] of files.entries()) {
    assert.equal(call?.files[`file${i}`]?.size, data.length, `file${i} arrived whole`);
    assert.equal(call?.files[`file${i}`]?.sha256, sha(data));
  }
  assert.deepEqual(albums[0]?.map((m) => m.chat.id), [77, 77, 77]);
  assert.equal(h.emu.sentMessages(77).length, 3);
});

test('each sender method reaches the emulator with the sender\'s chat id', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const original = h.emu.pushText('to forward', { chatId: 42 }).message as Message;
  const sender = createSender(bot, 55);

  await sender.sendMessage('hello');
  await sender.forwardMessage(42, original.message_id);
  await sender.sendPhoto(Buffer.from('photo'));
  await sender.sendAudio(Buffer.from('audio'));
  await sender.sendDocument(Buffer.from('document'), { caption: 'doc' });
  await sender.sendSticker(Buffer.from('sticker'));
  await sender.sendVideo(Buffer.from('video'));
  await sender.sendVoice(Buffer.from('voice'));
  await sender.sendMediaGroup([{ type: 'photo', media: Buffer.from('a') }, { type: 'photo', media: Buffer.from('b') }]);
  await sender.sendLocation(51.5, -0.12);
  assert.equal(await sender.sendChatAction('typing'), true);

  const methods = Object.keys(sender);
  assert.equal(methods.length, 11);
  for (const method of methods) {
    const calls = h.emu.callsOf(method);
    assert.equal(calls.length, 1, `${method} was called once`);
    assert.equal(Number(calls[0]?.params.chat_id), 55, `${method} went to the sender's chat`);
  }
  assert.equal(Number(h.emu.callsOf('forwardMessage')[0]?.params.from_chat_id), 42, 'the chat id goes first, the other arguments after it');
  assert.equal(h.emu.callsOf('sendDocument')[0]?.params.caption, 'doc', 'options pass through');
  assert.deepEqual(h.emu.callsOf('sendLocation')[0]?.params, { chat_id: 55, latitude: 51.5, longitude: -0.12 });
  // Nine single sends (all but the chat action) and an album of two.
  assert.equal(h.emu.sentMessages(55).length, 11);
});

test('the sender has every Bot method that sends, forwards or copies to the chat named first', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const sender = createSender(h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log })), 1);
  const onBot = Object.getOwnPropertyNames(Bot.prototype).filter((name) => /^(send|forward|copy)/.test(name) && !(name in notChatScoped));
  assert.deepEqual(Object.keys(sender).sort(), onBot.sort());
  assert.ok(onBot.includes('sendMediaGroup'));
});
