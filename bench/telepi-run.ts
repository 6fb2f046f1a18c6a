// `telepi run` from the built dist/ as a child on a loopback emulator with simulated hardware, for
// the benchmarks that measure the appliance from outside: its RSS read from /proc, never from inside.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BotApiEmulator } from '../src/emulator/index.js';
import { TOKEN } from './contestants.js';
import { mb, rssOf } from './proc.js';

export const OWNER = 1001;
const root = fileURLToPath(new URL('..', import.meta.url));

export interface TelepiRun {
  emu: BotApiEmulator;
  stateDir: string;
  /** The median RSS, in MB, of samples taken every 100 ms for windowMs: one reading moves by MBs with each GC. */
  rssMedianMb(windowMs: number): Promise<number>;
  /** SIGTERM, then the emulator and the state folder go. */
  stop(): Promise<void>;
}

export interface TelepiRunOptions {
  /** Further settings (MQTT_URL, …) over the minimal simulated configuration. */
  env?: NodeJS.ProcessEnv;
  /** The log line that says it is up (default: `telepi started`). */
  ready?: RegExp;
  /** The folder with bin/ and a built dist/ (default: this checkout). */
  telepiRoot?: string;
  /** Prepares the state folder before the start (e.g. seeds a history). */
  prepare?: (stateDir: string) => Promise<void>;
}

export async function startTelepiRun(options: TelepiRunOptions = {}): Promise<TelepiRun> {
  const emu = await BotApiEmulator.start({ token: TOKEN, keepFileBytes: 0 });
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-bench-run-'));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await emu.close();
    await rm(stateDir, { recursive: true, force: true });
  };
  try {
    await options.prepare?.(stateDir);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH, HOME: process.env.HOME, TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: emu.apiRoot,
      TELEPI_OWNERS: String(OWNER), TELEPI_HARDWARE: 'simulated', TELEPI_STATE_DIR: stateDir, TELEPI_LOG_LEVEL: 'info', ...options.env,
    };
    const started = spawn(process.execPath, ['bin/telepi.js', 'run'], { cwd: options.telepiRoot ?? root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    let log = '';
    started.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const ready = options.ready ?? /telepi started/;
    const deadline = performance.now() + 20_000;
    while (!ready.test(log)) {
      if (started.exitCode !== null || performance.now() > deadline) throw new Error(`telepi run did not start: ${log.slice(-500)}`);
      await sleep(50);
    }
    const rssMedianMb = async (windowMs: number) => {
      const samples: number[] = [];
      for (const end = performance.now() + windowMs; performance.now() < end; await sleep(100)) samples.push(mb(rssOf(started.pid as number)));
      samples.sort((a, b) => a - b);
      return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
    };
    return { emu, stateDir, rssMedianMb, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
