// What the host needs for the system test: root, systemd-nspawn and mmdebstrap (installed with apt-get when
// missing), and for arm64/armhf qemu-user 10 taken out of trixie's .deb (nothing installed) and registered
// with binfmt_misc under the flags POCF. Anything missing that cannot be had is a NotRun, never a pass.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { check, run } from './process.js';

export type Arch = 'amd64' | 'arm64' | 'armhf';
export const ARCHES: readonly Arch[] = ['amd64', 'arm64', 'armhf'];

/** qemu's name for each emulated architecture, and the cross compiler for the guest's statx shim. */
export const EMULATED: Record<Exclude<Arch, 'amd64'>, { qemu: string; gcc: string; gccPackage: string }> = {
  arm64: { qemu: 'aarch64', gcc: 'aarch64-linux-gnu-gcc', gccPackage: 'gcc-aarch64-linux-gnu' },
  armhf: { qemu: 'arm', gcc: 'arm-linux-gnueabihf-gcc', gccPackage: 'gcc-arm-linux-gnueabihf' },
};

/** The test could not run here; it says why and what to do. Not a pass. */
export class NotRun extends Error {}

const BINFMT = '/proc/sys/fs/binfmt_misc';
const APT_MINUTES = 10;

export async function checkHost(arch: Arch): Promise<void> {
  if (process.getuid?.() !== 0) throw new NotRun('it must run as root (systemd-nspawn, mounts, binfmt_misc): sudo npm run test:system');
  if (process.platform !== 'linux') throw new NotRun(`systemd-nspawn needs Linux, this is ${process.platform}`);
  const host = (await run('dpkg', ['--print-architecture'], { timeoutMs: 10_000 }).catch(() => ({ code: 1, out: '' })));
  if (host.code !== 0) throw new NotRun('the host is not Debian-based (no dpkg): mmdebstrap and systemd-nspawn come from Debian\'s packages');
  if (host.out.trim() !== 'amd64') throw new NotRun(`the host is ${host.out.trim()}: the test emulates arm from amd64 only`);
  // Each tool the test runs on the host, and the Debian package that brings it.
  const tools: [string, string][] = [['systemd-nspawn', 'systemd-container'], ['mmdebstrap', 'mmdebstrap'], ['arch-test', 'arch-test']];
  const wanted = tools.filter(([tool]) => !onPath(tool)).map(([, pkg]) => pkg);
  if (arch !== 'amd64' && !onPath(EMULATED[arch].gcc)) wanted.push(EMULATED[arch].gccPackage);
  if (wanted.length > 0) await aptInstall(wanted);
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => dir !== '' && existsSync(path.join(dir, tool)));
}

async function aptInstall(packages: string[]): Promise<void> {
  console.log(`installing on the host with apt-get, for the system test: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const options = { timeoutMs: APT_MINUTES * 60_000, env };
  const update = await run('apt-get', ['-qq', 'update'], options);
  const install = update.code === 0
    ? await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], options)
    : update;
  if (install.code !== 0) {
    throw new NotRun(`apt-get could not install ${packages.join(' ')} (${install.out.trim().split('\n').pop() ?? ''}): ` +
      `install them, then run this again`);
  }
}

/**
 * qemu-user from trixie, extracted into the cache: bookworm's qemu 7.2 rejects pidfd_spawn, and every unit
 * of the guest then fails with "Failed to spawn executor". Returns the folder holding usr/.
 */
export async function qemuUser(cacheDir: string): Promise<string> {
  const dir = path.join(cacheDir, 'qemu-user');
  if (existsSync(path.join(dir, 'usr/bin/qemu-aarch64'))) return dir;
  const apt = path.join(cacheDir, 'apt-trixie');
  for (const sub of ['lists/partial', 'archives/partial']) mkdirSync(path.join(apt, sub), { recursive: true });
  writeFileSync(path.join(apt, 'sources.list'), `deb ${debianMirror()} trixie main\n`);
  // The host's apt, pointed at trixie's index in a folder of its own: the host's own lists stay as they are.
  const options = ['-o', `Dir::Etc::SourceList=${apt}/sources.list`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${apt}/lists`, '-o', `Dir::Cache::Archives=${apt}/archives`,
    '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=', '-o', 'APT::Sandbox::User=root',
    '-o', 'Dir::Etc::Preferences=/dev/null', '-o', 'Dir::Etc::PreferencesParts=/dev/null'];
  await check('apt-get', ['-qq', ...options, 'update'], { timeoutMs: 5 * 60_000 });
  await check('apt-get', ['-qq', ...options, 'download', 'qemu-user'], { timeoutMs: 10 * 60_000, cwd: apt });
  const deb = readdirSync(apt).find((f) => f.startsWith('qemu-user_') && f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download qemu-user left no .deb');
  await check('dpkg-deb', ['-x', path.join(apt, deb), dir], { timeoutMs: 60_000 });
  await check('rm', ['-f', path.join(apt, deb)], { timeoutMs: 10_000 });
  return dir;
}

/** Debian's mirror as the host's apt uses it, so the guest reaches it the same way. */
export function debianMirror(): string {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const match = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s/m.exec(text);
    if (match?.[1]) return match[1];
  }
  return 'http://deb.debian.org/debian';
}

/**
 * Registers qemu for the architecture with binfmt_misc under the flags POCF (F: the interpreter is opened
 * now, so it need not exist in the guest; C/O: systemd starts its executor through /proc/self/fd/N).
 * Returns how to undo what it did. An entry of the same name that is not ours is left alone: NotRun.
 */
export async function registerBinfmt(arch: Exclude<Arch, 'amd64'>, qemuDir: string): Promise<() => Promise<void>> {
  const undo: (() => Promise<void>)[] = [];
  if (!existsSync(path.join(BINFMT, 'register'))) {
    await check('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { timeoutMs: 10_000 });
    undo.push(async () => { await run('umount', [BINFMT], { timeoutMs: 10_000 }); });
  }
  const name = `qemu-${EMULATED[arch].qemu}`;
  const interpreter = path.join(qemuDir, `usr/libexec/qemu-binfmt/${EMULATED[arch].qemu}-binfmt-P`);
  const entry = path.join(BINFMT, name);
  if (existsSync(entry)) {
    const current = readFileSync(entry, 'utf8');
    if (current.includes(`interpreter ${interpreter}`) && /flags: POCF/.test(current)) return async () => { await undoAll(undo); };
    throw new NotRun(`${entry} is registered already, for another qemu (${/interpreter (\S+)/.exec(current)?.[1] ?? '?'}); ` +
      `the test needs qemu-user 10 with the flags POCF: remove it with echo -1 > ${entry}, then run this again`);
  }
  // Debian's own magic and mask for the architecture, from the same package.
  const conf = readFileSync(path.join(qemuDir, `usr/share/qemu/binfmt.d/${name}.conf`), 'utf8').trim();
  const fields = conf.split(':');
  fields[6] = interpreter;
  fields[7] = 'POCF';
  writeFileSync(path.join(BINFMT, 'register'), fields.join(':'));
  undo.unshift(async () => { writeFileSync(entry, '-1'); });
  return async () => { await undoAll(undo); };
}

async function undoAll(steps: (() => Promise<void>)[]): Promise<void> {
  for (const step of steps) await step().catch(() => undefined);
}
