// A file to upload. A bare string is never a path: it is a file_id or a URL, sent as a plain field.

import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';

type Source = Buffer | Uint8Array | Readable | { path: string };

export class InputFile {
  readonly filename: string;
  private readonly source: Source;

  private constructor(source: Source, filename: string) {
    this.source = source;
    this.filename = filename;
  }

  /** A file on disk, streamed when the request is sent (never read whole into memory). */
  static fromPath(path: string, filename: string = basename(path)): InputFile {
    return new InputFile({ path }, filename);
  }

  static fromBuffer(data: Buffer | Uint8Array, filename = 'file'): InputFile {
    return new InputFile(data, filename);
  }

  static fromStream(stream: Readable, filename = 'file'): InputFile {
    return new InputFile(stream, filename);
  }

  /** False for a stream: its bytes can be read once, so a request carrying it is never sent again. */
  get replayable(): boolean {
    return !(this.source instanceof Readable);
  }

  /** The bytes to send: a Buffer, or a stream opened now (a path is opened only when sending). */
  open(): Buffer | Readable {
    const source = this.source;
    if (source instanceof Readable) return source;
    if (source instanceof Uint8Array) return Buffer.isBuffer(source) ? source : Buffer.from(source);
    return createReadStream(source.path);
  }
}

/** What a file parameter accepts: a file_id or URL string, a Buffer, a readable stream, or an InputFile. */
export type FileInput = string | InputFile | Buffer | Uint8Array | Readable;

/** True for values that must be uploaded as multipart file parts (everything but strings). */
export function isUpload(value: unknown): value is InputFile | Buffer | Uint8Array | Readable {
  return value instanceof InputFile || value instanceof Uint8Array || value instanceof Readable;
}

/** True when `value` holds an upload anywhere inside (InputMedia arrays, InputSticker, InputProfilePhoto…). */
export function containsUpload(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object' || depth > 8) return false;
  if (isUpload(value)) return true;
  if (Array.isArray(value)) return value.some((item) => containsUpload(item, depth + 1));
  for (const key in value) if (containsUpload((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

/** Wraps any upload value in an InputFile, naming it after the field when it has no name. */
export function toInputFile(value: InputFile | Buffer | Uint8Array | Readable, field: string): InputFile {
  if (value instanceof InputFile) return value;
  if (value instanceof Readable) {
    const path = (value as Readable & { path?: unknown }).path;
    return InputFile.fromStream(value, typeof path === 'string' ? basename(path) : field);
  }
  return InputFile.fromBuffer(value, field);
}
