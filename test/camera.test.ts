import assert from 'node:assert/strict';
import { test } from 'node:test';
import jpeg from 'jpeg-js';
import { StillCamera, StreamAwareCamera, toRpicamStillArgs } from '../hardware/camera.js';
import { isCompleteJpeg } from '../hardware/jpeg.js';
import { SimulatedCamera } from '../hardware/simulated/camera.js';
import { MjpegProcessSource } from '../hardware/stream.js';
import type { Camera } from '../hardware/types.js';
import { findExecutable, which } from '../hardware/which.js';
import { fakeCameraTools, isAlive, PARENT_TOKEN, type FakeCameraControl, type FakeTool } from './fakes/camera-tools.js';
import { jpegComments, ManualFrameSource, testJpeg } from './fakes/jpeg.js';

const ALL_STILL_TOOLS: FakeTool[] = ['rpicam-still', 'libcamera-still', 'raspistill'];

/** A StillCamera over the chosen fake tools, cleaned up after the test. */
function stillCamera(t: { after: (fn: () => void) => void }, tools: FakeTool[], control: FakeCameraControl = {},
  options: ConstructorParameters<typeof StillCamera>[0] = {}) {
  const fakes = fakeCameraTools(tools, control);
  t.after(() => fakes.cleanup());
  return { camera: new StillCamera({ env: fakes.env, ...options }), fakes };
}

test('rpicam-still is preferred when every tool is on PATH', async (t) => {
  const { camera, fakes } = stillCamera(t, ALL_STILL_TOOLS);
  assert.equal(camera.description, 'rpicam-still');
  const photo = await camera.capture();
  assert.equal(isCompleteJpeg(photo), true);
  assert.equal(jpeg.decode(photo).width, 16);
  assert.deepEqual(fakes.runs().map((run) => run.tool), ['rpicam-still']);
});

test('libcamera-still is used where rpicam-still is missing, raspistill where both are', async (t) => {
  const older = stillCamera(t, ['libcamera-still', 'raspistill']);
  await older.camera.capture();
  assert.deepEqual(older.fakes.runs().map((run) => run.tool), ['libcamera-still']);
  const legacy = stillCamera(t, ['raspistill']);
  assert.equal(legacy.camera.description, 'raspistill');
  await legacy.camera.capture();
  assert.deepEqual(legacy.fakes.runs().map((run) => run.tool), ['raspistill']);
});

test('with no camera tool on PATH, the error says what to install', async (t) => {
  const { camera } = stillCamera(t, []);
  assert.equal(camera.description, 'no camera tool');
  await assert.rejects(camera.capture(), /no camera tool found: install rpicam-apps \(apt install rpicam-apps\)/);
});

test('raspistill flags are translated for rpicam-still, which rejects -w and reads -h as help', async (t) => {
  const options = { width: 640, height: 480, rotation: 180, hflip: true, vflip: true, quality: 80 } as const;
  const { camera, fakes } = stillCamera(t, ['rpicam-still']);
  await camera.capture(options);
  const argv = fakes.runs()[0]!.argv;
  for (const pair of [['--width', '640'], ['--height', '480'], ['--rotation', '180'], ['-q', '80'], ['-t', '1000'],
    ['-e', 'jpg'], ['-o', '-']]) {
    assert.equal(argv[argv.indexOf(pair[0]!) + 1], pair[1], `${pair[0]} in ${argv.join(' ')}`);
  }
  for (const flag of ['--hflip', '--vflip', '-n']) assert.ok(argv.includes(flag), flag);
  for (const flag of ['-w', '-h', '-rot', '-hf', '-vf']) assert.ok(!argv.includes(flag), flag);

  const legacy = stillCamera(t, ['raspistill']);
  await legacy.camera.capture(options);
  const legacyArgv = legacy.fakes.runs()[0]!.argv;
  for (const flag of ['-w', '-h', '-rot', '-hf', '-vf', '-n']) assert.ok(legacyArgv.includes(flag), flag);
});

test('toRpicamStillArgs maps each flag and refuses one it cannot translate', () => {
  assert.deepEqual(toRpicamStillArgs(['-w', '8', '-h', '6', '-ss', '1000', '-hf', '-o', '-']),
    ['--width', '8', '--height', '6', '--shutter', '1000', '--hflip', '-o', '-']);
  assert.throws(() => toRpicamStillArgs(['-ifx', 'sketch']), /-ifx has no rpicam-still equivalent/);
});

test('with no size asked, a still is about 2 MP (1920x1080), not the whole 12 MP sensor', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still']);
  assert.deepEqual(jpegComments(await camera.capture()), ['fake rpicam-still 1920x1080']);
  const argv = fakes.runs()[0]!.argv;
  assert.equal(argv[argv.indexOf('--width') + 1], '1920');
  assert.equal(argv[argv.indexOf('--height') + 1], '1080');
});

test('a configured photo size (PHOTO_SIZE) reaches rpicam-still, and a capture\'s own size still wins', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still'], {}, { defaults: { width: 1640, height: 1232 } });
  await camera.capture();
  await camera.capture({ width: 640, height: 480 });
  const sizes = fakes.runs().map(({ argv }) => `${argv[argv.indexOf('--width') + 1]}x${argv[argv.indexOf('--height') + 1]}`);
  assert.deepEqual(sizes, ['1640x1232', '640x480']);
});

test('the capture delay is short, not rpicam-still\'s default 5 s', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still'], {}, { captureDelayMs: 300 });
  await camera.capture();
  const argv = fakes.runs()[0]!.argv;
  assert.equal(argv[argv.indexOf('-t') + 1], '300');
});

test('a capture that logs to stderr, as rpicam-still always does, still succeeds', async (t) => {
  const { camera } = stillCamera(t, ['rpicam-still']);
  assert.equal(isCompleteJpeg(await camera.capture()), true);
});

test('a missing camera fails with the tool, its exit code and the end of its stderr', async (t) => {
  const { camera } = stillCamera(t, ['rpicam-still'], { mode: 'nocamera' });
  await assert.rejects(camera.capture(), /rpicam-still exited with code 255: .*ERROR: \*\*\* no cameras available \*\*\*/s);
});

test('a camera held by another process fails with the reason', async (t) => {
  const { camera } = stillCamera(t, ['rpicam-still'], { mode: 'busy' });
  await assert.rejects(camera.capture(), /failed to acquire camera/);
});

test('a capture that hangs is killed, even when it ignores SIGTERM, and the error says so', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still'], { mode: 'hang' }, { timeoutMs: 1000, killGraceMs: 100 });
  await assert.rejects(camera.capture(), /rpicam-still took no photo within 1000 ms and was killed/);
  const pid = fakes.runs()[0]!.pid;
  assert.equal(isAlive(pid), false, `process ${pid} is still running`);
});

test('output that is not a complete JPEG is an error', async (t) => {
  const { camera } = stillCamera(t, ['rpicam-still'], { mode: 'garbage' });
  await assert.rejects(camera.capture(), /rpicam-still exited 0 but wrote 19 bytes that are not a complete JPEG/);
});

test('the bot token in our environment never reaches the camera process', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still']);
  assert.equal(fakes.env.TELEGRAM_BOT_TOKEN, PARENT_TOKEN);
  await camera.capture();
  const envKeys = fakes.runs()[0]!.envKeys;
  assert.ok(!envKeys.includes('TELEGRAM_BOT_TOKEN'));
  assert.ok(!envKeys.includes('SECRET_SAUCE'));
  assert.ok(envKeys.includes('HOME') && envKeys.includes('PATH'));
});

test('captures asked for at once run one at a time, so they never fight over the camera', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still'], { delayMs: 150 });
  const photos = await Promise.all([camera.capture(), camera.capture(), camera.capture()]);
  assert.ok(photos.every(isCompleteJpeg));
  assert.equal(fakes.runs().length, 3);
  // the fake camera does refuse a second process: two cameras without a shared queue collide
  fakes.setControl({ delayMs: 800 });
  const other = new StillCamera({ env: fakes.env });
  const results = await Promise.allSettled([camera.capture(), other.capture()]);
  assert.ok(results.some((r) => r.status === 'rejected' && /failed to acquire camera/.test(String(r.reason))));
});

test('a rotation rpicam-still cannot do is refused before any process starts', async (t) => {
  const { camera, fakes } = stillCamera(t, ['rpicam-still']);
  await assert.rejects(camera.capture({ rotation: 90 as 0 }), /rotation must be 0 or 180/);
  assert.equal(fakes.runs().length, 0);
});

/** A still camera that records calls and answers with a labelled JPEG. */
function recordingCamera(): Camera & { calls: number } {
  return {
    calls: 0,
    description: 'recording',
    capture() {
      this.calls += 1;
      return Promise.resolve(testJpeg('from the still camera'));
    },
  };
}

test('while the stream runs, a photo is the stream\'s next frame, not the one it already had, and no still is taken', async () => {
  const still = recordingCamera();
  const stream = new ManualFrameSource();
  stream.emit(testJpeg('stale frame'));
  const camera = new StreamAwareCamera(still, stream, { frameTimeoutMs: 2000 });
  const photo = camera.capture();
  setTimeout(() => stream.emit(testJpeg('next frame')), 20);
  assert.deepEqual(jpegComments(await photo), ['next frame']);
  assert.equal(still.calls, 0);
});

test('a running stream that sends no frame fails the photo with the reason, and never starts a still on the busy camera', async () => {
  const still = recordingCamera();
  const stream = new ManualFrameSource();
  stream.emit(testJpeg('stale frame'));
  const camera = new StreamAwareCamera(still, stream, { frameTimeoutMs: 30 });
  await assert.rejects(camera.capture(), /the stream holds the camera but sent no frame within 30 ms.*stop the stream and try again/);
  assert.equal(still.calls, 0);
});

test('with the stream stopped, the still camera takes the photo', async () => {
  const still = recordingCamera();
  const stream = new ManualFrameSource();
  stream.running = false;
  await new StreamAwareCamera(still, stream).capture();
  assert.equal(still.calls, 1);
});

test('a photo during a real stream comes from rpicam-vid, which holds the camera', async (t) => {
  const fakes = fakeCameraTools(['rpicam-still', 'rpicam-vid'], { fps: 50 });
  t.after(() => fakes.cleanup());
  const stream = new MjpegProcessSource({ env: fakes.env });
  t.after(() => stream.stop());
  await stream.start();
  const still = new StillCamera({ env: fakes.env });
  const camera = new StreamAwareCamera(still, stream);
  const photo = await camera.capture();
  assert.match(jpegComments(photo)[0] ?? '', /^fake rpicam-vid frame \d+/);
  await assert.rejects(still.capture(), /failed to acquire camera/);
});

test('the simulated camera paints a real JPEG of the asked size, different as time passes', async () => {
  let now = new Date(2024, 5, 1, 12, 34, 56);
  const camera = new SimulatedCamera({ now: () => now, width: 320, height: 180 });
  const first = await camera.capture();
  const image = jpeg.decode(first);
  assert.deepEqual([image.width, image.height], [320, 180]);
  assert.deepEqual(await camera.capture(), first, 'the same instant paints the same picture');
  now = new Date(2024, 5, 1, 12, 34, 57);
  assert.notDeepEqual(await camera.capture(), first);
  const small = jpeg.decode(await camera.capture({ width: 64, height: 48, rotation: 180 }));
  assert.deepEqual([small.width, small.height], [64, 48]);
});

test('tools are looked for only in absolute PATH entries, never relative to the working directory', (t) => {
  const fakes = fakeCameraTools(['rpicam-still']);
  t.after(() => fakes.cleanup());
  const bin = fakes.env.PATH!;
  assert.equal(which('rpicam-still', { PATH: `relative/dir::${bin}` }), `${bin}/rpicam-still`);
  assert.equal(which('rpicam-still', { PATH: '.:bin' }), null);
  assert.deepEqual(findExecutable(['rpicam-still', 'raspistill'], { PATH: bin }), { name: 'rpicam-still', path: `${bin}/rpicam-still` });
});
