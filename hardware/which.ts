// Finds an executable on PATH the way a shell would, without running one.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export interface FoundExecutable {
  /** The name that matched, e.g. "rpicam-still". */
  name: string;
  /** Its absolute path, e.g. "/usr/bin/rpicam-still". */
  path: string;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `name` in `env.PATH`, or null. Relative PATH entries (and "") are skipped. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    // a relative entry would resolve against our working directory: never run a tool from there
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** The first of `names` (in order of preference) found on PATH, or null when none is. */
export function findExecutable(names: readonly string[], env: NodeJS.ProcessEnv = process.env): FoundExecutable | null {
  for (const name of names) {
    const path = which(name, env);
    if (path !== null) return { name, path };
  }
  return null;
}
