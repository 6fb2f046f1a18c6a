// install.sh and systemd/telepi.service, without a Pi: the installer runs with --root <tmpdir> and
// fakes on PATH (test/fakes/install-bin) for apt-get, dpkg, raspi-config, systemctl, useradd, npm,
// node, curl (the Bot API) and lslocks, which log their arguments to $FAKE_LOG.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const FAKES = path.join(REPO, 'test/fakes/install-bin');
const TOKEN = '1234567:AAtestTOKENabcdefghijklmnopqrstuvwx'; // 7 digits: no real token has so few
const README = path.join(REPO, 'README.md');

/** The variables of the README's configuration table: install.sh must take each of them. */
async function readmeVariables(): Promise<string[]> {
  const text = await readFile(README, 'utf8');
  const table = text.slice(text.indexOf('\n## Configuration'), text.indexOf('\n## ', text.indexOf('\n## Configuration') + 4));
  const names = table.split('\n').filter((line) => line.startsWith('| `')).flatMap((line) =>
    [...(line.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string));
  assert.ok(names.length >= 10, `found only ${names.length} variables in the README's configuration table`);
  return names;
}

/** The configuration keys install.sh declares (its one list). */
async function installerKeys(): Promise<string[]> {
  const script = await readFile(path.join(REPO, 'install.sh'), 'utf8');
  const list = /^readonly CONFIG_KEYS=\(([^)]*)\)/m.exec(script)?.[1];
  assert.ok(list, 'no CONFIG_KEYS in install.sh');
  return list.split(/\s+/).filter(Boolean);
}
const CONFIG_KEYS = await installerKeys();
// A lock file in npm's layout: two production addons with install scripts, esbuild (dev, pinned), a dev-only tool.
const LOCK = JSON.stringify({ name: 'telepi', lockfileVersion: 3, packages: {
  '': { name: 'telepi' },
  'node_modules/esbuild': { version: '0.28.2', dev: true, hasInstallScript: true },
  'node_modules/epoll': { version: '4.0.2', hasInstallScript: true, optional: true },
  'node_modules/i2c-bus': { version: '5.2.3', hasInstallScript: true, optional: true },
  'node_modules/typescript': { version: '5.9.3', dev: true },
  'node_modules/undici': { version: '7.30.2' },
} }, null, 2);
const OS_RELEASE = {
  trixie: 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
  bookworm: 'PRETTY_NAME="Raspbian GNU/Linux 12 (bookworm)"\nID=raspbian\nID_LIKE=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
  ubuntu: 'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\n',
};
// Commands that change the system; a run that changes nothing calls none of them.
const CHANGING = /^(apt-get|raspi-config nonint do_|useradd|usermod|userdel|groupadd|npm (ci|run|prune)|systemctl (enable|disable|start|stop|restart|daemon-reload))/m;

interface Sandbox {
  dir: string;
  root: string;
  src: string;
  log: string;
  state: string;
}

interface Run {
  code: number | null;
  out: string;
  log: string;
}

const sandboxes: string[] = [];
afterEach(async () => {
  for (const dir of sandboxes.splice(0)) await rm(dir, { recursive: true, force: true });
});

// A target root that looks like Raspberry Pi OS, and a small checkout holding this repo's install.sh and unit;
// removed after the test.
async function sandbox(os: keyof typeof OS_RELEASE = 'trixie', model = 'Raspberry Pi Zero 2 W Rev 1.0'): Promise<Sandbox> {
  const sb = await makeSandbox(os, model);
  sandboxes.push(sb.dir);
  return sb;
}

async function makeSandbox(os: keyof typeof OS_RELEASE, model: string): Promise<Sandbox> {
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-install-'));
  const root = path.join(dir, 'root');
  const src = path.join(dir, 'checkout');
  const state = path.join(dir, 'state');
  for (const d of ['etc', 'proc/device-tree', 'boot/firmware']) await mkdir(path.join(root, d), { recursive: true });
  await mkdir(state);
  await writeFile(path.join(root, 'etc/os-release'), OS_RELEASE[os]);
  if (model) await writeFile(path.join(root, 'proc/device-tree/model'), `${model}\0`);
  await writeFile(path.join(root, 'boot/firmware/config.txt'), '# For more options see config.txt(5)\ncamera_auto_detect=0\n');
  await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n');
  await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nvideo:x:44:pi\ni2c:x:994:pi\ngpio:x:995:pi\n');
  for (const f of ['install.sh', 'systemd/telepi.service', 'bin/telepi.js', 'package.json']) {
    await cp(path.join(REPO, f), path.join(src, f));
  }
  await writeFile(path.join(src, 'package-lock.json'), `${LOCK}\n`);
  await mkdir(path.join(src, 'src'));
  await writeFile(path.join(src, 'src/index.ts'), 'export const version = 1;\n');
  // What a developer's checkout also holds, and the installer must not copy.
  for (const d of ['node_modules/esbuild', '.git', 'dist', 'test']) await mkdir(path.join(src, d), { recursive: true });
  await writeFile(path.join(src, 'node_modules/esbuild/index.js'), '\n');
  return { dir, root, src, state, log: path.join(dir, 'log') };
}

function environment(sb: Sandbox, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of CONFIG_KEYS) delete env[key];
  return {
    ...env, PATH: `${FAKES}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    FAKE_LOG: sb.log, FAKE_STATE: sb.state, FAKE_ROOT: sb.root, ...extra,
  };
}

async function readLog(sb: Sandbox): Promise<string> {
  return readFile(sb.log, 'utf8').catch(() => '');
}

// Runs a command to its end (killed after 30 s); onOutput sees the output so far, to answer prompts.
function execute(
  command: string, args: string[], env: NodeJS.ProcessEnv,
  onOutput?: (out: string, write: (text: string) => void) => void,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: [onOutput ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const take = (chunk: Buffer): void => {
      out += chunk.toString();
      onOutput?.(out, (text) => child.stdin?.write(text));
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin?.end();
      resolve({ code, out });
    });
  });
}

function assertNoTokenLeak(run: Run): void {
  assert.ok(!run.out.includes(TOKEN), 'the token was printed');
  assert.ok(!run.log.includes(TOKEN), 'the token reached a command line');
  assert.doesNotMatch(run.log, /TELEGRAM_BOT_TOKEN is in its environment/, 'a child process inherited the token');
}

// Runs install.sh with stdin that is not a terminal; every run checks that the token leaked nowhere.
async function install(sb: Sandbox, args: string[], extra: Record<string, string> = {}): Promise<Run> {
  await writeFile(sb.log, '');
  const { code, out } = await execute('bash', [path.join(sb.src, 'install.sh'), '--root', sb.root, ...args],
    environment(sb, extra));
  const run = { code, out, log: await readLog(sb) };
  assertNoTokenLeak(run);
  return run;
}

const CONFIGURED = { TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: '4242' };

// One fresh install on Trixie, made once; tests that start from an installed system get a copy of it.
let fresh: Promise<{ sb: Sandbox; run: Run }> | undefined;
let freshDir: string | undefined;
function freshInstall(): Promise<{ sb: Sandbox; run: Run }> {
  fresh ??= (async () => {
    const sb = await makeSandbox('trixie', 'Raspberry Pi Zero 2 W Rev 1.0');
    freshDir = sb.dir;
    return { sb, run: await install(sb, [], CONFIGURED) };
  })();
  return fresh;
}
after(async () => {
  if (freshDir) await rm(freshDir, { recursive: true, force: true });
});

async function installed(): Promise<Sandbox> {
  const { sb, run } = await freshInstall();
  assert.equal(run.code, 0, run.out);
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-install-'));
  sandboxes.push(dir);
  // cp -a keeps the modes (0600 env file) and the link as they are.
  const copy = await execute('cp', ['-a', `${sb.dir}/.`, dir], process.env);
  assert.equal(copy.code, 0, copy.out);
  const at = (p: string): string => path.join(dir, path.relative(sb.dir, p));
  return { dir, root: at(sb.root), src: at(sb.src), state: at(sb.state), log: at(sb.log) };
}

// Every file and link under dir, with its mode and content: two equal snapshots mean nothing was written.
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true })) {
    const file = path.join(dir, entry);
    const info = await lstat(file);
    if (info.isSymbolicLink()) files.set(entry, `link ${await readlink(file)}`);
    else if (info.isFile()) files.set(entry, `${info.mode.toString(8)} ${await readFile(file, 'utf8')}`);
    else files.set(entry, `dir ${info.mode.toString(8)}`);
  }
  return files;
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

const exposure = (report: string): number => {
  const match = /Overall exposure level for \S+: (\d+\.\d+)/.exec(report);
  assert.ok(match?.[1], `no exposure level in:\n${report}`);
  return Number(match[1]);
};

async function analyzeSecurity(unit: string): Promise<number> {
  const { code, out } = await execute('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], process.env);
  assert.equal(code, 0, out);
  return exposure(out);
}

test('shellcheck reports nothing on install.sh', async () => {
  const { code, out } = await execute('shellcheck', ['--shell=bash', path.join(REPO, 'install.sh')], process.env);
  assert.equal(out, '');
  assert.equal(code, 0);
});

test('systemd-analyze verify accepts the unit once its ExecStart points at an existing program', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'telepi-unit-'));
  sandboxes.push(dir);
  const unit = await readFile(path.join(REPO, 'systemd/telepi.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/telepi run$/m);
  // A DeviceAllow= class no kernel module registers only earns a warning: none is left (char-vchiq was one).
  assert.deepEqual([...unit.matchAll(/^DeviceAllow=(\S+)/gm)].map((m) => m[1]),
    ['char-i2c', 'char-video4linux', 'char-media', 'char-dma_heap', 'char-gpiochip']);
  const copy = path.join(dir, 'telepi.service');
  await writeFile(copy, unit.replace(/^ExecStart=\/usr\/local\/bin\/telepi/m, `ExecStart=${process.execPath}`));
  const { code, out } = await execute('systemd-analyze', ['verify', copy], process.env);
  assert.equal(out, '');
  assert.equal(code, 0);
});

test('the unit runs telepi as its user with its groups, the env file, the state directory and no restart on exit 78', async () => {
  const unit = await readFile(path.join(REPO, 'systemd/telepi.service'), 'utf8');
  for (const line of ['User=telepi', 'SupplementaryGroups=i2c video gpio', 'EnvironmentFile=/etc/telepi/telepi.env',
    'StateDirectory=telepi', 'Restart=on-failure', 'RestartPreventExitStatus=78',
    'Wants=network-online.target', 'After=network-online.target time-sync.target', 'Type=notify', 'NotifyAccess=all', 'WatchdogSec=60', 'ProtectKernelTunables=yes',
    'DevicePolicy=closed', 'DeviceAllow=char-i2c rw', 'DeviceAllow=char-gpiochip rw', 'CapabilityBoundingSet=']) {
    assert.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), line);
  }
  assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m, 'V8 needs writable-then-executable memory');
});

test('a fresh install on Trixie installs packages, the user, the app, the env file and the unit, and starts it', async () => {
  const { sb, run } = await freshInstall();
  assert.equal(run.code, 0, run.out);

  assert.match(run.out, /Debian trixie ships Node\.js 20 in apt/);
  assert.match(run.log, /^apt-get .*install -y .*\bnodejs npm build-essential python3 miniupnpc fonts-dejavu-core$/m);
  assert.match(run.log, /^raspi-config nonint do_i2c 0$/m);
  assert.match(run.log, /^raspi-config nonint do_camera 0$/m);
  assert.match(run.out, /Reboot needed: I2C and camera just enabled\. Run: sudo reboot/);
  assert.match(run.log, new RegExp(`^useradd --prefix ${sb.root} --system .*--groups i2c,video,gpio telepi$`, 'm'));
  assert.match(await readFile(path.join(sb.root, 'etc/group'), 'utf8'), /^gpio:x:995:pi,telepi$/m);
  const npm = run.log.split('\n').filter((line) => line.startsWith('npm ') && !line.startsWith('npm --version'));
  // Production dependencies only, each addon built on its own, esbuild alone (the lock's version) for the build.
  assert.deepEqual(npm.map((line) => line.replace(/ \(in .*\)$/, '')), ['npm ci --omit=dev --ignore-scripts --no-audit --no-fund',
    'npm rebuild --foreground-scripts epoll', 'npm rebuild --foreground-scripts i2c-bus',
    'npm install --prefix .build-tools --no-save --no-package-lock --no-audit --no-fund esbuild@0.28.2', 'npm run build']);
  assert.ok(npm.every((line) => line.endsWith(`(in ${sb.root}/opt/telepi.new)`)), 'built beside the running version');
  assert.equal(await readFile(path.join(sb.root, 'etc/modules-load.d/telepi.conf'), 'utf8'),
    '# Written by telepi\'s install.sh: the device classes telepi.service\'s DeviceAllow= names, loaded before it starts.\n' +
    'i2c-dev\nvideodev\nmc\n');
  assert.match(run.log, /^modprobe i2c-dev\nmodprobe videodev\nmodprobe mc$/m);
  assert.match(run.log, /^systemctl daemon-reload\nsystemctl is-enabled --quiet telepi\nsystemctl enable telepi\nsystemctl restart telepi$/m);
  assert.match(run.out, /journalctl -u telepi -f/);

  const app = path.join(sb.root, 'opt/telepi');
  assert.ok(await exists(path.join(app, 'dist/src/app/cli.js')), 'built');
  for (const skipped of ['.git', 'test', 'node_modules/esbuild', '.build-tools']) {
    assert.ok(!(await exists(path.join(app, skipped))), `${skipped} copied`);
  }
  assert.equal(await readlink(path.join(sb.root, 'usr/local/bin/telepi')), '/opt/telepi/bin/telepi.js');
  assert.equal(await readFile(path.join(sb.root, 'etc/systemd/system/telepi.service'), 'utf8'),
    await readFile(path.join(REPO, 'systemd/telepi.service'), 'utf8'));
  assert.ok(!(await exists(path.join(sb.root, 'etc/systemd/system/telepi.service.d'))), 'no GPIO drop-in');

  const envFile = path.join(sb.root, 'etc/telepi/telepi.env');
  assert.equal((await stat(envFile)).mode & 0o777, 0o600);
  const env = await readFile(envFile, 'utf8');
  assert.match(env, new RegExp(`^TELEGRAM_BOT_TOKEN=${TOKEN}$`, 'm'));
  assert.match(env, /^TELEPI_OWNERS=4242$/m);
  assert.match(run.log, /^curl --silent --show-error --globoff --max-time 20 -K -\ncurl: Bot API getMe$/m);
  const holders = [...(await snapshot(sb.root))].filter(([, content]) => content.includes(TOKEN)).map(([file]) => file);
  assert.deepEqual(holders, ['etc/telepi/telepi.env'], 'only the env file holds the token');
});

test('a second run with nothing new changes nothing and says so', async () => {
  const sb = await installed();
  const before = await snapshot(sb.root);
  const again = await install(sb, []);
  assert.equal(again.code, 0, again.out);
  assert.doesNotMatch(again.log, CHANGING);
  assert.match(again.out, /Nothing changed: telepi is installed, up to date and running\./);
  assert.deepEqual(await snapshot(sb.root), before);
});

test('after a change in the checkout, a rerun rebuilds in place and restarts, keeping the configuration and the state', async () => {
  const sb = await installed();
  const envFile = path.join(sb.root, 'etc/telepi/telepi.env');
  const env = await readFile(envFile, 'utf8');
  await mkdir(path.join(sb.root, 'var/lib/telepi'), { recursive: true });
  await writeFile(path.join(sb.root, 'var/lib/telepi/subscriptions.json'), '{"42":"1h"}');
  await writeFile(path.join(sb.root, 'opt/telepi/stale.js'), 'left over by an old version');
  await writeFile(path.join(sb.src, 'src/index.ts'), 'export const version = 2;\n');

  const upgrade = await install(sb, []);
  assert.equal(upgrade.code, 0, upgrade.out);
  assert.match(upgrade.out, /upgrading from/);
  assert.match(upgrade.log, /^npm ci /m);
  assert.match(upgrade.log, /^systemctl restart telepi$/m);
  assert.doesNotMatch(upgrade.log, /^(apt-get|useradd|raspi-config nonint do_)/m);
  assert.equal(await readFile(path.join(sb.root, 'opt/telepi/src/index.ts'), 'utf8'), 'export const version = 2;\n');
  assert.ok(!(await exists(path.join(sb.root, 'opt/telepi/stale.js'))), 'files of the old version are gone');
  assert.ok(!(await exists(path.join(sb.root, 'opt/telepi.new'))));
  assert.equal(await readFile(envFile, 'utf8'), env);
  assert.equal((await stat(envFile)).mode & 0o777, 0o600);
  assert.equal(await readFile(path.join(sb.root, 'var/lib/telepi/subscriptions.json'), 'utf8'), '{"42":"1h"}');
});

test('a failed build leaves the installed version in place and says so', async () => {
  const sb = await installed();
  await writeFile(path.join(sb.src, 'src/index.ts'), 'export const version = 3;\n');
  const failed = await install(sb, [], { FAKE_NPM_FAIL: 'build' });
  assert.notEqual(failed.code, 0);
  assert.match(failed.out, /the build failed \(see above\); the installed version is unchanged/);
  assert.equal(await readFile(path.join(sb.root, 'opt/telepi/src/index.ts'), 'utf8'), 'export const version = 1;\n');
  assert.ok(!(await exists(path.join(sb.root, 'opt/telepi.new'))), 'the half-built copy is removed');
  assert.doesNotMatch(failed.log, /^systemctl restart/m);
});

test('--dry-run prints every action and writes nothing', async () => {
  const sb = await sandbox();
  const before = await snapshot(sb.root);
  const run = await install(sb, ['--dry-run'], CONFIGURED);
  assert.equal(run.code, 0, run.out);
  assert.doesNotMatch(run.log, CHANGING);
  assert.deepEqual(await snapshot(sb.root), before);
  for (const action of [/would run: apt-get .*install .*nodejs/, /would run: raspi-config nonint do_i2c 0/,
    /would run: useradd /, /would run in \/opt\/telepi\.new: npm ci/, /would write \/etc\/telepi\/telepi\.env \(mode 0600\)/,
    /would write \/etc\/systemd\/system\/telepi\.service/, /would run: systemctl restart telepi/]) {
    assert.match(run.out, action);
  }
  assert.match(run.out, /Dry run: nothing was changed\./);
  assert.match(run.out, /Would need a reboot: I2C and camera would be enabled\./);
  assert.doesNotMatch(run.out, /Reboot needed/);
});

test('--uninstall removes the service, the app, the command and the user, and keeps the state and the env file', async () => {
  const sb = await installed();
  assert.equal((await install(sb, [], { LED_GPIO: '27' })).code, 0);
  await mkdir(path.join(sb.root, 'var/lib/telepi'), { recursive: true });
  await writeFile(path.join(sb.root, 'var/lib/telepi/subscriptions.json'), '{}');

  const run = await install(sb, ['--uninstall']);
  assert.equal(run.code, 0, run.out);
  assert.match(run.log, /^systemctl stop telepi$/m);
  assert.match(run.log, /^systemctl disable telepi$/m);
  assert.match(run.log, /^systemctl daemon-reload$/m);
  assert.match(run.log, new RegExp(`^userdel --prefix ${sb.root} telepi$`, 'm'));
  for (const gone of ['etc/systemd/system/telepi.service', 'etc/systemd/system/telepi.service.d', 'opt/telepi',
    'usr/local/bin/telepi', 'etc/modules-load.d/telepi.conf']) {
    assert.ok(!(await exists(path.join(sb.root, gone))), `${gone} is still there`);
  }
  assert.doesNotMatch(await readFile(path.join(sb.root, 'etc/passwd'), 'utf8'), /^telepi:/m);
  assert.ok(await exists(path.join(sb.root, 'var/lib/telepi/subscriptions.json')), 'state kept');
  assert.ok(await exists(path.join(sb.root, 'etc/telepi/telepi.env')), 'configuration kept');
  assert.match(run.out, /--purge removes them/);

  const purge = await install(sb, ['--uninstall', '--purge']);
  assert.equal(purge.code, 0, purge.out);
  assert.ok(!(await exists(path.join(sb.root, 'var/lib/telepi'))), 'state purged');
  assert.ok(!(await exists(path.join(sb.root, 'etc/telepi'))), 'configuration purged');
});

test('on Bookworm with Debian\'s Node 18 it adds NodeSource\'s Node 22 repository and says why', async () => {
  const sb = await sandbox('bookworm');
  const run = await install(sb, [], { ...CONFIGURED, FAKE_NODE_VERSION: 'v18.19.0', FAKE_ARCH: 'armhf' });
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /apt has only Node\.js 18 \(found v18\.19\.0\), too old for undici 7 \(needs 20\.18\.1\): using NodeSource's apt repository for Node\.js 22/);
  const sources = await readFile(path.join(sb.root, 'etc/apt/sources.list.d/nodesource.sources'), 'utf8');
  assert.match(sources, /^URIs: https:\/\/deb\.nodesource\.com\/node_22\.x$/m);
  assert.match(sources, /^Signed-By: \/etc\/apt\/keyrings\/nodesource\.asc$/m);
  assert.ok(await exists(path.join(sb.root, 'etc/apt/keyrings/nodesource.asc')));
  assert.match(await readFile(path.join(sb.root, 'etc/apt/preferences.d/nodesource'), 'utf8'), /Pin: origin deb\.nodesource\.com/);
  assert.match(run.log, /^curl -fsSL --max-time 60 -o \S+\/etc\/apt\/keyrings\/nodesource\.asc https:\/\/deb\.nodesource\.com\/gpgkey\/nodesource-repo\.gpg\.key$/m);
  // NodeSource's nodejs carries npm; Debian's npm would pull Debian's Node 18 back.
  assert.match(run.log, /^apt-get .*install -y --no-install-recommends nodejs build-essential python3 miniupnpc fonts-dejavu-core$/m);
  assert.match(run.out, /Node\.js v22\.15\.0/);
});

test('on Bookworm a Node.js 20.18.1 already installed is used as it is', async () => {
  const sb = await sandbox('bookworm');
  const run = await install(sb, ['--dry-run'], { ...CONFIGURED, FAKE_NODE_VERSION: 'v20.18.1' });
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /Node\.js v20\.18\.1 is already installed at .*: using it/);
  assert.doesNotMatch(run.out, /nodesource/i);
  assert.match(run.out, /would run: apt-get .*install -y --no-install-recommends build-essential python3 miniupnpc fonts-dejavu-core$/m);
});

test('a Node.js older than 20.18.1 after installation stops the install before the app', async () => {
  const sb = await sandbox('trixie');
  const run = await install(sb, [], { ...CONFIGURED, FAKE_APT_NODE_VERSION: 'v20.11.0' });
  assert.notEqual(run.code, 0);
  assert.match(run.out, /Node\.js v20\.11\.0 is too old: telepi needs 20\.18\.1 or newer/);
  assert.doesNotMatch(run.log, /^npm ci/m);
});

test('it refuses a system that is not Raspberry Pi OS on a Pi unless --force', async () => {
  const sb = await sandbox('ubuntu', '');
  const before = await snapshot(sb.root);
  const refused = await install(sb, [], { ...CONFIGURED, FAKE_ARCH: 'amd64' });
  assert.equal(refused.code, 1);
  assert.match(refused.out, /telepi installs on Raspberry Pi OS Bookworm or Trixie/);
  assert.match(refused.out, /the OS is Ubuntu 24\.04 LTS/);
  assert.match(refused.out, /the architecture is amd64/);
  assert.match(refused.out, /this is not a Raspberry Pi/);
  assert.match(refused.out, /--force/);
  assert.deepEqual(await snapshot(sb.root), before);
  assert.doesNotMatch(refused.log, CHANGING);

  const forced = await install(sb, ['--force', '--dry-run'], { ...CONFIGURED, FAKE_ARCH: 'amd64' });
  assert.equal(forced.code, 0, forced.out);
  assert.match(forced.out, /continuing because of --force/);
  assert.match(forced.out, /would run: systemctl restart telepi/);
});

test('it fails early, changing nothing, while another apt holds the lock', async () => {
  const sb = await sandbox();
  const before = await snapshot(sb.root);
  const run = await install(sb, [], { ...CONFIGURED, FAKE_LOCKS: 'apt-get 4321 /var/lib/dpkg/lock-frontend' });
  assert.equal(run.code, 1);
  assert.match(run.out, /apt is busy: apt-get \(pid 4321\) holds its lock/);
  assert.doesNotMatch(run.log, CHANGING);
  assert.deepEqual(await snapshot(sb.root), before);
});

test('it fails early, changing nothing, without a network', async () => {
  const sb = await sandbox();
  const run = await install(sb, [], { ...CONFIGURED, FAKE_OFFLINE: '1' });
  assert.equal(run.code, 1);
  assert.match(run.out, /no network: cannot reach https:\/\/api\.telegram\.org \(curl: \(6\) Could not resolve host/);
  assert.doesNotMatch(run.log, CHANGING);
});

test('a token that Telegram rejects stops the install before any change; --no-verify skips the check', async () => {
  const sb = await sandbox();
  const rejected = await install(sb, [], { ...CONFIGURED,
    FAKE_GETME: '{"ok":false,"error_code":401,"description":"Unauthorized"}' });
  assert.equal(rejected.code, 1);
  assert.match(rejected.out, /Telegram rejected the token \(Unauthorized\): copy it again from @BotFather/);
  assert.doesNotMatch(rejected.log, CHANGING);

  const unchecked = await install(sb, ['--no-verify', '--dry-run'], { ...CONFIGURED,
    FAKE_GETME: '{"ok":false,"error_code":401,"description":"Unauthorized"}' });
  assert.equal(unchecked.code, 0, unchecked.out);
  assert.match(unchecked.out, /not checking the token \(--no-verify\)/);
  assert.doesNotMatch(unchecked.log, /Bot API getMe/);
});

test('without a terminal and without a token it fails, listing the variables to pass', async () => {
  const sb = await sandbox();
  const run = await install(sb, []);
  assert.equal(run.code, 1);
  assert.match(run.out, /TELEGRAM_BOT_TOKEN is not set, and stdin is not a terminal/);
  for (const key of ['TELEGRAM_BOT_TOKEN', 'TELEPI_OWNERS', 'PIR_GPIO']) assert.match(run.out, new RegExp(key));
  assert.doesNotMatch(run.log, CHANGING);
});

test('at a terminal it reads the token without echo and pairs the owner who messages the bot', async () => {
  const sb = await sandbox();
  await writeFile(sb.log, '');
  const updates = JSON.stringify({ ok: true, result: [{ update_id: 701, message: { message_id: 2, date: 2, text: 'hello',
    from: { id: 4242, is_bot: false, first_name: 'Alice', username: 'alice' }, chat: { id: 4242, type: 'private' } } }] });
  const answers: [string, string][] = [['hidden as you type', `${TOKEN}\n`], ['pair instead', '\n'],
    ['Make this user the owner? [Y/n]', 'y\n']];
  const command = `bash '${path.join(sb.src, 'install.sh')}' --root '${sb.root}'`;
  // script(1) gives the installer a terminal; answers go in only once their prompt is on screen.
  const { code, out } = await execute('script', ['--quiet', '--flush', '--return', '--command', command, '/dev/null'],
    environment(sb, { FAKE_UPDATES: updates }), (screen, write) => {
      const next = answers[0];
      if (next && screen.includes(next[0])) {
        answers.shift();
        write(next[1]);
      }
    });
  const log = await readLog(sb);
  assertNoTokenLeak({ code, out, log });
  assert.equal(code, 0, out);
  assert.equal(answers.length, 0, 'every prompt was shown');
  assert.match(out, /Message from Alice \(@alice\), user id 4242: "hello"/);
  // Older updates are dropped first, the pairing message is confirmed so the service does not answer it.
  assert.match(log, /Bot API getUpdates\?offset=-1&timeout=0[\s\S]*Bot API getUpdates\?offset=701&timeout=25[\s\S]*Bot API getUpdates\?offset=702&timeout=0[\s\S]*Bot API sendMessage/);
  const env = await readFile(path.join(sb.root, 'etc/telepi/telepi.env'), 'utf8');
  assert.match(env, /^TELEPI_OWNERS=4242$/m);
  assert.match(env, new RegExp(`^TELEGRAM_BOT_TOKEN=${TOKEN}$`, 'm'));
});

test('GPIO in the configuration adds a drop-in relaxing ProtectKernelTunables; unsetting it removes the drop-in', async () => {
  const sb = await installed();
  const dropin = path.join(sb.root, 'etc/systemd/system/telepi.service.d/gpio.conf');
  const unit = path.join(sb.root, 'etc/systemd/system/telepi.service');
  const plain = await analyzeSecurity(unit);
  assert.ok(plain <= 2.0, `exposure ${plain} without GPIO`);

  const withGpio = await install(sb, [], { PIR_GPIO: '17' });
  assert.equal(withGpio.code, 0, withGpio.out);
  assert.match(await readFile(dropin, 'utf8'), /^\[Service\]\nProtectKernelTunables=no$/m);
  assert.match(await readFile(path.join(sb.root, 'etc/telepi/telepi.env'), 'utf8'), /^PIR_GPIO=17$/m);
  assert.match(withGpio.log, /^systemctl daemon-reload$/m);
  assert.match(withGpio.log, /^systemctl restart telepi$/m);
  assert.ok(await analyzeSecurity(unit) > plain, 'systemd-analyze reads the drop-in beside the unit');

  const without = await install(sb, [], { PIR_GPIO: '' });
  assert.equal(without.code, 0, without.out);
  assert.ok(!(await exists(path.dirname(dropin))), 'drop-in removed');
  assert.doesNotMatch(await readFile(path.join(sb.root, 'etc/telepi/telepi.env'), 'utf8'), /^PIR_GPIO=/m);
  assert.match(without.log, /^systemctl daemon-reload$/m);
});

test('every variable of the README\'s configuration table is taken from the environment into the env file', async () => {
  const variables = await readmeVariables();
  assert.deepEqual(variables.filter((v) => !CONFIG_KEYS.includes(v)), [], 'variables the README promises and install.sh drops');
  const sb = await sandbox();
  const values: Record<string, string> = { ...CONFIGURED, TELEPI_USERS: '77,78', TELEGRAM_API_ROOT: 'http://127.0.0.1:8081',
    MQTT_URL: 'mqtts://broker.lan:8883/?clean=1' };
  for (const key of CONFIG_KEYS) values[key] ??= `v-${key.toLowerCase()}`;
  const run = await install(sb, ['--no-verify'], values);
  assert.equal(run.code, 0, run.out);
  const env = await readFile(path.join(sb.root, 'etc/telepi/telepi.env'), 'utf8');
  for (const key of CONFIG_KEYS) assert.ok(env.split('\n').includes(`${key}=${values[key]}`), `${key} in:\n${env}`);
  // The usage lists the same keys: one list in install.sh.
  const help = await execute('bash', [path.join(sb.src, 'install.sh'), '--help'], environment(sb, {}));
  for (const key of CONFIG_KEYS) assert.match(help.out, new RegExp(`\\b${key}\\b`));
});

test('MQTT_PASSWORD is kept like the token: quoted literally in the env file, never printed nor on a command line', async () => {
  const sb = await sandbox();
  const secret = 'pa ss "word" $HOME;#1\\x';
  const run = await install(sb, [], { ...CONFIGURED, MQTT_USERNAME: 'telepi', MQTT_PASSWORD: secret });
  assert.equal(run.code, 0, run.out);
  assert.ok(!run.out.includes(secret) && !run.out.includes('word'), 'the password was printed');
  assert.ok(!run.log.includes('word'), 'the password reached a command line');
  assert.doesNotMatch(run.log, /MQTT_PASSWORD is in its environment/, 'a child process inherited the password');
  const envFile = path.join(sb.root, 'etc/telepi/telepi.env');
  const env = await readFile(envFile, 'utf8');
  assert.ok(env.split('\n').includes(`MQTT_PASSWORD='${secret}'`), env);
  // The app's own reader (the doctor's, systemd's syntax) gets the password back as it was typed.
  const { parseEnvFile } = await import('../src/app/doctor-checks.js');
  assert.equal(parseEnvFile(env).MQTT_PASSWORD, secret);
  const again = await install(sb, []);
  assert.equal(again.code, 0, again.out);
  assert.equal(await readFile(envFile, 'utf8'), env, 'a rerun read it back and wrote it the same');

  const quote = await install(sb, [], { MQTT_PASSWORD: "it's-a-secret" });
  assert.equal(quote.code, 1);
  assert.match(quote.out, /MQTT_PASSWORD may not hold a single quote/);
  assert.ok(!quote.out.includes('a-secret'), 'the refused password was printed');
  assert.equal(await readFile(envFile, 'utf8'), env);
});

test('with little memory and swap free on Bookworm it enlarges dphys-swapfile before the build', async () => {
  const sb = await sandbox('bookworm');
  await mkdir(path.join(sb.root, 'proc'), { recursive: true });
  await writeFile(path.join(sb.root, 'proc/meminfo'), 'MemTotal:  427000 kB\nMemAvailable:  140000 kB\nSwapTotal:  102396 kB\nSwapFree:  40000 kB\n');
  await writeFile(path.join(sb.root, 'etc/dphys-swapfile'), '# /etc/dphys-swapfile\nCONF_SWAPSIZE=100\n#CONF_MAXSWAP=2048\n');
  const run = await install(sb, [], { ...CONFIGURED, FAKE_NODE_VERSION: 'v20.18.1' });
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /memory: only 175 MB free with swap; the build needs about 320 MB: adding 256 MB of swap/);
  assert.equal(await readFile(path.join(sb.root, 'etc/dphys-swapfile'), 'utf8'),
    '# /etc/dphys-swapfile\n#CONF_MAXSWAP=2048\nCONF_SWAPSIZE=356\n');
  assert.match(run.log, /^dphys-swapfile swapoff\ndphys-swapfile setup\ndphys-swapfile swapon\nnpm ci /m);
});

test('with little memory and no dphys-swapfile a swap file serves the build and is removed after it', async () => {
  const sb = await sandbox('trixie');
  await mkdir(path.join(sb.root, 'var/tmp'), { recursive: true });
  await writeFile(path.join(sb.root, 'proc/meminfo'), 'MemTotal:  427000 kB\nMemAvailable:  250000 kB\nSwapFree:  0 kB\n');
  const run = await install(sb, [], CONFIGURED);
  assert.equal(run.code, 0, run.out);
  assert.match(run.out, /only 244 MB free with swap; the build needs about 320 MB: adding 128 MB of swap/);
  const swap = `${sb.root}/var/tmp/telepi-build.swap`;
  assert.match(run.log, new RegExp(`^mkswap ${swap}\\nswapon ${swap}\\nnpm ci [^\\n]*\\n[\\s\\S]*^npm run build .*\\nswapoff ${swap}$`, 'm'));
  assert.ok(!(await exists(swap)), 'the swap file is removed');

  const roomy = await sandbox('trixie');
  await writeFile(path.join(roomy.root, 'proc/meminfo'), 'MemTotal:  953000 kB\nMemAvailable:  700000 kB\nSwapFree:  0 kB\n');
  const enough = await install(roomy, ['--dry-run'], CONFIGURED);
  assert.match(enough.out, /memory: 683 MB free with swap; the build needs about 320 MB/);
  assert.doesNotMatch(enough.out, /swapon|mkswap/);
});

test('GPIO set by hand in the env file without the drop-in: a rerun adds the drop-in and restarts', async () => {
  const sb = await installed();
  const envFile = path.join(sb.root, 'etc/telepi/telepi.env');
  await writeFile(envFile, `${await readFile(envFile, 'utf8')}LED_GPIO=27\n`);
  const run = await install(sb, []);
  assert.equal(run.code, 0, run.out);
  assert.match(await readFile(path.join(sb.root, 'etc/systemd/system/telepi.service.d/gpio.conf'), 'utf8'), /^ProtectKernelTunables=no$/m);
  assert.match(run.log, /^systemctl daemon-reload$/m);
  assert.match(run.log, /^systemctl restart telepi$/m);
});

test('a kernel module that cannot be loaded now (a container) is said once and changes nothing on a rerun', async () => {
  const sb = await sandbox();
  const first = await install(sb, [], { ...CONFIGURED, FAKE_MODPROBE_FAIL: '1' });
  assert.equal(first.code, 0, first.out);
  assert.match(first.out, /i2c-dev is not loaded \(not available here\): it loads at boot where the kernel has it/);
  const again = await install(sb, [], { FAKE_MODPROBE_FAIL: '1' });
  assert.match(again.out, /Nothing changed: telepi is installed, up to date and running\./);
});

test('--build-into runs the build step alone in a new folder, without root and touching nothing else', async () => {
  const sb = await sandbox();
  const before = await snapshot(sb.root);
  const into = path.join(sb.dir, 'build');
  const run = await install(sb, ['--build-into', into]);
  assert.equal(run.code, 0, run.out);
  assert.ok(await exists(path.join(into, 'dist/src/app/cli.js')), 'built');
  assert.ok(!(await exists(path.join(into, '.build-tools'))) && !(await exists(path.join(into, 'node_modules/esbuild'))), 'esbuild left behind');
  assert.match(run.log, /^npm ci --omit=dev --ignore-scripts/m);
  assert.doesNotMatch(run.log, /^(apt-get|useradd|systemctl|raspi-config)/m);
  assert.deepEqual(await snapshot(sb.root), before);
  const again = await install(sb, ['--build-into', into]);
  assert.equal(again.code, 1);
  assert.match(again.out, /--build-into .*: it exists already; give a new folder/);
});
