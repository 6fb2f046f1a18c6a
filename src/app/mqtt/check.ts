// `telepi doctor`'s broker check: connect with the configured login (and CA), then a round trip —
// subscribe to a private topic, publish to it, and wait for the message to come back.

import { randomBytes } from 'node:crypto';
import { describeError, registerSecret } from '../../log.js';
import { fail, ok, skip, type CheckResult } from '../doctor-checks.js';
import { isFinalRefusal } from './link.js';
import type { MqttConfig } from './settings.js';

const what = 'MQTT broker';

export async function checkMqtt(mqtt: MqttConfig | null | undefined, timeoutMs: number): Promise<CheckResult> {
  if (mqtt === null || mqtt === undefined) return skip(what, 'off (MQTT_URL unset)');
  if (mqtt.password !== null) registerSecret(mqtt.password);
  const { connectAsync } = await import('mqtt');
  const started = performance.now();
  let client;
  try {
    client = await connectAsync(mqtt.url, {
      clientId: `telepi-doctor-${randomBytes(4).toString('hex')}`,
      username: mqtt.username ?? undefined, password: mqtt.password ?? undefined, ca: mqtt.ca ?? undefined,
      connectTimeout: timeoutMs, reconnectPeriod: 0, writeCache: false,
    }, false);
  } catch (error) {
    return fail(what, `cannot connect to ${mqtt.url}: ${describeError(error)}`, fixFor(error, mqtt));
  }
  const topic = `telepi/${mqtt.nodeId}/doctor/${randomBytes(6).toString('hex')}`;
  const token = randomBytes(8).toString('hex');
  try {
    const echoed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      client.on('message', (received, payload) => {
        if (received === topic && payload.toString() === token) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(topic, token, { qos: 1 });
    if (!(await echoed)) {
      return fail(what, `connected to ${mqtt.url}, but a message to ${topic} did not come back within ${timeoutMs / 1000} s`,
        `let ${mqtt.username ?? 'anonymous clients'} publish and subscribe to telepi/# in the broker's ACL`);
    }
    const login = mqtt.username === null ? 'anonymously' : `as ${mqtt.username}`;
    return ok(what, `${mqtt.url}: connected ${login}, a message went round in ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    return fail(what, `connected to ${mqtt.url}, but the round trip failed: ${describeError(error)}`,
      `let ${mqtt.username ?? 'anonymous clients'} publish and subscribe to telepi/# in the broker's ACL`);
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

function fixFor(error: unknown, mqtt: MqttConfig): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (isFinalRefusal(error)) {
    return typeof code === 'number'
      ? 'check MQTT_USERNAME and MQTT_PASSWORD, and that the broker lets that user in (mosquitto_passwd on the broker)'
      : 'set MQTT_CA to the CA certificate that signed the broker\'s certificate';
  }
  if (code === 'ECONNREFUSED') return `nothing listens at ${mqtt.url}: start the broker, or fix MQTT_URL`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve: fix MQTT_URL (an IP address avoids DNS)';
  return `check that the broker runs and is reachable at ${mqtt.url}`;
}
