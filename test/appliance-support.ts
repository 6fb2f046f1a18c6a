// An appliance wired to fakes at the lowest seams: the emulator for Telegram, a register-level I2C bus
// for the BME280, fake rpicam-still/rpicam-vid/upnpc executables on PATH, a fake GPIO line factory,
// and fake clocks for the wall (report schedules) and the monotonic time (stream TTL).

import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Bme280 } from '../hardware/bme280.js';
import { StillCamera, StreamAwareCamera } from '../hardware/camera.js';
import { GpioLed, PirSensor } from '../hardware/gpio.js';
import { ReopeningSensor, type Hardware } from '../hardware/index.js';
import { UpnpcPortMapper } from '../hardware/portmap.js';
import { MjpegProcessSource } from '../hardware/stream.js';
import { Appliance, type ApplianceOptions } from '../src/app/appliance.js';
import type { Config } from '../src/app/config.js';
import type { BotApiEmulator } from '../src/emulator/index.js';
import { memoryLogger } from '../src/log.js';
import { FakeClock } from './fakes/clock.js';
import { FAKE_BIN, fakeCameraTools, type FakeCameraControl, type FakeCameraTools } from './fakes/camera-tools.js';
import { fakeGpioFactory } from './fakes/gpio.js';
import { FakeBme280, FakeI2cBus } from './fakes/i2c-bus.js';
import { harness, TOKEN } from './support.js';

export const OWNER = 1001;
export const USER = 2002;
export const STRANGER = 3003;

// The BMP280 datasheet's worked example, with typical humidity trimming.
export const calibration = {
  digT1: 27504, digT2: 26435, digT3: -1000,
  digP1: 36477, digP2: -10685, digP3: 3024, digP4: 2855, digP5: 140, digP6: -7, digP7: 15500, digP8: -14600, digP9: 6000,
  digH1: 75, digH2: 362, digH3: 0, digH4: 313, digH5: 50, digH6: 30,
};
export const raw = { adcT: 519888, adcP: 415148, adcH: 30000 };

export interface FakeRouterState {
  mode?: string;
  mappings?: Record<string, { leaseSeconds: number }>;
  runs?: Array<{ argv: string[] }>;
}

export interface ApplianceRig {
  emu: BotApiEmulator;
  log: ReturnType<typeof memoryLogger>;
  app: Appliance;
  bus: FakeI2cBus;
  chip: FakeBme280;
  tools: FakeCameraTools;
  gpio: ReturnType<typeof fakeGpioFactory>;
  wall: FakeClock;
  mono: FakeClock;
  stateDir: string;
  config: Config;
  router(): FakeRouterState;
  setRouter(state: FakeRouterState): void;
  /** Stops this appliance, lets `downMs` pass, and starts another on the same state and devices. */
  restart(downMs?: number): Promise<Appliance>;
  /** How many times the hardware was touched: I2C operations, camera runs, upnpc runs. */
  hardwareCalls(): number;
}

export interface RigOptions {
  router?: FakeRouterState;
  camera?: FakeCameraControl;
  ttlMs?: number;
  stateDir?: string;
  /** Settings beyond the rig's, e.g. { cameraInGroups: true }. */
  config?: Partial<Config>;
  /** Appliance options beyond the rig's, e.g. a short stopDeadlineMs or cameraTiming. */
  app?: Partial<ApplianceOptions>;
}

export async function applianceRig(t: TestContext, options: RigOptions = {}): Promise<ApplianceRig> {
  const h = await harness(t);
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'telepi-app-')));
  const tools = fakeCameraTools(['rpicam-still', 'rpicam-vid'], options.camera);
  symlinkSync(join(FAKE_BIN, 'upnpc'), join(tools.env.PATH as string, 'upnpc'));
  const routerFile = join(tools.env.HOME as string, '.fake-upnpc.json');
  const setRouter = (state: FakeRouterState) => writeFileSync(routerFile, JSON.stringify(state));
  setRouter(options.router ?? {});
  const router = () => JSON.parse(readFileSync(routerFile, 'utf8')) as FakeRouterState;

  const bus = new FakeI2cBus();
  const chip = new FakeBme280({ calibration }).queueRaw(raw);
  bus.attach(0x76, chip);
  const gpio = fakeGpioFactory();
  const wall = new FakeClock();
  const mono = new FakeClock(0);
  const noSleep = async () => {};
  const stream = new MjpegProcessSource({ env: tools.env, framerate: 30 });
  const hardware: Hardware = {
    kind: 'custom',
    // Each open gets its own view of the bus, as openBme280 opens /dev/i2c-1 afresh on a Pi.
    climate: new ReopeningSensor('BME280 at 0x76 on i2c-1', () => Bme280.open(busView(bus), 0x76, { sleep: noSleep })),
    camera: new StreamAwareCamera(new StillCamera({ env: tools.env, captureDelayMs: 1 }), stream),
    stream,
    portMapper: new UpnpcPortMapper({ env: tools.env }),
    motion: await PirSensor.open({ bcm: 17, factory: gpio, base: 512, now: () => mono.now() }),
    led: await GpioLed.open({ bcm: 27, factory: gpio, base: 512 }),
    problems: [],
    close: async () => {
      await stream.stop();
    },
  };
  const config: Config = {
    token: TOKEN, apiRoot: h.emu.apiRoot, owners: [OWNER], users: [USER], hardware: 'real',
    stateDir, stateDirSource: 'TELEPI_STATE_DIR', bme280: { bus: 1, address: 0x76 },
    stream: { port: 0, externalPort: 54321, ttlMs: options.ttlMs ?? 3_600_000 },
    gpio: { pirLine: 17, ledLine: 27 }, motionCooldownMs: 60_000, logLevel: 'debug', ...options.config,
  };
  const start = () => Appliance.start({
    config, hardware, log: h.log, clock: wall, monotonic: mono, listenHost: '127.0.0.1', lanAddress: () => '127.0.0.1',
    polling: { timeoutSeconds: 1, requestMarginMs: 500, backoffInitialMs: 5, backoffCapMs: 50, stopDeadlineMs: 1000 },
    ...options.app,
  });
  let app = await start();
  t.after(async () => {
    await app.stop();
    tools.cleanup();
    if (options.stateDir === undefined) await rm(stateDir, { recursive: true, force: true });
  });
  const rig: ApplianceRig = {
    emu: h.emu, log: h.log, bus, chip, tools, gpio, wall, mono, stateDir, config, router, setRouter,
    get app() {
      return app;
    },
    restart: async (downMs = 0) => {
      await app.stop();
      await rig.wall.advanceAsync(downMs);
      app = await start();
      return app;
    },
    hardwareCalls: () => bus.log.length + tools.runs().length + (router().runs?.length ?? 0),
  };
  return rig;
}

/** The bus as a fresh open of /dev/i2c-1: closing it does not close the shared fake. */
function busView(bus: FakeI2cBus): FakeI2cBus {
  return Object.assign(Object.create(bus) as FakeI2cBus, { close: async () => {} });
}

/** Sends `text` as `userId` in a private chat and resolves with the bot's next reply there. */
export async function ask(rig: ApplianceRig, text: string, userId = OWNER, chatId = userId): Promise<string> {
  const before = rig.emu.sentMessages(chatId).length;
  rig.emu.pushText(text, { chatId, userId });
  const start = performance.now();
  while (rig.emu.sentMessages(chatId).length === before) {
    if (performance.now() - start > 10_000) throw new Error(`no reply to ${text} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const message = rig.emu.sentMessages(chatId)[before];
  return message !== undefined && 'text' in message ? (message.text ?? '') : '[non-text]';
}
