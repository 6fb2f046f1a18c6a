// `telepi doctor`: checks the configuration, the token, the state directory and every device, and
// prints a ✓/✗ list with the fix for each ✗. Exit 0 when everything required works, 1 when something
// required fails, 78 when the configuration itself is invalid.

import type { GpioLineFactory } from '../../hardware/gpio.js';
import { registerSecret } from '../log.js';
import type { CliIo } from './cli.js';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import {
  checkCamera, checkClimate, checkStateDir, checkToken, checkUpnp, fail, ok, readEnvFile, skip,
  type CheckResult, type OpenSensor,
} from './doctor-checks.js';
import { checkGpio } from './doctor-gpio.js';
import { checkMqtt } from './mqtt/check.js';

export const DEFAULT_ENV_FILE = '/etc/telepi/telepi.env';

export interface DoctorOptions {
  /** The settings file read when TELEGRAM_BOT_TOKEN is not in the environment (default /etc/telepi/telepi.env). */
  envFile?: string;
  /** Opens the BME280 (default: openBme280 over i2c-bus). */
  openSensor?: OpenSensor;
  /** Where the i2c-N device nodes are (default /dev). */
  devRoot?: string;
  /** Where the gpiochip entries are (default /sys/class/gpio). */
  sysfsRoot?: string;
  /** Makes GPIO lines (default onoff). */
  gpioFactory?: GpioLineFactory;
  /** Give up on getMe after this long (default 10 s). */
  apiTimeoutMs?: number;
  /** Give up on the test photo after this long (default 15 s). */
  captureTimeoutMs?: number;
  /** Give up on upnpc after this long (default 15 s). */
  upnpcTimeoutMs?: number;
  /** How long the LED is lit during its check (default 300 ms). */
  blinkMs?: number;
  /** Give up on the MQTT broker's connect and round trip after this long (default 10 s). */
  mqttTimeoutMs?: number;
}

const EX_CONFIG = 78;
const marks: Record<CheckResult['status'], string> = { ok: '✓', fail: '✗', skip: '-' };

function line(result: CheckResult): string {
  const text = `${marks[result.status]} ${result.what}: ${result.detail}`;
  return result.fix === undefined ? text : `${text} → ${result.fix}`;
}

export async function runDoctor(env: NodeJS.ProcessEnv, io: CliIo, options: DoctorOptions = {}): Promise<number> {
  const print = (result: CheckResult) => io.out(line(result));
  const envFile = options.envFile ?? DEFAULT_ENV_FILE;
  const merged = await withEnvFile(env, envFile, io, print);
  const settingsPlace = merged === env ? 'the environment' : envFile;

  const { config, valid } = checkConfig(merged, settingsPlace, io, print);
  if (config === null) return EX_CONFIG;
  if (config.token !== '') registerSecret(config.token);

  const required: CheckResult[] = [];
  const warnings: CheckResult[] = [];
  const report = (results: CheckResult | CheckResult[], isRequired: boolean) => {
    for (const result of Array.isArray(results) ? results : [results]) {
      print(result);
      if (result.status === 'fail') (isRequired ? required : warnings).push(result);
    }
  };

  report(await checkToken(config, options.apiTimeoutMs ?? 10_000), true);
  report(await checkStateDir(config.stateDir), true);
  report(await checkClimate(config, options.devRoot ?? '/dev', options.openSensor ?? defaultOpenSensor), true);
  if (config.hardware === 'simulated') {
    report(skip('camera', 'simulated (TELEPI_HARDWARE=simulated)'), false);
    report(skip('GPIO and UPnP', 'not used with simulated hardware'), false);
  } else {
    report(await checkCamera(merged, options.captureTimeoutMs ?? 15_000, config.photoSize), false);
    report(await checkGpio(config, { sysfsRoot: options.sysfsRoot, factory: options.gpioFactory, blinkMs: options.blinkMs ?? 300 }), false);
    report(await checkUpnp(merged, options.upnpcTimeoutMs ?? 15_000), false);
  }
  report(await checkMqtt(config.mqtt, options.mqttTimeoutMs ?? 10_000), false);

  const warned = warnings.length === 0 ? '' : ` ${warnings.length} optional check(s) failed: telepi runs without those features until they are fixed.`;
  if (!valid) {
    io.out(`The configuration is invalid: fix it in ${settingsPlace} and run telepi doctor again.${warned}`);
    return EX_CONFIG;
  }
  if (required.length > 0) {
    io.out(`${required.length} required check(s) failed: telepi cannot run until they pass.${warned}`);
    return 1;
  }
  io.out(`All required checks passed.${warned}`);
  return 0;
}

const defaultOpenSensor: OpenSensor = async (bus, address) => (await import('../../hardware/bme280.js')).openBme280(bus, address);

/** Without the token in the environment, reads the settings file the service reads (env wins). */
async function withEnvFile(env: NodeJS.ProcessEnv, path: string, io: CliIo, print: (r: CheckResult) => void): Promise<NodeJS.ProcessEnv> {
  if ((env.TELEGRAM_BOT_TOKEN ?? '').trim() !== '') return env;
  const file = await readEnvFile(path);
  switch (file.kind) {
    case 'read':
      io.out(`Reading the settings in ${path}`);
      return { ...file.vars, ...definedOnly(env) };
    case 'missing':
      print(skip('settings file', `${path} does not exist; using the environment`));
      return env;
    case 'denied':
      print(fail('settings file', `cannot read ${path} (permission denied)`, `run with sudo to read ${path}: sudo telepi doctor`));
      return env;
    case 'error':
      print(fail('settings file', `cannot read ${path}: ${file.message}`));
      return env;
  }
}

// An empty variable in the environment must not hide the file's value (config treats '' as unset).
function definedOnly(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
}

/**
 * Loads the configuration; when it is invalid, prints each problem and carries on with the invalid
 * variables at their defaults, so everything else still gets checked.
 */
function checkConfig(env: NodeJS.ProcessEnv, place: string, io: CliIo, print: (r: CheckResult) => void): { config: Config | null; valid: boolean } {
  try {
    const config = loadConfig(env);
    print(ok('configuration', 'valid'));
    for (const text of describeConfig(config)) io.out(`    ${text}`);
    return { config, valid: true };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) print(fail('configuration', problem.message, `set ${problem.variable} in ${place}`));
    const rest = { ...env };
    for (const problem of error.problems) delete rest[problem.variable];
    try {
      return { config: loadConfig(rest, { requireBot: false }), valid: false };
    } catch (again) {
      if (!(again instanceof ConfigError)) throw again;
      return { config: null, valid: false };
    }
  }
}
