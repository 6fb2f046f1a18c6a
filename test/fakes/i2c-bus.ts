// A register-level fake of i2c-bus: every PromisifiedBus method (and the callback/sync Bus behind
// bus()) over fake I2C devices. The BME280/BMP280 model lives in bme280-chip.ts.
import type { I2CBus, I2CFuncs, PromisifiedBus } from 'i2c-bus';

export { FakeBme280, FakeBmp280, encodeCalibration, type FakeBme280Options } from './bme280-chip.js';

/** A device on the fake bus, seen as raw I2C transactions. */
export interface FakeI2cDevice {
  /** A write transaction: the bytes that follow the address byte. */
  write(bytes: readonly number[]): void;
  /** A read transaction of `length` bytes. */
  read(length: number): number[];
  /** The 3-byte Device ID (UM10204 §3.1.17), if the device has one. */
  deviceId?: number;
}

const ERRNO = { EIO: 5, ENXIO: 6, EBUSY: 16, EREMOTEIO: 121 } as const;
const STRERROR = { EIO: 'Input/output error', ENXIO: 'No such device or address', EBUSY: 'Device or resource busy', EREMOTEIO: 'Remote I/O error' };
export type FakeErrno = keyof typeof ERRNO;

/** The error the native addon raises (node::ErrnoException): "EIO, Input/output error", errno, code, syscall. */
export function errnoError(code: FakeErrno, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}, ${STRERROR[code]}`);
  err.errno = ERRNO[code];
  err.code = code;
  err.syscall = syscall;
  return err;
}

/** What a Pi's i2c-bcm2835 adapter reports (I2C plus SMBus emulation). */
const PI_FUNCS: I2CFuncs = Object.freeze({
  i2c: true, tenBitAddr: false, protocolMangling: true, smbusPec: true, smbusBlockProcCall: false,
  smbusQuick: true, smbusReceiveByte: true, smbusSendByte: true, smbusReadByte: true, smbusWriteByte: true,
  smbusReadWord: true, smbusWriteWord: true, smbusProcCall: true, smbusReadBlock: false, smbusWriteBlock: true,
  smbusReadI2cBlock: true, smbusWriteI2cBlock: true,
});

function check(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new Error(`Invalid ${what} ${String(value)}`);
}
const isInt = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;

export interface FakeI2cBusOptions {
  busNumber?: number;
  /** What an absent address answers: ENXIO (the default, as the brief asks) or EREMOTEIO (a Pi's NACK). */
  missingDeviceErrno?: 'ENXIO' | 'EREMOTEIO';
}

/**
 * The synchronous core: each operation is the I2C transactions the real addon would issue.
 * The promisified and callback faces below are thin wrappers over it.
 */
class FakeBusCore {
  readonly devices = new Map<number, FakeI2cDevice>();
  /** Every operation, in order: method name and address (and command where there is one). */
  readonly log: Array<{ op: string; address?: number; command?: number }> = [];
  closed = false;
  private failures: Array<{ code: FakeErrno; address: number | undefined }> = [];

  constructor(readonly options: FakeI2cBusOptions) {}

  failNext(count: number, code: FakeErrno, address?: number): void {
    for (let i = 0; i < count; i++) this.failures.push({ code, address });
  }

  private device(op: string, address: number, command?: number): FakeI2cDevice {
    check(isInt(address, 0x7f), 'I2C address', address);
    if (command !== undefined) check(isInt(command, 0xff), 'I2C command', command);
    if (this.closed) throw new Error(`fake i2c-${this.options.busNumber ?? 1} is closed (${op} after close)`);
    this.log.push({ op, address, command });
    const index = this.failures.findIndex((f) => f.address === undefined || f.address === address);
    if (index >= 0) {
      const [failure] = this.failures.splice(index, 1);
      throw errnoError(failure!.code, op);
    }
    const device = this.devices.get(address);
    if (!device) throw errnoError(this.options.missingDeviceErrno ?? 'ENXIO', op);
    return device;
  }

  readByte(address: number, command: number): number {
    const device = this.device('readByte', address, command);
    device.write([command]);
    return device.read(1)[0]!;
  }
  readWord(address: number, command: number): number {
    const device = this.device('readWord', address, command);
    device.write([command]);
    const [lo, hi] = device.read(2);
    return lo! | (hi! << 8);
  }
  readI2cBlock(address: number, command: number, length: number, buffer: Buffer): number {
    checkBuffer(length, buffer, 32);
    const device = this.device('readI2cBlock', address, command);
    device.write([command]);
    Buffer.from(device.read(length)).copy(buffer);
    return length;
  }
  i2cRead(address: number, length: number, buffer: Buffer): number {
    checkBuffer(length, buffer);
    Buffer.from(this.device('i2cRead', address).read(length)).copy(buffer);
    return length;
  }
  receiveByte(address: number): number {
    return this.device('receiveByte', address).read(1)[0]!;
  }
  writeByte(address: number, command: number, byte: number): void {
    check(isInt(byte, 0xff), 'byte', byte);
    this.device('writeByte', address, command).write([command, byte]);
  }
  writeWord(address: number, command: number, word: number): void {
    check(isInt(word, 0xffff), 'word', word);
    this.device('writeWord', address, command).write([command, word & 0xff, word >> 8]);
  }
  writeQuick(address: number, command: number, bit: number): void {
    check(isInt(bit, 1), 'bit', bit);
    this.device('writeQuick', address, command);
  }
  writeI2cBlock(address: number, command: number, length: number, buffer: Buffer): number {
    checkBuffer(length, buffer, 32);
    this.device('writeI2cBlock', address, command).write([command, ...buffer.subarray(0, length)]);
    return length;
  }
  i2cWrite(address: number, length: number, buffer: Buffer): number {
    checkBuffer(length, buffer);
    this.device('i2cWrite', address).write([...buffer.subarray(0, length)]);
    return length;
  }
  sendByte(address: number, byte: number): void {
    check(isInt(byte, 0xff), 'byte', byte);
    this.device('sendByte', address).write([byte]);
  }
  scan(startAddr = 0x03, endAddr = 0x77): number[] {
    if (this.closed) throw new Error('fake bus is closed (scan after close)');
    return [...this.devices.keys()].filter((a) => a >= startAddr && a <= endAddr).sort((a, b) => a - b);
  }
  deviceId(address: number): { manufacturer: number; product: number; name: string } {
    const id = this.device('deviceId', address).deviceId;
    if (id === undefined) throw errnoError(this.options.missingDeviceErrno ?? 'ENXIO', 'deviceId');
    const manufacturer = (id >> 12) & 0xfff;
    return { manufacturer, product: id & 0xfff, name: manufacturer === 0 ? 'NXP Semiconductors' : `<0x${manufacturer.toString(16)}>` };
  }
  i2cFuncs(): I2CFuncs {
    if (this.closed) throw new Error('fake bus is closed (i2cFuncs after close)');
    return PI_FUNCS;
  }
  close(): void {
    this.closed = true;
  }
}

function checkBuffer(length: number, buffer: Buffer, max?: number): void {
  check(Number.isInteger(length) && length >= 0 && (max === undefined || length <= max), 'buffer length', length);
  check(Buffer.isBuffer(buffer), 'buffer', buffer);
  if (buffer.length < length) throw new Error(`Buffer must contain at least ${length} bytes`);
}

/** Runs `fn` on a later turn, like the addon's worker thread, and settles with its outcome. */
function later<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) => setImmediate(() => {
    try { resolve(fn()); } catch (err) { reject(err as Error); }
  }));
}

/** The fake `PromisifiedBus`. Add devices with `attach`; break things with `failNext` or `detach`. */
export class FakeI2cBus implements PromisifiedBus {
  private readonly core: FakeBusCore;
  private readonly callbackBus: I2CBus;

  constructor(options: FakeI2cBusOptions = {}) {
    this.core = new FakeBusCore(options);
    this.callbackBus = makeCallbackBus(this.core, this);
  }

  attach(address: number, device: FakeI2cDevice): this {
    this.core.devices.set(address, device);
    return this;
  }
  detach(address: number): void {
    this.core.devices.delete(address);
  }
  /** The next `count` operations (on `address`, or on any) fail with `code` (EIO by default). */
  failNext(count: number, code: FakeErrno = 'EIO', address?: number): void {
    this.core.failNext(count, code, address);
  }
  get log() { return this.core.log; }
  get closed() { return this.core.closed; }

  readByte(address: number, command: number) { return later(() => this.core.readByte(address, command)); }
  readWord(address: number, command: number) { return later(() => this.core.readWord(address, command)); }
  readI2cBlock(address: number, command: number, length: number, buffer: Buffer) {
    return later(() => ({ bytesRead: this.core.readI2cBlock(address, command, length, buffer), buffer }));
  }
  i2cRead(address: number, length: number, buffer: Buffer) {
    return later(() => ({ bytesRead: this.core.i2cRead(address, length, buffer), buffer }));
  }
  receiveByte(address: number) { return later(() => this.core.receiveByte(address)); }
  writeByte(address: number, command: number, byte: number) { return later(() => this.core.writeByte(address, command, byte)); }
  writeWord(address: number, command: number, word: number) { return later(() => this.core.writeWord(address, command, word)); }
  writeQuick(address: number, command: number, bit: number) { return later(() => this.core.writeQuick(address, command, bit)); }
  writeI2cBlock(address: number, command: number, length: number, buffer: Buffer) {
    return later(() => ({ bytesWritten: this.core.writeI2cBlock(address, command, length, buffer), buffer }));
  }
  i2cWrite(address: number, length: number, buffer: Buffer) {
    return later(() => ({ bytesWritten: this.core.i2cWrite(address, length, buffer), buffer }));
  }
  sendByte(address: number, byte: number) { return later(() => this.core.sendByte(address, byte)); }
  scan(startAddr?: number, endAddr?: number) {
    // scan(address) scans that one address, as in i2c-bus.
    return later(() => this.core.scan(startAddr, endAddr ?? startAddr));
  }
  deviceId(address: number) { return later(() => this.core.deviceId(address)); }
  i2cFuncs() { return later(() => this.core.i2cFuncs()); }
  close() { return later(() => this.core.close()); }
  bus(): I2CBus { return this.callbackBus; }
}

type Callback = (err: unknown, ...results: unknown[]) => unknown;

/** The callback and sync faces of the same core, as `bus()` returns them. */
function makeCallbackBus(core: FakeBusCore, promisified: PromisifiedBus): I2CBus {
  const async = (fn: () => unknown[], cb: Callback) => {
    setImmediate(() => {
      let results: unknown[];
      try { results = fn(); } catch (err) { cb(err); return; }
      cb(null, ...results);
    });
  };
  const bus = {
    close: (cb: Callback) => async(() => { core.close(); return []; }, cb),
    closeSync: () => core.close(),
    i2cFuncs: (cb: Callback) => async(() => [core.i2cFuncs()], cb),
    i2cFuncsSync: () => core.i2cFuncs(),
    scan: (...args: unknown[]) => {
      const cb = args.pop() as Callback;
      const [start, end] = args as number[];
      async(() => [core.scan(start, end ?? start)], cb);
    },
    scanSync: (start?: number, end?: number) => core.scan(start, end ?? start),
    deviceId: (address: number, cb: Callback) => async(() => [core.deviceId(address)], cb),
    deviceIdSync: (address: number) => core.deviceId(address),
    i2cRead: (a: number, n: number, b: Buffer, cb: Callback) => async(() => [core.i2cRead(a, n, b), b], cb),
    i2cReadSync: (a: number, n: number, b: Buffer) => core.i2cRead(a, n, b),
    i2cWrite: (a: number, n: number, b: Buffer, cb: Callback) => async(() => [core.i2cWrite(a, n, b), b], cb),
    i2cWriteSync: (a: number, n: number, b: Buffer) => core.i2cWrite(a, n, b),
    readByte: (a: number, c: number, cb: Callback) => async(() => [core.readByte(a, c)], cb),
    readByteSync: (a: number, c: number) => core.readByte(a, c),
    readWord: (a: number, c: number, cb: Callback) => async(() => [core.readWord(a, c)], cb),
    readWordSync: (a: number, c: number) => core.readWord(a, c),
    readI2cBlock: (a: number, c: number, n: number, b: Buffer, cb: Callback) => async(() => [core.readI2cBlock(a, c, n, b), b], cb),
    readI2cBlockSync: (a: number, c: number, n: number, b: Buffer) => core.readI2cBlock(a, c, n, b),
    receiveByte: (a: number, cb: Callback) => async(() => [core.receiveByte(a)], cb),
    receiveByteSync: (a: number) => core.receiveByte(a),
    sendByte: (a: number, v: number, cb: Callback) => async(() => { core.sendByte(a, v); return []; }, cb),
    sendByteSync: (a: number, v: number) => core.sendByte(a, v),
    writeByte: (a: number, c: number, v: number, cb: Callback) => async(() => { core.writeByte(a, c, v); return []; }, cb),
    writeByteSync: (a: number, c: number, v: number) => core.writeByte(a, c, v),
    writeWord: (a: number, c: number, v: number, cb: Callback) => async(() => { core.writeWord(a, c, v); return []; }, cb),
    writeWordSync: (a: number, c: number, v: number) => core.writeWord(a, c, v),
    writeQuick: (a: number, c: number, v: number, cb: Callback) => async(() => { core.writeQuick(a, c, v); return []; }, cb),
    writeQuickSync: (a: number, c: number, v: number) => core.writeQuick(a, c, v),
    writeI2cBlock: (a: number, c: number, n: number, b: Buffer, cb: Callback) => async(() => [core.writeI2cBlock(a, c, n, b), b], cb),
    writeI2cBlockSync: (a: number, c: number, n: number, b: Buffer) => core.writeI2cBlock(a, c, n, b),
    promisifiedBus: () => promisified,
  };
  return bus satisfies Record<keyof I2CBus, unknown> as unknown as I2CBus;
}
