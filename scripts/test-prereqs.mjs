// The first step of `npm test`: the Debian packages the tests need, installed with apt-get when missing
// (as root, or through `sudo -n`), the way `playwright install --with-deps` does; otherwise it stops with
// the one command that would. When everything is there it runs no apt at all.
// TELEPI_PREREQS_ROOT (a folder the probed paths are read under) exists for its own test.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** What the tests need: the file that proves the package is there, and which tests need it. */
const NEEDS = [
  { pkg: 'chromium', path: '/usr/bin/chromium', why: 'the viewer page tests' },
  { pkg: 'shellcheck', path: '/usr/bin/shellcheck', why: 'the installer test' },
  { pkg: 'systemd', path: '/usr/bin/systemd-analyze', why: 'verifying the unit' },
  { pkg: 'python3', path: '/usr/bin/python3', why: 'the installer pairing test' },
  { pkg: 'fonts-dejavu-core', path: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', why: 'chart rendering' },
  { pkg: 'mosquitto', path: '/usr/sbin/mosquitto', why: 'the MQTT tests\' broker' },
  { pkg: 'openssl', path: '/usr/bin/openssl', why: 'the TLS tests' },
];

const root = process.env.TELEPI_PREREQS_ROOT ?? '/';
const missingNow = () => NEEDS.filter((need) => !existsSync(join(root, need.path)));

const missing = missingNow();
if (missing.length === 0) process.exit(0);

const pkgs = missing.map((need) => need.pkg);
const reasons = missing.map((need) => `${need.pkg} (${need.why})`).join(', ');
const installArgs = ['install', '-y', '-qq', '--no-install-recommends', ...pkgs];

/** Runs a command; dpkg's progress is kept back unless it fails, so a good install stays one line. */
function run(command, args, env) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) process.stderr.write(String(result.stdout ?? '').split('\n').slice(-20).join('\n'));
  return result.status === 0;
}

/** `id -u` through PATH, not process.getuid(), so the test can play a normal user. */
function isRoot() {
  const result = spawnSync('id', ['-u'], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.trim() === '0';
}

const canSudo = () => spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
const hasAptGet = () => spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;

const byHand = `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
if (!hasAptGet()) {
  console.error(`npm test needs ${reasons}, and there is no apt-get here: install those packages, then run npm test again.`);
  process.exit(1);
}
const prefix = isRoot() ? [] : canSudo() ? ['sudo', '-n'] : null;
if (prefix === null) {
  console.error(`npm test needs ${reasons}; run this once, then npm test again:\n  ${byHand}`);
  process.exit(1);
}

console.log(`npm test: installing ${reasons} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// sudo drops the environment by default: hand it the one variable apt needs as an argument.
const apt = (args) => prefix.length === 0
  ? run('apt-get', args, env)
  : run(prefix[0], [...prefix.slice(1), 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args], env);
if (!apt(['update', '-qq']) || !apt(installArgs)) {
  console.error(`npm test: apt-get failed (above); fix that, or run by hand:\n  ${byHand}`);
  process.exit(1);
}
const still = missingNow();
if (still.length > 0) {
  console.error(`npm test: apt-get finished but ${still.map((need) => need.path).join(', ')} is still missing; ` +
    `check that ${still.map((need) => need.pkg).join(' ')} installed, then run npm test again.`);
  process.exit(1);
}
