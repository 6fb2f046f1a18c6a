// What a payload is and where it came from: flavor() and glance(), for every kind a handler receives.

import type { CallbackQuery, Chat, Message } from '@grammyjs/types';

/** A payload a handler receives: a message of any kind, or a callback query (inline keyboard press). */
export type Msg = Message | CallbackQuery;

/** The update kinds that reach handlers. */
export const handledUpdateKinds = ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'callback_query'] as const;
export type Flavor = (typeof handledUpdateKinds)[number];

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

function isCallbackQuery(msg: Msg): msg is CallbackQuery {
  return 'chat_instance' in msg;
}

/** Which kind of update carried this payload. */
export function flavor(msg: Msg): Flavor {
  if (isCallbackQuery(msg)) return 'callback_query';
  const edited = msg.edit_date !== undefined;
  if (msg.chat.type === 'channel') return edited ? 'edited_channel_post' : 'channel_post';
  return edited ? 'edited_message' : 'message';
}

/** The content type of a message: the first of `contentTypes` it carries, or 'unknown' for a newer one. */
export function contentTypeOf(message: Message): ContentType | 'unknown' {
  for (const type of contentTypes) {
    if (message[type] !== undefined) return type;
  }
  return 'unknown';
}

/** The chat a payload belongs to: a callback query's chat is its message's (undefined for inline ones). */
export function chatOf(msg: Msg): Chat | undefined {
  return isCallbackQuery(msg) ? msg.message?.chat : msg.chat;
}

export type Glance = [contentType: ContentType | 'callback_query' | 'unknown', chatType: Chat['type'] | undefined, chatId: number | undefined];

/** telepot's glance: `[contentType, chatType, chatId]`. A callback query's content type is 'callback_query'. */
export function glance(msg: Msg): Glance {
  const chat = chatOf(msg);
  const type = isCallbackQuery(msg) ? 'callback_query' : contentTypeOf(msg);
  return [type, chat?.type, chat?.id];
}
