// `telepi doctor --as-service`: the installed unit's [Service] lines become systemd-run properties, and
// systemd-run (a fake on PATH here) runs the doctor under them.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../src/app/cli.js';
import { runDoctorAsService, serviceSettings, systemdRunArgv } from '../src/app/doctor-as-service.js';
import { FAKE_BIN, PARENT_TOKEN } from './fakes/camera-tools.js';

const SHIPPED_UNIT = fileURLToPath(new URL('../systemd/telepi.service', import.meta.url));

const UNIT = `[Unit]
Description=telepi
After=network-online.target

[Service]
Type=notify
NotifyAccess=all
WatchdogSec=60
ExecStart=/usr/local/bin/telepi run
EnvironmentFile=/etc/telepi/telepi.env
User=telepi
SupplementaryGroups=i2c video gpio
Restart=on-failure
RestartPreventExitStatus=78
StandardOutput=journal
# a comment, and one continued line
CapabilityBoundingSet=
DeviceAllow=char-i2c rw
DeviceAllow=char-video4linux \\
  rw
ProtectKernelTunables=yes

[Install]
WantedBy=multi-user.target
`;
const GPIO_DROP_IN = '[Service]\n# install.sh: GPIO is configured\nProtectKernelTunables=no\n';

/** The -p values of an argv, in order. */
const propertiesOf = (argv: string[]) => argv.flatMap((arg, i) => (argv[i - 1] === '-p' ? [arg] : []));

test('the unit\'s sandbox lines become systemd-run properties in order, drop-ins last, start-up lines left out', () => {
  const argv = systemdRunArgv(serviceSettings([
    { path: '/etc/systemd/system/telepi.service', text: UNIT },
    { path: '/etc/systemd/system/telepi.service.d/gpio.conf', text: GPIO_DROP_IN },
  ]));
  assert.deepEqual(argv.slice(0, 4), ['--pipe', '--wait', '--quiet', '--collect']);
  assert.deepEqual(propertiesOf(argv), [
    'RuntimeMaxSec=180',
    'EnvironmentFile=/etc/telepi/telepi.env', 'User=telepi', 'SupplementaryGroups=i2c video gpio',
    'CapabilityBoundingSet=', 'DeviceAllow=char-i2c rw', 'DeviceAllow=char-video4linux    rw',
    'ProtectKernelTunables=yes', 'ProtectKernelTunables=no',
  ]);
  assert.deepEqual(argv.slice(-2), ['/usr/local/bin/telepi', 'doctor']);
});

test('ExecStart\'s prefix characters are dropped, and a file that is not a unit is refused', () => {
  assert.equal(serviceSettings([{ path: 'u', text: '[Service]\nExecStart=+-/opt/telepi/bin/telepi.js run\n' }]).program, '/opt/telepi/bin/telepi.js');
  assert.throws(() => serviceSettings([{ path: '/tmp/x', text: 'hello=world\n' }]), /\/tmp\/x has no \[Service\] section/);
  assert.throws(() => serviceSettings([{ path: '/tmp/u', text: '[Service]\nUser=telepi\n' }]), /\/tmp\/u has no ExecStart=: reinstall with sudo \.\/install\.sh/);
});

test('the shipped unit translates with its user, groups, env file and device list, and without Type=notify or the watchdog', async () => {
  const text = await readFile(SHIPPED_UNIT, 'utf8');
  const properties = propertiesOf(systemdRunArgv(serviceSettings([{ path: SHIPPED_UNIT, text }])));
  for (const wanted of ['User=telepi', 'SupplementaryGroups=i2c video gpio', 'EnvironmentFile=/etc/telepi/telepi.env',
    'ProtectSystem=strict', 'DevicePolicy=closed', 'DeviceAllow=char-i2c rw']) {
    assert.ok(properties.includes(wanted), `${wanted} in ${properties.join(' ')}`);
  }
  for (const key of ['Type', 'NotifyAccess', 'WatchdogSec', 'Restart', 'ExecStart', 'StandardOutput']) {
    assert.ok(!properties.some((p) => p.startsWith(`${key}=`)), `${key} is left out`);
  }
});

interface Rig { home: string; unitPath: string; env: NodeJS.ProcessEnv; runs(): Promise<{ argv: string[]; envKeys: string[] }[]> }

/** An installed unit and drop-in in a temporary /etc, and the fake systemd-run alone on PATH. */
async function rig(t: TestContext): Promise<Rig> {
  const home = await mkdtemp(join(tmpdir(), 'telepi-as-service-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  await mkdir(join(home, 'bin'));
  await symlink(process.execPath, join(home, 'bin', 'node'));
  await symlink(join(FAKE_BIN, 'systemd-run'), join(home, 'bin', 'systemd-run'));
  const unitPath = join(home, 'telepi.service');
  await writeFile(unitPath, UNIT);
  await mkdir(`${unitPath}.d`);
  await writeFile(join(`${unitPath}.d`, 'gpio.conf'), GPIO_DROP_IN);
  await writeFile(join(`${unitPath}.d`, 'notes.txt'), 'ProtectKernelTunables=maybe\n'); // not a .conf: systemd ignores it
  return {
    home, unitPath,
    env: { PATH: join(home, 'bin'), HOME: home, TELEGRAM_BOT_TOKEN: PARENT_TOKEN },
    runs: async () => (await readFile(join(home, 'systemd-run.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
      .map((line) => JSON.parse(line) as { argv: string[]; envKeys: string[] }),
  };
}

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (text: string) => out.push(text), err: (text: string) => err.push(text) } };
}

test('as root it runs systemd-run with the installed unit\'s settings, passes its output on and its exit code back', { timeout: 15_000 }, async (t) => {
  const r = await rig(t);
  await writeFile(join(r.home, '.fake-systemd-run.json'), JSON.stringify({ exitCode: 3 }));
  const { out, err, io } = captureIo();
  const code = await runDoctorAsService(r.env, io, { unitPath: r.unitPath, uid: 0 });
  assert.equal(code, 3);
  assert.deepEqual(out, [`Running the doctor as the service would run, under the settings of ${r.unitPath} and its drop-ins`,
    '✓ configuration: valid', '✓ climate sensor: BME280 at 0x76 on i2c-1']);
  assert.deepEqual(err, ['a line on stderr']);
  const [run] = await r.runs();
  assert.ok(run);
  assert.deepEqual(propertiesOf(run.argv).slice(-2), ['ProtectKernelTunables=yes', 'ProtectKernelTunables=no']);
  assert.ok(!run.argv.includes('ProtectKernelTunables=maybe'));
  assert.ok(!run.envKeys.includes('TELEGRAM_BOT_TOKEN'), 'systemd-run never sees the token');
  assert.ok(!run.argv.some((arg) => arg.includes(PARENT_TOKEN.split(':')[1]!)), 'nor does its command line');
});

test('not as root, or without an installed unit, it says what to do and starts nothing', { timeout: 15_000 }, async (t) => {
  const r = await rig(t);
  const asUser = captureIo();
  assert.equal(await runDoctorAsService(r.env, asUser.io, { unitPath: r.unitPath, uid: 1000 }), 1);
  assert.deepEqual(asUser.err, ['telepi doctor --as-service starts a system service: run it as root, sudo telepi doctor --as-service']);
  const missing = captureIo();
  assert.equal(await runDoctorAsService(r.env, missing.io, { unitPath: join(r.home, 'none.service'), uid: 0 }), 1);
  assert.match(missing.err[0] ?? '', /none\.service does not exist: install the service first \(sudo \.\/install\.sh\), or run telepi doctor$/);
  assert.deepEqual(await r.runs(), []);
});

test('telepi doctor refuses an option it does not know, with the usage', { timeout: 15_000 }, async () => {
  const { err, io } = captureIo();
  assert.equal(await main(['doctor', '--as-servic'], {}, io), 64);
  assert.match(err[0] ?? '', /^telepi doctor: unknown option "--as-servic"; the only one is --as-service\n/);
});
