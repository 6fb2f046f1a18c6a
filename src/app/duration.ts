// Durations as people type them in chat and in the env file: 90s, 15m, 2h, 1h30m, 1h 30m.

const msPerUnit = { h: 3_600_000, m: 60_000, s: 1_000 } as const;

const acceptedForms = 'a duration like 90s, 15m, 2h or 1h30m (whole numbers of h, m, s, in that order)';

// Units in descending order, each at most once; spaces between parts are tolerated ("1h 30m").
const durationShape = /^(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?$/;

/**
 * Parses `90s`, `15m`, `2h`, `1h30m`, `1h 30m`, `1h30m15s` (case-insensitive) into milliseconds.
 * There is no day unit: write `24h`. Bounds (minimum, maximum) are the caller's to check.
 * @throws Error naming the text and the accepted forms.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim().toLowerCase();
  const match = durationShape.exec(trimmed);
  if (trimmed === '' || match === null) {
    throw new Error(`"${text}" is not ${acceptedForms}`);
  }
  const [, hours, minutes, seconds] = match;
  const ms =
    Number(hours ?? 0) * msPerUnit.h + Number(minutes ?? 0) * msPerUnit.m + Number(seconds ?? 0) * msPerUnit.s;
  if (!Number.isSafeInteger(ms)) throw new Error(`"${text}" is too long to be ${acceptedForms}`);
  return ms;
}

/**
 * Writes milliseconds the way parseDuration reads them: 5_400_000 → `1h30m`, 90_000 → `1m30s`, 0 → `0s`.
 * Rounds to the nearest second; hours are not folded into days (`36h`).
 * @throws RangeError for a negative or non-finite value.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`formatDuration: ${ms} is not a duration in ms`);
  let seconds = Math.round(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const parts = [hours > 0 ? `${hours}h` : '', minutes > 0 ? `${minutes}m` : '', seconds > 0 ? `${seconds}s` : ''];
  return parts.join('') || '0s';
}
