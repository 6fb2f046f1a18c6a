// The MQTT outlet against a real Mosquitto on loopback: discovery, state, availability, Home
// Assistant's birth message, the Take photo button, a broker that restarts, freezes or refuses us.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test, type TestContext } from 'node:test';
import { SimulatedCamera } from '../hardware/simulated/camera.js';
import type { ClimateReading, ClimateSensor, MotionSensor } from '../hardware/types.js';
import { discoveryTopic, topicsFor } from '../src/app/mqtt/discovery.js';
import type { BackoffOptions } from '../src/app/mqtt/link.js';
import { MqttOutlet } from '../src/app/mqtt/outlet.js';
import type { MqttConfig } from '../src/app/mqtt/settings.js';
import { ReadingSource } from '../src/app/readings.js';
import { systemClock } from '../src/app/scheduler.js';
import { memoryLogger } from '../src/log.js';
import { FakeClock } from './fakes/clock.js';
import { discoveryProblems } from './fakes/home-assistant.js';
import { mosquittoMissing, startBroker, watch, type Broker } from './fakes/mosquitto.js';
import { eventually } from './support.js';

const skip = mosquittoMissing();
const topics = topicsFor('kitchen');
const configTopic = discoveryTopic('homeassistant', 'kitchen');
const everything = ['homeassistant/device/+/config', 'telepi/#'];
const login = { username: 'telepi', password: 'correct horse battery' };

/** A sensor that reads whatever the test sets: the outlet's source, not the code under test. */
function steadySensor(reading: ClimateReading): ClimateSensor & { reading: ClimateReading; reads: number } {
  return {
    description: 'test BME280', reading, reads: 0,
    async read() {
      this.reads++;
      return { ...this.reading };
    },
    async close() {},
  };
}

function pir(): MotionSensor & { trigger(): void } {
  const listeners = new Set<() => void>();
  return {
    onMotion: (listener) => (listeners.add(listener), () => listeners.delete(listener)),
    trigger: () => listeners.forEach((listener) => listener()),
    close: async () => {},
  };
}

interface RigOptions {
  login?: { username: string; password: string };
  ca?: string;
  backoff?: BackoffOptions;
  keepaliveSeconds?: number;
  motion?: MotionSensor | null;
  humidity?: number | null;
  random?: () => number;
}

async function outletRig(t: TestContext, broker: Broker, options: RigOptions = {}) {
  const log = memoryLogger();
  const wall = new FakeClock();
  const sensor = steadySensor({ temperature: 21.43, humidity: options.humidity === undefined ? 45.21 : options.humidity, pressure: 1013.26 });
  const readings = new ReadingSource({ sensor, clock: wall, log });
  readings.start();
  const camera = new SimulatedCamera();
  let captures = 0;
  const config: MqttConfig = {
    url: broker.url, username: options.login?.username ?? null, password: options.login?.password ?? null,
    ca: options.ca ?? null, caPath: null, discoveryPrefix: 'homeassistant', nodeId: 'kitchen', everyMs: 60_000,
  };
  const outlet = await MqttOutlet.start({
    config, readings, motion: options.motion ?? null, model: sensor.description, log, clock: systemClock,
    takePhoto: async () => {
      captures++;
      return camera.capture();
    },
    birthDelayMaxMs: 100, random: options.random, keepaliveSeconds: options.keepaliveSeconds, backoff: options.backoff ?? { initialMs: 50, capMs: 400 },
  });
  t.after(async () => {
    await outlet.stop();
    await readings.stop();
  });
  return { outlet, log, wall, sensor, readings, captures: () => captures };
}

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

  test('the Take photo button publishes a JPEG on the image topic; a burst of presses runs one capture', { timeout: 20_000 }, async (t) => {
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
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(rig.captures() <= 2, `${rig.captures()} captures for two quick presses`);
    assert.equal(ha.on(topics.photo).length, rig.captures());
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

  test('a broker restart: reconnect, then discovery, state and online again within seconds', { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker);
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    await broker.stop();
    await eventually(() => !rig.outlet.status.connected, 5000, 'the link noticed the stop');
    await broker.start();
    const started = performance.now();
    // The broker keeps nothing (no persistence): all of it must be published afresh.
    const ha = await watch(t, broker, everything);
    await ha.next(configTopic, 5000);
    await ha.next(topics.state, 5000);
    assert.equal((await ha.next(topics.availability, 5000)).payload.toString(), 'online');
    assert.ok(performance.now() - started < 5000);
    assert.equal(rig.log.lines.filter((line) => /WARN MQTT: lost the link/.test(line)).length, 1, 'one warning per outage');
  });

  test('while the broker is down nothing queues: on reconnect, the latest state only', { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker, { backoff: { initialMs: 1000, capMs: 1000 } });
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    await broker.stop();
    await eventually(() => !rig.outlet.status.connected, 5000, 'the link noticed the stop');
    for (let minute = 1; minute <= 30; minute++) {
      rig.sensor.reading = { temperature: minute, humidity: 40, pressure: 1000 };
      await rig.wall.advanceAsync(60_000);
    }
    const restartedAt = broker.log().length;
    await broker.start();
    await eventually(() => rig.outlet.status.connected, 5000, 'the reconnect');
    await eventually(() => broker.log().slice(restartedAt).includes(`'${topics.availability}'`), 5000, 'online published');
    const statePublishes = broker.log().slice(restartedAt).split('\n').filter((line) => line.includes('Received PUBLISH') && line.includes(`'${topics.state}'`));
    assert.equal(statePublishes.length, 1, statePublishes.join('\n'));
    const ha = await watch(t, broker, [topics.state]);
    assert.equal(JSON.parse((await ha.next(topics.state)).payload.toString()).temperature, 30, 'the latest reading');
  });

  test('a wrong password: one clear error, no reconnect storm, no password in the log', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t, { user: login });
    const wrong = 'Tr0ub4dor&3-wrong';
    const rig = await outletRig(t, broker, { login: { username: 'telepi', password: wrong }, backoff: { initialMs: 20, capMs: 5000 } });
    await eventually(() => rig.outlet.status.lastError !== null, 5000, 'the refusal');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // With a transient failure the backoff would have tried about 7 times by now (20, 40, 80 … ms).
    assert.equal(broker.connections(), 1, broker.log());
    const errors = rig.log.lines.filter((line) => line.startsWith('ERROR'));
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /refused the login: check MQTT_USERNAME and MQTT_PASSWORD, and that the broker lets that user in \(retrying only every 5s\)/);
    assert.ok(!rig.log.lines.join('\n').includes(wrong));
    assert.equal(rig.outlet.status.connected, false);
  });

  test('the right password connects', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t, { user: login });
    const rig = await outletRig(t, broker, { login });
    const ha = await watch(t, broker, [configTopic], login);
    await ha.next(configTopic);
    assert.equal(rig.outlet.status.lastError, null);
  });

  test('TLS with a private CA works; without the CA the certificate is refused once, clearly', { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t, { tls: true });
    assert.match(broker.url, /^mqtts:/);
    const rig = await outletRig(t, broker, { ca: readFileSync(broker.caPath ?? '', 'utf8') });
    const ha = await watch(t, broker, [configTopic]);
    await ha.next(configTopic);
    assert.ok(rig.outlet.status.connected);
    const stranger = await outletRig(t, broker, { backoff: { initialMs: 20, capMs: 5000 } });
    await eventually(() => stranger.outlet.status.lastError !== null, 5000, 'the refusal');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const errors = stranger.log.lines.filter((line) => line.startsWith('ERROR'));
    assert.equal(errors.length, 1, stranger.log.lines.join('\n'));
    assert.match(errors[0] ?? '', /certificate was refused .* set MQTT_CA/);
  });

  test('a frozen broker is noticed by keepalive within about 1.5x its period, and the link comes back', { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker, { keepaliveSeconds: 1 });
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    broker.freeze(true);
    const frozenAt = performance.now();
    await eventually(() => !rig.outlet.status.connected, 5000, 'the dead link noticed');
    const noticedMs = performance.now() - frozenAt;
    assert.ok(noticedMs < 2500, `noticed after ${Math.round(noticedMs)} ms`);
    broker.freeze(false);
    await eventually(() => rig.outlet.status.connected, 10_000, 'the link back');
  });

  test('stopping with a frozen broker ends within its 2 s bound (systemd stop must not hang)', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker);
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    broker.freeze(true);
    const started = performance.now();
    await rig.outlet.stop();
    const tookMs = performance.now() - started;
    assert.ok(tookMs < 2500, `stop took ${Math.round(tookMs)} ms`);
    broker.freeze(false);
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
