// The guest: a Debian trixie root built once per architecture with mmdebstrap and cached as a tarball
// outside the repository (unpacked in seconds on the next run), then made ready to boot: the host's extra
// CA certificates trusted, the emulation workarounds for arm, and the working tree copied to /root/telepi.
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync,
  writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMULATED, debianMirror, type Arch } from './host.js';
import { removeRoot } from './machine.js';
import { check } from './process.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * What the root holds before install.sh runs: systemd to boot, and what a fresh Raspberry Pi OS Lite has
 * that the installer relies on (curl, passwd). Node.js, npm, build tools, python3, miniupnpc and fonts are
 * not here: install.sh must bring them with apt.
 */
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'passwd', 'curl', 'ca-certificates'];
const SHIM = path.join(REPO, 'test/system/statx-shim.c');
/** The guest after install.sh holds about 1.5 GB; the rest is headroom. */
const ROOT_TMPFS_GB = 4;

/** The cached tarball of the root for arch, built first when missing (a new package list builds anew). */
export async function rootTarball(cacheDir: string, arch: Arch, log: (line: string) => void): Promise<string> {
  const key = createHash('sha256').update(PACKAGES.join(',')).digest('hex').slice(0, 8);
  const tarball = path.join(cacheDir, `trixie-${arch}-${key}.tar`);
  if (existsSync(tarball)) {
    log(`root: cached ${tarball}`);
    return tarball;
  }
  for (const old of readdirSync(cacheDir).filter((f) => f.startsWith(`trixie-${arch}-`))) rmSync(path.join(cacheDir, old), { force: true });
  const partial = `${tarball}.partial`;
  log(`root: building ${tarball} with mmdebstrap (minutes; cached for the next runs)`);
  await check('mmdebstrap', ['--variant=apt', `--arch=${arch}`, `--include=${PACKAGES.join(',')}`, '--format=tar',
    'trixie', partial, debianMirror()], { timeoutMs: 30 * 60_000, onOutput: (chunk) => { for (const line of chunk.trimEnd().split('\n')) log(`  ${line}`); } });
  renameSync(partial, tarball);
  return tarball;
}

/**
 * Unpacks the root into a tmpfs of its own under workDir: the guest's apt and npm do not wait on the disk,
 * and removing it is one umount instead of minutes of rm on a busy disk.
 */
export async function unpack(tarball: string, workDir: string, arch: Arch): Promise<string> {
  const dir = path.join(workDir, `${arch}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await check('mount', ['-t', 'tmpfs', '-o', `size=${ROOT_TMPFS_GB}G,mode=0755`, `telepi-system-${arch}`, dir], { timeoutMs: 30_000 });
  try {
    await check('tar', ['-C', dir, '--numeric-owner', '-xf', tarball], { timeoutMs: 5 * 60_000 });
  } catch (error) {
    await removeRoot(dir);
    throw error;
  }
  return dir;
}

/** Everything the guest needs before it boots; written from the host, so no guest code runs yet. */
export async function prepareGuest(dir: string, arch: Arch, cacheDir: string): Promise<void> {
  writeFileSync(path.join(dir, 'etc/hostname'), `telepi-${arch}\n`);
  trustHostCertificates(dir);
  // miniupnpc's upnpc would send SSDP multicast into the host's network: a stub that finds no router.
  writeFileSync(path.join(dir, 'usr/local/bin/upnpc'), '#!/bin/sh\necho "No IGD UPnP Device found on the network !"\nexit 1\n',
    { mode: 0o755 });
  if (arch !== 'amd64') await emulationWorkarounds(dir, arch, cacheDir);
  await copyWorkingTree(path.join(dir, 'root/telepi'));
}

/** The host's extra CAs (a TLS-inspecting proxy's): without them npm fails with SELF_SIGNED_CERT_IN_CHAIN. */
function trustHostCertificates(dir: string): void {
  const source = '/usr/local/share/ca-certificates';
  if (!existsSync(source)) return;
  const target = path.join(dir, source);
  mkdirSync(target, { recursive: true });
  for (const file of readdirSync(source).filter((f) => f.endsWith('.crt'))) {
    copyFileSync(path.join(source, file), path.join(target, file));
    // What update-ca-certificates would add; it keeps them when the guest runs it again.
    appendFileSync(path.join(dir, 'etc/ssl/certs/ca-certificates.crt'), `\n${readFileSync(path.join(source, file), 'utf8').trim()}\n`);
  }
}

/**
 * Under qemu-user: credentials need clone(CLONE_NEWNS), which qemu rejects, so every service drops them;
 * and a statx() shim stops systemd trusting qemu's mount id 0 ("Failed to set up mount namespacing").
 */
async function emulationWorkarounds(dir: string, arch: Exclude<Arch, 'amd64'>, cacheDir: string): Promise<void> {
  const dropIn = path.join(dir, 'etc/systemd/system/service.d');
  mkdirSync(dropIn, { recursive: true });
  writeFileSync(path.join(dropIn, '10-telepi-system-test-qemu.conf'),
    '# The system test under qemu-user only: qemu rejects the mount namespace credentials need.\n' +
    '[Service]\nImportCredential=\nLoadCredential=\nSetCredential=\n');
  const shim = path.join(cacheDir, `statx-shim-${arch}.so`);
  if (!existsSync(shim) || statSync(shim).mtimeMs < statSync(SHIM).mtimeMs) {
    await check(EMULATED[arch].gcc, ['-shared', '-fPIC', '-O2', '-Wall', '-o', shim, SHIM], { timeoutMs: 120_000 });
  }
  copyFileSync(shim, path.join(dir, 'usr/local/lib/telepi-statx-shim.so'));
  writeFileSync(path.join(dir, 'etc/ld.so.preload'), '/usr/local/lib/telepi-statx-shim.so\n');
}

/** The files git knows (committed or not, as they are now in the working tree), as a clone would have them. */
async function copyWorkingTree(target: string): Promise<void> {
  mkdirSync(target, { recursive: true });
  await check('bash', ['-c', 'set -o pipefail; cd "$1" && git ls-files -z --cached --others --exclude-standard | ' +
    'tar --null --ignore-failed-read -T - -cf - | tar -C "$2" -xf -', 'copy', REPO, target], { timeoutMs: 120_000 });
}
