// Home Assistant MQTT discovery for one telepi, as pure functions: the topics under telepi/<node_id>,
// the one retained device-based discovery payload, and the state payload of a reading.
//
// Device-based discovery (<prefix>/device/<node_id>/config, Home Assistant 2024.11 or newer) rather
// than one config per entity: the device, origin and availability are written once, and all the
// entities of a Pi appear, change and go together in one retained message, so a half-published set
// (a broker restart between two configs) cannot happen.

import type { ClimateReading } from '../../../hardware/types.js';

export interface Topics {
  /** telepi/<node_id> */
  root: string;
  /** `online`/`offline`, retained; the last will says `offline`. */
  availability: string;
  /** One retained JSON object per reading. */
  state: string;
  /** `ON` on each PIR trigger (Home Assistant turns it off after offDelaySeconds). */
  motion: string;
  /** The last photo, a retained JPEG. */
  photo: string;
  /** Home Assistant publishes `PRESS` here when the "Take photo" button is pressed. */
  takePhoto: string;
}

export function topicsFor(nodeId: string): Topics {
  const root = `telepi/${nodeId}`;
  return {
    root,
    availability: `${root}/availability`,
    state: `${root}/state`,
    motion: `${root}/motion`,
    photo: `${root}/photo`,
    takePhoto: `${root}/take_photo`,
  };
}

export function discoveryTopic(prefix: string, nodeId: string): string {
  return `${prefix}/device/${nodeId}/config`;
}

/** Home Assistant announces itself here with `online` (its birth message) and `offline`. */
export function birthTopic(prefix: string): string {
  return `${prefix}/status`;
}

/** Home Assistant's node_id rule ([a-zA-Z0-9_-]); a host name like "Kitchen Pi.local" becomes "kitchen_pi". */
export function nodeIdFromHostname(hostname: string): string {
  const id = hostname.split('.')[0]?.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') ?? '';
  return id === '' ? 'telepi' : id;
}

export interface DiscoveryOptions {
  nodeId: string;
  /** The device's name in Home Assistant; entity names are prefixed with it there. */
  deviceName: string;
  /** e.g. "BME280 at 0x76 on i2c-1" */
  model: string;
  swVersion: string;
  /** false for a BMP280; 'removed' once, to tell Home Assistant to drop the entity it created before. */
  humidity: boolean | 'removed';
  /** A PIR sensor is wired. */
  motion: boolean;
  /** How often a state is published: readings older than about three intervals count as unavailable. */
  everyMs: number;
}

/** Seconds Home Assistant shows motion after a PIR trigger (the PIR sends rising edges only). */
export const motionOffDelaySeconds = 30;

type Component = Record<string, string | number | boolean>;

/** The device-based discovery payload (full key names, for readability in the broker). */
export function discoveryPayload(options: DiscoveryOptions): Record<string, unknown> {
  const { nodeId } = options;
  const topics = topicsFor(nodeId);
  const expireAfterSeconds = Math.ceil((3 * options.everyMs) / 1000);
  const measurement = (key: 'temperature' | 'humidity' | 'pressure', deviceClass: string, unit: string, name: string): Component => ({
    platform: 'sensor',
    name,
    unique_id: `${nodeId}_${key}`,
    device_class: deviceClass,
    unit_of_measurement: unit,
    state_class: 'measurement',
    suggested_display_precision: 1,
    state_topic: topics.state,
    value_template: `{{ value_json.${key} }}`,
    expire_after: expireAfterSeconds,
  });
  const components: Record<string, Component> = {
    temperature: measurement('temperature', 'temperature', '°C', 'Temperature'),
  };
  if (options.humidity === true) components.humidity = measurement('humidity', 'humidity', '%', 'Humidity');
  // Home Assistant's way to delete one component of a device: the component with its platform only.
  if (options.humidity === 'removed') components.humidity = { platform: 'sensor' };
  components.pressure = measurement('pressure', 'atmospheric_pressure', 'hPa', 'Pressure');
  if (options.motion) {
    components.motion = {
      platform: 'binary_sensor',
      name: 'Motion',
      unique_id: `${nodeId}_motion`,
      device_class: 'motion',
      state_topic: topics.motion,
      off_delay: motionOffDelaySeconds,
    };
  }
  components.photo = {
    platform: 'image',
    name: 'Photo',
    unique_id: `${nodeId}_photo`,
    image_topic: topics.photo,
    content_type: 'image/jpeg',
  };
  components.take_photo = {
    platform: 'button',
    name: 'Take photo',
    unique_id: `${nodeId}_take_photo`,
    command_topic: topics.takePhoto,
    payload_press: 'PRESS',
  };
  return {
    device: {
      identifiers: [`telepi_${nodeId}`],
      name: options.deviceName,
      manufacturer: 'telepi',
      model: options.model,
      sw_version: options.swVersion,
    },
    origin: { name: 'telepi', sw_version: options.swVersion },
    availability: [{ topic: topics.availability, payload_available: 'online', payload_not_available: 'offline' }],
    qos: 1,
    components,
  };
}

/** One reading as the state JSON, rounded as /now shows it, so Home Assistant and Telegram agree. */
export function statePayload(reading: ClimateReading, atMs: number): string {
  // toFixed, as formatReading rounds: Math.round would differ on halves (and give -0).
  const oneDecimal = (value: number) => Number(value.toFixed(1)) + 0;
  const state: Record<string, number | string> = { temperature: oneDecimal(reading.temperature) };
  if (reading.humidity !== null) state.humidity = oneDecimal(reading.humidity);
  state.pressure = oneDecimal(reading.pressure);
  state.time = new Date(atMs).toISOString();
  return JSON.stringify(state);
}
