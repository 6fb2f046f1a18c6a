import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, describeConfig, loadConfig, type LoadConfigOptions } from '../src/app/config.js';

const token = '1234567:AAEabcdefghijklmnopqrstuvwxyz_-0123';
const minimal = { TELEGRAM_BOT_TOKEN: token, TELEPI_OWNERS: '111' };

// A filesystem where nothing is writable: the state dir falls back to the user's.
const readOnly: LoadConfigOptions = {
  fs: { accessSync: () => { throw Object.assign(new Error('EACCES'), { code: 'EACCES' }); } },
  homedir: '/home/pi',
  uid: 1000,
};

function configError(env: NodeJS.ProcessEnv, options: LoadConfigOptions = readOnly): ConfigError {
  try {
    loadConfig(env, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `threw ${String(error)}`);
    assert.equal(error.exitCode, 78);
    assert.ok(!error.message.includes(token), 'the token is echoed');
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

test('the minimal configuration gets every default', () => {
  const config = loadConfig(minimal, readOnly);
  assert.deepEqual(config, {
    token,
    apiRoot: 'https://api.telegram.org',
    owners: [111],
    users: [],
    hardware: 'real',
    stateDir: '/home/pi/.local/state/telepi',
    stateDirSource: 'home',
    bme280: { bus: 1, address: 0x76 },
    stream: { port: 8080, externalPort: 54321, ttlMs: 3_600_000 },
    gpio: { pirLine: null, ledLine: null },
    motionCooldownMs: 60_000,
    photoSize: { width: 1920, height: 1080 },
    logLevel: 'info',
    cameraInGroups: false,
    mqtt: null,
    history: { everyMs: 60_000, keepMs: 2 * 365 * 86_400_000 },
    reportStyle: 'new',
  });
});

test('every variable is read when set', () => {
  const config = loadConfig({
    ...minimal,
    TELEGRAM_API_ROOT: 'http://127.0.0.1:8081/',
    TELEPI_OWNERS: ' 111 , 222 ',
    TELEPI_USERS: '333,444',
    TELEPI_HARDWARE: 'simulated',
    TELEPI_STATE_DIR: '/srv/telepi',
    BME280_BUS: '3',
    BME280_ADDRESS: '0x77',
    STREAM_PORT: '9000',
    STREAM_EXTERNAL_PORT: '65535',
    STREAM_TTL: '1h30m',
    PIR_GPIO: '17',
    LED_GPIO: '27',
    MOTION_COOLDOWN: '10s',
    TELEPI_LOG_LEVEL: 'debug',
  }, readOnly);
  assert.equal(config.apiRoot, 'http://127.0.0.1:8081');
  assert.deepEqual(config.owners, [111, 222]);
  assert.deepEqual(config.users, [333, 444]);
  assert.equal(config.hardware, 'simulated');
  assert.equal(config.stateDir, '/srv/telepi');
  assert.equal(config.stateDirSource, 'TELEPI_STATE_DIR');
  assert.deepEqual(config.bme280, { bus: 3, address: 0x77 });
  assert.deepEqual(config.stream, { port: 9000, externalPort: 65535, ttlMs: 5_400_000 });
  assert.deepEqual(config.gpio, { pirLine: 17, ledLine: 27 });
  assert.equal(config.motionCooldownMs, 10_000);
  assert.equal(config.logLevel, 'debug');
});

test('an empty string counts as unset', () => {
  const config = loadConfig({ ...minimal, TELEPI_USERS: '', STREAM_PORT: '', PIR_GPIO: '', TELEPI_HARDWARE: '' }, readOnly);
  assert.deepEqual(config.users, []);
  assert.equal(config.stream.port, 8080);
  assert.equal(config.gpio.pirLine, null);
  assert.equal(config.hardware, 'real');
});

test('the BME280 address is accepted in hex or decimal', () => {
  assert.equal(loadConfig({ ...minimal, BME280_ADDRESS: '119' }, readOnly).bme280.address, 0x77);
  assert.equal(loadConfig({ ...minimal, BME280_ADDRESS: '0X76' }, readOnly).bme280.address, 0x76);
});

test('missing required variables are named with what they expect', () => {
  const error = configError({});
  assert.deepEqual(error.problems.map((p) => p.variable), ['TELEGRAM_BOT_TOKEN', 'TELEPI_OWNERS']);
  assert.match(error.message, /TELEGRAM_BOT_TOKEN is not set; expected the bot token from @BotFather/);
  assert.match(error.message, /TELEPI_OWNERS is not set; expected comma-separated numeric Telegram user ids/);
  assert.equal(configError({ TELEGRAM_BOT_TOKEN: token, TELEPI_OWNERS: ' ' }).variable, 'TELEPI_OWNERS');
});

test('a malformed token is refused without echoing it', () => {
  for (const bad of ['123456789:short', 'AAE:abcdefghijklmnopqrstuvwxyz', `${token} extra`, 'abc']) {
    const error = configError({ ...minimal, TELEGRAM_BOT_TOKEN: bad });
    assert.equal(error.variable, 'TELEGRAM_BOT_TOKEN');
    assert.ok(!error.message.includes(bad), `echoed ${bad}`);
    assert.match(error.message, /123456789:AAE… given by @BotFather/);
  }
});

// Each bad value: [variable, value, a fragment of what the message must say is accepted].
const badValues: [string, string, RegExp][] = [
  ['TELEGRAM_API_ROOT', 'api.telegram.org', /not a URL; expected an http\(s\) URL/],
  ['TELEGRAM_API_ROOT', 'ftp://example.org', /not an http\(s\) URL/],
  ['TELEGRAM_API_ROOT', 'https://example.org/?a=1', /query or fragment/],
  ['TELEPI_OWNERS', '12a', /^TELEPI_OWNERS: "12a" is not a Telegram user id; expected comma-separated numeric ids like 123456789,987654321$/],
  ['TELEPI_OWNERS', ',', /no user id given/],
  ['TELEPI_OWNERS', '-5', /"-5" is not a Telegram user id/],
  ['TELEPI_OWNERS', '0', /"0" is not a Telegram user id/],
  ['TELEPI_OWNERS', '99999999999999999999', /is not a Telegram user id/],
  ['TELEPI_USERS', '111,abc', /"abc" is not a Telegram user id/],
  ['TELEPI_HARDWARE', 'fake', /"fake" is not one of real, simulated/],
  ['TELEPI_STATE_DIR', 'state', /not an absolute path/],
  ['STATE_DIRECTORY', 'relative/dir', /not an absolute path/],
  ['BME280_BUS', '100', /from 0 to 99/],
  ['BME280_BUS', 'one', /not an I2C bus number/],
  ['BME280_ADDRESS', '0x60', /expected 0x76 \(SDO to GND\) or 0x77/],
  ['BME280_ADDRESS', 'x76', /not a BME280 address/],
  ['STREAM_PORT', '0', /not a TCP port; expected a whole number from 1 to 65535/],
  ['STREAM_PORT', '8080.5', /not a TCP port/],
  ['STREAM_EXTERNAL_PORT', '65536', /not a TCP port/],
  ['STREAM_TTL', '30s', /out of range; expected a duration from 1m to 24h/],
  ['STREAM_TTL', '25h', /out of range/],
  ['STREAM_TTL', '60', /not a duration like 90s, 15m/],
  ['PIR_GPIO', '28', /not a BCM GPIO line; expected a whole number from 0 to 27/],
  ['LED_GPIO', 'GPIO17', /not a BCM GPIO line/],
  ['MOTION_COOLDOWN', '5s', /expected a duration from 10s to 24h/],
  ['MOTION_COOLDOWN', 'soon', /not a duration/],
  ['TELEPI_LOG_LEVEL', 'verbose', /not one of debug, info, warn, error/],
];

for (const [variable, value, expected] of badValues) {
  test(`${variable}=${value} is refused with what is accepted`, () => {
    const error = configError({ ...minimal, [variable]: value });
    assert.equal(error.variable, variable);
    assert.equal(error.problems.length, 1);
    assert.ok(error.message.startsWith(`${variable}: `), error.message);
    assert.match(error.message, expected);
  });
}

test('the PIR and the LED cannot share a line', () => {
  const error = configError({ ...minimal, PIR_GPIO: '17', LED_GPIO: '17' });
  assert.equal(error.variable, 'LED_GPIO');
  assert.match(error.message, /line 17 is already PIR_GPIO/);
});

test('several problems are reported together, each naming its variable', () => {
  const error = configError({ TELEGRAM_BOT_TOKEN: 'nope', TELEPI_OWNERS: '1', STREAM_PORT: '0', PIR_GPIO: '99' });
  assert.deepEqual(error.problems.map((p) => p.variable), ['TELEGRAM_BOT_TOKEN', 'STREAM_PORT', 'PIR_GPIO']);
  assert.equal(error.variable, 'TELEGRAM_BOT_TOKEN');
  assert.equal(error.message.split('\n').length, 3);
  assert.ok(error.problems.every((p) => p.exitCode === 78));
});

test("the state dir comes from systemd's STATE_DIRECTORY, first of several", () => {
  const config = loadConfig({ ...minimal, STATE_DIRECTORY: '/var/lib/telepi:/var/lib/other' }, readOnly);
  assert.equal(config.stateDir, '/var/lib/telepi');
  assert.equal(config.stateDirSource, 'STATE_DIRECTORY');
  const explicit = loadConfig({ ...minimal, STATE_DIRECTORY: '/var/lib/telepi', TELEPI_STATE_DIR: '/data/t' }, readOnly);
  assert.equal(explicit.stateDir, '/data/t');
});

test('the state dir is /var/lib/telepi when it is writable, or when /var/lib is and it is missing', () => {
  const checked: string[] = [];
  const writable = loadConfig(minimal, { ...readOnly, fs: { accessSync: (p) => { checked.push(String(p)); } } });
  assert.equal(writable.stateDir, '/var/lib/telepi');
  assert.equal(writable.stateDirSource, 'system');
  assert.deepEqual(checked, ['/var/lib/telepi']);

  const missing = (p: unknown) => {
    if (p === '/var/lib/telepi') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  };
  assert.equal(loadConfig(minimal, { ...readOnly, fs: { accessSync: missing } }).stateDirSource, 'system');
});

test('root gets /var/lib/telepi even before it exists', () => {
  const enoent = () => { throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); };
  assert.equal(loadConfig(minimal, { ...readOnly, uid: 0, fs: { accessSync: enoent } }).stateDirSource, 'system');
  assert.equal(loadConfig(minimal, { ...readOnly, uid: 1000, fs: { accessSync: enoent } }).stateDirSource, 'home');
});

test('a user without /var/lib access gets XDG_STATE_HOME, ignoring a relative one', () => {
  const config = loadConfig({ ...minimal, XDG_STATE_HOME: '/home/pi/.state' }, readOnly);
  assert.equal(config.stateDir, '/home/pi/.state/telepi');
  assert.equal(config.stateDirSource, 'XDG_STATE_HOME');
  assert.equal(loadConfig({ ...minimal, XDG_STATE_HOME: 'rel' }, readOnly).stateDir, '/home/pi/.local/state/telepi');
});

test('describeConfig says where state lives and why, and never shows the token', () => {
  const lines = describeConfig(loadConfig({ ...minimal, PIR_GPIO: '17', BME280_ADDRESS: '0x77' }, readOnly));
  const text = lines.join('\n');
  assert.ok(!text.includes(token));
  assert.ok(!text.includes('AAE'));
  assert.match(text, /state directory: \/home\/pi\/.local\/state\/telepi \(the user's state directory, as \/var\/lib\/telepi is not writable\)/);
  assert.match(text, /BME280: bus 1, address 0x77/);
  assert.match(text, /PIR: BCM 17, LED: off, motion cooldown 1m/);
  assert.match(text, /links last 1h/);
  assert.match(text, /users: \(owners only\)/);
});

test('CAMERA_IN_GROUPS is yes or no (default no); anything else is one line naming it', () => {
  assert.equal(loadConfig({ ...minimal, CAMERA_IN_GROUPS: 'yes' }, readOnly).cameraInGroups, true);
  assert.equal(loadConfig({ ...minimal, CAMERA_IN_GROUPS: 'NO' }, readOnly).cameraInGroups, false);
  const error = configError({ ...minimal, CAMERA_IN_GROUPS: 'sometimes' });
  assert.equal(error.variable, 'CAMERA_IN_GROUPS');
  assert.equal(error.message, 'CAMERA_IN_GROUPS: "sometimes" is not one of yes, no');
});
