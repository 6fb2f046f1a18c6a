// The hardware layer's front door: the device seams and a factory for real or simulated devices.
// Every driver is imported only when it is needed, so a bot that never touches a device never loads it.

import type { Camera, ClimateReading, ClimateSensor, FrameSource, Led, MotionSensor, PortMapper } from './types.js';

export type * from './types.js';

export interface Hardware {
  readonly kind: 'real' | 'simulated' | 'custom';
  climate: ClimateSensor;
  /** Stills; while the stream runs, a still is the stream's next frame (one camera process at a time). */
  camera: Camera;
  stream: FrameSource;
  /** null when port mapping is not available (the simulation): the appliance gives the LAN link. */
  portMapper: PortMapper | null;
  motion: MotionSensor | null;
  led: Led | null;
  /** Devices that were configured but could not be opened, with the reason (for /status and doctor). */
  problems: string[];
  close(): Promise<void>;
}

export interface HardwareOptions {
  kind: 'real' | 'simulated';
  bme280?: { bus: number; address: number };
  /** BCM line numbers; null or undefined when not wired. */
  pirGpio?: number | null;
  ledGpio?: number | null;
  motionDebounceMs?: number;
  /** Still photos' size; default the camera's (DEFAULT_PHOTO_SIZE in camera.ts). */
  photoSize?: { width: number; height: number };
  /** The environment child processes are started from (scrubbed of the token before they see it). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Seeds the simulated climate's noise. */
  seed?: number;
}

/**
 * A climate sensor that opens the real one on first use and again after any failure, so a sensor
 * wired after start-up, or one that drops off the bus for a while, comes back without a restart.
 */
export class ReopeningSensor implements ClimateSensor {
  private sensor: Promise<ClimateSensor> | undefined;

  constructor(
    readonly description: string,
    private readonly open: () => Promise<ClimateSensor>,
  ) {}

  async read(): Promise<ClimateReading> {
    const pending = (this.sensor ??= this.open());
    const forget = () => {
      if (this.sensor === pending) this.sensor = undefined;
    };
    let sensor: ClimateSensor;
    try {
      sensor = await pending;
    } catch (error) {
      forget();
      throw error;
    }
    try {
      return await sensor.read();
    } catch (error) {
      forget();
      await sensor.close().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    const pending = this.sensor;
    this.sensor = undefined;
    const sensor = await pending?.catch(() => undefined);
    await sensor?.close();
  }
}

export async function createHardware(options: HardwareOptions): Promise<Hardware> {
  return options.kind === 'simulated' ? createSimulated(options) : createReal(options);
}

async function createSimulated(options: HardwareOptions): Promise<Hardware> {
  const [{ SimulatedClimateSensor }, { SimulatedCamera }, { SimulatedStream }, { StreamAwareCamera }] = await Promise.all([
    import('./simulated/climate.js'), import('./simulated/camera.js'), import('./simulated/stream.js'), import('./camera.js'),
  ]);
  const still = new SimulatedCamera();
  const stream = new SimulatedStream({ camera: still, log: options.log });
  const climate = new SimulatedClimateSensor({ seed: options.seed });
  return {
    kind: 'simulated',
    climate,
    camera: new StreamAwareCamera(still, stream),
    stream,
    portMapper: null,
    motion: null,
    led: null,
    problems: [],
    close: async () => {
      await stream.stop();
      await climate.close();
    },
  };
}

async function createReal(options: HardwareOptions): Promise<Hardware> {
  const [{ openBme280 }, { StillCamera, StreamAwareCamera }, { MjpegProcessSource }, { UpnpcPortMapper }] = await Promise.all([
    import('./bme280.js'), import('./camera.js'), import('./stream.js'), import('./portmap.js'),
  ]);
  const log = options.log ?? (() => {});
  const { bus, address } = options.bme280 ?? { bus: 1, address: 0x76 };
  const climate = new ReopeningSensor(`BME280 at 0x${address.toString(16)} on i2c-${bus}`, () => openBme280(bus, address));
  const stream = new MjpegProcessSource({ env: options.env, log });
  const problems: string[] = [];
  const { motion, led } = await openGpio(options, problems, log);
  return {
    kind: 'real',
    climate,
    camera: new StreamAwareCamera(new StillCamera({ env: options.env, defaults: options.photoSize }), stream),
    stream,
    portMapper: new UpnpcPortMapper({ env: options.env, log }),
    motion,
    led,
    problems,
    close: async () => {
      await stream.stop();
      await Promise.allSettled([climate.close(), motion?.close(), led?.close()]);
    },
  };
}

/** Opens the PIR and the LED if configured; a line that fails is reported, not fatal. */
async function openGpio(options: HardwareOptions, problems: string[], log: (line: string) => void): Promise<{ motion: MotionSensor | null; led: Led | null }> {
  if (options.pirGpio == null && options.ledGpio == null) return { motion: null, led: null };
  const { PirSensor, GpioLed } = await import('./gpio.js');
  const attempt = async <T>(what: string, open: () => Promise<T>): Promise<T | null> => {
    try {
      return await open();
    } catch (error) {
      const reason = `${what}: ${error instanceof Error ? error.message : String(error)}`;
      problems.push(reason);
      log(reason);
      return null;
    }
  };
  const pir = options.pirGpio;
  const ledLine = options.ledGpio;
  const motion = pir == null ? null : await attempt('PIR sensor', () => PirSensor.open({ bcm: pir, debounceMs: options.motionDebounceMs, onError: (e) => log(`PIR sensor: ${e.message}`) }));
  const led = ledLine == null ? null : await attempt('LED', () => GpioLed.open({ bcm: ledLine }));
  return { motion, led };
}
