// Red team: a sensor driver that throws what is not an Error (null, an object without a prototype,
// one whose toString throws) or never settles (a stuck I2C bus: 10 s). /now still answers with the reason, the chat answers
// its next command, and no unhandled rejection fires.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClimateSensor } from '../hardware/types.js';
import { describeError } from '../src/log.js';
import { applianceRig, OWNER } from './appliance-support.js';
import { eventually, textsTo } from './support.js';

test('describeError never throws, whatever was thrown', () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const odd: unknown[] = [null, undefined, Object.create(null), { toString: () => { throw new Error('no'); } }, Symbol('s'), revoked.proxy, 'two\nlines'];
  assert.deepEqual(odd.map(describeError), ['null', 'undefined', '[object Object]', '[object Object]', 'Symbol(s)', 'a value that cannot be shown', 'two lines']);
});

test('/now when the sensor throws values that are not Errors: answered each time, no unhandled rejection', { timeout: 30_000 }, async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.removeListener('unhandledRejection', onUnhandled));
  const rig = await applianceRig(t);
  const sensor = (rig.app as unknown as { options: { hardware: { climate: ClimateSensor } } }).options.hardware.climate;
  const thrown: unknown[] = [null, Object.create(null), { toString: () => { throw new Error('no'); } }];
  for (const [i, value] of thrown.entries()) {
    sensor.read = () => Promise.reject(value);
    rig.emu.pushText('/now', { chatId: OWNER, userId: OWNER });
    await eventually(() => textsTo(rig.emu, OWNER).length >= i + 1, 10_000, `a reply to /now #${i + 1}`);
    assert.match(textsTo(rig.emu, OWNER)[i] as string, /unavailable|error|fail/i);
  }
  rig.emu.pushText('/help', { chatId: OWNER, userId: OWNER });
  await eventually(() => textsTo(rig.emu, OWNER).length >= thrown.length + 1, 10_000, 'a reply to /help after them');
  assert.deepEqual(unhandled, []);
});

test('/now when the sensor read never settles (a stuck I2C bus): answered after 10 s, and the chat answers its next command', { timeout: 30_000 }, async (t) => {
  const rig = await applianceRig(t);
  const sensor = (rig.app as unknown as { options: { hardware: { climate: ClimateSensor } } }).options.hardware.climate;
  sensor.read = () => new Promise(() => undefined);
  rig.emu.pushText('/now', { chatId: OWNER, userId: OWNER });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(textsTo(rig.emu, OWNER), [], 'no answer before the timeout');
  await rig.wall.advanceAsync(10_000);
  await eventually(() => textsTo(rig.emu, OWNER).length >= 1, 10_000, 'a reply to /now');
  assert.match(textsTo(rig.emu, OWNER)[0] as string, /Sensor unavailable: no answer from the sensor within 10 s/);
  rig.emu.pushText('/help', { chatId: OWNER, userId: OWNER });
  await eventually(() => textsTo(rig.emu, OWNER).length >= 2, 10_000, 'a reply to /help after it');
});
