// Red team: the process around `telepi run`. SIGTERM while start-up still waits for Telegram (a Pi
// booting offline) ends telepi with 0 and a line saying so, within 10 s, instead of killing it; SIGTERM
// just after a start-up that completes stops it as usual (the state folder's lock given back); a
// stderr whose reader has gone (journald restarted) loses log lines but not the bot; SIGHUP stops it
// cleanly with 129, so that systemd starts it again.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { askAsOwner, freePort, startTelepiChild, type TelepiChild } from './telepi-child.js';
import { eventually, harness, TOKEN } from './support.js';

/** bin/telepi.js over the sources: main(['run']), then out 3 s after it returns whatever is left. */
async function entry(dir: string): Promise<string> {
  const cli = pathToFileURL(join(import.meta.dirname, '..', 'src', 'app', 'cli.ts')).href;
  const script = join(dir, 'entry.mts');
  await writeFile(script, `const { main } = await import(${JSON.stringify(cli)});
const code = await main(['run']);
process.exitCode = code;
setTimeout(() => process.exit(code), 3000).unref();
`);
  return script;
}

async function setup(t: TestContext, env: NodeJS.ProcessEnv = {}): Promise<{ child: TelepiChild; stateDir: string; emu: Awaited<ReturnType<typeof harness>>['emu'] }> {
  const h = await harness(t);
  const dir = await mkdtemp(join(tmpdir(), 'telepi-redteam-'));
  const stateDir = join(dir, 'state');
  const child = startTelepiChild(h.emu, { token: TOKEN, stateDir, streamPort: await freePort(), from: { script: await entry(dir) }, env });
  t.after(async () => {
    child.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return { child, stateDir, emu: h.emu };
}

async function exitOf(child: TelepiChild): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!child.alive()) return { code: child.child.exitCode, signal: child.child.signalCode };
  const [code, signal] = (await once(child.child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}

test('SIGTERM while start-up waits for an unreachable Bot API exits 0 within 10 s, saying why', { timeout: 30_000 }, async (t) => {
  const refused = `http://127.0.0.1:${await freePort()}`;
  const { child } = await setup(t, { TELEGRAM_API_ROOT: refused });
  await eventually(() => /getMe failed/.test(child.log()), 15_000, 'a failed getMe in the log');
  const started = Date.now();
  child.child.kill('SIGTERM');
  const { code, signal } = await exitOf(child);
  const took = Date.now() - started;
  assert.equal(signal, null, `killed by ${signal}, not stopped; log:\n${child.log()}`);
  assert.equal(code, 0);
  assert.ok(took < 10_000, `out after ${took} ms`);
  assert.match(child.log(), /SIGTERM during start-up: stopping/);
  assert.ok(!child.log().includes(TOKEN.split(':')[1] as string), 'no token in the log');
});

test('SIGTERM while getMe hangs exits 0 within 10 s', { timeout: 30_000 }, async (t) => {
  const h = await harness(t);
  h.emu.injectFault({ kind: 'hang' }, { method: 'getMe' });
  const dir = await mkdtemp(join(tmpdir(), 'telepi-redteam-'));
  const child = startTelepiChild(h.emu, { token: TOKEN, stateDir: join(dir, 'state'), streamPort: await freePort(), from: { script: await entry(dir) } });
  t.after(async () => {
    child.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await eventually(() => /state in /.test(child.log()), 15_000, 'start-up under way');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = Date.now();
  child.child.kill('SIGTERM');
  const { code, signal } = await exitOf(child);
  assert.equal(signal, null, `killed by ${signal}; log:\n${child.log()}`);
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 10_000);
});

test('SIGTERM as start-up completes stops telepi as usual and gives the state folder back', { timeout: 30_000 }, async (t) => {
  const { child, stateDir } = await setup(t);
  await eventually(() => /getMe|telepi started/.test(child.log()) || existsSync(join(stateDir, 'state.lock')), 15_000, 'start-up under way');
  child.child.kill('SIGTERM');
  const { code, signal } = await exitOf(child);
  assert.equal(signal, null, `killed by ${signal}; log:\n${child.log()}`);
  assert.equal(code, 0);
  assert.match(child.log(), /telepi stopped/);
  assert.equal(existsSync(join(stateDir, 'state.lock')), false, 'the lock is given back');
});

test('a stderr whose reader has gone does not stop the bot', { timeout: 30_000 }, async (t) => {
  const { child, emu } = await setup(t, { TELEPI_LOG_LEVEL: 'debug' });
  await eventually(() => /telepi started/.test(child.log()), 15_000, 'telepi started');
  await askAsOwner(emu, '/now');
  // The reading end closes, as when journald restarts or a pipe into `head` ends: the next log write meets EPIPE.
  child.child.stderr?.destroy();
  for (let i = 0; i < 3; i++) {
    const { reply } = await askAsOwner(emu, '/status');
    assert.ok(reply.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(child.alive(), true, 'telepi is still running');
  child.child.kill('SIGTERM');
  assert.deepEqual(await exitOf(child), { code: 0, signal: null });
});

test('SIGHUP stops telepi cleanly with 129, which systemd restarts (a reload), instead of killing it', { timeout: 30_000 }, async (t) => {
  const { child, stateDir } = await setup(t);
  await eventually(() => /telepi started/.test(child.log()), 15_000, 'telepi started');
  child.child.kill('SIGHUP');
  const { code, signal } = await exitOf(child);
  assert.equal(signal, null, `killed by ${signal}; log:\n${child.log()}`);
  assert.equal(code, 129);
  assert.match(child.log(), /SIGHUP: stopping; under systemd telepi starts again/);
  assert.match(child.log(), /telepi stopped/);
  assert.equal(existsSync(join(stateDir, 'state.lock')), false, 'the lock is given back');
});
