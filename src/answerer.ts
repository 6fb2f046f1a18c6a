// telepot's Answerer: answers the latest inline query of each user, and cancels the work for the
// queries it replaced, so a user typing "t", "te", "tem" gets only "tem" answered.

import type { InlineQuery, InlineQueryResult } from '@grammyjs/types';
import type { Bot, Params } from './bot.js';
import { describeError } from './log.js';

/** What a computation gives: the results, or the results with answerInlineQuery's other options. */
export type InlineAnswer = readonly InlineQueryResult[] | (Omit<Params<'answerInlineQuery'>, 'inline_query_id'>);

/** Computes the answer to one query; `signal` fires when a newer query from the same user replaces it. */
export type InlineCompute = (query: InlineQuery, signal: AbortSignal) => InlineAnswer | Promise<InlineAnswer>;

export class Answerer {
  private readonly bot: Bot;
  /** The query being computed for each user, and how to cancel it. */
  private readonly current = new Map<number, { queryId: string; controller: AbortController }>();

  constructor(bot: Bot) {
    this.bot = bot;
  }

  /**
   * Computes and sends the answer to `query`, unless a newer query from the same user arrives first.
   * Resolves true when this query was answered, false when a newer one replaced it.
   */
  async answer(query: InlineQuery, compute: InlineCompute): Promise<boolean> {
    const userId = query.from.id;
    this.current.get(userId)?.controller.abort(new Error(`inline query ${query.id} replaced it`));
    const entry = { queryId: query.id, controller: new AbortController() };
    this.current.set(userId, entry);
    const signal = entry.controller.signal;
    try {
      const answer = await compute(query, signal);
      if (signal.aborted) return false;
      const options = isResults(answer) ? { results: [...answer] } : answer;
      await this.bot.call('answerInlineQuery', { ...options, inline_query_id: query.id });
      return true;
    } catch (error) {
      if (signal.aborted) return false;
      throw new Error(`answering inline query ${query.id} failed: ${describeError(error)}`, { cause: error });
    } finally {
      if (this.current.get(userId) === entry) this.current.delete(userId);
    }
  }

  /** Users whose query is being computed. */
  get pending(): number {
    return this.current.size;
  }
}

function isResults(answer: InlineAnswer): answer is readonly InlineQueryResult[] {
  return Array.isArray(answer);
}
