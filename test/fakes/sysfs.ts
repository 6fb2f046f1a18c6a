// A fake /sys/class/gpio tree in a temporary directory: gpiochip*/label and gpiochip*/base files.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeChip { base: number; label: string; ngpio?: number }

/** Real layouts, as the kernels report them. */
export const LAYOUTS = {
  /** Pi 0–4 on a 6.6+ kernel. */
  pi4Kernel66: [{ base: 512, label: 'pinctrl-bcm2711', ngpio: 58 }, { base: 570, label: 'raspberrypi-exp-gpio', ngpio: 8 }],
  /** Pi 5 on a 6.6+ kernel: the header is on rp1; the SoC's own brcmstb chips come first. */
  pi5Kernel66: [
    { base: 512, label: 'gpio-brcmstb@107d508500', ngpio: 32 },
    { base: 544, label: 'gpio-brcmstb@107d508520', ngpio: 4 },
    { base: 548, label: 'gpio-brcmstb@107d517c00', ngpio: 17 },
    { base: 565, label: 'gpio-brcmstb@107d517c20', ngpio: 6 },
    { base: 571, label: 'pinctrl-rp1', ngpio: 54 },
  ],
  /** A Pi 3 on an older kernel: the SoC chip at 0. */
  pi3Kernel54: [{ base: 0, label: 'pinctrl-bcm2835', ngpio: 54 }, { base: 504, label: 'raspberrypi-exp-gpio', ngpio: 8 }],
  /** Something that is not a Pi. */
  notAPi: [{ base: 0, label: 'INT34BB:00', ngpio: 312 }],
} satisfies Record<string, FakeChip[]>;

/** Writes a fake gpio class directory; returns its path and a cleanup function. */
export async function fakeGpioSysfs(chips: FakeChip[]): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-sysfs-'));
  const root = join(dir, 'gpio');
  await mkdir(root);
  await writeFile(join(root, 'export'), '');
  await writeFile(join(root, 'unexport'), '');
  for (const chip of chips) {
    const chipDir = join(root, `gpiochip${chip.base}`);
    await mkdir(chipDir);
    await writeFile(join(chipDir, 'label'), `${chip.label}\n`);
    await writeFile(join(chipDir, 'base'), `${chip.base}\n`);
    await writeFile(join(chipDir, 'ngpio'), `${chip.ngpio ?? 32}\n`);
  }
  return { root, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
