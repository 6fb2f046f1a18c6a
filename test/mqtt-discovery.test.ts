import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { discoveryPayload, discoveryTopic, nodeIdFromHostname, statePayload, topicsFor, type DiscoveryOptions } from '../src/app/mqtt/discovery.js';
import { formatReading } from '../src/app/format.js';
import { discoveryProblems, duplicateUniqueIds } from './fakes/home-assistant.js';

const base: DiscoveryOptions = {
  nodeId: 'kitchen', deviceName: 'kitchen', model: 'BME280 at 0x76 on i2c-1', swVersion: '0.1.0', humidity: true, motion: true, everyMs: 60_000,
};
type Components = Record<string, Record<string, unknown>>;
const componentsOf = (payload: Record<string, unknown>) => payload.components as Components;

describe('Home Assistant discovery payload', () => {
  test('a BME280 with a PIR gives six valid entities under one device, by Home Assistant rules', () => {
    const payload = discoveryPayload(base);
    assert.deepEqual(discoveryProblems(discoveryTopic('homeassistant', 'kitchen'), payload), []);
    const components = componentsOf(payload);
    assert.deepEqual(Object.keys(components), ['temperature', 'humidity', 'pressure', 'motion', 'photo', 'take_photo']);
    assert.deepEqual(Object.values(components).map((c) => c.platform), ['sensor', 'sensor', 'sensor', 'binary_sensor', 'image', 'button']);
    assert.deepEqual(
      Object.values(components).filter((c) => c.platform === 'sensor').map((c) => [c.device_class, c.unit_of_measurement, c.state_class]),
      [['temperature', '°C', 'measurement'], ['humidity', '%', 'measurement'], ['atmospheric_pressure', 'hPa', 'measurement']]);
    const device = payload.device as Record<string, unknown>;
    for (const key of ['identifiers', 'name', 'model', 'manufacturer', 'sw_version']) assert.ok(device[key] !== undefined, `device.${key}`);
    assert.equal((payload.origin as { name: string }).name, 'telepi');
  });

  test('readings expire after three publish intervals, shown with the one decimal /now shows', () => {
    const components = componentsOf(discoveryPayload({ ...base, everyMs: 5 * 60_000 }));
    assert.equal(components.temperature?.expire_after, 900);
    assert.equal(components.pressure?.suggested_display_precision, 1);
    assert.equal(componentsOf(discoveryPayload({ ...base, everyMs: 10_001 })).humidity?.expire_after, 31, 'rounded up, never 0');
  });

  test('a BMP280 has no humidity entity; "removed" uses the documented platform-only form', () => {
    const without = discoveryPayload({ ...base, humidity: false });
    assert.equal(componentsOf(without).humidity, undefined);
    const removing = discoveryPayload({ ...base, humidity: 'removed' });
    assert.deepEqual(componentsOf(removing).humidity, { platform: 'sensor' });
    assert.deepEqual(discoveryProblems(discoveryTopic('homeassistant', 'kitchen'), removing), []);
  });

  test('no PIR, no motion entity', () => {
    assert.equal(componentsOf(discoveryPayload({ ...base, motion: false })).motion, undefined);
  });

  test('unique ids are unique within a Pi and across the Pis of a house', () => {
    const house = ['kitchen', 'bedroom', 'garage'].map((nodeId) => discoveryPayload({ ...base, nodeId, deviceName: nodeId }));
    assert.deepEqual(duplicateUniqueIds(house), []);
    assert.deepEqual(duplicateUniqueIds([discoveryPayload(base), discoveryPayload(base)]).length, 6, 'the checker does find duplicates');
  });

  test('every topic an entity uses sits under telepi/<node_id>', () => {
    const components = componentsOf(discoveryPayload(base));
    const topics = Object.values(components).flatMap((c) => Object.entries(c).filter(([key]) => key.endsWith('_topic')).map(([, value]) => value));
    assert.ok(topics.length >= 6);
    for (const topic of topics) assert.match(String(topic), /^telepi\/kitchen\//);
    assert.equal(topicsFor('kitchen').availability, 'telepi/kitchen/availability');
  });

  test('the validator rejects what Home Assistant would: a wrong unit, a missing state topic, a typo, a bad topic', () => {
    const payload = discoveryPayload(base);
    const components = componentsOf(payload);
    (components.temperature as Record<string, unknown>).unit_of_measurement = 'C';
    delete (components.pressure as Record<string, unknown>).state_topic;
    (components.humidity as Record<string, unknown>).unit_of_measurment = '%';
    (components.motion as Record<string, unknown>).device_class = 'movement';
    const problems = discoveryProblems('homeassistant/device/kitchen pi/config', payload);
    assert.equal(problems.length, 5, problems.join('\n'));
  });
});

describe('state payload', () => {
  test('values are those /now shows, rounded the same way, with the time of the reading', () => {
    for (const reading of [
      { temperature: 21.449, humidity: 45.25, pressure: 1013.25 },
      { temperature: -0.04, humidity: 99.95, pressure: 987.05 },
      { temperature: 0.15, humidity: null, pressure: 1000.45 },
      { temperature: 21.45, humidity: 2.35, pressure: 1013.2 },
    ]) {
      const state = JSON.parse(statePayload(reading, Date.UTC(2026, 0, 1))) as { temperature: number; humidity?: number; pressure: number; time: string };
      const asNow = formatReading({ temperature: state.temperature, humidity: state.humidity ?? null, pressure: state.pressure });
      assert.equal(asNow, formatReading(reading));
      assert.equal(state.time, '2026-01-01T00:00:00.000Z');
      assert.equal('humidity' in state, reading.humidity !== null);
    }
  });
});

describe('node id', () => {
  test('a host name becomes a valid node id', () => {
    assert.equal(nodeIdFromHostname('Kitchen-Pi.local'), 'kitchen-pi');
    assert.equal(nodeIdFromHostname('raspberry pi 4'), 'raspberry_pi_4');
    assert.equal(nodeIdFromHostname('...'), 'telepi');
    assert.equal(nodeIdFromHostname('ünï'), 'n');
  });
});
