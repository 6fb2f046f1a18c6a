// One telepi per state folder: <dir>/state.lock names the process that holds it. Two writers on one
// folder would each overwrite the other's subscriptions; a lock left by kill -9 or a power cut is taken over.

import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, type Logger } from '../log.js';

export const lockFileName = 'state.lock';

/** Who holds the lock: the pid, and what tells a live holder from a recycled pid after a reboot. */
interface LockOwner {
  pid: number;
  /** /proc/sys/kernel/random/boot_id: a lock from an earlier boot is stale whatever its pid. */
  bootId: string | null;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid. */
  startTicks: string | null;
}

/** The folder is held by a live process (another telepi, or this one opened it twice). */
export class StateLockedError extends Error {
  constructor(readonly dir: string, readonly holderPid: number) {
    super(`${dir} is in use by another telepi (pid ${holderPid}); stop it first (sudo systemctl stop telepi) or give this one another TELEPI_STATE_DIR`);
    this.name = 'StateLockedError';
  }
}

/** The lock's name is taken by something that is not a lock and cannot be removed. */
export class StateLockBlockedError extends Error {
  constructor(readonly file: string, what: string) {
    super(`${file} ${what}; it is not a telepi lock: move it away`);
    this.name = 'StateLockBlockedError';
  }
}

export class StateLock {
  private released = false;

  private constructor(readonly file: string, private readonly token: string) {}

  /** Takes the folder's lock, or throws StateLockedError naming the live holder. */
  static async acquire(dir: string, log: Logger): Promise<StateLock> {
    const file = path.join(dir, lockFileName);
    const owner = await ownerOf(process.pid);
    const token = randomBytes(8).toString('hex');
    const text = `${JSON.stringify({ ...owner, token })}\n`;
    // Written whole to a temp name, then linked: the lock file never exists half written.
    const temp = path.join(dir, `.${lockFileName}.${process.pid}.${token}`);
    try {
      // Inside the try: on a full card a half-written temp file is removed too.
      await writeFile(temp, text, { mode: 0o600 });
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await link(temp, file);
          return new StateLock(file, token);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const holder = await readOwner(file);
        if (holder !== null && (await isAlive(holder))) throw new StateLockedError(dir, holder.pid);
        log.info(holder === null
          ? `${file} could not be read; taking the lock over`
          : `${file} was left by pid ${holder.pid}, which is no longer running (killed, or a power cut); taking it over`);
        await unlink(file).catch((error: unknown) => {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') return; // another process took it away first: try again
          // A folder or an immutable file in the way: no other telepi is re-creating it, so say what it is.
          throw new StateLockBlockedError(file, code === 'EISDIR' ? 'is a folder' : `cannot be removed (${code ?? describeError(error)})`);
        });
      }
      throw new Error(`could not take ${file}: another process keeps re-creating it`);
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      const current = JSON.parse(await readFile(this.file, 'utf8')) as { token?: unknown };
      if (current.token === this.token) await unlink(this.file);
    } catch {
      // Gone already, or the folder is unreadable: a stale lock is taken over at the next start.
    }
  }
}

async function readOwner(file: string): Promise<LockOwner | null> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || !Number.isSafeInteger(value.pid) || value.pid <= 0) return null;
    return { pid: value.pid, bootId: typeof value.bootId === 'string' ? value.bootId : null, startTicks: typeof value.startTicks === 'string' ? value.startTicks : null };
  } catch {
    return null;
  }
}

async function isAlive(holder: LockOwner): Promise<boolean> {
  const now = await ownerOf(holder.pid);
  if (holder.bootId !== null && now.bootId !== null && holder.bootId !== now.bootId) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user, which is still a live holder.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  return holder.startTicks === null || now.startTicks === null || holder.startTicks === now.startTicks;
}

async function ownerOf(pid: number): Promise<LockOwner> {
  const bootId = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((t) => t.trim(), () => null);
  const startTicks = await readFile(`/proc/${pid}/stat`, 'utf8').then(startTicksOf, () => null);
  return { pid, bootId, startTicks };
}

// The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
function startTicksOf(stat: string): string | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}
