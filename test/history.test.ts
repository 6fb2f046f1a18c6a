import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { maxMonthBytes } from '../src/app/history/month-file.js';
import { FileHistoryStore, type Row } from '../src/app/history/store.js';
import { parseSpan, formatSpan } from '../src/app/history/span.js';
import { main } from '../src/app/cli.js';
import { ConfigError, loadConfig } from '../src/app/config.js';
import type { Sample } from '../src/app/readings.js';
import { memoryLogger } from '../src/log.js';

const minute = 60_000;

/** Appends and waits for the write that may have started (none is started for the test). */
async function add(store: FileHistoryStore, sample: Sample): Promise<void> {
  store.append(sample);
  await store.idle();
}
const day = 86_400_000;
const t0 = Date.UTC(2025, 0, 31, 23, 50); // ten minutes before February

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-history-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function reading(atMs: number): Sample {
  // Minutes since t0 (or since the day began, for samples elsewhere), so values stay in the sensor's range.
  const k = atMs >= t0 && atMs < t0 + day ? (atMs - t0) / minute : (atMs % day) / minute;
  return { atMs, reading: { temperature: 20 + k / 100, humidity: 40 + k / 10, pressure: 1000 + k / 10 } };
}

async function rows(store: FileHistoryStore, fromMs = 0, toMs = Date.UTC(2100, 0)): Promise<Row[]> {
  const out: Row[] = [];
  await store.scan(fromMs, toMs, (row) => out.push({ ...row }));
  return out;
}

test('readings, gaps and BMP280 readings come back as stored, across a month boundary', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = memoryLogger();
  const store = await FileHistoryStore.open(dir, { keepMs: 2 * 365 * day, log, maxBatch: 4 });
  for (let k = 0; k < 20; k++) await add(store, reading(t0 + k * minute));
  await add(store, { atMs: t0 + 20 * minute, error: new Error('no answer') });
  await add(store, { atMs: t0 + 21 * minute, reading: { temperature: -12.3456, humidity: null, pressure: 987.65 } });
  await store.close();
  assert.deepEqual(readdirSync(dir).sort(), ['2025-01.tph', '2025-02.tph']);

  const reopened = await FileHistoryStore.open(dir, { keepMs: 2 * 365 * day, log });
  const got = await rows(reopened);
  assert.equal(got.length, 22);
  for (let k = 0; k < 20; k++) {
    const row = got[k] as Row;
    assert.equal(row.atMs, t0 + k * minute);
    assert.equal(row.temperature, Math.round((20 + k / 100) * 100) / 100);
    assert.equal(row.humidity, Math.round((40 + k / 10) * 100) / 100);
    assert.equal(row.pressure, Math.round((1000 + k / 10) * 10) / 10);
  }
  assert.ok(Number.isNaN(got[20]?.temperature) && Number.isNaN(got[20]?.pressure), 'a failed read was stored as a value');
  assert.deepEqual({ ...got[21] }, { atMs: t0 + 21 * minute, temperature: -12.35, humidity: NaN, pressure: 987.7 });
  // A window inside one month, and one across the boundary.
  assert.deepEqual((await rows(reopened, t0 + 3 * minute, t0 + 5 * minute)).map((r) => (r.atMs - t0) / minute), [3, 4, 5]);
  assert.deepEqual((await rows(reopened, t0 + 9 * minute, t0 + 11 * minute)).map((r) => (r.atMs - t0) / minute), [9, 10, 11]);
  assert.deepEqual(await rows(reopened, t0 + 5 * minute, t0 + 4 * minute), []);
});

test('samples are written in batches, and a scan sees the ones not yet written', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const store = await FileHistoryStore.open(dir, { keepMs: day * 365, log: memoryLogger(), maxBatch: 60, maxBatchAgeMs: 10 * minute });
  const start = Date.UTC(2025, 5, 1);
  for (let k = 0; k < 10; k++) await add(store, reading(start + k * minute));
  assert.deepEqual(readdirSync(dir), [], 'a batch was written before it was due');
  assert.equal((await rows(store)).length, 10);
  await add(store, reading(start + 10 * minute));
  assert.equal(statSync(path.join(dir, '2025-06.tph')).size, 8 + 11 * 12, 'ten minutes of samples were not written as one batch');
  assert.equal(store.durableUntilMs, start + 10 * minute);
  assert.equal((await rows(store)).length, 11, 'a written batch was seen twice or not at all');
  await store.close();
});

test('a torn tail is cut at open and a flipped record is skipped, never read as a value', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = memoryLogger();
  const start = Date.UTC(2025, 5, 1);
  const store = await FileHistoryStore.open(dir, { keepMs: day * 365, log, maxBatch: 1 });
  for (let k = 0; k < 6; k++) await add(store, reading(start + k * minute));
  const file = path.join(dir, '2025-06.tph');
  // Record 2's temperature loses a bit; half a record and a zeroed record sit at the end (a power cut).
  const bytes = readFileSync(file);
  bytes[8 + 2 * 12 + 4] = (bytes[8 + 2 * 12 + 4] as number) ^ 0x10;
  writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(12), bytes.subarray(8, 14)]));

  const reopened = await FileHistoryStore.open(dir, { keepMs: day * 365, log, maxBatch: 1 });
  assert.equal(statSync(file).size, 8 + 6 * 12, 'the torn tail was not cut');
  assert.ok(log.lines.some((l) => l.includes('cut 18 byte(s)')));
  await add(reopened, reading(start + 6 * minute));
  assert.deepEqual((await rows(reopened)).map((r) => (r.atMs - start) / minute), [0, 1, 3, 4, 5, 6]);

  // A torn write while running (the disk filled up) is cut before the next append, which stays aligned.
  appendFileSync(file, Buffer.alloc(5, 0xff));
  await add(reopened, reading(start + 7 * minute));
  assert.equal(statSync(file).size, 8 + 8 * 12);
  assert.deepEqual((await rows(reopened)).map((r) => (r.atMs - start) / minute), [0, 1, 3, 4, 5, 6, 7]);
});

test('a disk that refuses writes loses no buffered sample, and writes each once when it recovers', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = memoryLogger();
  const start = Date.UTC(2025, 5, 1);
  const store = await FileHistoryStore.open(dir, { keepMs: day * 365, log, maxBatch: 2 });
  // A directory where the month's file should be: every open fails, as on a read-only or broken card.
  mkdirSync(path.join(dir, '2025-06.tph'));
  for (let k = 0; k < 5; k++) await add(store, reading(start + k * minute));
  assert.ok(log.lines.some((l) => l.includes('cannot append to') && l.includes('2025-06.tph')), log.lines.join('\n'));
  await assert.rejects(store.flush(), /2025-06\.tph/);
  rmdirSync(path.join(dir, '2025-06.tph'));
  await add(store, reading(start + 5 * minute));
  await store.flush();
  assert.deepEqual((await rows(store)).map((r) => (r.atMs - start) / minute), [0, 1, 2, 3, 4, 5]);
  assert.equal(statSync(path.join(dir, '2025-06.tph')).size, 8 + 6 * 12);
});

test('a clock that is not set, or went back, records nothing until it passes the last sample', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = memoryLogger();
  const start = Date.UTC(2025, 5, 1);
  const store = await FileHistoryStore.open(dir, { keepMs: day * 365, log, maxBatch: 1 });
  await add(store, reading(Date.UTC(1970, 0, 1, 0, 1)));
  await add(store, reading(start));
  await add(store, reading(start - 5 * minute));
  await add(store, reading(start));
  await add(store, reading(start + minute));
  assert.deepEqual((await rows(store)).map((r) => (r.atMs - start) / minute), [0, 1]);
  assert.equal(log.lines.filter((l) => l.includes('the clock is not set or went back')).length, 2);
  assert.deepEqual(readdirSync(dir), ['2025-06.tph']);
});

test('HISTORY_KEEP removes the months wholly older than it, and only those', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = memoryLogger();
  const store = await FileHistoryStore.open(dir, { keepMs: 365 * day, log, maxBatch: 1 });
  for (const month of [0, 1, 2, 11]) await add(store, reading(Date.UTC(2024, month, 15)));
  writeFileSync(path.join(dir, 'notes.txt'), 'mine');
  // 2025-02-10 minus 365 days is 2024-02-11: January 2024 ended before it, February did not.
  const removed = await store.prune(Date.UTC(2025, 1, 10));
  assert.deepEqual(removed, ['2024-01.tph']);
  assert.deepEqual(readdirSync(dir).sort(), ['2024-02.tph', '2024-03.tph', '2024-12.tph', 'notes.txt']);
  assert.ok(log.lines.some((l) => l.includes('removed 2024-01.tph')));
  // The first reading of a new month removes, by itself, what has aged out since.
  await add(store, reading(Date.UTC(2025, 2, 31)));
  await store.flush();
  assert.deepEqual(readdirSync(dir).sort(), ['2024-03.tph', '2024-12.tph', '2025-03.tph', 'notes.txt']);
});

test('a file that is not telepi history is moved aside at open, and a new one is started', { timeout: 10_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = memoryLogger();
  writeFileSync(path.join(dir, '2025-06.tph'), 'PK\u0003\u0004 a zip someone dropped here, long enough');
  const store = await FileHistoryStore.open(dir, { keepMs: day * 365, log, maxBatch: 1 });
  await add(store, reading(Date.UTC(2025, 5, 2)));
  assert.equal((await rows(store)).length, 1);
  assert.ok(readdirSync(dir).some((name) => name.startsWith('2025-06.tph.corrupt-')));
  assert.ok(log.lines.some((l) => l.includes('is not a telepi history file')));

  // A month file far larger than a month can be is never read into memory: it is skipped, with a warning.
  const huge = path.join(dir, '2025-05.tph');
  writeFileSync(huge, '');
  truncateSync(huge, maxMonthBytes + 1);
  assert.equal((await rows(store, Date.UTC(2025, 4, 1), Date.UTC(2025, 5, 30))).length, 1);
  assert.ok(log.lines.some((l) => l.includes('2025-05.tph is larger than a month of history can be') && l.includes('skipped')));
});

test('spans read and write as people type them', () => {
  assert.equal(parseSpan('7d'), 7 * day);
  assert.equal(parseSpan('1y'), 365 * day);
  assert.equal(parseSpan('1d12h'), 36 * 3_600_000);
  assert.equal(parseSpan('90m'), 90 * minute);
  assert.equal(parseSpan(' 2W '), 14 * day);
  for (const bad of ['', 'week', '7 days', '-1d', '1.5d', 'd']) assert.throws(() => parseSpan(bad), /not a span like 24h, 7d/, bad);
  assert.deepEqual([day, 7 * day, 30 * day, 365 * day, 36 * 3_600_000, 3_600_000].map(formatSpan), ['24h', '7d', '30d', '1y', '36h', '1h']);
});

test('HISTORY_EVERY, HISTORY_KEEP and REPORT_STYLE are checked at start: one line naming the variable, exit 78', () => {
  const base = { TELEGRAM_BOT_TOKEN: '123456:AAE-abcdefghijklmnopqrstuvwxyz', TELEPI_OWNERS: '1', TELEPI_STATE_DIR: '/tmp/telepi-config' };
  const config = loadConfig(base);
  assert.deepEqual([config.history, config.reportStyle], [{ everyMs: minute, keepMs: 730 * day }, 'new']);
  assert.deepEqual(loadConfig({ ...base, HISTORY_EVERY: '10s', HISTORY_KEEP: '90d', REPORT_STYLE: 'Edit' }).history, { everyMs: 10_000, keepMs: 90 * day });
  const bad: Array<[string, string, RegExp]> = [
    ['HISTORY_EVERY', '5s', /^HISTORY_EVERY: "5s" is out of range; expected a duration from 10s to 1h$/],
    ['HISTORY_EVERY', 'often', /^HISTORY_EVERY: "often" is not a duration/],
    ['HISTORY_KEEP', 'forever', /^HISTORY_KEEP: "forever" is not a span like 24h, 7d/],
    ['HISTORY_KEEP', '12h', /^HISTORY_KEEP: "12h" is out of range; expected a span from 1d to 20y/],
    ['REPORT_STYLE', 'sometimes', /^REPORT_STYLE: "sometimes" is not one of edit, new$/],
  ];
  for (const [variable, value, message] of bad) {
    const error = (() => {
      try {
        loadConfig({ ...base, [variable]: value });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    assert.ok(error instanceof ConfigError, `${variable}=${value} was accepted`);
    assert.equal(error.variable, variable);
    assert.equal(error.exitCode, 78);
    assert.match(error.message, message);
  }
});

test('telepi history --csv exports the readings, gaps as empty values, without repairing a file the service writes', { timeout: 10_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const dir = path.join(stateDir, 'history');
  const store = await FileHistoryStore.open(dir, { keepMs: 365 * day, log: memoryLogger(), maxBatch: 1 });
  const start = Math.floor(Date.now() / minute) * minute - 3 * day;
  await add(store, { atMs: start - 10 * day, reading: { temperature: 1, humidity: 2, pressure: 900 } });
  await add(store, { atMs: start, reading: { temperature: 21.5, humidity: null, pressure: 1013.2 } });
  await add(store, { atMs: start + minute, error: new Error('no answer') });
  // A half-written record at the end, as while the service appends: skipped, never cut by an export.
  const file = path.join(dir, readdirSync(dir).sort().at(-1) as string);
  appendFileSync(file, Buffer.alloc(5, 1));
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (text: string) => out.push(text), err: (text: string) => err.push(text) };
  const env = { TELEPI_STATE_DIR: stateDir };
  assert.equal(await main(['history', '--csv', '7d'], env, io), 0, err.join('\n'));
  assert.deepEqual(out.join('\n').split('\n'), [
    'time,temperature_c,humidity_pct,pressure_hpa',
    `${new Date(start).toISOString()},21.5,,1013.2`,
    `${new Date(start + minute).toISOString()},,,`,
  ]);
  assert.equal(statSync(file).size % 12, (8 + 5) % 12, 'the export cut the file under the service');
  out.length = 0;
  assert.equal(await main(['history', '--csv'], env, io), 0);
  assert.equal(out.join('\n').split('\n').length, 4);
  assert.equal(await main(['history'], env, io), 64);
  assert.equal(await main(['history', '--csv', 'lots'], env, io), 64);
  assert.match(err.at(-1) ?? '', /"lots" is not a span/);
  assert.equal(await main(['history', '--csv'], { TELEPI_STATE_DIR: path.join(stateDir, 'nowhere') }, io), 1);
  assert.match(err.at(-1) ?? '', /cannot read .*nowhere\/history/);
});
