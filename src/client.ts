// The HTTP transport to the Bot API: one keep-alive pool, JSON or streamed multipart bodies,
// a client-side timeout on every request, and errors that never carry the token.

import type { Readable } from 'node:stream';
import { NetworkError, TelegramError, type NetworkFailure } from './errors.js';
import { isUpload, toInputFile, type InputFile } from './inputfile.js';
import { registerSecret, redact } from './log.js';
import { multipartBody } from './multipart.js';
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
  }

  private get dispatcher(): Dispatcher {
    this.dispatcherValue ??= new (undici().Pool)(this.origin, {
      connections: this.connections,
      keepAliveTimeout: 30_000,
    });
    return this.dispatcherValue;
  }

  /** Calls a Bot API method; resolves with its `result` or rejects with TelegramError / NetworkError. */
  async call<T = unknown>(method: string, params: object = {}, options: CallOptions = {}): Promise<T> {
    let body: string | Readable;
    let headers: Record<string, string>;
    let hasUpload = false;
    for (const key in params) if (isUpload((params as Record<string, unknown>)[key])) hasUpload = true;
    if (!hasUpload) {
      // The common case, on the hot path: the parameters go out as JSON as they are.
      body = JSON.stringify(params);
      headers = jsonHeaders;
    } else {
      const fields: Array<[string, unknown]> = [];
      const files: Array<[string, InputFile]> = [];
      for (const [key, value] of Object.entries(params)) {
        if (value === undefined || value === null) continue;
        if (isUpload(value)) files.push([key, toInputFile(value, key)]);
        else fields.push([key, value]);
      }
      const multipart = multipartBody(fields, files);
      body = multipart.body;
      headers = { 'content-type': multipart.contentType };
    }
    const timeoutMs = options.timeoutMs ?? (hasUpload ? this.uploadTimeoutMs : this.timeoutMs);
    const response = await this.send(method, `${this.basePath}/bot${this.token}/${method}`, body, headers, timeoutMs, options.signal);
    return parseAnswer<T>(method, response.statusCode, await this.readText(method, response));
  }

  /** GETs a file's bytes from the file endpoint, as a stream. */
  async download(filePath: string, options: CallOptions = {}): Promise<Readable> {
    const path = `${this.basePath}/file/bot${this.token}/${filePath.split('/').map(encodeURIComponent).join('/')}`;
    const response = await this.send('downloadFile', path, undefined, {}, options.timeoutMs ?? this.uploadTimeoutMs, options.signal);
    if (response.statusCode !== 200) {
      const text = await this.readText('downloadFile', response);
      throw new TelegramError('downloadFile', response.statusCode, descriptionOf(text) ?? `HTTP ${response.statusCode}`);
    }
    return response.body;
  }

  async close(): Promise<void> {
    const dispatcher = this.dispatcherValue;
    this.dispatcherValue = undefined;
    if (dispatcher !== undefined && this.ownsDispatcher) await dispatcher.close();
  }

  private async send(
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

  private async readText(method: string, response: Dispatcher.ResponseData): Promise<string> {
    try {
      return await response.body.text();
    } catch (error) {
      throw this.networkError(method, error);
    }
  }

  private networkError(method: string, error: unknown): NetworkError {
    const failure = classify(error);
    const code = (error as { code?: unknown }).code;
    const text = error instanceof Error ? error.message : String(error);
    const detail = redact(`${failureText[failure]}${typeof code === 'string' ? ` (${code})` : ''}: ${text}`);
    return new NetworkError(method, failure, detail, error instanceof Error ? scrub(error) : undefined);
  }
}

const failureText: Record<NetworkFailure, string> = {
  timeout: 'no answer within the client-side timeout',
  network: 'network error',
  malformed: 'malformed answer',
  aborted: 'request aborted',
};

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
  if (answer.ok) return answer.result as T;
  const code = typeof answer.error_code === 'number' ? answer.error_code : status;
  const description = typeof answer.description === 'string' ? redact(answer.description) : `HTTP ${status}`;
  const parameters = answer.parameters !== null && typeof answer.parameters === 'object' ? answer.parameters : {};
  throw new TelegramError(method, code, description, parameters);
}
