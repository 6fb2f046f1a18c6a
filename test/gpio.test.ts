import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { GpioLed, PirSensor, readExportedLine } from '../hardware/gpio.js';
import { gpioBase } from '../hardware/gpiochip.js';
import { fakeGpioFactory } from './fakes/gpio.js';
import { LAYOUTS, fakeGpioSysfs, type FakeChip } from './fakes/sysfs.js';

async function withSysfs<T>(chips: FakeChip[], fn: (root: string) => Promise<T>): Promise<T> {
  const tree = await fakeGpioSysfs(chips);
  try {
    return await fn(tree.root);
  } finally {
    await tree.cleanup();
  }
}

describe('gpioBase', () => {
  test('is 512 on a Pi 0–4 with a 6.6+ kernel', async () => {
    assert.equal(await withSysfs(LAYOUTS.pi4Kernel66, gpioBase), 512);
  });

  test('is 571 on a Pi 5, where rp1 sits among other chips', async () => {
    assert.equal(await withSysfs(LAYOUTS.pi5Kernel66, gpioBase), 571);
  });

  test('is 0 on older kernels', async () => {
    assert.equal(await withSysfs(LAYOUTS.pi3Kernel54, gpioBase), 0);
    assert.equal(await withSysfs([{ base: 0, label: 'bcm2708_gpio' }], gpioBase), 0);
  });

  test('says so when no Pi chip is there', async () => {
    await withSysfs(LAYOUTS.notAPi, (root) =>
      assert.rejects(gpioBase(root), /no Raspberry Pi GPIO chip in .* \(found gpiochip0 "INT34BB:00" base 0\).*is this a Raspberry Pi\?/));
    await withSysfs([], (root) => assert.rejects(gpioBase(root), /found no gpiochip entries/));
  });

  test('says so when the kernel has no sysfs GPIO', async () => {
    await assert.rejects(gpioBase(join(tmpdir(), 'telepi-no-such-gpio-dir')), /does not exist: this kernel has no sysfs GPIO/);
  });
});

describe('PirSensor', () => {
  test('watches the BCM pin at the chip base for rising edges', async () => {
    const factory = fakeGpioFactory();
    const pir = await withSysfs(LAYOUTS.pi4Kernel66, (sysfsRoot) => PirSensor.open({ bcm: 17, factory, sysfsRoot }));
    const [line] = factory.lines;
    assert.equal(line!.sysfsNumber, 529);
    assert.equal(line!.direction, 'in');
    assert.equal(line!.edge, 'rising');
    assert.equal(pir.description, 'PIR sensor on BCM17 (sysfs 529)');
    await pir.close();
  });

  test('ignores edges within the debounce window', async () => {
    const factory = fakeGpioFactory();
    let clock = 10_000;
    const pir = await PirSensor.open({ bcm: 4, base: 0, factory, debounceMs: 500, now: () => clock });
    const seen: number[] = [];
    pir.onMotion(() => seen.push(clock));
    const line = factory.lines[0]!;
    line.raise(); // accepted
    clock += 100; line.raise(); // bounce
    clock += 399; line.raise(); // still within 500 ms of the first
    clock += 1; line.raise(); // 500 ms after the first: accepted
    clock += 2000; line.raise(0); // the line already fell again: a glitch
    clock += 10; line.raise();
    assert.deepEqual(seen, [10_000, 10_500, 12_510]);
    await pir.close();
  });

  test('unsubscribing stops one listener; close unwatches and unexports', async () => {
    const factory = fakeGpioFactory();
    let clock = 0;
    const pir = await PirSensor.open({ bcm: 27, base: 571, factory, debounceMs: 10, now: () => clock });
    const line = factory.lines[0]!;
    let a = 0;
    let b = 0;
    const stopA = pir.onMotion(() => a++);
    pir.onMotion(() => b++);
    line.raise();
    stopA();
    clock += 100; line.raise();
    assert.deepEqual([a, b], [1, 2]);
    await pir.close();
    assert.equal(line.watching, 0);
    assert.equal(line.exported, false);
    await pir.close(); // twice is fine
  });

  test('watch errors and throwing listeners go to onError, and the others still hear', async () => {
    const factory = fakeGpioFactory();
    const errors: string[] = [];
    const pir = await PirSensor.open({ bcm: 17, base: 512, factory, onError: (e) => errors.push(e.message) });
    let heard = 0;
    pir.onMotion(() => { throw new Error('listener broke'); });
    pir.onMotion(() => heard++);
    factory.lines[0]!.fail(new Error('EIO reading value'));
    factory.lines[0]!.raise();
    assert.deepEqual(errors, ['EIO reading value', 'listener broke']);
    assert.equal(heard, 1);
    await pir.close();
  });
});

describe('GpioLed', () => {
  test('drives an output at the chip base, off at open and at close', async () => {
    const factory = fakeGpioFactory();
    const led = await withSysfs(LAYOUTS.pi5Kernel66, (sysfsRoot) => GpioLed.open({ bcm: 22, factory, sysfsRoot }));
    const line = factory.lines[0]!;
    assert.equal(line.sysfsNumber, 593);
    assert.equal(line.direction, 'out');
    await led.set(true);
    await led.set(false);
    await led.set(true);
    await led.close();
    assert.deepEqual(line.writes, [0, 1, 0, 1, 0]);
    assert.equal(line.exported, false);
    await assert.rejects(led.set(true), /LED on BCM22 \(sysfs 593\) is closed/);
  });
});

describe('pin validation and export errors', () => {
  for (const bcm of [-1, 28, 40, 1.5]) {
    test(`BCM ${bcm} is refused before anything is exported`, async () => {
      const factory = fakeGpioFactory();
      await assert.rejects(PirSensor.open({ bcm, base: 512, factory }), /is not a GPIO on the 40-pin header: use a BCM number from 0 to 27/);
      await assert.rejects(GpioLed.open({ bcm, base: 512, factory }), /is not a GPIO on the 40-pin header/);
      assert.equal(factory.lines.length, 0);
    });
  }

  test('a permission error says to rerun the installer (gpio group and drop-in), or to join the group by hand', async () => {
    const factory = fakeGpioFactory();
    factory.refuse('EACCES');
    await assert.rejects(GpioLed.open({ bcm: 17, base: 512, factory }),
      /LED on BCM17 \(sysfs 529\): cannot export the line \(EACCES\): .*rerun sudo \.\/install\.sh, which puts the telepi user in the gpio group and adds the GPIO drop-in.*your user needs the gpio group/);
  });

  test('a read-only /sys (the unit without its GPIO drop-in) says to rerun the installer, not to doubt the kernel', async () => {
    const factory = fakeGpioFactory();
    factory.refuse('EROFS');
    const error = await PirSensor.open({ bcm: 17, base: 512, factory }).then(() => null, (e: unknown) => e as Error);
    assert.match(error?.message ?? '', /PIR sensor on BCM17 \(sysfs 529\): cannot export the line \(EROFS\): \/sys is read-only here: the service runs without its GPIO drop-in \(telepi\.service\.d\/gpio\.conf\); rerun sudo \.\/install\.sh/);
    assert.doesNotMatch(error?.message ?? '', /kernel/);
  });

  test('readExportedLine reads a held line without writing, and says null for a free one', async () => {
    await withSysfs(LAYOUTS.pi4Kernel66, async (root) => {
      assert.equal(await readExportedLine(529, root), null);
      await mkdir(join(root, 'gpio529'));
      await writeFile(join(root, 'gpio529', 'direction'), 'in\n');
      await writeFile(join(root, 'gpio529', 'value'), '1\n');
      assert.deepEqual(await readExportedLine(529, root), { direction: 'in', edge: 'none', value: '1' });
    });
  });

  test('EINVAL points at the chip base', async () => {
    const factory = fakeGpioFactory();
    factory.refuse('EINVAL');
    await assert.rejects(PirSensor.open({ bcm: 17, base: 0, factory }), /\(EINVAL\): the kernel refused that line number: is 0 really the chip base\?/);
  });
});
