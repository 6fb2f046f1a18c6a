// The appliance's persistent state (subscriptions, motion alerts, the port mapping) in <stateDir>/state.json.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from '../log.js';
import { describeError } from '../log.js';

export interface Subscription {
  chatId: number;
  intervalMs: number;
  /** Wall-clock ms of the schedule's phase origin: reports fall on anchorMs + k·intervalMs. */
  anchorMs: number;
}

export interface AppState {
  version: 1;
  subscriptions: Subscription[];
  motion: { enabled: boolean };
  portMapping: { externalPort: number; createdAtMs: number } | null;
}

const fileName = 'state.json';
const tempSuffix = '.tmp';

function freshState(): AppState {
  return { version: 1, subscriptions: [], motion: { enabled: false }, portMapping: null };
}

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

/** Owns state.json: reads it once at start, then every update rewrites it atomically, one write at a time. */
export class StateStore {
  readonly file: string;
  #state: AppState;
  #writes: Promise<void> = Promise.resolve();

  private constructor(file: string, state: AppState) {
    this.file = file;
    this.#state = deepFreeze(state);
  }

  /**
   * Opens (creating with mode 0700) the state directory and reads state.json. A file that does not parse
   * or has an unknown shape is moved aside to state.json.corrupt-<timestamp> with a warning, and telepi
   * starts fresh: a bad file must not stop the service in a restart loop.
   */
  static async open(dir: string, log: Logger): Promise<StateStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, fileName);
    await removeStaleTempFiles(dir, log);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`cannot read ${file}: ${describeError(error)}; check the state directory's permissions`);
      }
      log.info(`no state in ${file} yet; starting fresh`);
      return new StateStore(file, freshState());
    }
    const { state, problem } = parseState(text);
    if (state !== null) return new StateStore(file, state);
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(file, aside);
    log.warn(`${file} ${problem}; moved it to ${aside} and started with no subscriptions`);
    return new StateStore(file, freshState());
  }

  /** The current state, frozen: change it through update(). */
  get state(): Readonly<AppState> {
    return this.#state;
  }

  /**
   * Applies `mutator` to a copy of the state now (so calls take effect in call order), then queues a write.
   * Writes never interleave; the file ends with the last update's state. Rejects if the mutator throws
   * (the state is left unchanged) or if the write fails (the state in memory keeps the change).
   */
  update(mutator: (draft: AppState) => void): Promise<void> {
    const draft = structuredClone(this.#state) as AppState;
    try {
      mutator(draft);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const problem = shapeProblem(draft);
    if (problem !== null) return Promise.reject(new Error(`state update rejected: ${problem}`));
    this.#state = deepFreeze(draft);
    const text = `${JSON.stringify(draft, null, 2)}\n`;
    const write = this.#writes.then(() => writeFileAtomic(this.file, text));
    // The chain continues past a failed write; the failure reaches this update's caller alone.
    this.#writes = write.catch(() => undefined);
    return write.catch((error: unknown) => {
      throw new Error(`cannot write ${this.file}: ${describeError(error)}`, { cause: error });
    });
  }

  /** Resolves when every queued write has finished (successfully or not). */
  flush(): Promise<void> {
    return this.#writes;
  }
}

// A SIGKILL between open and rename leaves a temp file behind: ours are the only ones with this name.
async function removeStaleTempFiles(dir: string, log: Logger): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(`.${fileName}.`) && name.endsWith(tempSuffix)) {
      await unlink(path.join(dir, name)).catch(() => undefined);
      log.debug(`removed ${name}, left by an interrupted write`);
    }
  }
}

function parseState(text: string): { state: AppState; problem?: undefined } | { state: null; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { state: null, problem: text.trim() === '' ? 'is empty' : 'is not valid JSON' };
  }
  const problem = shapeProblem(value);
  if (problem !== null) return { state: null, problem: `has an unknown shape (${problem})` };
  const state = value as AppState;
  // Keep only the known fields, so stray ones are not carried forward.
  return {
    state: {
      version: 1,
      subscriptions: state.subscriptions.map(({ chatId, intervalMs, anchorMs }) => ({ chatId, intervalMs, anchorMs })),
      motion: { enabled: state.motion.enabled },
      portMapping: state.portMapping === null
        ? null
        : { externalPort: state.portMapping.externalPort, createdAtMs: state.portMapping.createdAtMs },
    },
  };
}

/** Says what is wrong with a would-be AppState, or null when it is one. */
function shapeProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'not an object';
  if (value.version !== 1) return `version ${JSON.stringify(value.version)}, expected 1`;
  if (!Array.isArray(value.subscriptions)) return 'subscriptions is not a list';
  const chats = new Set<number>();
  for (const sub of value.subscriptions as unknown[]) {
    if (!isRecord(sub) || !Number.isSafeInteger(sub.chatId) || !Number.isSafeInteger(sub.intervalMs)
      || (sub.intervalMs as number) <= 0 || !Number.isFinite(sub.anchorMs)) {
      return `bad subscription ${JSON.stringify(sub)}`;
    }
    if (chats.has(sub.chatId as number)) return `chat ${String(sub.chatId)} subscribed twice`;
    chats.add(sub.chatId as number);
  }
  if (!isRecord(value.motion) || typeof value.motion.enabled !== 'boolean') return 'motion.enabled is not a boolean';
  const mapping = value.portMapping;
  if (mapping !== null && (!isRecord(mapping) || !Number.isInteger(mapping.externalPort)
    || (mapping.externalPort as number) < 1 || (mapping.externalPort as number) > 65535
    || !Number.isFinite(mapping.createdAtMs))) {
    return 'portMapping is neither null nor { externalPort, createdAtMs }';
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
