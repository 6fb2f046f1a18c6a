import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { memoryLogger } from '../src/log.js';
import { SystemdNotifier, type NotifySpawn } from '../src/app/watchdog.js';
import { FakeClock, settle } from './fakes/clock.js';

interface Call {
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  child: EventEmitter;
}

/** A spawn that records calls; each child exits with `exitCode` on the next turn unless `hold` is set. */
function fakeSpawn(options: { exitCode?: number; hold?: boolean; error?: Error } = {}) {
  const calls: Call[] = [];
  const spawn: NotifySpawn = (command, args, spawnOptions) => {
    const child = new EventEmitter();
    calls.push({ command, args, env: spawnOptions.env, child });
    if (!options.hold) {
      setImmediate(() => {
        if (options.error) child.emit('error', options.error);
        else child.emit('exit', options.exitCode ?? 0, null);
      });
    }
    return child;
  };
  return { calls, spawn };
}

const systemdEnv = {
  NOTIFY_SOCKET: '/run/systemd/notify',
  PATH: '/usr/bin:/bin',
  TELEGRAM_BOT_TOKEN: '1234567:AAEabcdefghijklmnopqrstuvwxyz_-0123',
  WATCHDOG_USEC: '20000000',
};

function notifier(env: NodeJS.ProcessEnv, spawn: NotifySpawn, log = memoryLogger()) {
  const result = SystemdNotifier.fromEnv(env, { spawn, log, pid: 4242 });
  assert.ok(result !== null);
  return result;
}

test('outside systemd there is no notifier', () => {
  const { calls, spawn } = fakeSpawn();
  assert.equal(SystemdNotifier.fromEnv({ PATH: '/usr/bin' }, { spawn }), null);
  assert.equal(SystemdNotifier.fromEnv({ NOTIFY_SOCKET: '' }, { spawn }), null);
  assert.equal(calls.length, 0);
});

test('ready, status and stopping run systemd-notify with our pid and a scrubbed environment', async () => {
  const { calls, spawn } = fakeSpawn();
  const systemd = notifier(systemdEnv, spawn);
  assert.equal(await systemd.ready(), true);
  assert.equal(await systemd.status('polling\nREADY=1'), true);
  assert.equal(await systemd.stopping(), true);
  assert.deepEqual(calls.map((c) => [c.command, ...c.args]), [
    ['systemd-notify', '--pid=4242', '--ready'],
    ['systemd-notify', '--pid=4242', 'STATUS=polling READY=1'],
    ['systemd-notify', '--pid=4242', 'STOPPING=1'],
  ]);
  for (const call of calls) assert.deepEqual(call.env, { NOTIFY_SOCKET: '/run/systemd/notify', PATH: '/usr/bin:/bin' });
});

test('a status line never carries the token', async () => {
  const { calls, spawn } = fakeSpawn();
  await notifier(systemdEnv, spawn).status(`failed with ${systemdEnv.TELEGRAM_BOT_TOKEN}`);
  assert.deepEqual(calls[0]?.args, ['--pid=4242', 'STATUS=failed with <token>']);
});

test('the watchdog is fed every WATCHDOG_USEC/2 on the clock until stopped', async () => {
  const { calls, spawn } = fakeSpawn();
  const clock = new FakeClock();
  const systemd = notifier(systemdEnv, spawn);
  assert.equal(systemd.watchdogIntervalMs, 10_000);
  const stop = systemd.startWatchdog(() => true, clock);
  await clock.advanceAsync(35_000);
  assert.equal(calls.length, 4, 'pings at 0, 10, 20 and 30 s');
  assert.ok(calls.every((c) => c.args.join(' ') === '--pid=4242 WATCHDOG=1'));
  stop();
  assert.equal(clock.pendingTimers, 0);
  await clock.advanceAsync(60_000);
  assert.equal(calls.length, 4);
});

test('while unhealthy the watchdog is not fed, and feeding resumes on recovery', async () => {
  const { calls, spawn } = fakeSpawn();
  const clock = new FakeClock();
  const log = memoryLogger();
  let healthy = true;
  const stop = notifier(systemdEnv, spawn, log).startWatchdog(() => healthy, clock);
  await clock.advanceAsync(5_000);
  healthy = false;
  await clock.advanceAsync(40_000);
  assert.equal(calls.length, 1, 'fed while unhealthy');
  assert.equal(log.lines.filter((l) => l.includes('no longer feeding')).length, 1);
  healthy = true;
  await clock.advanceAsync(10_000);
  assert.equal(calls.length, 2);
  assert.match(log.lines.join('\n'), /healthy again/);
  stop();
});

test('a health check that throws counts as unhealthy', async () => {
  const { calls, spawn } = fakeSpawn();
  const clock = new FakeClock();
  const stop = notifier(systemdEnv, spawn).startWatchdog(() => { throw new Error('boom'); }, clock);
  await clock.advanceAsync(30_000);
  assert.equal(calls.length, 0);
  stop();
});

test('no ping is sent while the previous one is still on its way', async () => {
  const { calls, spawn } = fakeSpawn({ hold: true });
  const clock = new FakeClock();
  const stop = notifier(systemdEnv, spawn).startWatchdog(() => true, clock);
  await clock.advanceAsync(30_000);
  assert.equal(calls.length, 1);
  calls[0]?.child.emit('exit', 0, null);
  await clock.advanceAsync(10_000);
  assert.equal(calls.length, 2);
  stop();
});

test('without WATCHDOG_USEC, or with a WATCHDOG_PID not ours, the watchdog stays off', async () => {
  const { calls, spawn } = fakeSpawn();
  const clock = new FakeClock();
  for (const env of [{ ...systemdEnv, WATCHDOG_USEC: undefined }, { ...systemdEnv, WATCHDOG_PID: '1' }]) {
    const systemd = notifier(env, spawn);
    assert.equal(systemd.watchdogIntervalMs, null);
    systemd.startWatchdog(() => true, clock)();
  }
  await clock.advanceAsync(60_000);
  assert.equal(calls.length, 0);
  assert.equal(clock.pendingTimers, 0);
  assert.equal(notifier({ ...systemdEnv, WATCHDOG_PID: '4242' }, spawn).watchdogIntervalMs, 10_000);
});

test('a missing or failing systemd-notify is logged once and never throws', async () => {
  const log = memoryLogger();
  const missing = fakeSpawn({ error: Object.assign(new Error('spawn systemd-notify ENOENT'), { code: 'ENOENT' }) });
  const systemd = notifier(systemdEnv, missing.spawn, log);
  assert.equal(await systemd.ready(), false);
  assert.equal(await systemd.ready(), false);
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0] ?? '', /WARN systemd-notify --ready could not start: spawn systemd-notify ENOENT; check that systemd-notify is installed/);

  const failing = fakeSpawn({ exitCode: 1 });
  const log2 = memoryLogger();
  assert.equal(await notifier(systemdEnv, failing.spawn, log2).stopping(), false);
  assert.match(log2.lines.join('\n'), /STOPPING=1 exited with code 1.*NotifyAccess=all/);
  await settle();
});

test('with the real spawn, systemd-notify is found on the given PATH and gets no token', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-notify-'));
  try {
    const script = path.join(dir, 'systemd-notify');
    await writeFile(script, '#!/bin/sh\n{ echo "$@"; env | sort; } > "$0.log"\n');
    await chmod(script, 0o755);
    const systemd = SystemdNotifier.fromEnv({ ...systemdEnv, PATH: `${dir}:/usr/bin:/bin` }, { pid: 4242 });
    assert.equal(await systemd?.ready(), true);
    const log = await readFile(`${script}.log`, 'utf8');
    assert.match(log, /^--pid=4242 --ready\n/);
    assert.match(log, /NOTIFY_SOCKET=\/run\/systemd\/notify/);
    assert.doesNotMatch(log, /TELEGRAM_BOT_TOKEN|AAEabc/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
