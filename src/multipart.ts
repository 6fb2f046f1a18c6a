// Streams a multipart/form-data body: fields first, then each file part as it is read, so an upload
// of any size costs one chunk of memory at a time.

import { randomBytes } from 'node:crypto';
import { extname } from 'node:path';
import { Readable } from 'node:stream';
import type { InputFile } from './inputfile.js';

const mimeTypes: Record<string, string> = {
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.gif': 'image/gif', '.webp': 'image/webp',
  '.mp4': 'video/mp4', '.webm': 'video/webm', '.mp3': 'audio/mpeg', '.m4a': 'audio/mp4', '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg', '.pdf': 'application/pdf', '.txt': 'text/plain', '.json': 'application/json',
  '.tgs': 'application/x-tgsticker',
};

function mimeTypeOf(filename: string): string {
  return mimeTypes[extname(filename).toLowerCase()] ?? 'application/octet-stream';
}

/** Quotes a header parameter value; CR, LF and quotes cannot appear in it. */
function quote(value: string): string {
  return `"${value.replace(/[\r\n"\\]/g, '_')}"`;
}

/** Encodes a non-file parameter as Telegram expects in form bodies: objects as JSON text. */
export function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

export interface MultipartBody {
  contentType: string;
  body: Readable;
}

export function multipartBody(fields: ReadonlyArray<[string, unknown]>, files: ReadonlyArray<[string, InputFile]>): MultipartBody {
  const boundary = `----telepi${randomBytes(12).toString('hex')}`;
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Readable.from(parts(boundary, fields, files), { objectMode: false }) };
}

async function* parts(
  boundary: string,
  fields: ReadonlyArray<[string, unknown]>,
  files: ReadonlyArray<[string, InputFile]>,
): AsyncGenerator<Buffer> {
  for (const [name, value] of fields) {
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name=${quote(name)}\r\n\r\n${fieldText(value)}\r\n`);
  }
  for (const [name, file] of files) {
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name=${quote(name)}; filename=${quote(file.filename)}\r\n` +
        `Content-Type: ${mimeTypeOf(file.filename)}\r\n\r\n`,
    );
    const data = file.open();
    if (Buffer.isBuffer(data)) yield data;
    else yield* chunksOf(data, name);
    yield Buffer.from('\r\n');
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

async function* chunksOf(stream: Readable, field: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`could not read the file for "${field}": ${reason}`, { cause: error });
  }
}
