// Red team: a PRESS someone published with retain on the Take photo topic (a common Home Assistant
// mistake) comes back from the broker at every connect. It is ignored with a warning saying how to
// clear it, not a photo per (re)connect; a live press still takes one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { topicsFor } from '../src/app/mqtt/discovery.js';
import { mosquittoMissing, startBroker, watch } from './fakes/mosquitto.js';
import { outletRig } from './fakes/outlet-rig.js';
import { eventually } from './support.js';

const topics = topicsFor('kitchen');

test('a retained PRESS waiting at connect takes no photo; a live one does', { timeout: 20_000, skip: mosquittoMissing() }, async (t) => {
  const broker = await startBroker(t);
  const ha = await watch(t, broker, [topics.photo]);
  await ha.publish(topics.takePhoto, 'PRESS', true);
  const rig = await outletRig(t, broker);
  await eventually(() => rig.outlet.status.connected, 5000, 'the link');
  await eventually(() => rig.log.lines.some((line) => /ignored a retained PRESS/.test(line)), 5000, 'the warning about the retained press');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(rig.captures(), 0, 'no photo for a press from before the connection');
  await ha.publish(topics.takePhoto, 'PRESS');
  await ha.next(topics.photo);
  assert.equal(rig.captures(), 1, 'a live press takes one');
});
