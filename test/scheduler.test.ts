import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryLogger } from '../src/log.js';
import { ReportScheduler, nextFireAfter } from '../src/app/scheduler.js';
import { FakeClock } from './fakes/clock.js';

const minute = 60_000;
const hour = 60 * minute;

function setup(onReport?: (chatId: number) => Promise<void> | void) {
  const clock = new FakeClock();
  const log = memoryLogger();
  const fired: { chatId: number; atMs: number }[] = [];
  const scheduler = new ReportScheduler({
    clock,
    log,
    onReport: (chatId) => {
      fired.push({ chatId, atMs: clock.now() });
      return onReport?.(chatId);
    },
  });
  return { clock, log, fired, scheduler, t0: clock.now() };
}

test('reports fall on anchor + k·interval, starting one interval after the anchor', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 7, intervalMs: 15 * minute, anchorMs: t0 });
  assert.equal(scheduler.nextFireMs(7), t0 + 15 * minute);
  await clock.advanceAsync(14 * minute);
  assert.equal(fired.length, 0, 'fired before the first interval');
  await clock.advanceAsync(46 * minute);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [15, 30, 45, 60]);
  assert.ok(fired.every((f) => f.chatId === 7));
  scheduler.stop();
});

test('after a restart the phase is kept and reports missed while down are skipped', async () => {
  const first = setup();
  const sub = { chatId: 7, intervalMs: hour, anchorMs: first.t0 };
  first.scheduler.schedule(sub);
  await first.clock.advanceAsync(2.5 * hour);
  assert.equal(first.fired.length, 2);
  first.scheduler.stop();

  // Down for 3h20m: 3 reports would have fallen in that time.
  first.clock.advance(3 * hour + 20 * minute);
  const reports: number[] = [];
  const second = new ReportScheduler({ clock: first.clock, log: first.log, onReport: () => { reports.push(first.clock.now()); } });
  second.schedule(sub);
  assert.equal(second.nextFireMs(7), first.t0 + 6 * hour);
  await first.clock.advanceAsync(9 * minute);
  assert.deepEqual(reports, [], 'missed reports were sent in a burst');
  await first.clock.advanceAsync(hour + minute);
  assert.deepEqual(reports.map((ms) => (ms - first.t0) / hour), [6, 7]);
  second.stop();
});

test('nextFireAfter is strictly after now, also before the anchor and on a grid point', () => {
  const sub = { chatId: 1, intervalMs: 10, anchorMs: 100 };
  assert.equal(nextFireAfter(sub, 100), 110);
  assert.equal(nextFireAfter(sub, 109), 110);
  assert.equal(nextFireAfter(sub, 110), 120);
  assert.equal(nextFireAfter(sub, 75), 80);
});

test('cancel stops the chat\'s reports and says whether there were any', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 1, intervalMs: minute, anchorMs: t0 });
  scheduler.schedule({ chatId: 2, intervalMs: minute, anchorMs: t0 });
  await clock.advanceAsync(minute);
  assert.equal(scheduler.cancel(1), true);
  assert.equal(scheduler.cancel(1), false);
  assert.equal(scheduler.get(1), undefined);
  assert.equal(scheduler.nextFireMs(1), undefined);
  await clock.advanceAsync(3 * minute);
  assert.deepEqual(fired.map((f) => f.chatId), [1, 2, 2, 2, 2]);
  assert.deepEqual(scheduler.list().map((s) => s.chatId), [2]);
  scheduler.stop();
  assert.equal(clock.pendingTimers, 0);
});

test('scheduling a chat again replaces its schedule', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 1, intervalMs: minute, anchorMs: t0 });
  scheduler.schedule({ chatId: 1, intervalMs: hour, anchorMs: t0 });
  assert.deepEqual(scheduler.get(1), { chatId: 1, intervalMs: hour, anchorMs: t0 });
  await clock.advanceAsync(hour);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [60]);
  assert.equal(clock.pendingTimers, 1);
  scheduler.stop();
});

test('a slow report makes the next tick skip, without shifting the phase', async () => {
  let finish: () => void = () => {};
  const { clock, fired, log, scheduler, t0 } = setup(() => new Promise<void>((resolve) => { finish = resolve; }));
  scheduler.schedule({ chatId: 3, intervalMs: minute, anchorMs: t0 });
  await clock.advanceAsync(minute); // starts the report at 1m; it hangs
  await clock.advanceAsync(minute + 30_000); // 2m is due while it still runs
  assert.equal(fired.length, 1, 'two reports overlapped');
  assert.match(log.lines.join('\n'), /WARN chat 3: the previous report is still running after 1m; skipping this one/);
  finish();
  await clock.advanceAsync(30_000);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [1, 3]);
  finish();
  await clock.advanceAsync(minute);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [1, 3, 4]);
  scheduler.stop();
});

test('a report that throws is logged and the schedule goes on', async () => {
  const { clock, fired, log, scheduler, t0 } = setup(() => Promise.reject(new Error('sensor gone')));
  scheduler.schedule({ chatId: 5, intervalMs: minute, anchorMs: t0 });
  await clock.advanceAsync(2 * minute);
  assert.equal(fired.length, 2);
  assert.match(log.lines.join('\n'), /WARN chat 5: the interval report failed: sensor gone/);
  scheduler.stop();
});

test('a forward wall-clock jump brings one report, then the schedule snaps back onto its grid', async () => {
  const { clock, fired, log, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 9, intervalMs: 10 * minute, anchorMs: t0 });
  clock.jumpWallClock(34 * minute); // NTP at boot
  await clock.advanceAsync(10 * minute);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [44]);
  assert.equal(scheduler.nextFireMs(9), t0 + 50 * minute);
  assert.match(log.lines.join('\n'), /skipped 3 missed report/);
  await clock.advanceAsync(6 * minute);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [44, 50]);
  scheduler.stop();
});

test('after a backward wall-clock jump no report comes before its wall-clock time', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 9, intervalMs: 10 * minute, anchorMs: t0 });
  clock.jumpWallClock(-5 * minute);
  await clock.advanceAsync(10 * minute);
  assert.equal(fired.length, 0, 'fired early by the wall clock');
  await clock.advanceAsync(5 * minute);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / minute), [10]);
  scheduler.stop();
});

test('long waits never ask setTimeout for more than 2^31-1 ms, and still fire on time', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  const intervalMs = 40 * 24 * hour;
  scheduler.schedule({ chatId: 1, intervalMs, anchorMs: t0 });
  await clock.advanceAsync(intervalMs);
  assert.deepEqual(fired.map((f) => f.atMs - t0), [intervalMs]);
  assert.ok(Math.max(...clock.delays) <= 2 ** 31 - 1, `asked for ${Math.max(...clock.delays)} ms`);
  scheduler.stop();
});

test('a daily schedule fires once a day', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 1, intervalMs: 24 * hour, anchorMs: t0 - hour });
  await clock.advanceAsync(3 * 24 * hour);
  assert.deepEqual(fired.map((f) => (f.atMs - t0) / hour), [23, 47, 71]);
  scheduler.stop();
});

test('stop clears every timer and a bad interval is refused', () => {
  const { clock, scheduler, t0 } = setup();
  scheduler.schedule({ chatId: 1, intervalMs: minute, anchorMs: t0 });
  scheduler.schedule({ chatId: 2, intervalMs: hour, anchorMs: t0 });
  scheduler.stop();
  assert.equal(clock.pendingTimers, 0);
  assert.deepEqual(scheduler.list(), []);
  assert.throws(() => scheduler.schedule({ chatId: 1, intervalMs: 0, anchorMs: t0 }), RangeError);
  assert.throws(() => scheduler.schedule({ chatId: 1, intervalMs: Number.NaN, anchorMs: t0 }), /cannot schedule chat 1/);
});

// Issue 10 row 4: an anchor of ±1e300 or an interval of 1 ms made 338 reports in 4 s.
test('absurd anchors and sub-second intervals are refused; the extremes it accepts fire once per interval', async () => {
  const { clock, fired, scheduler, t0 } = setup();
  for (const sub of [{ anchorMs: 1e300, intervalMs: minute }, { anchorMs: -1e300, intervalMs: minute }, { anchorMs: t0, intervalMs: 1 },
    { anchorMs: t0, intervalMs: 999 }, { anchorMs: Number.POSITIVE_INFINITY, intervalMs: minute }]) {
    assert.throws(() => scheduler.schedule({ chatId: 1, ...sub }), /cannot schedule chat 1/, JSON.stringify(sub));
  }
  assert.deepEqual(scheduler.list(), []);
  scheduler.schedule({ chatId: 2, intervalMs: 1000, anchorMs: -8.64e15 });
  scheduler.schedule({ chatId: 3, intervalMs: 1000, anchorMs: 8.64e15 });
  await clock.advanceAsync(10_000);
  assert.equal(fired.filter((f) => f.chatId === 2).length, 10);
  assert.equal(fired.filter((f) => f.chatId === 3).length, 10);
  scheduler.stop();
});

test('the fake clock refuses to run a timer loop forever', () => {
  const clock = new FakeClock();
  const loop = () => { clock.setTimeout(loop, 0); };
  loop();
  assert.throws(() => clock.runAll(100), /timer loop/);
});
