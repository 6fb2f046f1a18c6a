// PHOTO_SIZE: checked at start like every setting, and carried from the environment to rpicam-still's argv.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main, type CliIo } from '../src/app/cli.js';
import { ConfigError, loadConfig } from '../src/app/config.js';
import { fakeCameraTools } from './fakes/camera-tools.js';
import { jpegComments } from './fakes/jpeg.js';

function captureIo(): CliIo & { out_: string[]; err_: string[] } {
  const out_: string[] = [];
  const err_: string[] = [];
  return { out_, err_, out: (text) => out_.push(text), err: (text) => err_.push(text) };
}

const noBot = { requireBot: false } as const;

test('PHOTO_SIZE defaults to 1920x1080 and takes WIDTHxHEIGHT', () => {
  assert.deepEqual(loadConfig({}, noBot).photoSize, { width: 1920, height: 1080 });
  assert.deepEqual(loadConfig({ PHOTO_SIZE: '1640x1232' }, noBot).photoSize, { width: 1640, height: 1232 });
  assert.deepEqual(loadConfig({ PHOTO_SIZE: ' 4608X2592 ' }, noBot).photoSize, { width: 4608, height: 2592 });
});

test('a bad PHOTO_SIZE is one line naming the variable and what it accepts, exit code 78', () => {
  for (const bad of ['1920', '1920x', '19201080', '1920×1080', '0x0', '1920x1080x3', '100000x1', '-1920x1080', '32x32']) {
    assert.throws(() => loadConfig({ PHOTO_SIZE: bad }, noBot), (error: unknown) => {
      assert.ok(error instanceof ConfigError, bad);
      assert.equal(error.variable, 'PHOTO_SIZE');
      assert.equal(error.exitCode, 78);
      assert.equal(error.message,
        `PHOTO_SIZE: "${bad}" is not a photo size; expected WIDTHxHEIGHT from 64x64 to 9152x6944, like 1920x1080 or 1640x1232`);
      return true;
    });
  }
});

test('telepi snap with a bad PHOTO_SIZE exits 78 before any camera process starts', { timeout: 20_000 }, async (t) => {
  const tools = fakeCameraTools(['rpicam-still']);
  t.after(() => tools.cleanup());
  const io = captureIo();
  const code = await main(['snap', join(tools.env.HOME as string, 'x.jpg')], { ...tools.env, PHOTO_SIZE: 'big' }, io);
  assert.equal(code, 78);
  assert.deepEqual(io.err_, ['PHOTO_SIZE: "big" is not a photo size; expected WIDTHxHEIGHT from 64x64 to 9152x6944, like 1920x1080 or 1640x1232']);
  assert.equal(tools.runs().length, 0);
});

test('telepi snap takes the photo at PHOTO_SIZE: the setting reaches rpicam-still as --width/--height', { timeout: 20_000 }, async (t) => {
  const tools = fakeCameraTools(['rpicam-still', 'rpicam-vid']);
  const dir = mkdtempSync(join(tmpdir(), 'telepi-snap-'));
  t.after(() => {
    tools.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const io = captureIo();
  const file = join(dir, 'photo.jpg');
  const code = await main(['snap', file], { ...tools.env, PHOTO_SIZE: '1640x1232', TELEPI_STATE_DIR: dir }, io);
  assert.equal(code, 0, io.err_.join('\n'));
  const [run] = tools.runs();
  assert.equal(run?.tool, 'rpicam-still');
  assert.deepEqual([run.argv[run.argv.indexOf('--width') + 1], run.argv[run.argv.indexOf('--height') + 1]], ['1640', '1232']);
  assert.deepEqual(jpegComments(readFileSync(file)), ['fake rpicam-still 1640x1232']);
});
