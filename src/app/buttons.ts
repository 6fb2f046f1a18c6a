// Inline keyboards and what a press does: /chart's period buttons (24h · 7d · 30d · ↻) swap the picture
// in place, /every's interval buttons subscribe. Every press is answered at once; a stranger's does nothing.

import type { CallbackQuery, InlineKeyboardMarkup } from '@grammyjs/types';
import type { Bot } from '../bot.js';
import { InputFile } from '../inputfile.js';
import { describeError, type Logger } from '../log.js';
import type { Authorizer } from './auth.js';
import { quoteInput } from './format.js';
import type { ChartMaker } from './history/chart.js';
import { formatSpan, parseSpan } from './history/span.js';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
export const minChartSpanMs = hourMs;
export const maxChartSpanMs = 2 * 365 * dayMs;
const chartUsage = 'Send /chart with a period from 1h to 2y, like /chart, /chart 7d, /chart 30d or /chart 1y.';

/** The buttons under a chart: three periods and a refresh of the one shown. */
export function chartKeyboard(spanMs: number): InlineKeyboardMarkup {
  const periods = [dayMs, 7 * dayMs, 30 * dayMs].map((ms) => ({
    text: ms === spanMs ? `· ${formatSpan(ms)} ·` : formatSpan(ms),
    callback_data: `chart:${formatSpan(ms)}`,
  }));
  return { inline_keyboard: [[...periods, { text: '↻', callback_data: `chart:${formatSpan(spanMs)}` }]] };
}

export const everyChoices = ['15m', '1h', '6h', '24h'] as const;

/** The buttons /every answers when it has no interval. */
export function everyKeyboard(): InlineKeyboardMarkup {
  return { inline_keyboard: [[...everyChoices, 'off'].map((choice) => ({ text: choice, callback_data: `every:${choice}` }))] };
}

/** A period for /chart: 24h when none is given. @throws Error with the sentence to answer. */
export function chartSpan(args: string): number {
  if (args.trim() === '') return dayMs;
  let spanMs: number;
  try {
    spanMs = parseSpan(args);
  } catch {
    throw new Error(`${quoteInput(args)} is not a period. ${chartUsage}`);
  }
  if (spanMs < minChartSpanMs || spanMs > maxChartSpanMs) throw new Error(`${formatSpan(spanMs)} is out of range. ${chartUsage}`);
  return spanMs;
}

export interface ButtonContext {
  bot: Bot;
  chatId: number;
  auth: Authorizer;
  chart: ChartMaker;
  clock: { now(): number };
  log: Logger;
  /** Subscribes this chat to reports every intervalMs (and says so); null cancels them. */
  every: (intervalMs: number | null) => Promise<void>;
}

/** /chart [period]: the picture with its caption and buttons, or why not. */
export async function sendChart(ctx: ButtonContext, args: string): Promise<void> {
  let spanMs: number;
  try {
    spanMs = chartSpan(args);
  } catch (error) {
    await ctx.bot.sendMessage(ctx.chatId, (error as Error).message);
    return;
  }
  await ctx.bot.sendChatAction(ctx.chatId, 'upload_photo').catch(() => undefined);
  let chart;
  try {
    chart = await ctx.chart.make(spanMs, ctx.clock.now());
  } catch (error) {
    ctx.log.warn(`chat ${ctx.chatId}: /chart failed: ${describeError(error)}`);
    await ctx.bot.sendMessage(ctx.chatId, `Could not draw the chart: ${describeError(error)}`);
    return;
  }
  await ctx.bot.sendPhoto(ctx.chatId, InputFile.fromBuffer(chart.png, 'chart.png'), { caption: chart.caption, reply_markup: chartKeyboard(spanMs) });
}

/** A button press: answered at once (the chart is drawn after), ignored from someone not allowed. */
export async function pressButton(ctx: ButtonContext, query: CallbackQuery): Promise<void> {
  const answer = (text?: string) => ctx.bot.answerCallbackQuery(query.id, text === undefined ? {} : { text })
    .catch((error: unknown) => ctx.log.debug(`answerCallbackQuery: ${describeError(error)}`));
  // Any client can send any callback_data: only the exact shapes these keyboards make are acted on.
  const [, kind, value = ''] = /^(chart|every):([0-9a-z]{1,8})$/.exec(query.data ?? '') ?? [];
  const message = query.message;
  if (ctx.auth.roleOf(query.from.id) === null || message === undefined || kind === undefined) {
    await answer();
    return;
  }
  if (kind === 'every') {
    const choice = everyChoices.find((c) => c === value);
    if (choice === undefined && value !== 'off') return void (await answer());
    await answer(choice === undefined ? 'Reports off' : `Every ${choice}`);
    await ctx.bot.call('editMessageReplyMarkup', { chat_id: ctx.chatId, message_id: message.message_id }).catch(() => undefined);
    await ctx.every(choice === undefined ? null : parseSpan(choice));
    return;
  }
  let spanMs: number;
  try {
    spanMs = chartSpan(value);
  } catch {
    return void (await answer());
  }
  await answer(`Drawing the last ${formatSpan(spanMs)}…`);
  try {
    const chart = await ctx.chart.make(spanMs, ctx.clock.now());
    await ctx.bot.call('editMessageMedia', {
      chat_id: ctx.chatId, message_id: message.message_id,
      media: { type: 'photo', media: InputFile.fromBuffer(chart.png, 'chart.png') as unknown as string, caption: chart.caption },
      reply_markup: chartKeyboard(spanMs),
    });
  } catch (error) {
    ctx.log.warn(`chat ${ctx.chatId}: swapping the chart failed: ${describeError(error)}`);
  }
}
