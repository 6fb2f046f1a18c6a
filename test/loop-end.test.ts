// How `telepi run` ends when its message loop does: odd getUpdates answers never end it, a token
// revoked while running exits 78 with a line saying why (systemd does not restart on it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually, harness, textsTo, TOKEN } from './support.js';

const base = { TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: '1001', TELEPI_HARDWARE: 'simulated', TELEPI_LOG_LEVEL: 'info' };

test('telepi run survives getUpdates answers that are not update lists, and exits 78 with a log line when the token is revoked', { timeout: 60_000 }, async (t) => {
  const h = await harness(t);
  const dir = await mkdtemp(join(tmpdir(), 'telepi-loop-end-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  h.emu.injectFault({ kind: 'answer', body: '{"ok":true}' }, { method: 'getUpdates' });
  h.emu.injectFault({ kind: 'answer', body: '{"ok":true,"result":[null]}' }, { method: 'getUpdates' });
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', "const { main } = await import('./src/app/cli.ts'); process.exitCode = await main(['run']);"], {
    env: { ...process.env, ...base, TELEGRAM_API_ROOT: h.emu.apiRoot, TELEPI_STATE_DIR: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  h.emu.pushText('/now', { chatId: 1001, userId: 1001 });
  await eventually(() => textsTo(h.emu, 1001).length === 1, 30_000, 'the reply to /now after two odd answers');
  assert.match(log, /getUpdates failed: .*the result is missing, not a list of updates/);
  assert.match(log, /getUpdates failed: .*result\[0\] is null, not an update/);
  // The token is revoked: the next poll (woken by one more message) is refused.
  h.emu.injectFault({ kind: 'unauthorized' }, { method: 'getUpdates' });
  h.emu.pushText('/now', { chatId: 1001, userId: 1001 });
  assert.equal(await exited, 78);
  assert.match(log, /ERROR exiting with 78 \(configuration\): .*token was rejected/);
  assert.ok(!log.includes(TOKEN.split(':')[1] as string), 'the token never reaches the log');
});
