// kill -9 of a process appending history, at seeded random moments, over and over on the same directory:
// after each kill the history must read back in order, with every value right, and nothing missing
// but the batch that was not yet on disk.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { mulberry32 } from '../hardware/simulated/climate.js';
import { FileHistoryStore, type Row } from '../src/app/history/store.js';
import { memoryLogger } from '../src/log.js';
import { bundleFixture, runUntilKilled } from './fixture-child.js';
import { firstMs, sampleAt, stepMs } from './fixtures/history-sequence.js';

const KILLS = 40;
const MAX_KILL_DELAY_MS = 40;
const SEED = 12;

let root: string;
let script: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'telepi-history-crash-'));
  script = await bundleFixture('history-writer', root);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Starts the writer, kills it `delayMs` after it is ready; returns what it found and the last time it said was durable. */
async function runAndKill(dir: string, maxBatch: number, delayMs: number): Promise<{ readyMs: number; durableMs: number }> {
  const said = { readyMs: -1, durableMs: 0 };
  await runUntilKilled(script, [dir, String(maxBatch)], delayMs, (word, value) => {
    if (word === 'ready') said.readyMs = said.durableMs = Number(value);
    else if (word === 'durable') said.durableMs = Number(value);
  });
  return said;
}

/** The value a row must hold: the sequence's reading at the store's resolution, or NaN for a gap. */
function expectedRow(atMs: number): Row {
  const { reading } = sampleAt(atMs);
  if (reading === undefined) return { atMs, temperature: NaN, humidity: NaN, pressure: NaN };
  return {
    atMs,
    temperature: Math.round(reading.temperature * 100) / 100,
    humidity: reading.humidity === null ? NaN : Math.round(reading.humidity * 100) / 100,
    pressure: Math.round(reading.pressure * 10) / 10,
  };
}

test(`${KILLS} kill -9 during appends leave history readable, in order, right, and missing at most the unwritten batch`, { timeout: 60_000 }, async () => {
  const random = mulberry32(SEED);
  const dir = path.join(root, 'history');
  let lastOnDisk = 0;
  let progressed = 0;
  for (let kill = 1; kill <= KILLS; kill++) {
    const what = `kill ${kill}`;
    const maxBatch = 1 + Math.floor(random() * 8);
    const run = await runAndKill(dir, maxBatch, random() * MAX_KILL_DELAY_MS);
    assert.equal(run.readyMs, lastOnDisk, `${what}: the restarted writer found its last record at ${run.readyMs}, not ${lastOnDisk}`);

    const store = await FileHistoryStore.open(dir, { keepMs: 10 * 365 * 86_400_000, log: memoryLogger() });
    const rows: Row[] = [];
    await store.scan(0, Date.UTC(2100, 0), (row) => rows.push({ ...row }));
    rows.forEach((row, i) => assert.deepEqual(row, expectedRow(firstMs + i * stepMs), `${what}: row ${i} is wrong or out of place`));
    const lastMs = rows.at(-1)?.atMs ?? 0;
    assert.ok(lastMs >= run.durableMs, `${what}: records up to ${run.durableMs} were durable, but history ends at ${lastMs}`);
    // Nothing durable yet means: the records before the first one.
    const beyond = (lastMs - (run.durableMs > 0 ? run.durableMs : firstMs - stepMs)) / stepMs;
    assert.ok(beyond <= maxBatch, `${what}: ${beyond} records beyond the last durable one, more than a batch of ${maxBatch}`);
    if (lastMs > lastOnDisk) progressed++;
    lastOnDisk = lastMs;
  }
  // Most kills must land while the writer writes, or the test proves nothing.
  assert.ok(progressed >= KILLS / 2, `only ${progressed} of ${KILLS} runs wrote anything before the kill`);
  assert.ok(lastOnDisk > Date.UTC(2025, 1, 1), 'the runs never crossed into a second month file');
});
