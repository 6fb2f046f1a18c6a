// A fake of the GpioLine seam: records what the driver does and lets a test raise edges.
import type { GpioLine, GpioLineFactory } from '../../hardware/gpio.js';

export class FakeGpioLine implements GpioLine {
  value: 0 | 1 = 0;
  readonly writes: Array<0 | 1> = [];
  exported = true;
  private watchers: Array<(err: Error | null | undefined, value: 0 | 1) => void> = [];

  constructor(readonly sysfsNumber: number, readonly direction: 'in' | 'out', readonly edge: string | undefined) {}

  async read(): Promise<0 | 1> {
    this.assertExported('read');
    return this.value;
  }
  async write(value: 0 | 1): Promise<void> {
    this.assertExported('write');
    if (this.direction !== 'out') throw Object.assign(new Error('EPERM, Operation not permitted'), { code: 'EPERM' });
    this.value = value;
    this.writes.push(value);
  }
  watch(callback: (err: Error | null | undefined, value: 0 | 1) => void): void {
    this.watchers.push(callback);
  }
  unwatchAll(): void {
    this.watchers = [];
  }
  unexport(): void {
    this.exported = false;
  }
  get watching(): number {
    return this.watchers.length;
  }

  /** Drives the input to `value` and fires the interrupt, as the kernel does on the configured edge. */
  raise(value: 0 | 1 = 1): void {
    this.value = value;
    for (const watcher of [...this.watchers]) watcher(null, value);
  }
  /** Delivers an error to the watchers, as onoff does when reading after an interrupt fails. */
  fail(err: Error): void {
    for (const watcher of [...this.watchers]) watcher(err, this.value);
  }

  private assertExported(op: string): void {
    if (!this.exported) throw new Error(`fake GPIO ${this.sysfsNumber}: ${op} after unexport`);
  }
}

/** A factory that records every line it makes; `refuse` makes the next export throw like the kernel. */
export function fakeGpioFactory(): GpioLineFactory & { lines: FakeGpioLine[]; refuse(code: string): void } {
  let refusal: string | null = null;
  const lines: FakeGpioLine[] = [];
  const factory = (n: number, direction: 'in' | 'out', edge?: string) => {
    if (refusal) {
      const code = refusal;
      refusal = null;
      throw Object.assign(new Error(`${code}: export ${n}`), { code });
    }
    const line = new FakeGpioLine(n, direction, edge);
    lines.push(line);
    return line;
  };
  return Object.assign(factory, { lines, refuse: (code: string) => { refusal = code; } });
}
