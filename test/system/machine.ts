// A root booted with `systemd-nspawn --boot` (systemd as PID 1, the host's network shared so the emulator on
// the host's loopback is reachable), commands run inside it through nsenter, and a teardown that leaves no
// process and no mount behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { check, killGroup, run, type Result } from './process.js';

const GUEST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root', TERM: 'dumb' };

export interface Teardown {
  /** The guest did not power off within the timeout and was killed. */
  killed: boolean;
  poweroffSeconds: number;
  /** Mounts left under the root after it ended, unmounted by hand. */
  leftMounts: string[];
  removeSeconds: number;
}

export class Machine {
  #exited: Promise<void>;
  #destroyed: Promise<Teardown> | undefined;

  private constructor(readonly dir: string, private readonly nspawn: ChildProcess, readonly leader: number) {
    this.#exited = new Promise((resolve) => {
      if (nspawn.exitCode !== null || nspawn.signalCode !== null) resolve();
      else nspawn.once('exit', () => resolve());
    });
  }

  /** Boots dir and waits until `systemctl is-system-running --wait` answers; consoleLog gets the boot output. */
  static async boot(dir: string, name: string, consoleLog: string, timeoutMs: number): Promise<Machine> {
    const output = createWriteStream(consoleLog);
    // The host runs no systemd: no machined to register with, no scope to move into. Trixie's systemd
    // boots only on the unified cgroup hierarchy, which nspawn gives it on this hybrid host when asked.
    const nspawn = spawn('systemd-nspawn', ['--boot', `--directory=${dir}`, `--machine=${name}`, '--register=no', '--keep-unit',
      '--console=pipe', '--link-journal=no', '--resolv-conf=copy-host', '--timezone=copy'],
    { env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    nspawn.stdout?.pipe(output);
    nspawn.stderr?.pipe(output);
    const deadline = Date.now() + timeoutMs;
    let leader: number | undefined;
    while (leader === undefined) {
      if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited with ${nspawn.exitCode}: see ${consoleLog}`);
      if (Date.now() > deadline) {
        killGroup(nspawn.pid);
        throw new Error(`no container init within ${timeoutMs / 1000} s: see ${consoleLog}`);
      }
      leader = childOf(nspawn.pid ?? -1, 'systemd');
      if (leader === undefined) await sleep(100);
    }
    const machine = new Machine(dir, nspawn, leader);
    let state = await machine.exec(['systemctl', 'is-system-running', '--wait'], Math.max(1000, deadline - Date.now()));
    // Until PID 1 has opened its private socket there is no one to ask yet: systemctl says "offline".
    while (/^offline$|Failed to connect/m.test(state.out) && Date.now() < deadline) {
      await sleep(200);
      state = await machine.exec(['systemctl', 'is-system-running', '--wait'], Math.max(1000, deadline - Date.now()));
    }
    if (state.out.trim() !== 'running') {
      const failed = await machine.exec(['systemctl', '--failed', '--no-legend', '--no-pager'], 30_000);
      await machine.destroy();
      throw new Error(`the guest booted into "${state.out.trim()}", not "running"; failed units:\n${failed.out}`);
    }
    return machine;
  }

  /** Runs a command in the guest (its mount, pid, ipc, uts and cgroup namespaces, its root). */
  exec(args: readonly string[], timeoutMs: number, input?: string): Promise<Result> {
    const options = input === undefined ? { timeoutMs, env: GUEST_ENV } : { timeoutMs, env: GUEST_ENV, input };
    return run('nsenter', [`--target=${this.leader}`, '--mount', '--uts', '--ipc', '--pid', '--cgroup', '--root', '--wd', '--',
      ...args], options);
  }

  /** A bash script in the guest; a non-zero exit throws with its output. */
  async sh(script: string, timeoutMs = 60_000): Promise<string> {
    const result = await this.exec(['bash', '-c', `set -euo pipefail\n${script}`], timeoutMs);
    if (result.code !== 0) throw new Error(`in the guest, exit ${result.code ?? 'timeout'}: ${script}\n${result.out}`);
    return result.out;
  }

  /** `systemctl show` properties of a unit, as a map. */
  async show(unit: string, ...properties: string[]): Promise<Record<string, string>> {
    const out = await this.sh(`systemctl show ${unit} ${properties.map((p) => `-p ${p}`).join(' ')}`);
    return Object.fromEntries(out.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  }

  /**
   * Powers the guest off (killing it after timeoutMs), unmounts what is left and removes the root.
   * Once only: later calls get the same answer.
   */
  destroy(timeoutMs = 60_000): Promise<Teardown> {
    this.#destroyed ??= this.#destroy(timeoutMs);
    return this.#destroyed;
  }

  async #destroy(timeoutMs: number): Promise<Teardown> {
    const start = performance.now();
    let killed = false;
    if (this.nspawn.exitCode === null) {
      const asked = await this.exec(['systemctl', 'poweroff', '--no-block'], 10_000).catch(() => undefined);
      // Without its bus, systemd still powers off on SIGRTMIN+4.
      if (asked?.code !== 0) await run('kill', ['-s', 'SIGRTMIN+4', String(this.leader)], { timeoutMs: 10_000 });
      const done = await Promise.race([this.#exited.then(() => true), sleep(timeoutMs).then(() => false)]);
      if (!done) {
        killed = true;
        // Killing the guest's PID 1 ends every process of its PID namespace.
        try {
          process.kill(this.leader, 'SIGKILL');
        } catch {
          // Already gone.
        }
        killGroup(this.nspawn.pid);
        await Promise.race([this.#exited, sleep(10_000)]);
      }
    }
    const poweroffSeconds = (performance.now() - start) / 1000;
    const leftMounts = await unmountUnder(this.dir, { below: true });
    await removeRoot(this.dir);
    return { killed, poweroffSeconds, leftMounts, removeSeconds: (performance.now() - start) / 1000 - poweroffSeconds };
  }

  /** Whether nspawn or the guest's PID 1 is still running. */
  get running(): boolean {
    return this.nspawn.exitCode === null && this.nspawn.signalCode === null;
  }
}

/** The pid of a child of `parent` running `comm`, if any. */
function childOf(parent: number, comm: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === parent && stat.includes(`(${comm})`)) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** Unmounts (lazily, deepest first) what is mounted below dir, or at it too; returns the mount points. */
export async function unmountUnder(dir: string, options: { below?: boolean } = {}): Promise<string[]> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => (point === dir && options.below !== true) || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await check('umount', ['-l', point], { timeoutMs: 30_000 }).catch(() => undefined);
  return mounts;
}

/** Unmounts the root's own tmpfs (and anything left in it) and removes its mount point. */
export async function removeRoot(dir: string): Promise<void> {
  await unmountUnder(dir);
  await check('rm', ['-rf', '--one-file-system', dir], { timeoutMs: 10 * 60_000 });
}
