// The durable inbox: fetched updates kept on disk until their handlers finish with them, so the loop
// can confirm them to Telegram at once (a busy chat never holds back another) and a restart hands out
// what was left. One file of JSON lines: updates, `{"done":[ids]}` and `{"next":id}` records.

import type { Update } from '@grammyjs/types';
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, type Logger } from './log.js';

export const inboxFileName = 'inbox.jsonl';
/** Finished updates are recorded together, within this long or once this many: one small write each time, not one per update. */
const doneFlushMs = 10;
const doneBatch = 256;
/** Rewrite the file with only the unfinished updates once it is this big and mostly finished ones. */
const compactAfterBytes = 1 << 20;

interface Parsed {
  live: Map<number, string>;
  next: number;
  /** The bot and server the file belongs to (see LoopAccess.identity), when it says. */
  owner: string | undefined;
  skipped: number[];
  torn: boolean;
}

/** Reads the file's records: updates not marked done are live; a torn last line (a crash mid-write) is ignored. */
function parse(text: string): Parsed {
  const lines = text.split('\n');
  const torn = (lines.pop() ?? '') !== '';
  const updates = new Map<number, string>();
  const done = new Set<number>();
  const skipped: number[] = [];
  let next = 0;
  let owner: string | undefined;
  for (const [index, line] of lines.entries()) {
    if (line === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      skipped.push(index + 1);
      continue;
    }
    const fields = (record ?? {}) as { update_id?: unknown; done?: unknown; next?: unknown; for?: unknown };
    if (Number.isSafeInteger(fields.update_id)) updates.set(fields.update_id as number, line);
    else if (Array.isArray(fields.done)) for (const id of fields.done) done.add(id as number);
    else if (Number.isSafeInteger(fields.next)) {
      next = Math.max(next, fields.next as number);
      if (typeof fields.for === 'string') owner = fields.for;
    } else skipped.push(index + 1);
  }
  for (const id of done) updates.delete(id);
  return { live: updates, next, owner, skipped, torn };
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  for (let rest = bytes; rest.length > 0;) {
    const { bytesWritten } = await handle.write(rest);
    if (bytesWritten === 0) throw new Error('the disk accepted no more bytes (full?)');
    rest = rest.subarray(bytesWritten);
  }
}

export class Inbox {
  /** Unfinished updates by id, as the lines that hold them. */
  private readonly live: Map<number, string>;
  private liveBytes = 0;
  private staged: string[] = [];
  private doneIds: number[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private fileBytes = 0;
  private failing = false;
  /** A write failed part-way: the file may end inside a line. */
  private broken = false;
  private closed = false;
  /** Bytes written and fsyncs made since open (for the SD card's write budget). */
  readonly written = { bytes: 0, fsyncs: 0 };
  /** One past the highest update id of the sequence the last run kept (0 when none). */
  readonly nextId: number;
  private latestNext = 0;

  private constructor(
    private readonly dir: string,
    private handle: FileHandle | undefined,
    private readonly log: Logger,
    parsed: Parsed,
    private readonly identity: string,
  ) {
    this.live = parsed.live;
    this.nextId = parsed.next;
    for (const line of this.live.values()) this.liveBytes += Buffer.byteLength(line) + 1;
  }

  /** Opens (creating) the inbox in `dir`; what the file held is ready for replay(). */
  static async open(dir: string, log: Logger, identity = ''): Promise<Inbox> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, inboxFileName);
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    let parsed = parse(text);
    if (parsed.owner !== undefined && parsed.owner !== identity) {
      // Another bot's (a new token) or another server's update ids: they would shadow this one's.
      const aside = `${path}.other-${Date.now()}`;
      await rename(path, aside);
      log.warn(`${path} belongs to another bot or Bot API server: set aside as ${aside} (${parsed.live.size} unfinished update(s) in it), starting empty`);
      parsed = parse('');
    }
    if (parsed.skipped.length > 0) {
      log.warn(`${join(dir, inboxFileName)}: skipped unreadable line(s) ${parsed.skipped.slice(0, 10).join(', ')}: the updates on them, if any, are lost`);
    }
    if (parsed.torn) log.info(`${join(dir, inboxFileName)}: ignored a last line cut short by a crash (its updates were never confirmed, Telegram sends them again)`);
    const inbox = new Inbox(dir, undefined, log, parsed, identity);
    await inbox.rewrite();
    return inbox;
  }

  /** The updates the last run fetched and did not finish, in id order. */
  replay(): Update[] {
    return [...this.live.entries()].sort(([a], [b]) => a - b).map(([, line]) => JSON.parse(line) as Update);
  }

  /** Adds an update to the next commit(). */
  stage(update: Update): void {
    const line = JSON.stringify(update);
    this.live.set(update.update_id, line);
    this.liveBytes += Buffer.byteLength(line) + 1;
    this.staged.push(line);
  }

  /** Writes the staged updates and fsyncs: true once they are durable, false when the disk failed (logged). */
  commit(nextId: number): Promise<boolean> {
    if (this.staged.length === 0) return Promise.resolve(true);
    const text = `${this.staged.join('\n')}\n${JSON.stringify({ next: nextId })}\n`;
    this.staged = [];
    this.latestNext = Math.max(this.latestNext, nextId);
    return this.enqueue(async (handle) => {
      await this.append(handle, text);
      await handle.datasync();
      this.count(text, 1);
    }).then(
      () => {
        if (this.failing) this.log.info('the inbox can be written again');
        this.failing = false;
        return true;
      },
      (error: unknown) => {
        if (!this.failing) {
          this.log.error(`the inbox in ${this.dir} cannot be written (${describeError(error)}): updates are confirmed only once handled, ` +
            'as without an inbox, until it works again');
        }
        this.failing = true;
        return false;
      },
    );
  }

  /** Records that an update's handler finished with it (written within doneFlushMs, without fsync: a lost record only repeats it). */
  finished(updateId: number): void {
    const line = this.live.get(updateId);
    if (line === undefined) return;
    this.live.delete(updateId);
    this.liveBytes -= Buffer.byteLength(line) + 1;
    this.doneIds.push(updateId);
    if (this.closed) return;
    if (this.doneIds.length >= doneBatch) {
      void this.flush();
      return;
    }
    this.flushTimer ??= setTimeout(() => void this.flush(), doneFlushMs);
  }

  private flush(): Promise<unknown> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.doneIds.length === 0) return this.chain;
    const text = `${JSON.stringify({ done: this.doneIds })}\n`;
    this.doneIds = [];
    const written = this.enqueue(async (handle) => {
      await this.append(handle, text);
      this.count(text, 0);
      if (this.fileBytes > compactAfterBytes && this.liveBytes < this.fileBytes / 2) await this.rewrite();
    });
    written.catch((error: unknown) => this.log.warn(`the inbox could not record finished updates (${describeError(error)}): they may be handed out again after a restart`));
    return written;
  }

  /** Flushes what is pending and closes the file, waiting at most `timeoutMs` for a slow disk. */
  async close(timeoutMs = 3_000): Promise<void> {
    if (this.closed) return;
    const flushed = this.flush().catch(() => {});
    this.closed = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const outcome = await Promise.race([flushed.then(() => this.handle?.close()).catch(() => {}), late]);
    clearTimeout(timer);
    if (outcome === 'late') this.log.warn(`the inbox in ${this.dir} did not close within ${timeoutMs} ms (a slow or failing disk)`);
  }

  /**
   * Appends all of `text` (a full disk gives short writes before ENOSPC). After a failed write the file
   * may end in part of a line: the next write starts a new line, so only that record is lost.
   */
  private async append(handle: FileHandle, text: string): Promise<void> {
    const bytes = Buffer.from(this.broken ? `\n${text}` : text);
    this.broken = true;
    await writeAll(handle, bytes);
    this.broken = false;
  }

  private count(text: string, fsyncs: number): void {
    const bytes = Buffer.byteLength(text);
    this.fileBytes += bytes;
    this.written.bytes += bytes;
    this.written.fsyncs += fsyncs;
  }

  /** Runs file operations one at a time, in order; a failed one does not stop the next. */
  private enqueue(operation: (handle: FileHandle) => Promise<void>): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.handle === undefined) throw new Error('the inbox file is not open');
      await operation(this.handle);
    });
    this.chain = run.catch(() => {});
    return run;
  }

  /** Replaces the file with one holding only the unfinished updates: temp file, fsync, rename, fsync the folder. */
  private async rewrite(): Promise<void> {
    const path = join(this.dir, inboxFileName);
    const temp = `${path}.tmp`;
    const text = [JSON.stringify({ next: this.nextIdNow(), for: this.identity }), ...this.live.values()].join('\n') + '\n';
    const file = await open(temp, 'w', 0o600);
    try {
      await writeAll(file, Buffer.from(text));
      await file.datasync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    const folder = await open(this.dir, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
    await this.handle?.close();
    this.handle = await open(path, 'a', 0o600);
    this.fileBytes = Buffer.byteLength(text);
    this.written.bytes += this.fileBytes;
    this.written.fsyncs += 2;
  }

  private nextIdNow(): number {
    return Math.max(this.nextId, this.latestNext);
  }
}
