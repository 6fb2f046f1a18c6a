// The HTTP transport to the Bot API: one keep-alive pool, JSON or streamed multipart bodies,
// a client-side timeout on every request, and errors that never carry the token.

import type { Readable } from 'node:stream';
import { NetworkError, TelegramError, type NetworkFailure } from './errors.js';
import { isMessageSend, SendScheduler, type FlowClock, type Permit, type RateLimits } from './flow.js';
import { containsUpload } from './inputfile.js';
import { describeError, registerSecret, redact, type Logger } from './log.js';
import { formOf, multipartBody } from './multipart.js';
import { resendDecision, type ResendOptions } from './resend.js';
import { undici, type Dispatcher } from './undici.js';

export const defaultApiRoot = 'https://api.telegram.org';

export interface ClientOptions {
  /** Bot API root; a local Bot API server or an emulator in tests. */
  apiRoot?: string;
  /** The HTTP dispatcher (tests inject one to fake DNS or network failures). Default: a keep-alive pool. */
  dispatcher?: Dispatcher;
  /** Client-side timeout for a request without an upload, in ms. */
  timeoutMs?: number;
  /** Client-side timeout for a request with an upload, in ms. */
  uploadTimeoutMs?: number;
  /** Sockets the pool may open to the API. */
  connections?: number;
  /** Outgoing flow control (on by default): pacing under Telegram's rates and resending; false turns both off. */
  flow?: FlowOptions | false;
  /** Where resends are logged (a warning each). */
  log?: Logger;
}

export interface FlowOptions extends ResendOptions {
  /**
   * Telegram's rates, or false for no pacing (resends still apply). Default: telegramRateLimits, except
   * for an API root on loopback (an emulator, tests), which is paced only when limits are given.
   */
  limits?: Partial<RateLimits> | false;
  /** Monotonic clock and timers for the pacing (tests inject one). */
  clock?: FlowClock;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

const jsonHeaders = { 'content-type': 'application/json' };

export class ApiClient {
  readonly apiRoot: string;
  private readonly token: string;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly uploadTimeoutMs: number;
  private readonly connections: number;
  private dispatcherValue: Dispatcher | undefined;
  private readonly ownsDispatcher: boolean;
  private readonly flow: { options: ResendOptions; scheduler: SendScheduler | undefined } | undefined;
  private readonly closed = new AbortController();
  private readonly log: Logger | undefined;
  private readonly paths = new Map<string, string>();

  constructor(token: string, options: ClientOptions = {}) {
    if (typeof token !== 'string' || token.trim() === '') throw new TypeError('a bot token is required');
    registerSecret(token);
    this.token = token;
    this.apiRoot = (options.apiRoot ?? defaultApiRoot).replace(/\/+$/, '');
    let url: URL;
    try {
      url = new URL(this.apiRoot);
    } catch {
      throw new TypeError(`apiRoot is not a URL: ${redact(this.apiRoot)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`apiRoot must be http(s): ${redact(this.apiRoot)}`);
    }
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? 300_000;
    this.connections = options.connections ?? 8;
    this.dispatcherValue = options.dispatcher;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.log = options.log;
    const flow = options.flow ?? {};
    // A loopback API root is an emulator or a test server, with no limits to keep: paced only when asked.
    const paced = flow !== false && flow.limits !== false && (flow.limits !== undefined || !isLoopback(url.hostname));
    this.flow = flow === false ? undefined : { options: flow, scheduler: paced ? new SendScheduler(flow.limits || {}, flow.clock) : undefined };
  }

  private get dispatcher(): Dispatcher {
    this.dispatcherValue ??= new (undici().Pool)(this.origin, {
      connections: this.connections,
      keepAliveTimeout: 30_000,
    });
    return this.dispatcherValue;
  }

  /**
   * Calls a Bot API method; resolves with its `result` or rejects with TelegramError / NetworkError.
   * Message sends wait their turn under Telegram's rates; failures are sent again as resend.ts decides.
   */
  async call<T = unknown>(method: string, params: object = {}, options: CallOptions = {}): Promise<T> {
    const request = requestOf(params);
    const upload = typeof request === 'string' ? undefined : request;
    const timeoutMs = options.timeoutMs ?? (upload === undefined ? this.timeoutMs : this.uploadTimeoutMs);
    const path = this.pathOf(method);
    const flow = method === 'getUpdates' ? undefined : this.flow;
    const chatId = flow?.scheduler !== undefined && isMessageSend(method) ? chatKeyOf(params) : undefined;
    for (let attempt = 0; ; attempt++) {
      let permit: Permit | undefined;
      if (chatId !== undefined) {
        const admitted = (flow?.scheduler as SendScheduler).admit(chatId, options.signal);
        permit = admitted instanceof Promise ? await this.whileOpen(method, admitted) : admitted;
      }
      let failure: unknown;
      const startedAtMs = performance.now();
      // undici's body timeout is per idle gap: an answer trickling a byte a second would never end, so
      // the whole exchange gets timeoutMs. A JSON request is a few hundred bytes that never stall on the
      // way out, and undici's headersTimeout already counts from the end of sending: only its body needs
      // the deadline (a timer, and only while a body is still coming: see readText). An upload can stall
      // while it is sent, so it gets one controller over the whole exchange.
      const whole = upload === undefined ? undefined : exchangeDeadline(timeoutMs, options.signal);
      try {
        const body = upload === undefined ? request as string : upload.body();
        const headers = typeof body === 'string' ? jsonHeaders : { 'content-type': body.contentType };
        const response = await this.request(method, path, typeof body === 'string' ? body : body.body, headers, timeoutMs, whole?.signal ?? options.signal);
        const text = await this.readText(method, response, timeoutMs - (performance.now() - startedAtMs));
        return parseAnswer<T>(method, response.statusCode, text);
      } catch (error) {
        failure = whole?.timedOut === true && options.signal?.aborted !== true ? timeoutError(method, timeoutMs) : error;
      } finally {
        whole?.dispose();
        if (permit !== undefined) flow?.scheduler?.release(permit);
      }
      const decision = flow === undefined ? undefined : resendDecision(method, failure, attempt, upload?.replayable !== false, flow.options);
      if (decision === undefined || !decision.retry) throw failure;
      const retryAfter = failure instanceof TelegramError ? failure.parameters.retry_after : undefined;
      if (chatId !== undefined && typeof retryAfter === 'number' && retryAfter > 0) flow?.scheduler?.pause(chatId, retryAfter * 1000);
      this.log?.warn(`${method} failed: ${decision.reason}; sending it again in ${Math.round(decision.delayMs)} ms (attempt ${attempt + 2})`);
      await this.whileOpen(method, delay(decision.delayMs, options.signal, this.closed.signal));
    }
  }

  /** Waits for `promise`, failing as aborted when the call's signal fires or the client closes. */
  private async whileOpen<R>(method: string, promise: Promise<R>): Promise<R> {
    try {
      return await promise;
    } catch (error) {
      throw new NetworkError(method, 'aborted', `request aborted before it was sent: ${describeError(error)}`);
    }
  }

  /** GETs a file's bytes from the file endpoint, as a stream. */
  async download(filePath: string, options: CallOptions = {}): Promise<Readable> {
    const path = `${this.basePath}/file/bot${this.token}/${filePath.split('/').map(encodeURIComponent).join('/')}`;
    const response = await this.request('downloadFile', path, undefined, {}, options.timeoutMs ?? this.uploadTimeoutMs, options.signal);
    if (response.statusCode !== 200) {
      const text = await this.readText('downloadFile', response, options.timeoutMs ?? this.uploadTimeoutMs);
      throw new TelegramError('downloadFile', response.statusCode, descriptionOf(text) ?? `HTTP ${response.statusCode}`);
    }
    return response.body;
  }

  async close(): Promise<void> {
    const closed = new Error('the client was closed');
    this.closed.abort(closed);
    this.flow?.scheduler?.close(closed);
    const dispatcher = this.dispatcherValue;
    this.dispatcherValue = undefined;
    if (dispatcher !== undefined && this.ownsDispatcher) await dispatcher.close();
  }

  /** The path of a method's endpoint (made once per method: it is asked for on every call). */
  private pathOf(method: string): string {
    let path = this.paths.get(method);
    if (path === undefined) {
      path = `${this.basePath}/bot${this.token}/${method}`;
      // Method names come from code, not from users; the bound only guards against a caller that makes them up.
      if (this.paths.size < 512) this.paths.set(method, path);
    }
    return path;
  }

  /** POSTs `body` (GETs without one); a failure comes back as a NetworkError naming `method`. */
  private async request(
    method: string,
    path: string,
    body: string | Readable | undefined,
    headers: Record<string, string>,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await undici().request.call(this.dispatcher, {
        origin: this.origin,
        path,
        method: body === undefined ? 'GET' : 'POST',
        headers,
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
    } catch (error) {
      throw this.networkError(method, error);
    }
  }

  /**
   * The answer's body as text, within `remainingMs`; more than maxAnswerBytes is not an answer (a broken
   * or hostile server), and is not kept.
   */
  private readText(method: string, response: Dispatcher.ResponseData, remainingMs: number): Promise<string> {
    const length = Number(response.headers['content-length'] ?? Number.NaN);
    if (length > maxAnswerBytes) return Promise.reject(tooLarge(method, response));
    // Usually the whole body came with the headers (undici parses a packet in one go before the request's
    // promise resumes the caller): then nothing can trickle, and the hot path needs no timer. With a
    // Content-Length undici reads no byte past it, so the bound holds and text() is the fast way.
    if (Number.isFinite(length) && response.body.readableLength >= length) {
      return response.body.text().catch((error: unknown) => {
        throw this.networkError(method, error);
      });
    }
    return this.readSlowly(method, response, length, remainingMs);
  }

  /** A body still on its way: read against the exchange's deadline, and bounded without a Content-Length. */
  private async readSlowly(method: string, response: Dispatcher.ResponseData, length: number, remainingMs: number): Promise<string> {
    // Whole milliseconds: Node keeps a timer list per duration, and a fraction would make one for each call.
    const deadline = setTimeout(() => response.body.destroy(timeoutError(method, Math.round(remainingMs))), Math.max(1, Math.ceil(remainingMs)));
    try {
      if (Number.isFinite(length)) return await response.body.text();
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxAnswerBytes) throw tooLarge(method, response);
        chunks.push(chunk);
      }
      // Decoded once, whole: a character split across chunks stays one character.
      return Buffer.concat(chunks, size).toString('utf8');
    } catch (error) {
      if (error instanceof NetworkError) throw error;
      throw this.networkError(method, error);
    } finally {
      clearTimeout(deadline);
    }
  }

  private networkError(method: string, error: unknown): NetworkError {
    const failure = classify(error);
    const code = (error as { code?: unknown }).code;
    const text = error instanceof Error ? error.message : String(error);
    const detail = redact(`${failureText[failure]}${typeof code === 'string' ? ` (${code})` : ''}: ${text}`);
    const notSent = typeof code === 'string' && notSentCodes.has(code);
    return new NetworkError(method, failure, detail, error instanceof Error ? scrub(error) : undefined, notSent);
  }
}

/** An answer over maxAnswerBytes: not kept, and its connection let go. */
function tooLarge(method: string, response: Dispatcher.ResponseData): NetworkError {
  response.body.destroy();
  return new NetworkError(method, 'malformed', `malformed answer: HTTP ${response.statusCode} with a body over ${maxAnswerBytes / 2 ** 20} MiB`);
}

function timeoutError(method: string, timeoutMs: number): NetworkError {
  return new NetworkError(method, 'timeout', `${failureText.timeout}: no complete answer within ${timeoutMs} ms`);
}

/** One abort signal for a whole exchange: fires at `timeoutMs`, or when the caller's signal does. */
function exchangeDeadline(timeoutMs: number, outer: AbortSignal | undefined): { signal: AbortSignal; readonly timedOut: boolean; dispose(): void } {
  // Wired by hand: AbortSignal.any on a long-lived signal leaks on Node 20.
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort(new Error(`no complete answer within ${timeoutMs} ms`));
  }, timeoutMs);
  const forward = () => abort.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });
  return {
    signal: abort.signal,
    get timedOut() { return timedOut; },
    dispose() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', forward);
    },
  };
}

/** The largest Bot API answer read: 100 updates of the largest kinds are a few MiB. */
export const maxAnswerBytes = 32 * 2 ** 20;

const failureText: Record<NetworkFailure, string> = {
  timeout: 'no answer within the client-side timeout',
  network: 'network error',
  malformed: 'malformed answer',
  aborted: 'request aborted',
};

/** Connect-phase failures: no byte of the request reached the server. */
const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'UND_ERR_CONNECT_TIMEOUT']);

function classify(error: unknown): NetworkFailure {
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout';
  if (name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') return 'aborted';
  return 'network';
}

/** Undici errors do not contain the URL, but a cause from elsewhere might: keep only a redacted message. */
function scrub(error: Error): Error {
  const copy = new Error(redact(error.message));
  copy.name = error.name;
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) Object.assign(copy, { code });
  return copy;
}

function descriptionOf(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { description?: unknown };
    return typeof parsed.description === 'string' ? parsed.description : undefined;
  } catch {
    return undefined;
  }
}

interface Answer {
  ok?: unknown;
  result?: unknown;
  error_code?: unknown;
  description?: unknown;
  parameters?: unknown;
}

function parseAnswer<T>(method: string, status: number, text: string): T {
  let answer: Answer;
  try {
    answer = JSON.parse(text) as Answer;
  } catch {
    throw new NetworkError(method, 'malformed', `malformed answer: HTTP ${status} with a body that is not JSON (${text.length} bytes)`);
  }
  if (answer === null || typeof answer !== 'object' || typeof answer.ok !== 'boolean') {
    throw new NetworkError(method, 'malformed', `malformed answer: HTTP ${status} without an "ok" field`);
  }
  if (answer.ok) {
    // `ok: true` always carries a result (true for methods without one); without it a caller would
    // meet undefined where a Message belongs. getUpdates checks its own list, with its own words.
    if (!('result' in answer) && method !== 'getUpdates') {
      throw new NetworkError(method, 'malformed', `malformed answer: HTTP ${status} with "ok": true but no "result"`);
    }
    return answer.result as T;
  }
  const code = typeof answer.error_code === 'number' ? answer.error_code : status;
  const description = typeof answer.description === 'string' ? redact(answer.description) : `HTTP ${status}`;
  const parameters = answer.parameters !== null && typeof answer.parameters === 'object' ? answer.parameters : {};
  throw new TelegramError(method, code, description, parameters);
}

interface UploadRequest {
  /** A fresh body for each attempt (a multipart body is a stream that is read once). */
  body(): { body: Readable; contentType: string };
  /** False when an upload comes from a stream and cannot be sent twice. */
  replayable: boolean;
}

/** The JSON body of a call without uploads (the common case, on the hot path), or its multipart form. */
function requestOf(params: object): string | UploadRequest {
  let hasUpload = false;
  for (const key in params) if (containsUpload((params as Record<string, unknown>)[key])) hasUpload = true;
  if (!hasUpload) return JSON.stringify(params);
  const { fields, files } = formOf(params);
  return { body: () => multipartBody(fields, files), replayable: files.every(([, file]) => file.replayable) };
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** The chat a send goes to, for pacing: chat_id (or user_id for a gift), else none. */
function chatKeyOf(params: object): number | string | undefined {
  const { chat_id, user_id } = params as { chat_id?: unknown; user_id?: unknown };
  const id = chat_id ?? user_id;
  // "-100123" and -100123 are one chat (and a group): only @usernames stay strings.
  if (typeof id === 'string') return /^-?\d+$/.test(id) ? Number(id) : id;
  return typeof id === 'number' ? id : undefined;
}

/** Resolves after `ms`; rejects as soon as one of the signals fires. */
function delay(ms: number, ...signals: Array<AbortSignal | undefined>): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      for (const signal of signals) signal?.removeEventListener('abort', stop);
      reject(new Error('aborted while waiting to send again'));
    };
    const timer = setTimeout(() => {
      for (const signal of signals) signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    for (const signal of signals) {
      if (signal?.aborted) return stop();
      signal?.addEventListener('abort', stop, { once: true });
    }
  });
}
