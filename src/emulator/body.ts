// Request parameters from every place the Bot API accepts them: the query string, and a JSON,
// urlencoded or multipart/form-data body.
import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest } from './http.js';
import { boundaryOf, MultipartParser, setOwn, type UploadedPart } from './multipart.js';
import type { SpillDir } from './uploads.js';
import type { CallEncoding } from './types.js';

export interface ParsedRequest {
  params: Record<string, unknown>;
  files: Map<string, UploadedPart>;
  encoding: CallEncoding;
  /** Set when the body could not be parsed; params then hold what could be read. */
  error?: ApiError;
}

export interface BodyOptions {
  keepFileBytes: number;
  spill: SpillDir;
  /** Cap for JSON and urlencoded bodies. */
  maxBodyBytes?: number;
}

/**
 * A form value as the API understands it: strings that hold a JSON object or array
 * (reply_markup, entities, commands, media, allowed_updates, …) become that object.
 */
export function formValue(value: string): unknown {
  const c = value.trimStart()[0];
  if (c === '{' || c === '[') {
    try {
      const parsed: unknown = JSON.parse(value);
      if (parsed !== null && typeof parsed === 'object') return parsed;
    } catch {
      // not JSON after all: the string stays as received
    }
  }
  return value;
}

function formParams(search: URLSearchParams, into: Record<string, unknown>): void {
  for (const [key, value] of search) setOwn(into, key, formValue(value));
}

async function readAll(req: IncomingMessage, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) throw new ApiError(413, 'Request Entity Too Large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function parseRequest(req: IncomingMessage, query: URLSearchParams, options: BodyOptions): Promise<ParsedRequest> {
  const params: Record<string, unknown> = {};
  formParams(query, params);
  const parsed: ParsedRequest = { params, files: new Map(), encoding: query.size > 0 ? 'query' : 'none' };
  const contentType = req.headers['content-type'] ?? '';
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  const cap = options.maxBodyBytes ?? 20 * 1024 * 1024;
  try {
    if (mediaType === 'application/json') {
      const body = await readAll(req, cap);
      if (body.length === 0) return parsed;
      let value: unknown;
      try {
        value = JSON.parse(body.toString('utf8'));
      } catch {
        throw badRequest("can't parse JSON object");
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badRequest("can't parse JSON object");
      Object.assign(params, value);
      parsed.encoding = 'json';
    } else if (mediaType === 'application/x-www-form-urlencoded') {
      const body = await readAll(req, cap);
      if (body.length === 0) return parsed;
      formParams(new URLSearchParams(body.toString('utf8')), params);
      parsed.encoding = 'urlencoded';
    } else if (mediaType === 'multipart/form-data') {
      parsed.encoding = 'multipart';
      const boundary = boundaryOf(contentType);
      if (!boundary) throw badRequest('multipart/form-data without a boundary');
      const parser = new MultipartParser(boundary, options);
      try {
        for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
          await parser.write(chunk);
        }
        const result = await parser.end();
        for (const [key, value] of Object.entries(result.fields)) setOwn(params, key, formValue(value));
        parsed.files = result.files;
      } catch (error) {
        await parser.abort();
        throw error;
      }
    } else {
      req.resume(); // a body the API does not understand is ignored
    }
  } catch (error) {
    if (!req.readableEnded) req.resume(); // drain what is left, so the answer can still be sent
    parsed.error = error instanceof ApiError ? error : badRequest(`can't read the request body: ${String(error)}`);
  }
  return parsed;
}
