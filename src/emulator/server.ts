// BotApiEmulator: a real HTTP server on loopback that answers like Telegram's Bot API, records
// every call, queues updates for getUpdates, and misbehaves on request (injectFault).
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Message, Update, UserFromGetMe } from '@grammyjs/types';
import { parseRequest } from './body.js';
import type { EmulatorState } from './context.js';
import { applyFault, FaultQueue } from './faults.js';
import { FileStore } from './files.js';
import { ApiError, notFound, sendError, sendJson, sendResult, tooManyRequests, unauthorized } from './http.js';
import { callbackQueryUpdate, textUpdate } from './incoming.js';
import { METHODS } from './methods.js';
import type { UploadedPart } from './multipart.js';
import { MessageStore } from './store.js';
import type {
  EmulatorOptions, Fault, FaultOptions, PushCallbackQueryOptions, PushTextOptions, RecordedCall, RecordedFile, StoredFile,
} from './types.js';
import { MESSAGE_SEND, RateLimiter, TELEGRAM_RATE_LIMITS, type EmulatorRateLimits } from './ratelimits.js';
import { PollAborted, UpdateQueue } from './updates.js';
import { SpillDir } from './uploads.js';
import { CallWaiters } from './waiters.js';

const TOKEN = /^\d+:[A-Za-z0-9_-]+$/;
const METHOD_ROUTE = /^\/bot([^/]+)\/([^/]*)$/;
const FILE_ROUTE = /^\/file\/bot([^/]+)\/(.+)$/;

export const DEFAULT_BOT: UserFromGetMe = {
  id: 1000, is_bot: true, first_name: 'telepi', username: 'telepi_bot',
  can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false,
  can_connect_to_business: false, has_main_web_app: false, has_topics_enabled: false,
  allows_users_to_create_topics: false, can_manage_bots: false, supports_join_request_queries: false,
};

function recordedFiles(parts: Map<string, UploadedPart>): Record<string, RecordedFile> {
  const out: Record<string, RecordedFile> = {};
  for (const [field, part] of parts) {
    out[field] = { field, filename: part.filename, contentType: part.contentType, size: part.size, sha256: part.sha256 };
  }
  return out;
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

export class BotApiEmulator extends EventEmitter {
  /** Starts an emulator listening on options.host:options.port (default 127.0.0.1, ephemeral). */
  static async start(options: EmulatorOptions = {}): Promise<BotApiEmulator> {
    const emulator = new BotApiEmulator(options);
    await emulator.listen(options.host ?? '127.0.0.1', options.port ?? 0);
    return emulator;
  }

  readonly calls: RecordedCall[] = [];
  private readonly waiters = new CallWaiters();
  private readonly faults = new FaultQueue();
  private readonly state: EmulatorState;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly inflight = new Set<AbortController>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly spill = new SpillDir();
  private readonly keepFileBytes: number;
  private address = { host: '127.0.0.1', port: 0 };
  private closing: Promise<void> | undefined;
  private rateLimiter: RateLimiter | undefined;

  private constructor(private readonly options: EmulatorOptions) {
    super();
    this.keepFileBytes = options.keepFileBytes ?? 20 * 1024 * 1024;
    this.state = {
      bot: { ...DEFAULT_BOT, ...options.bot, is_bot: true },
      store: new MessageStore(),
      fileStore: new FileStore(),
      updates: new UpdateQueue(options.firstUpdateId ?? 1),
      commands: new Map(),
      webhook: undefined,
      maxPollTimeoutSeconds: options.maxPollTimeoutSeconds ?? 50,
      botMessage: (message, method) => { this.emit('botMessage', message, method); },
    };
    this.enforceRateLimits(options.rateLimits ?? false);
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  private listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        this.address = { host, port: typeof address === 'object' && address ? address.port : port };
        resolve();
      });
    });
  }

  /** 'http://127.0.0.1:<port>': requests go to `${apiRoot}/bot<token>/<method>`. */
  get apiRoot(): string {
    const host = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host;
    return `http://${host}:${this.address.port}`;
  }

  get port(): number {
    return this.address.port;
  }

  // ---- events: 'call' (RecordedCall), 'botMessage' (Message, method) ---------------------------

  override on(event: 'call', listener: (call: RecordedCall) => void): this;
  override on(event: 'botMessage', listener: (message: Message, method: string) => void): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override once(event: 'call', listener: (call: RecordedCall) => void): this;
  override once(event: 'botMessage', listener: (message: Message, method: string) => void): this;
  override once(event: string | symbol, listener: (...args: never[]) => void): this;
  override once(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  // ---- calls -------------------------------------------------------------------------------

  /** The recorded calls of a method (case-insensitive), in arrival order. */
  callsOf(method: string): RecordedCall[] {
    return [...this.waiters.callsOf(method)];
  }

  /** The first call of `method` (matching `predicate`) already recorded or yet to come. */
  waitForCall(method: string, predicate?: (call: RecordedCall) => boolean, timeoutMs = 5000): Promise<RecordedCall> {
    return this.waiters.waitFor(method, predicate, timeoutMs);
  }

  /** The first `count` calls of `method`, once that many have been recorded. */
  waitForCalls(method: string, count: number, timeoutMs = 5000): Promise<RecordedCall[]> {
    return this.waiters.waitForCount(method, count, timeoutMs);
  }

  // ---- updates -----------------------------------------------------------------------------

  /** Queues an update under the next update_id and wakes a waiting long poll. */
  pushUpdate(update: Omit<Update, 'update_id'>): Update {
    const { update_id: _ignored, ...rest } = update as Update;
    return this.state.updates.push(rest);
  }

  /** Queues a realistic text message from a user (a bot_command entity when it starts with '/'). */
  pushText(text: string, opts: PushTextOptions = {}): Update {
    return this.pushUpdate(textUpdate(this.state.store, text, opts));
  }

  /** Queues a callback query, by default on the bot's latest message in the chat. */
  pushCallbackQuery(opts: PushCallbackQueryOptions): Update {
    return this.pushUpdate(callbackQueryUpdate(this.state.store, this.state.bot, opts));
  }

  /** Updates not yet confirmed by a getUpdates offset. */
  get queuedUpdates(): number {
    return this.state.updates.size;
  }

  /** The highest offset a getUpdates has sent (0 before any). */
  get confirmedOffset(): number {
    return this.state.updates.confirmedOffset;
  }

  // ---- faults, results ---------------------------------------------------------------------

  /** The next `count` requests to `method` (default: any) get `fault` instead of an answer. */
  injectFault(fault: Fault, options?: FaultOptions): void {
    this.faults.inject(fault, options);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Answers sends beyond Telegram's rates (or the given ones) with 429 and retry_after; false stops. */
  enforceRateLimits(limits: Partial<EmulatorRateLimits> | boolean = true): void {
    this.rateLimiter = limits === false ? undefined : new RateLimiter({ ...TELEGRAM_RATE_LIMITS, ...(limits === true ? {} : limits) });
  }

  /** What the bot sent (send*, forwardMessage; latest edit wins), in order; in one chat if given. */
  sentMessages(chatId?: number): Message[] {
    return this.state.store.sentMessages(chatId);
  }

  /** Uploaded files by file_id. */
  get files(): Map<string, StoredFile> {
    return this.state.fileStore.files;
  }

  /** Ends hanging requests and long polls, drops every connection and stops listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state.updates.abandonWaiting();
    for (const controller of this.inflight) controller.abort();
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    this.waiters.closeAll(new Error('the Bot API emulator was closed'));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await this.spill.remove();
  }

  // ---- HTTP --------------------------------------------------------------------------------

  private tokenOk(token: string): boolean {
    return this.options.token !== undefined ? token === this.options.token : TOKEN.test(token);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const isGet = req.method === 'GET' || req.method === 'HEAD';
    const method = METHOD_ROUTE.exec(path);
    if (method && (isGet || req.method === 'POST')) {
      const token = decode(method[1] ?? '') ?? '';
      const name = decode(method[2] ?? '') ?? '';
      if (name !== '') {
        this.serveMethod(req, res, token, name, new URLSearchParams(q < 0 ? '' : url.slice(q + 1))).catch((error: unknown) => {
          if (res.headersSent) res.destroy();
          else sendError(res, new ApiError(500, `Internal Server Error: ${String(error)}`));
        });
        return;
      }
    }
    req.resume();
    const file = FILE_ROUTE.exec(path);
    if (file && isGet) this.serveFile(req, res, decode(file[1] ?? '') ?? '', decode(file[2] ?? ''));
    else sendError(res, notFound());
  }

  private serveFile(req: IncomingMessage, res: ServerResponse, token: string, filePath: string | undefined): void {
    if (!this.tokenOk(token)) return sendError(res, unauthorized());
    const found = filePath === undefined ? undefined : this.state.fileStore.byFilePath(filePath);
    const bytes = found?.file.bytes;
    if (!found || !bytes) return sendError(res, notFound());
    res.writeHead(200, { 'Content-Type': found.contentType, 'Content-Length': bytes.length });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  }

  private async serveMethod(req: IncomingMessage, res: ServerResponse, token: string, method: string, query: URLSearchParams): Promise<void> {
    const fault = this.faults.take(method); // consumed on arrival, before any validation
    const controller = new AbortController();
    this.inflight.add(controller);
    res.on('close', () => {
      this.inflight.delete(controller);
      if (!res.writableFinished) controller.abort();
    });
    const parsed = await parseRequest(req, query, { keepFileBytes: this.keepFileBytes, spill: this.spill });
    if (this.closing || res.destroyed) return;
    const call: RecordedCall = {
      method,
      params: parsed.params,
      files: recordedFiles(parsed.files),
      encoding: parsed.encoding,
      atMs: performance.now(),
    };
    if (fault) call.fault = fault.kind;
    this.record(call);

    if (fault) {
      if (applyFault(res, fault)) {
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
      }
      return;
    }
    if (!this.tokenOk(token)) return sendError(res, unauthorized());
    if (parsed.error) return sendError(res, parsed.error);
    const handler = METHODS.get(method.toLowerCase());
    if (!handler) return sendError(res, notFound());
    if (this.rateLimiter && MESSAGE_SEND.test(method)) {
      const seconds = this.overLimit(this.rateLimiter, parsed.params.chat_id, call.atMs);
      if (seconds !== undefined) {
        call.rateLimited = true;
        return sendError(res, tooManyRequests(seconds));
      }
    }
    try {
      const result = await handler(this.state, { method, params: parsed.params, files: parsed.files, signal: controller.signal });
      sendResult(res, result);
    } catch (error) {
      if (error instanceof PollAborted) return; // the client left, or close(): nobody to answer
      if (error instanceof ApiError) return sendError(res, error);
      sendJson(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${String(error)}` });
    }
  }

  private overLimit(limiter: RateLimiter, chatId: unknown, nowMs: number): number | undefined {
    let chat;
    try {
      chat = this.state.store.resolve(chatId).chat;
    } catch {
      return undefined; // the method answers the bad chat_id itself
    }
    return limiter.admit(chat, nowMs);
  }

  private record(call: RecordedCall): void {
    this.calls.push(call);
    this.waiters.add(call);
    this.emit('call', call);
  }
}
