// A frame source for the demo: SimulatedCamera's pictures at a steady rate, no camera process.
import { HubFrameSource, timerSchedule, type Schedule } from '../stream.js';
import type { Camera } from '../types.js';
import { SimulatedCamera } from './camera.js';

export interface SimulatedStreamOptions {
  /** Frames per second. Default 4 (jpeg-js encodes in pure JavaScript). */
  framerate?: number;
  width?: number;
  height?: number;
  /** Where frames come from. Default a SimulatedCamera of `width` x `height`. */
  camera?: Camera;
  /** Schedules the next frame; injected by tests. Default setTimeout. */
  schedule?: Schedule;
  log?: (line: string) => void;
}

/** Captures a frame, publishes it, and schedules the next one after 1/framerate s; keeps the latest. */
export class SimulatedStream extends HubFrameSource {
  private readonly camera: Camera;
  private readonly intervalMs: number;
  private readonly schedule: Schedule;
  private readonly log: (line: string) => void;
  private cancelNext: (() => void) | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  /** Bumped by start(), so a frame still in flight from before a stop() cannot start a second loop. */
  private generation = 0;

  constructor(options: SimulatedStreamOptions = {}) {
    super(options.log ?? (() => {}));
    this.camera = options.camera ?? new SimulatedCamera({ width: options.width ?? 640, height: options.height ?? 360 });
    this.intervalMs = 1000 / (options.framerate ?? 4);
    this.log = options.log ?? (() => {});
    this.schedule = options.schedule ?? timerSchedule;
  }

  /** Starts producing frames; the first one right away. */
  start(): Promise<void> {
    if (this.isRunning) return Promise.resolve();
    this.isRunning = true;
    this.generation += 1;
    this.tick(this.generation);
    return Promise.resolve();
  }

  /** Stops producing frames and resolves once a frame being made is done. */
  async stop(): Promise<void> {
    this.isRunning = false;
    this.cancelNext?.();
    this.cancelNext = null;
    await this.inFlight;
    this.hub.clear();
  }

  private tick(generation: number): void {
    this.cancelNext = null;
    this.inFlight = this.camera.capture().then(
      (frame) => {
        if (this.isRunning) this.hub.publish(frame);
      },
      (error: unknown) => this.log(`simulated camera failed: ${(error as Error).message}`),
    ).finally(() => {
      if (this.isRunning && generation === this.generation) {
        this.cancelNext = this.schedule(() => this.tick(generation), this.intervalMs);
      }
    });
  }
}
