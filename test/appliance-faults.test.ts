// Issue 10 at the appliance's seams: a failing state disk, a camera that does not start or dies, a
// hanging Bot API at stop, huge input, a group that became a supergroup, camera output in groups.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { main } from '../src/app/cli.js';
import type { AppState } from '../src/app/state.js';
import { smallDisk } from './fakes/small-disk.js';
import { eventually, textsTo, TOKEN } from './support.js';
import { applianceRig, ask, OWNER, type ApplianceRig } from './appliance-support.js';
import { noUnhandledRejections } from './unhandled.js';

const GROUP = -500;

/** A rig whose state folder is a 64 KiB tmpfs; null when not root (the test is then skipped, saying why). */
async function rigOnSmallDisk(t: TestContext, options: Parameters<typeof applianceRig>[1] = {}) {
  // The inbox and the history keep files open: on disks of their own, the state's can be remounted read-only.
  const disk = smallDisk(t, 64, ['inbox', 'history']);
  if (disk === null) return null;
  const rig = await applianceRig(t, { ...options, stateDir: disk.dir });
  return { rig, disk };
}

const streamRunning = (rig: ApplianceRig) => (rig.app.ipcam as unknown as { options: { hardware: { stream: { running: boolean } } } })
  .options.hardware.stream.running;

test('row 3: a link that expires while the SD card is read-only closes cleanly, the owner is told, and the next start works', { timeout: 60_000 }, async (t) => {
  const unhandled = noUnhandledRejections(t);
  const setup = await rigOnSmallDisk(t, { ttlMs: 15 * 60_000 });
  if (setup === null) return;
  const { rig, disk } = setup;
  assert.match(await ask(rig, '/open'), /Camera link, valid for 15m/);
  disk.readOnly();
  await rig.mono.advanceAsync(15 * 60_000);
  await eventually(() => textsTo(rig.emu, OWNER).some((m) => m.startsWith('The camera link expired')), 10_000);
  assert.deepEqual(rig.router().mappings ?? {}, {}, 'the mapping stayed on the router');
  assert.equal(streamRunning(rig), false, 'the camera kept running');
  assert.equal(rig.gpio.lines.find((l) => l.direction === 'out')?.value, 0);
  assert.ok(rig.log.lines.some((l) => /could not be forgotten in the state: .*EROFS|read-only/i.test(l)), 'the failed write was not logged');
  // The state still records the mapping: the next start removes it again instead of crashing.
  assert.equal(JSON.parse(await readFile(join(disk.dir, 'state.json'), 'utf8')).portMapping?.externalPort, 54321);
  const next = await rig.restart();
  assert.equal(next.ipcam.status.open, false);
  assert.match(await ask(rig, '/now'), /°C/);
  assert.deepEqual(unhandled, []);
});

test('rows 3 and 6: with the SD card read-only or full, commands answer why and nothing changes, in memory or on disk', { timeout: 60_000 }, async (t) => {
  const unhandled = noUnhandledRejections(t);
  const setup = await rigOnSmallDisk(t);
  if (setup === null) return;
  const { rig, disk } = setup;
  assert.match(await ask(rig, '/1h'), /every 1h/);
  disk.readOnly();
  assert.equal(await ask(rig, '/every 2h'), 'Could not save: the SD card is read-only (the kernel may have remounted it after errors). Nothing was changed.');
  assert.match(await ask(rig, '/status'), /^Reports: every 1h,/m, 'the failed /every 2h changed the schedule');
  assert.match(await ask(rig, '/cancel'), /^Could not save: the SD card is read-only.*Nothing was changed\.$/);
  assert.equal(rig.app.climate.subscription(OWNER)?.intervalMs, 3_600_000, 'a failed /cancel stopped the reports anyway');
  assert.match(await ask(rig, '/motion on'), /^Could not save/);
  assert.equal(rig.app.motion.enabled, false);
  assert.match(await ask(rig, '/status'), /^Problem: settings cannot be saved: the SD card is read-only/m);
  assert.equal(rig.app.store.state.subscriptions[0]?.intervalMs, 3_600_000);
  assert.deepEqual(unhandled, []);
});

test('row 7: /close with a failing state write still stops the camera and closes the port, and says what failed', { timeout: 60_000 }, async (t) => {
  const setup = await rigOnSmallDisk(t);
  if (setup === null) return;
  const { rig, disk } = setup;
  await ask(rig, '/open');
  disk.fill();
  const reply = await ask(rig, '/close');
  assert.match(reply, /^Port closed, and the camera is stopped, but: Could not save: the SD card is full\.$/);
  assert.equal(streamRunning(rig), false, 'the camera kept running');
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.match(await ask(rig, '/status'), /^Stream: closed$/m);
});

test('row 8: /open with a camera that sends no picture answers why, leaves no mapping, no LED, no link', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t, { camera: { mode: 'nocamera' }, app: { cameraTiming: { firstFrameTimeoutMs: 1000 } } });
  const reply = await ask(rig, '/open');
  assert.match(reply, /^Camera unavailable: the camera sent no picture within 1s: rpicam-vid exited/);
  assert.doesNotMatch(reply, /token=/);
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.equal(rig.app.store.state.portMapping, null);
  assert.equal(rig.gpio.lines.find((l) => l.direction === 'out')?.value ?? 0, 0);
  assert.equal(streamRunning(rig), false);
  assert.match(await ask(rig, '/status'), /^Stream: closed$/m);
});

test('a camera that dies while the link is open: link, mapping and LED are withdrawn and the owner is told', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t, { camera: { dieAfterFrames: 20 }, app: { cameraTiming: { frameTimeoutMs: 800 } } });
  assert.match(await ask(rig, '/open'), /Camera link/);
  rig.tools.setControl({ mode: 'nocamera' }); // its restarts fail from now on
  const openedAt = performance.now();
  await eventually(() => textsTo(rig.emu, OWNER).some((m) => m.startsWith('The camera stopped (no picture from the camera for')), 15_000);
  t.diagnostic(`link withdrawn ${Math.round(performance.now() - openedAt)} ms after the link went out (20 frames, then silence; frame timeout 800 ms)`);
  assert.equal(rig.app.ipcam.status.open, false);
  assert.deepEqual(rig.router().mappings ?? {}, {});
  assert.equal(rig.gpio.lines.find((l) => l.direction === 'out')?.value, 0);
  assert.equal(rig.app.store.state.portMapping, null);
  assert.equal(streamRunning(rig), false);
});

test('row 10: stop gives up on a hanging Bot API request at its deadline and names what it waited for', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t, { app: { stopDeadlineMs: 300 } });
  rig.emu.injectFault({ kind: 'hang' }, { method: 'sendMessage' });
  rig.emu.pushText('/now', { chatId: OWNER, userId: OWNER });
  await rig.emu.waitForCall('sendMessage');
  const started = performance.now();
  await rig.app.stop();
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 900, `stop took ${Math.round(tookMs)} ms with a 300 ms deadline`);
  t.diagnostic(`stop returned after ${Math.round(tookMs)} ms (deadline 300 ms) with a sendMessage hanging`);
  assert.ok(rig.log.lines.some((l) => /^ERROR stop: gave up after 0\.3 s waiting for the message loop to stop; exiting anyway$/.test(l)), rig.log.lines.slice(-5).join('\n'));
});

test('row 13: /every with 4,000 characters answers a short reply with the input cut, not "message is too long"', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  const reply = await ask(rig, `/every ${'9x'.repeat(2000)}`);
  assert.match(reply, /^"9x9x.*…" is not an interval\. Send \/every with an interval from 1m to 24h/);
  assert.ok(reply.length < 250, `${reply.length} characters`);
});

test('row 15: a report to a group that became a supergroup follows it there, and the subscription moves for good', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  const supergroup = -1_000_000_500;
  await ask(rig, '/1m', OWNER, GROUP);
  rig.emu.injectFault({ kind: 'status', status: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: supergroup } }, { method: 'sendMessage' });
  await rig.wall.advanceAsync(60_000);
  await eventually(() => textsTo(rig.emu, supergroup).length === 1);
  assert.match(textsTo(rig.emu, supergroup)[0] ?? '', /°C/);
  assert.deepEqual(rig.app.store.state.subscriptions.map((s) => s.chatId), [supergroup]);
  const onDisk = JSON.parse(await readFile(join(rig.stateDir, 'state.json'), 'utf8')) as AppState;
  assert.deepEqual(onDisk.subscriptions.map((s) => s.chatId), [supergroup], 'the move was not persisted');
  await rig.wall.advanceAsync(60_000);
  await eventually(() => textsTo(rig.emu, supergroup).length === 2);
  assert.equal(textsTo(rig.emu, GROUP).length, 1, 'a report still went to the old group');
});

test('row 15: the migrate_to_chat_id service message moves the subscription before any report fails', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/every 15m', OWNER, GROUP);
  const anchor = rig.app.store.state.subscriptions[0]?.anchorMs;
  rig.emu.pushUpdate({ message: { message_id: 77, date: 1, chat: { id: GROUP, type: 'group', title: 'Home' }, from: { id: OWNER, is_bot: false, first_name: 'O' }, migrate_to_chat_id: -1_000_000_600 } });
  await eventually(() => rig.app.store.state.subscriptions[0]?.chatId === -1_000_000_600);
  assert.equal(rig.app.store.state.subscriptions[0]?.anchorMs, anchor, 'the phase was lost');
  assert.equal(rig.app.climate.subscription(GROUP), undefined);
  assert.equal(textsTo(rig.emu, GROUP).length, 1, 'the service message got an answer');
});

test('row 18: the owner\'s /open and /photo in a group go to the owner privately; the group is told, and sees no link', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/open', OWNER, GROUP), /^I sent you the camera link privately: camera output stays out of groups \(CAMERA_IN_GROUPS=yes changes that\)\.$/);
  assert.match(textsTo(rig.emu, OWNER).at(-1) ?? '', /^Camera link, valid for 1h:\nhttp:\/\/203\.0\.113\.7:54321\/\?token=/);
  assert.match(await ask(rig, '/photo', OWNER, GROUP), /^I sent you the photo privately/);
  const photo = await rig.emu.waitForCall('sendPhoto');
  assert.equal(String(photo.params.chat_id), String(OWNER));
  assert.ok(textsTo(rig.emu, GROUP).every((m) => !m.includes('token=')));
  assert.equal(rig.emu.callsOf('sendPhoto').filter((c) => String(c.params.chat_id) === String(GROUP)).length, 0);
});

test('row 18: when the owner never started a private chat, the group is told how, and the link does not stay open', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  rig.emu.injectFault({ kind: 'status', status: 403, description: 'Forbidden: bot can\'t initiate conversation with a user' }, { method: 'sendMessage' });
  assert.match(await ask(rig, '/open', OWNER, GROUP), /^I could not send you the camera link privately: open a private chat with @\w+, press Start, and ask again\.$/);
  assert.equal(rig.app.ipcam.status.open, false);
  assert.deepEqual(rig.router().mappings ?? {}, {});
});

test('row 18: CAMERA_IN_GROUPS=yes posts the link in the group; motion photos always go to owners privately', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t, { config: { cameraInGroups: true } });
  assert.match(await ask(rig, '/open', OWNER, GROUP), /^Camera link, valid for 1h:/);
  await ask(rig, '/motion on');
  rig.gpio.lines.find((l) => l.direction === 'in')?.raise(1);
  const call = await rig.emu.waitForCall('sendPhoto', undefined, 15_000);
  assert.equal(String(call.params.chat_id), String(OWNER));
});

test('the chats whose settings were set aside at start are told once', { timeout: 60_000 }, async (t) => {
  const first = await applianceRig(t);
  const dir = first.stateDir;
  await first.app.stop();
  const good = { chatId: OWNER, intervalMs: 3_600_000, anchorMs: Date.UTC(2025, 0, 1) };
  await writeFile(join(dir, 'state.json'), JSON.stringify({
    version: 1, motion: { enabled: false }, portMapping: null,
    subscriptions: [good, { chatId: 77, intervalMs: 1, anchorMs: 1e300 }],
  }));
  const rig = await applianceRig(t, { stateDir: dir });
  await eventually(() => textsTo(rig.emu, 77).length === 1);
  assert.match(textsTo(rig.emu, 77)[0] ?? '', /^After a restart I could not use this chat's report settings \(intervalMs 1 is not from 1m to 24h\), so they were set aside\. Send \/every/);
  assert.deepEqual(rig.app.store.state.subscriptions, [good]);
  await rig.restart();
  await ask(rig, '/now');
  assert.equal(textsTo(rig.emu, 77).length, 1, 'told again after the next restart');
});

test('rows 12 and 14: a state folder that is a file, or one a running telepi holds, ends `telepi run` with one line and exit 78', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  const scratch = await mkdtemp(join(tmpdir(), 'telepi-cli-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const notADir = join(scratch, 'file');
  await writeFile(notADir, 'x');
  for (const [stateDir, expected] of [[notADir, /^TELEPI_STATE_DIR: .* is a file, not a folder/], [rig.stateDir, new RegExp(`^TELEPI_STATE_DIR: .* is in use by another telepi \\(pid ${process.pid}\\)`)]] as const) {
    const err: string[] = [];
    const code = await main(['run'], {
      TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: String(OWNER), TELEPI_HARDWARE: 'simulated', TELEPI_STATE_DIR: stateDir,
      TELEGRAM_API_ROOT: rig.config.apiRoot, TELEPI_LOG_LEVEL: 'error', STREAM_PORT: '1',
    }, { out: () => undefined, err: (line) => err.push(line) });
    assert.equal(code, 78);
    assert.equal(err.length, 1, err.join('\n'));
    assert.match(err[0] ?? '', expected);
  }
  assert.match(await ask(rig, '/now'), /°C/, 'the running telepi was disturbed');
});
