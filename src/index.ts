// telepi's bot library: a TypeScript take on telepot on today's Bot API.

export { Bot, type BotOptions, type ChatId, type MessageIdentifier, type MethodName, type Params, type Result } from './bot.js';
export { ApiClient, defaultApiRoot, type CallOptions, type ClientOptions, type FlowOptions } from './client.js';
export { Answerer, type InlineAnswer, type InlineCompute } from './answerer.js';
export {
  DelegatorBot, call, createRun, perCallbackQueryChatId, perCallbackQueryOrigin, perChatId, perChatIdExcept, perChatIdIn, perFromId,
  perInlineFromId, type PayloadSeedFn, type Delegate, type DelegateFactory, type DelegationPattern, type Runnable, type RunnableClass, type Seed, type SeedFn, type SeedTuple,
} from './delegate.js';
export { isRedelivery } from './delivery.js';
export { LoopStopped, NetworkError, TelegramError, WaitTooLong, type NetworkFailure } from './errors.js';
export { SendScheduler, telegramRateLimits, type FlowClock, type RateLimits, type RateWindow } from './flow.js';
export {
  chatOf, contentTypeOf, contentTypes, flavor, glance, handledUpdateKinds, hasContent, isCallbackQuery, isInlineQuery, isMessage, isText,
  payloadOf, updateKinds, type ContentType, type Flavor, type Glance, type Msg, type Payload, type UpdateKind,
} from './glance.js';
export { ChatHandler, createSender, type ChatHandlerOptions, type Sender } from './handler.js';
export { InputFile, type FileInput } from './inputfile.js';
export { isRepeatable, type ResendOptions } from './resend.js';
export { createLogger, memoryLogger, redact, silentLogger, type Logger, type LogLevel } from './log.js';
export { MessageLoop, retryPolicy, type Handler, type PollingOptions, type RetryDecision } from './polling.js';
export { Listener, Microphone, SpeakerBot, matches, type Pattern, type PatternObject, type PatternValue } from './speaker.js';
export { webhookCallback, type WebhookOptions } from './webhook.js';
