import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCommand, scrubbedEnv } from '../hardware/child.js';

const NODE = process.execPath;
const dirs: string[] = [];
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** Runs a small Node program as the child. */
function node(source: string, options: Parameters<typeof runCommand>[2], args: string[] = []) {
  return runCommand(NODE, ['-e', source, ...args], options);
}

describe('scrubbedEnv', () => {
  test('keeps PATH, HOME, locale, TZ, XDG_RUNTIME_DIR and LIBCAMERA_*, and nothing else', () => {
    const env = scrubbedEnv({
      PATH: '/usr/bin', HOME: '/home/pi', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'Europe/Paris', XDG_RUNTIME_DIR: '/run/user/1000',
      LIBCAMERA_LOG_LEVELS: '*:ERROR', TELEGRAM_BOT_TOKEN: '123:abc', NODE_OPTIONS: '--inspect', LD_PRELOAD: '/x.so',
      TELEPI_OWNER: '42',
    });
    assert.deepEqual(Object.keys(env).sort(), ['HOME', 'LANG', 'LC_ALL', 'LIBCAMERA_LOG_LEVELS', 'PATH', 'TZ', 'XDG_RUNTIME_DIR']);
  });

  test('reads process.env by default', () => {
    assert.equal(scrubbedEnv().PATH, process.env.PATH);
  });
});

describe('runCommand', () => {
  test('passes arguments verbatim: no shell ever sees them', async () => {
    const tricky = ['$(touch /tmp/pwned)', 'a b', '"quoted"', ';', '*', '`id`', ''];
    const result = await node('process.stdout.write(JSON.stringify(process.argv.slice(1)))', { timeoutMs: 10_000 }, tricky);
    assert.deepEqual(JSON.parse(result.stdout.toString()), tricky);
  });

  test('the child never sees the bot token, even from process.env', async () => {
    const saved = process.env.TELEGRAM_BOT_TOKEN;
    process.env.TELEGRAM_BOT_TOKEN = '123456:do-not-leak';
    try {
      const result = await node('process.stdout.write(JSON.stringify(process.env))', { timeoutMs: 10_000 });
      const seen = JSON.parse(result.stdout.toString()) as Record<string, string>;
      assert.equal(seen.TELEGRAM_BOT_TOKEN, undefined);
      assert.ok(!result.stdout.toString().includes('do-not-leak'));
    } finally {
      if (saved === undefined) delete process.env.TELEGRAM_BOT_TOKEN;
      else process.env.TELEGRAM_BOT_TOKEN = saved;
    }
  });

  test('resolves with any exit code, stdout as a Buffer and the tail of stderr', async () => {
    const result = await node(
      "process.stdout.write(Buffer.from([0xff, 0xd8, 0x00])); process.stderr.write('x'.repeat(10000) + 'THE END'); process.exitCode = 3",
      { timeoutMs: 10_000, stderrTailBytes: 100 });
    assert.equal(result.code, 3);
    assert.equal(result.signal, null);
    assert.deepEqual(result.stdout, Buffer.from([0xff, 0xd8, 0x00]));
    assert.equal(result.stderrTail.length, 100);
    assert.ok(result.stderrTail.endsWith('THE END'));
  });

  test('reports the signal that ended the child', async () => {
    const result = await node("process.kill(process.pid, 'SIGSEGV')", { timeoutMs: 10_000 });
    assert.equal(result.code, null);
    assert.equal(result.signal, 'SIGSEGV');
  });

  test('feeds input to stdin', async () => {
    const result = await node("process.stdin.pipe(process.stdout)", { timeoutMs: 10_000, input: 'hello child' });
    assert.equal(result.stdout.toString(), 'hello child');
  });

  test('a missing command rejects with code ENOENT', async () => {
    await assert.rejects(runCommand('telepi-no-such-tool', [], { timeoutMs: 1000 }),
      { name: 'CommandError', code: 'ENOENT', message: 'telepi-no-such-tool not found on PATH' });
  });

  test('a file that is not executable rejects with code EACCES', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'telepi-child-'));
    dirs.push(dir);
    const file = join(dir, 'not-executable');
    await writeFile(file, '#!/bin/sh\necho hi\n');
    await chmod(file, 0o644);
    await assert.rejects(runCommand(file, [], { timeoutMs: 1000 }), { code: 'EACCES' });
  });

  test('a child that outlives the timeout is killed, SIGKILL if it ignores SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'telepi-child-'));
    dirs.push(dir);
    const pidFile = join(dir, 'pid');
    const started = Date.now();
    await assert.rejects(
      node("process.on('SIGTERM', () => {}); require('fs').writeFileSync(process.argv[1], String(process.pid)); console.error('still here'); setInterval(() => {}, 1000)",
        { timeoutMs: 300, killGraceMs: 200 }, [pidFile]),
      (err: Error & { code: string; stderrTail: string }) => {
        assert.equal(err.code, 'ETIMEDOUT');
        assert.match(err.message, /did not finish within 300 ms and was killed/);
        assert.match(err.stderrTail, /still here/);
        return true;
      });
    assert.ok(Date.now() - started < 5000);
    const pid = Number(await readFile(pidFile, 'utf8'));
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone');
  });

  test('stdout beyond maxStdoutBytes kills the child', async () => {
    await assert.rejects(node("setInterval(() => process.stdout.write('y'.repeat(65536)), 1)", { timeoutMs: 10_000, maxStdoutBytes: 1_000_000 }),
      { code: 'EMSGSIZE' });
  });

  test('an abort signal kills the child', async () => {
    const controller = new AbortController();
    const running = node('setInterval(() => {}, 1000)', { timeoutMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(running, { code: 'ABORT_ERR' });
    await assert.rejects(node('', { timeoutMs: 1000, signal: controller.signal }), { code: 'ABORT_ERR' });
  });
});
