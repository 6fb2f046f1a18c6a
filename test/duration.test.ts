import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../src/app/duration.js';

test('parseDuration reads seconds, minutes, hours and their combinations', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1h30m15s'), 5_415_000);
  assert.equal(parseDuration('24h'), 86_400_000);
});

test('parseDuration tolerates spaces between parts, around the text, and capitals', () => {
  assert.equal(parseDuration('1h 30m'), 5_400_000);
  assert.equal(parseDuration('  15m '), 900_000);
  assert.equal(parseDuration('2H'), 7_200_000);
});

test('parseDuration rejects other forms with a message showing the accepted ones', () => {
  for (const text of ['', ' ', '15', '1d', '1.5h', '-5m', '30m1h', '1h1h', 'm', 'ten minutes', '15 minutes', '1h30', '0x10s']) {
    assert.throws(() => parseDuration(text), (error: Error) => {
      assert.match(error.message, /90s, 15m, 2h or 1h30m/);
      assert.ok(error.message.includes(`"${text}"`), error.message);
      return true;
    }, `accepted "${text}"`);
  }
});

test('parseDuration rejects numbers too large to count in milliseconds', () => {
  assert.throws(() => parseDuration('99999999999999999h'), /too long/);
});

test('formatDuration writes what parseDuration reads, largest units first', () => {
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(900_000), '15m');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(86_400_000), '24h');
  assert.equal(formatDuration(3_601_000), '1h1s');
  assert.equal(formatDuration(0), '0s');
  for (const text of ['90s', '15m', '2h', '1h30m', '1h30m15s']) {
    assert.equal(parseDuration(formatDuration(parseDuration(text))), parseDuration(text));
  }
});

test('formatDuration rounds to the nearest second and refuses negative or non-finite values', () => {
  assert.equal(formatDuration(1_499), '1s');
  assert.equal(formatDuration(59_600), '1m');
  assert.throws(() => formatDuration(-1), RangeError);
  assert.throws(() => formatDuration(Number.NaN), RangeError);
});
