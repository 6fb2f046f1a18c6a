// The method table: getMe, getUpdates, webhooks, bot commands, callback answers and the explicit
// list of real Bot API methods answered with a plain `true`; plus the message and media methods.
import type { BotCommand, WebhookInfo } from '@grammyjs/types';
import type { EmulatorState, Handler } from './context.js';
import { ALBUM_METHODS } from './albums.js';
import { badRequest } from './http.js';
import { MEDIA_METHODS } from './media.js';
import { MESSAGE_METHODS } from './messages.js';
import { arr, bool, int, obj, str } from './params.js';

const getUpdates: Handler = (state, ctx) => {
  const p = ctx.params;
  const requested = int(p.limit) ?? 0;
  const limit = requested <= 0 ? 100 : Math.min(100, requested);
  const timeout = Math.min(state.maxPollTimeoutSeconds, Math.max(0, int(p.timeout) ?? 0));
  const allowed = arr(p.allowed_updates)?.filter((t): t is string => typeof t === 'string');
  return state.updates.poll({ offset: int(p.offset), limit, timeout, allowedUpdates: allowed }, ctx.signal);
};

const setWebhook: Handler = (state, ctx) => {
  const p = ctx.params;
  const url = str(p.url) ?? '';
  if (bool(p.drop_pending_updates)) state.updates.dropAll();
  if (url === '') {
    state.webhook = undefined;
    state.updates.setWebhookActive(false);
    return true;
  }
  if (!/^https:\/\/[^\s/]+/i.test(url)) throw badRequest('bad webhook: An HTTPS URL must be provided for webhook');
  const allowed = arr(p.allowed_updates)?.filter((t): t is string => typeof t === 'string');
  state.webhook = {
    url,
    maxConnections: int(p.max_connections) ?? 40,
    allowedUpdates: allowed ?? state.webhook?.allowedUpdates,
    hasCustomCertificate: ctx.files.has('certificate'),
    ipAddress: str(p.ip_address),
  };
  state.updates.setWebhookActive(true);
  return true;
};

const deleteWebhook: Handler = (state, ctx) => {
  if (bool(ctx.params.drop_pending_updates)) state.updates.dropAll();
  state.webhook = undefined;
  state.updates.setWebhookActive(false);
  return true;
};

const getWebhookInfo: Handler = (state) => {
  const hook = state.webhook;
  const info: WebhookInfo = { url: hook?.url ?? '', has_custom_certificate: hook?.hasCustomCertificate ?? false, pending_update_count: state.updates.size };
  if (hook) {
    info.max_connections = hook.maxConnections;
    if (hook.ipAddress) info.ip_address = hook.ipAddress;
    if (hook.allowedUpdates) info.allowed_updates = hook.allowedUpdates as WebhookInfo['allowed_updates'];
  }
  return info;
};

/** Commands are stored per scope (type, chat, user) and language, like Telegram. */
function commandsKey(state: EmulatorState, scopeValue: unknown, language: unknown): string {
  const scope = obj(scopeValue) ?? {};
  const type = str(scope.type) ?? 'default';
  let chat = '';
  if (scope.chat_id !== undefined) chat = String(state.store.resolve(scope.chat_id).chat.id);
  return `${type}:${chat}:${str(scope.user_id) ?? ''}|${str(language) ?? ''}`;
}

const COMMAND = /^[a-z0-9_]{1,32}$/;

const setMyCommands: Handler = (state, ctx) => {
  const list = arr(ctx.params.commands);
  if (!list) throw badRequest("can't parse commands JSON object");
  if (list.length > 100) throw badRequest('too many commands specified');
  const commands: BotCommand[] = list.map((item) => {
    const c = obj(item);
    const command = str(c?.command);
    if (!command || !COMMAND.test(command)) throw badRequest('BOT_COMMAND_INVALID');
    const description = str(c?.description)?.trim() ?? '';
    if (description.length === 0 || description.length > 256) throw badRequest('BOT_COMMAND_DESCRIPTION_INVALID');
    return { command, description };
  });
  const key = commandsKey(state, ctx.params.scope, ctx.params.language_code);
  if (commands.length === 0) state.commands.delete(key);
  else state.commands.set(key, commands);
  return true;
};

const getMyCommands: Handler = (state, ctx) =>
  state.commands.get(commandsKey(state, ctx.params.scope, ctx.params.language_code)) ?? [];

const deleteMyCommands: Handler = (state, ctx) => {
  state.commands.delete(commandsKey(state, ctx.params.scope, ctx.params.language_code));
  return true;
};

const answerCallbackQuery: Handler = (_state, ctx) => {
  if (!str(ctx.params.callback_query_id)) {
    throw badRequest('query is too old and response timeout expired or query ID is invalid');
  }
  return true;
};

const getUserProfilePhotos: Handler = (_state, ctx) => {
  if (int(ctx.params.user_id) === undefined) throw badRequest('user not found');
  return { total_count: 0, photos: [] };
};

/** Real Bot API methods that are answered with `true` and nothing else. */
export const TRUE_STUBS = [
  'logOut', 'close', 'setMessageReaction', 'deleteMessages', 'banChatMember', 'unbanChatMember', 'restrictChatMember',
  'promoteChatMember', 'setChatAdministratorCustomTitle', 'banChatSenderChat', 'unbanChatSenderChat', 'setChatPermissions',
  'setChatPhoto', 'deleteChatPhoto', 'setChatTitle', 'setChatDescription', 'pinChatMessage', 'unpinChatMessage',
  'unpinAllChatMessages', 'leaveChat', 'setChatStickerSet', 'deleteChatStickerSet', 'approveChatJoinRequest',
  'declineChatJoinRequest', 'setMyName', 'setMyDescription', 'setMyShortDescription', 'setChatMenuButton',
  'setMyDefaultAdministratorRights', 'answerInlineQuery', 'answerShippingQuery', 'answerPreCheckoutQuery',
] as const;

const CORE_METHODS: Record<string, Handler> = {
  getMe: (state) => state.bot,
  getUpdates,
  setWebhook,
  deleteWebhook,
  getWebhookInfo,
  setMyCommands,
  getMyCommands,
  deleteMyCommands,
  answerCallbackQuery,
  getUserProfilePhotos,
};

/** Every implemented method, by lower-cased name (Telegram's method names are case-insensitive). */
export const METHODS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ...TRUE_STUBS.map((name): [string, Handler] => [name.toLowerCase(), () => true]),
  ...[CORE_METHODS, MESSAGE_METHODS, MEDIA_METHODS, ALBUM_METHODS].flatMap((table) =>
    Object.entries(table).map(([name, handler]): [string, Handler] => [name.toLowerCase(), handler])),
]);
