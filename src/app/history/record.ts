// One history record on disk: 12 bytes, little-endian, self-checking, so a torn or zeroed record is
// recognised instead of read as a wrong value.
//
//   0  uint32  time, whole seconds since the epoch (UTC)
//   4  int16   temperature, centi-°C; -32768 marks a gap (the sensor failed)
//   6  uint16  humidity, centi-%RH; 0xFFFF when there is none (BMP280, or a gap)
//   8  uint16  pressure, deci-hPa; 0 in a gap
//  10  uint16  check: a seeded Fletcher-16 of bytes 0–9 (all-zero bytes do not pass)

import type { ClimateReading } from '../../../hardware/types.js';

export const recordBytes = 12;
/** Each monthly file starts with this: the format's name and version, then the record size. */
export const fileMagic = 'TPH1';
export const headerBytes = 8;

const gapTemperature = -32768;
const noHumidity = 0xffff;

/** A decoded record: NaN marks what is missing (a gap has no values; a BMP280 has no humidity). */
export interface Row {
  atMs: number;
  temperature: number;
  humidity: number;
  pressure: number;
}

export function headerBuffer(): Buffer {
  const header = Buffer.alloc(headerBytes);
  header.write(fileMagic, 0, 'latin1');
  header.writeUInt16LE(recordBytes, 4);
  return header;
}

/** True when `buffer` starts with a header this code can read. */
export function isHeader(buffer: Buffer): boolean {
  return buffer.length >= headerBytes && buffer.toString('latin1', 0, 4) === fileMagic && buffer.readUInt16LE(4) === recordBytes;
}

/**
 * Writes one record at `offset`. `reading` undefined writes a gap.
 * @returns false (writing a gap instead) when a value cannot be stored: out of the sensor's physical range.
 */
export function encodeRecord(target: Buffer, offset: number, atSeconds: number, reading: ClimateReading | undefined): boolean {
  const centiC = reading === undefined ? gapTemperature : Math.round(reading.temperature * 100);
  const centiRh = reading?.humidity == null ? noHumidity : Math.round(reading.humidity * 100);
  const deciHpa = reading === undefined ? 0 : Math.round(reading.pressure * 10);
  const storable = reading === undefined
    || (Number.isFinite(centiC) && centiC > gapTemperature && centiC <= 32767
      && (centiRh === noHumidity || (centiRh >= 0 && centiRh <= 10_000))
      && Number.isFinite(deciHpa) && deciHpa > 0 && deciHpa < 0xffff);
  target.writeUInt32LE(atSeconds, offset);
  target.writeInt16LE(storable ? centiC : gapTemperature, offset + 4);
  target.writeUInt16LE(storable ? centiRh : noHumidity, offset + 6);
  target.writeUInt16LE(storable ? deciHpa : 0, offset + 8);
  target.writeUInt16LE(checksum(target, offset), offset + 10);
  return storable || reading === undefined;
}

/** Reads the record at `offset` into `row`; false when its check fails (torn, zeroed or flipped). */
export function decodeRecord(source: Buffer, offset: number, row: Row): boolean {
  if (source.readUInt16LE(offset + 10) !== checksum(source, offset)) return false;
  row.atMs = source.readUInt32LE(offset) * 1000;
  const centiC = source.readInt16LE(offset + 4);
  if (centiC === gapTemperature) {
    row.temperature = row.humidity = row.pressure = NaN;
    return true;
  }
  const centiRh = source.readUInt16LE(offset + 6);
  row.temperature = centiC / 100;
  row.humidity = centiRh === noHumidity ? NaN : centiRh / 100;
  row.pressure = source.readUInt16LE(offset + 8) / 10;
  return true;
}

/** The record's time in whole seconds, unchecked: for binary search over sorted records. */
export function recordSeconds(source: Buffer, offset: number): number {
  return source.readUInt32LE(offset);
}

// Fletcher-16 with non-zero seeds, inline: no allocation per record (a year is 525,600 of them). The
// sums stay far below 2^31 over ten bytes, so one modulo at the end gives the same check as one per byte.
function checksum(buffer: Buffer, offset: number): number {
  let a = 0x5a;
  let b = 0xa5;
  for (let i = offset; i < offset + 10; i++) {
    a += buffer[i] as number;
    b += a;
  }
  return ((b % 255) << 8) | (a % 255);
}
