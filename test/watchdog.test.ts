import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHardware } from '../hardware/index.js';
import { Appliance } from '../src/app/appliance.js';
import type { Config } from '../src/app/config.js';
import { SystemdNotifier, type NotifySpawn } from '../src/app/watchdog.js';
import { BotApiEmulator } from '../src/emulator/index.js';
import { TelegramError } from '../src/errors.js';
import { memoryLogger } from '../src/log.js';
import { FakeClock, settle } from './fakes/clock.js';
import { fastPolling, TOKEN } from './support.js';

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

test('a new watchdog replaces the running one, so start-up hands over to the poll loop without a gap or double pings', async () => {
  const { calls, spawn } = fakeSpawn();
  const clock = new FakeClock();
  const systemd = notifier(systemdEnv, spawn);
  const stopBoot = systemd.startWatchdog(() => true, clock);
  let loopHealthy = true;
  const stopLoop = systemd.startWatchdog(() => loopHealthy, clock);
  assert.equal(clock.pendingTimers, 1, 'one ping timer, not two');
  await clock.advanceAsync(35_000);
  assert.equal(calls.length, 5, 'pings at 0 (each start), then 10, 20 and 30 s from the second only');
  stopBoot(); // the replaced one's stop leaves the running one alone
  loopHealthy = false;
  await clock.advanceAsync(10_000);
  assert.equal(calls.length, 5, 'the loop\'s health check now decides');
  stopLoop();
  assert.equal(clock.pendingTimers, 0);
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

// ---- start-up without Telegram: the Pi booted before its network -------------------------------

/** An appliance starting on simulated hardware against `emu`, with the notifier and clock given. */
async function startAppliance(t: TestContext, emu: Pick<BotApiEmulator, 'apiRoot'>, systemd: SystemdNotifier, clock: FakeClock, token = TOKEN) {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'telepi-boot-'));
  const hardware = await createHardware({ kind: 'simulated' });
  t.after(async () => {
    await hardware.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  const config: Config = {
    token, apiRoot: emu.apiRoot, owners: [1001], users: [], hardware: 'simulated', stateDir, stateDirSource: 'TELEPI_STATE_DIR',
    bme280: { bus: 1, address: 0x76 }, stream: { port: 0, externalPort: 54321, ttlMs: 3_600_000 },
    gpio: { pirLine: null, ledLine: null }, motionCooldownMs: 60_000, logLevel: 'debug',
  };
  const log = memoryLogger();
  return Appliance.start({ config, hardware, log, notifier: systemd, monotonic: clock, listenHost: '127.0.0.1', polling: fastPolling });
}

/** What systemd was told, as "READY", "STATUS=…", "WATCHDOG" lines. */
const told = (calls: Call[]) => calls.map((c) => (c.args[1] === '--ready' ? 'READY' : c.args[1] === 'WATCHDOG=1' ? 'WATCHDOG' : c.args[1] ?? ''));

/** A loopback port with nothing listening: connections are refused, as with no network at boot. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('booted without a network: READY at once, STATUS says it waits for Telegram, the watchdog is fed, and it starts once getMe works',
  { timeout: 40_000 }, async (t) => {
    const port = await closedPort();
    const down = { apiRoot: `http://127.0.0.1:${port}` };
    const { calls, spawn } = fakeSpawn();
    const clock = new FakeClock(0);
    const systemd = notifier({ ...systemdEnv, WATCHDOG_USEC: '1000000' }, spawn); // a ping every 500 ms
    let started: Appliance | undefined;
    const starting = startAppliance(t, down, systemd, clock).then((app) => (started = app));
    let emu: BotApiEmulator | undefined;
    t.after(async () => {
      await starting.catch(() => undefined);
      await started?.stop();
      await emu?.close();
    });
    const waiting = () => told(calls).filter((line) => line.startsWith('STATUS=waiting for Telegram')).length;
    // Time moves on the fake clock, in small steps, so each refused getMe fails for real in between.
    for (let steps = 0; started === undefined && steps < 4000; steps++) {
      if (emu === undefined && waiting() >= 2) emu = await BotApiEmulator.start({ token: TOKEN, port }); // the network is up
      await clock.advanceAsync(250);
      await sleep(5);
    }
    assert.ok(started, `the appliance started once getMe worked: ${told(calls).join(', ')}`);
    const lines = told(calls);
    assert.equal(lines[0], 'READY', 'READY=1 is the first thing systemd hears, before Telegram answers');
    assert.equal(lines.filter((l) => l === 'READY').length, 1);
    const statuses = lines.filter((l) => l.startsWith('STATUS='));
    assert.match(statuses[0] ?? '', /^STATUS=waiting for Telegram: cannot reach the Bot API yet \(.*\); retrying in 1 s$/);
    assert.match(statuses[1] ?? '', /^STATUS=waiting for Telegram: .*; retrying in 2 s$/);
    assert.equal(statuses.at(-1), 'STATUS=connected to Telegram as @telepi_bot');
    // Every 500 ms of (fake) waiting had its ping: the watchdog never starved while Telegram was away.
    const waitedMs = clock.delays.filter((ms) => ms >= 1000).slice(0, statuses.length - 1).reduce((a, b) => a + b, 0);
    assert.ok(lines.filter((l) => l === 'WATCHDOG').length >= waitedMs / 500, `pings while waiting ${waitedMs} ms: ${lines.join(', ')}`);
  });

test('a rejected token at start is final: no retry, the watchdog stops, and Appliance.start rejects with the 401', { timeout: 15_000 }, async (t) => {
  const emu = await BotApiEmulator.start({ token: TOKEN });
  t.after(() => emu.close());
  const { calls, spawn } = fakeSpawn();
  const clock = new FakeClock(0);
  const systemd = notifier(systemdEnv, spawn);
  await assert.rejects(startAppliance(t, emu, systemd, clock, '7654321:AAwrong-token-000000000000000000'),
    (error: unknown) => error instanceof TelegramError && error.errorCode === 401);
  assert.equal(emu.callsOf('getMe').length, 1);
  assert.equal(clock.pendingTimers, 0, 'no retry and no watchdog timer left behind');
  assert.equal(told(calls)[0], 'READY');
});
