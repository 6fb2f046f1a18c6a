// The MQTT outlet against a real Mosquitto on loopback: discovery, state, availability, Home
// Assistant's birth message, motion and the Take photo button.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { discoveryTopic, topicsFor } from '../src/app/mqtt/discovery.js';
import { discoveryProblems } from './fakes/home-assistant.js';
import { mosquittoMissing, startBroker, watch } from './fakes/mosquitto.js';
import { outletRig, pir } from './fakes/outlet-rig.js';
import { eventually } from './support.js';

const skip = mosquittoMissing();
const topics = topicsFor('kitchen');
const configTopic = discoveryTopic('homeassistant', 'kitchen');
const everything = ['homeassistant/device/+/config', 'telepi/#'];

describe('MQTT outlet with a real broker', { skip }, () => {
  test('discovery, state and availability are retained, and discovery passes Home Assistant rules', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker, { motion: pir() });
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    // A client connecting afterwards, as Home Assistant after a restart, gets it all from the broker.
    await eventually(() => broker.log().includes(`'${topics.availability}'`), 5000, 'online published');
    const ha = await watch(t, broker, everything);
    const config = await ha.next(configTopic);
    assert.ok(config.retain);
    assert.deepEqual(discoveryProblems(config.topic, JSON.parse(config.payload.toString())), []);
    const state = await ha.next(topics.state);
    assert.ok(state.retain);
    assert.deepEqual(JSON.parse(state.payload.toString()), { temperature: 21.4, humidity: 45.2, pressure: 1013.3, time: JSON.parse(state.payload.toString()).time });
    assert.equal((await ha.next(topics.availability)).payload.toString(), 'online');
    assert.equal((await ha.next(topics.motion)).payload.toString(), 'OFF');
  });

  test('each reading of the source publishes one state; a failed read publishes nothing', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker);
    const ha = await watch(t, broker, [topics.state]);
    await ha.next(topics.state);
    rig.sensor.reading = { temperature: 25.04, humidity: 50, pressure: 1000 };
    await rig.wall.advanceAsync(60_000);
    await eventually(() => ha.on(topics.state).length === 2, 5000, 'the second state');
    assert.equal(JSON.parse(ha.on(topics.state)[1] ?? '').temperature, 25);
    rig.sensor.read = async () => {
      throw new Error('I2C read failed');
    };
    await rig.wall.advanceAsync(60_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(ha.on(topics.state).length, 2, 'no state for a failed read: Home Assistant expires the old one');
  });

  test('a clean stop leaves offline retained', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker);
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    await rig.outlet.stop();
    const ha = await watch(t, broker, [topics.availability]);
    const availability = await ha.next(topics.availability);
    assert.equal(availability.payload.toString(), 'offline');
    assert.ok(availability.retain);
    assert.doesNotMatch(broker.log(), /Client telepi-kitchen closed its connection|disconnected, not authorised/);
  });

  test("Home Assistant's birth message makes it publish discovery and state again, once for a burst of births", { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    // The longest wait (100 ms here), so both births of the burst arrive within it.
    const rig = await outletRig(t, broker, { random: () => 1 });
    const ha = await watch(t, broker, everything);
    await ha.next(configTopic);
    await ha.next(topics.state);
    const before = ha.messages.length;
    await Promise.all([ha.publish('homeassistant/status', 'online'), ha.publish('homeassistant/status', 'online')]);
    await ha.next(configTopic, 5000, before);
    await ha.next(topics.state, 5000, before);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(ha.messages.slice(before).filter((m) => m.topic === configTopic).length, 1, 'one re-publish for two births');
    await ha.publish('homeassistant/status', 'offline');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(ha.messages.slice(before).filter((m) => m.topic === configTopic).length, 1, 'offline triggers nothing');
    assert.match(rig.log.lines.join('\n'), /Home Assistant came online/);
  });

  test('the Take photo button publishes a JPEG on the image topic; a burst of presses runs one capture (at most one per 2 s)', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker);
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    const ha = await watch(t, broker, [topics.photo]);
    await ha.publish(topics.takePhoto, 'PRESS');
    await ha.publish(topics.takePhoto, 'PRESS');
    await ha.publish(topics.takePhoto, 'something else');
    const photo = await ha.next(topics.photo);
    assert.equal(photo.payload.readUInt16BE(0), 0xffd8, 'a JPEG');
    assert.equal(photo.payload.readUInt16BE(photo.payload.length - 2), 0xffd9, 'a complete JPEG');
    // Pressed again once the photo is out, still within 2 s of the capture: no second capture.
    await ha.publish(topics.takePhoto, 'PRESS');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(rig.captures(), 1, 'three quick presses, one capture');
    assert.equal(ha.on(topics.photo).length, 1);
  });

  test('motion publishes ON (Home Assistant turns it off after off_delay)', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const motion = pir();
    const rig = await outletRig(t, broker, { motion });
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    const ha = await watch(t, broker, [topics.motion]);
    await ha.next(topics.motion);
    motion.trigger();
    await eventually(() => ha.on(topics.motion).includes('ON'), 5000, 'ON');
  });

  test('a humidity entity announced while the sensor failed is removed once a BMP280 reading comes, then left out', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker, { failing: true, humidity: null });
    const ha = await watch(t, broker, [configTopic, topics.state]);
    const components = (at: number) => (JSON.parse(ha.on(configTopic)[at] ?? '{}') as { components: Record<string, unknown> }).components;
    await ha.next(configTopic);
    assert.equal((components(0).humidity as { device_class?: string }).device_class, 'humidity', 'unknown sensor: announced');
    assert.equal(ha.on(topics.state).length, 0, 'no state from a failed read');
    rig.sensor.failure = null;
    await rig.wall.advanceAsync(60_000);
    await eventually(() => ha.on(configTopic).length === 2, 5000, 'the removal');
    assert.deepEqual(components(1).humidity, { platform: 'sensor' });
    await eventually(() => ha.on(topics.state).length === 1, 5000, 'the state');
    assert.equal('humidity' in JSON.parse(ha.on(topics.state)[0] ?? ''), false);
    await ha.publish('homeassistant/status', 'online');
    await eventually(() => ha.on(configTopic).length === 3, 5000, 'the next discovery');
    assert.equal(components(2).humidity, undefined, 'said once, then left out');
  });

  test('a BMP280 reading removes the humidity entity it was not sure of', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker, { humidity: null });
    const ha = await watch(t, broker, [configTopic]);
    const config = JSON.parse((await ha.next(configTopic)).payload.toString()) as { components: Record<string, unknown> };
    assert.equal(config.components.humidity, undefined, 'known before the first discovery: never announced');
    assert.ok(rig.outlet.status.connected);
  });
});

