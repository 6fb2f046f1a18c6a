// `telepi demo /chart` shows a day of simulated history, not an empty period: the demo seeds it at start.
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runDemo, seedHistory, type DemoReply } from '../src/app/demo.js';
import { chartLayout, panelStyles } from '../src/app/history/chart-svg.js';
import { FileHistoryStore, type Row } from '../src/app/history/store.js';
import { memoryLogger } from '../src/log.js';
import { countColour, decodePng } from './png-decode.js';

const minute = 60_000;
const day = 1440 * minute;

test('the demo\'s seeded history holds a reading for every minute of the last 24 h, within the simulated room\'s range', { timeout: 20_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-demo-seed-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const nowMs = Date.UTC(2025, 5, 1, 12, 0, 30);
  await seedHistory(dir, nowMs, memoryLogger());
  const history = await FileHistoryStore.open(dir, { keepMs: 2 * day, log: memoryLogger() });
  t.after(() => history.close());
  const rows: Row[] = [];
  await history.scan(nowMs - day, nowMs, (row) => rows.push({ ...row }));
  assert.equal(rows.length, 1440);
  assert.ok(rows.every((row) => row.temperature >= 19 && row.temperature <= 23 && row.pressure >= 1005 && row.pressure <= 1021), 'a seeded reading is outside the simulated room');
  assert.ok((rows.at(-1)?.atMs ?? 0) < nowMs && (rows[0]?.atMs ?? 0) >= nowMs - day);
});

test('telepi demo /chart answers a chart of a real day: caption with min/avg/max, every panel drawn, saved as a PNG', { timeout: 60_000 }, async (t) => {
  const photoDir = await mkdtemp(join(tmpdir(), 'telepi-demo-chart-'));
  t.after(() => rm(photoDir, { recursive: true, force: true }));
  let reply: DemoReply | undefined;
  const err: string[] = [];
  const code = await runDemo(['/chart'], {}, { out: () => undefined, err: (text) => err.push(text) }, {
    photoDir,
    onReply: (_command, r) => void (reply = r),
  });
  assert.equal(code, 0, err.join('\n'));
  const caption = reply?.text ?? '';
  assert.match(caption, /^Last 24h\nmin {2}\d+\.\d°C {2}\d+\.\d% {2}[\d,]+\.\dhPa\navg .*\nmax .*$/, `an empty period: ${caption}`);
  assert.match(reply?.photoPath ?? '', /chart-\d+\.png$/);
  const png = decodePng(await readFile(reply?.photoPath ?? ''));
  assert.equal(png.width, 800);
  const layout = chartLayout({ series: { temperature: { stats: {} }, humidity: { stats: {} }, pressure: { stats: {} } } } as never);
  for (const panel of layout.panels) {
    // A day of minutes draws a line across the whole panel; an empty period draws none.
    assert.ok(countColour(png, panel, panelStyles[panel.quantity].colour) > 600, `the ${panel.quantity} panel is (nearly) blank`);
  }
});
