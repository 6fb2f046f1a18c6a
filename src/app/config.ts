// The appliance's configuration: every environment variable checked once, at start, into a typed Config.
import * as nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { redact, type LogLevel } from '../log.js';
import { formatDuration, parseDuration } from './duration.js';
import { formatSpan, parseSpan } from './history/span.js';
import { describeMqtt, readMqttConfig, type MqttConfig } from './mqtt/settings.js';

/** A missing or invalid variable. Exit code 78 (EX_CONFIG) tells systemd not to restart-loop on it. */
export class ConfigError extends Error {
  readonly variable: string;
  readonly exitCode = 78;
  /** Every problem found, this one first: fix them all in one go. */
  readonly problems: readonly ConfigError[];

  constructor(variable: string, message: string, problems?: readonly ConfigError[]) {
    super(message);
    this.name = 'ConfigError';
    this.variable = variable;
    this.problems = problems ?? [this];
  }
}

/** Which rule chose the state directory, so the CLI can say why it is there. */
export type StateDirSource = 'TELEPI_STATE_DIR' | 'STATE_DIRECTORY' | 'system' | 'XDG_STATE_HOME' | 'home';

export interface Config {
  token: string;
  /** Without a trailing slash. */
  apiRoot: string;
  owners: number[];
  /** Further users allowed the climate commands (owners are not repeated here unless listed). */
  users: number[];
  hardware: 'real' | 'simulated';
  stateDir: string;
  stateDirSource: StateDirSource;
  bme280: { bus: number; address: number };
  stream: { port: number; externalPort: number; ttlMs: number };
  /** BCM line numbers; null when the device is not wired. */
  gpio: { pirLine: number | null; ledLine: number | null };
  motionCooldownMs: number;
  /** Still photos' size (PHOTO_SIZE); absent in hand-built configs, where the camera's default applies. */
  photoSize?: { width: number; height: number };
  logLevel: LogLevel;
  /** CAMERA_IN_GROUPS=yes: camera links and photos may be posted in groups (default: sent to the owner privately). */
  cameraInGroups?: boolean;
  /** null (or absent in hand-built configs) when MQTT_URL is unset: MQTT off. */
  mqtt?: MqttConfig | null;
  /** HISTORY_EVERY (10s–1h, default 1m) and HISTORY_KEEP (1d–20y, default 2y); absent in hand-built configs: the defaults. */
  history?: { everyMs: number; keepMs: number };
  /** REPORT_STYLE: `new` sends each report as a message, `edit` keeps one live message per chat (default new). */
  reportStyle?: 'edit' | 'new';
}

export interface LoadConfigOptions {
  /** Only accessSync is used, to test whether /var/lib/telepi is writable. */
  fs?: Pick<typeof nodeFs, 'accessSync'>;
  homedir?: string;
  /** Root may create /var/lib/telepi even when it does not exist yet. */
  uid?: number;
  /** False for commands that never talk to Telegram (read, snap): the token and owners may be unset. */
  requireBot?: boolean;
}

const systemStateDir = '/var/lib/telepi';
const tokenShape = /^\d+:[A-Za-z0-9_-]{20,}$/;
const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Reads and checks every variable; throws one ConfigError listing every problem found. */
export function loadConfig(env: NodeJS.ProcessEnv, options: LoadConfigOptions = {}): Config {
  const problems: ConfigError[] = [];
  // Each reader records its problem and returns a placeholder, so later variables are still checked.
  const check = <T>(variable: string, fallback: T, read: (value: string) => T, defaultText?: string): T => {
    const value = valueOf(env, variable) ?? defaultText;
    if (value === undefined) return fallback;
    try {
      return read(value);
    } catch (error) {
      problems.push(new ConfigError(variable, `${variable}: ${(error as Error).message}`));
      return fallback;
    }
  };
  const required = (variable: string, what: string): void => {
    if (valueOf(env, variable) === undefined) {
      problems.push(new ConfigError(variable, `${variable} is not set; expected ${what}`));
    }
  };

  if (options.requireBot ?? true) {
    required('TELEGRAM_BOT_TOKEN', 'the bot token from @BotFather, like 123456789:AAE…');
    required('TELEPI_OWNERS', 'comma-separated numeric Telegram user ids like 123456789,987654321');
  }
  const token = check('TELEGRAM_BOT_TOKEN', '', parseToken);
  const apiRoot = check('TELEGRAM_API_ROOT', '', parseApiRoot, 'https://api.telegram.org');
  const owners = check('TELEPI_OWNERS', [], (v) => parseUserIds(v, true));
  const users = check('TELEPI_USERS', [], (v) => parseUserIds(v, false));
  const hardware = check('TELEPI_HARDWARE', 'real', (v) => oneOf(v, ['real', 'simulated'] as const), 'real');
  const state = check('TELEPI_STATE_DIR', null, (v) => ({ dir: absolutePath(v), source: 'TELEPI_STATE_DIR' as const }));
  const bus = check('BME280_BUS', 1, (v) => integerIn(v, 0, 99, 'an I2C bus number'), '1');
  const address = check('BME280_ADDRESS', 0x76, parseBme280Address, '0x76');
  const port = check('STREAM_PORT', 8080, parsePort, '8080');
  const externalPort = check('STREAM_EXTERNAL_PORT', 54321, parsePort, '54321');
  const ttlMs = check('STREAM_TTL', 3_600_000, (v) => durationIn(v, 60_000, 86_400_000), '60m');
  const pirLine = check('PIR_GPIO', null, parseGpioLine);
  const ledLine = check('LED_GPIO', null, parseGpioLine);
  const motionCooldownMs = check('MOTION_COOLDOWN', 60_000, (v) => durationIn(v, 10_000, 86_400_000), '60s');
  const photoSize = check('PHOTO_SIZE', { width: 1920, height: 1080 }, parsePhotoSize, '1920x1080');
  const logLevel = check('TELEPI_LOG_LEVEL', 'info', (v) => oneOf(v, logLevels), 'info');
  const cameraInGroups = check('CAMERA_IN_GROUPS', false, (v) => oneOf(v, ['yes', 'no'] as const) === 'yes', 'no');
  const history = {
    everyMs: check('HISTORY_EVERY', 60_000, (v) => durationIn(v, 10_000, 3_600_000), '1m'),
    keepMs: check('HISTORY_KEEP', 2 * 365 * 86_400_000, parseHistoryKeep, '2y'),
  };
  const reportStyle = check('REPORT_STYLE', 'new', (v) => oneOf(v, ['edit', 'new'] as const), 'new');

  if (pirLine !== null && pirLine === ledLine) {
    problems.push(new ConfigError('LED_GPIO', `LED_GPIO: line ${ledLine} is already PIR_GPIO; wire the LED to another BCM line`));
  }
  const mqtt = readMqttConfig(env, check, (variable, message) => problems.push(new ConfigError(variable, message)),
    (v) => durationIn(v, 10_000, 86_400_000), os.hostname());
  const stateDir = state ?? check('STATE_DIRECTORY', null, parseSystemdStateDirectory) ?? defaultStateDir(env, options);

  const [first] = problems;
  if (first !== undefined) {
    throw problems.length === 1
      ? first
      : new ConfigError(first.variable, problems.map((p) => p.message).join('\n'), problems);
  }
  return {
    token, apiRoot, owners, users, hardware,
    stateDir: stateDir.dir, stateDirSource: stateDir.source,
    bme280: { bus, address },
    stream: { port, externalPort, ttlMs },
    gpio: { pirLine, ledLine },
    motionCooldownMs, photoSize, logLevel, mqtt, cameraInGroups, history, reportStyle,
  };
}

/** Lines for `telepi doctor` and the start-up log: everything but the token. */
export function describeConfig(config: Config): string[] {
  const hex = `0x${config.bme280.address.toString(16)}`;
  const line = (n: number | null) => (n === null ? 'off' : `BCM ${n}`);
  return [
    `Bot API: ${redact(config.apiRoot)}`,
    `owners: ${config.owners.join(', ')}`,
    `users: ${config.users.length > 0 ? config.users.join(', ') : '(owners only)'}`,
    `hardware: ${config.hardware}`,
    `state directory: ${config.stateDir} (${stateDirReasons[config.stateDirSource]})`,
    `BME280: bus ${config.bme280.bus}, address ${hex}`,
    `stream: port ${config.stream.port}, external port ${config.stream.externalPort}, links last ${formatDuration(config.stream.ttlMs)}`,
    ...(config.photoSize === undefined ? [] : [`photos: ${config.photoSize.width}x${config.photoSize.height}`]),
    `PIR: ${line(config.gpio.pirLine)}, LED: ${line(config.gpio.ledLine)}, motion cooldown ${formatDuration(config.motionCooldownMs)}`,
    `log level: ${config.logLevel}`,
    `camera output in groups: ${config.cameraInGroups === true ? 'yes' : 'no (sent to the owner privately)'}`,
    describeMqtt(config.mqtt),
    ...(config.history === undefined ? [] : [`history: a reading every ${formatDuration(config.history.everyMs)}, kept ${formatSpan(config.history.keepMs)}`]),
    ...(config.reportStyle === undefined ? [] : [`report style: ${config.reportStyle}`]),
  ];
}

const stateDirReasons: Record<StateDirSource, string> = {
  TELEPI_STATE_DIR: 'from TELEPI_STATE_DIR',
  STATE_DIRECTORY: "from systemd's StateDirectory=",
  system: `${systemStateDir} is writable`,
  XDG_STATE_HOME: `from XDG_STATE_HOME, as ${systemStateDir} is not writable`,
  home: `the user's state directory, as ${systemStateDir} is not writable`,
};

// An empty string counts as unset, so `VAR=` in the env file means "use the default".
function valueOf(env: NodeJS.ProcessEnv, variable: string): string | undefined {
  const value = env[variable]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function parseToken(value: string): string {
  // Never echo the value: it may be a real token with a typo.
  if (!tokenShape.test(value)) {
    throw new Error('the value (not shown) is not a bot token; expected the form 123456789:AAE… given by @BotFather');
  }
  return value;
}

function parseApiRoot(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`"${value}" is not a URL; expected an http(s) URL like https://api.telegram.org`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`"${value}" is not an http(s) URL; expected one like https://api.telegram.org`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new Error(`"${value}" has a query or fragment; expected a plain root like https://api.telegram.org`);
  }
  return value.replace(/\/+$/, '');
}

function parseUserIds(value: string, requireOne: boolean): number[] {
  const parts = value.split(',').map((part) => part.trim()).filter((part) => part !== '');
  const expected = 'expected comma-separated numeric ids like 123456789,987654321';
  for (const part of parts) {
    if (!/^\d+$/.test(part) || !Number.isSafeInteger(Number(part)) || Number(part) === 0) {
      throw new Error(`"${part}" is not a Telegram user id; ${expected}`);
    }
  }
  if (requireOne && parts.length === 0) throw new Error(`no user id given; ${expected}`);
  return [...new Set(parts.map(Number))];
}

function oneOf<T extends string>(value: string, accepted: readonly T[]): T {
  const found = accepted.find((a) => a === value.toLowerCase());
  if (found === undefined) throw new Error(`"${value}" is not one of ${accepted.join(', ')}`);
  return found;
}

function integerIn(value: string, min: number, max: number, what: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`"${value}" is not ${what}; expected a whole number from ${min} to ${max}`);
  }
  return n;
}

function parsePort(value: string): number {
  return integerIn(value, 1, 65535, 'a TCP port');
}

function parseGpioLine(value: string): number {
  return integerIn(value, 0, 27, 'a BCM GPIO line');
}

// rpicam-still's own limits are the sensor's; these only keep out typos like 19201080 or 0x0.
function parsePhotoSize(value: string): { width: number; height: number } {
  const match = /^(\d{1,5})x(\d{1,5})$/i.exec(value);
  const [width, height] = match === null ? [NaN, NaN] : [Number(match[1]), Number(match[2])];
  if (!(width >= 64 && width <= 9152 && height >= 64 && height <= 6944)) {
    throw new Error(`"${value}" is not a photo size; expected WIDTHxHEIGHT from 64x64 to 9152x6944, like 1920x1080 or 1640x1232`);
  }
  return { width, height };
}

function parseBme280Address(value: string): number {
  const n = /^0x[0-9a-f]+$/i.test(value) ? parseInt(value, 16) : /^\d+$/.test(value) ? Number(value) : NaN;
  if (n !== 0x76 && n !== 0x77) {
    throw new Error(`"${value}" is not a BME280 address; expected 0x76 (SDO to GND) or 0x77 (SDO to VCC)`);
  }
  return n;
}

function durationIn(value: string, minMs: number, maxMs: number): number {
  const ms = parseDuration(value);
  if (ms < minMs || ms > maxMs) {
    throw new Error(`"${value}" is out of range; expected a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`);
  }
  return ms;
}

function parseHistoryKeep(value: string): number {
  const ms = parseSpan(value);
  if (ms < 86_400_000 || ms > 20 * 365 * 86_400_000) throw new Error(`"${value}" is out of range; expected a span from 1d to 20y, like 90d or 2y`);
  return ms;
}

function absolutePath(value: string): string {
  if (!path.isAbsolute(value)) throw new Error(`"${value}" is not an absolute path; expected one like /var/lib/telepi`);
  return path.normalize(value);
}

interface ChosenStateDir {
  dir: string;
  source: StateDirSource;
}

// systemd may list several directories, colon-separated, when the unit names several: telepi's is the first.
function parseSystemdStateDirectory(value: string): ChosenStateDir {
  return { dir: absolutePath(value.split(':')[0] ?? value), source: 'STATE_DIRECTORY' };
}

function defaultStateDir(env: NodeJS.ProcessEnv, options: LoadConfigOptions): ChosenStateDir {
  if (systemDirWritable(options)) return { dir: systemStateDir, source: 'system' };
  // The XDG spec says to ignore a relative XDG_STATE_HOME.
  const xdg = valueOf(env, 'XDG_STATE_HOME');
  if (xdg !== undefined && path.isAbsolute(xdg)) return { dir: path.join(xdg, 'telepi'), source: 'XDG_STATE_HOME' };
  return { dir: path.join(options.homedir ?? os.homedir(), '.local', 'state', 'telepi'), source: 'home' };
}

function systemDirWritable(options: LoadConfigOptions): boolean {
  const fs = options.fs ?? nodeFs;
  const uid = options.uid ?? process.getuid?.();
  for (const candidate of [systemStateDir, path.dirname(systemStateDir)]) {
    try {
      fs.accessSync(candidate, nodeFs.constants.W_OK);
      return true;
    } catch (error) {
      // A missing /var/lib/telepi is still usable when /var/lib is writable (or we are root): we create it.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
      if (uid === 0) return true;
    }
  }
  return false;
}
