// One month's file of history records: read it, repair a torn tail, append a batch. The store
// (store.ts) decides which month and when; this file knows the bytes.
import { open, rename, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, type Logger } from '../../log.js';
import { decodeRecord, headerBuffer, headerBytes, isHeader, recordBytes, recordSeconds, type Row } from './record.js';

// 31 days of a reading every 10 s (HISTORY_EVERY's least), twice over.
export const maxMonthBytes = 2 * (headerBytes + 31 * 8640 * recordBytes);

/** A record waiting to be written: its time, and its 12 encoded bytes. */
export interface Pending {
  atSeconds: number;
  bytes: Buffer;
}

/** The first record index whose time is ≥ seconds (records are in time order; a torn one may only mislead by one). */
export function lowerBound(buffer: Buffer, count: number, seconds: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (recordSeconds(buffer, headerBytes + mid * recordBytes) < seconds) lo = mid + 1;
    else hi = mid;
  }
  // Step back past a record that may have misled the search; the scan skips what is before `from`.
  return Math.max(0, lo - 1);
}

/** A month's bytes, or undefined when it has none; a file with a foreign header is skipped (at open: moved aside), never misread. */
export async function readMonth(file: string, log: Logger, moveAside: boolean): Promise<Buffer | undefined> {
  let buffer: Buffer | undefined;
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'r');
    // Never read a file far larger than a month can be into memory (a Pi Zero 2 has 512 MB).
    if ((await handle.stat()).size <= maxMonthBytes) buffer = await handle.readFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${describeError(error)}`, { cause: error });
  } finally {
    await handle?.close();
  }
  // Shorter than a header: a crash while the file was created; the next append starts it over.
  if (buffer !== undefined && buffer.length < headerBytes) return undefined;
  if (buffer !== undefined && isHeader(buffer)) return buffer;
  const what = buffer === undefined ? `is larger than a month of history can be (${maxMonthBytes} bytes)` : 'is not a telepi history file';
  if (!moveAside) {
    log.warn(`history: ${file} ${what}; skipped`);
    return undefined;
  }
  const aside = `${file}.corrupt-${Date.now()}`;
  await rename(file, aside).catch(() => undefined);
  log.warn(`history: ${file} ${what}; moved it to ${aside}`);
  return undefined;
}

/**
 * Cuts a torn tail (a partial record, or trailing records whose check fails) off a month file.
 * @returns the time in seconds of its last good record, 0 when it has none.
 */
export async function repairTail(file: string, log: Logger): Promise<number> {
  const buffer = await readMonth(file, log, true);
  if (buffer === undefined) return 0;
  const row: Row = { atMs: 0, temperature: NaN, humidity: NaN, pressure: NaN };
  let end = headerBytes + Math.floor((buffer.length - headerBytes) / recordBytes) * recordBytes;
  while (end > headerBytes && !decodeRecord(buffer, end - recordBytes, row)) end -= recordBytes;
  if (end !== buffer.length) {
    const handle = await open(file, 'r+');
    try {
      await handle.truncate(end);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    log.warn(`history: cut ${buffer.length - end} byte(s) of a torn write off the end of ${path.basename(file)}`);
  }
  return end > headerBytes ? row.atMs / 1000 : 0;
}

/** Appends records to a month file: header first when new, a torn tail cut first, then one write and a datasync; true when it created the file. */
export async function appendRecords(file: string, batch: Pending[], log: Logger): Promise<boolean> {
  let created = false;
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'a+', 0o600);
    const { size } = await handle.stat();
    const parts: Buffer[] = [];
    let lastOnDisk = 0;
    if (size < headerBytes) {
      // New, or a header torn by a crash: start the file over.
      if (size > 0) await handle.truncate(0);
      parts.push(headerBuffer());
      created = true;
    } else {
      const aligned = headerBytes + Math.floor((size - headerBytes) / recordBytes) * recordBytes;
      if (aligned !== size) {
        await handle.truncate(aligned);
        log.warn(`history: cut ${size - aligned} byte(s) of an earlier torn write off ${path.basename(file)}`);
      }
      if (aligned > headerBytes) {
        const last = Buffer.alloc(recordBytes);
        await handle.read(last, 0, recordBytes, aligned - recordBytes);
        lastOnDisk = recordSeconds(last, 0);
      }
    }
    // A write that failed half-way may have stored some of these already.
    for (const p of batch) if (p.atSeconds > lastOnDisk) parts.push(p.bytes);
    const data = Buffer.concat(parts);
    const { bytesWritten } = await handle.write(data, 0, data.length);
    if (bytesWritten !== data.length) throw new Error(`wrote ${bytesWritten} of ${data.length} bytes to ${file} (is the disk full?)`);
    await handle.datasync();
  } catch (error) {
    throw new Error(`cannot append to ${file}: ${describeError(error)}`, { cause: error });
  } finally {
    await handle?.close();
  }
  if (created) await syncDir(path.dirname(file));
  return created;
}

// A new file's directory entry is durable only once the directory itself is synced.
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
