// MQTT as one more outlet of readings: each reading becomes one retained state for Home Assistant,
// beside the device's discovery, its availability, motion, and a "Take photo" button whose press runs
// the same capture as /photo. While the broker is away only the latest state is kept, never a backlog.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MotionSensor } from '../../../hardware/types.js';
import { describeError, type Logger } from '../../log.js';
import type { MqttConfig } from './settings.js';
import type { ReadingSource, Sample } from '../readings.js';
import type { Clock } from '../scheduler.js';
import { birthTopic, discoveryPayload, discoveryTopic, statePayload, topicsFor, type DiscoveryOptions, type Topics } from './discovery.js';
import { MqttLink, type BackoffOptions, type LinkStatus } from './link.js';

export interface MqttOutletOptions {
  config: MqttConfig;
  readings: Pick<ReadingSource, 'subscribe' | 'latest' | 'readNow'>;
  /** The capture /photo runs (IpCam.photo): the stream's newest frame while it runs, else a still. */
  takePhoto: () => Promise<Buffer>;
  motion: MotionSensor | null;
  /** The sensor's description, shown as the device's model. */
  model: string;
  log: Logger;
  /** The wall clock: timers for the reconnect and the re-publish after Home Assistant's birth. */
  clock: Clock;
  random?: () => number;
  /** The longest random wait before re-publishing on Home Assistant's birth message (default 5 s). */
  birthDelayMaxMs?: number;
  keepaliveSeconds?: number;
  backoff?: BackoffOptions;
}

/** The least time between two captures for the Take photo button. */
const photoSpacingMs = 2000;

export class MqttOutlet {
  private readonly topics: Topics;
  /** Whether the sensor measures humidity: undefined until a reading says (a BMP280 does not). */
  private hasHumidity: boolean | undefined;
  /** The retained discovery announces a humidity entity, which a BMP280's must then remove. */
  private announcedHumidity = false;
  private latestState: string | undefined;
  private republishTimer: unknown;
  private photoRunning: Promise<void> | undefined;
  private lastPhotoAtMs = -Infinity;
  private unsubscribeReadings: (() => void) | undefined;
  private unsubscribeMotion: (() => void) | undefined;
  private link!: MqttLink;
  private swVersion = 'unknown';

  private constructor(private readonly options: MqttOutletOptions) {
    this.topics = topicsFor(options.config.nodeId);
  }

  /** Starts connecting (in the background: a broker that is down does not hold the appliance up). */
  static async start(options: MqttOutletOptions): Promise<MqttOutlet> {
    const outlet = new MqttOutlet(options);
    const { config, log, clock } = options;
    outlet.swVersion = await packageVersion();
    const latest = options.readings.latest();
    if (latest !== undefined) outlet.take(latest);
    outlet.link = await MqttLink.open({
      url: config.url,
      username: config.username ?? undefined,
      password: config.password ?? undefined,
      ca: config.ca ?? undefined,
      clientId: `telepi-${config.nodeId}`,
      will: { topic: outlet.topics.availability, payload: 'offline' },
      subscriptions: [birthTopic(config.discoveryPrefix), outlet.topics.takePhoto],
      onConnect: () => outlet.publishAll(),
      onMessage: (topic, payload, retained) => outlet.onMessage(topic, payload, retained),
      log,
      clock,
      keepaliveSeconds: options.keepaliveSeconds,
      backoff: options.backoff,
      random: options.random,
      now: () => clock.now(),
    });
    outlet.unsubscribeReadings = options.readings.subscribe(config.everyMs, (sample) => outlet.onSample(sample));
    outlet.unsubscribeMotion = options.motion?.onMotion(() => void outlet.publish(outlet.topics.motion, 'ON', { retain: false, qos: 0 }));
    log.info(`MQTT: publishing to ${config.url} as ${outlet.topics.root}, discovery in ${discoveryTopic(config.discoveryPrefix, config.nodeId)}`);
    return outlet;
  }

  get status(): LinkStatus {
    return this.link.status;
  }

  /** Stops publishing and leaves `offline` retained (a clean goodbye: the broker does not send the will). */
  async stop(): Promise<void> {
    this.unsubscribeReadings?.();
    this.unsubscribeMotion?.();
    this.options.clock.clearTimeout(this.republishTimer);
    // A photo still being taken or sent is not waited for: its publish fails with the link, within the stop's bound.
    await this.link.close({ topic: this.topics.availability, payload: 'offline' });
  }

  /** Everything the broker must hold, in the order Home Assistant wants it: config, state, then online. */
  private async publishAll(): Promise<void> {
    if (this.latestState === undefined) this.take(await this.options.readings.readNow());
    const { config } = this.options;
    // Unknown (the sensor failed so far) counts as a BME280, the usual part; a BMP280 removes it later.
    const humidity: DiscoveryOptions['humidity'] = this.hasHumidity !== false ? true : this.announcedHumidity ? 'removed' : false;
    if (await this.publish(discoveryTopic(config.discoveryPrefix, config.nodeId), JSON.stringify(this.discovery(humidity)), { retain: true, qos: 1 })) {
      // Removing the humidity entity is said once; from then on the config simply leaves it out.
      this.announcedHumidity = humidity === true;
    }
    if (this.options.motion !== null) await this.publish(this.topics.motion, 'OFF', { retain: true, qos: 1 });
    if (this.latestState !== undefined) await this.publish(this.topics.state, this.latestState, { retain: true, qos: 1 });
    await this.publish(this.topics.availability, 'online', { retain: true, qos: 1 });
  }

  private discovery(humidity: DiscoveryOptions['humidity']): Record<string, unknown> {
    const { config } = this.options;
    return discoveryPayload({
      nodeId: config.nodeId, deviceName: config.nodeId, model: this.options.model, swVersion: this.swVersion,
      humidity, motion: this.options.motion !== null, everyMs: config.everyMs,
    });
  }

  private onSample(sample: Sample): void {
    this.take(sample);
    if (sample.reading === undefined) return;
    if (this.announcedHumidity && this.hasHumidity === false) {
      this.options.log.info('MQTT: the sensor has no humidity (a BMP280): removing the humidity entity from Home Assistant');
      void this.publishAll();
      return;
    }
    void this.publish(this.topics.state, this.latestState ?? '', { retain: true, qos: 1 });
  }

  /** Keeps a sample as the latest state; a failed read keeps the previous one (Home Assistant expires it). */
  private take(sample: Sample): void {
    if (sample.reading === undefined) {
      this.options.log.debug(`MQTT: no state this time: ${describeError(sample.error)}`);
      return;
    }
    this.hasHumidity = sample.reading.humidity !== null;
    this.latestState = statePayload(sample.reading, sample.atMs);
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    const text = payload.toString();
    if (topic === birthTopic(this.options.config.discoveryPrefix) && text === 'online') this.scheduleRepublish();
    else if (topic === this.topics.takePhoto && text === 'PRESS') {
      // A press someone published with retain would come back at every connect: a photo per reconnect.
      if (retained) this.options.log.warn(`MQTT: ignored a retained PRESS on ${topic} (a press from before this connection); publish it without retain, and clear it with an empty retained message`);
      else this.pressTakePhoto();
    }
  }

  /** After Home Assistant restarts: a random short wait, so a house of Pis does not answer in one burst. */
  private scheduleRepublish(): void {
    if (this.republishTimer !== undefined) return;
    const delayMs = Math.round((this.options.random ?? Math.random)() * (this.options.birthDelayMaxMs ?? 5000));
    this.republishTimer = this.options.clock.setTimeout(() => {
      this.republishTimer = undefined;
      this.options.log.info('MQTT: Home Assistant came online: publishing discovery and state again');
      void this.publishAll();
    }, delayMs);
  }

  /** One capture at a time, at most one per photoSpacingMs: a flood of presses cannot keep the camera busy. */
  private pressTakePhoto(): void {
    const nowMs = this.options.clock.now();
    if (this.photoRunning !== undefined || nowMs - this.lastPhotoAtMs < photoSpacingMs) {
      this.options.log.debug('MQTT: Take photo pressed again too soon: the photo just taken answers it');
      return;
    }
    this.lastPhotoAtMs = nowMs;
    this.photoRunning = (async () => {
      try {
        const jpeg = await this.options.takePhoto();
        await this.publish(this.topics.photo, jpeg, { retain: true, qos: 1 });
      } catch (error) {
        this.options.log.warn(`MQTT: the Take photo button's capture failed: ${describeError(error)}`);
      } finally {
        this.photoRunning = undefined;
      }
    })();
  }

  private publish(topic: string, payload: string | Buffer, options: { retain: boolean; qos: 0 | 1 }): Promise<boolean> {
    return this.link.publish(topic, payload, options);
  }
}

/** telepi's version from its package.json, found upward from here (the source tree or the built dist/). */
async function packageVersion(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'telepi' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not here: one folder up.
    }
  }
  return 'unknown';
}
