import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCompleteJpeg } from '../hardware/jpeg.js';
import { SimulatedStream } from '../hardware/simulated/stream.js';
import { StreamServer } from '../hardware/stream-server.js';
import { MjpegProcessSource, type Schedule } from '../hardware/stream.js';
import type { Camera } from '../hardware/types.js';
import { fakeCameraTools, isAlive, type FakeCameraControl, type FakeTool } from './fakes/camera-tools.js';
import { jpegComments, testJpeg } from './fakes/jpeg.js';
import { get, openStream, startServer, TOKEN, until, type After } from './stream-support.js';

function processSource(t: After, tools: FakeTool[], control: FakeCameraControl,
  options: ConstructorParameters<typeof MjpegProcessSource>[0] = {}) {
  const fakes = fakeCameraTools(tools, control);
  const source = new MjpegProcessSource({ env: fakes.env, width: 64, height: 48, ...options });
  const frames: Buffer[] = [];
  source.onFrame((frame) => frames.push(frame));
  t.after(async () => {
    await source.stop();
    fakes.cleanup();
  });
  return { source, fakes, frames };
}

test('rpicam-vid is started with MJPEG flags, flushing each frame, and its frames come out whole and distinct', async (t) => {
  const { source, fakes, frames } = processSource(t, ['rpicam-vid', 'raspivid'], { fps: 50, chunkBytes: 7 });
  await source.start();
  await until(() => frames.length >= 3, '3 frames');
  assert.deepEqual(fakes.runs()[0]!.argv,
    ['-t', '0', '-n', '--codec', 'mjpeg', '--width', '64', '--height', '48', '--framerate', '15', '-q', '70', '--flush', '-o', '-']);
  assert.ok(frames.every(isCompleteJpeg));
  assert.equal(new Set(frames.map((f) => jpegComments(f)[0])).size, frames.length);
  assert.equal(source.latestFrame(), frames.at(-1));
  assert.ok(!fakes.runs()[0]!.envKeys.includes('TELEGRAM_BOT_TOKEN'));
});

test('raspivid gets its own flags where it is the only tool', async (t) => {
  const { source, fakes, frames } = processSource(t, ['raspivid'], { fps: 50 });
  await source.start();
  await until(() => frames.length >= 1, 'a frame');
  assert.deepEqual(fakes.runs()[0]!.argv, ['-t', '0', '-n', '-cd', 'MJPEG', '-w', '64', '-h', '48', '-fps', '15', '-o', '-']);
});

test('with no video tool installed, start() says what to install', async (t) => {
  const { source } = processSource(t, [], {});
  await assert.rejects(source.start(), /no camera video tool found: install rpicam-apps/);
  assert.equal(source.running, false);
});

test('a camera process that dies is restarted with a growing backoff', async (t) => {
  const delays: number[] = [];
  const schedule: Schedule = (fn, delayMs) => {
    delays.push(delayMs);
    const timer = setTimeout(fn, delayMs);
    return () => clearTimeout(timer);
  };
  const { source, fakes, frames } = processSource(t, ['rpicam-vid'], { fps: 50, dieAfterFrames: 2 },
    { restartBackoffMs: { initial: 20, max: 80 }, schedule, now: () => 0 });
  await source.start();
  await until(() => source.spawnCount >= 4 && frames.length >= 7, 'three restarts');
  assert.deepEqual(delays.slice(0, 3), [20, 40, 80]);
  assert.ok(new Set(fakes.runs().map((run) => run.pid)).size >= 4);
  assert.ok(frames.every(isCompleteJpeg), 'a dying process\'s half frame is never emitted');
  assert.match(source.lastError ?? '', /rpicam-vid exited \(code 1\).*fake camera died/);
});

test('stop() kills the camera process, SIGKILL if it ignores SIGTERM, and resolves once it is gone', async (t) => {
  const { source, fakes } = processSource(t, ['rpicam-vid'], { mode: 'hang' }, { stopGraceMs: 100 });
  await source.start();
  await until(() => fakes.runs().length === 1, 'the process to start');
  await sleep(300); // let the fake install its SIGTERM handler
  await source.stop();
  assert.equal(isAlive(fakes.runs()[0]!.pid), false);
  assert.equal(source.running, false);

  fakes.setControl({ fps: 50 });
  const frames: Buffer[] = [];
  source.onFrame((frame) => frames.push(frame));
  await source.start();
  await until(() => frames.length > 0, 'frames after a restart');
  await source.stop();
  const count = frames.length;
  await sleep(100);
  assert.equal(frames.length, count, 'no frame after stop()');
  assert.equal(source.latestFrame(), null);
});

test('the simulated stream makes frames on its timer and keeps the latest', async () => {
  let captures = 0;
  const camera: Camera = { description: 'test', capture: () => Promise.resolve(testJpeg(`sim ${++captures}`)) };
  const pending: Array<() => void> = [];
  const schedule: Schedule = (fn, delayMs) => {
    assert.equal(delayMs, 100);
    pending.push(fn);
    return () => pending.splice(pending.indexOf(fn), 1);
  };
  const stream = new SimulatedStream({ camera, framerate: 10, schedule });
  await stream.start();
  await until(() => stream.latestFrame() !== null, 'the first frame');
  assert.deepEqual(jpegComments(stream.latestFrame()!), ['sim 1']);
  pending.shift()!();
  await until(() => captures === 2 && pending.length === 1, 'the second frame');
  assert.deepEqual(jpegComments(stream.latestFrame()!), ['sim 2']);
  await stream.stop();
  assert.equal(pending.length, 0);
  assert.equal(stream.latestFrame(), null);
});

// ---- the HTTP server ----

test('the stream is multipart JPEG parts, each with its type and length', async (t) => {
  const { server, source, port } = await startServer(t);
  const viewer = openStream(t, port);
  await until(() => server.clientCount === 1, 'the viewer');
  for (let i = 0; i < 3; i++) source.emit(testJpeg(`part ${i}`));
  await until(() => viewer.parts.length === 3, '3 parts');
  assert.match(viewer.res!.headers['content-type'] ?? '', /^multipart\/x-mixed-replace; boundary=telepiframe$/);
  assert.deepEqual(viewer.parts.map((p) => jpegComments(p)[0]), ['part 0', 'part 1', 'part 2']);
  assert.equal(viewer.res!.headers['cache-control'], 'no-store');
});

test('a missing, wrong or expired token gets a 403 and no image bytes', async (t) => {
  let nowMs = 0;
  const { server, source, port } = await startServer(t, { now: () => nowMs, renderPage: () => '<p>page</p>' });
  source.emit(testJpeg('secret view'));
  for (const path of ['/stream', '/snapshot.jpg?token=', `/?token=${TOKEN}x`, `/stream?token=${TOKEN.slice(1)}`]) {
    const reply = await get(port, path);
    assert.equal(reply.status, 403, path);
    assert.equal(reply.body.indexOf(Buffer.from([0xff, 0xd8])), -1, path);
    assert.match(reply.headers['content-type'] ?? '', /^text\/plain/);
  }
  server.setAccess({ token: TOKEN, expiresAtMs: 1000 });
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`)).status, 200);
  nowMs = 1000;
  const expired = await get(port, `/snapshot.jpg?token=${TOKEN}`);
  assert.equal(expired.status, 403);
  assert.equal(expired.body.indexOf(Buffer.from([0xff, 0xd8])), -1);
  server.setAccess(null);
  assert.equal((await get(port, `/?token=${TOKEN}`)).status, 403);
});

test('the snapshot is the latest frame as a JPEG attachment, with the protective headers', async (t) => {
  const { source, port } = await startServer(t, { snapshotWaitMs: 50 });
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`)).status, 503, 'no frame yet');
  source.emit(testJpeg('old'));
  source.emit(testJpeg('newest'));
  const reply = await get(port, `/snapshot.jpg?token=${TOKEN}`);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-type'], 'image/jpeg');
  assert.match(reply.headers['content-disposition'] ?? '', /^attachment; filename="telepi-[\dT-]+Z\.jpg"$/);
  assert.ok(isCompleteJpeg(reply.body));
  assert.deepEqual(jpegComments(reply.body), ['newest']);
  assert.equal(reply.headers['cache-control'], 'no-store');
  assert.equal(reply.headers['referrer-policy'], 'no-referrer');
  assert.equal(reply.headers['x-content-type-options'], 'nosniff');
});

test('the page is rendered with the token and the time left, under a strict CSP', async (t) => {
  const seen: unknown[] = [];
  const { server, port } = await startServer(t, {
    now: () => 400, renderPage: (info) => (seen.push(info), `<img src="/stream?token=${info.token}">`),
  });
  server.setAccess({ token: TOKEN, expiresAtMs: 1000 });
  const reply = await get(port, `/?token=${TOKEN}`);
  assert.equal(reply.status, 200);
  assert.deepEqual(seen, [{ token: TOKEN, remainingMs: 600 }]);
  assert.match(reply.headers['content-type'] ?? '', /^text\/html/);
  const csp = String(reply.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /img-src 'self'/);
  for (const name of ['cache-control', 'referrer-policy', 'x-content-type-options']) assert.ok(reply.headers[name], name);
  const { port: bare } = await startServer(t);
  assert.equal((await get(bare, `/?token=${TOKEN}`)).status, 404, 'no page without renderPage');
});

test('repeated wrong tokens from one address are answered ever more slowly, in bounded memory', async (t) => {
  const throttle = { freeFailures: 2, initialDelayMs: 80, maxDelayMs: 200, maxAddresses: 3 };
  const { server, port } = await startServer(t, { throttle, snapshotWaitMs: 10 });
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push((await get(port, '/stream?token=nope')).ms);
  assert.ok(times[2]! >= 75 && times[3]! >= 155 && times[4]! >= 195, `403 times ${times.map(Math.round).join(', ')}`);
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`)).status, 503, 'let in: no frame yet');
  assert.equal(server.throttledAddressCount, 0, 'a right token clears the address');
  for (const last of [2, 3, 4, 5, 6]) await get(port, '/stream?token=nope', `127.0.0.${last}`);
  assert.equal(server.throttledAddressCount, 3);
});

test('setAccess(null) ends every open stream at once', async (t) => {
  const { server, source, port } = await startServer(t);
  const viewers = [openStream(t, port), openStream(t, port)];
  await until(() => server.clientCount === 2, 'two viewers');
  source.emit(testJpeg('before'));
  await until(() => viewers.every((v) => v.parts.length === 1), 'a frame each');
  server.setAccess(null);
  await until(() => viewers.every((v) => v.ended), 'the streams to end');
  assert.equal(server.clientCount, 0);
});

test('streams end when access expires on the monotonic clock, and a new token ends old streams', async (t) => {
  let nowMs = 0;
  const { server, source, port } = await startServer(t, { now: () => nowMs });
  server.setAccess({ token: TOKEN, expiresAtMs: 1000 });
  const viewer = openStream(t, port);
  await until(() => server.clientCount === 1, 'the viewer');
  nowMs = 1000;
  source.emit(testJpeg('after expiry'));
  await until(() => viewer.ended, 'the stream to end');
  assert.equal(viewer.parts.length, 0, 'no frame after expiry');

  server.setAccess({ token: TOKEN, expiresAtMs: null });
  const old = openStream(t, port);
  await until(() => server.clientCount === 1, 'a second viewer');
  server.setAccess({ token: 'another-token', expiresAtMs: null });
  await until(() => old.ended, 'the old-token stream to end');
});

test('a malformed request URL gets a 400 instead of crashing the server', async (t) => {
  const { port } = await startServer(t);
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  socket.write('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  let reply = '';
  socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
  await new Promise((resolve) => socket.on('end', resolve));
  assert.match(reply, /^HTTP\/1\.1 400 /);
  assert.equal((await get(port, `/snapshot.jpg?token=wrong`)).status, 403, 'still serving');
});

test('viewers beyond maxClients get a 503', async (t) => {
  const { server, port } = await startServer(t, { maxClients: 1 });
  openStream(t, port);
  await until(() => server.clientCount === 1, 'the viewer');
  assert.equal((await get(port, `/stream?token=${TOKEN}`)).status, 503);
});

test('a stalled client holds at most one pending frame while nine others keep receiving', async (t) => {
  const { server, source, port } = await startServer(t);
  const stalled = connect(port, '127.0.0.1');
  stalled.write(`GET /stream?token=${TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n`);
  stalled.pause(); // never reads again: the kernel buffers fill, then the server must drop frames
  t.after(() => stalled.destroy());
  const healthy = Array.from({ length: 9 }, () => openStream(t, port));
  await until(() => server.clientCount === 10, 'ten viewers');
  const frame = testJpeg('big', 256 * 1024);
  const pump = setInterval(() => source.emit(frame), 5);
  t.after(() => clearInterval(pump));
  const stalledStats = () => server.clientStats().find((s) => s.remotePort === stalled.localPort)!;
  await until(() => Math.min(...healthy.map((v) => v.parts.length)) >= 60, 'healthy viewers to get 60 frames', 30_000);
  const before = stalledStats();
  const healthyBefore = Math.min(...healthy.map((v) => v.parts.length));
  await until(() => Math.min(...healthy.map((v) => v.parts.length)) >= healthyBefore + 30, '30 more frames', 30_000);
  const after = stalledStats();
  assert.ok(after.framesSent <= before.framesSent + 1, `stalled client got ${before.framesSent} then ${after.framesSent}`);
  assert.ok(after.framesDropped > 0);
  for (const stats of server.clientStats()) assert.ok(stats.pendingFrames <= 1);
  assert.ok(after.bufferedBytes <= frame.length + 200, `${after.bufferedBytes} bytes buffered`);
  assert.ok(healthy.every((v) => v.parts.every(isCompleteJpeg)));
});

test('close() ends every stream, drops connections and stops listening', async (t) => {
  const { server, source, port } = await startServer(t);
  const viewer = openStream(t, port);
  await until(() => server.clientCount === 1, 'the viewer');
  source.emit(testJpeg('one'));
  await server.close();
  await until(() => viewer.ended, 'the stream to end');
  await assert.rejects(get(port, `/stream?token=${TOKEN}`), /ECONNREFUSED/);
});

test('frames from the fake rpicam-vid reach a viewer through the server', async (t) => {
  const { source } = processSource(t, ['rpicam-vid'], { fps: 50 });
  const server = new StreamServer({ source });
  const port = await server.listen(0, '127.0.0.1');
  t.after(() => server.close());
  server.setAccess({ token: TOKEN, expiresAtMs: null });
  await source.start();
  const viewer = openStream(t, port);
  await until(() => viewer.parts.length >= 3, '3 camera frames');
  assert.match(jpegComments(viewer.parts[0]!)[0] ?? '', /^fake rpicam-vid frame \d+/);
});
