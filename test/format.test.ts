import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitMessage, formatReading, formatUptime, maxMessageChars, quoteInput } from '../src/app/format.js';

test('a BME280 reading is one line: temperature, humidity, pressure, two spaces apart', () => {
  assert.equal(formatReading({ temperature: 21.4, humidity: 45.2, pressure: 1013.2 }), '21.4°C  45.2%  1,013.2hPa');
});

test('values are rounded to one decimal, always shown', () => {
  assert.equal(formatReading({ temperature: 21, humidity: 45.26, pressure: 999.96 }), '21.0°C  45.3%  1,000.0hPa');
  assert.equal(formatReading({ temperature: 19.04, humidity: 100, pressure: 987.04 }), '19.0°C  100.0%  987.0hPa');
});

test('a BMP280 reading, without humidity, leaves humidity out', () => {
  assert.equal(formatReading({ temperature: 21.4, humidity: null, pressure: 1013.2 }), '21.4°C  1,013.2hPa');
});

test('negative temperatures carry a minus sign, but a rounded zero does not', () => {
  assert.equal(formatReading({ temperature: -3, humidity: 80, pressure: 1020 }), '-3.0°C  80.0%  1,020.0hPa');
  assert.equal(formatReading({ temperature: -12.35, humidity: null, pressure: 1000 }).split('  ')[0], '-12.3°C');
  assert.equal(formatReading({ temperature: -0.04, humidity: null, pressure: 1000 }).split('  ')[0], '0.0°C');
});

test('the format does not depend on the locale', () => {
  const original = Number.prototype.toLocaleString;
  // A German locale would write 1.013,2: make sure nothing goes through toLocaleString.
  Number.prototype.toLocaleString = function () { return 'LOCALE'; };
  try {
    assert.equal(formatReading({ temperature: 21.4, humidity: 45.2, pressure: 1013.2 }), '21.4°C  45.2%  1,013.2hPa');
  } finally {
    Number.prototype.toLocaleString = original;
  }
});

test('a reading that is not a number is refused, naming the field', () => {
  assert.throws(() => formatReading({ temperature: Number.NaN, humidity: 1, pressure: 1 }), /temperature is NaN/);
  assert.throws(() => formatReading({ temperature: 1, humidity: 1, pressure: Infinity }), /pressure is Infinity/);
});

test('uptime shows its two largest units', () => {
  assert.equal(formatUptime(0), '0s');
  assert.equal(formatUptime(42_900), '42s');
  assert.equal(formatUptime(5 * 60_000 + 3_000), '5m 3s');
  assert.equal(formatUptime(4 * 3_600_000 + 12 * 60_000 + 59_000), '4h 12m');
  assert.equal(formatUptime(3 * 86_400_000 + 4 * 3_600_000 + 1_000), '3d 4h');
  assert.equal(formatUptime(86_400_000 + 5_000), '1d 0h');
  assert.throws(() => formatUptime(-1), RangeError);
});

test('quoteInput echoes input on one line, cut with an ellipsis, never splitting a character', () => {
  assert.equal(quoteInput('15 m'), '"15 m"');
  assert.equal(quoteInput('a\n\nb'), '"a b"');
  const long = quoteInput('x'.repeat(4000));
  assert.equal(long, `"${'x'.repeat(63)}…"`);
  assert.equal(quoteInput('😀'.repeat(100), 10), `"${'😀'.repeat(9)}…"`);
});

test('fitMessage leaves a message that fits and cuts a longer one to 4,096 characters, never half an emoji', () => {
  assert.equal(fitMessage('short'), 'short');
  assert.equal(fitMessage('x'.repeat(maxMessageChars)), 'x'.repeat(maxMessageChars));
  const cut = fitMessage('y'.repeat(10_000));
  assert.equal(cut.length, maxMessageChars);
  assert.ok(cut.endsWith('y…'));
  const emoji = fitMessage(`${'z'.repeat(maxMessageChars - 2)}😀😀`);
  assert.ok(emoji.length <= maxMessageChars);
  assert.ok(!/[\uD800-\uDBFF]…$/.test(emoji), 'a lone high surrogate before the ellipsis');
});
