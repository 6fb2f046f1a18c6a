// The camera as a stream of JPEG frames: rpicam-vid (or raspivid) writing MJPEG to a pipe, kept alive.
import { spawn, type ChildProcess } from 'node:child_process';
import { scrubbedEnv } from './child.js';
import { JpegFrameSplitter } from './jpeg.js';
import type { FrameSource } from './types.js';
import { findExecutable, type FoundExecutable } from './which.js';

/** In order of preference, as for stills. */
export const VIDEO_TOOLS = ['rpicam-vid', 'libcamera-vid', 'raspivid'] as const;

/** Keeps the newest frame and hands each new one to listeners: the part every FrameSource shares. */
export class FrameHub {
  private latest: Buffer | null = null;
  private readonly listeners = new Set<{ listener: (frame: Buffer) => void }>();

  constructor(private readonly log: (line: string) => void = () => {}) {}

  latestFrame(): Buffer | null {
    return this.latest;
  }

  onFrame(listener: (frame: Buffer) => void): () => void {
    const entry = { listener };
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  publish(frame: Buffer): void {
    this.latest = frame;
    for (const entry of this.listeners) {
      try {
        entry.listener(frame);
      } catch (error) {
        this.log(`a frame listener failed: ${(error as Error).message}`);
      }
    }
  }

  clear(): void {
    this.latest = null;
  }
}

/** The source's newest frame, or the next one within `timeoutMs`, or null. */
export function waitForFrame(source: FrameSource, timeoutMs: number): Promise<Buffer | null> {
  const latest = source.latestFrame();
  return latest !== null ? Promise.resolve(latest) : nextFrame(source, timeoutMs);
}

/** The next frame the source publishes after this call (never the one it already has), or null after `timeoutMs`. */
export function nextFrame(source: FrameSource, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const done = (frame: Buffer | null) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(frame);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    const unsubscribe = source.onFrame((frame) => done(frame));
  });
}

/** Schedules `fn` after `delayMs`; returns a function that cancels it. Injected by tests. */
export type Schedule = (fn: () => void, delayMs: number) => () => void;

/** Schedule on setTimeout. */
export const timerSchedule: Schedule = (fn, delayMs) => {
  const timer = setTimeout(fn, delayMs);
  return () => clearTimeout(timer);
};

export interface MjpegProcessSourceOptions {
  width?: number;
  height?: number;
  framerate?: number;
  /** JPEG quality of each frame (rpicam-vid -q). Default 70. */
  quality?: number;
  /** Where to look for the tool (PATH); passed on scrubbed of the bot token. */
  env?: NodeJS.ProcessEnv;
  /** Restart delays after the process dies: doubling from `initial` up to `max`. Default 1 s … 30 s. */
  restartBackoffMs?: { initial: number; max: number };
  /** A process that ran this long before dying restarts after the initial delay again. Default 30 s. */
  healthyRunMs?: number;
  /** Between SIGTERM and SIGKILL in stop(). Default 2000 ms. */
  stopGraceMs?: number;
  /** Frames larger than this are dropped as garbage. Default 4 MiB. */
  maxFrameBytes?: number;
  log?: (line: string) => void;
  schedule?: Schedule;
  /** Monotonic milliseconds. Default performance.now. */
  now?: () => number;
}

function videoArgs(tool: string, o: { width: number; height: number; framerate: number; quality: number }): string[] {
  const size = (w: string, h: string) => [w, String(o.width), h, String(o.height)];
  if (tool === 'raspivid') return ['-t', '0', '-n', '-cd', 'MJPEG', ...size('-w', '-h'), '-fps', String(o.framerate), '-o', '-'];
  // --flush: each frame leaves the pipe as soon as it is encoded, not one frame later with the next write.
  return ['-t', '0', '-n', '--codec', 'mjpeg', ...size('--width', '--height'), '--framerate', String(o.framerate),
    '-q', String(o.quality), '--flush', '-o', '-'];
}

/** The camera's MJPEG output as frames; restarts the process with backoff if it dies while running. */
/** A FrameSource whose frames pass through a FrameHub: the newest frame and the listeners. */
export abstract class HubFrameSource implements FrameSource {
  protected readonly hub: FrameHub;
  protected isRunning = false;

  constructor(log: (line: string) => void) {
    this.hub = new FrameHub(log);
  }

  get running(): boolean {
    return this.isRunning;
  }

  latestFrame(): Buffer | null {
    return this.hub.latestFrame();
  }

  onFrame(listener: (frame: Buffer) => void): () => void {
    return this.hub.onFrame(listener);
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
}

export class MjpegProcessSource extends HubFrameSource {
  private readonly splitter: JpegFrameSplitter;
  private readonly settings: { width: number; height: number; framerate: number; quality: number };
  private readonly env: NodeJS.ProcessEnv;
  private readonly backoff: { initial: number; max: number };
  private readonly log: (line: string) => void;
  private readonly schedule: Schedule;
  private readonly now: () => number;
  private child: ChildProcess | null = null;
  private childExited: Promise<void> = Promise.resolve();
  private cancelRestart: (() => void) | null = null;
  private nextDelayMs: number;
  private startedAtMs = 0;
  private stderrTail = '';
  /** The tool in use, e.g. "rpicam-vid", once started. */
  tool: string | null = null;
  /** Why the process last died, for /status; null while it has not. */
  lastError: string | null = null;
  /** Processes started, restarts included. */
  spawnCount = 0;

  constructor(private readonly options: MjpegProcessSourceOptions = {}) {
    super(options.log ?? (() => {}));
    this.settings = {
      width: options.width ?? 1280, height: options.height ?? 720,
      framerate: options.framerate ?? 15, quality: options.quality ?? 70,
    };
    this.env = options.env ?? process.env;
    this.backoff = options.restartBackoffMs ?? { initial: 1000, max: 30_000 };
    this.nextDelayMs = this.backoff.initial;
    this.log = options.log ?? (() => {});
    this.schedule = options.schedule ?? timerSchedule;
    this.now = options.now ?? (() => performance.now());
    this.splitter = new JpegFrameSplitter((frame) => {
      if (this.isRunning) this.hub.publish(frame);
    }, { maxFrameBytes: options.maxFrameBytes });
  }

  /** Starts the camera process; rejects when no tool is installed or it cannot be spawned. */
  async start(): Promise<void> {
    if (this.isRunning) return;
    const tool = this.findTool();
    this.isRunning = true;
    this.nextDelayMs = this.backoff.initial;
    try {
      await this.spawnProcess(tool);
    } catch (error) {
      this.isRunning = false;
      this.cancelRestart?.(); // the failed spawn's exit handler scheduled one
      this.cancelRestart = null;
      throw error;
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after a grace) and resolves once it has exited. */
  async stop(): Promise<void> {
    this.isRunning = false;
    this.cancelRestart?.();
    this.cancelRestart = null;
    const child = this.child;
    if (child !== null) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => {
        child.kill('SIGKILL');
        child.stdout?.destroy(); // 'close' must not wait for a grandchild holding the pipe
        child.stderr?.destroy();
      }, this.options.stopGraceMs ?? 2000);
      await this.childExited;
      clearTimeout(killTimer);
    }
    this.hub.clear();
    this.splitter.reset();
  }

  private findTool(): FoundExecutable {
    const tool = findExecutable(VIDEO_TOOLS, this.env);
    if (tool === null) {
      throw new Error('no camera video tool found: install rpicam-apps (apt install rpicam-apps); ' +
        `looked for ${VIDEO_TOOLS.join(', ')} on PATH`);
    }
    return tool;
  }

  private spawnProcess(tool: FoundExecutable): Promise<void> {
    this.splitter.reset(); // a dead process's half frame must not merge with the next one's
    this.tool = tool.name;
    this.stderrTail = '';
    this.startedAtMs = this.now();
    this.spawnCount += 1;
    const child = spawn(tool.path, videoArgs(tool.name, this.settings), {
      env: scrubbedEnv(this.env), stdio: ['ignore', 'pipe', 'pipe'], shell: false,
    });
    this.child = child;
    child.stdout.on('data', (chunk: Buffer) => this.splitter.push(chunk));
    // rpicam-vid logs to stderr; drain it or the pipe fills and the camera blocks
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-2000);
    });
    return new Promise((resolve, reject) => {
      this.childExited = new Promise((exited) => {
        child.once('close', (code, signal) => {
          exited();
          this.onExit(child, code === null ? `signal ${signal}` : `code ${code}`);
        });
        child.once('error', (error) => {
          if (child.pid !== undefined) return; // errors of a running child end in 'close'
          exited();
          reject(new Error(`${tool.name} (${tool.path}) could not start: ${error.message}`));
          this.onExit(child, error.message);
        });
      });
      child.once('spawn', () => {
        this.log(`${tool.name} started (pid ${child.pid}): ${this.settings.width}x${this.settings.height} ` +
          `at ${this.settings.framerate} fps`);
        resolve();
      });
    });
  }

  private onExit(child: ChildProcess, how: string): void {
    if (this.child !== child) return;
    this.child = null;
    if (!this.isRunning) return; // stop() asked for it
    const ranMs = this.now() - this.startedAtMs;
    if (ranMs >= (this.options.healthyRunMs ?? 30_000)) this.nextDelayMs = this.backoff.initial;
    const stderr = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
    this.lastError = `${this.tool} exited (${how}) after ${Math.round(ranMs)} ms${stderr ? `: ${stderr}` : ''}`;
    this.scheduleRestart(this.lastError);
  }

  private scheduleRestart(reason: string): void {
    const delayMs = this.nextDelayMs;
    this.nextDelayMs = Math.min(delayMs * 2, this.backoff.max);
    this.log(`${reason}; restarting in ${delayMs} ms`);
    this.cancelRestart = this.schedule(() => {
      this.cancelRestart = null;
      if (this.isRunning) void this.respawn();
    }, delayMs);
  }

  private async respawn(): Promise<void> {
    try {
      await this.spawnProcess(this.findTool());
    } catch (error) {
      // a failed spawn already scheduled its restart through onExit; a missing tool has not
      if (this.child === null && this.cancelRestart === null && this.isRunning) {
        this.lastError = (error as Error).message;
        this.scheduleRestart(this.lastError);
      }
    }
  }
}
