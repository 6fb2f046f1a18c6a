// `telepi doctor`'s broker check against a real Mosquitto: a round trip, a refused login, no broker.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { runDoctor } from '../src/app/doctor.js';
import { freePort, mosquittoMissing, startBroker } from './fakes/mosquitto.js';
import { harness, TOKEN } from './support.js';

const login = { username: 'kitchen', password: 'pass-for-doctor-9' };

async function doctor(t: TestContext, mqtt: Record<string, string>): Promise<{ code: number; lines: string[] }> {
  const h = await harness(t);
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-mqtt-doctor-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const lines: string[] = [];
  const env = { TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: h.emu.apiRoot, TELEPI_OWNERS: '1001', TELEPI_HARDWARE: 'simulated', TELEPI_STATE_DIR: stateDir, ...mqtt };
  const code = await runDoctor(env, { out: (text) => lines.push(text), err: (text) => lines.push(text) }, { envFile: '/nonexistent/telepi.env', mqttTimeoutMs: 3000 });
  return { code, lines };
}

const mqttLine = (lines: string[]) => lines.find((line) => line.includes('MQTT broker')) ?? '(no MQTT line)';

describe('doctor checks the MQTT broker', { skip: mosquittoMissing() }, () => {
  test('a working broker and login: a message goes round', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t, { user: login });
    const { code, lines } = await doctor(t, { MQTT_URL: broker.url, MQTT_USERNAME: login.username, MQTT_PASSWORD: login.password, MQTT_NODE_ID: 'kitchen' });
    assert.match(mqttLine(lines), /^✓ MQTT broker: mqtt:\/\/127\.0\.0\.1:\d+: connected as kitchen, a message went round in \d+ ms$/);
    assert.equal(code, 0);
    assert.match(broker.log(), /Received PUBLISH from telepi-doctor-[0-9a-f]+ .*'telepi\/kitchen\/doctor\//);
  });

  test('a wrong password: ✗ with the fix, an optional check, the password never printed', { timeout: 20_000 }, async (t) => {
    const broker = await startBroker(t, { user: login });
    const { code, lines } = await doctor(t, { MQTT_URL: broker.url, MQTT_USERNAME: login.username, MQTT_PASSWORD: 'wrong-pass-77' });
    assert.match(mqttLine(lines), /^✗ MQTT broker: cannot connect .* → check MQTT_USERNAME and MQTT_PASSWORD/);
    assert.equal(code, 0, 'MQTT is optional: telepi runs without it');
    assert.ok(!lines.join('\n').includes('wrong-pass-77'));
  });

  test('no broker at the URL: says nothing listens there', { timeout: 20_000 }, async (t) => {
    const port = await freePort();
    const { lines } = await doctor(t, { MQTT_URL: `mqtt://127.0.0.1:${port}` });
    assert.match(mqttLine(lines), /^✗ MQTT broker: .* → nothing listens at mqtt:\/\/127\.0\.0\.1:\d+: start the broker, or fix MQTT_URL$/);
  });

  test('MQTT off: the check is skipped', { timeout: 20_000 }, async (t) => {
    const { lines } = await doctor(t, {});
    assert.equal(mqttLine(lines), '- MQTT broker: off (MQTT_URL unset)');
  });
});
