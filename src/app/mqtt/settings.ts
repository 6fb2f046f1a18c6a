// The MQTT settings (MQTT_URL and its companions), checked with the rest of the configuration: each
// problem is one line naming the variable. The password is never part of a message or a description.

import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { formatDuration } from '../duration.js';
import { nodeIdFromHostname } from './discovery.js';

export interface MqttConfig {
  /** mqtt://host:port or mqtts://host:port, never with credentials in it. */
  url: string;
  username: string | null;
  password: string | null;
  /** The PEM text of MQTT_CA, read at start. */
  ca: string | null;
  caPath: string | null;
  discoveryPrefix: string;
  /** [a-zA-Z0-9_-]+: the topic root is telepi/<nodeId>. */
  nodeId: string;
  everyMs: number;
}

/** config.ts's reader: records a problem under `variable` when `read` throws, and returns the fallback. */
export type Check = <T>(variable: string, fallback: T, read: (value: string) => T, defaultText?: string) => T;

export const mqttVariables = ['MQTT_URL', 'MQTT_USERNAME', 'MQTT_PASSWORD', 'MQTT_CA', 'MQTT_DISCOVERY_PREFIX', 'MQTT_NODE_ID', 'MQTT_EVERY'] as const;

/**
 * Reads the MQTT settings: null when MQTT_URL is unset (MQTT off). `problem` records a cross-variable
 * problem; `every` parses MQTT_EVERY (config's duration range check).
 */
export function readMqttConfig(
  env: NodeJS.ProcessEnv, check: Check, problem: (variable: string, message: string) => void, every: (value: string) => number, hostname: string,
): MqttConfig | null {
  const set = (variable: string) => (env[variable]?.trim() ?? '') !== '';
  if (!set('MQTT_URL')) {
    for (const variable of mqttVariables.slice(1)) {
      if (set(variable)) problem(variable, `${variable} is set but MQTT_URL is not; set MQTT_URL (like mqtt://192.168.1.10:1883) or remove ${variable}`);
    }
    return null;
  }
  const url = check('MQTT_URL', '', parseBrokerUrl);
  const username = check('MQTT_USERNAME', null, parseUsername);
  // Never shown: whatever it is, it is a secret.
  const password = check('MQTT_PASSWORD', null, (v) => v);
  const ca = check('MQTT_CA', null, readCa);
  const discoveryPrefix = check('MQTT_DISCOVERY_PREFIX', 'homeassistant', parseTopicPrefix, 'homeassistant');
  const nodeId = check('MQTT_NODE_ID', 'telepi', parseNodeId, nodeIdFromHostname(hostname));
  const everyMs = check('MQTT_EVERY', 60_000, every, '1m');
  if (password !== null && username === null) {
    problem('MQTT_USERNAME', 'MQTT_USERNAME is not set but MQTT_PASSWORD is; set the user name the broker knows that password for');
  }
  if (ca !== null && url.startsWith('mqtt:')) {
    problem('MQTT_CA', 'MQTT_CA is set but MQTT_URL is plain mqtt://; use mqtts://host:8883 for TLS, or remove MQTT_CA');
  }
  return { url, username, password, ca: ca?.pem ?? null, caPath: ca?.path ?? null, discoveryPrefix, nodeId, everyMs };
}

/** One line for the start-up log and doctor: no password, ever. */
export function describeMqtt(mqtt: MqttConfig | null | undefined): string {
  if (mqtt === null || mqtt === undefined) return 'MQTT: off (MQTT_URL unset)';
  const login = mqtt.username === null ? 'anonymous' : `as ${mqtt.username}${mqtt.password === null ? '' : ' with a password'}`;
  const ca = mqtt.caPath === null ? '' : `, CA ${mqtt.caPath}`;
  return `MQTT: ${mqtt.url} ${login}${ca}, topics telepi/${mqtt.nodeId}, discovery under ${mqtt.discoveryPrefix}/, every ${formatDuration(mqtt.everyMs)}`;
}

function parseBrokerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`"${value}" is not a URL; expected mqtt://host:1883 or mqtts://host:8883`);
  }
  if (url.username !== '' || url.password !== '') {
    // Not echoed: it holds a password.
    throw new Error('the URL holds a user name or password; put them in MQTT_USERNAME and MQTT_PASSWORD and give mqtt://host:1883');
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') throw new Error(`"${value}" is not an mqtt:// or mqtts:// URL; expected mqtt://host:1883 or mqtts://host:8883`);
  if (url.hostname === '') throw new Error(`"${value}" has no host; expected mqtt://host:1883`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new Error(`"${value}" has a path or query; expected only mqtt://host:port`);
  }
  const port = url.port === '' ? (url.protocol === 'mqtts:' ? 8883 : 1883) : Number(url.port);
  return `${url.protocol}//${url.hostname}:${port}`;
}

function parseUsername(value: string): string {
  if (value.length > 256 || /\s/.test(value) || hasControlCharacter(value)) throw new Error('is not a user name; expected one word without spaces or control characters');
  return value;
}

function readCa(value: string): { path: string; pem: string } {
  if (!isAbsolute(value)) throw new Error(`"${value}" is not an absolute path; expected the CA file, like /etc/telepi/mqtt-ca.crt`);
  let pem: string;
  try {
    pem = readFileSync(value, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${value} (${(error as NodeJS.ErrnoException).code ?? 'error'}); expected a PEM CA certificate readable by telepi`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${value} is not a PEM certificate; expected a file starting with -----BEGIN CERTIFICATE-----`);
  return { path: value, pem };
}

function parseTopicPrefix(value: string): string {
  if (/[#+\s]/.test(value) || hasControlCharacter(value) || value.startsWith('/') || value.endsWith('/') || value.includes('//')) {
    throw new Error(`"${value}" is not a topic prefix; expected Home Assistant's discovery prefix, like homeassistant`);
  }
  return value;
}

function parseNodeId(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw new Error(`"${value}" is not a node id; expected letters, digits, _ and - only, like kitchen`);
  return value;
}

function hasControlCharacter(value: string): boolean {
  return [...value].some((char) => char.charCodeAt(0) < 0x20);
}
