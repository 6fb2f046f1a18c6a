import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Bme280, compensate, openBme280, parseCalibration, type Bme280Calibration, type Bme280Raw } from '../hardware/bme280.js';
import { mulberry32 } from '../hardware/simulated/climate.js';
import { FakeBme280, FakeBmp280, FakeI2cBus, encodeCalibration } from './fakes/i2c-bus.js';

const noSleep = async () => {};

// ---------------------------------------------------------------------------------------------
// An independent reference: Bosch's integer formulas, BME280 datasheet §4.2.3 (32-bit temperature
// and humidity, 64-bit pressure), in BigInt so that every shift and division behaves as in C.
// Each 32-bit intermediate is checked to fit, so a case the C code would overflow is reported, not
// silently compared.

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
class Overflow extends Error {}
function s32(v: bigint): bigint {
  if (v < INT32_MIN || v > INT32_MAX) throw new Overflow(`int32 overflow: ${v}`);
  return v;
}
function s64(v: bigint): bigint {
  if (v < -(2n ** 63n) || v > 2n ** 63n - 1n) throw new Overflow(`int64 overflow: ${v}`);
  return v;
}

interface Reference {
  temperature: number;
  pressurePa: number;
  humidity: number | null;
  /** The integer code rounds adc_H to half its resolution (the `+ 16384) >> 15`): one such step, in %RH. */
  humidityStep: number;
}

function boschInteger(cal: Bme280Calibration, raw: Bme280Raw): Reference {
  const B = BigInt;
  const adcT = B(raw.adcT);
  const [T1, T2, T3] = [B(cal.digT1), B(cal.digT2), B(cal.digT3)];
  // BME280_compensate_T_int32
  let var1 = s32(s32(s32((adcT >> 3n) - (T1 << 1n)) * T2) >> 11n);
  const d = s32((adcT >> 4n) - T1);
  let var2 = s32(s32(s32(d * d) >> 12n) * T3) >> 14n;
  const tFine = s32(var1 + var2);
  const T = (tFine * 5n + 128n) >> 8n;

  // BME280_compensate_P_int64
  const [P1, P2, P3, P4, P5, P6, P7, P8, P9] =
    [cal.digP1, cal.digP2, cal.digP3, cal.digP4, cal.digP5, cal.digP6, cal.digP7, cal.digP8, cal.digP9].map(B) as
      [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  var1 = tFine - 128000n;
  var2 = s64(var1 * var1 * P6);
  var2 = s64(var2 + ((var1 * P5) << 17n));
  var2 = s64(var2 + (P4 << 35n));
  var1 = s64(((var1 * var1 * P3) >> 8n) + ((var1 * P2) << 12n));
  var1 = s64(((1n << 47n) + var1) * P1) >> 33n;
  assert.notEqual(var1, 0n);
  let p = 1048576n - B(raw.adcP);
  p = s64(s64(s64((p << 31n) - var2) * 3125n) / var1); // C division truncates, as BigInt's does
  var1 = s64(P9 * (p >> 13n) * (p >> 13n)) >> 25n;
  var2 = s64(P8 * p) >> 19n;
  p = ((p + var1 + var2) >> 8n) + (P7 << 4n); // Q24.8 Pa

  // bme280_compensate_H_int32
  let humidity: number | null = null;
  let humidityStep = 0;
  if (raw.adcH !== null) {
    const [H1, H2, H3, H4, H5, H6] = [cal.digH1, cal.digH2, cal.digH3, cal.digH4, cal.digH5, cal.digH6].map((v) => B(v!)) as
      [bigint, bigint, bigint, bigint, bigint, bigint];
    let v = s32(tFine - 76800n);
    const left = s32(s32(s32(s32(B(raw.adcH) << 14n) - s32(H4 << 20n)) - s32(H5 * v)) + 16384n) >> 15n;
    const inner = s32(s32(s32(s32(v * H6) >> 10n) * s32(s32(s32(v * H3) >> 11n) + 32768n)) >> 10n) + 2097152n;
    const right = s32(s32(s32(inner * H2) + 8192n) >> 14n);
    v = s32(left * right);
    humidityStep = Math.abs(Number(right)) / 2 ** 22;
    v = s32(v - s32(s32(s32(s32((v >> 15n) * (v >> 15n)) >> 7n) * H1) >> 4n));
    v = v < 0n ? 0n : v;
    v = v > 419430400n ? 419430400n : v;
    humidity = Number(v >> 12n) / 1024;
  }
  return { temperature: Number(T) / 100, pressurePa: Number(p) / 256, humidity, humidityStep };
}

/**
 * Compares the driver with the integer reference: within 0.01 °C, 1 Pa, and 0.01 %RH beyond the
 * reference's own rounding of adc_H (half a step; the step is about 0.011 %RH on a typical chip).
 */
function assertMatchesReference(cal: Bme280Calibration, raw: Bme280Raw, label: string): void {
  const ours = compensate(cal, raw);
  const ref = boschInteger(cal, raw);
  const refHpa = Math.min(1100, Math.max(300, ref.pressurePa / 100));
  assert.ok(Math.abs(ours.temperature - ref.temperature) <= 0.01, `${label}: ${ours.temperature} °C vs ${ref.temperature} °C`);
  assert.ok(Math.abs(ours.pressure - refHpa) * 100 <= 1, `${label}: ${ours.pressure} hPa vs ${refHpa} hPa`);
  if (ref.humidity === null) assert.equal(ours.humidity, null);
  else {
    assert.ok(Math.abs(ours.humidity! - ref.humidity) <= 0.01 + ref.humidityStep / 2,
      `${label}: ${ours.humidity} %RH vs ${ref.humidity} %RH`);
  }
}

// The BMP280 datasheet's worked example (§3.12), with humidity fields for a BME280.
const DATASHEET: Bme280Calibration = {
  digT1: 27504, digT2: 26435, digT3: -1000,
  digP1: 36477, digP2: -10685, digP3: 3024, digP4: 2855, digP5: 140, digP6: -7, digP7: 15500, digP8: -14600, digP9: 6000,
  digH1: 75, digH2: 362, digH3: 0, digH4: 313, digH5: 50, digH6: 30,
};
const DATASHEET_RAW: Bme280Raw = { adcT: 519888, adcP: 415148, adcH: 30000 };

// Every signed field negative where the sign is free, H4/H5 down to their 12-bit range, H6 as s8.
const NEGATIVE: Bme280Calibration = {
  digT1: 28000, digT2: 26500, digT3: -3000,
  digP1: 37000, digP2: -11000, digP3: 3500, digP4: -1500, digP5: -120, digP6: -90, digP7: -9000, digP8: -12000, digP9: -4000,
  digH1: 90, digH2: 380, digH3: 20, digH4: -40, digH5: -600, digH6: -100,
};
const NEGATIVE_RAW: Bme280Raw = { adcT: 520000, adcP: 440000, adcH: 4000 };

describe('BME280 compensation', () => {
  test('reproduces the datasheet worked example: 25.08 °C and 1006.53 hPa', () => {
    const reading = compensate(DATASHEET, { adcT: 519888, adcP: 415148, adcH: null });
    assert.equal(reading.temperature.toFixed(2), '25.08');
    assert.ok(Math.abs(reading.pressure * 100 - 100653.26) < 0.05, `${reading.pressure} hPa`);
    assert.equal(reading.humidity, null);
    assertMatchesReference(DATASHEET, DATASHEET_RAW, 'datasheet');
  });

  for (const [label, raw] of [['at 22 °C', NEGATIVE_RAW], ['below 0 °C', { adcT: 430000, adcP: 430000, adcH: 12000 }]] as const) {
    test(`matches Bosch integer code with negative calibration fields, ${label}`, () => {
      const ref = boschInteger(NEGATIVE, raw);
      // The case must land inside the sensor's ranges, or the clamps would hide differences.
      assert.ok(ref.humidity! > 1 && ref.humidity! < 99, `reference humidity ${ref.humidity}`);
      assert.ok(ref.pressurePa > 30000 && ref.pressurePa < 110000, `reference pressure ${ref.pressurePa}`);
      if (label === 'below 0 °C') assert.ok(ref.temperature < 0, `reference temperature ${ref.temperature}`);
      assertMatchesReference(NEGATIVE, raw, label);
    });
  }

  test('matches Bosch integer code with a negative dig_H2', () => {
    const cal = { ...NEGATIVE, digH2: -380, digH4: 1000, digH5: 40 };
    const raw = { adcT: 510000, adcP: 400000, adcH: 48000 };
    const ref = boschInteger(cal, raw);
    assert.ok(ref.humidity! > 1 && ref.humidity! < 99, `reference humidity ${ref.humidity}`);
    assertMatchesReference(cal, raw, 'negative H2');
  });

  test('matches Bosch integer code across 2,000 random calibrations and readings', () => {
    const rand = mulberry32(20240601);
    const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
    let compared = 0;
    for (let i = 0; i < 2000; i++) {
      const cal: Bme280Calibration = {
        digT1: int(26000, 30000), digT2: int(24000, 28000), digT3: int(-3000, 3000),
        digP1: int(34000, 39000), digP2: int(-12000, -9000), digP3: int(1000, 5000), digP4: int(-3000, 9000),
        digP5: int(-300, 300), digP6: int(-100, 100), digP7: int(-16000, 16000), digP8: int(-16000, 16000),
        digP9: int(-8000, 8000),
        digH1: int(0, 255), digH2: int(-420, 420), digH3: int(0, 255), digH4: int(-2048, 2047), digH5: int(-2048, 2047),
        digH6: int(-128, 127),
      };
      const raw = { adcT: int(400000, 620000), adcP: int(200000, 500000), adcH: int(0, 65535) };
      try {
        boschInteger(cal, raw);
      } catch (err) {
        if (err instanceof Overflow) continue; // outside what Bosch's C code defines
        throw err;
      }
      assertMatchesReference(cal, raw, `case ${i} ${JSON.stringify({ cal, raw })}`);
      compared++;
    }
    assert.ok(compared > 1200, `only ${compared} cases were within int32`);
  });

  test('reads calibration registers with the datasheet signedness', () => {
    const tp = Buffer.alloc(26);
    tp.writeUInt16LE(0xfff0, 0); // T1 is unsigned: 65520
    tp.writeUInt16LE(0xfc18, 4); // T3 = -1000
    tp.writeUInt16LE(0x8e7d, 6); // P1 unsigned: 36477
    tp[25] = 0xc8; // H1 at 0xA1, unsigned: 200
    // 0xE1..0xE7: H2 = 0xFE98 (s16: -360), H3 = 0xF0 (u8: 240), H4 = 0xE4:0xFF, 0xE5:0xA7, H5 = 0xE6:0x80, H6 = 0xE7:0xF6
    const h = Buffer.from([0x98, 0xfe, 0xf0, 0xff, 0xa7, 0x80, 0xf6]);
    const cal = parseCalibration(tp, h);
    assert.equal(cal.digT1, 65520);
    assert.equal(cal.digT3, -1000);
    assert.equal(cal.digP1, 36477);
    assert.equal(cal.digH1, 200);
    assert.equal(cal.digH2, -360);
    assert.equal(cal.digH3, 240);
    assert.equal(cal.digH4, -16 + 0x7); // (s8)0xFF × 16 + (0xA7 & 0x0F)
    assert.equal(cal.digH5, -128 * 16 + 0xa); // (s8)0x80 × 16 + (0xA7 >> 4)
    assert.equal(cal.digH6, -10);
  });

  test('clamps humidity to 0–100 %RH and pressure to 300–1100 hPa', () => {
    assert.equal(compensate(DATASHEET, { ...DATASHEET_RAW, adcH: 65535 }).humidity, 100);
    assert.equal(compensate(DATASHEET, { ...DATASHEET_RAW, adcH: 0 }).humidity, 0);
    assert.equal(compensate(DATASHEET, { ...DATASHEET_RAW, adcP: 1 }).pressure, 1100);
    assert.equal(compensate(DATASHEET, { ...DATASHEET_RAW, adcP: 1048575 }).pressure, 300);
  });
});

function sensorOn(bus: FakeI2cBus, device: FakeBme280, address = 0x76) {
  bus.attach(address, device);
  return device;
}

describe('Bme280 over the bus', () => {
  test('reads a BME280 in forced mode, writing ctrl_hum before ctrl_meas', async () => {
    const bus = new FakeI2cBus();
    const chip = sensorOn(bus, new FakeBme280({ calibration: NEGATIVE, measuringReads: 3 }));
    const raw = NEGATIVE_RAW;
    chip.queueRaw(raw);
    const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
    assert.equal(sensor.description, 'BME280 at 0x76 on i2c-1');
    assert.deepEqual(sensor.calibration, NEGATIVE);

    const reading = await sensor.read();
    assertCloseTo(reading, compensate(NEGATIVE, raw));
    assert.deepEqual(chip.conversions, [{ ctrlHum: 0x01, ctrlMeas: 0x25 }]);
    const order = chip.writes.map((w) => w.register).filter((r) => r === 0xf2 || r === 0xf4);
    assert.deepEqual(order, [0xf2, 0xf4]);
    assert.equal(chip.regs[0xf4]! & 0x03, 0, 'the chip went back to sleep');
  });

  test('soft-resets the chip and waits for its calibration copy (im_update) to finish', async () => {
    const bus = new FakeI2cBus();
    const chip = sensorOn(bus, new FakeBme280({ calibration: DATASHEET, resetBusyReads: 4 }));
    const sleeps: number[] = [];
    await Bme280.open(bus, 0x76, { sleep: async (ms) => { sleeps.push(ms); } });
    assert.deepEqual(chip.writes[0], { register: 0xe0, value: 0xb6 });
    const statusReads = bus.log.filter((op) => op.command === 0xf3).length;
    assert.equal(statusReads, 5, 'four busy status reads, then a clear one');
    const calibrationRead = bus.log.findIndex((op) => op.command === 0x88);
    assert.ok(calibrationRead > bus.log.findLastIndex((op) => op.command === 0xf3), 'calibration is read after im_update clears');
    assert.ok(sleeps.length >= 4);
  });

  test('gives up when im_update never clears', async () => {
    const bus = new FakeI2cBus();
    sensorOn(bus, new FakeBme280({ calibration: DATASHEET, resetBusyReads: Infinity }));
    await assert.rejects(Bme280.open(bus, 0x76, { sleep: noSleep }), /0x76 on i2c-1 is still copying its calibration/);
  });

  test('gives up when a conversion never ends', async () => {
    const bus = new FakeI2cBus();
    sensorOn(bus, new FakeBme280({ calibration: DATASHEET, measuringReads: Infinity }));
    const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
    await assert.rejects(sensor.read(), /BME280 at 0x76 on i2c-1 is still measuring/);
  });

  test('a BMP280 reads humidity as null and never touches the humidity registers', async () => {
    const bus = new FakeI2cBus({ busNumber: 0 });
    const chip = sensorOn(bus, new FakeBmp280({ calibration: { ...DATASHEET, digH1: null, digH2: null, digH3: null, digH4: null, digH5: null, digH6: null } }), 0x77);
    chip.queueRaw({ adcT: 519888, adcP: 415148, adcH: null });
    const sensor = await Bme280.open(bus, 0x77, { busNumber: 0, sleep: noSleep });
    assert.equal(sensor.description, 'BMP280 at 0x77 on i2c-0');
    const reading = await sensor.read();
    assert.equal(reading.humidity, null);
    assert.equal(reading.temperature.toFixed(2), '25.08');
    assert.equal(reading.pressure.toFixed(2), '1006.53');
    assert.ok(!chip.writes.some((w) => w.register === 0xf2));
    assert.ok(!bus.log.some((op) => op.command === 0xe1));
  });

  for (const chipId of [0x56, 0x57]) {
    test(`chip id 0x${chipId.toString(16)} is a BMP280 too`, async () => {
      const bus = new FakeI2cBus();
      sensorOn(bus, new FakeBmp280({ calibration: DATASHEET, chipId }));
      const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
      assert.equal(sensor.hasHumidity, false);
    });
  }

  test('rejects another chip, naming its id, the bus and the address', async () => {
    const bus = new FakeI2cBus();
    sensorOn(bus, new FakeBme280({ calibration: DATASHEET, chipId: 0x99 }));
    await assert.rejects(Bme280.open(bus, 0x76, { sleep: noSleep }),
      { message: /^found chip id 0x99 at 0x76 on i2c-1, expected 0x60 \(BME280\) or 0x56–0x58 \(BMP280\)/ });
  });

  for (const missingDeviceErrno of ['ENXIO', 'EREMOTEIO'] as const) {
    test(`an empty address (${missingDeviceErrno}) says what to check`, async () => {
      const bus = new FakeI2cBus({ missingDeviceErrno });
      sensorOn(bus, new FakeBme280({ calibration: DATASHEET }), 0x77);
      await assert.rejects(Bme280.open(bus, 0x76, { sleep: noSleep }), (err: Error & { code?: string }) => {
        assert.match(err.message, /^no device at 0x76 on i2c-1 \(E[A-Z]+\): is I2C enabled \(raspi-config\), is the sensor wired to pins 3 \(SDA\) and 5 \(SCL\)/);
        assert.equal(err.code, missingDeviceErrno);
        return true;
      });
    });
  }

  test('an I/O error during a read fails that read only', async () => {
    const bus = new FakeI2cBus();
    const chip = sensorOn(bus, new FakeBme280({ calibration: DATASHEET }));
    chip.queueRaw(DATASHEET_RAW);
    const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
    bus.failNext(1, 'EIO');
    await assert.rejects(sensor.read(), /0x76 on i2c-1 \(EIO\)/);
    assertCloseTo(await sensor.read(), compensate(DATASHEET, DATASHEET_RAW));
  });

  test('"measurement skipped" raw values are errors, not 711 hPa', async () => {
    const bus = new FakeI2cBus();
    const chip = sensorOn(bus, new FakeBme280({ calibration: DATASHEET }));
    chip.queueRaw({ adcT: 0x80000, adcP: 415148, adcH: 30000 }, { adcT: 519888, adcP: 0x80000, adcH: 30000 },
      { adcT: 519888, adcP: 415148, adcH: 0x8000 });
    const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
    await assert.rejects(sensor.read(), /"measurement skipped" for temperature/);
    await assert.rejects(sensor.read(), /"measurement skipped" for pressure/);
    await assert.rejects(sensor.read(), /"measurement skipped" for humidity/);
  });

  test('concurrent reads take turns on the chip', async () => {
    const bus = new FakeI2cBus();
    const chip = sensorOn(bus, new FakeBme280({ calibration: DATASHEET, measuringReads: 2 }));
    const second = { adcT: 500000, adcP: 400000, adcH: 25000 };
    chip.queueRaw(DATASHEET_RAW, second);
    const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
    const [a, b] = await Promise.all([sensor.read(), sensor.read()]);
    assertCloseTo(a, compensate(DATASHEET, DATASHEET_RAW));
    assertCloseTo(b, compensate(DATASHEET, second));
  });

  test('close() closes the bus', async () => {
    const bus = new FakeI2cBus();
    sensorOn(bus, new FakeBme280({ calibration: DATASHEET }));
    const sensor = await Bme280.open(bus, 0x76, { sleep: noSleep });
    await sensor.close();
    assert.equal(bus.closed, true);
  });
});

describe('openBme280', () => {
  test('says how to install i2c-bus when the native module is missing', async () => {
    await assert.rejects(
      openBme280(1, 0x76, { loadI2cBus: () => Promise.reject(new Error("Cannot find module 'i2c-bus'")) }),
      /the i2c-bus module is not installed or did not build .*build-essential and python3/);
  });

  test('says how to enable I2C when /dev/i2c-N does not exist', async () => {
    const bus = new FakeI2cBus();
    await assert.rejects(openBme280(97, 0x76, { loadI2cBus: async () => ({ openPromisified: async () => bus }) }),
      /\/dev\/i2c-97 does not exist: enable I2C \(sudo raspi-config nonint do_i2c 0\) and reboot/);
  });
});

describe('the fake bus itself', () => {
  test('round-trips any legal calibration through the registers', () => {
    const regs = new Uint8Array(256);
    encodeCalibration(NEGATIVE, regs);
    const cal = parseCalibration(Buffer.from(regs.subarray(0x88, 0x88 + 26)), Buffer.from(regs.subarray(0xe1, 0xe8)));
    assert.deepEqual(cal, NEGATIVE);
  });

  test('serves the promise, callback and sync faces of i2c-bus', async () => {
    const bus = new FakeI2cBus();
    sensorOn(bus, new FakeBme280({ calibration: DATASHEET }));
    assert.deepEqual(await bus.scan(), [0x76]);
    assert.equal(await bus.readByte(0x76, 0xd0), 0x60);
    assert.equal(bus.bus().readByteSync(0x76, 0xd0), 0x60);
    assert.equal(await bus.readWord(0x76, 0x88), DATASHEET.digT1);
    const viaCallback = await new Promise<number>((resolve, reject) =>
      bus.bus().readByte(0x76, 0xd0, (err, value) => (err ? reject(err as Error) : resolve(value))));
    assert.equal(viaCallback, 0x60);
    assert.equal(bus.bus().promisifiedBus(), bus);
    assert.equal((await bus.i2cFuncs()).smbusReadI2cBlock, true);
    await assert.rejects(bus.readByte(0x10, 0xd0), { code: 'ENXIO', errno: 6, syscall: 'readByte' });
    await assert.rejects(bus.readByte(0x76, 0x100), /Invalid I2C command 256/);
    await bus.close();
    await assert.rejects(bus.readByte(0x76, 0xd0), /closed/);
  });
});

function assertCloseTo(actual: { temperature: number; humidity: number | null; pressure: number }, expected: typeof actual) {
  assert.ok(Math.abs(actual.temperature - expected.temperature) < 1e-9, `${actual.temperature} vs ${expected.temperature}`);
  assert.ok(Math.abs(actual.pressure - expected.pressure) < 1e-9, `${actual.pressure} vs ${expected.pressure}`);
  if (expected.humidity === null) assert.equal(actual.humidity, null);
  else assert.ok(Math.abs(actual.humidity! - expected.humidity) < 1e-9);
}
