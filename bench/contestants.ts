// The contestants, each run in its own child process (plain `node` on a small runner file) so that
// its RSS, CPU time and start-up are its own; the emulator stays in the parent.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { BotApiEmulator, RecordedCall } from '../src/emulator/index.js';

export const TOKEN = '123456789:bench-TOKEN_abcdefghijklmnopqrstuv';

export interface Contestant {
  id: 'telepi' | 'grammy' | 'runner' | 'telegraf' | 'bare';
  name: string;
  file: string;
  env?: Record<string, string>;
}

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

export function contestants(telepiEntry: string): Contestant[] {
  return [
    { id: 'telepi', name: 'telepi', file: here('./bot-telepi.mjs'), env: { BENCH_TELEPI: telepiEntry } },
    { id: 'grammy', name: 'grammY', file: here('./bot-grammy.mjs') },
    { id: 'runner', name: 'grammY + runner', file: here('./bot-grammy.mjs'), env: { BENCH_RUNNER: '1' } },
    { id: 'telegraf', name: 'telegraf', file: here('./bot-telegraf.mjs') },
    { id: 'bare', name: 'bare loop', file: here('./bot-bare.mjs') },
  ];
}

export interface SpawnOptions {
  mode?: 'echo' | 'expire' | 'upload';
  timeoutSeconds?: number;
  exposeGc?: boolean;
  /** Extra node flags, e.g. --cpu-prof for profiling a run. */
  nodeFlags?: string[];
}

/** A contestant's running child: its pid, its start-up time, commands over IPC, and stop(). */
export class Running {
  /** ms from spawn() to the emulator receiving the first getUpdates. */
  startupMs = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private output = '';

  constructor(readonly child: ChildProcess, readonly contestant: Contestant) {
    child.stdout?.on('data', (chunk: Buffer) => this.keep(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.keep(chunk));
    child.on('message', (message: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.result);
      else waiter?.reject(new Error(`${contestant.name}: ${message.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${contestant.name} exited (${code ?? signal})${this.tail()}`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines the child printed, for error messages. */
  tail(): string {
    const text = this.output.trim();
    return text === '' ? '' : `:\n${text.split('\n').slice(-15).join('\n')}`;
  }

  command<T>(cmd: string, args?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, cmd, args });
    });
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  private keep(chunk: Buffer): void {
    this.output = (this.output + chunk.toString('utf8')).slice(-8000);
  }
}

/** Spawns the contestant against `emu` and resolves once its first getUpdates has arrived. */
export async function start(contestant: Contestant, emu: BotApiEmulator, options: SpawnOptions = {}): Promise<Running> {
  let onCall: ((call: RecordedCall) => void) | undefined;
  const firstPoll = new Promise<number>((resolve) => {
    onCall = (call) => {
      if (call.method === 'getUpdates') resolve(call.atMs);
    };
    emu.on('call', onCall);
  });
  const flags = [...(options.exposeGc ? ['--expose-gc'] : []), ...(options.nodeFlags ?? [])];
  const spawnedAt = performance.now();
  // BENCH_PIN=<cpu>: the bot on that core alone (taskset execs node, so the pid stays the bot's).
  const pin = process.env.BENCH_PIN;
  const argv = [...flags, contestant.file];
  const child = spawn(pin ? 'taskset' : process.execPath, pin ? ['-c', pin, process.execPath, ...argv] : argv, {
    env: {
      ...process.env,
      ...contestant.env,
      BENCH_API_ROOT: emu.apiRoot,
      BENCH_TOKEN: TOKEN,
      BENCH_MODE: options.mode ?? 'echo',
      BENCH_TIMEOUT_S: String(options.timeoutSeconds ?? 0),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const running = new Running(child, contestant);
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`${contestant.name} exited (${String(code ?? signal)}) before its first getUpdates${running.tail()}`);
  });
  exited.catch(() => {}); // later exits are reported by stop() and command()
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${contestant.name} sent no getUpdates within 20 s${running.tail()}`)), 20_000);
  });
  try {
    running.startupMs = (await Promise.race([firstPoll, exited, late])) - spawnedAt;
  } catch (error) {
    await running.stop();
    throw error;
  } finally {
    clearTimeout(timer);
    if (onCall !== undefined) emu.off('call', onCall);
  }
  return running;
}
