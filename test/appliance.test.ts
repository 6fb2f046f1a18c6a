import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCompleteJpeg } from '../hardware/jpeg.js';
import { menuCommands } from '../src/app/commands.js';
import { eventually, textsTo } from './support.js';
import { applianceRig, ask, OWNER, STRANGER, USER } from './appliance-support.js';

const readingLine = /^2\d\.\d\d?°C {2}\d+\.\d% {2}1,0\d\d\.\dhPa$/;

test('/now answers one line with temperature, humidity and pressure', async (t) => {
  const rig = await applianceRig(t);
  const reply = await ask(rig, '/now');
  assert.match(reply, /^25\.1°C {2}\d+\.\d% {2}1,006\.5hPa$/);
  assert.equal(rig.chip.conversions.length, 1, 'one forced conversion per reading');
});

test('the command menu is registered at start-up', async (t) => {
  const rig = await applianceRig(t);
  const call = rig.emu.callsOf('setMyCommands')[0];
  assert.deepEqual(call?.params.commands, menuCommands());
});

test('/start and /help list the commands a role may run', async (t) => {
  const rig = await applianceRig(t);
  const forOwner = await ask(rig, '/start');
  assert.match(forOwner, /\/now/);
  assert.match(forOwner, /\/open/);
  const forUser = await ask(rig, '/help', USER);
  assert.match(forUser, /\/now/);
  assert.doesNotMatch(forUser, /\/open/);
});

test('unknown text gets "I don\'t understand" and the list; a sticker gets a hint', async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, 'hello there'), /^I don't understand\n\n\/now/);
  assert.match(await ask(rig, '/frobnicate'), /^I don't understand \/frobnicate/);
  const before = rig.emu.sentMessages(OWNER).length;
  rig.emu.pushUpdate({ message: { message_id: 900, date: 1, chat: { id: OWNER, type: 'private', first_name: 'O' }, from: { id: OWNER, is_bot: false, first_name: 'O' }, sticker: { file_id: 's', file_unique_id: 'u', type: 'regular', width: 1, height: 1, is_animated: false, is_video: false } } });
  await eventually(() => rig.emu.sentMessages(OWNER).length > before);
  assert.match(textsTo(rig.emu, OWNER).at(-1) ?? '', /only read text commands/);
});

test('in a group, /now@ThisBot works and commands for other bots are ignored', async (t) => {
  const rig = await applianceRig(t);
  const group = -500;
  rig.emu.pushText('/now@SomeOtherBot', { chatId: group, userId: OWNER, chatType: 'group' });
  rig.emu.pushText('just chatting', { chatId: group, userId: OWNER, chatType: 'group' });
  const reply = await ask(rig, '/now@telepi_bot', OWNER, group);
  assert.match(reply, readingLine);
  assert.equal(rig.emu.sentMessages(group).length, 1, 'only the command for this bot was answered');
});

test('a stranger gets one short refusal with their id per minute, and nothing runs', async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/status'); // warm up: the owner's reading touches the hardware
  const calls = rig.hardwareCalls();
  const refusal = await ask(rig, '/now', STRANGER);
  assert.match(refusal, new RegExp(`${STRANGER}`));
  for (const command of ['/now', '/photo', '/open', '/1m', '/every 5m', '/status', '/motion on', '/close', 'hi']) {
    rig.emu.pushText(command, { chatId: STRANGER, userId: STRANGER });
  }
  await eventually(() => rig.emu.queuedUpdates === 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(rig.emu.sentMessages(STRANGER).length, 1, 'one refusal, not one per message');
  assert.equal(rig.hardwareCalls(), calls, 'no sensor read, camera run or upnpc call');
  assert.equal(rig.app.store.state.subscriptions.length, 0);
});

test('a climate-only user may read the climate but not use the camera', async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/now', USER), readingLine);
  const runs = rig.tools.runs().length;
  assert.equal(await ask(rig, '/photo', USER), 'Only the owner can use /photo.');
  assert.equal(await ask(rig, '/open', USER), 'Only the owner can use /open.');
  assert.equal(rig.tools.runs().length, runs, 'no camera process ran');
});

test('/1m reports now and then every minute; /cancel answers OK and stops it', async (t) => {
  const rig = await applianceRig(t);
  const first = await ask(rig, '/1m');
  assert.match(first.split('\n')[0] ?? '', readingLine);
  assert.match(first, /every 1m/);
  await rig.wall.advanceAsync(60_000);
  await eventually(() => textsTo(rig.emu, OWNER).length === 2);
  assert.match(textsTo(rig.emu, OWNER)[1] ?? '', readingLine);
  assert.equal(await ask(rig, '/cancel'), 'OK');
  await rig.wall.advanceAsync(180_000);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(textsTo(rig.emu, OWNER).length, 3, 'no report after /cancel');
  assert.deepEqual(rig.app.store.state.subscriptions, []);
});

test('/every takes 1m to 24h and explains the accepted forms otherwise', async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/every 1h30m'), /every 1h30m/);
  assert.equal(rig.app.store.state.subscriptions[0]?.intervalMs, 5_400_000);
  // A bare /every offers buttons (test/chart-appliance.test.ts); a wrong interval explains the accepted forms.
  for (const bad of ['/every soon', '/every 30s', '/every 25h']) {
    assert.match(await ask(rig, bad), /from 1m to 24h, like \/every 15m/, bad);
  }
  assert.match(await ask(rig, '/1h'), /every 1h/);
  assert.equal(rig.app.store.state.subscriptions.length, 1, 'one subscription per chat, replaced');
});

test('subscriptions survive a restart and keep their phase, without a burst of missed reports', async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/1h');
  await rig.wall.advanceAsync(30 * 60_000);
  // Down for 2 h 20 min: the reports due meanwhile are skipped, the next one keeps the phase (:00).
  await rig.restart(140 * 60_000);
  await rig.wall.advanceAsync(10 * 60_000 - 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(textsTo(rig.emu, OWNER).length, 1, 'nothing sent for the reports missed while down');
  await rig.wall.advanceAsync(1);
  await eventually(() => textsTo(rig.emu, OWNER).length === 2);
  assert.match(textsTo(rig.emu, OWNER)[1] ?? '', readingLine);
});

test('a corrupt state file is moved aside with a warning and the bot starts clean', async (t) => {
  const first = await applianceRig(t);
  const dir = first.stateDir;
  await first.app.stop();
  await writeFile(join(dir, 'state.json'), '{"version":1,"subscriptions":[{"chatId":');
  const rig = await applianceRig(t, { stateDir: dir });
  assert.match(await ask(rig, '/now'), readingLine);
  assert.ok((await readdir(dir)).some((f) => f.startsWith('state.json.corrupt-')));
  assert.ok(rig.log.lines.some((l) => l.startsWith('WARN') && /corrupt|moved/i.test(l)));
});

test('a failing sensor: /now says why, a subscriber is told once and again when it is back', async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/1m');
  rig.bus.detach(0x76);
  assert.match(await ask(rig, '/now'), /^Sensor unavailable: no device at 0x76 on i2c-1/);
  for (let minute = 0; minute < 3; minute++) await rig.wall.advanceAsync(60_000);
  await eventually(() => textsTo(rig.emu, OWNER).length >= 3);
  await new Promise((r) => setTimeout(r, 100));
  const afterFailures = textsTo(rig.emu, OWNER);
  assert.equal(afterFailures.length, 3, 'three failed reports, told once');
  assert.match(afterFailures[2] ?? '', /Sensor unavailable.*\nI will tell you when it works again/);
  rig.bus.attach(0x76, rig.chip);
  await rig.wall.advanceAsync(60_000);
  await eventually(() => textsTo(rig.emu, OWNER).length === 4);
  assert.match(textsTo(rig.emu, OWNER)[3] ?? '', /^Sensor is back\. 25\.1°C/);
});

test('/photo shows upload_photo and sends a JPEG from the camera', async (t) => {
  const rig = await applianceRig(t);
  rig.emu.pushText('/photo', { chatId: OWNER, userId: OWNER });
  const call = await rig.emu.waitForCall('sendPhoto', undefined, 15_000);
  const action = rig.emu.callsOf('sendChatAction')[0];
  assert.equal(action?.params.action, 'upload_photo');
  assert.ok((action?.atMs ?? Infinity) <= call.atMs);
  const file = rig.emu.files.get(rig.emu.sentMessages(OWNER).at(-1)?.photo?.at(-1)?.file_id ?? '');
  assert.ok(file?.bytes !== undefined && isCompleteJpeg(file.bytes), 'a complete JPEG was uploaded');
  assert.equal(rig.tools.runs()[0]?.tool, 'rpicam-still');
});

test('a camera that fails gives a clear answer, not a crash', async (t) => {
  const rig = await applianceRig(t, { camera: { mode: 'nocamera' } });
  assert.match(await ask(rig, '/photo'), /^Camera unavailable: .*rpicam-still/);
  assert.match(await ask(rig, '/now'), readingLine, 'the bot goes on');
});

test('/open maps the port with a lease, links the viewer with a long token, lights the LED; /close undoes it', async (t) => {
  const rig = await applianceRig(t);
  const reply = await ask(rig, '/open');
  const url = /http:\/\/203\.0\.113\.7:54321\/\?token=([A-Za-z0-9_-]+)/.exec(reply);
  assert.ok(url, reply);
  assert.ok(Buffer.from(url[1] ?? '', 'base64url').length * 8 >= 128, 'token of 128 bits or more');
  assert.match(reply, /plain HTTP/);
  assert.equal(rig.router().mappings?.['54321/TCP']?.leaseSeconds, 3600);
  assert.deepEqual(rig.router().runs?.[0]?.argv.slice(0, 4), ['-e', 'telepi', '-a', '@']);
  const led = rig.gpio.lines.find((l) => l.direction === 'out');
  assert.equal(led?.value, 1, 'LED on while the stream is reachable');
  assert.deepEqual(rig.app.store.state.portMapping?.externalPort, 54321);

  const second = /token=([A-Za-z0-9_-]+)/.exec(await ask(rig, '/open'))?.[1];
  assert.notEqual(second, url[1], 'a new token on every /open');

  assert.equal(await ask(rig, '/close'), 'Port closed');
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.equal(led?.value, 0);
  assert.equal(rig.app.store.state.portMapping, null);
});

test('the viewer, stream and snapshot answer the token, and nothing else', async (t) => {
  const rig = await applianceRig(t, { router: { mode: 'noigd' } });
  const reply = await ask(rig, '/open');
  const link = /http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_-]+)/.exec(reply);
  assert.ok(link, reply);
  const base = `http://127.0.0.1:${link[1]}`;
  const page = await fetch(`${base}/?token=${link[2]}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /\/stream\?token=/);
  const snapshot = await fetch(`${base}/snapshot.jpg?token=${link[2]}`);
  assert.equal(snapshot.status, 200);
  assert.ok(isCompleteJpeg(Buffer.from(await snapshot.arrayBuffer())));
  for (const bad of ['', '?token=', `?token=${link[2]?.slice(1)}`]) {
    const denied = await fetch(`${base}/snapshot.jpg${bad}`);
    assert.equal(denied.status, 403, bad);
    assert.ok(!isCompleteJpeg(Buffer.from(await denied.arrayBuffer())));
  }
});

test('when UPnP is unavailable, /open says so and gives the LAN link', async (t) => {
  const rig = await applianceRig(t, { router: { mode: 'noigd' } });
  const reply = await ask(rig, '/open');
  assert.match(reply, /^Only a LAN link: UPnP is unavailable: no UPnP router answered/);
  assert.match(reply, /http:\/\/127\.0\.0\.1:\d+\/\?token=/);
  assert.equal(rig.app.store.state.portMapping, null);
});

test('behind carrier-grade NAT, /open explains it and removes the useless mapping', async (t) => {
  const rig = await applianceRig(t, { router: { mode: 'cgnat' } });
  const reply = await ask(rig, '/open');
  assert.match(reply, /100\.64\.12\.34 is a carrier-grade NAT address/);
  assert.match(reply, /http:\/\/127\.0\.0\.1:\d+\/\?token=/);
  assert.deepEqual(rig.router().mappings ?? {}, {});
});

test('the link expires after the TTL on the monotonic clock: everything closes and the owner is told', async (t) => {
  const rig = await applianceRig(t, { ttlMs: 15 * 60_000 });
  const link = /http:\/\/[\d.]+:\d+\/\?token=\S+/.exec(await ask(rig, '/open'));
  assert.ok(link);
  rig.wall.jumpWallClock(-3_600_000); // a time sync moving the wall clock changes nothing
  await rig.mono.advanceAsync(15 * 60_000);
  await eventually(() => textsTo(rig.emu, OWNER).some((m) => m.startsWith('The camera link expired')));
  await eventually(() => rig.app.ipcam.status.open === false);
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.equal(rig.gpio.lines.find((l) => l.direction === 'out')?.value, 0);
});

test('a mapping left behind by a crash is removed at start-up', async (t) => {
  const first = await applianceRig(t);
  await ask(first, '/open');
  const dir = first.stateDir;
  // A crash: the state still records the mapping, and so does the router.
  const router = first.router();
  const state = first.app.store.state;
  await first.app.stop();
  await writeFile(join(dir, 'state.json'), JSON.stringify({ ...state, portMapping: { externalPort: 54321, createdAtMs: 1 } }));
  const rig = await applianceRig(t, { stateDir: dir, router: { ...router, mappings: { '54321/TCP': { leaseSeconds: 3600 } } } as never });
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.equal(rig.app.store.state.portMapping, null);
});

test('/motion on sends owners a photo on motion, at most one per cooldown', async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/motion on'), /Motion alerts on/);
  const pir = rig.gpio.lines.find((l) => l.direction === 'in');
  assert.ok(pir);
  pir.raise(1);
  await rig.emu.waitForCall('sendPhoto', undefined, 15_000);
  await rig.mono.advanceAsync(5_000);
  pir.raise(1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rig.emu.callsOf('sendPhoto').length, 1, 'within the cooldown: no second photo');
  await rig.mono.advanceAsync(60_000);
  pir.raise(1);
  await eventually(() => rig.emu.callsOf('sendPhoto').length === 2, 15_000);
  assert.match(await ask(rig, '/motion off'), /off/);
  assert.equal(rig.app.store.state.motion.enabled, false);
});

test('/status shows reports, sensor, camera, stream, motion and uptime', async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/every 15m');
  const status = await ask(rig, '/status');
  assert.match(status, /^Reports: every 15m, next in 15m$/m);
  assert.match(status, /^Sensor: BME280 at 0x76 on i2c-1: 25\.1°C/m);
  assert.match(status, /^Camera: /m);
  assert.match(status, /^Stream: closed$/m);
  assert.match(status, /^Motion alerts: off$/m);
  assert.match(status, /^Uptime: /m);
});

test('stop removes the port mapping, stops the stream, turns the LED off and confirms the offset', async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/open');
  await ask(rig, '/1h');
  await rig.app.stop();
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.equal(rig.gpio.lines.find((l) => l.direction === 'out')?.value, 0);
  assert.equal(rig.emu.queuedUpdates, 0);
  assert.equal(rig.app.store.state.subscriptions.length, 1, 'the subscription is kept for the next start');
});
