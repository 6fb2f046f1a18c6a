// Runs a device tool (upnpc, rpicam-still, …) as a child process: argument array, never a shell;
// a scrubbed environment, so the bot token never reaches a child; a timeout that kills it.
import { spawn } from 'node:child_process';

/** Environment variables a device tool may see; everything else (the bot token above all) is dropped. */
const KEPT_NAMES = new Set(['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'XDG_RUNTIME_DIR']);
const KEPT_PREFIXES = ['LIBCAMERA_'];

/**
 * Returns a copy of `env` holding only PATH, HOME, LANG, LC_ALL, TZ, XDG_RUNTIME_DIR and LIBCAMERA_*.
 * TELEGRAM_BOT_TOKEN and every other variable are dropped.
 */
export function scrubbedEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (KEPT_NAMES.has(name) || KEPT_PREFIXES.some((prefix) => name.startsWith(prefix))) kept[name] = value;
  }
  return kept;
}

export interface RunOptions {
  /** Kill the process (SIGTERM, then SIGKILL after `killGraceMs`) and reject once this has passed. */
  timeoutMs: number;
  /**
   * The environment to scrub and pass on (default `process.env`). It is always filtered through
   * `scrubbedEnv`, so a caller cannot hand the token to a child by mistake; tests steer fakes through
   * PATH and HOME, which survive.
   */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  input?: Buffer | string;
  /** Aborting kills the process and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** How much of stderr to keep for error messages (default 4096 bytes, the end of it). */
  stderrTailBytes?: number;
  /** Kill the process and reject when stdout grows past this (default 64 MiB). */
  maxStdoutBytes?: number;
  /** Between SIGTERM and SIGKILL on timeout or abort (default 1000 ms). */
  killGraceMs?: number;
}

export interface RunResult {
  /** The exit code, or null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  /** The last `stderrTailBytes` of stderr, as UTF-8 text. */
  stderrTail: string;
}

/**
 * An error from `runCommand`: `code` is 'ENOENT' (command not found on PATH), 'EACCES' (not
 * executable), 'ETIMEDOUT' (killed after `timeoutMs`), 'EMSGSIZE' (stdout over `maxStdoutBytes`),
 * 'ABORT_ERR' (aborted through `signal`) or another spawn errno code.
 */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly command: string,
    readonly stderrTail = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CommandError';
  }
}

/**
 * Runs `command` with `args` (no shell: the arguments reach the program exactly as given) and
 * resolves once it exits, whatever its exit code: judging the code is the caller's business.
 * Rejects with a `CommandError` when the process cannot start, times out, floods stdout or is aborted.
 */
export function runCommand(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const tailBytes = options.stderrTailBytes ?? 4096;
  const maxStdout = options.maxStdoutBytes ?? 64 * 1024 * 1024;
  const graceMs = options.killGraceMs ?? 1000;

  return new Promise<RunResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new CommandError(`${command} was not started: aborted`, 'ABORT_ERR', command, '', { cause: options.signal.reason }));
      return;
    }
    const child = spawn(command, [...args], {
      env: scrubbedEnv(options.env ?? process.env),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });

    // Both are pipes (stdio above), so never null.
    const outStream = child.stdout!;
    const errStream = child.stderr!;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = Buffer.alloc(0);
    let failure: CommandError | null = null;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;

    const stderrTail = () => stderr.toString('utf8');
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      outcome();
    };
    // Stop the child; the promise settles with `error` once it has really exited (or failed to start).
    const kill = (error: CommandError) => {
      if (failure) return;
      failure = error;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        child.kill('SIGKILL');
        // A grandchild may still hold the pipes open; 'close' must not wait for it.
        outStream.destroy();
        errStream.destroy();
      }, graceMs);
    };
    const onAbort = () => kill(new CommandError(`${command} was aborted and killed`, 'ABORT_ERR', command, stderrTail(),
      { cause: options.signal?.reason }));

    const deadline = setTimeout(() => kill(new CommandError(
      `${command} did not finish within ${options.timeoutMs} ms and was killed`, 'ETIMEDOUT', command, stderrTail())),
    options.timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });

    outStream.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        kill(new CommandError(`${command} wrote more than ${maxStdout} bytes to stdout and was killed`, 'EMSGSIZE',
          command, stderrTail()));
        return;
      }
      stdout.push(chunk);
    });
    errStream.on('data', (chunk: Buffer) => {
      stderr = Buffer.concat([stderr, chunk]);
      if (stderr.length > tailBytes) stderr = stderr.subarray(stderr.length - tailBytes);
    });

    child.on('error', (err: NodeJS.ErrnoException) => {
      // 'error' without a spawned process: the command is missing or not executable.
      if (child.pid !== undefined) return;
      const code = err.code ?? 'ESPAWN';
      const missing = command.includes('/') ? 'does not exist' : 'not found on PATH';
      const why = code === 'ENOENT' ? missing : code === 'EACCES' ? 'is not executable' : `could not start (${code})`;
      finish(() => reject(new CommandError(`${command} ${why}`, code, command, '', { cause: err })));
    });
    child.on('close', (code, signal) => {
      finish(() => {
        if (failure) reject(new CommandError(failure.message, failure.code, command, stderrTail(), { cause: failure.cause }));
        else resolve({ code, signal, stdout: Buffer.concat(stdout), stderrTail: stderrTail() });
      });
    });

    if (options.input !== undefined && child.stdin) {
      // A child that exits without reading its input must not crash us with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}
