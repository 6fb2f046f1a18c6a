// Still photos from the Pi camera: node-raspistill builds the request, and an executor of ours runs
// whichever tool this OS has (rpicam-still, libcamera-still or raspistill), translating its flags.
import type { IRaspistillExecutor, ICameraOptions } from 'node-raspistill';
import { CommandError, runCommand } from './child.js';
import { isCompleteJpeg } from './jpeg.js';
import { nextFrame } from './stream.js';
import type { Camera, CaptureOptions, FrameSource } from './types.js';
import { findExecutable, type FoundExecutable } from './which.js';

/** In order of preference: Bookworm and later, Bullseye's libcamera era, the legacy stack. */
export const STILL_TOOLS = ['rpicam-still', 'libcamera-still', 'raspistill'] as const;

const INSTALL_HINT = 'install rpicam-apps (apt install rpicam-apps)';

/**
 * About 2 MP: without a size rpicam-still shoots the whole sensor (12 MP on a Camera Module 3), which
 * can fail for memory on a 512 MB Pi. 16:9 like the stream and the Camera Module 3's sensor, whose
 * binned 2304x1296 mode sees the whole field; Telegram shrinks larger photos anyway.
 */
export const DEFAULT_PHOTO_SIZE = { width: 1920, height: 1080 } as const;

// raspistill flag → [rpicam-still flag, takes a value]; HARDWARE.md has the table (-h is help in rpicam!).
const RPICAM_FLAGS: Record<string, [string, boolean]> = {
  '-w': ['--width', true],
  '-h': ['--height', true],
  '-rot': ['--rotation', true],
  '-hf': ['--hflip', false],
  '-vf': ['--vflip', false],
  '-ss': ['--shutter', true],
  '-t': ['-t', true],
  '-n': ['-n', false],
  '-q': ['-q', true],
  '-e': ['-e', true],
  '-o': ['-o', true],
};

/** Translates the raspistill arguments node-raspistill builds into rpicam-still's (libcamera-still's). */
export function toRpicamStillArgs(raspistillArgs: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raspistillArgs.length; i++) {
    const flag = raspistillArgs[i] ?? '';
    const mapped = RPICAM_FLAGS[flag];
    if (mapped === undefined) throw new Error(`camera option ${flag} has no rpicam-still equivalent; leave it out`);
    const [rpicamFlag, takesValue] = mapped;
    out.push(rpicamFlag);
    if (takesValue) out.push(raspistillArgs[++i] ?? '');
  }
  return out;
}

/** The last few hundred characters of a tool's stderr, for an error message. */
function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 400 ? `…${trimmed.slice(-400)}` : trimmed;
}

interface RunSettings {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  killGraceMs: number;
}

/**
 * node-raspistill's executor seam. Its own executor runs `raspistill` and fails on any stderr output,
 * but rpicam-still logs to stderr on every run: we judge by exit code and JPEG markers instead.
 */
class StillToolExecutor implements IRaspistillExecutor {
  private readonly abort = new AbortController();

  constructor(
    private readonly tool: FoundExecutable,
    private readonly settings: RunSettings,
  ) {}

  async spawnAndGetImage(raspistillArgs: string[]): Promise<Buffer> {
    const { tool, settings } = this;
    const args = tool.name === 'raspistill' ? raspistillArgs : toRpicamStillArgs(raspistillArgs);
    let result;
    try {
      result = await runCommand(tool.path, args, {
        env: settings.env, timeoutMs: settings.timeoutMs, killGraceMs: settings.killGraceMs, signal: this.abort.signal,
      });
    } catch (error) {
      if (error instanceof CommandError && error.code === 'ETIMEDOUT') {
        throw new Error(`${tool.name} took no photo within ${settings.timeoutMs} ms and was killed (SIGTERM, then ` +
          `SIGKILL): is another process holding the camera? ${tail(error.stderrTail)}`.trim(), { cause: error });
      }
      throw new Error(`${tool.name} (${tool.path}) failed: ${(error as Error).message}`, { cause: error });
    }
    const stderr = tail(result.stderrTail);
    if (result.code !== 0) {
      const how = result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
      throw new Error(`${tool.name} ${how}: ${stderr || '(no stderr)'}. Check the camera cable, that the camera is ` +
        'enabled (camera_auto_detect=1 in config.txt), and that no other process is using it');
    }
    if (!isCompleteJpeg(result.stdout)) {
      throw new Error(`${tool.name} exited 0 but wrote ${result.stdout.length} bytes that are not a complete JPEG` +
        `${stderr ? `: ${stderr}` : ''}`);
    }
    return result.stdout;
  }

  exec(): Promise<Buffer> {
    return Promise.reject(new Error('StillCamera captures to memory only (noFileSave); exec is not used'));
  }

  spawnAndGetImages(): Promise<void> {
    return Promise.reject(new Error('StillCamera does not do timelapses'));
  }

  killProcess(): void {
    this.abort.abort(new Error('capture cancelled'));
  }
}

export interface StillCameraOptions {
  /** The environment to look for tools in (PATH) and to pass on, scrubbed of the bot token. */
  env?: NodeJS.ProcessEnv;
  /** Kill the camera process after this long. Default 20 000 ms. */
  timeoutMs?: number;
  /** Options for every capture, overridden by capture()'s own. The size defaults to DEFAULT_PHOTO_SIZE. */
  defaults?: CaptureOptions;
  /** How long the camera meters before the shot (-t). rpicam-still's own default is 5 s. Default 1000 ms. */
  captureDelayMs?: number;
  /** Between SIGTERM and SIGKILL when a capture times out. Default 1000 ms. */
  killGraceMs?: number;
}

/** The real camera, one still at a time (the camera can be opened by one process only). */
export class StillCamera implements Camera {
  private readonly env: NodeJS.ProcessEnv;
  private readonly timeoutMs: number;
  private readonly defaults: CaptureOptions;
  private readonly captureDelayMs: number;
  private readonly killGraceMs: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: StillCameraOptions = {}) {
    this.env = options.env ?? process.env;
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.defaults = { ...DEFAULT_PHOTO_SIZE, ...options.defaults };
    this.captureDelayMs = options.captureDelayMs ?? 1000;
    this.killGraceMs = options.killGraceMs ?? 1000;
  }

  /** The tool a capture would run now, e.g. "rpicam-still", or "no camera tool". */
  get description(): string {
    return this.findTool()?.name ?? 'no camera tool';
  }

  /** Takes one photo. Captures asked for at once run one after the other. */
  capture(options: CaptureOptions = {}): Promise<Buffer> {
    const run = this.queue.then(() => this.captureNow({ ...this.defaults, ...options }));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private findTool(): FoundExecutable | null {
    return findExecutable(STILL_TOOLS, this.env);
  }

  private async captureNow(options: CaptureOptions): Promise<Buffer> {
    const tool = this.findTool();
    if (tool === null) {
      throw new Error(`no camera tool found: ${INSTALL_HINT}; looked for ${STILL_TOOLS.join(', ')} on PATH`);
    }
    if (options.rotation !== undefined && options.rotation !== 0 && options.rotation !== 180) {
      throw new Error(`camera rotation must be 0 or 180 (rpicam-still supports no other), got ${String(options.rotation)}`);
    }
    const { Raspistill } = await import('node-raspistill');
    const executor = new StillToolExecutor(tool, {
      env: this.env, timeoutMs: options.timeoutMs ?? this.timeoutMs, killGraceMs: this.killGraceMs,
    });
    const camera = new Raspistill(this.raspistillOptions(options), undefined, executor);
    return camera.takePhoto();
  }

  private raspistillOptions(options: CaptureOptions): ICameraOptions {
    const raspistill: ICameraOptions = { noFileSave: true, noPreview: true, encoding: 'jpg', time: this.captureDelayMs };
    if (options.width !== undefined) raspistill.width = options.width;
    if (options.height !== undefined) raspistill.height = options.height;
    if (options.quality !== undefined) raspistill.quality = options.quality;
    if (options.rotation !== undefined) raspistill.rotation = options.rotation;
    if (options.hflip !== undefined) raspistill.horizontalFlip = options.hflip;
    if (options.vflip !== undefined) raspistill.verticalFlip = options.vflip;
    return raspistill;
  }
}

export interface StreamAwareCameraOptions {
  /** While the stream runs, wait this long for its next frame before giving up. Default 5000 ms. */
  frameTimeoutMs?: number;
}

/**
 * A camera that never fights the stream for the device: while `stream` runs, a capture is the
 * stream's next frame (at the stream's size; capture options do not apply), else `still` takes it.
 */
export class StreamAwareCamera implements Camera {
  private readonly frameTimeoutMs: number;

  constructor(
    private readonly still: Camera,
    private readonly stream: FrameSource,
    options: StreamAwareCameraOptions = {},
  ) {
    this.frameTimeoutMs = options.frameTimeoutMs ?? 5000;
  }

  get description(): string {
    return `${this.still.description} (frames from the stream while it runs)`;
  }

  async capture(options?: CaptureOptions): Promise<Buffer> {
    if (!this.stream.running) return this.still.capture(options);
    // The next frame, not the cached one: that may be from before a stall or a restart of the camera.
    const frame = await nextFrame(this.stream, this.frameTimeoutMs);
    if (frame !== null) return frame;
    // Never a still here: the stream's process holds the camera, or is letting go of it right now.
    throw new Error(`the stream holds the camera but sent no frame within ${this.frameTimeoutMs} ms, so no photo ` +
      'could be taken: stop the stream and try again; the log has the camera process\'s error');
  }
}
