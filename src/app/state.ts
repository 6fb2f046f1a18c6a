// The appliance's persistent state (subscriptions, motion alerts, the port mapping) in <stateDir>/state.json.
// Treated as a small database: entries checked one by one at open, memory changed only once a write
// is on disk, one process per folder (state.lock), and a failing SD card answered, never crashed on.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../log.js';
import { describeError } from '../log.js';
import { ConfigError } from './config.js';
import { lockFileName, StateLock, StateLockBlockedError, StateLockedError } from './state-lock.js';
import { freshState, parseState, shown, stateProblem, stateVersion, type AppState, type SetAside } from './state-schema.js';

export type { AppState, SetAside, Subscription } from './state-schema.js';

const fileName = 'state.json';
const tempSuffix = '.tmp';

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old or the new content:
 * temp file in the same directory, write, fsync, rename over, fsync the directory (makes the rename durable).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}${tempSuffix}`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** The state folder cannot be used as it is: a configuration problem (exit 78), named by its variable. */
export class StateDirError extends ConfigError {
  constructor(message: string) {
    super('TELEPI_STATE_DIR', `TELEPI_STATE_DIR: ${message}`);
    this.name = 'StateDirError';
  }
}

/** A write to the state folder failed; `userMessage` says so in words a chat can show. */
export class StateWriteError extends Error {
  readonly userMessage: string;

  constructor(file: string, cause: unknown) {
    super(`cannot write ${file}: ${describeError(cause)}`, { cause });
    this.name = 'StateWriteError';
    this.userMessage = `Could not save: ${diskProblem(cause)}.`;
  }
}

/** What a failed write means for the person at the other end, by its errno. */
export function diskProblem(error: unknown): string {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'EROFS': return 'the SD card is read-only (the kernel may have remounted it after errors)';
    case 'ENOSPC':
    case 'EDQUOT': return 'the SD card is full';
    case 'EACCES':
    case 'EPERM': return 'telepi may not write to its state folder (check its owner and permissions)';
    case 'EIO': return 'the SD card reported an I/O error (it may be failing)';
    case 'ENOENT': return 'the state folder is gone';
    default: return `the state folder cannot be written (${describeError(error)})`;
  }
}

type Mutator = (draft: AppState) => void;

/** Owns state.json: reads it once at start, then every update rewrites it atomically, one write at a time. */
export class StateStore {
  readonly file: string;
  /** Entries of state.json that could not be used at open, kept in `setAsideFile`: their chats are told once. */
  readonly setAside: readonly SetAside[];
  readonly setAsideFile: string | null;
  #state: AppState;
  #writes: Promise<void> = Promise.resolve();
  #lock: StateLock | null;
  #closed = false;
  /** Why the last write failed (for /status), or null once one succeeds. */
  #saveProblem: string | null = null;
  /** Set-aside entries not yet written to their file: written before the first state write. */
  #pendingAside: { file: string; entries: SetAside[] } | null = null;

  private constructor(file: string, state: AppState, lock: StateLock | null, setAside: SetAside[], setAsideFile: string | null) {
    this.file = file;
    this.#state = deepFreeze(state);
    this.#lock = lock;
    this.setAside = setAside;
    this.setAsideFile = setAsideFile;
  }

  /**
   * Opens (creating with mode 0700) the state directory, takes its lock and reads state.json.
   * - A file that is not JSON at all is moved to state.json.corrupt-<time> and telepi starts fresh.
   * - A bad entry (an absurd number, a duplicate chat) is set aside to state.rejected-<time>.json and
   *   logged; the other entries are kept.
   * - A file of a newer state version, a folder that is a file, a state.json that is a folder, or a folder
   *   held by another live telepi throw a StateDirError (exit 78): nothing is overwritten.
   */
  static async open(dir: string, log: Logger): Promise<StateStore> {
    const file = path.join(dir, fileName);
    await prepareDir(dir, file);
    let lock: StateLock | null;
    try {
      lock = await StateLock.acquire(dir, log);
    } catch (error) {
      if (error instanceof StateLockedError || error instanceof StateLockBlockedError) throw new StateDirError(error.message);
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EROFS' && code !== 'ENOSPC' && code !== 'EDQUOT') throw new StateDirError(`cannot lock ${dir}: ${diskProblem(error)}`);
      // Nothing can be written, so a second process could not interleave writes either: run, and refuse changes.
      log.warn(`cannot lock ${dir}: ${diskProblem(error)}; running on the state as it is, and changes will not be saved`);
      lock = null;
    }
    try {
      await removeStaleTempFiles(dir, log);
      return await StateStore.read(file, lock, log);
    } catch (error) {
      await lock?.release();
      throw error;
    }
  }

  private static async read(file: string, lock: StateLock | null, log: Logger): Promise<StateStore> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StateDirError(`cannot read ${file}: ${diskProblem(error)}`);
      }
      log.info(`no state in ${file} yet; starting fresh`);
      return new StateStore(file, freshState(), lock, [], null);
    }
    const parsed = parseState(text);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    if (parsed.kind === 'newer') {
      throw new StateDirError(`${file} was written by a newer telepi (state version ${parsed.version}; this one reads ${stateVersion}); `
        + 'upgrade telepi (git pull && sudo ./install.sh). The file was left as it is');
    }
    if (parsed.kind === 'unreadable') {
      const aside = `${file}.corrupt-${stamp}`;
      try {
        await rename(file, aside);
        log.warn(`${file} ${parsed.problem}; moved it to ${aside} and started with no subscriptions`);
      } catch (error) {
        log.warn(`${file} ${parsed.problem}, and it cannot be moved aside (${diskProblem(error)}); started with no subscriptions`);
      }
      return new StateStore(file, freshState(), lock, [], null);
    }
    if (parsed.setAside.length === 0) return new StateStore(file, parsed.state, lock, [], null);
    const asideFile = path.join(path.dirname(file), `state.rejected-${stamp}.json`);
    try {
      await writeFileAtomic(asideFile, asideText(file, parsed.setAside));
    } catch (error) {
      // Kept aside by the first write that succeeds, before state.json loses them; their chats are not told.
      for (const entry of parsed.setAside) log.warn(`${file}: ${entry.where} skipped (${entry.reason}); it stays in the file, as ${diskProblem(error)}`);
      const store = new StateStore(file, parsed.state, lock, [], null);
      store.#pendingAside = { file: asideFile, entries: parsed.setAside };
      return store;
    }
    for (const entry of parsed.setAside) log.warn(`${file}: ${entry.where} set aside (${entry.reason}); kept in ${asideFile}`);
    const store = new StateStore(file, parsed.state, lock, parsed.setAside, asideFile);
    // Written back without them, so the next start neither sets them aside nor tells their chats again.
    await store.update(() => undefined).catch((error: unknown) => log.warn(`could not rewrite ${file}: ${describeError(error)}`));
    return store;
  }

  /** The current state, frozen: what is on disk. Change it through update(). */
  get state(): Readonly<AppState> {
    return this.#state;
  }

  /**
   * Queues `mutator`: when its turn comes it runs on a copy of the state, the copy is written, and only
   * once the write is on disk does `state` become the copy. Updates run in call order, their writes never
   * interleave. Rejects, leaving `state` as it was, when the mutator throws, the result is invalid, or the
   * write fails (a StateWriteError, whose userMessage a chat can show).
   */
  update(mutator: Mutator): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`the state store of ${this.file} is closed`));
    const run = this.#writes.then(() => this.#apply(mutator));
    // The chain continues past a failed update; the failure reaches this update's caller alone.
    this.#writes = run.catch(() => undefined);
    return run;
  }

  async #apply(mutator: Mutator): Promise<void> {
    const draft = structuredClone(this.#state) as AppState;
    mutator(draft);
    const problem = stateProblem(draft);
    if (problem !== null) throw new Error(`state update rejected: ${problem}`);
    const aside = this.#pendingAside;
    try {
      if (aside !== null) {
        await writeFileAtomic(aside.file, asideText(this.file, aside.entries));
        this.#pendingAside = null;
      }
      await writeFileAtomic(this.file, `${JSON.stringify(draft, null, 2)}\n`);
    } catch (error) {
      this.#saveProblem = diskProblem(error);
      throw new StateWriteError(this.file, error);
    }
    this.#saveProblem = null;
    this.#state = deepFreeze(draft);
  }

  /** Why settings cannot be saved now (the last write failed), or null. */
  get saveProblem(): string | null {
    return this.#saveProblem;
  }

  /** Resolves when every queued write has finished (successfully or not). */
  flush(): Promise<void> {
    return this.#writes;
  }

  /** Finishes the queued writes and gives the folder's lock back; later updates reject. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    const lock = this.#lock;
    this.#lock = null;
    await lock?.release();
  }
}

/**
 * The set-aside file's text. An entry nested too deep to stringify (a damaged or hand-made file) is
 * kept as a note instead: otherwise the write, retried before every save, would fail forever.
 */
function asideText(from: string, entries: readonly SetAside[]): string {
  const note = (entry: SetAside) => ({ ...entry, entry: `(not kept: ${shown(entry.entry)})` });
  const keepable = entries.map((entry) => {
    try {
      JSON.stringify([[[entry.entry]]], null, 2);
      return entry;
    } catch {
      return note(entry);
    }
  });
  try {
    return `${JSON.stringify({ from, entries: keepable }, null, 2)}\n`;
  } catch {
    return `${JSON.stringify({ from, entries: entries.map(note) }, null, 2)}\n`;
  }
}

// Says which of the two is wrong in one line, instead of a stack trace from mkdir or readFile.
async function prepareDir(dir: string, file: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new StateDirError(`${dir} (or a folder above it) is a file, not a folder; point TELEPI_STATE_DIR at a folder`);
    throw new StateDirError(`cannot create ${dir}: ${diskProblem(error)}`);
  }
  const info = await stat(file).catch(() => null);
  if (info?.isDirectory() === true) throw new StateDirError(`${file} is a folder, not a file; move it away (telepi writes its state there)`);
}

// A SIGKILL between open and rename leaves a temp file behind: ours are the only ones with these names.
async function removeStaleTempFiles(dir: string, log: Logger): Promise<void> {
  for (const name of await readdir(dir)) {
    const stateTemp = name.startsWith(`.${fileName}.`) && name.endsWith(tempSuffix);
    const lockTemp = name.startsWith(`.${lockFileName}.`) && !isRunning(Number(name.split('.')[3]));
    if (stateTemp || lockTemp) {
      await unlink(path.join(dir, name)).catch(() => undefined);
      log.debug(`removed ${name}, left by an interrupted write`);
    }
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
