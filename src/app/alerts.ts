// Threshold alerts per chat (/alert temp < 5): one message when a reading crosses, one when it is back,
// with hysteresis and at least 10 minutes between messages of one rule. Kept in <stateDir>/alerts.json
// with the state store's promises: a command changes memory only once its write is on disk, a failing
// SD card is answered ("Could not save: …"), never crashed on, and rules follow a chat that moved or left.

import { readFile, rename } from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, type Logger } from '../log.js';
import { alertUsage, checkRule, describeRule, formatValue, judge, maxRulesPerChat, minAlertGapMs, parseRule, quantityInfo, type AlertRule } from './alert-rule.js';
import { chatIsGone, migratedTo } from './climate.js';
import { quoteInput } from './format.js';
import type { Sample } from './readings.js';
import { diskProblem, StateWriteError, writeFileAtomic } from './state.js';


export interface AlertServiceOptions {
  stateDir: string;
  send: (chatId: number, text: string) => Promise<unknown>;
  log: Logger;
  /** What to add to UTC for "since 03:12"; default: the Pi's time zone. */
  utcOffsetMs?: (ms: number) => number;
}

type Chats = Map<number, AlertRule[]>;

const fileName = 'alerts.json';

export class AlertService {
  readonly file: string;
  /** The rules as alerts.json holds them. What each rule last saw and said changes here even when it cannot be saved. */
  #chats: Chats;
  #writes: Promise<void> = Promise.resolve();
  #outbox: Promise<void> = Promise.resolve();
  /** Chats that blocked the bot whose rules could not be removed from the file: judged no more until they speak. */
  readonly #paused = new Set<number>();
  #saveProblem: string | null = null;

  private constructor(private readonly options: AlertServiceOptions, chats: Chats) {
    this.file = path.join(options.stateDir, fileName);
    this.#chats = chats;
  }

  /** Reads alerts.json; a bad rule is set aside with a warning and the rest kept; a file that does not parse is moved aside. */
  static async open(options: AlertServiceOptions): Promise<AlertService> {
    const file = path.join(options.stateDir, fileName);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new AlertService(options, new Map());
      throw new Error(`cannot read ${file}: ${describeError(error)}; check the state directory's permissions`, { cause: error });
    }
    const { chats, problems } = parseAlerts(text);
    if (chats === null) {
      const aside = `${file}.corrupt-${Date.now()}`;
      try {
        await rename(file, aside);
        options.log.warn(`${file} ${problems.join('; ')}; moved it to ${aside} and started with no alerts`);
      } catch (error) {
        options.log.warn(`${file} ${problems.join('; ')}, and it cannot be moved aside (${diskProblem(error)}); started with no alerts`);
      }
      return new AlertService(options, new Map());
    }
    for (const problem of problems) options.log.warn(`${file}: ${problem}; that rule is dropped, the others kept`);
    return new AlertService(options, chats);
  }

  list(chatId: number): readonly AlertRule[] {
    return this.#chats.get(chatId) ?? [];
  }

  /** Why alerts cannot be saved now (the last write failed), or null. */
  get saveProblem(): string | null {
    return this.#saveProblem;
  }

  /**
   * The reply to `/alert <args>`: lists, adds or removes; `latest` is a reading, to refuse what the sensor cannot measure.
   * @throws StateWriteError when the change could not be saved: then nothing changed.
   */
  async command(chatId: number, args: string, latest: () => Promise<Sample>): Promise<string> {
    // A chat that speaks again has unblocked the bot.
    this.#paused.delete(chatId);
    const words = args.trim().toLowerCase().split(/\s+/);
    if (args.trim() === '') return this.#describe(chatId);
    if (words[0] === 'off') return this.#remove(chatId, words[1]);
    let rule;
    try {
      rule = parseRule(args);
    } catch (error) {
      return (error as Error).message;
    }
    const rules = this.list(chatId);
    if (rules.length >= maxRulesPerChat) return `This chat has ${maxRulesPerChat} alerts already; remove one first (/alert off <number>).`;
    if (rules.some((r) => r.quantity === rule.quantity && r.op === rule.op && r.threshold === rule.threshold)) return `You have that alert already: ${describeRule(rule)}.`;
    const sample = await latest();
    if (rule.quantity === 'humidity' && sample.reading?.humidity === null) {
      return 'This sensor has no humidity (a BMP280 measures temperature and pressure only), so that alert could never fire.';
    }
    const entry: AlertRule = { ...rule, active: null, announced: null, changedAtMs: sample.atMs, sentAtMs: 0 };
    await this.#update((chats) => void chats.set(chatId, [...(chats.get(chatId) ?? []), entry].slice(0, maxRulesPerChat)));
    const now = sample.reading === undefined ? 'The sensor is not answering right now.' : `Now ${formatValue(rule.quantity, sample.reading[rule.quantity] as number)}.`;
    return `OK: I will tell you when the ${describeRule(rule)}, and when it is back. ${now}`;
  }

  /**
   * Moves a chat's rules to the id its group got on becoming a supergroup, persisted before they move
   * (rules the new chat has already are not doubled). False when the old chat had none.
   * @throws StateWriteError when the move could not be saved: the rules stay where they were.
   */
  async migrate(fromChatId: number, toChatId: number): Promise<boolean> {
    if (!this.#chats.has(fromChatId) || fromChatId === toChatId) return false;
    await this.#update((chats) => {
      const moving = chats.get(fromChatId) ?? [];
      const there = chats.get(toChatId) ?? [];
      const same = (a: AlertRule, b: AlertRule) => a.quantity === b.quantity && a.op === b.op && a.threshold === b.threshold;
      chats.set(toChatId, [...there, ...moving.filter((rule) => !there.some((kept) => same(kept, rule)))].slice(0, maxRulesPerChat));
      chats.delete(fromChatId);
    });
    if (this.#paused.delete(fromChatId)) this.#paused.add(toChatId);
    this.options.log.info(`chat ${fromChatId} became supergroup ${toChatId}: its alerts moved there`);
    return true;
  }

  /**
   * The outlet for readings: judges every rule at once and queues what to say, so a slow Telegram never
   * makes a reading skip its judgement. A failed read (a gap) changes nothing.
   */
  readonly outlet = (sample: Sample): void => {
    void this.judge(sample);
  };

  /**
   * Judges every rule on `sample`; resolves once what it changed is written and its messages sent. What a
   * rule saw and said changes in memory even when the card cannot be written (else every reading would
   * repeat the alert); the failed write is logged, and after a restart that message may come once more.
   */
  judge(sample: Sample): Promise<void> {
    if (sample.reading === undefined) return this.#outbox;
    const messages: Array<[number, string]> = [];
    let changed = false;
    for (const [chatId, rules] of this.#chats) {
      if (this.#paused.has(chatId)) continue;
      for (const rule of rules) {
        const value = sample.reading[rule.quantity];
        if (value === null) continue;
        const active = judge(rule, value);
        if (active !== rule.active) [rule.active, rule.changedAtMs, changed] = [active, sample.atMs, true];
        // A rule set while already clear says nothing; the 10-minute gap holds back flapping.
        if (rule.announced === null && !active) [rule.announced, changed] = [false, true];
        if (rule.announced === active || sample.atMs - rule.sentAtMs < minAlertGapMs) continue;
        messages.push([chatId, this.#message(rule, value)]);
        [rule.announced, rule.sentAtMs, changed] = [active, sample.atMs, true];
      }
    }
    if (!changed) return this.#outbox;
    // One after another, in reading order: the file never goes back to an older state, messages never overtake.
    const write = this.#update(() => undefined).catch((error: unknown) => this.options.log.warn(`alerts: ${describeError(error)}`));
    this.#outbox = this.#outbox.then(async () => {
      await write;
      for (const [chatId, text] of messages) await this.#deliver(chatId, text);
    });
    return this.#outbox;
  }

  /** Resolves once every queued alert message has been sent (or has failed). */
  idle(): Promise<void> {
    return this.#outbox;
  }

  /** Sends one alert; follows a chat that became a supergroup, and stops alerting one that blocked the bot. Never rejects. */
  async #deliver(chatId: number, text: string): Promise<void> {
    const { send, log } = this.options;
    try {
      await send(chatId, text);
      return;
    } catch (error) {
      const newChatId = migratedTo(error, chatId);
      if (newChatId !== null) {
        await this.migrate(chatId, newChatId).catch((moveError: unknown) =>
          log.warn(`chat ${chatId} became supergroup ${newChatId}, but its alerts could not be moved: ${describeError(moveError)}`));
        await send(newChatId, text).catch((sendError: unknown) => log.warn(`alert to chat ${newChatId} failed: ${describeError(sendError)}`));
        return;
      }
      if (!chatIsGone(error)) {
        log.warn(`alert to chat ${chatId} failed: ${describeError(error)}`);
        return;
      }
    }
    // Retrying a chat that blocked the bot would fail forever: its rules go, or rest until it speaks again.
    this.#paused.add(chatId);
    try {
      await this.#update((chats) => void chats.delete(chatId));
      this.#paused.delete(chatId);
      log.info(`chat ${chatId} blocked the bot or is gone: its alerts are removed`);
    } catch (error) {
      log.warn(`chat ${chatId} blocked the bot or is gone; its alerts are paused, as they could not be removed: ${describeError(error)}`);
    }
  }

  #message(rule: AlertRule, value: number): string {
    const info = quantityInfo[rule.quantity];
    const side = rule.op === '<' ? 'below' : 'above';
    const since = this.#clockTime(rule.changedAtMs);
    if (rule.active === true) return `${rule.op === '<' ? info.below : info.above} ${formatValue(rule.quantity, value)}: ${side} ${formatValue(rule.quantity, rule.threshold)} since ${since}`;
    return `✅ ${formatValue(rule.quantity, value)}: ${info.name} back ${rule.op === '<' ? 'above' : 'below'} ${formatValue(rule.quantity, rule.threshold)} since ${since}`;
  }

  #clockTime(ms: number): string {
    const offset = this.options.utcOffsetMs ?? ((at: number) => -new Date(at).getTimezoneOffset() * 60_000);
    return new Date(ms + offset(ms)).toISOString().slice(11, 16);
  }

  #describe(chatId: number): string {
    const rules = this.list(chatId);
    if (rules.length === 0) return `No alerts in this chat. ${alertUsage}`;
    const lines = rules.map((rule, i) => {
      const state = rule.active === true ? `now ${rule.op === '<' ? 'below' : 'above'}, since ${this.#clockTime(rule.changedAtMs)}` : rule.active === false ? 'not now' : 'waiting for a reading';
      return `${i + 1}. ${describeRule(rule)} (${state})`;
    });
    return [...lines, '/alert off <number> removes one, /alert off all of them.'].join('\n');
  }

  async #remove(chatId: number, which: string | undefined): Promise<string> {
    const rules = this.list(chatId);
    if (rules.length === 0) return 'No alerts to remove.';
    if (which === undefined || which === 'all') {
      await this.#update((chats) => void chats.delete(chatId));
      return rules.length === 1 ? 'Alert removed.' : `All ${rules.length} alerts removed.`;
    }
    if (!/^\d{1,3}$/.test(which)) return `${quoteInput(which)} is not an alert number: send /alert to see them, /alert off 2 removes the second.`;
    const rule = rules[Number(which) - 1];
    if (rule === undefined) return `There is no alert ${which}: this chat has ${rules.length} (send /alert to see them).`;
    await this.#update((chats) => void chats.set(chatId, (chats.get(chatId) ?? []).filter((r) => r !== rule)));
    return `Removed: ${describeRule(rule)}.`;
  }

  /**
   * Queues `mutate`: when its turn comes it runs on a copy of the chats, the copy is written, and only once
   * the write is on disk do the chats become the copy (as StateStore.update). Writes never interleave.
   * @throws StateWriteError when the write failed: memory is left as the file is.
   */
  #update(mutate: (chats: Chats) => void): Promise<void> {
    const run = this.#writes.then(async () => {
      const draft: Chats = new Map(this.#chats);
      mutate(draft);
      for (const [chatId, rules] of draft) if (rules.length === 0) draft.delete(chatId);
      try {
        await writeFileAtomic(this.file, `${JSON.stringify({ version: 1, chats: Object.fromEntries(draft) }, null, 2)}\n`);
      } catch (error) {
        this.#saveProblem = diskProblem(error);
        throw new StateWriteError(this.file, error);
      }
      this.#saveProblem = null;
      this.#chats = draft;
    });
    // The chain goes on past a failed write; the failure reaches this update's caller alone.
    this.#writes = run.catch(() => undefined);
    return run;
  }
}

/** Reads alerts.json entry by entry: null chats when the file as a whole is unusable. */
export function parseAlerts(text: string): { chats: Map<number, AlertRule[]> | null; problems: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    return { chats: null, problems: [text.trim() === '' ? 'is empty' : 'is not valid JSON'] };
  }
  const root = value as { version?: unknown; chats?: unknown };
  if (typeof value !== 'object' || value === null || root.version !== 1 || typeof root.chats !== 'object' || root.chats === null || Array.isArray(root.chats)) {
    return { chats: null, problems: ['is not { "version": 1, "chats": { … } }'] };
  }
  const chats = new Map<number, AlertRule[]>();
  const problems: string[] = [];
  for (const [key, list] of Object.entries(root.chats as Record<string, unknown>)) {
    const chatId = Number(key);
    if (!Number.isSafeInteger(chatId) || chatId === 0 || !Array.isArray(list)) {
      problems.push(`chat "${key}" is not a chat id with a list of rules`);
      continue;
    }
    const rules: AlertRule[] = [];
    for (const item of list.slice(0, maxRulesPerChat) as unknown[]) {
      const rule = checkRule(item);
      if (typeof rule === 'string') problems.push(`chat ${chatId}: ${rule}`);
      else rules.push(rule);
    }
    if (rules.length > 0) chats.set(chatId, rules);
  }
  return { chats, problems };
}
