// What a getUpdates answer must be before the loop takes it: anything else is a fault, retried like a 5xx.

import type { Update } from '@grammyjs/types';
import { NetworkError } from './errors.js';

/** The getUpdates result as a list of updates in id order, or a 'malformed' fault saying what was wrong. */
export function updateList(result: unknown): Update[] {
  const malformed = (what: string) => new NetworkError('getUpdates', 'malformed', `malformed answer: ${what}`);
  if (!Array.isArray(result)) throw malformed(`the result is ${describeValue(result)}, not a list of updates`);
  let sorted = true;
  for (const [index, update] of result.entries()) {
    if (update === null || typeof update !== 'object' || Array.isArray(update)) throw malformed(`result[${index}] is ${describeValue(update)}, not an update`);
    const id = (update as { update_id?: unknown }).update_id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw malformed(`result[${index}].update_id is ${describeValue(id)}, not a whole number`);
    if (index > 0 && id <= (result[index - 1] as Update).update_id) sorted = false;
  }
  const updates = result as Update[];
  return sorted ? updates : [...updates].sort((a, b) => a.update_id - b.update_id);
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value)}`;
  return typeof value === 'object' ? 'an object' : `the ${typeof value} ${String(value)}`;
}
