import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallbackQuery, Message } from '@grammyjs/types';
import { contentTypes, flavor, glance } from '../src/glance.js';

const chat = { id: 42, type: 'private' as const, first_name: 'Ann' };
const base = { message_id: 1, date: 1_700_000_000, chat, from: { id: 42, is_bot: false, first_name: 'Ann' } };
const message = (fields: Record<string, unknown>) => ({ ...base, ...fields }) as unknown as Message;

test('glance names the content type, chat type and chat id of a text message', () => {
  assert.deepEqual(glance(message({ text: 'hi' })), ['text', 'private', 42]);
});

test('glance recognises every content type of today\'s Message', () => {
  for (const type of contentTypes) {
    assert.equal(glance(message({ [type]: {} }))[0], type, `content type ${type}`);
  }
});

test('an animation is an animation, not the document it also carries; a venue is not its location', () => {
  assert.equal(glance(message({ animation: { file_id: 'a' }, document: { file_id: 'a' } }))[0], 'animation');
  assert.equal(glance(message({ venue: { title: 'x' }, location: { latitude: 1, longitude: 2 } }))[0], 'venue');
});

test('a message of a content type newer than the library is "unknown", not a crash', () => {
  assert.equal(glance(message({ hologram: {} }))[0], 'unknown');
});

test('glance works for group, supergroup and channel chats', () => {
  const group = { ...base, chat: { id: -100, type: 'supergroup', title: 'Home' }, text: '/now@telepi_bot' } as unknown as Message;
  assert.deepEqual(glance(group), ['text', 'supergroup', -100]);
  const post = { message_id: 3, date: 1, chat: { id: -200, type: 'channel', title: 'News' }, photo: [] } as unknown as Message;
  assert.deepEqual(glance(post), ['photo', 'channel', -200]);
});

test('a callback query\'s chat is its message\'s chat', () => {
  const query = { id: '77', from: base.from, chat_instance: 'ci', data: 'yes', message: message({ text: 'Pick one' }) } as CallbackQuery;
  assert.deepEqual(glance(query), ['callback_query', 'private', 42]);
  assert.equal(flavor(query), 'callback_query');
  const inline = { id: '78', from: base.from, chat_instance: 'ci', inline_message_id: 'im' } as CallbackQuery;
  assert.deepEqual(glance(inline), ['callback_query', undefined, undefined]);
});

test('flavor tells messages, edits, channel posts and edited channel posts apart', () => {
  assert.equal(flavor(message({ text: 'a' })), 'message');
  assert.equal(flavor(message({ text: 'a', edit_date: 2 })), 'edited_message');
  const post = { message_id: 3, date: 1, chat: { id: -200, type: 'channel', title: 'News' }, text: 'x' } as unknown as Message;
  assert.equal(flavor(post), 'channel_post');
  assert.equal(flavor({ ...post, edit_date: 5 } as Message), 'edited_channel_post');
});
