// Streams a multipart/form-data body: fields first, then each file part as it is read, so an upload
// of any size costs one chunk of memory at a time.

import { randomBytes } from 'node:crypto';
import { extname } from 'node:path';
import { Readable } from 'node:stream';
import { isUpload, toInputFile, type InputFile } from './inputfile.js';

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

export interface Form {
  fields: Array<[string, unknown]>;
  files: Array<[string, InputFile]>;
}

/**
 * Splits parameters into form fields and file parts. A top-level upload is a part of its own name; one
 * nested in an object (sendMediaGroup's media, a sticker set's stickers) becomes a part `fileN` and is
 * named in its place as `attach://fileN`, as the Bot API asks.
 */
export function formOf(params: object): Form {
  const form: Form = { fields: [], files: [] };
  const attach = (value: unknown, depth: number): unknown => {
    if (isUpload(value)) {
      const name = `file${form.files.length}`;
      form.files.push([name, toInputFile(value, name)]);
      return `attach://${name}`;
    }
    if (value === null || typeof value !== 'object' || depth > 8) return value;
    if (Array.isArray(value)) return value.map((item) => attach(item, depth + 1));
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = attach(item, depth + 1);
    return copy;
  };
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (isUpload(value)) form.files.push([key, toInputFile(value, key)]);
    else form.fields.push([key, attach(value, 1)]);
  }
  return form;
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
