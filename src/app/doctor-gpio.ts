// The doctor's GPIO check. A line the running service holds is only read (exporting or unexporting it
// would take it from the service, leaving motion and the LED dead until a restart); a free one is
// opened and released, and the LED blinks once.

import type { ExportedLine, GpioLineFactory } from '../../hardware/gpio.js';
import { describeError } from '../log.js';
import type { Config } from './config.js';
import { fail, ok, skip, type CheckResult } from './doctor-checks.js';

export interface GpioCheckOptions {
  sysfsRoot?: string;
  factory?: GpioLineFactory;
  /** How long the LED is lit, so you can see it works. */
  blinkMs: number;
}

/** What each role expects of its line: the PIR is an input watched for rising edges, the LED an output. */
const ROLES = {
  'PIR sensor': { variable: 'PIR_GPIO', direction: 'in' },
  LED: { variable: 'LED_GPIO', direction: 'out' },
} as const;

type Role = keyof typeof ROLES;

/** Finds the chip base, then checks each configured line: read-only when exported already, else opened. */
export async function checkGpio(config: Config, options: GpioCheckOptions): Promise<CheckResult[]> {
  const { pirLine, ledLine } = config.gpio;
  const unset = (role: Role) => skip(role, `not configured (${ROLES[role].variable} unset)`);
  if (pirLine === null && ledLine === null) return [unset('PIR sensor'), unset('LED')];
  const [{ gpioBase }, { PirSensor, GpioLed, readExportedLine }] = await Promise.all([
    import('../../hardware/gpiochip.js'), import('../../hardware/gpio.js'),
  ]);
  let base: number | null = null;
  const results: CheckResult[] = [];
  try {
    base = await gpioBase(options.sysfsRoot);
    results.push(ok('GPIO', `chip base ${base} (sysfs line = ${base} + BCM number)`));
  } catch (error) {
    results.push(fail('GPIO', describeError(error)));
  }
  const line = { base: base ?? 0, sysfsRoot: options.sysfsRoot, factory: options.factory };
  const check = async (role: Role, bcm: number | null, open: (bcm: number) => Promise<string>) => {
    if (bcm === null) return results.push(unset(role));
    if (base === null) return results.push(skip(role, 'not checked without a GPIO chip'));
    try {
      const exported = await readExportedLine(base + bcm, options.sysfsRoot);
      results.push(exported === null ? ok(role, await open(bcm)) : heldLine(role, bcm, base + bcm, exported));
    } catch (error) {
      results.push(fail(role, describeError(error)));
    }
  };
  await check('PIR sensor', pirLine, async (bcm) => {
    const pir = await PirSensor.open({ ...line, bcm });
    await pir.close();
    return `${pir.description}: opened and released`;
  });
  await check('LED', ledLine, async (bcm) => {
    const led = await GpioLed.open({ ...line, bcm });
    try {
      await led.set(true);
      await new Promise((resolve) => setTimeout(resolve, options.blinkMs));
    } finally {
      await led.close();
    }
    return `${led.description}: blinked once`;
  });
  return results;
}

/** A line exported already: the service's own (checked read-only), or another program's (a conflict). */
function heldLine(role: Role, bcm: number, sysfsNumber: number, exported: ExportedLine): CheckResult {
  const where = `BCM${bcm} (sysfs ${sysfsNumber})`;
  const seen = `direction ${exported.direction}, edge ${exported.edge}, value ${exported.value}`;
  const expected = ROLES[role].direction;
  if (exported.direction !== expected) {
    return fail(role, `${where} is exported as "${exported.direction}" (${seen}), not as ${expected === 'in' ? 'an input' : 'an output'}`,
      `another program or overlay uses that line: free it, or set ${ROLES[role].variable} to another BCM line`);
  }
  return ok(role, `${where} is exported already, most likely by the running telepi service: ${seen} ` +
    '(only read, not touched: stop the service to have the doctor open it, and blink the LED)');
}
