// History and /chart: the cost of appending a reading, of 24 h / 30 d / 1 y queries (downsampled on
// demand, and from a kept hourly view for comparison), disk bytes per year, and /chart through
// `telepi run` (built dist/, simulated hardware, loopback emulator): first and warm latency, and the
// bot's idle RSS before and 10 s after. Runs alone too: `node --import tsx bench/history.ts`.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { downsample } from '../src/app/history/downsample.js';
import { FileHistoryStore } from '../src/app/history/store.js';
import { silentLogger } from '../src/log.js';
import { OWNER, startTelepiRun } from './telepi-run.js';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

export interface HistoryBenchResult {
  appendUsPerReading: number;
  bytesPerYear: number;
  /** Median ms of a query downsampled on demand from a year of minute readings. */
  queryMs: Record<'24h' | '30d' | '1y', number>;
  /** Median ms of the 1 y query from a kept hourly view (what keeping views would buy). */
  keptHourly1yMs: number;
  /** RSS in MB: medians of samples over 2 s, idle before, and 10 s and 30 s after the last /chart (V8 collects lazily). */
  chart: { firstMs: number; warmMs: number; rssBeforeMb: number; rssAfterMb: number; rssAfter30sMb: number } | Error;
}

const reading = (k: number) => ({ temperature: 21 + 3 * Math.sin(k / 229), humidity: 45 + 10 * Math.cos(k / 229), pressure: 1013 + 5 * Math.sin(k / 10080) });

/** A store holding `count` readings `stepMs` apart, ending at endMs, written in a few large batches. */
async function filledStore(dir: string, endMs: number, count: number, stepMs: number): Promise<FileHistoryStore> {
  const store = await FileHistoryStore.open(dir, { keepMs: 10 * 365 * day, log: silentLogger, maxBatch: 1e9, maxBatchAgeMs: Infinity, maxBuffered: 1e9 });
  for (let k = 0; k < count; k++) store.append({ atMs: endMs - (count - 1 - k) * stepMs, reading: reading(k) });
  await store.flush();
  return store;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
}

async function timeQuery(store: FileHistoryStore, endMs: number, spanMs: number, everyMs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const start = performance.now();
    await downsample(store, endMs - spanMs, endMs, { maxBuckets: 716, everyMs });
    times.push(performance.now() - start);
  }
  return median(times);
}

/** Appends with the service's batching (60 readings a write, each synced): wall time per reading. */
async function appendCost(dir: string, count: number): Promise<number> {
  const store = await FileHistoryStore.open(dir, { keepMs: 10 * 365 * day, log: silentLogger });
  const startMs = Date.UTC(2025, 0, 1);
  const start = performance.now();
  for (let k = 0; k < count; k++) {
    store.append({ atMs: startMs + k * minute, reading: reading(k) });
    await store.idle();
  }
  await store.close();
  return ((performance.now() - start) * 1000) / count;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

/** `telepi run` from dist/ with `seedDays` of history: /chart 7d twice, and its RSS before and after. */
async function chartThroughTelepi(seedDays: number): Promise<NonNullable<Exclude<HistoryBenchResult['chart'], Error>>> {
  const run = await startTelepiRun({
    prepare: async (stateDir) => {
      const seeded = await filledStore(join(stateDir, 'history'), Math.floor(Date.now() / minute) * minute - minute, seedDays * 1440, minute);
      await seeded.close();
    },
  });
  try {
    await sleep(3000);
    const rssBeforeMb = await run.rssMedianMb(2000);
    const chartOnce = async () => {
      const before = run.emu.callsOf('sendPhoto').length;
      const pushedAt = performance.now();
      run.emu.pushText('/chart 7d', { chatId: OWNER, userId: OWNER });
      const calls = await run.emu.waitForCalls('sendPhoto', before + 1, 60_000);
      return (calls[before] as { atMs: number }).atMs - pushedAt;
    };
    const firstMs = await chartOnce();
    const warmMs = await chartOnce();
    await sleep(9000);
    const rssAfterMb = await run.rssMedianMb(2000);
    await sleep(18_000);
    return { firstMs, warmMs, rssBeforeMb, rssAfterMb, rssAfter30sMb: await run.rssMedianMb(2000) };
  } finally {
    await run.stop();
  }
}

export async function runHistoryBench(): Promise<HistoryBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-bench-history-'));
  try {
    const appendUsPerReading = await appendCost(join(dir, 'append'), 20_000);
    const endMs = Date.UTC(2025, 11, 31, 23, 59);
    const year = await filledStore(join(dir, 'year'), endMs, 525_600, minute);
    const bytesPerYear = await dirBytes(join(dir, 'year'));
    const queryMs = {
      '24h': await timeQuery(year, endMs, day, minute),
      '30d': await timeQuery(year, endMs, 30 * day, minute),
      '1y': await timeQuery(year, endMs, 365 * day, minute),
    };
    const hourly = await filledStore(join(dir, 'hourly'), endMs, 8760, hour);
    const keptHourly1yMs = await timeQuery(hourly, endMs, 365 * day, hour);
    const chart = await chartThroughTelepi(30).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    return { appendUsPerReading, bytesPerYear, queryMs, keptHourly1yMs, chart };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function renderHistory(result: HistoryBenchResult | Error): string {
  if (result instanceof Error) return `### History and /chart\n\nNot measured: ${result.message}\n`;
  const f = (n: number, digits = 1) => n.toFixed(digits);
  const signed = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)} MB`;
  const chart = result.chart instanceof Error
    ? [`| /chart 7d through telepi run | not measured: ${result.chart.message} |`]
    : [
      `| /chart 7d latency, first / warm (push → sendPhoto) | ${f(result.chart.firstMs, 0)} ms / ${f(result.chart.warmMs, 0)} ms |`,
      `| idle RSS before → 10 s / 30 s after two /chart (medians over 2 s) | ${f(result.chart.rssBeforeMb)} MB → ${f(result.chart.rssAfterMb)} MB (${signed(result.chart.rssAfterMb - result.chart.rssBeforeMb)}) / ${f(result.chart.rssAfter30sMb)} MB (${signed(result.chart.rssAfter30sMb - result.chart.rssBeforeMb)}) |`,
    ];
  return [
    '### History and /chart',
    '',
    '| measure | here |',
    '|---|---|',
    `| append, per reading (batches of 60, each synced) | ${f(result.appendUsPerReading)} µs |`,
    `| disk per year of minute readings | ${f(result.bytesPerYear / 1048576, 2)} MB |`,
    `| query 24 h / 30 d / 1 y, downsampled on demand | ${f(result.queryMs['24h'], 2)} / ${f(result.queryMs['30d'], 1)} / ${f(result.queryMs['1y'], 1)} ms |`,
    `| query 1 y from a kept hourly view | ${f(result.keptHourly1yMs, 2)} ms |`,
    ...chart,
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(renderHistory(await runHistoryBench()));
}
