import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ChartMaker } from '../src/app/history/chart.js';
import { chartLayout, panelStyles, timeTicks, valueScale } from '../src/app/history/chart-svg.js';
import { renderPng } from '../src/app/history/render.js';
import { FileHistoryStore } from '../src/app/history/store.js';
import type { ClimateReading } from '../hardware/types.js';
import type { Sample } from '../src/app/readings.js';
import { memoryLogger } from '../src/log.js';
import { countColour, decodePng } from './png-decode.js';

const minute = 60_000;

/** Appends and waits for the write that may have started (none is started for the test). */
async function add(store: FileHistoryStore, sample: Sample): Promise<void> {
  store.append(sample);
  await store.idle();
}
const hour = 60 * minute;
const day = 24 * hour;
const nowMs = Date.UTC(2025, 5, 8, 12, 0);
const utc = () => 0;

/** A store holding `days` of minute readings up to nowMs; hours 70–73 before now the sensor failed. */
async function storeWith(t: TestContext, days: number, read: (k: number) => ClimateReading): Promise<FileHistoryStore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-chart-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await FileHistoryStore.open(dir, { keepMs: 365 * day, log: memoryLogger(), maxBatch: 100_000, maxBuffered: 100_000 });
  for (let atMs = nowMs - days * day + minute, k = 0; atMs <= nowMs; atMs += minute, k++) {
    const failed = atMs > nowMs - 73 * hour && atMs <= nowMs - 70 * hour;
    await add(store, failed ? { atMs, error: new Error('no answer') } : { atMs, reading: read(k) });
  }
  await store.flush();
  return store;
}

const weather = (k: number): ClimateReading => ({
  temperature: 21 + 3 * Math.sin((k / 1440) * 2 * Math.PI),
  humidity: 45 + 10 * Math.cos((k / 1440) * 2 * Math.PI),
  pressure: 1013 + 5 * Math.sin((k / 10080) * 2 * Math.PI),
});

test('a 7-day chart is a PNG with one drawn panel per quantity, a hole where the sensor failed, and the exact min/max in its caption', { timeout: 30_000 }, async (t) => {
  const store = await storeWith(t, 7, weather);
  const chart = await new ChartMaker({ store, everyMs: minute, utcOffsetMs: utc }).make(7 * day, nowMs);
  const png = decodePng(chart.png);
  const layout = chartLayout(chart.data);
  assert.equal(png.width, 800);
  assert.equal(png.height, layout.heightPx);
  assert.deepEqual(layout.panels.map((p) => p.quantity), ['temperature', 'humidity', 'pressure']);
  for (const panel of layout.panels) {
    const drawn = countColour(png, panel, panelStyles[panel.quantity].colour);
    assert.ok(drawn > 300, `the ${panel.quantity} panel is blank (${drawn} pixels of its colour)`);
    // The three failed hours leave a hole in the line: no pixel of the series' colour in their middle.
    const x = (ms: number) => panel.x + ((ms - (nowMs - 7 * day)) / (7 * day)) * panel.width;
    const hole = { x: x(nowMs - 72.5 * hour), y: panel.y + 14, width: x(nowMs - 70.5 * hour) - x(nowMs - 72.5 * hour), height: panel.height - 28 };
    assert.equal(countColour(png, hole, panelStyles[panel.quantity].colour, 20), 0, `the ${panel.quantity} line runs through the sensor's failure`);
  }
  // Every stored reading, rounded as stored, gives the caption's min and max.
  const values = { t: [] as number[], h: [] as number[], p: [] as number[] };
  await store.scan(nowMs - 7 * day, nowMs, (row) => {
    if (Number.isNaN(row.temperature)) return;
    values.t.push(row.temperature);
    values.h.push(row.humidity);
    values.p.push(row.pressure);
  });
  const one = (v: number) => v.toFixed(1).replace(/\B(?=(\d{3})+\.)/, ',');
  const [title, min, avg, max] = chart.caption.split('\n');
  assert.equal(title, 'Last 7d');
  assert.equal(min, `min  ${one(Math.min(...values.t))}°C  ${one(Math.min(...values.h))}%  ${one(Math.min(...values.p))}hPa`);
  assert.equal(max, `max  ${one(Math.max(...values.t))}°C  ${one(Math.max(...values.h))}%  ${one(Math.max(...values.p))}hPa`);
  assert.match(avg ?? '', /^avg {2}2[01]\.\d°C/);
});

test('a BMP280 history has no humidity panel', { timeout: 30_000 }, async (t) => {
  const store = await storeWith(t, 1, (k) => ({ ...weather(k), humidity: null }));
  const chart = await new ChartMaker({ store, everyMs: minute, utcOffsetMs: utc }).make(day, nowMs);
  const png = decodePng(chart.png);
  const layout = chartLayout(chart.data);
  assert.deepEqual(layout.panels.map((p) => p.quantity), ['temperature', 'pressure']);
  assert.equal(countColour(png, { x: 0, y: 0, width: png.width, height: png.height }, panelStyles.humidity.colour, 30), 0);
  assert.doesNotMatch(chart.caption, /%/);
});

test('a period with no reading says so, in the caption and in the picture', { timeout: 30_000 }, async (t) => {
  const store = await storeWith(t, 1, weather);
  const chart = await new ChartMaker({ store, everyMs: minute, utcOffsetMs: utc }).make(day, nowMs - 30 * day);
  assert.equal(chart.caption, 'Last 24h: no readings in this period yet.');
  const png = decodePng(chart.png);
  assert.equal(chartLayout(chart.data).panels.length, 0);
  assert.ok(png.height > 50);
});

test('nothing of resvg is loaded in the process that asks for a chart', { timeout: 30_000 }, async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="#f00"/></svg>';
  const png = decodePng(await renderPng(svg));
  assert.deepEqual([png.width, png.height, [...png.pixels.subarray(0, 3)]], [10, 10, [255, 0, 0]]);
  assert.doesNotMatch(readFileSync('/proc/self/maps', 'utf8'), /resvg/, 'resvg\'s native module is mapped into this process');
});

test('without a font the renderer says which package to install', { timeout: 30_000 }, async (t) => {
  const empty = await mkdtemp(path.join(tmpdir(), 'telepi-nofont-'));
  t.after(() => rm(empty, { recursive: true, force: true }));
  await assert.rejects(renderPng('<svg xmlns="http://www.w3.org/2000/svg"/>', { fontDir: empty }), /apt-get install fonts-dejavu-core/);
});

test('time ticks fall on round local times, value axes on round steps', () => {
  const from = Date.UTC(2025, 5, 7, 12, 0);
  const labels = (span: number, offset = utc) => timeTicks(from, from + span, offset).map((tick) => tick.label);
  assert.deepEqual(labels(day), ['12:00', '15:00', '18:00', '21:00', 'Jun 8', '03:00', '06:00', '09:00', '12:00']);
  // Two hours east of UTC, the same instants read two hours later.
  assert.equal(labels(day, () => 2 * hour)[0], '15:00');
  assert.equal(timeTicks(from, from + day, () => 2 * hour)[0]?.ms, from + hour);
  assert.equal(labels(day, () => -5 * hour)[0], '09:00');
  assert.deepEqual(labels(7 * day), ['Jun 8', 'Jun 9', 'Jun 10', 'Jun 11', 'Jun 12', 'Jun 13', 'Jun 14']);
  assert.deepEqual(labels(365 * day), ['Jul', 'Sep', 'Nov', 'Jan 2026', 'Mar', 'May']);
  assert.deepEqual(valueScale(20.3, 23.9, 2), { lo: 20, hi: 24, step: 1 });
  assert.deepEqual(valueScale(1012.9, 1013.1, 4), { lo: 1011, hi: 1015, step: 1 });
});

test('one lone reading, or a perfectly flat day, still draws a visible mark in each panel', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-chart-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = await FileHistoryStore.open(dir, { keepMs: 365 * day, log: memoryLogger(), maxBatch: 100_000, maxBuffered: 100_000 });
  await add(store, { atMs: nowMs - 5 * hour, reading: { temperature: 19.5, humidity: 50, pressure: 1000 } });
  const lone = await new ChartMaker({ store, everyMs: minute, utcOffsetMs: utc }).make(day, nowMs);
  assert.equal(lone.caption, 'Last 24h\nmin  19.5°C  50.0%  1,000.0hPa\navg  19.5°C  50.0%  1,000.0hPa\nmax  19.5°C  50.0%  1,000.0hPa');
  const png = decodePng(lone.png);
  for (const panel of chartLayout(lone.data).panels) {
    assert.ok(countColour(png, panel, panelStyles[panel.quantity].colour) > 10, `the lone ${panel.quantity} reading is invisible`);
  }
  for (let atMs = nowMs - 4 * hour; atMs <= nowMs; atMs += minute) await add(store, { atMs, reading: { temperature: 19.5, humidity: 50, pressure: 1000 } });
  const flat = decodePng((await new ChartMaker({ store, everyMs: minute, utcOffsetMs: utc }).make(4 * hour, nowMs)).png);
  for (const panel of chartLayout(lone.data).panels) {
    // A flat line is thin and anti-aliased: its pixels are a blend of the colour and the background.
    assert.ok(countColour(flat, panel, panelStyles[panel.quantity].colour, 80) > 500, `the flat ${panel.quantity} line is invisible`);
  }
});

test('a flood of chart requests draws a few and refuses the rest at once', { timeout: 30_000 }, async (t) => {
  const store = await storeWith(t, 1, weather);
  const maker = new ChartMaker({ store, everyMs: minute, utcOffsetMs: utc });
  const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => maker.make(day, nowMs)));
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
  assert.match(String((outcomes[3] as PromiseRejectedResult).reason), /busy drawing 3 other charts; try again in a moment/);
  // Once the queue has drained, charts are drawn again.
  assert.equal(decodePng((await maker.make(day, nowMs)).png).width, 800);
});
