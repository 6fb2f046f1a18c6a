// What a payload is and where it came from: payloadOf() for the loop, flavor() and glance() for
// handlers, and type guards that narrow, for every kind of update the Bot API has.

import type { CallbackQuery, Chat, InlineQuery, Message, Update } from '@grammyjs/types';

/** Every kind of update, as `allowed_updates` names them. */
export const updateKinds = [
  'message', 'edited_message', 'channel_post', 'edited_channel_post', 'business_connection', 'business_message',
  'edited_business_message', 'deleted_business_messages', 'guest_message', 'stopped_message_generation',
  'message_reaction', 'message_reaction_count', 'inline_query', 'chosen_inline_result', 'callback_query',
  'shipping_query', 'pre_checkout_query', 'purchased_paid_media', 'poll', 'poll_answer', 'my_chat_member',
  'chat_member', 'chat_join_request', 'chat_boost', 'removed_chat_boost', 'managed_bot', 'subscription',
] as const satisfies ReadonlyArray<keyof Update>;
export type UpdateKind = Exclude<keyof Update, 'update_id'>;
// Fails to compile when the Bot API types gain an update kind that updateKinds does not list.
const everyKindListed: [Exclude<UpdateKind, (typeof updateKinds)[number]>] extends [never] ? true : never = true;
void everyKindListed;

/** What any update carries: a message, a callback query, an inline query, a member change, … */
export type Payload = Message | NonNullable<Update[UpdateKind]>;

/** The payloads of the default kinds: a message of any kind, or a callback query (inline keyboard press). */
export type Msg = Message | CallbackQuery;

/** The update kinds handlers receive unless `allowedUpdates` asks for more. */
export const handledUpdateKinds = ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'callback_query'] as const;
export type DefaultKind = (typeof handledUpdateKinds)[number];
export type Flavor = UpdateKind;

/** Kinds whose payloads look alike (my_chat_member and chat_member): payloadOf() remembers which was which. */
const kindOf = new WeakMap<object, UpdateKind>();

/** The payload of an update and its kind, or undefined for an update of no kind this library knows. */
export function payloadOf(update: Update): { kind: UpdateKind; payload: Payload } | undefined {
  for (const key in update) {
    const payload = payloadAt(update, key);
    if (payload !== undefined) return { kind: key as UpdateKind, payload };
  }
  return undefined;
}

/** payloadOf() without its wrapper object, for the loop's hot path. */
export function payloadIn(update: Update): Payload | undefined {
  // Nearly every update is a message: looked up directly before the general walk.
  const message = update.message;
  if (message !== undefined && message !== null && typeof message === 'object') return message;
  for (const key in update) {
    const payload = payloadAt(update, key);
    if (payload !== undefined) return payload;
  }
  return undefined;
}

function payloadAt(update: Update, key: string): Payload | undefined {
  if (key === 'update_id') return undefined;
  const payload = update[key as UpdateKind];
  if (payload === undefined || payload === null || typeof payload !== 'object') return undefined;
  if (key === 'my_chat_member' || key === 'chat_member') kindOf.set(payload, key);
  return payload;
}

/** For each other kind, the field only its payload has at the top level, tested in this order. */
const distinctiveFields: ReadonlyArray<readonly [Exclude<UpdateKind, MessageKind | 'my_chat_member'>, string]> = [
  ['callback_query', 'chat_instance'], ['inline_query', 'offset'], ['chosen_inline_result', 'result_id'],
  ['shipping_query', 'shipping_address'], ['pre_checkout_query', 'total_amount'], ['purchased_paid_media', 'paid_media_payload'],
  ['poll', 'total_voter_count'], ['poll_answer', 'poll_id'], ['chat_member', 'new_chat_member'],
  ['business_connection', 'is_enabled'], ['chat_join_request', 'user_chat_id'], ['deleted_business_messages', 'message_ids'],
  ['stopped_message_generation', 'draft_id'], ['message_reaction', 'new_reaction'], ['message_reaction_count', 'reactions'],
  ['chat_boost', 'boost'], ['removed_chat_boost', 'boost_id'], ['managed_bot', 'bot'], ['subscription', 'state'],
];
type MessageKind = 'message' | 'edited_message' | 'channel_post' | 'edited_channel_post' | 'business_message' | 'edited_business_message' | 'guest_message';

/**
 * The content types of today's Message, in the order they are tested: a message with an animation
 * also carries a document, and a venue also carries a location, so the specific one comes first.
 */
export const contentTypes = [
  'text', 'rich_message', 'animation', 'audio', 'document', 'live_photo', 'paid_media', 'photo', 'sticker', 'story',
  'video', 'video_note', 'voice', 'contact', 'dice', 'game', 'poll', 'venue', 'location', 'checklist',
  'checklist_tasks_done', 'checklist_tasks_added', 'community_chat_added', 'community_chat_removed',
  'suggested_post_info', 'suggested_post_approved', 'suggested_post_approval_failed', 'suggested_post_declined',
  'suggested_post_paid', 'suggested_post_refunded', 'chat_owner_left', 'chat_owner_changed', 'new_chat_members',
  'community_chat_joined', 'left_chat_member', 'new_chat_title', 'new_chat_photo', 'delete_chat_photo',
  'group_chat_created', 'supergroup_chat_created', 'channel_chat_created', 'managed_bot_created',
  'poll_option_added', 'poll_option_deleted', 'message_auto_delete_timer_changed', 'migrate_to_chat_id',
  'migrate_from_chat_id', 'pinned_message', 'invoice', 'successful_payment', 'refunded_payment', 'users_shared',
  'chat_shared', 'connected_website', 'write_access_allowed', 'passport_data', 'proximity_alert_triggered',
  'boost_added', 'chat_background_set', 'forum_topic_created', 'forum_topic_edited', 'forum_topic_closed',
  'forum_topic_reopened', 'general_forum_topic_hidden', 'general_forum_topic_unhidden', 'giveaway_created',
  'giveaway', 'giveaway_winners', 'giveaway_completed', 'gift', 'gift_upgrade_sent', 'unique_gift',
  'paid_message_price_changed', 'direct_message_price_changed', 'video_chat_scheduled', 'video_chat_started',
  'video_chat_ended', 'video_chat_participants_invited', 'web_app_data',
] as const satisfies ReadonlyArray<keyof Message>;
export type ContentType = (typeof contentTypes)[number];

/** Message fields that describe a message rather than being its content. */
type MetaField =
  | 'message_id' | 'message_thread_id' | 'from' | 'sender_chat' | 'date' | 'chat' | 'entities' | 'caption'
  | 'caption_entities' | 'media_group_id' | 'has_media_spoiler' | 'sender_tag' | 'receiver_user'
  | 'ephemeral_message_id' | 'sender_boost_count' | 'sender_business_bot' | 'forward_origin'
  | 'is_automatic_forward' | 'reply_to_message' | 'reply_to_checklist_task_id' | 'reply_to_poll_option_id'
  | 'is_paid_post' | 'external_reply' | 'quote' | 'reply_to_story' | 'via_bot' | 'guest_bot_caller_user'
  | 'guest_bot_caller_chat' | 'edit_date' | 'has_protected_content' | 'show_caption_above_media' | 'is_from_offline'
  | 'author_signature' | 'link_preview_options' | 'effect_id' | 'paid_star_count' | 'reply_markup' | 'guest_query_id'
  | 'business_connection_id' | 'is_topic_message' | 'direct_messages_topic';

// Fails to compile when the Bot API types gain a Message field that is neither content nor meta.
type Unclassified = Exclude<keyof Message, ContentType | MetaField>;
const everyFieldClassified: [Unclassified] extends [never] ? true : Unclassified = true;
void everyFieldClassified;

/** True for a message of any kind (new, edited, channel post, business). */
export function isMessage(payload: Payload): payload is Message {
  return 'message_id' in payload && 'date' in payload && !('new_reaction' in payload) && !('reactions' in payload);
}

export function isCallbackQuery(payload: Payload): payload is CallbackQuery {
  return 'chat_instance' in payload;
}

export function isInlineQuery(payload: Payload): payload is InlineQuery {
  return 'offset' in payload && 'query' in payload;
}

/** True for a message carrying `type` (`hasContent(msg, 'photo')`), narrowed so that field is there. */
export function hasContent<T extends ContentType>(payload: Payload, type: T): payload is Message & Required<Pick<Message, T>> {
  return isMessage(payload) && payload[type] !== undefined;
}

/** True for a text message: `msg.text` is a string after it. */
export function isText(payload: Payload): payload is Message & Required<Pick<Message, 'text'>> {
  return hasContent(payload, 'text');
}

/**
 * Which kind of update carried this payload. Exact for what the loop hands out; for a payload built
 * by hand, read from its fields (a member change is then 'chat_member' unless payloadOf saw it).
 */
export function flavor(payload: Payload): Flavor {
  if (isMessage(payload)) {
    const edited = payload.edit_date !== undefined;
    if (payload.guest_query_id !== undefined) return 'guest_message';
    if (payload.business_connection_id !== undefined) return edited ? 'edited_business_message' : 'business_message';
    if (payload.chat.type === 'channel') return edited ? 'edited_channel_post' : 'channel_post';
    return edited ? 'edited_message' : 'message';
  }
  const known = kindOf.get(payload);
  if (known !== undefined) return known;
  for (const [kind, field] of distinctiveFields) if (field in payload) return kind;
  return 'message';
}

/** The content type of a message: the first of `contentTypes` it carries, or 'unknown' for a newer one. */
export function contentTypeOf(message: Message): ContentType | 'unknown' {
  for (const type of contentTypes) {
    if (message[type] !== undefined) return type;
  }
  return 'unknown';
}

/**
 * The chat a payload belongs to: a callback query's chat is its message's; undefined for kinds with
 * no chat (inline queries, polls, payments) and for callback queries from inline messages.
 */
export function chatOf(payload: Payload): Chat | undefined {
  if (isCallbackQuery(payload)) return payload.message?.chat;
  return 'chat' in payload ? payload.chat : undefined;
}

export type Glance = [contentType: ContentType | 'callback_query' | 'unknown', chatType: Chat['type'] | undefined, chatId: number | undefined];

/** telepot's glance: `[contentType, chatType, chatId]`. A callback query's content type is 'callback_query'. */
export function glance(msg: Msg): Glance {
  const chat = chatOf(msg);
  const type = isCallbackQuery(msg) ? 'callback_query' : contentTypeOf(msg);
  return [type, chat?.type, chat?.id];
}
