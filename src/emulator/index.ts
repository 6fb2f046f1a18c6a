// The local Bot API emulator: a loopback HTTP server that behaves like Telegram's Bot API.
export { BotApiEmulator, DEFAULT_BOT } from './server.js';
export type {
  CallEncoding, EmulatorOptions, Fault, FaultOptions, PushCallbackQueryOptions, PushTextOptions, RecordedCall, RecordedFile,
  StoredFile,
} from './types.js';
