// Files the bot uploaded: ids in Telegram's style, a file_path per file for getFile and the
// /file/bot<token>/<file_path> download route, and the dimensions of uploaded images.
import { createHash, randomBytes } from 'node:crypto';
import { extname } from 'node:path';
import type { UploadedPart } from './multipart.js';
import type { StoredFile } from './types.js';

export type MediaKind = 'photo' | 'audio' | 'document' | 'video' | 'voice' | 'sticker';

const FOLDER: Record<MediaKind, string> = {
  photo: 'photos', audio: 'music', document: 'documents', video: 'videos', voice: 'voice', sticker: 'stickers',
};
const ID_PREFIX: Record<MediaKind, string> = {
  photo: 'AgACAgIAAxkDAAI', audio: 'CQACAgIAAxkDAAI', document: 'BQACAgIAAxkDAAI',
  video: 'BAACAgIAAxkDAAI', voice: 'AwACAgIAAxkDAAI', sticker: 'CAACAgIAAxkDAAI',
};
const DEFAULT_EXTENSION: Record<MediaKind, string> = {
  photo: 'jpg', audio: 'mp3', document: 'bin', video: 'mp4', voice: 'oga', sticker: 'webp',
};

/** What a message says about a file: kept uploads, earlier file_ids, URLs and unknown ids alike. */
export interface FileRef {
  file_id: string;
  file_unique_id: string;
  file_size?: number;
  file_name?: string;
  mime_type?: string;
  width?: number;
  height?: number;
}

interface FileMeta {
  ref: FileRef;
  contentType: string;
}

const uniqueIdOf = (seed: string): string =>
  `AQAD${createHash('sha256').update(seed).digest().subarray(0, 9).toString('base64url')}`;

export class FileStore {
  /** The emulator's public `files` map, by file_id. */
  readonly files = new Map<string, StoredFile>();
  private readonly byPath = new Map<string, StoredFile>();
  private readonly meta = new Map<string, FileMeta>();
  private counter = 0;

  private newFileId(kind: MediaKind): string {
    return `${ID_PREFIX[kind]}${(++this.counter).toString(36)}${randomBytes(12).toString('base64url')}`;
  }

  /** Stores an uploaded part under a new file_id and file_path. */
  addUpload(part: UploadedPart, kind: MediaKind): FileRef {
    const fileId = this.newFileId(kind);
    const fromName = extname(part.filename).slice(1).toLowerCase();
    const extension = /^[a-z0-9]{1,8}$/.test(fromName) ? fromName : DEFAULT_EXTENSION[kind];
    const stored: StoredFile = {
      fileId,
      fileUniqueId: `AQAD${Buffer.from(part.sha256.slice(0, 18), 'hex').toString('base64url')}`,
      size: part.size,
      sha256: part.sha256,
      filePath: `${FOLDER[kind]}/file_${this.counter}.${extension}`,
      filename: part.filename,
    };
    if (part.bytes) stored.bytes = part.bytes;
    this.files.set(fileId, stored);
    this.byPath.set(stored.filePath, stored);
    const ref: FileRef = { file_id: fileId, file_unique_id: stored.fileUniqueId, file_size: part.size };
    if (part.filename) ref.file_name = part.filename;
    if (part.contentType && part.contentType !== 'application/octet-stream') ref.mime_type = part.contentType;
    const size = imageSize(part.head);
    if (size) Object.assign(ref, size);
    this.meta.set(fileId, { ref, contentType: part.contentType });
    return ref;
  }

  /** A file named by a string parameter: an uploaded file_id, a URL, or any other file_id. */
  refFor(kind: MediaKind, value: string): FileRef {
    const known = this.meta.get(value);
    if (known) return { ...known.ref };
    if (/^https?:\/\//i.test(value)) return { file_id: this.newFileId(kind), file_unique_id: uniqueIdOf(value) };
    return { file_id: value, file_unique_id: uniqueIdOf(value) };
  }

  get(fileId: string): StoredFile | undefined {
    return this.files.get(fileId);
  }

  byFilePath(path: string): { file: StoredFile; contentType: string } | undefined {
    const file = this.byPath.get(path);
    if (!file) return undefined;
    return { file, contentType: this.meta.get(file.fileId)?.contentType ?? 'application/octet-stream' };
  }
}

/** Width and height of a PNG, GIF or JPEG from its first bytes. */
export function imageSize(head: Buffer): { width: number; height: number } | undefined {
  if (head.length >= 24 && head.readUInt32BE(0) === 0x89504e47 && head.toString('latin1', 12, 16) === 'IHDR') {
    return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
  }
  if (head.length >= 10 && head.toString('latin1', 0, 4) === 'GIF8') {
    return { width: head.readUInt16LE(6), height: head.readUInt16LE(8) };
  }
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0xd8) {
    let i = 2;
    while (i + 9 < head.length) {
      if (head[i] !== 0xff) return undefined;
      const marker = head[i + 1] ?? 0;
      if (marker === 0xff) { i++; continue; }
      const length = head.readUInt16BE(i + 2);
      const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame) return { width: head.readUInt16BE(i + 7), height: head.readUInt16BE(i + 5) };
      i += 2 + length;
    }
  }
  return undefined;
}
