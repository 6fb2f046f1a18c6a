// scripts/test-prereqs.mjs, the first step of `npm test`: run against a fake probe root and fake
// apt-get, sudo and id on a private PATH (test/fakes/prereqs-bin), so no real package is touched.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../scripts/test-prereqs.mjs', import.meta.url));
const FAKES = fileURLToPath(new URL('./fakes/prereqs-bin/', import.meta.url));

const ALL = ['/usr/bin/chromium', '/usr/bin/shellcheck', '/usr/bin/systemd-analyze', '/usr/bin/python3',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/sbin/mosquitto', '/usr/bin/openssl'];
const SHELLCHECK = '/usr/bin/shellcheck';
const MOSQUITTO = '/usr/sbin/mosquitto';

interface Machine {
  root: string;
  /** Runs the script; env steers the fakes (FAKE_UID, FAKE_SUDO_OK, FAKE_APT_CREATES, FAKE_APT_FAIL). */
  run(env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Every call the fakes saw, in order. */
  calls(): string[];
}

/** A probe root holding `present`, and a PATH of the fakes named in `tools` (so one can be absent). */
function machine(t: TestContext, present: string[], tools = ['apt-get', 'sudo', 'id']): Machine {
  const home = mkdtempSync(join(tmpdir(), 'telepi-prereqs-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const root = join(home, 'root');
  for (const path of present) {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    writeFileSync(join(root, path), '');
  }
  const bin = join(home, 'bin');
  mkdirSync(bin);
  for (const tool of tools) symlinkSync(join(FAKES, tool), join(bin, tool));
  symlinkSync('/bin/true', join(bin, 'true')); // what `sudo -n true` runs
  const log = join(home, 'calls.log');
  writeFileSync(log, '');
  return {
    root,
    calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
    run: (env = {}) => new Promise((resolve) => {
      execFile(process.execPath, [SCRIPT], {
        env: { PATH: bin, TELEPI_PREREQS_ROOT: root, FAKE_APT_LOG: log, ...env },
        timeout: 10_000,
      }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    }),
  };
}

const without = (...paths: string[]) => ALL.filter((path) => !paths.includes(path));

test('with every tool present it says nothing and runs no apt at all', { timeout: 15_000 }, async (t) => {
  const m = machine(t, ALL);
  const result = await m.run({ FAKE_UID: '0' });
  assert.deepEqual(result, { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(m.calls(), []);
});

test('as root it says in one line what it installs and why, then runs apt-get update once and the install', { timeout: 15_000 }, async (t) => {
  const m = machine(t, without(SHELLCHECK, MOSQUITTO));
  const result = await m.run({ FAKE_UID: '0', FAKE_APT_CREATES: `${SHELLCHECK} ${MOSQUITTO}` });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout,
    "npm test: installing shellcheck (the installer test), mosquitto (the MQTT tests' broker) with apt-get\n");
  assert.deepEqual(m.calls(), [
    'DEBIAN_FRONTEND= apt-get --version',
    'DEBIAN_FRONTEND=noninteractive apt-get update -qq',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck mosquitto',
  ]);
});

test('not root but with a working sudo -n it installs through sudo, handing DEBIAN_FRONTEND over', { timeout: 15_000 }, async (t) => {
  const m = machine(t, without('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'));
  const result = await m.run({ FAKE_UID: '1000', FAKE_SUDO_OK: '1',
    FAKE_APT_CREATES: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf' });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'npm test: installing fonts-dejavu-core (chart rendering) with apt-get\n');
  assert.deepEqual(m.calls().filter((call) => !call.includes('--version')), [
    'sudo -n true',
    'sudo -n DEBIAN_FRONTEND=noninteractive apt-get update -qq',
    'DEBIAN_FRONTEND=noninteractive apt-get update -qq',
    'sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-dejavu-core',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-dejavu-core',
  ]);
});

test('not root and no sudo: it stops at once with the one command that would install them', { timeout: 15_000 }, async (t) => {
  const m = machine(t, without('/usr/bin/chromium', SHELLCHECK));
  const result = await m.run({ FAKE_UID: '1000' });
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /npm test needs chromium \(the viewer page tests\), shellcheck \(the installer test\)/);
  assert.match(result.stderr,
    /\n {2}sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium shellcheck\n$/);
  // Nothing was installed or updated: only the probes ran.
  assert.deepEqual(m.calls(), ['DEBIAN_FRONTEND= apt-get --version', 'sudo -n true']);
});

test('a failing apt-get stops the test command with its error and the command to run by hand', { timeout: 15_000 }, async (t) => {
  const m = machine(t, without(MOSQUITTO));
  const result = await m.run({ FAKE_UID: '0', FAKE_APT_FAIL: '1' });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /E: Unable to locate package/);
  assert.match(result.stderr, /apt-get failed \(above\).*\n {2}sudo apt-get update && sudo apt-get install -y --no-install-recommends mosquitto\n$/);
});

test('an install that leaves the file missing is reported by path, not taken for success', { timeout: 15_000 }, async (t) => {
  const m = machine(t, without(MOSQUITTO));
  const result = await m.run({ FAKE_UID: '0' });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /\/usr\/sbin\/mosquitto is still missing; check that mosquitto installed/);
});

test('without apt-get (not Debian) it names the packages and touches nothing', { timeout: 15_000 }, async (t) => {
  const m = machine(t, without('/usr/bin/openssl'), ['sudo', 'id']);
  const result = await m.run({ FAKE_UID: '0' });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /npm test needs openssl \(the TLS tests\), and there is no apt-get here/);
  assert.deepEqual(m.calls(), []);
});
