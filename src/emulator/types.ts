// Public types of the local Bot API emulator (see server.ts for the class itself).
import type { UserFromGetMe } from '@grammyjs/types';
import type { EmulatorRateLimits } from './ratelimits.js';

export interface EmulatorOptions {
  /** If set, only this token is accepted; otherwise any token matching /^\d+:[A-Za-z0-9_-]+$/. */
  token?: string;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** The getMe result, merged over the defaults. */
  bot?: Partial<UserFromGetMe>;
  /** Cap for getUpdates' `timeout`, in seconds; default 50. */
  maxPollTimeoutSeconds?: number;
  /** Uploaded files up to this size keep their bytes (getFile + download); default 20 MiB. */
  keepFileBytes?: number;
  /** The update_id given to the first pushed update; default 1. */
  firstUpdateId?: number;
  /** Answer sends beyond Telegram's rates (true) or these rates with 429; default off. */
  rateLimits?: Partial<EmulatorRateLimits> | boolean;
}

export interface RecordedFile {
  field: string;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
}

export type CallEncoding = 'json' | 'urlencoded' | 'multipart' | 'query' | 'none';

export interface RecordedCall {
  /** The method as requested, e.g. 'sendMessage'. */
  method: string;
  /** Parsed parameters: JSON body, urlencoded or multipart text fields, and the query string. */
  params: Record<string, unknown>;
  /** Multipart file parts by field name. */
  files: Record<string, RecordedFile>;
  encoding: CallEncoding;
  /** performance.now() when the request had been received completely. */
  atMs: number;
  /** Set when an injected fault answered this call instead of the emulator. */
  fault?: Fault['kind'];
  /** Set when the call was answered 429 for going over the enforced rate limits. */
  rateLimited?: true;
}

export type Fault =
  | { kind: 'hang' }
  | { kind: 'reset' }
  /** `parameters` as Telegram sends them, e.g. { migrate_to_chat_id } for a group that became a supergroup. */
  | { kind: 'status'; status: number; description?: string; parameters?: { retry_after?: number; migrate_to_chat_id?: number } }
  | { kind: 'retryAfter'; seconds: number }
  | { kind: 'conflict' }
  | { kind: 'unauthorized' }
  | { kind: 'malformed' }
  | { kind: 'truncated' }
  /** This body (HTTP 200 unless `status`), as JSON: odd answers such as `{"ok":true}` or `{"ok":true,"result":[null]}`. */
  | { kind: 'answer'; body: string; status?: number };

export interface FaultOptions {
  /** Only requests to this method (case-insensitive); default: any method. */
  method?: string;
  /** How many matching requests get the fault; default 1. */
  count?: number;
}

export interface StoredFile {
  fileId: string;
  fileUniqueId: string;
  size: number;
  sha256: string;
  bytes?: Buffer;
  filePath: string;
  filename: string;
}

export interface PushTextOptions {
  chatId?: number;
  userId?: number;
  chatType?: 'private' | 'group' | 'supergroup' | 'channel';
  firstName?: string;
  username?: string;
  kind?: 'message' | 'edited_message' | 'channel_post' | 'edited_channel_post';
}

export interface PushCallbackQueryOptions {
  data: string;
  chatId?: number;
  userId?: number;
  messageId?: number;
}
