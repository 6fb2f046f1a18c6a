import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallbackQuery, Message, Update } from '@grammyjs/types';
import {
  chatOf, contentTypes, flavor, glance, hasContent, isCallbackQuery, isInlineQuery, isMessage, isText, payloadOf, updateKinds,
  type Payload,
} from '../src/glance.js';
import { sampleUpdates } from './fixtures/update-kinds.js';

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

test('every update kind: payloadOf finds its payload, and flavor names it', () => {
  assert.deepEqual(Object.keys(sampleUpdates).sort(), [...updateKinds].sort(), 'a sample for every kind');
  for (const kind of updateKinds) {
    const update = { update_id: 1, [kind]: sampleUpdates[kind] } as unknown as Update;
    const found = payloadOf(update);
    assert.equal(found?.kind, kind, `payloadOf on ${kind}`);
    assert.equal(found?.payload, sampleUpdates[kind]);
    assert.equal(flavor(found?.payload as Payload), kind, `flavor of ${kind}`);
  }
});

test('flavor reads a payload built by hand from its fields; only a member change needs payloadOf to tell mine from others\'', () => {
  for (const kind of updateKinds) {
    const copy = structuredClone(sampleUpdates[kind]) as unknown as Payload;
    assert.equal(flavor(copy), kind === 'my_chat_member' ? 'chat_member' : kind, `flavor of a hand-built ${kind}`);
  }
  assert.equal(payloadOf({ update_id: 9 } as Update), undefined, 'an update of no known kind has no payload');
});

test('chatOf finds the chat of every kind that has one', () => {
  assert.equal(chatOf(sampleUpdates.chat_member as unknown as Payload)?.id, -100);
  assert.equal(chatOf(sampleUpdates.message_reaction as unknown as Payload)?.id, 42);
  assert.equal(chatOf(sampleUpdates.inline_query as unknown as Payload), undefined);
  assert.equal(chatOf(sampleUpdates.poll as unknown as Payload), undefined);
});

test('type guards narrow: isText, hasContent, isMessage, isCallbackQuery, isInlineQuery', () => {
  const payloads = Object.values(sampleUpdates) as unknown as Payload[];
  const texts = payloads.filter(isText).map((msg) => msg.text.toUpperCase()); // msg.text is a string here
  assert.deepEqual(texts, ['HI', 'HI!', 'X', 'Y', 'HELLO SHOP', 'HELLO SHOP!', 'FROM A GUEST']);
  assert.equal(payloads.filter(isMessage).length, 7);
  assert.equal(payloads.filter(isCallbackQuery)[0]?.data, 'again');
  assert.equal(payloads.filter(isInlineQuery)[0]?.query, 'temp');
  const photo = message({ photo: [{ file_id: 'p', file_unique_id: 'u', width: 1, height: 1 }] });
  assert.ok(hasContent(photo, 'photo') && photo.photo.length === 1);
  assert.equal(hasContent(photo, 'text'), false);
  assert.equal(isText(sampleUpdates.message_reaction as unknown as Payload), false, 'a reaction has a message_id but is no message');
});
