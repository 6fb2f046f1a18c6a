// /chart through the emulator, with the BME280 behind a register-level fake bus on an injected clock:
// a week of readings is recorded, charted, and swapped by the buttons.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from '@grammyjs/types';
import { chartLayout, panelStyles } from '../src/app/history/chart-svg.js';
import type { Row } from '../src/app/history/store.js';
import { ask, applianceRig, OWNER, raw, STRANGER, type ApplianceRig } from './appliance-support.js';
import { settle } from './fakes/clock.js';
import { countColour, decodePng } from './png-decode.js';
import { eventually } from './support.js';

const minute = 60_000;
const day = 1440 * minute;

/** Lets the simulated minutes pass one by one, each reading finishing on the fake bus before the next. */
async function live(rig: ApplianceRig, minutes: number, onMinute?: (k: number) => void): Promise<void> {
  for (let k = 0; k < minutes; k++) {
    onMinute?.(k);
    await rig.wall.advanceAsync(minute);
    for (let i = 0; i < 8; i++) await settle();
  }
}

function photoOf(rig: ApplianceRig, message: Message | undefined): Buffer {
  const sizes = message !== undefined && 'photo' in message ? message.photo : undefined;
  const fileId = sizes?.at(-1)?.file_id;
  const bytes = fileId === undefined ? undefined : rig.emu.files.get(fileId)?.bytes;
  assert.ok(bytes !== undefined, 'the message holds no photo the emulator kept');
  return bytes;
}

test('a simulated week is recorded; /chart 7d answers a PNG whose caption matches it; the buttons swap the picture', { timeout: 120_000 }, async (t) => {
  const rig = await applianceRig(t);
  // The room warms and cools once a day (±3000 raw counts ≈ ±2.6°C); the sensor fails for a while on day 3.
  rig.chip.queueRaw(...Array.from({ length: 7 * 1440 + 60 }, (_, k) => ({ ...raw, adcT: raw.adcT + Math.round(3000 * Math.sin((k / 1440) * 2 * Math.PI)) })));
  await live(rig, 7 * 1440, (k) => {
    if (k === 3 * 1440) rig.bus.failNext(200, 'EIO', 0x76);
  });

  const nowMs = rig.wall.now();
  const rows: Row[] = [];
  await rig.app.history.scan(nowMs - 7 * day, nowMs, (row) => rows.push({ ...row }));
  const readings = rows.filter((row) => !Number.isNaN(row.temperature));
  // A row for nearly every minute of the week: a reading, or a gap where the bus failed (a read that
  // outlasts its minute, as the sensor's reopening does, is shared with the next tick).
  assert.ok(rows.length >= 7 * 1440 - 5, `only ${rows.length} rows recorded in a week of minutes`);
  assert.ok(rows.length - readings.length > 0, 'the failed reads left no gap in the history');

  const before = rig.emu.sentMessages(OWNER).length;
  rig.emu.pushText('/chart 7d', { chatId: OWNER, userId: OWNER });
  await eventually(() => rig.emu.sentMessages(OWNER).length > before, 30_000, 'the chart');
  const message = rig.emu.sentMessages(OWNER)[before];
  const png = decodePng(photoOf(rig, message));
  assert.equal(png.width, 800);
  const caption = message !== undefined && 'caption' in message ? (message.caption ?? '') : '';
  const one = (v: number) => v.toFixed(1);
  const temperatures = readings.map((row) => row.temperature);
  assert.match(caption, new RegExp(`^Last 7d\\nmin  ${one(Math.min(...temperatures))}°C  `));
  assert.match(caption, new RegExp(`\\nmax  ${one(Math.max(...temperatures))}°C  `));
  // One panel per quantity (the fake chip has humidity), each drawn.
  const layout = chartLayout({ series: { temperature: { stats: {} }, humidity: { stats: {} }, pressure: { stats: {} } } } as never);
  assert.equal(png.height, layout.heightPx);
  for (const panel of layout.panels) {
    assert.ok(countColour(png, panel, panelStyles[panel.quantity].colour) > 300, `the ${panel.quantity} panel is blank`);
  }
  const keyboard = message !== undefined && 'reply_markup' in message ? message.reply_markup?.inline_keyboard[0]?.map((b) => b.text) : [];
  assert.deepEqual(keyboard, ['24h', '· 7d ·', '30d', '↻']);

  // The owner presses 24h: the press is answered before the new picture is drawn, and the photo is replaced in place.
  const messageId = message?.message_id as number;
  rig.emu.pushCallbackQuery({ data: 'chart:24h', chatId: OWNER, userId: OWNER, messageId });
  const edit = await rig.emu.waitForCall('editMessageMedia', undefined, 30_000);
  const answered = rig.emu.callsOf('answerCallbackQuery');
  assert.equal(answered.length, 1);
  assert.ok((answered[0]?.atMs ?? Infinity) < edit.atMs, 'the press was answered only after the chart was drawn');
  const swapped = rig.emu.sentMessages(OWNER).find((m) => m.message_id === messageId);
  assert.match(swapped !== undefined && 'caption' in swapped ? (swapped.caption ?? '') : '', /^Last 24h\n/);
  assert.notDeepEqual(photoOf(rig, swapped), photoOf(rig, message));

  // A stranger's press is answered (the spinner stops) and changes nothing.
  rig.emu.pushCallbackQuery({ data: 'chart:30d', chatId: OWNER, userId: STRANGER, messageId });
  await eventually(() => rig.emu.callsOf('answerCallbackQuery').length === 2, 10_000, 'the stranger\'s press to be answered');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(rig.emu.callsOf('editMessageMedia').length, 1, 'a stranger\'s press changed the chart');
});

test('/chart refuses absurd periods with the accepted range, and /every without an interval offers buttons', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  for (const args of ['5m', '3y', 'banana', '-7d', '99999999999y']) {
    assert.match(await ask(rig, `/chart ${args}`), /Send \/chart with a period from 1h to 2y/, args);
  }
  assert.equal(rig.emu.callsOf('sendPhoto').length, 0);
  assert.match(await ask(rig, '/every'), /^Report every… Choose below/);
  const offer = rig.emu.sentMessages(OWNER).at(-1);
  const buttons = offer !== undefined && 'reply_markup' in offer ? offer.reply_markup?.inline_keyboard[0]?.map((b) => b.text) : [];
  assert.deepEqual(buttons, ['15m', '1h', '6h', '24h', 'off']);
  const before = rig.emu.sentMessages(OWNER).length;
  rig.emu.pushCallbackQuery({ data: 'every:6h', chatId: OWNER, userId: OWNER, messageId: offer?.message_id });
  await eventually(() => rig.emu.sentMessages(OWNER).length > before, 10_000, 'the subscription');
  assert.match(rig.emu.sentMessages(OWNER).at(-1)?.text ?? '', /I will report every 6h/);
  assert.equal(rig.app.climate.subscription(OWNER)?.intervalMs, 6 * 3_600_000);

  // Forged button data (any client can send any callback_data): each press is answered, nothing else happens.
  const answeredBefore = rig.emu.callsOf('answerCallbackQuery').length;
  const forged = ['chart:99999y', 'chart:5m', 'chart:', 'every:1s', 'every:', 'every:6h:extra', 'open:now', '', ':'];
  for (const data of forged) rig.emu.pushCallbackQuery({ data, chatId: OWNER, userId: OWNER, messageId: offer?.message_id });
  await eventually(() => rig.emu.callsOf('answerCallbackQuery').length === answeredBefore + forged.length, 10_000, 'every press to be answered');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(rig.emu.callsOf('editMessageMedia').length + rig.emu.callsOf('sendPhoto').length, 0);
  assert.equal(rig.app.climate.subscription(OWNER)?.intervalMs, 6 * 3_600_000, 'forged data changed the subscription');
});

test('the command menu is scoped: users get theirs by default, each owner the full one in their chat', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  const calls = rig.emu.callsOf('setMyCommands');
  const names = (i: number) => (calls[i]?.params.commands as Array<{ command: string }>).map((c) => c.command);
  assert.deepEqual(calls.map((c) => c.params.scope), [{ type: 'default' }, { type: 'chat', chat_id: OWNER }]);
  assert.ok(names(0).includes('chart') && !names(0).includes('open'), 'the users\' menu offers an owner command or lacks /chart');
  assert.ok(names(1).includes('open') && names(1).includes('alert'));
});
