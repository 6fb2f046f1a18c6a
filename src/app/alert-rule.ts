// One alert rule (`temp < 5`): how it is typed, shown, checked when read back and judged, with the hysteresis that keeps a value
// hovering at the threshold from chattering. The per-chat service is alerts.ts.
import { oneDecimal, quoteInput } from './format.js';
import type { Quantity } from './history/downsample.js';

export interface AlertRule {
  quantity: Quantity;
  op: '<' | '>';
  threshold: number;
  /** Whether the condition holds, as last judged (null until the first reading after the rule was set). */
  active: boolean | null;
  /** What the chat was last told: the state its last message announced (null: nothing yet). */
  announced: boolean | null;
  /** Wall-clock ms when `active` last changed. */
  changedAtMs: number;
  /** Wall-clock ms of the rule's last message; 0: none. */
  sentAtMs: number;
}

export const minAlertGapMs = 10 * 60_000;
export const maxRulesPerChat = 10;

export interface QuantityInfo {
  words: readonly string[];
  name: string;
  /** What a BME280 can measure; thresholds outside are refused. */
  range: readonly [number, number];
  /** The value must come back this far past the threshold before "back" is said: no chatter. */
  hysteresis: number;
  below: string;
  above: string;
  /** As /now writes it after the number. */
  unit: string;
}

export const quantityInfo: Record<Quantity, QuantityInfo> = {
  temperature: { words: ['temp', 'temperature', 't'], name: 'temperature', range: [-40, 85], hysteresis: 0.5, below: '❄', above: '🔥', unit: '°C' },
  humidity: { words: ['humidity', 'hum', 'h'], name: 'humidity', range: [0, 100], hysteresis: 2, below: '🏜', above: '💧', unit: '%' },
  pressure: { words: ['pressure', 'p'], name: 'pressure', range: [300, 1100], hysteresis: 1, below: '🌀', above: '☀', unit: 'hPa' },
};

export const alertUsage = 'Send /alert temp < 5, /alert humidity > 65 or /alert pressure < 990 (also t, h, p); /alert off 2 removes the second, /alert off all of them.';
// One decimal at most, as every value is shown: a threshold of 25.45 would read as 25.4 in every message.
const ruleShape = /^([a-z]+)\s*(<|>)\s*(-?\d{1,4}(?:[.,]\d)?)\s*(°c|c|%|hpa)?$/i;

/** The value as /now writes it (`4.8°C`, `65.0%`, `1,013.2hPa`). */
export function formatValue(quantity: Quantity, value: number): string {
  return `${oneDecimal(value, quantity)}${quantityInfo[quantity].unit}`;
}

export function describeRule(rule: Pick<AlertRule, 'quantity' | 'op' | 'threshold'>): string {
  return `${quantityInfo[rule.quantity].name} ${rule.op === '<' ? 'below' : 'above'} ${formatValue(rule.quantity, rule.threshold)}`;
}

/** Reads `temp < 5` (also `t<5`, `humidity > 65%`, `p < 990hPa`). @throws Error with a sentence for the chat. */
export function parseRule(text: string): Pick<AlertRule, 'quantity' | 'op' | 'threshold'> {
  const match = ruleShape.exec(text.trim());
  if (match === null) throw new Error(`${quoteInput(text)} is not an alert. ${alertUsage}`);
  const [, word = '', op, number = ''] = match;
  const quantity = (Object.keys(quantityInfo) as Quantity[]).find((q) => quantityInfo[q].words.includes(word.toLowerCase()));
  if (quantity === undefined) throw new Error(`${quoteInput(word)} is not something I measure: use temp, humidity or pressure (t, h, p).`);
  const threshold = Number(number.replace(',', '.'));
  const [lo, hi] = quantityInfo[quantity].range;
  if (!(threshold >= lo && threshold <= hi)) {
    throw new Error(`${formatValue(quantity, threshold)} is outside what the sensor measures (${formatValue(quantity, lo)} to ${formatValue(quantity, hi)}).`);
  }
  return { quantity, op: op === '<' ? '<' : '>', threshold };
}

/** The next state of a rule for `value`: it becomes active on crossing, and clear only past the hysteresis band. */
export function judge(rule: AlertRule, value: number): boolean {
  const band = rule.active === true ? quantityInfo[rule.quantity].hysteresis : 0;
  return rule.op === '<' ? value < rule.threshold + band : value > rule.threshold - band;
}

/** A rule as alerts.json holds it, checked field by field: the rule, or why it cannot be used. */
export function checkRule(item: unknown): AlertRule | string {
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
