// A real `telepi run` in a child process, with simulated hardware, against the Bot API emulator: started, spoken to
// through Telegram as its owner, measured from /proc, and stopped by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { BotApiEmulator } from '../src/emulator/index.js';
import { eventually, textsTo } from './support.js';

export const OWNER = 1001;

export interface TelepiChild {
  child: ChildProcess;
  pid: number;
  /** stderr so far: telepi logs there. */
  log(): string;
  /** Resident set size now, in bytes (from /proc, costing the child nothing); 0 once it has exited. */
  rss(): number;
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
}

export interface TelepiChildOptions {
  token: string;
  stateDir: string;
  streamPort: number;
  /** Node flags for the child, e.g. a small heap as on a Pi. */
  nodeArgs?: string[];
  /** 'source' (default): src/ through tsx; 'dist': bin/telepi.js over dist/, as installed (build it first); or a script run through tsx. */
  from?: 'source' | 'dist' | { script: string };
  env?: NodeJS.ProcessEnv;
}

export { freePort } from './free-port.js';

export function startTelepiChild(emu: BotApiEmulator, options: TelepiChildOptions): TelepiChild {
  const from = options.from ?? 'source';
  const entry = from === 'dist' ? ['bin/telepi.js', 'run']
    : from === 'source' ? ['--import', 'tsx', '-e', "const { main } = await import('./src/app/cli.ts'); process.exitCode = await main(['run']);"]
      : ['--import', 'tsx', from.script];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    cwd: new URL('..', import.meta.url),
    env: {
      ...process.env, TELEGRAM_BOT_TOKEN: options.token, TELEGRAM_API_ROOT: emu.apiRoot, TELEPI_OWNERS: String(OWNER),
      TELEPI_HARDWARE: 'simulated', TELEPI_STATE_DIR: options.stateDir, STREAM_PORT: String(options.streamPort),
      TELEPI_LOG_LEVEL: 'info', ...options.env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('telepi run did not start');
  const pid = child.pid;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  return {
    child, pid,
    log: () => stderr,
    rss: () => {
      try {
        return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
      } catch {
        return 0; // exited: /proc/<pid> is gone
      }
    },
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const [code] = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Sends `text` as the owner and resolves with the reply's text and how long it took. */
export async function askAsOwner(emu: BotApiEmulator, text: string, timeoutMs = 10_000): Promise<{ reply: string; ms: number }> {
  const before = textsTo(emu, OWNER).length;
  const started = performance.now();
  emu.pushText(text, { chatId: OWNER, userId: OWNER });
  await eventually(() => textsTo(emu, OWNER).length > before, timeoutMs, `a reply to ${text}`);
  return { reply: textsTo(emu, OWNER)[before] as string, ms: performance.now() - started };
}

const LINK = /http:\/\/[^\s/]+:(\d+)\/\?token=([\w-]+)/;

/** Sends /open as the owner and reads the viewer link's port and token from the reply. */
export async function openLink(emu: BotApiEmulator, timeoutMs = 20_000): Promise<{ port: number; token: string }> {
  const before = textsTo(emu, OWNER).length;
  emu.pushText('/open', { chatId: OWNER, userId: OWNER });
  const linkIn = () => textsTo(emu, OWNER).slice(before).map((text) => LINK.exec(text)).find((match) => match !== null);
  await eventually(() => linkIn() !== undefined, timeoutMs, 'a link in the replies to /open');
  const link = linkIn() as RegExpExecArray;
  return { port: Number(link[1]), token: link[2] as string };
}
