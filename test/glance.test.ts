import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallbackQuery, Message, Update } from '@grammyjs/types';
import {
  chatOf, contentTypes, flavor, glance, hasContent, isCallbackQuery, isInlineQuery, isMessage, isText, payloadOf, updateKinds,
  type Payload, type UpdateKind,
} from '../src/glance.js';

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

const user = base.from;
const group = { id: -100, type: 'supergroup' as const, title: 'Home' };
const member = { user, status: 'member' };
/** One update of every kind, as Telegram sends them (fields trimmed to the required ones). */
const sampleUpdates: Record<UpdateKind, Record<string, unknown>> = {
  message: { ...base, text: 'hi' },
  edited_message: { ...base, text: 'hi!', edit_date: 2 },
  channel_post: { message_id: 3, date: 1, chat: { id: -200, type: 'channel', title: 'News' }, text: 'x' },
  edited_channel_post: { message_id: 3, date: 1, edit_date: 2, chat: { id: -200, type: 'channel', title: 'News' }, text: 'y' },
  business_connection: { id: 'bc1', user, user_chat_id: 42, date: 1, is_enabled: true },
  business_message: { ...base, business_connection_id: 'bc1', text: 'hello shop' },
  edited_business_message: { ...base, business_connection_id: 'bc1', edit_date: 2, text: 'hello shop!' },
  deleted_business_messages: { business_connection_id: 'bc1', chat, message_ids: [1, 2] },
  guest_message: { ...base, guest_query_id: 'g1', text: 'from a guest' },
  stopped_message_generation: { chat, draft_id: 7 },
  message_reaction: { chat, message_id: 1, date: 1, user, old_reaction: [], new_reaction: [{ type: 'emoji', emoji: '👍' }] },
  message_reaction_count: { chat: group, message_id: 1, date: 1, reactions: [{ type: { type: 'emoji', emoji: '👍' }, total_count: 2 }] },
  inline_query: { id: 'iq1', from: user, query: 'temp', offset: '' },
  chosen_inline_result: { result_id: 'r1', from: user, query: 'temp' },
  callback_query: { id: 'cq1', from: user, chat_instance: 'ci', data: 'again', message: { ...base, text: 'Pick one' } },
  shipping_query: { id: 'sq1', from: user, invoice_payload: 'p', shipping_address: { country_code: 'DE', state: '', city: 'B', street_line1: 'x', street_line2: '', post_code: '1' } },
  pre_checkout_query: { id: 'pc1', from: user, currency: 'XTR', total_amount: 5, invoice_payload: 'p' },
  purchased_paid_media: { from: user, paid_media_payload: 'p' },
  poll: { id: 'p1', question: 'Warm?', options: [], total_voter_count: 0, is_closed: false, is_anonymous: true, type: 'regular', allows_multiple_answers: false },
  poll_answer: { poll_id: 'p1', user, option_ids: [0] },
  my_chat_member: { chat: group, from: user, date: 1, old_chat_member: { ...member, status: 'left' }, new_chat_member: { ...member, user: { id: 1000, is_bot: true, first_name: 'telepi' } } },
  chat_member: { chat: group, from: user, date: 1, old_chat_member: { ...member, status: 'left' }, new_chat_member: member },
  chat_join_request: { chat: group, from: user, user_chat_id: 42, date: 1 },
  chat_boost: { chat: group, boost: { boost_id: 'b1', add_date: 1, expiration_date: 2, source: { source: 'premium', user } } },
  removed_chat_boost: { chat: group, boost_id: 'b1', remove_date: 2, source: { source: 'premium', user } },
  managed_bot: { user, bot: { id: 2000, is_bot: true, first_name: 'helper' } },
  subscription: { user, invoice_payload: 'p', state: 'active' },
};

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
