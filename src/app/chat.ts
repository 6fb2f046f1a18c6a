// The per-chat handler: reads each message, checks who sent it, and runs the command. All state it
// touches lives in the services, so a handler that times out loses nothing.

import type { Message } from '@grammyjs/types';
import type { Hardware } from '../../hardware/index.js';
import type { SeedTuple } from '../delegate.js';
import { flavor, type Msg } from '../glance.js';
import { ChatHandler } from '../handler.js';
import { InputFile } from '../inputfile.js';
import { describeError, type Logger } from '../log.js';
import type { AlertService } from './alerts.js';
import type { Authorizer, Role } from './auth.js';
import { everyKeyboard, pressButton, sendChart, type ButtonContext } from './buttons.js';
import type { ClimateService } from './climate.js';
import { findCommand, helpText, parseText } from './commands.js';
import { formatDuration, parseDuration } from './duration.js';
import { fitMessage, formatUptime, quoteInput } from './format.js';
import type { IpCam, OpenLink } from './ipcam.js';
import type { MotionWatcher } from './motion.js';
import { describeLinkStatus, type LinkStatus } from './mqtt/link.js';
import type { ChartMaker } from './history/chart.js';
import type { ReadingSource } from './readings.js';
import type { Clock } from './scheduler.js';
import { StateWriteError } from './state.js';
import { stateLimits } from './state-schema.js';

export interface AppContext {
  auth: Authorizer;
  climate: ClimateService;
  ipcam: IpCam;
  motion: MotionWatcher;
  hardware: Pick<Hardware, 'camera' | 'climate' | 'problems'>;
  botUsername: () => string | undefined;
  uptimeMs: () => number;
  /** The wall clock, for "next report in". */
  clock: Pick<Clock, 'now'>;
  log: Logger;
  /** The MQTT link, for /status; absent when MQTT is off. */
  mqtt?: { readonly status: LinkStatus } | null;
  /** Seconds a chat's handler waits for its next message before it ends (and frees its memory). */
  idleSeconds: number;
  readings: ReadingSource;
  alerts: AlertService;
  chart: ChartMaker;
  /** CAMERA_IN_GROUPS: links and photos may be posted in groups; else they go to the owner privately. */
  cameraInGroups: boolean;
  /** Why settings cannot be saved now (a read-only or full card), or null: said in /status. */
  saveProblem: () => string | null;
}

/** Who sent the command, and where: camera output in a group goes to the sender privately. */
interface Origin {
  userId: number | undefined;
  isPrivate: boolean;
}

const { minIntervalMs, maxIntervalMs } = stateLimits;
const intervalUsage = 'Send /every with an interval from 1m to 24h, like /every 15m, /every 2h or /every 1h30m.';

export class TelepiChat extends ChatHandler {
  private readonly app: AppContext;

  constructor(seedTuple: SeedTuple, app: AppContext) {
    super(seedTuple, { timeout: app.idleSeconds });
    this.app = app;
  }

  override async run(): Promise<void> {
    let msg: Msg = this.initialMessage;
    for (;;) {
      await this.handle(msg);
      msg = await this.listener.wait();
    }
  }

  // Whatever a reply echoes, it never meets "message is too long".
  private reply(text: string): Promise<unknown> {
    return this.sender.sendMessage(fitMessage(text));
  }

  private async handle(msg: Msg): Promise<void> {
    if (!('message_id' in msg)) return pressButton(this.buttons(), msg);
    // Edits and channel posts do not run commands again.
    if (flavor(msg) !== 'message') return;
    try {
      await this.handleMessage(msg);
    } catch (error) {
      if (error instanceof StateWriteError) {
        // Every command persists before it acts, so a failed write changed nothing.
        this.app.log.warn(`chat ${this.chatId}: ${describeError(error)}`);
        await this.reply(`${error.userMessage} Nothing was changed.`).catch(() => undefined);
        return;
      }
      this.app.log.error(`chat ${this.chatId}: ${describeError(error)}`);
      await this.reply(`Something went wrong: ${describeError(error)}`).catch(() => undefined);
    }
  }

  private async handleMessage(msg: Message): Promise<void> {
    const { auth } = this.app;
    const userId = msg.from?.id;
    const role = auth.roleOf(userId);
    const isPrivate = msg.chat.type === 'private';
    if (msg.migrate_to_chat_id !== undefined || msg.migrate_from_chat_id !== undefined) return this.followMigration(msg);
    const parsed = typeof msg.text === 'string' ? parseText(msg.text, this.app.botUsername()) : undefined;
    if (parsed?.kind === 'other-bot') return;
    // In groups the bot speaks only when spoken to with a command.
    if (!isPrivate && parsed?.kind !== 'command') return;
    if (role === null) {
      if (userId !== undefined && auth.shouldSendRefusal(userId)) await this.reply(auth.refusalText(userId));
      return;
    }
    if (parsed === undefined) {
      await this.reply('I only read text commands, like /now. Send /help for the list.');
      return;
    }
    if (parsed.kind === 'text') {
      await this.reply(`I don't understand\n\n${helpText(role)}`);
      return;
    }
    const command = findCommand(parsed.name);
    if (command === undefined) {
      await this.reply(`I don't understand /${parsed.name}\n\n${helpText(role)}`);
      return;
    }
    if (!auth.may(userId, command.role)) {
      await this.reply(`Only the owner can use /${command.name}.`);
      return;
    }
    await this.runCommand(command.name, parsed.args, role, { userId, isPrivate });
  }

  /** A group became a supergroup (Telegram says so in both): its reports and alerts move to the new id. */
  private async followMigration(msg: Message): Promise<void> {
    const [from, to] = msg.migrate_to_chat_id !== undefined
      ? [this.chatId, msg.migrate_to_chat_id]
      : [msg.migrate_from_chat_id ?? this.chatId, this.chatId];
    const { climate, alerts, log } = this.app;
    const moves: Array<[string, () => Promise<boolean>]> = [['subscription', () => climate.migrate(from, to)], ['alerts', () => alerts.migrate(from, to)]];
    for (const [what, move] of moves) {
      await move().catch((error: unknown) => log.warn(`chat ${from} became supergroup ${to}, but its ${what} could not be moved: ${describeError(error)}`));
    }
  }

  private async runCommand(name: string, args: string, role: Role, origin: Origin): Promise<void> {
    const { climate, ipcam, motion } = this.app;
    switch (name) {
      case 'help':
        return void (await this.reply(helpText(role)));
      case 'now':
        return void (await this.reply((await climate.reading()).text));
      case '1m':
        return this.subscribe(60_000);
      case '1h':
        return this.subscribe(3_600_000);
      case 'every':
        return this.every(args);
      case 'cancel':
        await climate.cancel(this.chatId);
        return void (await this.reply('OK'));
      case 'status':
        return void (await this.reply(await this.status()));
      case 'open':
        return this.open(origin);
      case 'close':
        return this.close(ipcam);
      case 'photo':
        return this.photo(origin);
      case 'motion':
        return this.motion(args, motion);
      case 'chart':
        return sendChart(this.buttons(), args);
      case 'alert':
        return void (await this.reply(await this.app.alerts.command(this.chatId, args, () => this.app.readings.readNow())));
    }
  }

  /** What /chart and the inline buttons need of this chat. */
  private buttons(): ButtonContext {
    const { auth, chart, clock, log, climate } = this.app;
    const every = async (intervalMs: number | null) => {
      if (intervalMs !== null) return this.subscribe(intervalMs);
      await climate.cancel(this.chatId);
      await this.reply('Reports off.');
    };
    return { bot: this.bot, chatId: this.chatId, auth, chart, clock, log, every };
  }

  private async every(args: string): Promise<void> {
    let intervalMs: number;
    try {
      intervalMs = parseDuration(args);
    } catch {
      if (args === '') await this.sender.sendMessage('Report every… Choose below, or send /every with any interval from 1m to 24h, like /every 1h30m.', { reply_markup: everyKeyboard() });
      else await this.reply(`${quoteInput(args)} is not an interval. ${intervalUsage}`);
      return;
    }
    if (intervalMs < minIntervalMs || intervalMs > maxIntervalMs) {
      await this.reply(`${formatDuration(intervalMs)} is out of range. ${intervalUsage}`);
      return;
    }
    await this.subscribe(intervalMs);
  }

  /** Reports now, then every interval: the reading first, so the chat sees at once what it will get. */
  private async subscribe(intervalMs: number): Promise<void> {
    const reading = await this.app.climate.reading();
    await this.app.climate.subscribe(this.chatId, intervalMs);
    await this.reply(`${reading.text}\nI will report every ${formatDuration(intervalMs)}. /cancel stops it.`);
  }

  private async open(origin: Origin): Promise<void> {
    const privately = this.privateChatFor(origin);
    let link: OpenLink;
    try {
      link = await this.app.ipcam.open(privately ?? this.chatId);
    } catch (error) {
      if (error instanceof StateWriteError) throw error;
      await this.reply(`Camera unavailable: ${describeError(error)}`);
      return;
    }
    const ttl = formatDuration(link.ttlMs);
    const warning = `It is plain HTTP: anyone who sees the link can watch until it expires in ${ttl}. /close ends it now.`;
    const text = link.public
      ? `Camera link, valid for ${ttl}:\n${link.url}\n\n${warning}`
      : `Only a LAN link: ${link.note}. It works on your home network:\n${link.url}\n\n${warning}`;
    if (privately === null) return void (await this.reply(text));
    await this.sendPrivately(privately, 'the camera link', () => this.bot.sendMessage(privately, text).catch(async (error: unknown) => {
      await this.app.ipcam.close(); // nobody has the link: it must not stay open
      throw error;
    }));
  }

  private async close(ipcam: IpCam): Promise<void> {
    const { wasOpen, problems } = await ipcam.close();
    const head = wasOpen ? 'Port closed' : 'Port closed (the camera link was not open)';
    await this.reply(problems.length === 0 ? head : `${head}, and the camera is stopped, but: ${problems.join('; ')}`);
  }

  private async photo(origin: Origin): Promise<void> {
    const privately = this.privateChatFor(origin);
    const chatId = privately ?? this.chatId;
    await this.bot.sendChatAction(chatId, 'upload_photo').catch(() => undefined);
    let jpeg: Buffer;
    try {
      jpeg = await this.app.ipcam.photo();
    } catch (error) {
      await this.reply(`Camera unavailable: ${describeError(error)}`);
      return;
    }
    const send = () => this.bot.sendPhoto(chatId, InputFile.fromBuffer(jpeg, 'telepi.jpg'));
    if (privately === null) await send();
    else await this.sendPrivately(privately, 'the photo', send);
  }

  /** The owner's private chat when camera output must stay out of this group; null to answer here. */
  private privateChatFor(origin: Origin): number | null {
    if (origin.isPrivate || this.app.cameraInGroups || origin.userId === undefined) return null;
    return origin.userId;
  }

  /** Sends camera output to the owner privately and says so in the group; false when Telegram refused. */
  private async sendPrivately(userId: number, what: string, send: () => Promise<unknown>): Promise<boolean> {
    try {
      await send();
    } catch (error) {
      this.app.log.warn(`chat ${this.chatId}: ${what} could not go to ${userId} privately: ${describeError(error)}`);
      const name = this.app.botUsername();
      await this.reply(`I could not send you ${what} privately: open a private chat with ${name === undefined ? 'me' : `@${name}`}, press Start, and ask again.`);
      return false;
    }
    await this.reply(`I sent you ${what} privately: camera output stays out of groups (CAMERA_IN_GROUPS=yes changes that).`);
    return true;
  }

  private async motion(args: string, motion: MotionWatcher): Promise<void> {
    const choice = args.toLowerCase();
    if (choice !== 'on' && choice !== 'off') {
      await this.reply(`Motion alerts are ${motion.enabled ? 'on' : 'off'}. Send /motion on or /motion off.`);
      return;
    }
    if (!(await motion.setEnabled(choice === 'on'))) {
      await this.reply('No motion sensor: wire a PIR sensor and set PIR_GPIO to its BCM line number.');
      return;
    }
    await this.reply(choice === 'on' ? 'Motion alerts on: I will send a photo when something moves.' : 'Motion alerts off.');
  }

  private async status(): Promise<string> {
    const { climate, ipcam, motion, hardware, clock } = this.app;
    const sub = climate.subscription(this.chatId);
    const next = climate.scheduler.nextFireMs(this.chatId);
    const reports = sub === undefined
      ? 'off'
      : `every ${formatDuration(sub.intervalMs)}${next === undefined ? '' : `, next in ${formatDuration(Math.max(0, next - clock.now()))}`}`;
    const reading = await climate.reading();
    const cam = ipcam.status;
    const lines = [
      `Reports: ${reports}`,
      `Sensor: ${hardware.climate.description}: ${reading.ok ? reading.text : `unavailable (${reading.reason})`}`,
      `Camera: ${hardware.camera.description}`,
      `Stream: ${cam.open ? `open (${cam.public ? 'public' : 'LAN'} link), ${formatDuration(cam.remainingMs)} left` : 'closed'}`,
      `Motion alerts: ${motion.available ? (motion.enabled ? 'on' : 'off') : 'no PIR sensor'}`,
      ...(this.app.mqtt ? [describeLinkStatus(this.app.mqtt.status, clock.now())] : []),
      `Uptime: ${formatUptime(this.app.uptimeMs())}`,
    ];
    for (const problem of hardware.problems) lines.push(`Problem: ${problem}`);
    const saveProblem = this.app.saveProblem() ?? this.app.alerts.saveProblem;
    if (saveProblem !== null) lines.push(`Problem: settings cannot be saved: ${saveProblem}`);
    return lines.join('\n');
  }
}
