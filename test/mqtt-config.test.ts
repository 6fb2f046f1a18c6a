import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { main } from '../src/app/cli.js';
import { ConfigError, describeConfig, loadConfig } from '../src/app/config.js';
import { TOKEN } from './support.js';

const base = { TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: '1001', TELEPI_HARDWARE: 'simulated', TELEPI_STATE_DIR: '/tmp/telepi-mqtt-config' };
const dir = mkdtempSync(join(tmpdir(), 'telepi-mqtt-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const caFile = join(dir, 'ca.crt');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const notPem = join(dir, 'notes.txt');
writeFileSync(notPem, 'hello');

function problemsOf(env: Record<string, string>): ConfigError[] {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('MQTT settings', () => {
  test('off unless MQTT_URL is set', () => {
    assert.equal(loadConfig(base).mqtt, null);
    assert.ok(describeConfig(loadConfig(base)).includes('MQTT: off (MQTT_URL unset)'));
  });

  test('defaults: homeassistant prefix, the host name as node id, every minute, port by scheme', () => {
    const mqtt = loadConfig({ ...base, MQTT_URL: 'mqtt://broker.lan' }).mqtt;
    assert.ok(mqtt);
    assert.equal(mqtt.url, 'mqtt://broker.lan:1883');
    assert.equal(mqtt.discoveryPrefix, 'homeassistant');
    assert.match(mqtt.nodeId, /^[a-z0-9_-]+$/);
    assert.equal(mqtt.everyMs, 60_000);
    assert.equal(loadConfig({ ...base, MQTT_URL: 'mqtts://broker.lan' }).mqtt?.url, 'mqtts://broker.lan:8883');
  });

  test('every setting given: read as given, the CA file read, the password never described', () => {
    const config = loadConfig({
      ...base, MQTT_URL: 'mqtts://10.0.0.2:8884', MQTT_USERNAME: 'kitchen', MQTT_PASSWORD: 'p@ss word!', MQTT_CA: caFile,
      MQTT_DISCOVERY_PREFIX: 'ha/discovery', MQTT_NODE_ID: 'Kitchen-1', MQTT_EVERY: '5m',
    });
    assert.deepEqual({ ...config.mqtt, ca: config.mqtt?.ca?.slice(0, 27) }, {
      url: 'mqtts://10.0.0.2:8884', username: 'kitchen', password: 'p@ss word!', ca: '-----BEGIN CERTIFICATE-----', caPath: caFile,
      discoveryPrefix: 'ha/discovery', nodeId: 'Kitchen-1', everyMs: 300_000,
    });
    const described = describeConfig(config).join('\n');
    assert.match(described, /MQTT: mqtts:\/\/10.0.0.2:8884 as kitchen with a password, CA .*ca.crt, topics telepi\/Kitchen-1, discovery under ha\/discovery\/, every 5m/);
    assert.ok(!described.includes('p@ss word!'));
  });

  for (const [variable, value, pattern] of [
    ['MQTT_URL', 'http://broker:1883', /not an mqtt:\/\/ or mqtts:\/\/ URL/],
    ['MQTT_URL', 'broker:1883', /not an mqtt:\/\/ or mqtts:\/\/ URL|not a URL/],
    ['MQTT_URL', 'mqtt://broker:1883/telepi', /has a path/],
    ['MQTT_URL', 'mqtt://broker:99999', /not a URL/],
    ['MQTT_USERNAME', 'two words', /not a user name/],
    ['MQTT_CA', 'ca.crt', /not an absolute path/],
    ['MQTT_CA', '/nonexistent/ca.crt', /cannot read \/nonexistent\/ca.crt \(ENOENT\)/],
    ['MQTT_CA', notPem, /not a PEM certificate/],
    ['MQTT_DISCOVERY_PREFIX', 'home/#', /not a topic prefix/],
    ['MQTT_DISCOVERY_PREFIX', 'homeassistant/', /not a topic prefix/],
    ['MQTT_NODE_ID', 'kitchen pi', /not a node id/],
    ['MQTT_EVERY', '5s', /out of range/],
    ['MQTT_EVERY', 'often', /./],
  ] as const) {
    test(`${variable}=${value}: one problem naming ${variable}`, () => {
      const env: Record<string, string> = { MQTT_URL: 'mqtts://broker.lan', [variable]: value };
      if (variable === 'MQTT_CA') env.MQTT_URL = 'mqtts://broker.lan';
      const problems = problemsOf(env);
      assert.equal(problems.length, 1, problems.map((p) => p.message).join('\n'));
      assert.equal(problems[0]?.variable, variable);
      assert.match(problems[0]?.message ?? '', new RegExp(`^${variable}: `));
      assert.match(problems[0]?.message ?? '', pattern);
    });
  }

  test('credentials in the URL are refused without being echoed', () => {
    const problems = problemsOf({ MQTT_URL: 'mqtt://kitchen:hunter22@broker:1883' });
    assert.equal(problems[0]?.variable, 'MQTT_URL');
    assert.match(problems[0]?.message ?? '', /MQTT_USERNAME and MQTT_PASSWORD/);
    assert.ok(!problems[0]?.message.includes('hunter22'));
  });

  test('companions without MQTT_URL, a password without a user, a CA on plain mqtt:// are each named', () => {
    assert.deepEqual(problemsOf({ MQTT_USERNAME: 'kitchen', MQTT_EVERY: '5m' }).map((p) => p.variable), ['MQTT_USERNAME', 'MQTT_EVERY']);
    assert.deepEqual(problemsOf({ MQTT_URL: 'mqtt://b', MQTT_PASSWORD: 'secret-ish' }).map((p) => p.variable), ['MQTT_USERNAME']);
    assert.deepEqual(problemsOf({ MQTT_URL: 'mqtt://b', MQTT_CA: caFile }).map((p) => p.variable), ['MQTT_CA']);
    assert.ok(!problemsOf({ MQTT_URL: 'mqtt://b', MQTT_PASSWORD: 'secret-ish' })[0]?.message.includes('secret-ish'));
  });

  test('telepi run stops with exit code 78 and one line naming the MQTT variable', async () => {
    const err: string[] = [];
    const code = await main(['run'], { ...base, MQTT_URL: 'mqtt://b', MQTT_NODE_ID: 'a/b', MQTT_PASSWORD: 'pw-not-shown' }, { out: () => {}, err: (t) => err.push(t) });
    assert.equal(code, 78);
    assert.match(err.join('\n'), /^MQTT_NODE_ID: /m);
    assert.match(err.join('\n'), /^MQTT_USERNAME is not set but MQTT_PASSWORD is/m);
    assert.ok(!err.join('\n').includes('pw-not-shown'));
  });
});
