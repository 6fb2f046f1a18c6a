// The local Bot API emulator: a loopback HTTP server that behaves like Telegram's Bot API.
export { TELEGRAM_RATE_LIMITS, type EmulatorRateLimits, type EmulatorRateWindow } from './ratelimits.js';
export { BotApiEmulator, DEFAULT_BOT } from './server.js';
export type {
  CallEncoding, EmulatorOptions, Fault, FaultOptions, PushCallbackQueryOptions, PushTextOptions, RecordedCall, RecordedFile,
  StoredFile,
} from './types.js';
