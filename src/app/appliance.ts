// The appliance: one DelegatorBot with a handler per chat, and the services that outlive handlers —
// the report scheduler, the IP cam and the motion watcher. start() wires them; stop() undoes it.

import * as path from 'node:path';
import type { Hardware } from '../../hardware/index.js';
import { DelegatorBot, perChatId } from '../delegate.js';
import { InputFile } from '../inputfile.js';
import { describeError, type Logger } from '../log.js';
import type { MessageLoop, PollingOptions } from '../polling.js';
import { AlertService } from './alerts.js';
import { Authorizer } from './auth.js';
import { TelepiChat, type AppContext } from './chat.js';
import { ClimateService } from './climate.js';
import { scopedMenus } from './commands.js';
import type { Config } from './config.js';
import { ChartMaker } from './history/chart.js';
import { FileHistoryStore } from './history/store.js';
import { IpCam, type CamClosedReason, type IpCamOptions } from './ipcam.js';
import { LiveReports } from './live-report.js';
import { MotionWatcher } from './motion.js';
import type { MqttOutlet } from './mqtt/outlet.js';
import { ReadingSource } from './readings.js';
import { systemClock, type Clock } from './scheduler.js';
import { StateStore } from './state.js';
import { waitForTelegram } from './wait-for-telegram.js';
import type { SystemdNotifier } from './watchdog.js';

export interface ApplianceOptions {
  config: Config;
  hardware: Hardware;
  log: Logger;
  /** The wall clock, for report schedules (default: the system clock). */
  clock?: Clock;
  /** A monotonic clock, for the stream's TTL and the motion cooldown (default: performance.now). */
  monotonic?: Clock;
  polling?: PollingOptions;
  notifier?: SystemdNotifier | null;
  lanAddress?: () => string | null;
  /** Where the viewer listens (default every interface). */
  listenHost?: string;
  /** Seconds a chat's handler idles before it ends (default 10 minutes). */
  idleSeconds?: number;
  /** stop() gives up on whatever still hangs after this long, so systemd's stop never times out (default 6 s). */
  stopDeadlineMs?: number;
  /** How long the camera may take to send its first frame, and stay silent later (tests shorten them). */
  cameraTiming?: Pick<IpCamOptions, 'firstFrameTimeoutMs' | 'frameTimeoutMs' | 'frameClock'>;
}

// 6 s for the app, plus bin/telepi.js's 3 s guard against forgotten handles: out within 10 s of SIGTERM.
const defaultStopDeadlineMs = 6000;

const closedTexts: Record<CamClosedReason['kind'], (why: CamClosedReason) => string> = {
  'expired': () => 'The camera link expired and the port is closed. Send /open for a new one.',
  'camera-lost': (why) => `The camera stopped (${why.kind === 'camera-lost' ? why.detail : ''}), so the link is withdrawn and the port closed. Send /open to try again.`,
};

/** The system's timers, read on the monotonic clock (Node's timers already run on it). */
export const monotonicClock: Clock = { ...systemClock, now: () => performance.now() };

export class Appliance {
  private stopping: Promise<void> | undefined;
  private stopWatchdog: (() => void) | undefined;
  /** Readings flow one way: sensor → this source → outlets (MQTT, history, alerts). */
  readings!: ReadingSource;
  /** Home Assistant over MQTT; null when MQTT_URL is unset. */
  mqtt: MqttOutlet | null = null;
  /** The readings recorded for /chart, in <stateDir>/history. */
  history!: FileHistoryStore;
  alerts!: AlertService;

  private constructor(
    readonly bot: DelegatorBot,
    readonly loop: MessageLoop,
    readonly store: StateStore,
    readonly climate: ClimateService,
    readonly ipcam: IpCam,
    readonly motion: MotionWatcher,
    private readonly options: ApplianceOptions,
  ) {}

  /** Starts everything; rejects (with a TelegramError) when the token is rejected. */
  static async start(options: ApplianceOptions): Promise<Appliance> {
    const startedAtMs = (options.monotonic ?? monotonicClock).now();
    const store = await StateStore.open(options.config.stateDir, options.log);
    try {
      return await Appliance.startWith(options, store, startedAtMs);
    } catch (error) {
      await store.close(); // gives the folder's lock back
      throw error;
    }
  }

  private static async startWith(options: ApplianceOptions, store: StateStore, startedAtMs: number): Promise<Appliance> {
    const { config, hardware, log } = options;
    const clock = options.clock ?? systemClock;
    const monotonic = options.monotonic ?? monotonicClock;
    let username: string | undefined;
    // Handlers are spawned only once the loop runs, by which time `app` is set.
    let app: AppContext;
    const bot = new DelegatorBot(config.token, [[perChatId(), (seedTuple) => new TelepiChat(seedTuple, app).run()]], { apiRoot: config.apiRoot, log });
    const send = (chatId: number, text: string) => bot.sendMessage(chatId, text);
    // REPORT_STYLE=edit: a chat's reports edit one live message instead of adding one each time.
    // The live message's id is kept with the subscription, so after a restart the reports edit the same one.
    const liveMemory = {
      recall: (chatId: number) => store.state.subscriptions.find((sub) => sub.chatId === chatId)?.liveMessageId,
      remember: (chatId: number, messageId: number) => store.update((state) => {
        const sub = state.subscriptions.find((entry) => entry.chatId === chatId);
        if (sub !== undefined) sub.liveMessageId = messageId;
      }),
    };
    const reportSend = config.reportStyle === 'edit' ? new LiveReports(bot, liveMemory).send : send;
    const readings = new ReadingSource({ sensor: hardware.climate, clock, log });
    // /now and reports read through the source: a read under way is shared, and latest() stays current.
    // Alerts are opened below; a report that finds its group migrated moves them too (the chat's own path does both).
    const climate = new ClimateService({ sensor: readings.asSensor(), store, send: reportSend, clock, log, onMigrate: (from, to) => alerts.migrate(from, to) });
    const ipcam = new IpCam({
      hardware, store, log, clock: monotonic, lanAddress: options.lanAddress, listenHost: options.listenHost,
      port: config.stream.port, externalPort: config.stream.externalPort, ttlMs: config.stream.ttlMs, ...options.cameraTiming,
      onClosed: async (chatId, why) => void (await send(chatId, closedTexts[why.kind](why))),
    });
    const motion = new MotionWatcher({
      sensor: hardware.motion, camera: hardware.camera, cooldownMs: config.motionCooldownMs, store, clock: monotonic, log,
      alert: async (jpeg) => {
        for (const owner of config.owners) {
          await bot.sendPhoto(owner, InputFile.fromBuffer(jpeg, 'motion.jpg'), { caption: 'Motion detected' })
            .catch((error: unknown) => log.warn(`motion photo to ${owner} failed: ${describeError(error)}`));
        }
      },
    });
    const historyEveryMs = config.history?.everyMs ?? 60_000;
    const history = await FileHistoryStore.open(path.join(config.stateDir, 'history'), { keepMs: config.history?.keepMs ?? 2 * 365 * 86_400_000, log });
    await history.prune(clock.now());
    readings.subscribe(historyEveryMs, (sample) => history.append(sample));
    const alerts = await AlertService.open({ stateDir: config.stateDir, send, log });
    readings.subscribe(historyEveryMs, alerts.outlet);
    // Before Telegram, so Home Assistant on the LAN works while the internet is down; imported only when configured.
    const mqtt = config.mqtt ? await (await import('./mqtt/outlet.js')).MqttOutlet.start({
      config: config.mqtt, readings, takePhoto: () => ipcam.photo(), motion: hardware.motion, model: hardware.climate.description, log, clock,
    }) : null;
    app = {
      mqtt,
      auth: new Authorizer({ owners: config.owners, users: config.users }),
      climate, ipcam, motion, hardware, log, clock, readings, alerts,
      chart: new ChartMaker({ store: history, everyMs: historyEveryMs }),
      botUsername: () => username,
      uptimeMs: () => monotonic.now() - startedAtMs,
      idleSeconds: options.idleSeconds ?? 600,
      cameraInGroups: config.cameraInGroups ?? false,
      saveProblem: () => store.saveProblem,
    };

    const me = await waitForTelegram(bot, { log, notifier: options.notifier ?? null, clock: monotonic }).catch(async (error: unknown) => {
      await mqtt?.stop();
      throw error;
    });
    username = me.username;
    for (const menu of scopedMenus(config.owners)) {
      await bot.setMyCommands(menu.commands, { scope: menu.scope }).catch((error: unknown) => log.warn(`could not register the command menu: ${describeError(error)}`));
    }
    await ipcam.removeStaleMapping();
    climate.resume();
    motion.resume();
    // The inbox lets a chat with a long queue leave the others' answers undelayed, and keeps what a crash interrupts.
    const loop = bot.messageLoop(undefined, { inboxDir: path.join(config.stateDir, 'inbox'), ...options.polling });
    await loop.ready;
    const appliance = new Appliance(bot, loop, store, climate, ipcam, motion, options);
    appliance.readings = readings;
    appliance.history = history;
    appliance.alerts = alerts;
    appliance.mqtt = mqtt;
    readings.start();
    appliance.watch(loop);
    appliance.tellSetAside(send);
    log.info(`telepi started as @${username ?? me.first_name}: ${store.state.subscriptions.length} report subscription(s) resumed`);
    return appliance;
  }

  /** Feeds systemd's watchdog while the poll loop keeps turning (READY=1 went out before getMe). */
  private watch(loop: MessageLoop): void {
    const notifier = this.options.notifier;
    if (notifier === null || notifier === undefined) return;
    const polling = this.options.polling ?? {};
    // A poll ends within its timeout plus margin, and a failed one is retried within the backoff cap.
    const stalledAfterMs = 2 * ((polling.timeoutSeconds ?? 30) * 1000 + (polling.requestMarginMs ?? 10_000) + (polling.backoffCapMs ?? 30_000));
    this.stopWatchdog = notifier.startWatchdog(() => loop.running && performance.now() - loop.lastActivityAtMs < stalledAfterMs, monotonicClock);
  }

  /** Tells each chat whose settings were set aside at open, once (the store wrote them out of state.json). */
  private tellSetAside(send: (chatId: number, text: string) => Promise<unknown>): void {
    const chats = new Map<number, string[]>();
    for (const entry of this.store.setAside) {
      if (entry.chatId !== null) chats.set(entry.chatId, [...(chats.get(entry.chatId) ?? []), entry.reason]);
    }
    for (const [chatId, reasons] of chats) {
      const text = `After a restart I could not use this chat's report settings (${reasons.join('; ')}), so they were set aside. `
        + 'Send /every with an interval, like /every 1h, to get reports again.';
      send(chatId, text).catch((error: unknown) => this.options.log.warn(`could not tell chat ${chatId} its settings were set aside: ${describeError(error)}`));
    }
  }

  /**
   * Stops polling (confirming the offset), closes the camera link and the port, stops reports, flushes
   * state; whatever still hangs after stopDeadlineMs is given up on, named in the log.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopWithin(this.options.stopDeadlineMs ?? defaultStopDeadlineMs);
    return this.stopping;
  }

  private async stopWithin(deadlineMs: number): Promise<void> {
    const progress = { step: 'starting to stop' };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    const outcome = await Promise.race([this.shutdown(progress).then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') this.options.log.error(`stop: gave up after ${deadlineMs / 1000} s waiting for ${progress.step}; exiting anyway`);
  }

  /** Each step runs even when an earlier one failed; `progress.step` names the one under way. */
  private async shutdown(progress: { step: string }): Promise<void> {
    const { log, hardware, notifier } = this.options;
    const step = async (name: string, action: () => Promise<unknown> | void) => {
      progress.step = name;
      try {
        await action();
      } catch (error) {
        log.warn(`${name}: ${describeError(error)}`);
      }
    };
    void notifier?.stopping();
    this.stopWatchdog?.();
    await step('the message loop to stop', () => this.loop.stop());
    this.climate.stop();
    this.motion.stop();
    await step('the readings to stop', () => this.readings.stop());
    await step('the history to be written', () => this.history.close());
    await step('the alerts to be sent', () => this.alerts.idle());
    // A retained offline before the process ends (a clean disconnect: the broker keeps the will to itself).
    await step('MQTT to say offline', () => this.mqtt?.stop());
    await step('the camera link to close', () => this.ipcam.close());
    await step('the state to be written', () => this.store.close());
    await step('the LED', () => hardware.led?.set(false));
    await step('the hardware to close', () => hardware.close());
    await step('the Bot API connections to close', () => this.bot.close());
    log.info('telepi stopped');
  }
}
