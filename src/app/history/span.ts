// Long spans as people type them for /chart and HISTORY_KEEP: 24h, 7d, 2w, 1y, 1y6w, 1d12h.

import { formatDuration, parseDuration } from '../duration.js';

const dayMs = 86_400_000;
const spanUnits = { y: 365 * dayMs, w: 7 * dayMs, d: dayMs } as const;
const spanShape = /^(?:(\d+)\s*y)?\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(.*)$/;

/**
 * Parses a span in years (365 days), weeks and days, then hours, minutes and seconds as parseDuration
 * reads them: `7d`, `1y`, `1d12h`, `90m`. @throws Error naming the text and the accepted forms.
 */
export function parseSpan(text: string): number {
  const trimmed = text.trim().toLowerCase();
  const match = spanShape.exec(trimmed);
  const [, years, weeks, days, rest = ''] = match ?? [];
  let ms = Number(years ?? 0) * spanUnits.y + Number(weeks ?? 0) * spanUnits.w + Number(days ?? 0) * spanUnits.d;
  try {
    if (rest !== '' || ms === 0) ms += parseDuration(rest === '' ? trimmed : rest);
  } catch {
    throw new Error(`"${text}" is not a span like 24h, 7d, 2w or 1y (whole numbers of y, w, d, h, m, s, in that order)`);
  }
  if (!Number.isSafeInteger(ms)) throw new Error(`"${text}" is too long a span`);
  return ms;
}

/** Writes a span the way parseSpan reads it: hours up to two days (`24h`, `36h`), then `7d`, `30d`, `1y`. */
export function formatSpan(ms: number): string {
  if (ms < 2 * dayMs || ms % dayMs !== 0) return formatDuration(ms);
  return ms % spanUnits.y === 0 ? `${ms / spanUnits.y}y` : `${ms / dayMs}d`;
}
