// Threshold alerts per chat (/alert temp < 5): one message when a reading crosses, one when it is back,
// with hysteresis and at least 10 minutes between messages of one rule. Kept in <stateDir>/alerts.json.

import { readFile, rename } from 'node:fs/promises';
import * as path from 'node:path';
import { describeError, type Logger } from '../log.js';
import { alertUsage, describeRule, formatValue, judge, maxRulesPerChat, minAlertGapMs, parseRule, quantityInfo, type AlertRule } from './alert-rule.js';
import type { Quantity } from './history/downsample.js';
import type { Sample } from './readings.js';
import { writeFileAtomic } from './state.js';


export interface AlertServiceOptions {
  stateDir: string;
  send: (chatId: number, text: string) => Promise<unknown>;
  log: Logger;
  /** What to add to UTC for "since 03:12"; default: the Pi's time zone. */
  utcOffsetMs?: (ms: number) => number;
}

const fileName = 'alerts.json';

export class AlertService {
  readonly file: string;
  #chats: Map<number, AlertRule[]>;
  #writes: Promise<void> = Promise.resolve();
  #outbox: Promise<void> = Promise.resolve();

  private constructor(private readonly options: AlertServiceOptions, chats: Map<number, AlertRule[]>) {
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
      await rename(file, aside);
      options.log.warn(`${file} ${problems.join('; ')}; moved it to ${aside} and started with no alerts`);
      return new AlertService(options, new Map());
    }
    for (const problem of problems) options.log.warn(`${file}: ${problem}; that rule is dropped, the others kept`);
    return new AlertService(options, chats);
  }

  list(chatId: number): readonly AlertRule[] {
    return this.#chats.get(chatId) ?? [];
  }

  /** The reply to `/alert <args>`: lists, adds or removes; `latest` is a reading, to refuse what the sensor cannot measure. */
  async command(chatId: number, args: string, latest: () => Promise<Sample>): Promise<string> {
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
    await this.#save(chatId, [...rules, entry]);
    const now = sample.reading === undefined ? 'The sensor is not answering right now.' : `Now ${formatValue(rule.quantity, sample.reading[rule.quantity] as number)}.`;
    return `OK: I will tell you when the ${describeRule(rule)}, and when it is back. ${now}`;
  }

  /**
   * The outlet for readings: judges every rule at once and queues what to say, so a slow Telegram never
   * makes a reading skip its judgement. A failed read (a gap) changes nothing.
   */
  readonly outlet = (sample: Sample): void => {
    void this.judge(sample);
  };

  /** Judges every rule on `sample`; resolves once what it changed is written and its messages sent. */
  judge(sample: Sample): Promise<void> {
    if (sample.reading === undefined) return this.#outbox;
    const messages: Array<[number, string]> = [];
    let changed = false;
    for (const [chatId, rules] of this.#chats) {
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
    const write = this.#write().catch((error: unknown) => this.options.log.warn(`alerts: ${describeError(error)}`));
    this.#outbox = this.#outbox.then(async () => {
      await write;
      for (const [chatId, text] of messages) {
        await this.options.send(chatId, text).catch((error: unknown) => this.options.log.warn(`alert to chat ${chatId} failed: ${describeError(error)}`));
      }
    });
    return this.#outbox;
  }

  /** Resolves once every queued alert message has been sent (or has failed). */
  idle(): Promise<void> {
    return this.#outbox;
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
      await this.#save(chatId, []);
      return rules.length === 1 ? 'Alert removed.' : `All ${rules.length} alerts removed.`;
    }
    const index = /^\d{1,3}$/.test(which) ? Number(which) - 1 : -1;
    const rule = rules[index];
    if (rule === undefined) return `There is no alert ${which}: this chat has ${rules.length} (send /alert to see them).`;
    await this.#save(chatId, rules.filter((r) => r !== rule));
    return `Removed: ${describeRule(rule)}.`;
  }

  /** Changes a chat's rules once they are on disk: a failed write leaves memory as the file is. */
  async #save(chatId: number, rules: AlertRule[]): Promise<void> {
    const before = this.#chats.get(chatId);
    if (rules.length === 0) this.#chats.delete(chatId);
    else this.#chats.set(chatId, rules);
    try {
      await this.#write();
    } catch (error) {
      if (before === undefined) this.#chats.delete(chatId);
      else this.#chats.set(chatId, before);
      throw error;
    }
  }

  #write(): Promise<void> {
    const text = `${JSON.stringify({ version: 1, chats: Object.fromEntries(this.#chats) }, null, 2)}\n`;
    const write = this.#writes.then(() => writeFileAtomic(this.file, text));
    this.#writes = write.catch(() => undefined);
    return write;
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

function checkRule(item: unknown): AlertRule | string {
  const r = item as Partial<Record<keyof AlertRule, unknown>>;
  const shown = JSON.stringify(item)?.slice(0, 120) ?? String(item);
  if (typeof item !== 'object' || item === null) return `rule ${shown} is not an object`;
  const quantity = r.quantity as Quantity;
  if (!Object.hasOwn(quantityInfo, quantity)) return `rule ${shown} has no known quantity`;
  const [lo, hi] = quantityInfo[quantity].range;
  const isState = (v: unknown) => v === null || typeof v === 'boolean';
  const isTime = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if ((r.op !== '<' && r.op !== '>') || typeof r.threshold !== 'number' || !(r.threshold >= lo && r.threshold <= hi)
    || !isState(r.active) || !isState(r.announced) || !isTime(r.changedAtMs) || !isTime(r.sentAtMs)) {
    return `rule ${shown} has a bad op, threshold, state or time`;
  }
  return {
    quantity, op: r.op, threshold: r.threshold, active: r.active as boolean | null, announced: r.announced as boolean | null,
    changedAtMs: r.changedAtMs as number, sentAtMs: r.sentAtMs as number,
  };
}
