// Finds the sysfs number of BCM GPIO 0. Since kernel 6.6 the SoC's chip no longer starts at 0
// (512 on a Pi 0–4, 571 on a Pi 5), so BCM17 is sysfs 529 there, and exporting "17" fails with EINVAL.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Labels of the Pi SoCs' pin controllers: Pi 0–3 (bcm2835), Pi 4 (bcm2711), Pi 5 (rp1). */
const SOC_LABELS = ['pinctrl-bcm2835', 'pinctrl-bcm2711', 'pinctrl-rp1'];

interface Chip { name: string; label: string; base: number }

/**
 * Reads `label` and `base` of each gpiochip* under `sysfsRoot` and returns the base of the Pi SoC's
 * chip: add a BCM number to it to get the sysfs number onoff expects. Older kernels with another
 * label count too when their chip starts at 0 and its label names a bcm part.
 */
export async function gpioBase(sysfsRoot = '/sys/class/gpio'): Promise<number> {
  let names: string[];
  try {
    names = (await readdir(sysfsRoot)).filter((name) => name.startsWith('gpiochip'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(`${sysfsRoot} does not exist: this kernel has no sysfs GPIO (CONFIG_GPIO_SYSFS), or this is not a Raspberry Pi`, { cause: err });
    }
    throw new Error(`cannot list ${sysfsRoot} (${code}): run telepi as a member of the gpio group`, { cause: err });
  }
  const chips: Chip[] = [];
  for (const name of names) {
    const [label, base] = await Promise.all([
      readFile(join(sysfsRoot, name, 'label'), 'utf8').catch(() => ''),
      readFile(join(sysfsRoot, name, 'base'), 'utf8').catch(() => ''),
    ]);
    const baseNumber = Number.parseInt(base.trim(), 10);
    if (Number.isInteger(baseNumber)) chips.push({ name, label: label.trim(), base: baseNumber });
  }
  const soc = chips.find((chip) => SOC_LABELS.includes(chip.label))
    ?? chips.find((chip) => chip.base === 0 && /bcm/i.test(chip.label));
  if (soc) return soc.base;
  const found = chips.length > 0 ? chips.map((c) => `${c.name} "${c.label}" base ${c.base}`).join(', ') : 'no gpiochip entries';
  throw new Error(`no Raspberry Pi GPIO chip in ${sysfsRoot} (found ${found}); expected a label of ${SOC_LABELS.join(', ')}: is this a Raspberry Pi?`);
}
