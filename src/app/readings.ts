// The one-way flow of readings: sensor → ReadingSource → outlets (history, alerts, MQTT). The sensor is
// read once per tick for every outlet due, never once per outlet.

import type { ClimateReading, ClimateSensor } from '../../hardware/types.js';
import { describeError, type Logger } from '../log.js';
import { formatDuration } from './duration.js';
import type { Clock } from './scheduler.js';

/** One sample: a reading, or the sensor's failure (a gap, never a zero). atMs is wall-clock ms since the epoch. */
export type Sample = { atMs: number; reading: ClimateReading; error?: undefined } | { atMs: number; reading?: undefined; error: Error };
export type Outlet = (sample: Sample) => void | Promise<void>;

export interface ReadingSourceOptions {
  sensor: ClimateSensor;
  clock: Clock;
  log: Logger;
  /** How long one sensor read may take before its sample is an error (a stuck I2C bus); default 10 s. */
  readTimeoutMs?: number;
}

interface Subscriber {
  everyMs: number;
  outlet: Outlet;
  /** Wall-clock ms of the next grid point this outlet is due at. */
  dueMs: number;
  /** The outlet's call still running, if any: a slow outlet skips ticks instead of piling calls up. */
  running: Promise<void> | undefined;
  /** Time of the last sample delivered: a read still running at the next tick is shared, never delivered twice. */
  lastAtMs: number;
}

// setTimeout fires at once for delays above 2^31-1 ms: longer waits are taken in steps.
const maxTimerMs = 2 ** 31 - 1;
const defaultReadTimeoutMs = 10_000;

/** The first multiple of everyMs (counted from the epoch) strictly after nowMs. */
export function nextGridPoint(nowMs: number, everyMs: number): number {
  return (Math.floor(nowMs / everyMs) + 1) * everyMs;
}

/**
 * Reads the sensor on the wall-clock grid of each subscriber's interval (a 1 m outlet at :00 of every
 * minute, a 15 m one at :00, :15, …), one read per tick shared by all outlets due then.
 * - Ticks missed while the machine slept are skipped, never replayed in a burst.
 * - A timer that wakes before its wall-clock time (the clock jumped back) waits again.
 * - An outlet that throws or rejects is logged; one still busy at its next tick skips that tick.
 * - A read still running when the next tick comes (a slow sensor) is shared, not doubled on the bus.
 * - A read that does not answer within readTimeoutMs is an error sample (a gap); the next tick starts a
 *   fresh read, and the stuck read's late answer is dropped. Logged once per outage and once on recovery.
 */
export class ReadingSource {
  readonly #sensor: ClimateSensor;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #readTimeoutMs: number;
  readonly #subscribers = new Set<Subscriber>();
  #latest: Sample | undefined;
  #reading: Promise<Sample> | undefined;
  #timer: unknown;
  #timerDueMs: number | undefined;
  #started = false;
  /** When the first read of the current outage was given up on (wall-clock ms), or undefined while the sensor answers. */
  #outageSinceMs: number | undefined;
  /** Ends the read in flight with an error sample, for stop. */
  #abandonRead: (() => void) | undefined;

  constructor(options: ReadingSourceOptions) {
    this.#sensor = options.sensor;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#readTimeoutMs = options.readTimeoutMs ?? defaultReadTimeoutMs;
    if (!(this.#readTimeoutMs > 0)) throw new RangeError(`ReadingSource: readTimeoutMs ${this.#readTimeoutMs} is not a positive number of ms`);
  }

  /**
   * Calls outlet with a sample about every `everyMs`, aligned to the wall-clock grid; returns an
   * unsubscribe function. @throws RangeError for an interval that is not a positive whole number of ms.
   */
  subscribe(everyMs: number, outlet: Outlet): () => void {
    if (!Number.isSafeInteger(everyMs) || everyMs <= 0) throw new RangeError(`ReadingSource.subscribe: ${everyMs} is not an interval in ms`);
    const subscriber: Subscriber = { everyMs, outlet, dueMs: nextGridPoint(this.#clock.now(), everyMs), running: undefined, lastAtMs: -Infinity };
    this.#subscribers.add(subscriber);
    this.#arm();
    return () => {
      this.#subscribers.delete(subscriber);
      this.#arm();
    };
  }

  /** The last sample taken (by a tick or by readNow), if any. */
  latest(): Sample | undefined {
    return this.#latest;
  }

  /** Reads now (for /now): one sensor read shared by concurrent callers; updates latest(); does not call outlets. */
  readNow(): Promise<Sample> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /** The sensor as /now and reports see it: each read is readNow's, shared with a tick under way and kept as latest(). */
  asSensor(): ClimateSensor {
    return {
      description: this.#sensor.description,
      read: async () => {
        const sample = await this.readNow();
        if (sample.error !== undefined) throw sample.error;
        return sample.reading;
      },
      close: () => this.#sensor.close(),
    };
  }

  start(): void {
    this.#started = true;
    this.#arm();
  }

  /**
   * Stops the ticks, gives up on a read in flight (its tick gets a gap: a stuck bus must not hold the
   * shutdown for the read bound) and waits for the outlets' calls still running (so history flushes what it took).
   */
  async stop(): Promise<void> {
    this.#started = false;
    this.#arm();
    this.#abandonRead?.();
    await this.#reading;
    await Promise.all([...this.#subscribers].map((s) => s.running));
  }

  /** One sensor read, bounded by readTimeoutMs: resolves with a reading or an error sample, never rejects. */
  #read(): Promise<Sample> {
    const atMs = this.#clock.now();
    return new Promise<Sample>((resolve) => {
      let done = false;
      const finish = (sample: Sample, end: 'answered' | 'timed out' | 'stopped') => {
        if (done) return; // the stuck read's late answer: its tick already had its gap
        done = true;
        this.#clock.clearTimeout(timer);
        this.#abandonRead = undefined;
        if (end !== 'stopped') this.#noteOutage(sample, end === 'timed out');
        this.#latest = sample;
        resolve(sample);
      };
      const timer = this.#clock.setTimeout(() => {
        const seconds = this.#readTimeoutMs / 1000;
        const error = new Error(`${this.#sensor.description} did not answer within ${seconds} s (a stuck I2C bus? check the wiring, then run telepi doctor)`);
        finish({ atMs, error }, 'timed out');
      }, this.#readTimeoutMs);
      this.#abandonRead = () => finish({ atMs, error: new Error(`telepi stopped before ${this.#sensor.description} answered`) }, 'stopped');
      (async () => this.#sensor.read())().then(
        (reading) => finish({ atMs, reading }, 'answered'),
        (error: unknown) => finish({ atMs, error: error instanceof Error ? error : new Error(describeError(error)) }, 'answered'),
      );
    });
  }

  /** Logs the first read given up on, and the first one answered after, not every tick in between. */
  #noteOutage(sample: Sample, timedOut: boolean): void {
    if (timedOut) {
      if (this.#outageSinceMs !== undefined) return;
      this.#outageSinceMs = sample.atMs;
      this.#log.warn(`readings: ${sample.error?.message}; its readings are gaps until it answers`);
      return;
    }
    if (this.#outageSinceMs === undefined) return;
    const lastedMs = Math.max(sample.atMs - this.#outageSinceMs, 0);
    this.#outageSinceMs = undefined;
    const how = sample.error === undefined ? 'a reading' : `an error: ${describeError(sample.error)}`;
    this.#log.info(`readings: ${this.#sensor.description} answers again, with ${how}, after ${formatDuration(lastedMs)} without an answer`);
  }

  /** One timer for the earliest due subscriber; none when stopped or empty. */
  #arm(): void {
    let dueMs = Infinity;
    if (this.#started) for (const s of this.#subscribers) dueMs = Math.min(dueMs, s.dueMs);
    if (dueMs === this.#timerDueMs) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDueMs = undefined;
    if (dueMs === Infinity) return;
    const delayMs = Math.min(Math.max(dueMs - this.#clock.now(), 0), maxTimerMs);
    this.#timerDueMs = dueMs;
    this.#timer = this.#clock.setTimeout(() => this.#wake(), delayMs);
  }

  #wake(): void {
    this.#timer = undefined;
    this.#timerDueMs = undefined;
    const nowMs = this.#clock.now();
    const due = [...this.#subscribers].filter((s) => s.dueMs <= nowMs);
    for (const s of due) {
      const missed = Math.floor((nowMs - s.dueMs) / s.everyMs);
      if (missed > 0) this.#log.info(`readings: skipped ${missed} missed tick(s) of ${formatDuration(s.everyMs)}; the clock moved on`);
      s.dueMs = nextGridPoint(nowMs, s.everyMs);
    }
    this.#arm();
    if (due.length === 0) return;
    void this.readNow().then((sample) => {
      for (const s of due) this.#deliver(s, sample);
    });
  }

  #deliver(subscriber: Subscriber, sample: Sample): void {
    if (!this.#subscribers.has(subscriber) || sample.atMs <= subscriber.lastAtMs) return;
    subscriber.lastAtMs = sample.atMs;
    if (subscriber.running !== undefined) {
      this.#log.warn(`readings: an outlet is still busy after ${formatDuration(subscriber.everyMs)}; it skips this reading`);
      return;
    }
    const call = (async () => subscriber.outlet(sample))()
      .catch((error: unknown) => this.#log.warn(`readings: an outlet failed: ${describeError(error)}`))
      .finally(() => {
        subscriber.running = undefined;
      });
    subscriber.running = call;
  }
}
