// The reading history: fixed-size records (record.ts) appended in batches to one file per UTC month,
// <stateDir>/history/YYYY-MM.tph. Behind HistoryStore so node:sqlite can replace it once Node 22 is the minimum.

import { mkdir, readdir, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, type Logger } from '../../log.js';
import type { Sample } from '../readings.js';
import { appendRecords, lowerBound, readMonth, repairTail, type Pending } from './month-file.js';
import { decodeRecord, encodeRecord, headerBytes, recordBytes, type Row } from './record.js';

export type { Row } from './record.js';
/** Called once per stored row, oldest first; the row object is reused between calls: copy what you keep. */
export type RowVisitor = (row: Readonly<Row>) => void;

export interface HistoryStore {
  /** Where the history lives, for the README's "where" and `telepi doctor`. */
  readonly dir: string;
  /** Takes one sample (a reading or a gap); it reaches the disk with its batch, written in the background. */
  append(sample: Sample): void;
  /** Visits every row with fromMs ≤ atMs ≤ toMs, oldest first, including samples not yet written. */
  scan(fromMs: number, toMs: number, visit: RowVisitor): Promise<void>;
  /** Writes what is buffered; rejects when the disk refuses (the samples stay buffered for the next try). */
  flush(): Promise<void>;
  /** Removes the months wholly older than the keep period; returns the removed file names. */
  prune(nowMs: number): Promise<string[]>;
  close(): Promise<void>;
}

export interface FileHistoryOptions {
  /** How long history is kept; a month's file goes once all of it is older than this. */
  keepMs: number;
  log: Logger;
  /** Write once this many samples wait (default 60). */
  maxBatch?: number;
  /** …or once the oldest waiting sample is this much older than the newest (default 10 minutes). */
  maxBatchAgeMs?: number;
  /** While the disk refuses writes, keep at most this many samples, dropping the oldest (default a day of minutes). */
  maxBuffered?: number;
}

const extension = '.tph';
const monthFile = /^(\d{4})-(\d{2})\.tph$/;
// A Pi without a real-time clock boots in 1970 until NTP answers: such times are not recorded.
const earliestMs = Date.UTC(2020, 0, 1);

/** "2025-01" for a time in January 2025, UTC. */
function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

function monthStartMs(month: string): number {
  return Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5, 7)) - 1, 1);
}


/**
 * A HistoryStore in monthly files. Crash safety: records are only ever appended; a torn tail (a kill
 * mid-write, a full disk) is cut before the next append and at open, and each record carries a check
 * so a torn or zeroed one is skipped, never read as a value. A crash loses at most the unwritten batch.
 */
export class FileHistoryStore implements HistoryStore {
  readonly dir: string;
  readonly #options: Required<Omit<FileHistoryOptions, 'log'>>;
  readonly #log: Logger;
  #pending: Pending[] = [];
  /** Seconds of the newest record written or buffered: times must rise (a clock set back is not recorded). */
  #lastSeconds: number;
  #writes: Promise<void> = Promise.resolve();
  #warnedBackwards = false;
  /** The background write under way, if any. */
  #flushing: Promise<void> | undefined;
  /** Time (ms) of the newest record known to be on disk. */
  durableUntilMs: number;

  private constructor(dir: string, lastSeconds: number, options: FileHistoryOptions) {
    this.dir = dir;
    this.#log = options.log;
    this.#lastSeconds = lastSeconds;
    this.durableUntilMs = lastSeconds * 1000;
    this.#options = {
      keepMs: options.keepMs,
      maxBatch: options.maxBatch ?? 60,
      maxBatchAgeMs: options.maxBatchAgeMs ?? 600_000,
      maxBuffered: options.maxBuffered ?? 1440,
    };
  }

  /** Opens (creating) `dir` and repairs the newest month's tail, left torn by a crash. */
  static async open(dir: string, options: FileHistoryOptions): Promise<FileHistoryStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const months = await listMonths(dir);
    let lastSeconds = 0;
    for (const month of months.reverse()) {
      lastSeconds = await repairTail(path.join(dir, month + extension), options.log);
      if (lastSeconds > 0) break;
    }
    return new FileHistoryStore(dir, lastSeconds, options);
  }

  /**
   * Opens `dir` for reading only, repairing nothing: safe beside the running service (a half-written
   * tail is not cut from under it, only skipped). @throws when the folder does not exist.
   */
  static async openReadOnly(dir: string, log: Logger): Promise<FileHistoryStore> {
    await readdir(dir);
    return new FileHistoryStore(dir, Infinity, { keepMs: Infinity, log });
  }

  append(sample: Sample): void {
    const atSeconds = Math.floor(sample.atMs / 1000);
    if (!(sample.atMs >= earliestMs) || atSeconds <= this.#lastSeconds) {
      if (!this.#warnedBackwards) {
        this.#log.warn(`history: a sample at ${new Date(sample.atMs).toISOString()} is not after the last one `
          + `(${new Date(this.#lastSeconds * 1000).toISOString()}): the clock is not set or went back; not recorded until it passes`);
      }
      this.#warnedBackwards = true;
      return;
    }
    this.#warnedBackwards = false;
    const bytes = Buffer.alloc(recordBytes);
    if (!encodeRecord(bytes, 0, atSeconds, sample.reading)) {
      this.#log.warn(`history: a reading out of the sensor's range was recorded as a gap: ${JSON.stringify(sample.reading)}`);
    }
    this.#lastSeconds = atSeconds;
    this.#pending.push({ atSeconds, bytes });
    const overflow = this.#pending.length - this.#options.maxBuffered;
    if (overflow > 0) {
      this.#pending.splice(0, overflow);
      this.#log.warn(`history: the disk refuses writes; dropped the ${overflow} oldest unwritten sample(s)`);
    }
    const oldest = this.#pending[0] as Pending;
    const due = this.#pending.length >= this.#options.maxBatch || (atSeconds - oldest.atSeconds) * 1000 >= this.#options.maxBatchAgeMs;
    // One write at a time: a card that stalls gets one write waiting on it, not one per sample (that write takes all that is pending).
    if (!due || this.#flushing !== undefined) return;
    this.#flushing = this.flush()
      .catch((error: unknown) => this.#log.warn(`history: ${describeError(error)}; will try again with the next batch`))
      .finally(() => {
        this.#flushing = undefined;
      });
  }

  /** Resolves once the writes under way have finished, starting none. */
  idle(): Promise<void> {
    return this.#flushing ?? this.#writes;
  }

  flush(): Promise<void> {
    const write = this.#writes.then(() => this.#writePending());
    this.#writes = write.catch(() => undefined);
    return write;
  }

  async scan(fromMs: number, toMs: number, visit: RowVisitor): Promise<void> {
    const row: Row = { atMs: 0, temperature: NaN, humidity: NaN, pressure: NaN };
    const fromSeconds = Math.ceil(fromMs / 1000);
    const toSeconds = Math.floor(toMs / 1000);
    if (!(fromSeconds <= toSeconds)) return;
    // Buffered samples are not on disk yet: take a copy first, so a flush during the scan neither hides nor doubles them.
    const pending = [...this.#pending];
    let lastSeen = 0;
    for (let month = monthOf(Math.max(fromMs, earliestMs)); monthStartMs(month) <= toMs; month = nextMonth(month)) {
      const buffer = await readMonth(path.join(this.dir, month + extension), this.#log, false);
      if (buffer === undefined) continue;
      const monthStartSeconds = monthStartMs(month) / 1000;
      const monthEndSeconds = monthStartMs(nextMonth(month)) / 1000;
      const count = Math.floor((buffer.length - headerBytes) / recordBytes);
      let offset = headerBytes + lowerBound(buffer, count, fromSeconds) * recordBytes;
      for (; offset + recordBytes <= buffer.length; offset += recordBytes) {
        if (!decodeRecord(buffer, offset, row)) continue;
        const seconds = row.atMs / 1000;
        if (seconds > toSeconds) break;
        // Out of order or repeated (a retried write): the first copy wins.
        if (seconds < fromSeconds || seconds <= lastSeen || seconds < monthStartSeconds || seconds >= monthEndSeconds) continue;
        lastSeen = seconds;
        visit(row);
      }
    }
    for (const p of pending) {
      if (p.atSeconds < fromSeconds || p.atSeconds > toSeconds || p.atSeconds <= lastSeen) continue;
      decodeRecord(p.bytes, 0, row);
      visit(row);
    }
  }

  async prune(nowMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const month of await listMonths(this.dir)) {
      // The month ends where the next begins; it goes once that end is older than the keep period.
      if (monthStartMs(nextMonth(month)) > nowMs - this.#options.keepMs) continue;
      await unlink(path.join(this.dir, month + extension));
      removed.push(month + extension);
    }
    if (removed.length > 0) this.#log.info(`history: removed ${removed.join(', ')} (older than HISTORY_KEEP)`);
    return removed;
  }

  async close(): Promise<void> {
    await this.flush().catch((error: unknown) => this.#log.warn(`history: the last batch was not written: ${describeError(error)}`));
  }

  async #writePending(): Promise<void> {
    while (this.#pending.length > 0) {
      // Pending samples are in time order: the first month's are a prefix.
      const month = monthOf((this.#pending[0] as Pending).atSeconds * 1000);
      const endSeconds = monthStartMs(nextMonth(month)) / 1000;
      const split = this.#pending.findIndex((p) => p.atSeconds >= endSeconds);
      const batch = split === -1 ? this.#pending : this.#pending.slice(0, split);
      const lastSeconds = (batch.at(-1) as Pending).atSeconds;
      const created = await appendRecords(path.join(this.dir, month + extension), batch, this.#log);
      // A new month is when an old one may have aged out of HISTORY_KEEP.
      if (created) await this.prune(lastSeconds * 1000).catch((error: unknown) => this.#log.warn(`history: could not remove old months: ${describeError(error)}`));
      // Samples may have been added (at the end) or dropped (from the front) while the write ran.
      const kept = this.#pending.findIndex((p) => p.atSeconds > lastSeconds);
      this.#pending = kept === -1 ? [] : this.#pending.slice(kept);
      this.durableUntilMs = lastSeconds * 1000;
    }
  }
}

function nextMonth(month: string): string {
  const start = new Date(monthStartMs(month));
  return monthOf(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

async function listMonths(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => monthFile.test(name)).map((name) => name.slice(0, 7)).sort();
}
