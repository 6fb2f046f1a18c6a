// The connection to the MQTT broker: MQTT.js (imported only here, only when MQTT is configured) with
// telepi's own reconnect policy — capped exponential backoff with jitter, a rejected login or
// certificate reported once and retried only at the cap — and no queue while the link is down: a
// publish then is dropped, and the caller republishes its latest state on the next connect.

import type { IClientOptions, MqttClient } from 'mqtt';
import { describeError, registerSecret, type Logger } from '../../log.js';
import { formatDuration } from '../duration.js';
import { formatUptime } from '../format.js';
import type { Clock } from '../scheduler.js';

export interface MqttLinkOptions {
  /** mqtt://host:port or mqtts://host:port, without credentials. */
  url: string;
  username?: string;
  password?: string;
  /** A PEM CA certificate for a broker with a private CA. */
  ca?: string;
  clientId: string;
  /** The last will: what the broker publishes (retained) when telepi vanishes without a goodbye. */
  will: { topic: string; payload: string };
  /** Topics subscribed on every connect (the session is clean, so the broker forgets them). */
  subscriptions: string[];
  /** Called on every connect, after the subscriptions: publish what the broker must hold. */
  onConnect: () => Promise<void>;
  /** `retained`: the broker kept it from before this connection (not pressed now). */
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void;
  log: Logger;
  /** For the reconnect timer (default: the system's). */
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** A dead link is noticed within about 1.5× this (default 30 s). */
  keepaliveSeconds?: number;
  backoff?: BackoffOptions;
  /** Give up on a CONNACK after this long (default 10 s). */
  connectTimeoutMs?: number;
  random?: () => number;
  /** Wall-clock ms, for "last publish" (default Date.now). */
  now?: () => number;
}

export interface BackoffOptions {
  initialMs: number;
  capMs: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 1000, capMs: 60_000 };

/** A link that stayed up this long resets the backoff. */
const stableLinkMs = 60_000;

/** How long a QoS 1 publish may wait for the broker's ack. */
const ackTimeoutMs = 10_000;

/** Short links in a row that point at a client id clash. */
const shortLinksBeforeError = 3;

/** The biggest message the broker may send us: the birth message and the button's command are a few bytes. */
const maxIncomingBytes = 64 * 1024;

export interface LinkStatus {
  connected: boolean;
  /** The broker's URL: credentials are never part of it. */
  broker: string;
  lastPublishAtMs: number | null;
  lastError: string | null;
}

/** The /status line: `MQTT: connected to mqtt://host:1883, last publish 12s ago`. */
export function describeLinkStatus(status: LinkStatus, nowMs: number): string {
  const link = `${status.connected ? 'connected to' : 'not connected to'} ${status.broker}`;
  const published = status.lastPublishAtMs === null ? 'nothing published yet' : `last publish ${formatUptime(Math.max(0, nowMs - status.lastPublishAtMs))} ago`;
  return `MQTT: ${link}, ${published}${status.lastError === null ? '' : `, last error: ${status.lastError}`}`;
}

export interface PublishOptions {
  retain: boolean;
  qos: 0 | 1;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): doubling from initialMs up to capMs, the
 * upper half of it random, so a house of Pis restarted with the broker does not reconnect in step.
 */
export function reconnectDelayMs(attempt: number, backoff: BackoffOptions, random: () => number): number {
  const ceilingMs = Math.min(backoff.capMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}

/** A login refused (CONNACK 4/5 in MQTT 3.1.1, 134/135 in 5) or a certificate refused: retrying soon cannot help. */
export function isFinalRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code === 4 || code === 5 || code === 134 || code === 135;
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
}

export class MqttLink {
  private client: MqttClient | undefined;
  private retryTimer: unknown;
  private attempt = 0;
  private closing = false;
  /** The outage's first failure is a warning; the same outage's later ones only debug lines. */
  private reportedOutage = false;
  private lastPublishAtMs: number | null = null;
  private lastError: string | null = null;
  private connectedAtMs: number | undefined;
  /** Links in a row that the broker closed before they held (stableLinkMs). */
  private shortLinks = 0;
  /** A client id clash is said once per run: it lasts until someone changes a setting. */
  private reportedTakeover = false;

  private constructor(private readonly options: MqttLinkOptions) {}

  /** Imports MQTT.js and starts connecting; resolves at once (the broker may be down: it keeps trying). */
  static async open(options: MqttLinkOptions): Promise<MqttLink> {
    if (options.password !== undefined) registerSecret(options.password);
    const link = new MqttLink(options);
    const { connect } = await import('mqtt');
    const clientOptions: IClientOptions = {
      clientId: options.clientId,
      username: options.username,
      password: options.password,
      ca: options.ca,
      keepalive: options.keepaliveSeconds ?? 30,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      clean: true,
      // MQTT 5: the broker says why it drops us (another client with our id), and keeps big messages to itself.
      protocolVersion: 5,
      // telepi only receives one-word commands: a stranger's 100 MB message must not reach a 512 MB Pi.
      properties: { maximumPacketSize: maxIncomingBytes },
      // Reconnects are ours (backoff, final refusals); MQTT.js would retry every second forever.
      reconnectPeriod: 0,
      // Nothing waits for a connection: a publish while down is dropped, not stored.
      queueQoSZero: false,
      // MQTT.js otherwise builds 65,536 cached buffers at start: +9 MB on a Pi.
      writeCache: false,
      will: { topic: options.will.topic, payload: Buffer.from(options.will.payload), qos: 1, retain: true },
    };
    const client = connect(options.url, clientOptions);
    link.client = client;
    client.on('connect', () => void link.connected(client));
    client.on('message', (topic, payload, packet) => options.onMessage(topic, payload, packet.retain === true));
    client.on('error', (error) => link.failed(error));
    client.on('close', () => link.closed());
    client.on('disconnect', (packet) => link.disconnected(packet.reasonCode));
    return link;
  }

  get status(): LinkStatus {
    return {
      connected: this.client?.connected === true,
      broker: this.options.url,
      lastPublishAtMs: this.lastPublishAtMs,
      lastError: this.lastError,
    };
  }

  /** Publishes if connected and resolves true on the broker's ack (QoS 1) or once sent (QoS 0); false when down. */
  async publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<boolean> {
    const client = this.client;
    if (client === undefined || !client.connected || this.closing) return false;
    // A link that drops under a QoS 1 publish never acks it: the next connect republishes the latest state instead.
    if (!(await within(performance.now() + ackTimeoutMs, client.publishAsync(topic, payload, options)))) {
      this.options.log.debug(`MQTT: publish to ${topic} was not acknowledged: the link dropped under it`);
      return false;
    }
    this.lastPublishAtMs = (this.options.now ?? Date.now)();
    return true;
  }

  /**
   * Says goodbye: publishes `lastWords` (retained) if connected, then disconnects cleanly, so the
   * broker does not send the will. Within timeoutMs in all, whatever the broker does (a frozen one too).
   */
  async close(lastWords: { topic: string; payload: string } | null, timeoutMs = 2000): Promise<void> {
    const client = this.client;
    if (client === undefined || this.closing) return;
    this.closing = true;
    this.options.clock.clearTimeout(this.retryTimer);
    const deadlineMs = performance.now() + timeoutMs;
    if (client.connected) {
      if (lastWords !== null) await within(deadlineMs, client.publishAsync(lastWords.topic, lastWords.payload, { qos: 1, retain: true }));
      await within(deadlineMs, client.endAsync(false));
    }
    // Forced (a no-op after a clean end): fails the publishes still waiting for a broker that is gone.
    await client.endAsync(true).catch(() => undefined);
  }

  private async connected(client: MqttClient): Promise<void> {
    this.connectedAtMs = performance.now();
    // A login that works again (the password was fixed) ends the slow retries of a refusal.
    if (this.attempt === Infinity) this.attempt = 0;
    this.reportedOutage = false;
    this.lastError = null;
    this.options.log.info(`MQTT: connected to ${this.options.url}`);
    try {
      if (this.options.subscriptions.length > 0) await client.subscribeAsync(this.options.subscriptions, { qos: 1 });
      await this.options.onConnect();
    } catch (error) {
      this.options.log.warn(`MQTT: setting up after connect failed: ${describeError(error)}`);
    }
  }

  private failed(error: Error): void {
    const text = describeError(error);
    this.lastError = text;
    if (isFinalRefusal(error)) {
      // Once per outage: a wrong password must not fill the journal every minute.
      const capMs = (this.options.backoff ?? defaultBackoff).capMs;
      if (!this.reportedOutage) this.options.log.error(`MQTT: ${refusalText(error, this.options.url)} (retrying only every ${formatDuration(capMs)})`);
      else this.options.log.debug(`MQTT: still refused: ${text}`);
      this.reportedOutage = true;
      this.attempt = Infinity;
      return;
    }
    if (!this.reportedOutage) this.options.log.warn(`MQTT: cannot reach ${this.options.url}: ${text}; retrying with backoff`);
    else this.options.log.debug(`MQTT: ${text}`);
    this.reportedOutage = true;
  }

  /** The broker ended the session: 142 is another client connecting with our client id. */
  private disconnected(reasonCode: number | undefined): void {
    if (reasonCode !== 142 || this.reportedTakeover) return;
    this.reportedTakeover = true;
    this.lastError = `another client connected as ${this.options.clientId}`;
    this.options.log.error(`MQTT: ${this.options.url} keeps closing this link right after connecting: another client probably uses the id ${this.options.clientId}; give each Pi its own MQTT_NODE_ID`);
  }

  private closed(): void {
    if (this.closing || this.client === undefined) return;
    // Backoff starts afresh only after a link that held: two clients kicking each other out must not reconnect at once.
    if (this.connectedAtMs !== undefined) {
      const held = performance.now() - this.connectedAtMs >= stableLinkMs;
      this.attempt = held ? 0 : this.attempt;
      this.shortLinks = held ? 0 : this.shortLinks + 1;
      // Mosquitto 2.0 closes the older of two clients with one id without saying why (newer brokers send 142).
      if (this.shortLinks === shortLinksBeforeError) this.disconnected(142);
    }
    this.connectedAtMs = undefined;
    if (!this.reportedOutage && this.lastError === null) {
      this.options.log.warn(`MQTT: lost the link to ${this.options.url}; reconnecting`);
      this.reportedOutage = true;
    }
    this.options.clock.clearTimeout(this.retryTimer);
    const delayMs = reconnectDelayMs(this.attempt, this.options.backoff ?? defaultBackoff, this.options.random ?? Math.random);
    if (this.attempt !== Infinity) this.attempt++;
    const client = this.client;
    this.retryTimer = this.options.clock.setTimeout(() => {
      if (!this.closing) client.reconnect();
    }, delayMs);
  }
}

function refusalText(error: unknown, url: string): string {
  const code = (error as { code?: unknown }).code;
  // A wrong password comes back as "bad user name or password" (4, 134) or, from Mosquitto, "not authorised" (5, 135).
  if (typeof code === 'number') {
    return `${url} refused the login: check MQTT_USERNAME and MQTT_PASSWORD, and that the broker lets that user in`;
  }
  return `${url}'s certificate was refused (${describeError(error)}): set MQTT_CA to the CA file that signed it`;
}

/** Waits for work until deadlineMs (performance.now() time): true when it succeeded by then. */
async function within(deadlineMs: number, work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadlineMs - performance.now()))));
  const outcome = await Promise.race([work.then(() => true, () => false), late]);
  clearTimeout(timer);
  return outcome;
}
