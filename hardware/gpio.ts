// A PIR motion sensor (input, rising edge, debounced) and an indicator LED (output) on the Pi's
// GPIO header, through onoff's sysfs GPIO behind the small GpioLine seam.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Led, MotionSensor } from './types.js';
import { gpioBase } from './gpiochip.js';

/** One exported GPIO line: the part of onoff's `Gpio` telepi uses (onoff's class fits it as is). */
export interface GpioLine {
  read(): Promise<0 | 1>;
  write(value: 0 | 1): Promise<void>;
  /** Calls `callback` on each interrupt of the configured edge, with the value read after it. */
  watch(callback: (err: Error | null | undefined, value: 0 | 1) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

/** Exports a line by its sysfs number (chip base + BCM number). Throws as onoff does (EINVAL, EBUSY, EACCES). */
export type GpioLineFactory = (
  sysfsNumber: number,
  direction: 'in' | 'out',
  edge?: 'none' | 'rising' | 'falling' | 'both',
) => GpioLine;

/** The real factory: onoff, loaded only now (an optional native dependency). */
export async function onoffLineFactory(): Promise<GpioLineFactory> {
  let onoff: typeof import('onoff');
  try {
    onoff = await import('onoff');
  } catch (err) {
    throw new Error(`the onoff module is not installed or did not build (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): run npm install on the Pi, which needs build-essential and python3`, { cause: err });
  }
  return (sysfsNumber, direction, edge) => new onoff.Gpio(sysfsNumber, direction, edge);
}

export interface GpioLineOptions {
  /** The BCM (Broadcom) GPIO number, 0–27 on the 40-pin header: GPIO17 is physical pin 11. */
  bcm: number;
  /** Makes the line; default onoff. Tests pass a fake (onoff's epoll refuses a fake sysfs). */
  factory?: GpioLineFactory;
  /** Where the gpiochip* entries are (default /sys/class/gpio). */
  sysfsRoot?: string;
  /** The chip base, if already known; otherwise read from `sysfsRoot`. */
  base?: number;
}

/** Checks the BCM number, finds the chip base and exports the line, with errors that say what to do. */
async function openLine(options: GpioLineOptions, direction: 'in' | 'out', edge: 'none' | 'rising', role: string) {
  const { bcm } = options;
  if (!Number.isInteger(bcm) || bcm < 0 || bcm > 27) {
    throw new Error(`${role}: BCM ${String(bcm)} is not a GPIO on the 40-pin header: use a BCM number from 0 to 27 (e.g. 17, physical pin 11)`);
  }
  const base = options.base ?? await gpioBase(options.sysfsRoot);
  const sysfsNumber = base + bcm;
  const factory = options.factory ?? await onoffLineFactory();
  const where = `BCM${bcm} (sysfs ${sysfsNumber})`;
  try {
    return { line: factory(sysfsNumber, direction, edge), where };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Under the service, a read-only /sys means its GPIO drop-in is missing, not that the kernel is wrong.
    const advice = code === 'EROFS'
      ? '/sys is read-only here: the service runs without its GPIO drop-in (telepi.service.d/gpio.conf); ' +
        'rerun sudo ./install.sh, which adds it when PIR_GPIO or LED_GPIO is set'
      : code === 'EACCES' || code === 'EPERM'
      ? 'telepi may not write /sys/class/gpio: rerun sudo ./install.sh, which puts the telepi user in the gpio ' +
        'group and adds the GPIO drop-in to the service (run by hand, your user needs the gpio group)'
      : code === 'EBUSY'
        ? 'another driver (a dtoverlay) or program holds it: free it or pick another pin'
        : code === 'EINVAL'
          ? `the kernel refused that line number: is ${base} really the chip base?`
          : 'is sysfs GPIO available on this kernel?';
    throw new Error(`${role} on ${where}: cannot export the line (${code ?? (err as Error).message}): ${advice}`, { cause: err });
  }
}

/** What sysfs shows of a line that is exported already: read, never written. */
export interface ExportedLine {
  direction: string;
  edge: string;
  value: string;
}

/**
 * Reads an exported line's direction, edge and value from sysfs without taking it: null when the line is
 * not exported. For `telepi doctor`, which must not export or unexport lines the running service holds.
 */
export async function readExportedLine(sysfsNumber: number, sysfsRoot = '/sys/class/gpio'): Promise<ExportedLine | null> {
  const dir = join(sysfsRoot, `gpio${sysfsNumber}`);
  const read = (name: string) => readFile(join(dir, name), 'utf8').then((text) => text.trim());
  try {
    const [direction, edge, value] = await Promise.all([read('direction'), read('edge').catch(() => 'none'), read('value')]);
    return { direction, edge, value };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ` +
      'run as a member of the gpio group, or with sudo', { cause: err });
  }
}

export interface PirOptions extends GpioLineOptions {
  /** Rising edges within this many ms of the last accepted one are ignored (default 1000). */
  debounceMs?: number;
  /** The clock for debouncing, in ms (default Date.now). */
  now?: () => number;
  /** Where watch errors and listener exceptions go (default: ignored). */
  onError?: (err: Error) => void;
}

/** A PIR sensor's output on an input line: one `onMotion` call per debounced rising edge. */
export class PirSensor implements MotionSensor {
  private readonly listeners = new Set<() => void>();
  private lastMotion: number | null = null;
  private closed = false;

  private constructor(
    private readonly line: GpioLine,
    readonly description: string,
    private readonly debounceMs: number,
    private readonly now: () => number,
    private readonly onError: (err: Error) => void,
  ) {
    line.watch((err, value) => this.edge(err, value));
  }

  static async open(options: PirOptions): Promise<PirSensor> {
    const { line, where } = await openLine(options, 'in', 'rising', 'PIR sensor');
    return new PirSensor(line, `PIR sensor on ${where}`, options.debounceMs ?? 1000, options.now ?? Date.now,
      options.onError ?? (() => {}));
  }

  onMotion(listener: () => void): () => void {
    const entry = () => listener();
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.line.unwatchAll();
    this.line.unexport();
  }

  private edge(err: Error | null | undefined, value: 0 | 1): void {
    if (err) {
      this.onError(err);
      return;
    }
    // A rising edge whose line already reads 0 again was a glitch shorter than the read.
    if (value !== 1 || this.closed) return;
    const t = this.now();
    if (this.lastMotion !== null && t - this.lastMotion < this.debounceMs) return;
    this.lastMotion = t;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        this.onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}

/** An LED on an output line (through a resistor to GND): `set(true)` lights it. */
export class GpioLed implements Led {
  private closed = false;

  private constructor(private readonly line: GpioLine, readonly description: string) {}

  /** Exports the line as an output and turns the LED off. */
  static async open(options: GpioLineOptions): Promise<GpioLed> {
    const { line, where } = await openLine(options, 'out', 'none', 'LED');
    try {
      await line.write(0);
    } catch (err) {
      line.unexport();
      throw new Error(`LED on ${where}: cannot write the line (${(err as Error).message})`, { cause: err });
    }
    return new GpioLed(line, `LED on ${where}`);
  }

  async set(on: boolean): Promise<void> {
    if (this.closed) throw new Error(`${this.description} is closed`);
    await this.line.write(on ? 1 : 0);
  }

  /** Turns the LED off and releases the line. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.line.write(0);
    } finally {
      this.line.unexport();
    }
  }
}
