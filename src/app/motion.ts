// Motion alerts: on each PIR trigger, a photo to the owners, at most one per cooldown.

import type { Camera, MotionSensor } from '../../hardware/types.js';
import { describeError, type Logger } from '../log.js';
import type { Clock } from './scheduler.js';
import type { StateStore } from './state.js';

export interface MotionWatcherOptions {
  sensor: MotionSensor | null;
  camera: Camera;
  cooldownMs: number;
  store: StateStore;
  /** Monotonic, for the cooldown. */
  clock: Pick<Clock, 'now'>;
  /** Sends the photo to the owners. */
  alert: (jpeg: Buffer) => Promise<void>;
  log: Logger;
}

export class MotionWatcher {
  private unsubscribe: (() => void) | undefined;
  private lastAlertMs = -Infinity;
  private busy = false;

  constructor(private readonly options: MotionWatcherOptions) {}

  get available(): boolean {
    return this.options.sensor !== null;
  }

  get enabled(): boolean {
    return this.unsubscribe !== undefined;
  }

  /** Re-arms the alerts if they were on before a restart. */
  resume(): void {
    if (this.options.store.state.motion.enabled) this.arm();
  }

  /** Turns alerts on or off, persisted; false when there is no motion sensor to turn on. */
  async setEnabled(on: boolean): Promise<boolean> {
    if (on && !this.available) return false;
    await this.options.store.update((state) => {
      state.motion = { enabled: on };
    });
    if (on) this.arm();
    else this.disarm();
    return true;
  }

  stop(): void {
    this.disarm();
  }

  private arm(): void {
    const sensor = this.options.sensor;
    if (sensor === null || this.unsubscribe !== undefined) return;
    this.unsubscribe = sensor.onMotion(() => void this.onMotion());
  }

  private disarm(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private async onMotion(): Promise<void> {
    const now = this.options.clock.now();
    if (this.busy || now - this.lastAlertMs < this.options.cooldownMs) return;
    this.busy = true;
    this.lastAlertMs = now;
    try {
      await this.options.alert(await this.options.camera.capture());
    } catch (error) {
      this.options.log.warn(`motion alert failed: ${describeError(error)}`);
    } finally {
      this.busy = false;
    }
  }
}
