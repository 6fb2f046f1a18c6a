import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../src/app/cli.js';
import { eventually, harness, textsTo, TOKEN } from './support.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

const base = { TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: '1001', TELEPI_HARDWARE: 'simulated' };

for (const [variable, value] of [
  ['TELEGRAM_BOT_TOKEN', 'not-a-token'], ['TELEGRAM_API_ROOT', 'ftp://x'], ['TELEPI_OWNERS', '12a'], ['TELEPI_USERS', 'x'],
  ['TELEPI_HARDWARE', 'virtual'], ['TELEPI_STATE_DIR', 'relative/dir'], ['BME280_BUS', '-1'], ['BME280_ADDRESS', '0x42'],
  ['STREAM_PORT', '70000'], ['STREAM_EXTERNAL_PORT', '0'], ['STREAM_TTL', '5s'], ['PIR_GPIO', '40'], ['LED_GPIO', 'x'],
] as const) {
  test(`telepi run stops with exit code 78 and one line naming ${variable} when it is ${JSON.stringify(value)}`, async () => {
    const { io, err } = capture();
    const code = await main(['run'], { ...base, [variable]: value }, io);
    assert.equal(code, 78);
    assert.match(err.join('\n'), new RegExp(`^${variable}`));
    assert.ok(!err.join('\n').includes(TOKEN));
  });
}

test('a missing token or owner list stops start-up with 78 and says what to set', async () => {
  const { io, err } = capture();
  assert.equal(await main(['run'], { TELEPI_HARDWARE: 'simulated' }, io), 78);
  assert.match(err.join('\n'), /TELEGRAM_BOT_TOKEN is not set/);
  assert.match(err.join('\n'), /TELEPI_OWNERS is not set/);
});

test('telepi read prints one reading as JSON, with no token needed', async () => {
  const { io, out } = capture();
  assert.equal(await main(['read'], { TELEPI_HARDWARE: 'simulated' }, io), 0);
  const reading = JSON.parse(out[0] ?? '') as { temperature: number; humidity: number; pressure: number };
  assert.ok(reading.temperature > 10 && reading.temperature < 30);
  assert.ok(reading.pressure > 950 && reading.pressure < 1070);
});

test('telepi snap saves a JPEG, and an unknown command gets the usage', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-snap-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { io, out } = capture();
  assert.equal(await main(['snap', join(dir, 'a.jpg')], { TELEPI_HARDWARE: 'simulated' }, io), 0);
  const jpeg = await readFile(join(dir, 'a.jpg'));
  assert.equal(jpeg.readUInt16BE(0), 0xffd8);
  assert.match(out[0] ?? '', /saved \d+ bytes/);
  const usage = capture();
  assert.equal(await main(['frobnicate'], {}, usage.io), 64);
  assert.match(usage.err.join('\n'), /Usage: telepi/);
});

test('a rejected token at start-up exits with 78 and a clear message, never the token', async (t) => {
  const h = await harness(t);
  const dir = await mkdtemp(join(tmpdir(), 'telepi-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { io, err } = capture();
  const wrong = TOKEN.replace('AAH', 'ZZZ');
  const code = await main(['run'], { ...base, TELEGRAM_BOT_TOKEN: wrong, TELEGRAM_API_ROOT: h.emu.apiRoot, TELEPI_STATE_DIR: dir }, io);
  assert.equal(code, 78);
  assert.match(err.join('\n'), /token was rejected/);
  assert.ok(!err.join('\n').includes(wrong));
});

test('SIGTERM stops telepi run cleanly: offset confirmed, state flushed, exit 0', async (t) => {
  const h = await harness(t);
  const dir = await mkdtemp(join(tmpdir(), 'telepi-sigterm-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', "const { main } = await import('./src/app/cli.ts'); process.exitCode = await main(['run']);"], {
    env: { ...process.env, ...base, TELEGRAM_API_ROOT: h.emu.apiRoot, TELEPI_STATE_DIR: dir, TELEPI_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  h.emu.pushText('/1h', { chatId: 1001, userId: 1001 });
  await eventually(() => textsTo(h.emu, 1001).length === 1, 20_000, 'the reply to /1h');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(h.emu.queuedUpdates, 0, 'the offset was confirmed');
  const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { subscriptions: unknown[] };
  assert.equal(state.subscriptions.length, 1);
  assert.match(log, /telepi stopped/);
  assert.ok(!log.includes(TOKEN), 'the token never reaches the log');
});
