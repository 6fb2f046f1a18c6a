// `npm run test:system -- --arch amd64|arm64|armhf`: install.sh for real in a booted Debian trixie (systemd
// as PID 1 under systemd-nspawn; arm64 and armhf under qemu-user), against the Bot API emulator on the
// host's loopback with simulated hardware. Exit 0: every check passed; 1: one failed; 77: not run here
// (no root, no nspawn, no way to get them), with the reason; 2: bad arguments.
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BotApiEmulator } from '../../src/emulator/index.js';
import { logFolder, runChecks, TOKEN } from './checks.js';
import { ARCHES, checkHost, NotRun, qemuUser, registerBinfmt, type Arch } from './host.js';
import { Machine, removeRoot } from './machine.js';
import { REPO, prepareGuest, rootTarball, unpack } from './root.js';
import { check } from './process.js';
import { Report } from './report.js';
import { freePort } from '../free-port.js';

const EXIT_NOT_RUN = 77;
const CACHE_DIR = process.env.TELEPI_SYSTEM_CACHE ?? '/var/cache/telepi-system-test';
const WORK_DIR = '/var/tmp/telepi-system';
/** The whole run, cold cache included; past it everything is torn down and the run fails. */
const DEADLINE_MIN: Record<Arch, number> = { amd64: 30, arm64: 50, armhf: 50 };

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { arch: { type: 'string', default: 'amd64' } } });
  const arch = values.arch as Arch;
  if (!ARCHES.includes(arch)) {
    console.error(`test:system: --arch must be one of ${ARCHES.join(', ')}, not ${values.arch}`);
    return 2;
  }
  const report = new Report();
  const cleanups: (() => Promise<void>)[] = [];
  const teardown = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((e: unknown) => console.log(`cleanup: ${String(e)}`));
  };
  const deadline = setTimeout(() => {
    console.log(`FAIL the run passed its ${DEADLINE_MIN[arch]} minutes: tearing down`);
    report.interrupt(`past ${DEADLINE_MIN[arch]} minutes`);
    void teardown().finally(() => {
      report.printSummary(`system test, ${arch}`);
      process.exit(1);
    });
  }, DEADLINE_MIN[arch] * 60_000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: tearing down`);
      report.interrupt(signal);
      void teardown().finally(() => {
        report.printSummary(`system test, ${arch}`);
        process.exit(130);
      });
    });
  }
  try {
    try {
      await checkHost(arch);
    } catch (error) {
      if (error instanceof NotRun) {
        console.log(`not run: ${error.message}`);
        return EXIT_NOT_RUN;
      }
      throw error;
    }
    mkdirSync(CACHE_DIR, { recursive: true });
    mkdirSync(WORK_DIR, { recursive: true });
    const commit = (await check('git', ['-C', REPO, 'log', '-1', '--format=%h'], { timeoutMs: 10_000 })).trim();
    console.log(`system test on ${arch} at ${new Date().toISOString()}, commit ${commit}, cache ${CACHE_DIR}`);
    const log = (line: string): void => console.log(`    ${line}`);

    if (arch !== 'amd64') {
      let undo: (() => Promise<void>) | undefined;
      try {
        const qemu = await qemuUser(CACHE_DIR);
        undo = await registerBinfmt(arch, qemu);
      } catch (error) {
        if (error instanceof NotRun) {
          console.log(`not run: ${error.message}`);
          return EXIT_NOT_RUN;
        }
        throw error;
      }
      cleanups.push(undo);
    }
    let tarball = '';
    await report.step(`a trixie ${arch} root (cached in ${CACHE_DIR})`, async () => {
      tarball = await rootTarball(CACHE_DIR, arch, log);
    });
    let dir = '';
    let machine: Machine | undefined;
    await report.step('unpacked, with the host\'s CAs and the working tree', async () => {
      dir = await unpack(tarball, WORK_DIR, arch);
      cleanups.push(async () => {
        if (machine === undefined) await removeRoot(dir);
      });
      await prepareGuest(dir, arch, CACHE_DIR);
      return dir;
    });

    const emu = await BotApiEmulator.start({ token: TOKEN, host: '127.0.0.1' });
    cleanups.push(() => emu.close());
    const logDir = logFolder(arch);
    await report.step('booted with systemd-nspawn: systemctl is-system-running = running', async () => {
      machine = await Machine.boot(dir, `telepi-system-${arch}`, `${logDir}/console.log`, (arch === 'amd64' ? 2 : 10) * 60_000);
      const booted = machine;
      cleanups.push(async () => { await booted.destroy(); });
    });
    if (machine !== undefined) {
      const booted = machine;
      await runChecks({ machine, emu, report, arch, streamPort: await freePort(), logDir, slow: arch === 'amd64' ? 1 : 4 });
      await report.step('powered off: no process and no mount left, the root removed', async () => {
        const end = await booted.destroy();
        if (booted.running) throw new Error('systemd-nspawn is still running');
        if (end.killed) throw new Error(`the guest did not power off within ${end.poweroffSeconds.toFixed(0)} s and was killed`);
        if (end.leftMounts.length > 0) throw new Error(`the poweroff left mounts, unmounted by hand: ${end.leftMounts.join(' ')}`);
        return `poweroff ${end.poweroffSeconds.toFixed(1)} s, root removed in ${end.removeSeconds.toFixed(1)} s`;
      });
    }
    await teardown();
    console.log(`logs: ${logDir}`);
    report.printSummary(`system test, ${arch}, commit ${commit}`);
    return report.failed ? 1 : 0;
  } catch (error) {
    console.log(`FAIL ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    await teardown();
    report.printSummary(`system test, ${arch}`);
    return 1;
  } finally {
    clearTimeout(deadline);
  }
}


process.exitCode = await main();
