// Child processes for the system test: each runs to its end or is killed, with its whole process group,
// at its deadline, so a hung apt, npm or guest never outlives the run.
import { spawn } from 'node:child_process';

export interface Result {
  code: number | null;
  out: string;
}

export interface RunOptions {
  /** Killed (SIGKILL to its process group) after this long. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** Each chunk of output as it comes (for long steps' logs). */
  onOutput?: (chunk: string) => void;
}

/** Runs a command; stdout and stderr together in `out`. Never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    const take = (chunk: Buffer): void => {
      const text = chunk.toString();
      out += text;
      options.onOutput?.(text);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) out += `\n[killed after ${Math.round(options.timeoutMs / 1000)} s]`;
      resolve({ code: timedOut ? null : code, out });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like run, but a non-zero exit throws with the command and the end of its output. */
export async function check(command: string, args: readonly string[], options: RunOptions): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.code ?? 'a timeout'}:\n${tail(result.out)}`);
  }
  return result.out;
}

export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** The last lines of a long output, for failure messages. */
export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
