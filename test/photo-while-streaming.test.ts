// /photo while the stream runs, through the whole appliance: the emulator for Telegram and the fake
// rpicam-vid/rpicam-still on PATH, which, like the real camera, open for one process at a time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applianceRig, ask, OWNER } from './appliance-support.js';
import { jpegComments } from './fakes/jpeg.js';

test('/photo while streaming sends a new frame of the stream and never starts rpicam-still on the busy camera', { timeout: 30_000 }, async (t) => {
  const rig = await applianceRig(t, { camera: { fps: 20 } });
  assert.match(await ask(rig, '/open'), /token=/);
  const before = rig.emu.callsOf('sendPhoto').length;
  rig.emu.pushText('/photo', { chatId: OWNER, userId: OWNER });
  await rig.emu.waitForCall('sendPhoto', (call) => rig.emu.callsOf('sendPhoto').indexOf(call) >= before, 15_000);
  const photo = rig.emu.sentMessages(OWNER).at(-1)?.photo?.at(-1);
  const bytes = rig.emu.files.get(photo?.file_id ?? '')?.bytes;
  assert.ok(bytes, 'a photo was uploaded');
  assert.match(jpegComments(bytes)[0] ?? '', /^fake rpicam-vid frame \d+/);
  assert.deepEqual(rig.tools.runs().map((run) => run.tool), ['rpicam-vid'], 'no still process was started');
});
