// A stand-in BME280 for the demo and the benchmarks: an indoor day (cooler and damper at night,
// warmest mid-afternoon), weather-like pressure drift, and a little noise from a seeded generator.
import type { ClimateReading, ClimateSensor } from '../types.js';

export interface SimulatedClimateOptions {
  /** Seeds the noise: the same seed and the same clock give the same readings (default 1). */
  seed?: number;
  /** The wall clock in ms, for the time of day (default Date.now). */
  now?: () => number;
  /** How long a read takes, like a forced-mode conversion (default 10 ms; 0 answers at once). */
  latencyMs?: number;
  /** Called on each read; an Error it returns fails that read (to rehearse a loose wire). */
  fail?: () => Error | null;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A ClimateSensor whose values follow the clock: about 19–23 °C, 40–55 %RH, 1013 ± 8 hPa. */
export class SimulatedClimateSensor implements ClimateSensor {
  readonly description = 'simulated BME280';
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly latencyMs: number;
  private readonly fail: () => Error | null;
  private closed = false;

  constructor(options: SimulatedClimateOptions = {}) {
    this.random = mulberry32(options.seed ?? 1);
    this.now = options.now ?? Date.now;
    this.latencyMs = options.latencyMs ?? 10;
    this.fail = options.fail ?? (() => null);
  }

  async read(): Promise<ClimateReading> {
    if (this.closed) throw new Error('the simulated BME280 is closed');
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const failure = this.fail();
    if (failure) throw failure;

    const t = this.now();
    const date = new Date(t);
    const hourOfDay = date.getHours() + date.getMinutes() / 60 + date.getSeconds() / 3600;
    // Warmest at 15:00 and coldest at 03:00; relative humidity moves the other way.
    const day = Math.sin((2 * Math.PI * (hourOfDay - 9)) / 24);
    // Weather fronts over about five days, plus the small twice-daily atmospheric tide.
    const weather = Math.sin((2 * Math.PI * t) / (5 * DAY_MS));
    const tide = Math.sin((2 * Math.PI * t) / (12 * HOUR_MS));

    const temperature = 21 + 1.8 * day + this.noise(0.08);
    const humidity = 47.5 - 6 * day + this.noise(0.6);
    const pressure = 1013 + 6.5 * weather + 0.8 * tide + this.noise(0.05);
    return {
      temperature: round(clamp(temperature, 19, 23), 2),
      humidity: round(clamp(humidity, 40, 55), 2),
      pressure: round(clamp(pressure, 1005, 1021), 2),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Roughly normal noise within ±`amplitude` (the mean of three uniforms). */
  private noise(amplitude: number): number {
    return ((this.random() + this.random() + this.random()) / 3 - 0.5) * 2 * amplitude;
  }
}

/** A small, fast 32-bit PRNG with good spread; plenty for sensor noise. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
