import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Bme280, type Bme280Calibration } from '../hardware/bme280.js';
import { parseEnvFile } from '../src/app/doctor-checks.js';
import { runDoctor, type DoctorOptions } from '../src/app/doctor.js';
import { BotApiEmulator } from '../src/emulator/index.js';
import { FAKE_BIN, fakeCameraTools, type FakeCameraControl } from './fakes/camera-tools.js';
import { fakeGpioFactory } from './fakes/gpio.js';
import { FakeBme280, FakeI2cBus } from './fakes/i2c-bus.js';
import { fakeGpioSysfs, LAYOUTS } from './fakes/sysfs.js';

const TOKEN = '1234567:AAdemo-doctor-token-000000000000000';
const OTHER_TOKEN = '7654321:AAdemo-doctor-other-token-0000000000';
const DATASHEET: Bme280Calibration = {
  digT1: 27504, digT2: 26435, digT3: -1000,
  digP1: 36477, digP2: -10685, digP3: 3024, digP4: 2855, digP5: 140, digP6: -7, digP7: 15500, digP8: -14600, digP9: 6000,
  digH1: 75, digH2: 362, digH3: 0, digH4: 313, digH5: 50, digH6: 30,
};

const cleanups: (() => Promise<unknown>)[] = [];
after(() => Promise.all(cleanups.map((cleanup) => cleanup())));

async function tempDir(prefix = 'telepi-doctor-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function emulator(token = TOKEN): Promise<BotApiEmulator> {
  const emu = await BotApiEmulator.start({ token });
  cleanups.push(() => emu.close());
  return emu;
}

/** Runs the doctor with captured output; the default env file does not exist. */
async function doctor(env: NodeJS.ProcessEnv, options: DoctorOptions = {}) {
  const lines: string[] = [];
  const io = { out: (text: string) => lines.push(text), err: (text: string) => lines.push(`stderr: ${text}`) };
  const code = await runDoctor(env, io, { envFile: '/nonexistent/telepi.env', apiTimeoutMs: 3000, ...options });
  const output = lines.join('\n');
  assert.ok(!output.includes(TOKEN) && !output.includes(OTHER_TOKEN), `the token was printed:\n${output}`);
  return { code, output, line: (what: string) => lines.find((l) => l.slice(2).startsWith(`${what}:`)) ?? `(no ${what} line)` };
}

async function simulatedEnv(emu: BotApiEmulator, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  return {
    TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: emu.apiRoot, TELEPI_OWNERS: '42', TELEPI_HARDWARE: 'simulated',
    TELEPI_STATE_DIR: await tempDir(), ...extra,
  };
}

describe('telepi doctor with simulated hardware', () => {
  test('passes with a good token, a writable state directory and the simulated sensor, and exits 0', async () => {
    const emu = await emulator();
    const env = await simulatedEnv(emu);
    const { code, output, line } = await doctor(env);
    assert.equal(code, 0, output);
    assert.equal(line('configuration'), '✓ configuration: valid');
    assert.match(line('Bot API token'), /^✓ Bot API token: accepted: the bot is @telepi_bot/);
    assert.equal(line('state directory'), `✓ state directory: ${env.TELEPI_STATE_DIR} is writable`);
    assert.match(line('climate sensor'), /^✓ climate sensor: simulated/);
    assert.doesNotMatch(output, /^✗/m);
    assert.match(output, /^All required checks passed\.$/m);
    assert.equal(emu.callsOf('getMe').length, 1);
  });

  test('a rejected token fails with the fix, exits 1, and the token is never printed', async () => {
    const emu = await emulator(OTHER_TOKEN);
    const { code, output, line } = await doctor(await simulatedEnv(emu));
    assert.equal(code, 1, output);
    assert.match(line('Bot API token'), /^✗ Bot API token: rejected by http:\/\/127\.0\.0\.1:\d+ \(401 Unauthorized\) → copy the token again from @BotFather/);
    assert.match(output, /^1 required check\(s\) failed/m);
  });

  test('an unreachable Bot API says which address could not be reached and to check the network', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    await new Promise((resolve) => closed.close(resolve));
    const port = typeof address === 'object' && address !== null ? address.port : 1;
    const env = await simulatedEnv(await emulator(), { TELEGRAM_API_ROOT: `http://127.0.0.1:${port}` });
    const { code, line } = await doctor(env);
    assert.equal(code, 1);
    assert.match(line('Bot API token'), new RegExp(`^✗ Bot API token: cannot reach http://127\\.0\\.0\\.1:${port} .* → check the network and DNS`));
  });

  test('an invalid configuration exits 78, names each variable, and still checks the rest', async () => {
    const emu = await emulator();
    const env = await simulatedEnv(emu, { TELEPI_OWNERS: '', BME280_ADDRESS: '0x42' });
    const { code, output, line } = await doctor(env);
    assert.equal(code, 78, output);
    assert.match(output, /^✗ configuration: TELEPI_OWNERS is not set; .* → set TELEPI_OWNERS in the environment$/m);
    assert.match(output, /^✗ configuration: BME280_ADDRESS: "0x42" is not a BME280 address; .* → set BME280_ADDRESS in the environment$/m);
    assert.match(line('Bot API token'), /^✓ Bot API token: accepted/);
    assert.match(line('state directory'), /^✓/);
    assert.match(output, /^The configuration is invalid: fix it in the environment/m);
  });

  test('a token that is not token-shaped is reported without showing it, and getMe is skipped', async () => {
    const emu = await emulator();
    const { code, output, line } = await doctor(await simulatedEnv(emu, { TELEGRAM_BOT_TOKEN: 'oops-not-a-token' }));
    assert.equal(code, 78);
    assert.doesNotMatch(output, /oops-not-a-token/);
    assert.match(line('Bot API token'), /^- Bot API token: not checked/);
    assert.equal(emu.callsOf('getMe').length, 0);
  });

  test('a state directory that is a file, or lies under one, fails as required', async () => {
    const emu = await emulator();
    const file = join(await tempDir(), 'state');
    await writeFile(file, 'not a directory');
    for (const [dir, problem] of [[file, 'is not a directory'], [join(file, 'telepi'), 'is not a directory']] as const) {
      const { code, line } = await doctor(await simulatedEnv(emu, { TELEPI_STATE_DIR: dir }));
      assert.equal(code, 1, dir);
      assert.match(line('state directory'), new RegExp(`^✗ state directory: .*${problem} → `), dir);
    }
  });

  test('a state directory not made yet passes when it can be created, and the doctor does not create it', async () => {
    const dir = join(await tempDir(), 'var', 'lib', 'telepi');
    const { code, line } = await doctor(await simulatedEnv(await emulator(), { TELEPI_STATE_DIR: dir }));
    assert.equal(code, 0);
    assert.match(line('state directory'), /^✓ state directory: .* does not exist yet; telepi creates it at start/);
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });
});

describe('the settings file', () => {
  test('parses systemd EnvironmentFile syntax: comments, blank lines, quotes and escapes', () => {
    const text = [
      '# telepi settings', '; also a comment', '', '  TELEGRAM_BOT_TOKEN = "1234567:AAquoted"  ',
      "TELEPI_OWNERS='42,43'", 'TELEPI_USERS=7 # not a comment here', 'QUOTED="say \\"hi\\""', 'EMPTY=',
      'URL=http://x/?a=b', 'not a line', '1BAD=x',
    ].join('\n');
    assert.deepEqual(parseEnvFile(text), {
      TELEGRAM_BOT_TOKEN: '1234567:AAquoted', TELEPI_OWNERS: '42,43', TELEPI_USERS: '7 # not a comment here',
      QUOTED: 'say "hi"', EMPTY: '', URL: 'http://x/?a=b',
    });
  });

  test('is read when the token is not in the environment, and the environment wins over it', async () => {
    const emu = await emulator();
    const state = await tempDir();
    const file = join(await tempDir(), 'telepi.env');
    await writeFile(file, [
      '# written by install.sh', `TELEGRAM_BOT_TOKEN="${TOKEN}"`, `TELEGRAM_API_ROOT='${emu.apiRoot}'`,
      'TELEPI_OWNERS=42', 'TELEPI_HARDWARE=real', `TELEPI_STATE_DIR=${state}`, '',
    ].join('\n'));
    const { code, output, line } = await doctor({ TELEPI_HARDWARE: 'simulated', TELEGRAM_BOT_TOKEN: '' }, { envFile: file });
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`^Reading the settings in ${file}$`, 'm'));
    assert.match(line('Bot API token'), /^✓/);
    assert.match(line('climate sensor'), /^✓ climate sensor: simulated/);
    assert.equal(line('state directory'), `✓ state directory: ${state} is writable`);
  });

  test('is not read when the token is in the environment', async () => {
    const file = join(await tempDir(), 'telepi.env');
    await writeFile(file, 'TELEPI_OWNERS=not-a-number\n');
    const { code, output } = await doctor(await simulatedEnv(await emulator()), { envFile: file });
    assert.equal(code, 0, output);
    assert.doesNotMatch(output, /Reading the settings/);
  });

  test('an unreadable file says to run with sudo', async () => {
    const dir = await tempDir();
    const file = join(dir, 'telepi.env');
    await writeFile(file, 'TELEPI_OWNERS=42\n', { mode: 0o000 });
    await chmod(dir, 0o777); // nobody's HOME and TMPDIR too (tsx keeps its cache there)
    // Root reads any file, so as root the doctor runs as nobody, the way a plain user would meet it.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const script = `const { runDoctor } = await import(${JSON.stringify(new URL('../src/app/doctor.ts', import.meta.url).href)});
      const lines = []; const io = { out: (t) => lines.push(t), err: (t) => lines.push(t) };
      const code = await runDoctor({ PATH: process.env.PATH }, io, { envFile: ${JSON.stringify(file)}, apiTimeoutMs: 1 });
      process.stdout.write(JSON.stringify({ code, output: lines.join('\\n') }));`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      ...asNobody, cwd: process.cwd(), encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: dir, TMPDIR: dir },
    });
    assert.equal(child.status, 0, child.stderr);
    const { code, output } = JSON.parse(child.stdout) as { code: number; output: string };
    assert.equal(code, 78);
    assert.match(output, new RegExp(`^✗ settings file: cannot read ${file} \\(permission denied\\) → run with sudo to read ${file}`, 'm'));
  });
});

describe('telepi doctor with real hardware (fakes at the lowest seams)', () => {
  interface RigOptions {
    tools?: ('rpicam-still' | 'rpicam-vid')[]; camera?: FakeCameraControl; upnpc?: object | null; i2c?: boolean;
    /** Where the fake BME280 answers (default 0x76); null: nothing on the bus. */
    sensorAt?: number | null;
  }

  /** Fake camera tools and upnpc on a private PATH, a fake /dev with i2c-1, a fake sysfs and GPIO lines. */
  async function rig(opts: RigOptions = {}) {
    const tools = fakeCameraTools(opts.tools ?? ['rpicam-still', 'rpicam-vid'], opts.camera ?? {});
    cleanups.push(async () => tools.cleanup());
    const home = tools.env.HOME!;
    if (opts.upnpc !== null) {
      await symlink(join(FAKE_BIN, 'upnpc'), join(home, 'bin', 'upnpc'));
      await writeFile(join(home, '.fake-upnpc.json'), JSON.stringify(opts.upnpc ?? {}));
    }
    const dev = await tempDir('telepi-dev-');
    if (opts.i2c ?? true) await writeFile(join(dev, 'i2c-1'), '');
    const sysfs = await fakeGpioSysfs(LAYOUTS.pi4Kernel66);
    cleanups.push(sysfs.cleanup);
    const gpio = fakeGpioFactory();
    const emu = await emulator();
    const env: NodeJS.ProcessEnv = {
      ...tools.env, TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: emu.apiRoot, TELEPI_OWNERS: '42',
      TELEPI_HARDWARE: 'real', TELEPI_STATE_DIR: await tempDir(),
    };
    const buses: FakeI2cBus[] = [];
    const options: DoctorOptions = {
      devRoot: dev, sysfsRoot: sysfs.root, gpioFactory: gpio, blinkMs: 1,
      openSensor: (bus, address) => {
        const fake = new FakeI2cBus({ busNumber: bus });
        if (opts.sensorAt !== null) fake.attach(opts.sensorAt ?? 0x76, new FakeBme280({ calibration: DATASHEET }));
        buses.push(fake);
        return Bme280.open(fake, address, { busNumber: bus, sleep: async () => {} });
      },
    };
    return { env, options, tools, gpio, buses, dev, sysfs: sysfs.root };
  }

  test('checks the sensor, the camera, GPIO and the router, each with a ✓, and exits 0', async () => {
    const r = await rig();
    const { code, output, line } = await doctor({ ...r.env, PIR_GPIO: '17', LED_GPIO: '27' }, r.options);
    assert.equal(code, 0, output);
    assert.match(line('climate sensor'), /^✓ climate sensor: BME280 at 0x76 on i2c-1: -?\d+\.\d°C {2}\d+\.\d% {2}[\d,]+\.\dhPa$/);
    assert.equal(r.buses[0]?.closed, true, 'the sensor is closed after the check');
    assert.match(line('camera tool'), /^✓ camera tool: rpicam-still \(.*\/rpicam-still\)$/);
    assert.match(line('test photo'), /^✓ test photo: 1920x1080, \d+ KB from rpicam-still in \d+\.\d s$/);
    assert.match(line('stream tool'), /^✓ stream tool: rpicam-vid /);
    assert.equal(line('GPIO'), '✓ GPIO: chip base 512 (sysfs line = 512 + BCM number)');
    assert.match(line('PIR sensor'), /^✓ PIR sensor: .*BCM17 \(sysfs 529\): opened and released$/);
    assert.match(line('LED'), /^✓ LED: .*BCM27 \(sysfs 539\): blinked once$/);
    const led = r.gpio.lines.find((l) => l.sysfsNumber === 539);
    assert.deepEqual(led?.writes, [0, 1, 0]);
    assert.ok(r.gpio.lines.every((l) => !l.exported), 'every line is released');
    assert.match(line('upnpc'), /^✓ upnpc: .*\/upnpc$/);
    assert.match(line('router'), /^✓ router: UPnP works and 203\.0\.113\.7 is public/);
    const runs = r.tools.runs();
    assert.equal(runs.length, 1);
    assert.deepEqual(runs[0]?.argv.slice(runs[0].argv.indexOf('--width'), runs[0].argv.indexOf('--width') + 4), ['--width', '1920', '--height', '1080']);
    assert.ok(runs.every((run) => !run.envKeys.includes('TELEGRAM_BOT_TOKEN')), 'the camera tool never sees the token');
  });

  test('without PIR_GPIO and LED_GPIO the GPIO checks are skipped, not failed', async () => {
    const r = await rig();
    const { code, line } = await doctor(r.env, r.options);
    assert.equal(code, 0);
    assert.equal(line('PIR sensor'), '- PIR sensor: not configured (PIR_GPIO unset)');
    assert.equal(line('LED'), '- LED: not configured (LED_GPIO unset)');
    assert.equal(r.gpio.lines.length, 0);
  });

  test('missing camera tools and upnpc are warnings with the apt command, and the exit code stays 0', async () => {
    const r = await rig({ tools: [], upnpc: null });
    const { code, output, line } = await doctor(r.env, r.options);
    assert.equal(code, 0, output);
    assert.match(line('camera tool'), /^✗ camera tool: none of rpicam-still, libcamera-still, raspistill is on PATH → sudo apt install rpicam-apps$/);
    assert.equal(line('test photo'), '- test photo: not taken: no camera tool');
    assert.match(line('stream tool'), /^✗ stream tool: .* → sudo apt install rpicam-apps$/);
    assert.equal(line('upnpc'), '✗ upnpc: not installed → sudo apt install miniupnpc');
    assert.match(output, /All required checks passed\. 3 optional check\(s\) failed/);
  });

  test('a camera that takes no photo is a warning with the error', async () => {
    const r = await rig({ camera: { mode: 'nocamera' } });
    const { code, line } = await doctor(r.env, r.options);
    assert.equal(code, 0);
    assert.match(line('test photo'), /^✗ test photo: rpicam-still exited with code \d+: .* → if telepi is running/);
  });

  test('a router behind carrier-grade NAT, or none at all, explains that /open gives LAN links', async () => {
    const cgnat = await rig({ upnpc: { mode: 'cgnat' } });
    const behind = await doctor(cgnat.env, cgnat.options);
    assert.equal(behind.code, 0);
    assert.match(behind.line('router'), /^✗ router: the external address 100\.64\.12\.34 is a carrier-grade NAT address .*: \/open will give LAN links/);
    const none = await rig({ upnpc: { mode: 'noigd' } });
    const absent = await doctor(none.env, none.options);
    assert.match(absent.line('router'), /^✗ router: no UPnP router answered: \/open will give LAN links.* → enable UPnP \(IGD\) in the router's settings$/);
  });

  test('no /dev/i2c-1 fails as required, with the raspi-config command', async () => {
    const r = await rig({ i2c: false });
    const { code, line } = await doctor(r.env, r.options);
    assert.equal(code, 1);
    assert.equal(line('climate sensor'), `✗ climate sensor: ${join(r.dev, 'i2c-1')} does not exist → enable I2C: sudo raspi-config nonint do_i2c 0, then reboot`);
    assert.equal(r.buses.length, 0);
  });

  test('another chip at the address fails as required, naming its chip id', async () => {
    const r = await rig();
    const options: DoctorOptions = {
      ...r.options,
      openSensor: (bus, address) => Bme280.open(new FakeI2cBus().attach(0x76, new FakeBme280({ calibration: DATASHEET, chipId: 0x99 })), address,
        { busNumber: bus, sleep: async () => {} }),
    };
    const { code, line } = await doctor(r.env, options);
    assert.equal(code, 1);
    assert.match(line('climate sensor'), /^✗ climate sensor: found chip id 0x99 at 0x76 on i2c-1, expected 0x60 \(BME280\)/);
  });

  test('a sensor at 0x77 while 0x76 is configured: the doctor says which address answered and what to set', async () => {
    const r = await rig({ sensorAt: 0x77 });
    const { code, line } = await doctor(r.env, r.options);
    assert.equal(code, 1);
    assert.match(line('climate sensor'), /^✗ climate sensor: .*0x76 on i2c-1.*; but BME280 at 0x77 on i2c-1 answered → set BME280_ADDRESS=0x77 \(Adafruit and SparkFun boards answer at 0x77\)/);
    assert.equal(r.buses[1]?.closed, true, 'the sensor found at 0x77 is closed again');
  });

  test('with 0x77 configured and the sensor at 0x76, it points back at 0x76', async () => {
    const r = await rig({ sensorAt: 0x76 });
    const { line } = await doctor({ ...r.env, BME280_ADDRESS: '0x77' }, r.options);
    assert.match(line('climate sensor'), /; but BME280 at 0x76 on i2c-1 answered → set BME280_ADDRESS=0x76 /);
  });

  test('nothing at either address: the doctor says both were tried and to check the wiring', async () => {
    const r = await rig({ sensorAt: null });
    const { code, line } = await doctor(r.env, r.options);
    assert.equal(code, 1);
    assert.match(line('climate sensor'), /^✗ climate sensor: .*0x76.*; nothing answered at 0x77 either → check the wiring/);
  });

  test('without a Raspberry Pi GPIO chip the GPIO check fails as a warning and the lines are not tried', async () => {
    const r = await rig();
    const { code, line } = await doctor({ ...r.env, PIR_GPIO: '17' }, { ...r.options, sysfsRoot: join(r.dev, 'no-gpio') });
    assert.equal(code, 0);
    assert.match(line('GPIO'), /^✗ GPIO: .*no-gpio does not exist: this kernel has no sysfs GPIO/);
    assert.equal(line('PIR sensor'), '- PIR sensor: not checked without a GPIO chip');
    assert.equal(r.gpio.lines.length, 0);
  });

  test('a GPIO line the kernel refuses is a warning that says what to do', async () => {
    const r = await rig();
    r.gpio.refuse('EBUSY');
    const { code, line } = await doctor({ ...r.env, PIR_GPIO: '17' }, r.options);
    assert.equal(code, 0);
    assert.match(line('PIR sensor'), /^✗ PIR sensor: PIR sensor on BCM17 \(sysfs 529\): cannot export the line \(EBUSY\): another driver/);
  });

  /** Makes sysfs show `gpio<n>` as exported, as the kernel does for a line a running program holds. */
  async function exported(sysfs: string, n: number, files: { direction: string; edge: string; value: string }) {
    await mkdir(join(sysfs, `gpio${n}`));
    for (const [name, text] of Object.entries(files)) await writeFile(join(sysfs, `gpio${n}`, name), `${text}\n`);
  }

  test('lines the running service holds are only read: never exported, unexported or blinked', async () => {
    const r = await rig();
    await exported(r.sysfs, 529, { direction: 'in', edge: 'rising', value: '0' });
    await exported(r.sysfs, 539, { direction: 'out', edge: 'none', value: '1' });
    const { code, output, line } = await doctor({ ...r.env, PIR_GPIO: '17', LED_GPIO: '27' }, r.options);
    assert.equal(code, 0, output);
    assert.match(line('PIR sensor'),
      /^✓ PIR sensor: BCM17 \(sysfs 529\) is exported already, most likely by the running telepi service: direction in, edge rising, value 0 \(only read, not touched/);
    assert.match(line('LED'), /^✓ LED: BCM27 \(sysfs 539\) is exported already, .*direction out, edge none, value 1 /);
    assert.equal(r.gpio.lines.length, 0, 'no line was exported (and so none unexported)');
    assert.equal(await readFile(join(r.sysfs, 'unexport'), 'utf8'), '');
    assert.equal(await readFile(join(r.sysfs, 'gpio539', 'value'), 'utf8'), '1\n', 'the LED was left as the service set it');
  });

  test('a line exported the other way round, by another program, is a warning that names the conflict', async () => {
    const r = await rig();
    await exported(r.sysfs, 529, { direction: 'out', edge: 'none', value: '0' });
    const { code, line } = await doctor({ ...r.env, PIR_GPIO: '17' }, r.options);
    assert.equal(code, 0);
    assert.equal(line('PIR sensor'), '✗ PIR sensor: BCM17 (sysfs 529) is exported as "out" (direction out, edge none, value 0), ' +
      'not as an input → another program or overlay uses that line: free it, or set PIR_GPIO to another BCM line');
    assert.equal(r.gpio.lines.length, 0);
  });

  test('GPIO without the unit\'s drop-in (a read-only /sys) says to rerun the installer, not to doubt the kernel', async () => {
    const r = await rig();
    r.gpio.refuse('EROFS');
    const { line } = await doctor({ ...r.env, LED_GPIO: '27' }, r.options);
    assert.match(line('LED'), /^✗ LED: LED on BCM27 \(sysfs 539\): cannot export the line \(EROFS\): \/sys is read-only here: .*rerun sudo \.\/install\.sh/);
    assert.doesNotMatch(line('LED'), /kernel|chip base/);
  });
});

test('the doctor leaves no probe file in the state directory', async () => {
  const env = await simulatedEnv(await emulator());
  await doctor(env);
  assert.deepEqual(await readdir(env.TELEPI_STATE_DIR!), []);
});
