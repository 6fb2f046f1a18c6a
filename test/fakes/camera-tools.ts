// Puts chosen fake camera tools (test/fakes/bin) on a private PATH, with a private HOME that steers them.
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FAKE_BIN = fileURLToPath(new URL('./bin/', import.meta.url));

/** A token-shaped secret the parent has in its environment; no child may see it. */
export const PARENT_TOKEN = '1234567:AAHfakeTokenThatMustNeverReachAChild0';

export type FakeTool = 'rpicam-still' | 'libcamera-still' | 'raspistill' | 'rpicam-vid' | 'raspivid';

/** What $HOME/.fake-camera.json may say; see test/fakes/bin/rpicam-still. */
export interface FakeCameraControl {
  mode?: 'ok' | 'nocamera' | 'hang' | 'garbage' | 'busy';
  delayMs?: number;
  fps?: number;
  dieAfterFrames?: number;
  chunkBytes?: number;
  frameBytes?: number;
}

/** One run of a fake tool, as it recorded itself. */
export interface FakeRun {
  tool: string;
  argv: string[];
  envKeys: string[];
  pid: number;
}

export interface FakeCameraTools {
  /** PATH holds only the chosen tools (and node); HOME steers them; the parent's token is there too. */
  env: NodeJS.ProcessEnv;
  setControl(control: FakeCameraControl): void;
  runs(): FakeRun[];
  cleanup(): void;
}

export function fakeCameraTools(tools: readonly FakeTool[], control: FakeCameraControl = {}): FakeCameraTools {
  const home = mkdtempSync(join(tmpdir(), 'telepi-camera-'));
  const bin = join(home, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node')); // for the fakes' "#!/usr/bin/env node"
  for (const tool of tools) symlinkSync(join(FAKE_BIN, tool), join(bin, tool));
  const record = join(home, 'runs.jsonl');
  const setControl = (next: FakeCameraControl) =>
    writeFileSync(join(home, '.fake-camera.json'), JSON.stringify({ ...next, recordArgsTo: record }));
  setControl(control);
  return {
    env: { PATH: bin, HOME: home, LANG: 'C.UTF-8', TELEGRAM_BOT_TOKEN: PARENT_TOKEN, SECRET_SAUCE: 'x' },
    setControl,
    runs: () => {
      try {
        return readFileSync(record, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as FakeRun);
      } catch {
        return [];
      }
    },
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
