// The checks behind `telepi doctor`: each looks at one thing and, when it fails, says how to fix it.

import { randomBytes } from 'node:crypto';
import { access, constants, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ClimateSensor } from '../../hardware/index.js';
import { Bot } from '../bot.js';
import { NetworkError, TelegramError } from '../errors.js';
import { describeError, redact } from '../log.js';
import type { Config } from './config.js';
import { formatReading } from './format.js';

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckResult {
  status: CheckStatus;
  what: string;
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

export const ok = (what: string, detail: string): CheckResult => ({ status: 'ok', what, detail });
export const skip = (what: string, detail: string): CheckResult => ({ status: 'skip', what, detail });
export const fail = (what: string, detail: string, fix?: string): CheckResult =>
  (fix === undefined ? { status: 'fail', what, detail } : { status: 'fail', what, detail, fix });

// ---- the env file --------------------------------------------------------------------------

/** Reads systemd EnvironmentFile= syntax: KEY=value lines, '#'/';' comments, optional quotes. */
export function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    vars[key] = unquote(line.slice(eq + 1).trim());
  }
  return vars;
}

function unquote(value: string): string {
  const quote = value[0];
  if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
    const inner = value.slice(1, -1);
    // Inside double quotes systemd honours backslash escapes; single quotes are literal.
    return quote === '"' ? inner.replace(/\\(.)/g, (_all, char: string) => ({ n: '\n', t: '\t' })[char] ?? char) : inner;
  }
  return value;
}

export type EnvFileResult =
  | { kind: 'read'; vars: Record<string, string> }
  | { kind: 'missing' }
  | { kind: 'denied' }
  | { kind: 'error'; message: string };

export async function readEnvFile(path: string): Promise<EnvFileResult> {
  try {
    return { kind: 'read', vars: parseEnvFile(await readFile(path, 'utf8')) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'EACCES' || code === 'EPERM') return { kind: 'denied' };
    return { kind: 'error', message: describeError(error) };
  }
}

// ---- Telegram --------------------------------------------------------------------------------

/** getMe with the configured token: proves the token and the way to the Bot API in one request. */
export async function checkToken(config: Config, timeoutMs: number): Promise<CheckResult> {
  const what = 'Bot API token';
  if (config.token === '') return skip(what, 'not checked: TELEGRAM_BOT_TOKEN is missing or invalid');
  // One try within timeoutMs, as doctor promises: the client's resends would make a dead API take 4× as long.
  const bot = new Bot(config.token, { apiRoot: config.apiRoot, timeoutMs, flow: false });
  try {
    const me = await bot.getMe();
    return ok(what, `accepted: the bot is @${me.username} ("${me.first_name}")`);
  } catch (error) {
    if (error instanceof TelegramError && (error.errorCode === 401 || error.errorCode === 404)) {
      return fail(what, `rejected by ${redact(config.apiRoot)} (${error.errorCode} ${error.description})`,
        'copy the token again from @BotFather (/mybots → your bot → API Token) into TELEGRAM_BOT_TOKEN');
    }
    if (error instanceof NetworkError) {
      return fail(what, `cannot reach ${redact(config.apiRoot)} (${describeError(error)})`,
        `check the network and DNS: curl -sI ${redact(config.apiRoot)} should answer`);
    }
    return fail(what, describeError(error));
  } finally {
    await bot.close();
  }
}

// ---- state directory -----------------------------------------------------------------------

/** Writes and removes a file in the state directory; a directory not made yet needs a writable parent. */
export async function checkStateDir(dir: string): Promise<CheckResult> {
  const what = 'state directory';
  const fix = `make it writable for the user telepi runs as (the service: sudo chown -R telepi:telepi ${dir}), or set TELEPI_STATE_DIR`;
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return checkCreatable(dir, fix);
    return fail(what, `cannot look at ${dir} (${code ?? describeError(error)})`, fix);
  }
  if (!isDirectory) return fail(what, `${dir} is not a directory`, 'move that file away, or set TELEPI_STATE_DIR to a directory');
  const probe = join(dir, `.doctor-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(probe, 'telepi doctor\n', { flag: 'wx' });
    await rm(probe, { force: true });
    return ok(what, `${dir} is writable`);
  } catch (error) {
    return fail(what, `cannot write in ${dir} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`, fix);
  }
}

async function checkCreatable(dir: string, fix: string): Promise<CheckResult> {
  let parent = dirname(dir);
  for (;;) {
    try {
      const info = await stat(parent);
      if (!info.isDirectory()) return fail('state directory', `cannot create ${dir}: ${parent} is not a directory`, 'set TELEPI_STATE_DIR to a directory');
      await access(parent, constants.W_OK);
      return ok('state directory', `${dir} does not exist yet; telepi creates it at start (${parent} is writable)`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && dirname(parent) !== parent) {
        parent = dirname(parent);
        continue;
      }
      return fail('state directory', `cannot create ${dir}: ${parent} is not writable (${code ?? describeError(error)})`, fix);
    }
  }
}

// ---- climate sensor ------------------------------------------------------------------------

export type OpenSensor = (bus: number, address: number) => Promise<ClimateSensor>;

/** The I2C device node, then the chip (its id is checked on open) and one reading; else who answers at the other address. */
export async function checkClimate(config: Config, devRoot: string, openSensor: OpenSensor): Promise<CheckResult> {
  const what = 'climate sensor';
  if (config.hardware === 'simulated') return ok(what, 'simulated (TELEPI_HARDWARE=simulated)');
  const { bus, address } = config.bme280;
  const device = join(devRoot, `i2c-${bus}`);
  try {
    await access(device);
  } catch {
    return fail(what, `${device} does not exist`, 'enable I2C: sudo raspi-config nonint do_i2c 0, then reboot');
  }
  let sensor: ClimateSensor;
  try {
    sensor = await openSensor(bus, address);
  } catch (error) {
    return otherAddress(bus, address, describeError(error), openSensor);
  }
  try {
    return ok(what, `${sensor.description}: ${formatReading(await sensor.read())}`);
  } catch (error) {
    return fail(what, `${sensor.description} answered but did not measure: ${describeError(error)}`);
  } finally {
    await sensor.close().catch(() => undefined);
  }
}

const hex = (address: number) => `0x${address.toString(16)}`;

/** The configured address failed: a sensor at the other one (Adafruit and SparkFun boards use 0x77) means a wrong setting. */
async function otherAddress(bus: number, address: number, why: string, openSensor: OpenSensor): Promise<CheckResult> {
  const other = address === 0x76 ? 0x77 : 0x76;
  let found: ClimateSensor;
  try {
    found = await openSensor(bus, other);
  } catch {
    return fail('climate sensor', `${why}; nothing answered at ${hex(other)} either`,
      'check the wiring (VIN to 3V3 on pin 1, GND, SDA to pin 3, SCL to pin 5) and that I2C is enabled, then reboot once');
  }
  await found.close().catch(() => undefined);
  return fail('climate sensor', `${why}; but ${found.description} answered`,
    `set BME280_ADDRESS=${hex(other)} (Adafruit and SparkFun boards answer at 0x77), then sudo systemctl restart telepi`);
}

// ---- camera --------------------------------------------------------------------------------

/** The still and video tools on PATH, and one real photo (the camera opens for one process at a time). */
export async function checkCamera(env: NodeJS.ProcessEnv, captureTimeoutMs: number, photoSize?: Config['photoSize']): Promise<CheckResult[]> {
  const [{ DEFAULT_PHOTO_SIZE, STILL_TOOLS, StillCamera }, { VIDEO_TOOLS }, { findExecutable }] = await Promise.all([
    import('../../hardware/camera.js'), import('../../hardware/stream.js'), import('../../hardware/which.js'),
  ]);
  const install = 'sudo apt install rpicam-apps';
  const results: CheckResult[] = [];
  const still = findExecutable(STILL_TOOLS, env);
  if (still === null) {
    results.push(fail('camera tool', `none of ${STILL_TOOLS.join(', ')} is on PATH`, install));
    results.push(skip('test photo', 'not taken: no camera tool'));
  } else {
    results.push(ok('camera tool', `${still.name} (${still.path})`));
    const startedAt = performance.now();
    try {
      const jpeg = await new StillCamera({ env, timeoutMs: captureTimeoutMs, defaults: photoSize }).capture();
      const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
      const size = photoSize ?? DEFAULT_PHOTO_SIZE;
      results.push(ok('test photo', `${size.width}x${size.height}, ${Math.max(1, Math.round(jpeg.length / 1024))} KB from ${still.name} in ${seconds} s`));
    } catch (error) {
      results.push(fail('test photo', describeError(error),
        'if telepi is running with a camera link open, it holds the camera: send /close (or sudo systemctl stop telepi) and run doctor again'));
    }
  }
  const video = findExecutable(VIDEO_TOOLS, env);
  results.push(video === null
    ? fail('stream tool', `none of ${VIDEO_TOOLS.join(', ')} is on PATH`, install)
    : ok('stream tool', `${video.name} (${video.path})`));
  return results;
}

// ---- UPnP ----------------------------------------------------------------------------------

/** upnpc on PATH, then the router's external address: public means /open links work from anywhere. */
export async function checkUpnp(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CheckResult[]> {
  const [{ which }, { PortMapError, UpnpcPortMapper, unreachableRange }] = await Promise.all([
    import('../../hardware/which.js'), import('../../hardware/portmap.js'),
  ]);
  const path = which('upnpc', env);
  if (path === null) {
    return [fail('upnpc', 'not installed', 'sudo apt install miniupnpc'), skip('router', 'not checked without upnpc')];
  }
  const lanOnly = '/open will give LAN links, which work on your home network only';
  let result: CheckResult;
  try {
    const ip = await new UpnpcPortMapper({ env, timeoutMs }).externalIp();
    const unreachable = ip === null ? null : unreachableRange(ip);
    if (ip === null) {
      result = fail('router', `UPnP answers but gives no external address: ${lanOnly}`, "check the router's internet connection");
    } else if (unreachable !== null) {
      result = fail('router', `the external address ${ip} is ${unreachable}: ${lanOnly}`,
        'for links from outside, ask your provider for a public IPv4 address (or reach home through a VPN)');
    } else {
      result = ok('router', `UPnP works and ${ip} is public: /open links work from the internet`);
    }
  } catch (error) {
    const noRouter = error instanceof PortMapError && error.code === 'NO_IGD';
    result = noRouter
      ? fail('router', `no UPnP router answered: ${lanOnly}`, "enable UPnP (IGD) in the router's settings")
      : fail('router', `${describeError(error)}: ${lanOnly}`);
  }
  return [ok('upnpc', path), result];
}
