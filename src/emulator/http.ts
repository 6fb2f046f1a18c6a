// Bot API response envelopes and the error type the method implementations throw.
import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';

export interface ResponseParameters {
  retry_after?: number;
  migrate_to_chat_id?: number;
}

/** An error answered as {"ok":false,"error_code":code,"description":...}. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    readonly parameters?: ResponseParameters,
  ) {
    super(description);
    this.name = 'ApiError';
  }
}

export const badRequest = (what: string): ApiError => new ApiError(400, `Bad Request: ${what}`);
export const notFound = (): ApiError => new ApiError(404, 'Not Found');
export const unauthorized = (): ApiError => new ApiError(401, 'Unauthorized');
export const pollConflict = (): ApiError =>
  new ApiError(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
export const webhookConflict = (): ApiError =>
  new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
export const tooManyRequests = (seconds: number): ApiError =>
  new ApiError(429, `Too Many Requests: retry after ${seconds}`, { retry_after: seconds });

/** Telegram-like descriptions for injected HTTP statuses. */
export function statusDescription(status: number): string {
  switch (status) {
    case 400: return 'Bad Request';
    case 401: return 'Unauthorized';
    case 403: return 'Forbidden';
    case 404: return 'Not Found';
    case 409: return 'Conflict';
    case 429: return 'Too Many Requests';
    case 500: return 'Internal Server Error';
    case 502: return 'Bad Gateway';
    case 503: return 'Service Unavailable';
    case 504: return 'Gateway Timeout';
    default: return STATUS_CODES[status] ?? `Error ${status}`;
  }
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendResult(res: ServerResponse, result: unknown): void {
  sendJson(res, 200, { ok: true, result });
}

export function sendError(res: ServerResponse, error: ApiError): void {
  const payload: Record<string, unknown> = { ok: false, error_code: error.code, description: error.description };
  if (error.parameters) payload.parameters = error.parameters;
  sendJson(res, error.code, payload);
}
