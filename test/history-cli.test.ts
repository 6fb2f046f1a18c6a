// `telepi history --csv` whose reader goes away (`| head -1`) or whose disk is full: the CLI stops reading
// history and ends quietly (a closed pipe) or says why (a full disk), never with a stack trace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { csvHeader, exportCsv } from '../src/app/history/export.js';
import { FileHistoryStore } from '../src/app/history/store.js';
import { silentLogger } from '../src/log.js';

const minute = 60_000;
const samples = 20_000; // two weeks of minutes: 20 chunks of CSV, about 1 MB

/** A state folder whose history holds `samples` minute readings ending a minute ago, written through the HistoryStore. */
async function stateWithHistory(t: TestContext): Promise<string> {
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-history-cli-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const store = await FileHistoryStore.open(join(stateDir, 'history'), { keepMs: Infinity, log: silentLogger, maxBatch: samples, maxBuffered: samples });
  const firstMs = Math.floor(Date.now() / minute) * minute - samples * minute;
  for (let k = 0; k < samples; k++) store.append({ atMs: firstMs + k * minute, reading: { temperature: 20 + (k % 100) / 10, humidity: 50, pressure: 1000 } });
  await store.close();
  return stateDir;
}

/** Runs `telepi history --csv` with stdout as given; resolves with its exit code and stderr. */
function historyCsv(t: TestContext, stateDir: string, stdout: 'pipe' | number) {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', "const { main } = await import('./src/app/cli.ts'); process.exitCode = await main(['history', '--csv']);"], {
    env: { ...process.env, TELEPI_STATE_DIR: stateDir, TELEPI_HARDWARE: 'simulated' },
    stdio: ['ignore', stdout, 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stderr })));
  return { child, exited };
}

test('telepi history --csv | head -1: the reader going away ends the CLI quietly with exit 0', { timeout: 60_000 }, async (t) => {
  const stateDir = await stateWithHistory(t);
  const { child, exited } = historyCsv(t, stateDir, 'pipe');
  let first = '';
  const firstLine = new Promise<void>((resolve) => {
    child.stdout?.on('data', (d: Buffer) => {
      first += d.toString();
      if (!first.includes('\n')) return;
      child.stdout?.destroy(); // like head -1: one line read, then the pipe closed
      resolve();
    });
  });
  await firstLine;
  const { code, stderr } = await exited;
  assert.equal(first.split('\n')[0], csvHeader);
  assert.equal(stderr, '', 'the closed pipe showed on stderr');
  assert.equal(code, 0);
});

test('telepi history --csv > a full disk says it cannot write the CSV, exit 1, no stack trace', { timeout: 60_000 }, async (t) => {
  const stateDir = await stateWithHistory(t);
  const full = openSync('/dev/full', 'w');
  t.after(() => closeSync(full));
  const { code, stderr } = await historyCsv(t, stateDir, full).exited;
  assert.equal(stderr, 'telepi history: cannot write the CSV: ENOSPC: no space left on device, write\n');
  assert.equal(code, 1);
});

test('an export whose reader went away reads no more history', { timeout: 10_000 }, async (t) => {
  const stateDir = await stateWithHistory(t);
  const chunks: string[] = [];
  const rows = await exportCsv(join(stateDir, 'history'), 0, Date.now(), (text) => {
    chunks.push(text);
    return false;
  });
  assert.equal(chunks.length, 1, 'the export wrote on after its reader went away');
  assert.equal(chunks[0]?.split('\n').length, 1000);
  assert.equal(rows, 999, 'the history was read to its end after the reader went away');
  const all: string[] = [];
  assert.equal(await exportCsv(join(stateDir, 'history'), 0, Date.now(), (text) => void all.push(text)), samples);
});
