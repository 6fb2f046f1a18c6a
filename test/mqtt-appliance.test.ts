// The appliance with MQTT_URL set, against a real Mosquitto and the Bot API emulator: Home Assistant
// sees what /now says, /status shows the link, the Take photo button runs /photo's capture, and a
// real `telepi run` leaves `offline` retained on SIGTERM (a clean goodbye) and on kill -9 (the will).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { createHardware } from '../hardware/index.js';
import type { ClimateReading } from '../hardware/types.js';
import { Appliance } from '../src/app/appliance.js';
import { loadConfig } from '../src/app/config.js';
import { topicsFor } from '../src/app/mqtt/discovery.js';
import { mosquittoMissing, startBroker, watch, type Broker } from './fakes/mosquitto.js';
import { eventually, fastPolling, harness, textsTo, TOKEN } from './support.js';

const OWNER = 1001;
const topics = topicsFor('livingroom');

async function applianceWithMqtt(t: TestContext, broker: Broker, reading: ClimateReading) {
  const h = await harness(t);
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-mqtt-app-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const config = loadConfig({
    TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: h.emu.apiRoot, TELEPI_OWNERS: String(OWNER), TELEPI_HARDWARE: 'simulated',
    TELEPI_STATE_DIR: stateDir, MQTT_URL: broker.url, MQTT_NODE_ID: 'livingroom',
  });
  const simulated = await createHardware({ kind: 'simulated' });
  // A steady sensor, so /now and the published state come from the same value.
  const hardware = { ...simulated, climate: { description: 'steady BME280', read: async () => ({ ...reading }), close: async () => {} } };
  const app = await Appliance.start({ config, hardware, log: h.log, polling: fastPolling, listenHost: '127.0.0.1', lanAddress: () => '127.0.0.1' });
  t.after(() => app.stop());
  const ask = async (text: string) => {
    const before = textsTo(h.emu, OWNER).length;
    h.emu.pushText(text, { chatId: OWNER, userId: OWNER });
    await eventually(() => textsTo(h.emu, OWNER).length > before, 10_000, `the reply to ${text}`);
    return textsTo(h.emu, OWNER)[before] ?? '';
  };
  return { app, ask, h };
}

describe('the appliance with MQTT', { skip: mosquittoMissing() }, () => {
  test('Home Assistant gets the values /now answers, and /status shows the link', { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t);
    const { ask } = await applianceWithMqtt(t, broker, { temperature: 22.37, humidity: 41.05, pressure: 1009.96 });
    const ha = await watch(t, broker, [topics.state, topics.availability]);
    const state = JSON.parse((await ha.next(topics.state)).payload.toString()) as { temperature: number; humidity: number; pressure: number };
    const now = await ask('/now');
    assert.equal(now, `${state.temperature.toFixed(1)}°C  ${state.humidity.toFixed(1)}%  ${state.pressure.toFixed(1).replace(/\B(?=(\d{3})+\.)/, ',')}hPa`);
    assert.equal(now, '22.4°C  41.0%  1,010.0hPa', '41.05 is 41.04999… in binary: both round it down');
    assert.equal((await ha.next(topics.availability)).payload.toString(), 'online');
    const status = await ask('/status');
    assert.match(status, new RegExp(`^MQTT: connected to ${broker.url.replace(/\./g, '\\.')}, last publish \\d+s ago$`, 'm'));
  });

  test("the Take photo button runs /photo's capture and publishes the JPEG", { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t);
    const { app } = await applianceWithMqtt(t, broker, { temperature: 20, humidity: 40, pressure: 1000 });
    await eventually(() => app.mqtt?.status.connected === true, 5000, 'the link');
    const ha = await watch(t, broker, [topics.photo]);
    await ha.publish(topics.takePhoto, 'PRESS');
    const photo = await ha.next(topics.photo, 10_000);
    assert.equal(photo.payload.readUInt16BE(0), 0xffd8);
    assert.ok(photo.payload.length > 1000, `${photo.payload.length} bytes`);
  });

  test('/status says when the broker is away, with the last error', { timeout: 30_000 }, async (t) => {
    const broker = await startBroker(t);
    const { app, ask } = await applianceWithMqtt(t, broker, { temperature: 20, humidity: 40, pressure: 1000 });
    await eventually(() => app.mqtt?.status.connected === true, 5000, 'the link');
    await broker.stop();
    await eventually(() => app.mqtt?.status.lastError !== null, 10_000, 'a failed reconnect');
    assert.match(await ask('/status'), /^MQTT: not connected to mqtt:\/\/127\.0\.0\.1:\d+, last publish \d+s ago, last error: .*ECONNREFUSED/m);
  });
});

// Says on stderr when anything resolves the mqtt package: the idle cost with MQTT off must be zero.
const mqttImportSpy = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent("export async function resolve(s, c, next) { if (s === 'mqtt' || s.startsWith('mqtt/')) process.stderr.write(' MQTT-PACKAGE-LOADED '); return next(s, c); }"));`)}`;

/** A real `telepi run` (simulated hardware) on the emulator, answering /now before it is returned. */
async function telepiRun(t: TestContext, mqtt: Record<string, string>) {
  const h = await harness(t);
  const dir = await mkdtemp(join(tmpdir(), 'telepi-mqtt-run-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', mqttImportSpy, '-e', "const { main } = await import('./src/app/cli.ts'); process.exitCode = await main(['run']);"], {
    env: {
      ...process.env, TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: String(OWNER), TELEPI_HARDWARE: 'simulated', TELEGRAM_API_ROOT: h.emu.apiRoot,
      TELEPI_STATE_DIR: dir, TELEPI_LOG_LEVEL: 'info', ...mqtt,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const output = { log: '' };
  child.stderr.on('data', (d: Buffer) => (output.log += d.toString()));
  // A reply means start-up is over (MQTT starts before Telegram) and run.ts handles SIGTERM.
  h.emu.pushText('/now', { chatId: OWNER, userId: OWNER });
  await eventually(() => textsTo(h.emu, OWNER).length === 1, 20_000, 'the reply to /now').catch((error: Error) => {
    throw new Error(`${error.message}; telepi said: ${output.log}`);
  });
  return { child, output };
}

describe('telepi run with MQTT', { skip: mosquittoMissing() }, () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`${signal} leaves offline retained${signal === 'SIGKILL' ? ' through the last will' : ', said by telepi itself'}`, { timeout: 40_000 }, async (t) => {
      const broker = await startBroker(t);
      const ha = await watch(t, broker, [topics.availability]);
      const { child, output } = await telepiRun(t, { MQTT_URL: broker.url, MQTT_NODE_ID: 'livingroom' });
      await eventually(() => ha.on(topics.availability).includes('online'), 20_000, 'online');
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const before = ha.messages.length;
      child.kill(signal);
      const code = await exited;
      assert.equal((await ha.next(topics.availability, 10_000, before)).payload.toString(), 'offline');
      const later = await watch(t, broker, [topics.availability]);
      const retained = await later.next(topics.availability);
      assert.equal(retained.payload.toString(), 'offline');
      assert.ok(retained.retain);
      if (signal === 'SIGTERM') {
        assert.equal(code, 0, output.log);
        assert.match(broker.log(), /Received DISCONNECT from telepi-livingroom/, 'a clean disconnect: the will stays unsent');
        assert.match(output.log, /telepi stopped/);
      } else {
        assert.doesNotMatch(broker.log(), /Received DISCONNECT from telepi-livingroom/);
      }
    });
  }

  test('with MQTT_URL unset the mqtt package is never loaded; with it set, it is', { timeout: 40_000 }, async (t) => {
    const off = await telepiRun(t, {});
    assert.doesNotMatch(off.output.log, /MQTT-PACKAGE-LOADED/);
    assert.match(off.output.log, /MQTT: off \(MQTT_URL unset\)/);
    const broker = await startBroker(t);
    const on = await telepiRun(t, { MQTT_URL: broker.url });
    await eventually(() => /MQTT-PACKAGE-LOADED/.test(on.output.log), 5000, 'the spy to see mqtt loaded (it works)');
  });
});
