// The Bosch BME280 (temperature, humidity, pressure) and BMP280 (no humidity) over I2C, in forced
// mode: one conversion per read, so the sensor idles between reads and does not warm itself.
// Section numbers refer to the BME280 datasheet (BST-BME280-DS002); the BMP280 shares the T/P parts.
import { access } from 'node:fs/promises';
import type { ClimateReading, ClimateSensor } from './types.js';

// Registers, §5.3 (memory map).
const REG_CALIB_TP = 0x88; // 0x88–0xA1: T1..P9 (24 bytes), 0xA0 reserved, 0xA1 H1
const REG_CALIB_H = 0xe1; // 0xE1–0xE7: H2..H6
const REG_CHIP_ID = 0xd0; // §5.4.1
const REG_RESET = 0xe0; // §5.4.2
const REG_CTRL_HUM = 0xf2; // §5.4.3
const REG_STATUS = 0xf3; // §5.4.4
const REG_CTRL_MEAS = 0xf4; // §5.4.5
const REG_CONFIG = 0xf5; // §5.4.6
const REG_DATA = 0xf7; // §5.4.7–5.4.9: press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb

const CHIP_ID_BME280 = 0x60;
const CHIP_IDS_BMP280 = [0x56, 0x57, 0x58];
const RESET_COMMAND = 0xb6;
const STATUS_MEASURING = 0x08;
const STATUS_IM_UPDATE = 0x01;
const OVERSAMPLING_X1 = 0b001;
const MODE_FORCED = 0b01;
// Raw values the chip reports for a skipped (or never run) conversion, §4.2.3 / §5.4.7.
const SKIPPED_20BIT = 0x80000;
const SKIPPED_16BIT = 0x8000;
// §9.1: t_measure,max = 1.25 + 2.3·osrs_t + (2.3·osrs_p + 0.575) + (2.3·osrs_h + 0.575) ms = 9.3 ms at x1.
const MEASURE_MAX_MS = 10;
const POLL_MS = 2;
const MEASURE_POLLS = 10; // gives up 10 + 10·2 = 30 ms after starting: three times the datasheet maximum
const STARTUP_MS = 2; // §1 (start-up time): the chip NACKs for up to 2 ms after a reset
const RESET_POLLS = 10;
// Operating range, §1 (table 1): 300–1100 hPa.
const PRESSURE_MIN_HPA = 300;
const PRESSURE_MAX_HPA = 1100;

/** Trimming parameters, §4.2.2 (table 16). The humidity fields are null on a BMP280. */
export interface Bme280Calibration {
  digT1: number; digT2: number; digT3: number;
  digP1: number; digP2: number; digP3: number; digP4: number; digP5: number;
  digP6: number; digP7: number; digP8: number; digP9: number;
  digH1: number | null; digH2: number | null; digH3: number | null;
  digH4: number | null; digH5: number | null; digH6: number | null;
}

/** Uncompensated ADC values from 0xF7–0xFE; `adcH` is null on a BMP280. */
export interface Bme280Raw { adcT: number; adcP: number; adcH: number | null }

/**
 * Decodes the trimming registers with the datasheet's signedness (§4.2.2, table 16): `tp` holds
 * 0x88–0xA1 (24 bytes suffice on a BMP280), `h` holds 0xE1–0xE7 or is null on a BMP280.
 * H2 is s16, H4/H5 are 12-bit signed values sharing 0xE5's nibbles, H6 is s8.
 */
export function parseCalibration(tp: Buffer, h: Buffer | null): Bme280Calibration {
  const humidity = h === null
    ? { digH1: null, digH2: null, digH3: null, digH4: null, digH5: null, digH6: null }
    : {
      digH1: tp.readUInt8(0xa1 - REG_CALIB_TP),
      digH2: h.readInt16LE(0),
      digH3: h.readUInt8(2),
      digH4: h.readInt8(3) * 16 + (h.readUInt8(4) & 0x0f),
      digH5: h.readInt8(5) * 16 + (h.readUInt8(4) >> 4),
      digH6: h.readInt8(6),
    };
  return {
    digT1: tp.readUInt16LE(0), digT2: tp.readInt16LE(2), digT3: tp.readInt16LE(4),
    digP1: tp.readUInt16LE(6), digP2: tp.readInt16LE(8), digP3: tp.readInt16LE(10),
    digP4: tp.readInt16LE(12), digP5: tp.readInt16LE(14), digP6: tp.readInt16LE(16),
    digP7: tp.readInt16LE(18), digP8: tp.readInt16LE(20), digP9: tp.readInt16LE(22),
    ...humidity,
  };
}

/**
 * Turns raw ADC values into °C, %RH and hPa: t_fine with the datasheet's integer formula (§4.2.3),
 * pressure and humidity with its double-precision formulas (§8.1).
 * Humidity is clamped to 0–100 %RH and pressure to the 300–1100 hPa operating range.
 */
export function compensate(cal: Bme280Calibration, raw: Bme280Raw): ClimateReading {
  // §4.2.3, temperature in 32-bit integers: t_fine exactly as Bosch's reference code computes it, so
  // the pressure and humidity formulas below see the value they were written for. Shifts are floor
  // divisions, as C's arithmetic shifts are, but without JavaScript's wrap at 32 bits.
  const adcT = raw.adcT;
  const tVar1 = Math.floor((Math.floor(adcT / 8) - cal.digT1 * 2) * cal.digT2 / 2048);
  const tDiff = Math.floor(adcT / 16) - cal.digT1;
  const tVar2 = Math.floor(Math.floor(tDiff * tDiff / 4096) * cal.digT3 / 16384);
  const tFine = tVar1 + tVar2;
  const temperature = tFine / 5120;

  // §8.1, pressure (Pa).
  let var1 = tFine / 2 - 64000;
  let var2 = var1 * var1 * cal.digP6 / 32768;
  var2 = var2 + var1 * cal.digP5 * 2;
  var2 = var2 / 4 + cal.digP4 * 65536;
  var1 = (cal.digP3 * var1 * var1 / 524288 + cal.digP2 * var1) / 524288;
  var1 = (1 + var1 / 32768) * cal.digP1;
  if (var1 === 0) throw new Error('pressure compensation divides by zero: the calibration data (dig_P1) is corrupt');
  let p = 1048576 - raw.adcP;
  p = (p - var2 / 4096) * 6250 / var1;
  var1 = cal.digP9 * p * p / 2147483648;
  var2 = p * cal.digP8 / 32768;
  p = p + (var1 + var2 + cal.digP7) / 16;
  const pressure = clamp(p / 100, PRESSURE_MIN_HPA, PRESSURE_MAX_HPA);

  return { temperature, humidity: raw.adcH === null ? null : compensateHumidity(cal, raw.adcH, tFine), pressure };
}

// §8.1, humidity (%RH).
function compensateHumidity(cal: Bme280Calibration, adcH: number, tFine: number): number {
  const { digH1, digH2, digH3, digH4, digH5, digH6 } = cal;
  if (digH1 === null || digH2 === null || digH3 === null || digH4 === null || digH5 === null || digH6 === null) {
    throw new Error('humidity compensation needs the BME280 humidity calibration (H1–H6)');
  }
  let h = tFine - 76800;
  h = (adcH - (digH4 * 64 + digH5 / 16384 * h))
    * (digH2 / 65536 * (1 + digH6 / 67108864 * h * (1 + digH3 / 67108864 * h)));
  h = h * (1 - digH1 * h / 524288);
  return clamp(h, 0, 100);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** An error from the sensor or the bus; `code` is the bus errno code when there was one. */
export class Bme280Error extends Error {
  constructor(message: string, readonly code?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Bme280Error';
  }
}

const NO_DEVICE_CODES = new Set(['EIO', 'ENXIO', 'EREMOTEIO']);

/** Rewrites an error from i2c-bus into one that says which bus, which address and what to check. */
function busError(err: unknown, busNumber: number, address: number): Error {
  if (err instanceof Bme280Error) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const at = `${hex(address)} on i2c-${busNumber}`;
  let message: string;
  if (code !== undefined && NO_DEVICE_CODES.has(code)) {
    message = `no device at ${at} (${code}): is I2C enabled (raspi-config), is the sensor wired to pins 3 (SDA) and 5 (SCL), and is its address ${hex(address)} (0x76 with SDO to GND, 0x77 with SDO to 3.3 V)?`;
  } else if (code === 'ENOENT') {
    message = `/dev/i2c-${busNumber} does not exist: enable I2C (sudo raspi-config nonint do_i2c 0) and reboot`;
  } else if (code === 'EACCES' || code === 'EPERM') {
    message = `permission denied on /dev/i2c-${busNumber}: run telepi as a member of the i2c group`;
  } else if (code === 'EBUSY') {
    message = `${at} is claimed by a kernel driver: remove the dtoverlay=i2c-sensor line from config.txt (or unload bmp280_i2c)`;
  } else {
    message = `sensor at ${at}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return new Bme280Error(message, code, { cause: err });
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Bme280Options {
  /** The bus number, for messages (default 1: pins 3 and 5 of the 40-pin header). */
  busNumber?: number;
  /** Waits between status polls; tests pass one that does not wait. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The part of i2c-bus's `PromisifiedBus` the driver uses, declared here so that telepi's published types
 * need no @types/i2c-bus (a consumer with skipLibCheck off would otherwise have to install it).
 */
export interface I2cBus {
  readByte(address: number, command: number): Promise<number>;
  writeByte(address: number, command: number, byte: number): Promise<void>;
  readI2cBlock(address: number, command: number, length: number, buffer: Buffer): Promise<{ bytesRead: number; buffer: Buffer }>;
  close(): Promise<void>;
}

/** What the driver needs of the i2c-bus module. */
export interface I2cBusModule {
  openPromisified(busNumber: number): Promise<I2cBus>;
}

/** A BME280 or BMP280 on an open i2c-bus `PromisifiedBus`. */
export class Bme280 implements ClimateSensor {
  readonly description: string;
  /** True on a BME280, false on a BMP280 (which reads humidity as null). */
  readonly hasHumidity: boolean;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly bus: I2cBus,
    readonly address: number,
    readonly busNumber: number,
    readonly chipId: number,
    readonly calibration: Bme280Calibration,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    this.hasHumidity = chipId === CHIP_ID_BME280;
    this.description = `${this.hasHumidity ? 'BME280' : 'BMP280'} at ${hex(address)} on i2c-${busNumber}`;
  }

  /**
   * Checks the chip id, soft-resets the chip, waits for it to load its trimming data and reads it.
   * Rejects with a `Bme280Error` naming the bus and address when no (or another) chip answers.
   */
  static async open(bus: I2cBus, address = 0x76, options: Bme280Options = {}): Promise<Bme280> {
    const busNumber = options.busNumber ?? 1;
    const sleep = options.sleep ?? realSleep;
    const at = `${hex(address)} on i2c-${busNumber}`;
    try {
      const chipId = await bus.readByte(address, REG_CHIP_ID);
      if (chipId !== CHIP_ID_BME280 && !CHIP_IDS_BMP280.includes(chipId)) {
        throw new Bme280Error(`found chip id ${hex(chipId)} at ${at}, expected 0x60 (BME280) or 0x56–0x58 (BMP280): is another device at this address?`);
      }
      const hasHumidity = chipId === CHIP_ID_BME280;

      await bus.writeByte(address, REG_RESET, RESET_COMMAND);
      await sleep(STARTUP_MS);
      if (!await pollUntilClear(bus, address, STATUS_IM_UPDATE, RESET_POLLS, sleep)) {
        throw new Bme280Error(`sensor at ${at} is still copying its calibration (status im_update set) ${STARTUP_MS + RESET_POLLS * POLL_MS} ms after a soft reset: power-cycle it and check its 3.3 V supply`);
      }

      const tp = Buffer.alloc(hasHumidity ? 26 : 24);
      await bus.readI2cBlock(address, REG_CALIB_TP, tp.length, tp);
      let h: Buffer | null = null;
      if (hasHumidity) {
        h = Buffer.alloc(7);
        await bus.readI2cBlock(address, REG_CALIB_H, h.length, h);
      }
      const calibration = parseCalibration(tp, h);
      if (calibration.digT1 === 0 || calibration.digP1 === 0) {
        throw new Bme280Error(`sensor at ${at} has blank calibration data (dig_T1 or dig_P1 is 0): the chip may be damaged or a clone`);
      }
      // §5.4.6: filter off; written in sleep mode, where config writes are not ignored.
      await bus.writeByte(address, REG_CONFIG, 0x00);
      return new Bme280(bus, address, busNumber, chipId, calibration, sleep);
    } catch (err) {
      throw busError(err, busNumber, address);
    }
  }

  /** One forced-mode measurement (about 10 ms): °C, %RH (null on a BMP280), hPa. */
  read(): Promise<ClimateReading> {
    // Reads share the chip's registers: one at a time.
    const reading = this.queue.then(() => this.measure());
    this.queue = reading.catch(() => undefined);
    return reading;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.bus.close();
  }

  /** The raw ADC values of one forced conversion, checked for "measurement skipped". */
  async readRaw(): Promise<Bme280Raw> {
    const { bus, address } = this;
    try {
      // §5.4.3: ctrl_hum takes effect only after the next ctrl_meas write, so it goes first.
      if (this.hasHumidity) await bus.writeByte(address, REG_CTRL_HUM, OVERSAMPLING_X1);
      // §3.3.3, §5.4.5: osrs_t x1, osrs_p x1, forced mode; the chip returns to sleep when done.
      await bus.writeByte(address, REG_CTRL_MEAS, (OVERSAMPLING_X1 << 5) | (OVERSAMPLING_X1 << 2) | MODE_FORCED);
      await this.sleep(MEASURE_MAX_MS);
      if (!await pollUntilClear(bus, address, STATUS_MEASURING, MEASURE_POLLS, this.sleep)) {
        throw new Bme280Error(`${this.description} is still measuring ${MEASURE_MAX_MS + MEASURE_POLLS * POLL_MS} ms after a forced conversion started (the datasheet's maximum is 9.3 ms): check its 3.3 V supply`);
      }
      const data = Buffer.alloc(this.hasHumidity ? 8 : 6);
      await bus.readI2cBlock(address, REG_DATA, data.length, data);
      const adcP = (data[0]! << 12) | (data[1]! << 4) | (data[2]! >> 4);
      const adcT = (data[3]! << 12) | (data[4]! << 4) | (data[5]! >> 4);
      const adcH = this.hasHumidity ? (data[6]! << 8) | data[7]! : null;
      const skipped = [adcT === SKIPPED_20BIT && 'temperature', adcP === SKIPPED_20BIT && 'pressure',
        adcH === SKIPPED_16BIT && 'humidity'].filter(Boolean);
      if (skipped.length > 0) {
        throw new Bme280Error(`${this.description} reported "measurement skipped" for ${skipped.join(', ')} (raw 0x80000/0x8000): the conversion did not run; the chip may have reset (check its 3.3 V supply)`);
      }
      return { adcT, adcP, adcH };
    } catch (err) {
      throw busError(err, this.busNumber, address);
    }
  }

  private async measure(): Promise<ClimateReading> {
    return compensate(this.calibration, await this.readRaw());
  }
}

/** Reads status until `bit` clears; false if it is still set after `polls` reads. */
async function pollUntilClear(bus: I2cBus, address: number, bit: number, polls: number,
  sleep: (ms: number) => Promise<void>): Promise<boolean> {
  for (let i = 0; i <= polls; i++) {
    if ((await bus.readByte(address, REG_STATUS) & bit) === 0) return true;
    if (i < polls) await sleep(POLL_MS);
  }
  return false;
}

/**
 * Opens /dev/i2c-`busNumber` with i2c-bus (loaded only now: it is an optional native addon) and the
 * sensor at `address`. Rejects with a message that says what to install or enable.
 */
export async function openBme280(busNumber: number, address: number, options: Bme280Options & {
  /** Loads i2c-bus; tests replace it. */
  loadI2cBus?: () => Promise<I2cBusModule>;
} = {}): Promise<Bme280> {
  let i2c: I2cBusModule;
  try {
    i2c = await (options.loadI2cBus ?? ((): Promise<I2cBusModule> => import('i2c-bus')))();
  } catch (err) {
    throw new Bme280Error(`the i2c-bus module is not installed or did not build (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): run npm install on the Pi, which needs build-essential and python3`, 'MODULE_NOT_FOUND', { cause: err });
  }
  const device = `/dev/i2c-${busNumber}`;
  try {
    await access(device);
  } catch (err) {
    throw busError(err, busNumber, address);
  }
  const bus = await i2c.openPromisified(busNumber);
  try {
    return await Bme280.open(bus, address, { ...options, busNumber });
  } catch (err) {
    await bus.close().catch(() => undefined);
    throw err;
  }
}
