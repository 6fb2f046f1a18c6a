// A streaming multipart/form-data parser (RFC 7578). Part bodies are never collected whole: each
// piece goes to the part's sink as it arrives (text fields up to a cap, files through FileSink),
// and the parser awaits the sink, so a slow sink pauses the request instead of buffering it.
import { badRequest } from './http.js';
import { FileSink, type SinkResult, type SpillDir } from './uploads.js';

export interface UploadedPart extends SinkResult {
  field: string;
  filename: string;
  contentType: string;
}

export interface MultipartResult {
  fields: Record<string, string>;
  files: Map<string, UploadedPart>;
}

export interface MultipartOptions {
  keepFileBytes: number;
  spill: SpillDir;
  maxFieldBytes?: number;
  maxHeaderBytes?: number;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/** Sets a property as an own data property, even one named `__proto__`. */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The boundary parameter of a multipart/form-data Content-Type, or undefined. */
export function boundaryOf(contentType: string): string | undefined {
  const params = parseParams(contentType.slice(contentType.indexOf(';') + 1 || contentType.length));
  const boundary = params.get('boundary');
  return boundary && boundary.length <= 200 ? boundary : undefined;
}

/** Parses `; a=b; c="d"` style header parameters (names lower-cased; RFC 5987 `name*` decoded). */
export function parseParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /(?:^|;)\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = (m[1] ?? '').toLowerCase();
    let value = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '').trim();
    if (name.endsWith('*')) {
      const ext = /^([^']*)'[^']*'(.*)$/.exec(value);
      try {
        value = decodeURIComponent(ext ? (ext[2] ?? '') : value);
      } catch {
        continue;
      }
      out.set(name.slice(0, -1), value);
      out.set(name, value);
    } else if (!out.has(`${name}*`)) {
      out.set(name, value);
    }
  }
  return out;
}

interface OpenPart {
  field: string | undefined;
  filename: string | undefined;
  contentType: string;
  text: Buffer[];
  textSize: number;
  sink: FileSink | undefined;
}

enum State { Preamble, AfterDelimiter, Headers, Body, Done }

export class MultipartParser {
  private buf: Buffer = CRLF; // a virtual CRLF, so the first delimiter looks like all the others
  private state = State.Preamble;
  private readonly delimiter: Buffer;
  private part: OpenPart | undefined;
  private readonly maxFieldBytes: number;
  private readonly maxHeaderBytes: number;
  readonly result: MultipartResult = { fields: {}, files: new Map() };

  constructor(boundary: string, private readonly options: MultipartOptions) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.maxFieldBytes = options.maxFieldBytes ?? 16 * 1024 * 1024;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 16 * 1024;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.state === State.Done) return; // the epilogue is ignored
    const tail = this.buf;
    const d = this.delimiter.length;
    if (this.state === State.Body && tail.length > 0 && tail.length < d && chunk.length >= d) {
      // Inside a part body only a short tail is left over. Rather than copying every chunk behind
      // it, check whether a delimiter starts in the tail; if not, the tail is plain body data.
      const at = Buffer.concat([tail, chunk.subarray(0, d - 1)]).indexOf(this.delimiter);
      if (at >= 0 && at < tail.length) {
        this.buf = Buffer.concat([tail, chunk]);
      } else {
        this.buf = chunk;
        await this.partData(tail);
      }
    } else {
      this.buf = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
    }
    while (await this.step()) { /* keep going while progress is made */ }
  }

  /** Checks that the closing delimiter came; returns the fields and files. */
  async end(): Promise<MultipartResult> {
    if (this.state !== State.Done) {
      await this.abort();
      throw badRequest('malformed multipart/form-data body: the closing boundary is missing');
    }
    return this.result;
  }

  /** Throws away the open part's spilled bytes after an error. */
  async abort(): Promise<void> {
    const sink = this.part?.sink;
    this.part = undefined;
    this.state = State.Done;
    if (sink) await sink.discard();
  }

  private async step(): Promise<boolean> {
    const buf = this.buf;
    switch (this.state) {
      case State.Preamble: {
        const at = buf.indexOf(this.delimiter);
        if (at < 0) {
          this.buf = buf.subarray(Math.max(0, buf.length - this.delimiter.length + 1));
          return false;
        }
        this.buf = buf.subarray(at + this.delimiter.length);
        this.state = State.AfterDelimiter;
        return true;
      }
      case State.AfterDelimiter: {
        let i = 0;
        while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09)) i++; // transport padding
        if (buf.length < i + 2) return false;
        if (buf[i] === 0x2d && buf[i + 1] === 0x2d) {
          this.state = State.Done;
          this.buf = EMPTY;
          return false;
        }
        if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw badRequest('malformed multipart/form-data body');
        this.buf = buf.subarray(i + 2);
        this.state = State.Headers;
        return true;
      }
      case State.Headers: {
        if (buf.length < 2) return false;
        let headerText: string;
        if (buf[0] === 0x0d && buf[1] === 0x0a) {
          headerText = '';
          this.buf = buf.subarray(2);
        } else {
          const at = buf.indexOf(HEADER_END);
          if (at < 0) {
            if (buf.length > this.maxHeaderBytes) throw badRequest('multipart part headers are too long');
            return false;
          }
          headerText = buf.toString('utf8', 0, at);
          this.buf = buf.subarray(at + HEADER_END.length);
        }
        this.part = this.openPart(headerText);
        this.state = State.Body;
        return true;
      }
      case State.Body: {
        const at = buf.indexOf(this.delimiter);
        if (at >= 0) {
          await this.partData(buf.subarray(0, at));
          this.buf = buf.subarray(at + this.delimiter.length);
          await this.closePart();
          this.state = State.AfterDelimiter;
          return true;
        }
        const keep = this.delimiter.length - 1; // a delimiter may straddle two chunks
        if (buf.length > keep) {
          this.buf = buf.subarray(buf.length - keep);
          await this.partData(buf.subarray(0, buf.length - keep));
        }
        return false;
      }
      case State.Done:
        this.buf = EMPTY;
        return false;
    }
  }

  private openPart(headerText: string): OpenPart {
    const headers = new Map<string, string>();
    let last: string | undefined;
    for (const line of headerText.split('\r\n')) {
      if (/^[ \t]/.test(line) && last) {
        headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      headers.set(last, line.slice(colon + 1).trim());
    }
    const disposition = headers.get('content-disposition') ?? '';
    const semi = disposition.indexOf(';');
    const params = parseParams(semi < 0 ? '' : disposition.slice(semi));
    const field = params.get('name');
    const filename = params.get('filename');
    const contentType = headers.get('content-type') ?? (filename !== undefined ? 'application/octet-stream' : 'text/plain');
    const isFile = field !== undefined && filename !== undefined;
    return {
      field,
      filename,
      contentType,
      text: [],
      textSize: 0,
      sink: isFile ? new FileSink(this.options.keepFileBytes, this.options.spill) : undefined,
    };
  }

  private async partData(data: Buffer): Promise<void> {
    const part = this.part;
    if (!part || part.field === undefined || data.length === 0) return;
    if (part.sink) {
      await part.sink.write(data);
      return;
    }
    part.textSize += data.length;
    if (part.textSize > this.maxFieldBytes) throw badRequest(`field "${part.field}" is too long`);
    part.text.push(Buffer.from(data));
  }

  private async closePart(): Promise<void> {
    const part = this.part;
    this.part = undefined;
    if (!part || part.field === undefined) return;
    if (part.sink) {
      const done = await part.sink.finish();
      this.result.files.set(part.field, {
        ...done,
        field: part.field,
        filename: part.filename ?? '',
        contentType: part.contentType,
      });
    } else {
      setOwn(this.result.fields, part.field, Buffer.concat(part.text).toString('utf8'));
    }
  }
}
