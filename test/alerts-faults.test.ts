// Alerts keep the state store's promises (issue 10's classes applied to issue 12's alerts): a failing SD card
// is answered and changes nothing, rules follow a group that became a supergroup, a chat that blocked the
// bot is not retried forever, and every echo of input is bounded.
import assert from 'node:assert/strict';
import { readFileSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AlertService } from '../src/app/alerts.js';
import { chartSpan } from '../src/app/buttons.js';
import type { Sample } from '../src/app/readings.js';
import { StateWriteError } from '../src/app/state.js';
import { memoryLogger } from '../src/log.js';
import { applianceRig, ask, OWNER, raw, type ApplianceRig } from './appliance-support.js';
import { settle } from './fakes/clock.js';
import { smallDisk } from './fakes/small-disk.js';
import { eventually, textsTo } from './support.js';
import { noUnhandledRejections } from './unhandled.js';

const GROUP = -500;
const SUPERGROUP = -1_000_000_700;
const minute = 60_000;
const readOnlyReply = 'Could not save: the SD card is read-only (the kernel may have remounted it after errors). Nothing was changed.';

/** The chats alerts.json holds, and how many rules each. */
function onDisk(stateDir: string): Record<string, number> {
  const { chats } = JSON.parse(readFileSync(join(stateDir, 'alerts.json'), 'utf8')) as { chats: Record<string, unknown[]> };
  return Object.fromEntries(Object.entries(chats).map(([chat, rules]) => [chat, rules.length]));
}

/**
 * One sensor reading a minute, `offsets` raw counts above the rig's 25.08°C (1,000 counts ≈ 0.3°C); the last
 * repeats for `extraMinutes` more.
 */
async function feed(rig: ApplianceRig, offsets: number[], extraMinutes = 0): Promise<void> {
  rig.chip.queueRaw(...offsets.map((offset) => ({ ...raw, adcT: raw.adcT + offset })));
  for (let i = 0; i < offsets.length + extraMinutes; i++) {
    await rig.wall.advanceAsync(minute);
    for (let k = 0; k < 8; k++) await settle();
  }
  await rig.app.alerts.idle();
}

const sendsTo = (rig: ApplianceRig, chatId: number) => rig.emu.callsOf('sendMessage').filter((c) => Number(c.params.chat_id) === chatId).length;

test('with the SD card read-only, /alert and /alert off answer why and change nothing, in memory, on disk or after a restart', { timeout: 60_000 }, async (t) => {
  const unhandled = noUnhandledRejections(t);
  const disk = smallDisk(t, 64, ['inbox', 'history']);
  if (disk === null) return;
  const rig = await applianceRig(t, { stateDir: disk.dir });
  assert.match(await ask(rig, '/alert temp > 25.5'), /^OK: I will tell you when the temperature above 25\.5°C/);
  disk.readOnly();
  assert.equal(await ask(rig, '/alert temp < 5'), readOnlyReply);
  assert.equal(await ask(rig, '/alert off'), readOnlyReply);
  assert.equal(await ask(rig, '/alert off 1'), readOnlyReply);
  assert.equal(await ask(rig, '/alert'), '1. temperature above 25.5°C (waiting for a reading)\n/alert off <number> removes one, /alert off all of them.');
  assert.match(await ask(rig, '/status'), /^Problem: settings cannot be saved: the SD card is read-only/m);
  assert.deepEqual(onDisk(disk.dir), { [OWNER]: 1 });
  // The alert whose removal failed still works; its judgement cannot be saved, which is logged, not crashed on.
  const before = textsTo(rig.emu, OWNER).length;
  await feed(rig, [1500]);
  assert.equal(textsTo(rig.emu, OWNER).length - before, 1);
  assert.match(textsTo(rig.emu, OWNER).at(-1) ?? '', /^🔥 25\.6°C: above 25\.5°C since \d\d:\d\d$/);
  assert.ok(rig.log.lines.some((l) => /alerts: cannot write .*alerts\.json.*EROFS/.test(l)), 'the failed judgement write was not logged');
  await rig.restart();
  assert.deepEqual(rig.app.alerts.list(OWNER).map((r) => r.threshold), [25.5], 'a failed /alert came back or a failed /alert off took effect after a restart');
  assert.deepEqual(unhandled, []);
});

test('with the SD card full, /alert answers that it is full and nothing is added', { timeout: 60_000 }, async (t) => {
  const disk = smallDisk(t, 64, ['inbox', 'history']);
  if (disk === null) return;
  const rig = await applianceRig(t, { stateDir: disk.dir });
  disk.fill();
  assert.equal(await ask(rig, '/alert humidity > 65'), 'Could not save: the SD card is full. Nothing was changed.');
  assert.deepEqual(rig.app.alerts.list(OWNER), []);
  assert.match(await ask(rig, '/alert'), /^No alerts in this chat/);
});

test('a reading judged while an /alert is being written does not act on the rule before it is on disk', { timeout: 20_000 }, async (t) => {
  const disk = smallDisk(t, 64);
  if (disk === null) return;
  const sent: string[] = [];
  const alerts = await AlertService.open({ stateDir: disk.dir, log: memoryLogger(), send: async (_chatId, text) => void sent.push(text), utcOffsetMs: () => 0 });
  const t0 = Date.UTC(2025, 0, 1, 3, 0);
  const hot = (atMs: number): Sample => ({ atMs: t0 + atMs, reading: { temperature: 35, humidity: 50, pressure: 1000 } });
  disk.fill();
  let judged: Promise<void> | undefined;
  const adding = alerts.command(42, 'temp > 30', async () => {
    // Runs while the write of the new rule is under way.
    setImmediate(() => void (judged = alerts.judge(hot(minute))));
    return hot(0);
  });
  await assert.rejects(adding, (error: unknown) => error instanceof StateWriteError && error.userMessage === 'Could not save: the SD card is full.');
  await new Promise((resolve) => setImmediate(resolve));
  await judged;
  unlinkSync(join(disk.dir, 'filler'));
  await alerts.judge(hot(2 * minute));
  await alerts.idle();
  assert.deepEqual(sent, [], 'an alert that was never saved spoke');
  assert.deepEqual(alerts.list(42), []);
  // The card has room again: the same command now works and is on disk.
  assert.match(await alerts.command(42, 'temp > 30', async () => hot(3 * minute)), /^OK/);
  assert.deepEqual(onDisk(disk.dir), { 42: 1 });
});

test('an alert to a group that became a supergroup follows it there, and the rules move for good', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/alert temp > 25.5', OWNER, GROUP), /^OK/);
  rig.emu.injectFault({ kind: 'status', status: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: SUPERGROUP } }, { method: 'sendMessage' });
  await feed(rig, [1500]);
  await eventually(() => textsTo(rig.emu, SUPERGROUP).length === 1);
  assert.match(textsTo(rig.emu, SUPERGROUP)[0] ?? '', /^🔥 25\.6°C: above 25\.5°C since /);
  assert.deepEqual(onDisk(rig.stateDir), { [SUPERGROUP]: 1 }, 'the move was not persisted');
  assert.match(await ask(rig, '/alert', OWNER, SUPERGROUP), /^1\. temperature above 25\.5°C \(now above, since/);
  // Back below after the rule's 10 minutes: said in the supergroup only.
  await feed(rig, [-1000], 11);
  assert.match(textsTo(rig.emu, SUPERGROUP).at(-1) ?? '', /^✅ 24\.8°C: temperature back below 25\.5°C/);
  assert.equal(sendsTo(rig, GROUP), 2, 'after the /alert reply and the refused alert, something more went to the old group');
  await rig.restart();
  assert.equal(rig.app.alerts.list(SUPERGROUP).length, 1);
  assert.equal(rig.app.alerts.list(GROUP).length, 0);
});

test('a report that finds its group became a supergroup moves the group\'s alerts too', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/alert temp > 80', OWNER, GROUP), /^OK/);
  await ask(rig, '/1m', OWNER, GROUP);
  rig.emu.injectFault({ kind: 'status', status: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: SUPERGROUP } }, { method: 'sendMessage' });
  await rig.wall.advanceAsync(minute);
  await eventually(() => textsTo(rig.emu, SUPERGROUP).length === 1);
  await eventually(() => rig.app.alerts.list(SUPERGROUP).length === 1);
  assert.equal(rig.app.alerts.list(GROUP).length, 0);
  assert.deepEqual(onDisk(rig.stateDir), { [SUPERGROUP]: 1 }, 'the move was not persisted');
});

test('a private chat\'s alert answered with 400 and a migrate_to_chat_id keeps its rules: only groups become supergroups', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  assert.match(await ask(rig, '/alert temp > 25.5'), /^OK/);
  rig.emu.injectFault({ kind: 'status', status: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: SUPERGROUP } }, { method: 'sendMessage', count: 1 });
  await feed(rig, [1500]);
  await eventually(() => rig.log.lines.some((l) => l.includes(`alert to chat ${OWNER} failed`)));
  assert.equal(textsTo(rig.emu, SUPERGROUP).length, 0, 'the alert was sent to the id a private chat\'s error named');
  assert.deepEqual(rig.app.alerts.list(SUPERGROUP), []);
  assert.equal(rig.app.alerts.list(OWNER).length, 1, 'the private chat\'s rules moved');
  assert.deepEqual(onDisk(rig.stateDir), { [OWNER]: 1 });
  assert.ok(!rig.log.lines.some((l) => l.includes('became supergroup')));
});

test('the migrate_to_chat_id service message moves a group\'s alerts along with its reports', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/every 15m', OWNER, GROUP);
  await ask(rig, '/alert temp < 5', OWNER, GROUP);
  await ask(rig, '/alert humidity > 80', OWNER, GROUP);
  rig.emu.pushUpdate({ message: { message_id: 77, date: 1, chat: { id: GROUP, type: 'group', title: 'Home' }, from: { id: OWNER, is_bot: false, first_name: 'O' }, migrate_to_chat_id: SUPERGROUP } });
  await eventually(() => rig.app.alerts.list(SUPERGROUP).length === 2 && rig.app.climate.subscription(SUPERGROUP) !== undefined);
  assert.deepEqual(rig.app.alerts.list(GROUP), []);
  assert.deepEqual(onDisk(rig.stateDir), { [SUPERGROUP]: 2 });
  assert.ok(rig.log.lines.some((l) => l.includes(`chat ${GROUP} became supergroup ${SUPERGROUP}: its alerts moved there`)));
});

test('a chat that blocked the bot loses its alerts once, instead of being retried at every crossing', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  await ask(rig, '/alert temp > 25.5');
  rig.emu.injectFault({ kind: 'status', status: 403, description: 'Forbidden: bot was blocked by the user' }, { method: 'sendMessage', count: 5 });
  const before = sendsTo(rig, OWNER);
  await feed(rig, [1500]);
  await eventually(() => rig.app.alerts.list(OWNER).length === 0);
  assert.deepEqual(onDisk(rig.stateDir), {}, 'the removal was not persisted');
  // Back, and over again, half an hour long: not one more try.
  await feed(rig, [-1000], 11);
  await feed(rig, [1500], 11);
  assert.equal(sendsTo(rig, OWNER) - before, 1);
  rig.emu.clearFaults();
});

test('a blocked chat whose alerts cannot be removed (read-only card) is paused until it speaks again', { timeout: 60_000 }, async (t) => {
  const disk = smallDisk(t, 64, ['inbox', 'history']);
  if (disk === null) return;
  const rig = await applianceRig(t, { stateDir: disk.dir });
  await ask(rig, '/alert temp > 25.5');
  disk.readOnly();
  rig.emu.injectFault({ kind: 'status', status: 403, description: 'Forbidden: bot was blocked by the user' }, { method: 'sendMessage' });
  const before = sendsTo(rig, OWNER);
  await feed(rig, [1500]);
  await feed(rig, [-1000], 11);
  await feed(rig, [1500], 11);
  assert.equal(sendsTo(rig, OWNER) - before, 1, 'a blocked chat was tried again');
  assert.equal(rig.app.alerts.list(OWNER).length, 1);
  assert.ok(rig.log.lines.some((l) => l.includes(`chat ${OWNER} blocked the bot or is gone; its alerts are paused`)));
  // The user unblocked the bot and speaks: the alert works again.
  await ask(rig, '/alert');
  await feed(rig, [-1000], 11);
  assert.match(textsTo(rig.emu, OWNER).at(-1) ?? '', /^✅ 24\.8°C: temperature back below 25\.5°C/);
});

test('every echo of /alert and /chart input is one short line, whatever was typed', { timeout: 10_000 }, async () => {
  const alerts = await AlertService.open({ stateDir: '/nonexistent-never-written', log: memoryLogger(), send: async () => undefined });
  const latest = async (): Promise<Sample> => ({ atMs: 0, reading: { temperature: 20, humidity: 50, pressure: 1000 } });
  const replies = [
    await alerts.command(42, `${'9x'.repeat(2000)}`, latest),
    await alerts.command(42, `${'w'.repeat(4000)} < 5`, latest),
    await alerts.command(42, `temp\n<\n${'5'.repeat(4000)}`, latest),
  ];
  for (const reply of replies) {
    assert.ok(reply.length < 300 && !reply.includes('\n'), `${reply.length} characters: ${reply.slice(0, 80)}`);
    assert.match(reply, /^"[^"]{1,63}…" is not (an alert|something I measure)/);
  }
  assert.throws(() => chartSpan(`${'z'.repeat(4000)}\n\n`), (error: Error) => error.message.length < 200 && /^"z+…" is not a period/.test(error.message));
});

test('/alert off with a long word that is no number says so in one short line', { timeout: 10_000 }, async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-alerts-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const alerts = await AlertService.open({ stateDir, log: memoryLogger(), send: async () => undefined });
  await alerts.command(42, 't < 5', async () => ({ atMs: 0, reading: { temperature: 20, humidity: 50, pressure: 1000 } }));
  const reply = await alerts.command(42, `off ${'y'.repeat(4000)}`, async () => ({ atMs: 0, error: new Error('unused') }));
  assert.match(reply, /^"y{63}…" is not an alert number/);
  assert.equal(alerts.list(42).length, 1);
});
