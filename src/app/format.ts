// How readings and times read in chat: fixed formats, the same whatever the Pi's locale.

export interface ReadingLike {
  temperature: number;
  /** null on a BMP280, which has no humidity sensor. */
  humidity: number | null;
  pressure: number;
}

/** `21.4°C  45.2%  1,013.2hPa` (two spaces between fields); a BMP280's reading leaves humidity out. */
export function formatReading(reading: ReadingLike): string {
  const fields = [`${oneDecimal(reading.temperature, 'temperature')}°C`];
  if (reading.humidity !== null) fields.push(`${oneDecimal(reading.humidity, 'humidity')}%`);
  fields.push(`${oneDecimal(reading.pressure, 'pressure')}hPa`);
  return fields.join('  ');
}

/**
 * `1,013.2`, `-4.8`, `0.0`: one decimal, thousands grouped by commas, as every value in chat is shown.
 * Not toLocaleString: Node may be built without full ICU, and the Pi's locale must not change the reply.
 * @throws RangeError naming `field` when `value` is not finite.
 */
export function oneDecimal(value: number, field = 'value'): string {
  if (!Number.isFinite(value)) throw new RangeError(`formatReading: ${field} is ${value}, not a number`);
  const [whole = '0', fraction = '0'] = Math.abs(value).toFixed(1).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+$)/g, ',');
  // -0.04 rounds to 0.0, which has no sign.
  const sign = value < 0 && `${whole}.${fraction}` !== '0.0' ? '-' : '';
  return `${sign}${grouped}.${fraction}`;
}

/** The two largest units of an uptime: `42s`, `5m 3s`, `4h 12m`, `3d 4h`. */
export function formatUptime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`formatUptime: ${ms} is not a duration in ms`);
  const totalSeconds = Math.floor(ms / 1000);
  const units: [number, string][] = [
    [Math.floor(totalSeconds / 86_400), 'd'],
    [Math.floor(totalSeconds / 3600) % 24, 'h'],
    [Math.floor(totalSeconds / 60) % 60, 'm'],
    [totalSeconds % 60, 's'],
  ];
  const first = units.findIndex(([value]) => value > 0);
  if (first === -1) return '0s';
  return units.slice(first, first + 2).map(([value, unit]) => `${value}${unit}`).join(' ');
}

/**
 * Someone's input, quoted back to them: one line, at most `maxChars` characters (an ellipsis marks the
 * cut), so an echo never makes a reply longer than Telegram's 4,096-character limit.
 */
export function quoteInput(text: string, maxChars = 64): string {
  const line = text.replace(/\s+/g, ' ').trim();
  const chars = [...line]; // by code point, so an emoji is never cut in half
  const shown = chars.length <= maxChars ? line : `${chars.slice(0, maxChars - 1).join('')}…`;
  return `"${shown}"`;
}

/** Telegram refuses a message longer than 4,096 characters: a reply is cut to fit, never refused. */
export const maxMessageChars = 4096;

/** `text`, or its start and an ellipsis when it would be too long for one message. */
export function fitMessage(text: string): string {
  if (text.length <= maxMessageChars) return text;
  // By UTF-16 unit, as Telegram counts; a surrogate pair at the cut is dropped whole.
  const cut = text.slice(0, maxMessageChars - 1).replace(/[\uD800-\uDBFF]$/, '');
  return `${cut}…`;
}
