// A BME280 / BMP280 as an I2C slave on the fake bus, behaving as the datasheet (BST-BME280-DS002) says:
// chip id, trimming registers, soft reset, forced conversions, ctrl_hum latched by ctrl_meas.
import type { Bme280Calibration, Bme280Raw } from '../../hardware/bme280.js';
import type { FakeI2cDevice } from './i2c-bus.js';

const DEFAULT_RAW: Bme280Raw = { adcT: 519888, adcP: 415148, adcH: 27000 };

export interface FakeBme280Options {
  calibration: Bme280Calibration;
  /** 0x60 (BME280, the default) or 0x56–0x58 (BMP280: no humidity registers); anything else to test rejection. */
  chipId?: number;
  /** Status reads that see `measuring` (bit 3) after a forced-mode write (default 1); Infinity never finishes. */
  measuringReads?: number;
  /** Status reads that see `im_update` (bit 0) after a soft reset (default 2); Infinity never finishes. */
  resetBusyReads?: number;
}

/**
 * A BME280 as an I2C slave: reads auto-increment from the register pointer; writes are
 * (register, value) pairs, as §6.2.1 says (no auto-increment on write).
 */
export class FakeBme280 implements FakeI2cDevice {
  readonly regs = new Uint8Array(256);
  /** Every register write, in order. */
  readonly writes: Array<{ register: number; value: number }> = [];
  /** Each forced conversion, with the ctrl_hum value latched by its ctrl_meas write. */
  readonly conversions: Array<{ ctrlHum: number; ctrlMeas: number }> = [];
  readonly hasHumidity: boolean;
  private readonly queue: Bme280Raw[] = [];
  private pointer = 0;
  private latchedCtrlHum = 0;
  private measuringLeft = 0;
  private resetBusyLeft = 0;
  private lastRaw: Bme280Raw = DEFAULT_RAW;

  constructor(readonly options: FakeBme280Options) {
    this.hasHumidity = (options.chipId ?? 0x60) === 0x60;
    this.powerOn();
  }

  /** Queues raw ADC values for the next conversions; once empty, the last values repeat. */
  queueRaw(...samples: Bme280Raw[]): this {
    this.queue.push(...samples);
    return this;
  }

  write(bytes: readonly number[]): void {
    if (bytes.length === 0) return;
    this.pointer = bytes[0]!;
    for (let i = 0; i + 1 < bytes.length; i += 2) this.writeRegister(bytes[i]!, bytes[i + 1]!);
  }

  read(length: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < length; i++) out.push(this.readRegister((this.pointer + i) & 0xff));
    this.pointer = (this.pointer + length) & 0xff;
    return out;
  }

  private powerOn(): void {
    this.regs.fill(0);
    this.regs[0xd0] = this.options.chipId ?? 0x60;
    encodeCalibration(this.options.calibration, this.regs, this.hasHumidity);
    this.softReset();
    this.resetBusyLeft = 0;
  }

  private softReset(): void {
    for (const reg of [0xf2, 0xf3, 0xf4, 0xf5]) this.regs[reg] = 0;
    // §5.3: data registers reset to 0x80 0x00 0x00 — the "skipped" value.
    this.regs.set([0x80, 0, 0, 0x80, 0, 0], 0xf7);
    if (this.hasHumidity) this.regs.set([0x80, 0], 0xfd);
    this.latchedCtrlHum = 0;
    this.measuringLeft = 0;
    this.resetBusyLeft = this.options.resetBusyReads ?? 2;
  }

  private readRegister(reg: number): number {
    if (!this.exists(reg)) return 0;
    if (reg !== 0xf3) return this.regs[reg]!;
    const status = (this.measuringLeft > 0 ? 0x08 : 0) | (this.resetBusyLeft > 0 ? 0x01 : 0);
    if (this.resetBusyLeft > 0) this.resetBusyLeft--;
    if (this.measuringLeft > 0 && --this.measuringLeft === 0) this.finishConversion();
    return status;
  }

  private writeRegister(reg: number, value: number): void {
    this.writes.push({ register: reg, value });
    if (reg === 0xe0) {
      if (value === 0xb6) this.softReset();
    } else if (reg === 0xf2) {
      if (this.hasHumidity) this.regs[0xf2] = value & 0x07;
    } else if (reg === 0xf4) {
      this.regs[0xf4] = value;
      this.latchedCtrlHum = this.regs[0xf2]!; // §5.4.3: ctrl_hum takes effect only now
      if ((value & 0x03) === 0x01 || (value & 0x03) === 0x02) this.startConversion(value);
    } else if (reg === 0xf5) {
      this.regs[0xf5] = value;
    }
  }

  private startConversion(ctrlMeas: number): void {
    this.conversions.push({ ctrlHum: this.latchedCtrlHum, ctrlMeas });
    this.measuringLeft = this.options.measuringReads ?? 1;
    if (this.measuringLeft === 0) this.finishConversion();
  }

  private finishConversion(): void {
    const raw = this.queue.shift() ?? this.lastRaw;
    this.lastRaw = raw;
    const ctrlMeas = this.regs[0xf4]!;
    // A skipped measurement (oversampling 000) leaves the "skipped" value, §4.2.3 / §5.4.3.
    const adcP = (ctrlMeas >> 2) & 0x07 ? raw.adcP : 0x80000;
    const adcT = (ctrlMeas >> 5) & 0x07 ? raw.adcT : 0x80000;
    this.regs.set([adcP >> 12, (adcP >> 4) & 0xff, (adcP & 0x0f) << 4, adcT >> 12, (adcT >> 4) & 0xff, (adcT & 0x0f) << 4], 0xf7);
    if (this.hasHumidity) {
      const adcH = this.latchedCtrlHum & 0x07 ? raw.adcH ?? 0x8000 : 0x8000;
      this.regs.set([adcH >> 8, adcH & 0xff], 0xfd);
    }
    this.regs[0xf4] = ctrlMeas & ~0x03; // back to sleep mode, §3.3.3
  }

  private exists(reg: number): boolean {
    if (this.hasHumidity) return true;
    // The BMP280 has no humidity block: no 0xA1, 0xE1–0xE7, 0xF2, 0xFD–0xFE.
    return !(reg === 0xa1 || (reg >= 0xe1 && reg <= 0xe7) || reg === 0xf2 || reg >= 0xfd);
  }
}

/** A BMP280 (chip id 0x58 unless told): temperature and pressure only. */
export class FakeBmp280 extends FakeBme280 {
  constructor(options: FakeBme280Options) {
    super({ ...options, chipId: options.chipId ?? 0x58 });
  }
}

/** Writes a calibration into the trimming registers as the factory does (§4.2.2, table 16). */
export function encodeCalibration(cal: Bme280Calibration, regs: Uint8Array, withHumidity = true): void {
  const tp = Buffer.alloc(24);
  const fields = [cal.digT1, cal.digT2, cal.digT3, cal.digP1, cal.digP2, cal.digP3, cal.digP4, cal.digP5,
    cal.digP6, cal.digP7, cal.digP8, cal.digP9];
  fields.forEach((v, i) => {
    if (i === 0 || i === 3) { range(v, 0, 0xffff, i === 0 ? 'dig_T1' : 'dig_P1'); tp.writeUInt16LE(v, i * 2); }
    else { range(v, -32768, 32767, 'dig_T2..P9'); tp.writeInt16LE(v, i * 2); }
  });
  regs.set(tp, 0x88);
  if (!withHumidity) return;
  const { digH1, digH2, digH3, digH4, digH5, digH6 } = cal;
  if (digH1 === null || digH2 === null || digH3 === null || digH4 === null || digH5 === null || digH6 === null) {
    throw new Error('a BME280 needs H1–H6 in its calibration');
  }
  range(digH1, 0, 255, 'dig_H1'); range(digH2, -32768, 32767, 'dig_H2'); range(digH3, 0, 255, 'dig_H3');
  range(digH4, -2048, 2047, 'dig_H4'); range(digH5, -2048, 2047, 'dig_H5'); range(digH6, -128, 127, 'dig_H6');
  regs[0xa1] = digH1;
  regs[0xe1] = digH2 & 0xff;
  regs[0xe2] = (digH2 >> 8) & 0xff;
  regs[0xe3] = digH3;
  regs[0xe4] = (digH4 >> 4) & 0xff;
  regs[0xe5] = (digH4 & 0x0f) | ((digH5 & 0x0f) << 4);
  regs[0xe6] = (digH5 >> 4) & 0xff;
  regs[0xe7] = digH6 & 0xff;
}

function range(value: number, min: number, max: number, name: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} = ${value} is outside ${min}..${max}`);
}
