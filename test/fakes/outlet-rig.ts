// An MQTT outlet wired for tests: a real ReadingSource on a fake clock over a sensor the test sets,
// the simulated camera for the Take photo button, and a fake PIR; stopped in teardown.

import type { TestContext } from 'node:test';
import { SimulatedCamera } from '../../hardware/simulated/camera.js';
import type { ClimateReading, ClimateSensor, MotionSensor } from '../../hardware/types.js';
import type { BackoffOptions } from '../../src/app/mqtt/link.js';
import { MqttOutlet } from '../../src/app/mqtt/outlet.js';
import type { MqttConfig } from '../../src/app/mqtt/settings.js';
import { ReadingSource } from '../../src/app/readings.js';
import { systemClock } from '../../src/app/scheduler.js';
import { memoryLogger } from '../../src/log.js';
import { FakeClock } from './clock.js';
import type { Broker } from './mosquitto.js';

/** A sensor that reads whatever the test sets: the outlet's source, not the code under test. */
export function steadySensor(reading: ClimateReading): ClimateSensor & { reading: ClimateReading; reads: number; failure: Error | null } {
  return {
    description: 'test BME280', reading, reads: 0, failure: null,
    async read() {
      this.reads++;
      if (this.failure !== null) throw this.failure;
      return { ...this.reading };
    },
    async close() {},
  };
}

export function pir(): MotionSensor & { trigger(): void } {
  const listeners = new Set<() => void>();
  return {
    onMotion: (listener) => (listeners.add(listener), () => listeners.delete(listener)),
    trigger: () => listeners.forEach((listener) => listener()),
    close: async () => {},
  };
}

export interface RigOptions {
  login?: { username: string; password: string };
  ca?: string;
  backoff?: BackoffOptions;
  keepaliveSeconds?: number;
  motion?: MotionSensor | null;
  humidity?: number | null;
  /** The sensor fails until the test sets sensor.failure to null. */
  failing?: boolean;
  random?: () => number;
}

export async function outletRig(t: TestContext, broker: Broker, options: RigOptions = {}) {
  const log = memoryLogger();
  const wall = new FakeClock();
  const sensor = steadySensor({ temperature: 21.43, humidity: options.humidity === undefined ? 45.21 : options.humidity, pressure: 1013.26 });
  if (options.failing === true) sensor.failure = new Error('I2C read failed');
  const readings = new ReadingSource({ sensor, clock: wall, log });
  readings.start();
  const camera = new SimulatedCamera();
  let captures = 0;
  const config: MqttConfig = {
    url: broker.url, username: options.login?.username ?? null, password: options.login?.password ?? null,
    ca: options.ca ?? null, caPath: null, discoveryPrefix: 'homeassistant', nodeId: 'kitchen', everyMs: 60_000,
  };
  const outlet = await MqttOutlet.start({
    config, readings, motion: options.motion ?? null, model: sensor.description, log, clock: systemClock,
    takePhoto: async () => {
      captures++;
      return camera.capture();
    },
    birthDelayMaxMs: 100, random: options.random, keepaliveSeconds: options.keepaliveSeconds, backoff: options.backoff ?? { initialMs: 50, capMs: 400 },
  });
  t.after(async () => {
    await outlet.stop();
    await readings.stop();
  });
  return { outlet, log, wall, sensor, readings, captures: () => captures };
}

