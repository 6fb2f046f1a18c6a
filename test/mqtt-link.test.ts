// The MQTT link against a real Mosquitto that restarts, freezes, refuses a password or a certificate,
// sees two Pis with one id, or gets a stranger's huge message: telepi recovers, says why once, never storms.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { discoveryTopic, topicsFor } from '../src/app/mqtt/discovery.js';
import { mosquittoMissing, startBroker, watch } from './fakes/mosquitto.js';
import { outletRig } from './fakes/outlet-rig.js';
import { eventually } from './support.js';

const skip = mosquittoMissing();
const topics = topicsFor('kitchen');
const configTopic = discoveryTopic('homeassistant', 'kitchen');
const everything = ['homeassistant/device/+/config', 'telepi/#'];
const login = { username: 'telepi', password: 'correct horse battery' };

describe('MQTT link with a real broker', { skip }, () => {
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

  test('two Pis with the same node id: a clear error naming MQTT_NODE_ID, and no kick-each-other storm', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const backoff = { initialMs: 50, capMs: 2000 };
    const first = await outletRig(t, broker, { backoff });
    await eventually(() => first.outlet.status.connected, 5000, 'the first link');
    const second = await outletRig(t, broker, { backoff });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Reconnecting at the initial 50 ms each time, the two would make about 100 connections in 3 s.
    assert.ok(broker.connections() < 25, `${broker.connections()} connections in 3 s`);
    const errors = [...first.log.lines, ...second.log.lines].filter((line) => line.startsWith('ERROR'));
    assert.ok(errors.length >= 1 && errors.length <= 2, [...first.log.lines, ...second.log.lines].join('\n'));
    assert.match(errors[0] ?? '', /keeps closing this link right after connecting: another client probably uses the id telepi-kitchen; give each Pi its own MQTT_NODE_ID/);
  });

  test("a stranger's 1 MB message to the button never reaches telepi (it asked the broker for 64 KB at most)", { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t);
    const rig = await outletRig(t, broker);
    await eventually(() => rig.outlet.status.connected, 5000, 'the link');
    const stranger = await watch(t, broker, []);
    await stranger.publish(topics.takePhoto, 'PRESS'.padEnd(1_000_000, ' '));
    await stranger.publish(topics.takePhoto, 'PRESS');
    await eventually(() => rig.captures() === 1, 5000, 'the small press to be answered');
    assert.ok(rig.outlet.status.connected, 'still connected');
    assert.match(broker.log(), /Dropped too large PUBLISH|too large/i);
  });

});
