// REPORT_STYLE=edit through the emulator: a chat's reports edit one live message, and an unchanged
// reading is not sent again.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ask, applianceRig, OWNER, raw } from './appliance-support.js';
import { settle } from './fakes/clock.js';
import { eventually } from './support.js';

const minute = 60_000;

/** An appliance with REPORT_STYLE=edit, the owner subscribed every minute, and its first report sent as the live message. */
async function withLiveMessage(t: TestContext) {
  const rig = await applianceRig(t);
  rig.config.reportStyle = 'edit';
  await rig.restart();
  assert.match(await ask(rig, '/1m'), /I will report every 1m/);
  const tick = async () => {
    await rig.wall.advanceAsync(minute);
    for (let i = 0; i < 8; i++) await settle();
  };
  const sent = () => rig.emu.callsOf('sendMessage').length;
  const before = sent();
  await tick();
  await eventually(() => sent() === before + 1, 5000, 'the first report');
  return { rig, tick, sent, before, live: rig.emu.sentMessages(OWNER).at(-1) };
}

test('with REPORT_STYLE=edit each report edits the live message, and an unchanged reading edits nothing', { timeout: 60_000 }, async (t) => {
  const { rig, tick, sent, before, live } = await withLiveMessage(t);

  rig.chip.queueRaw({ ...raw, adcT: raw.adcT + 5000 });
  await tick();
  await eventually(() => rig.emu.callsOf('editMessageText').length === 1, 5000, 'the live message to be edited');
  const edit = rig.emu.callsOf('editMessageText')[0];
  assert.equal(edit?.params.message_id, live?.message_id);
  assert.notEqual(edit?.params.text, live !== undefined && 'text' in live ? live.text : undefined);
  assert.equal(sent(), before + 1, 'a report was sent as a new message');

  // The same reading again: neither an edit nor a message.
  await tick();
  await tick();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(rig.emu.callsOf('editMessageText').length, 1);
  assert.equal(sent(), before + 1);
});

test('with REPORT_STYLE=edit a restart goes on editing the same live message (its id is kept with the subscription)', { timeout: 60_000 }, async (t) => {
  const { rig, tick, sent, before, live } = await withLiveMessage(t);
  await eventually(() => rig.app !== undefined && JSON.parse(readFileSync(join(rig.stateDir, 'state.json'), 'utf8')).subscriptions[0]?.liveMessageId === live?.message_id, 5000, 'the id in state.json');

  await rig.restart();
  rig.chip.queueRaw({ ...raw, adcT: raw.adcT + 5000 });
  await tick();
  await eventually(() => rig.emu.callsOf('editMessageText').length === 1, 5000, 'the live message to be edited after the restart');
  assert.equal(rig.emu.callsOf('editMessageText')[0]?.params.message_id, live?.message_id, 'the same message');
  assert.equal(sent(), before + 1, 'no second live message');
  // A new interval keeps it too.
  assert.match(await ask(rig, '/every 2m'), /every 2m/);
  assert.equal(JSON.parse(readFileSync(join(rig.stateDir, 'state.json'), 'utf8')).subscriptions[0]?.liveMessageId, live?.message_id);
});
