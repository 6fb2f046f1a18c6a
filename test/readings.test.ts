import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClimateReading, ClimateSensor } from '../hardware/types.js';
import { ReadingSource, nextGridPoint, type Sample } from '../src/app/readings.js';
import { memoryLogger } from '../src/log.js';
import { FakeClock, settle } from './fakes/clock.js';

const second = 1000;
const minute = 60 * second;

/**
 * A sensor whose reads are counted; each read returns the next temperature, or fails when told to. With
 * `hang` set a read never settles (a stuck I2C bus) until the test calls one of `stuck`.
 */
function countingSensor() {
  const state = { reads: 0, fail: false, hold: undefined as Promise<void> | undefined, hang: false, stuck: [] as Array<(reading: ClimateReading) => void> };
  const sensor: ClimateSensor = {
    description: 'counting sensor',
    read: async (): Promise<ClimateReading> => {
      state.reads++;
      const n = state.reads;
      if (state.hang) return new Promise<ClimateReading>((resolve) => void state.stuck.push(resolve));
      if (state.hold !== undefined) await state.hold;
      if (state.fail) throw new Error('BME280 at 0x76 on i2c-1: no answer');
      return { temperature: 20 + n, humidity: 40, pressure: 1000 };
    },
    close: async () => {},
  };
  return { sensor, state };
}

function setup(readTimeoutMs?: number) {
  // 12:00:30 UTC: half-way between two minute marks, so alignment shows.
  const clock = new FakeClock(Date.UTC(2025, 0, 1, 12, 0, 30));
  const log = memoryLogger();
  const { sensor, state } = countingSensor();
  const source = new ReadingSource({ sensor, clock, log, readTimeoutMs });
  return { clock, log, source, state, t0: clock.now() };
}

test('outlets get samples on the wall-clock grid, one sensor read per tick for all outlets due', { timeout: 10_000 }, async () => {
  const { clock, source, state } = setup();
  const everyMinute: Sample[] = [];
  const everyFive: Sample[] = [];
  source.subscribe(minute, (s) => void everyMinute.push(s));
  source.subscribe(5 * minute, (s) => void everyFive.push(s));
  source.start();
  await clock.advanceAsync(10 * minute);
  await source.stop();
  const minuteOf = (s: Sample) => new Date(s.atMs).toISOString().slice(11, 19);
  assert.deepEqual(everyMinute.map(minuteOf), ['12:01:00', '12:02:00', '12:03:00', '12:04:00', '12:05:00', '12:06:00', '12:07:00', '12:08:00', '12:09:00', '12:10:00']);
  assert.deepEqual(everyFive.map(minuteOf), ['12:05:00', '12:10:00']);
  assert.equal(state.reads, 10, 'the sensor was read once per outlet instead of once per tick');
  // The 5-minute outlet got the very same reading as the 1-minute one at 12:05.
  assert.equal(everyFive[0]?.reading?.temperature, everyMinute[4]?.reading?.temperature);
  assert.equal(clock.pendingTimers, 0, 'stop left a timer behind');
});

test('a failed read is a sample with the error, never a zero, and latest() holds it', { timeout: 10_000 }, async () => {
  const { clock, source, state } = setup();
  const got: Sample[] = [];
  source.subscribe(minute, (s) => void got.push(s));
  source.start();
  state.fail = true;
  await clock.advanceAsync(minute);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.reading, undefined);
  assert.match(got[0]?.error?.message ?? '', /0x76/);
  assert.equal(source.latest(), got[0]);
  state.fail = false;
  await clock.advanceAsync(minute);
  assert.equal(got[1]?.reading?.temperature, 22);
  await source.stop();
});

test('an outlet that throws or rejects is logged and stops neither the source nor other outlets', { timeout: 10_000 }, async () => {
  const { clock, source, log } = setup();
  const good: number[] = [];
  source.subscribe(minute, () => {
    throw new Error('outlet exploded');
  });
  source.subscribe(minute, () => Promise.reject(new Error('outlet rejected')));
  source.subscribe(minute, (s) => void good.push(s.atMs));
  source.start();
  await clock.advanceAsync(3 * minute);
  await source.stop();
  assert.equal(good.length, 3);
  assert.equal(log.lines.filter((l) => l.includes('outlet exploded')).length, 3);
  assert.equal(log.lines.filter((l) => l.includes('outlet rejected')).length, 3);
});

test('a slow outlet delays no other outlet, and skips ticks while busy instead of piling calls up', { timeout: 10_000 }, async () => {
  const { clock, source, log } = setup();
  let release!: () => void;
  const stuck = new Promise<void>((resolve) => (release = resolve));
  let slowCalls = 0;
  const fast: number[] = [];
  source.subscribe(minute, async () => {
    slowCalls++;
    await stuck;
  });
  source.subscribe(minute, (s) => void fast.push(s.atMs));
  source.start();
  await clock.advanceAsync(5 * minute);
  assert.equal(fast.length, 5);
  assert.equal(slowCalls, 1, 'a busy outlet was called again');
  assert.equal(log.lines.filter((l) => l.includes('still busy')).length, 4);
  let stopped = false;
  const stopping = source.stop().then(() => (stopped = true));
  await settle();
  assert.equal(stopped, false, 'stop did not wait for the running outlet');
  release();
  await stopping;
});

test('readNow shares one read among concurrent callers, updates latest() and calls no outlet', { timeout: 10_000 }, async () => {
  const { source, state } = setup();
  let releaseRead!: () => void;
  state.hold = new Promise<void>((resolve) => (releaseRead = resolve));
  const outlet: Sample[] = [];
  source.subscribe(minute, (s) => void outlet.push(s));
  source.start();
  const a = source.readNow();
  const b = source.readNow();
  releaseRead();
  const [sa, sb] = await Promise.all([a, b]);
  assert.equal(state.reads, 1);
  assert.equal(sa, sb);
  assert.equal(source.latest(), sa);
  assert.equal(outlet.length, 0);
  state.hold = undefined;
  const later = await source.readNow();
  assert.equal(state.reads, 2, 'a finished read was reused for a later caller');
  assert.equal(later.reading?.temperature, 22);
  await source.stop();
});

test('ticks missed while the machine slept are skipped, and a clock jumped back delays the tick', { timeout: 10_000 }, async () => {
  const { clock, source, log, t0 } = setup();
  const got: number[] = [];
  source.subscribe(minute, (s) => void got.push(s.atMs));
  source.start();
  clock.jumpWallClock(10 * minute);
  await clock.advanceAsync(30 * second);
  assert.equal(got.length, 1, 'missed ticks were replayed in a burst');
  assert.ok(log.lines.some((l) => l.includes('skipped 10 missed tick(s)')));
  // Back by an hour: the pending timer wakes early, and no sample comes before its grid time.
  clock.jumpWallClock(-60 * minute);
  await clock.advanceAsync(minute);
  assert.equal(got.length, 1, 'a sample came early after the clock jumped back');
  assert.equal(nextGridPoint(t0, minute), t0 + 30 * second);
  await source.stop();
});

test('a read slower than the interval is shared by the next tick, and no outlet gets the same sample twice', { timeout: 10_000 }, async () => {
  const { clock, source, state } = setup(10 * minute);
  let releaseRead!: () => void;
  state.hold = new Promise<void>((resolve) => (releaseRead = resolve));
  const got: Sample[] = [];
  source.subscribe(minute, (s) => void got.push(s));
  source.start();
  await clock.advanceAsync(3 * minute);
  assert.equal(state.reads, 1, 'a second read was started while the first still ran');
  releaseRead();
  await settle();
  assert.equal(got.length, 1, 'the shared sample was delivered more than once');
  state.hold = undefined;
  await clock.advanceAsync(minute);
  assert.equal(got.length, 2);
  assert.ok((got[1]?.atMs ?? 0) > (got[0]?.atMs ?? 0));
  await source.stop();
});

test('the source seen as a sensor shares readNow\'s read, keeps latest() current, and throws the sensor\'s error', { timeout: 10_000 }, async () => {
  const { source, state } = setup();
  const sensor = source.asSensor();
  assert.equal(sensor.description, 'counting sensor');
  const [a, b] = await Promise.all([sensor.read(), source.readNow()]);
  assert.equal(state.reads, 1);
  assert.equal(a, b.reading);
  assert.equal(source.latest()?.reading, a);
  state.fail = true;
  await assert.rejects(sensor.read(), /BME280 at 0x76 on i2c-1: no answer/);
  assert.match(source.latest()?.error?.message ?? '', /no answer/);
});

test('unsubscribing stops an outlet; with no outlet left no timer runs', { timeout: 10_000 }, async () => {
  const { clock, source, state } = setup();
  const got: number[] = [];
  const unsubscribe = source.subscribe(minute, (s) => void got.push(s.atMs));
  source.start();
  await clock.advanceAsync(2 * minute);
  unsubscribe();
  assert.equal(clock.pendingTimers, 0);
  await clock.advanceAsync(5 * minute);
  assert.equal(got.length, 2);
  assert.equal(state.reads, 2);
  assert.throws(() => source.subscribe(0, () => {}), /not an interval/);
  await source.stop();
});

test('a sensor read that never answers is a gap at each tick within the bound, the next tick reads afresh, and its late value never appears', { timeout: 10_000 }, async () => {
  const { clock, source, state, log } = setup();
  const got: Sample[] = [];
  source.subscribe(minute, (s) => void got.push(s));
  source.start();
  state.hang = true;
  await clock.advanceAsync(3 * minute);
  assert.deepEqual(got.map((s) => new Date(s.atMs).toISOString().slice(11, 19)), ['12:01:00', '12:02:00', '12:03:00']);
  for (const s of got) {
    assert.equal(s.reading, undefined);
    assert.equal(s.error?.message, 'counting sensor did not answer within 10 s (a stuck I2C bus? check the wiring, then run telepi doctor)');
  }
  assert.equal(state.reads, 3, 'a tick waited on the stuck read instead of starting a fresh one');
  assert.equal(log.lines.filter((l) => l.includes('did not answer')).length, 1, 'the outage was not logged exactly once');

  // readNow (/now) gets its error sample at the bound, not later.
  const now: { sample?: Sample } = {};
  void source.readNow().then((s) => (now.sample = s));
  await clock.advanceAsync(10 * second - 1);
  assert.equal(now.sample, undefined, 'readNow gave up before its bound');
  await clock.advanceAsync(1);
  assert.match((now.sample as Sample | undefined)?.error?.message ?? '', /did not answer within 10 s/);
  const asSensor = source.asSensor().read();
  const rejected = assert.rejects(asSensor, /counting sensor did not answer within 10 s/);
  await clock.advanceAsync(10 * second);
  await rejected;

  // The stuck reads answer at last: too late, dropped.
  for (const answer of state.stuck.splice(0)) answer({ temperature: 99, humidity: 40, pressure: 1000 });
  await settle();
  assert.notEqual(source.latest()?.reading?.temperature, 99, 'a stuck read\'s late value became latest()');
  state.hang = false;
  await clock.advanceAsync(minute);
  assert.equal(got.length, 4);
  assert.equal(got[3]?.reading?.temperature, 20 + state.reads, 'a working read did not flow again');
  assert.ok(!got.some((s) => s.reading?.temperature === 99), 'a stuck read\'s late value was delivered');
  assert.equal(log.lines.filter((l) => l.includes('did not answer')).length, 1);
  assert.equal(log.lines.filter((l) => l.includes('counting sensor answers again, with a reading, after')).length, 1, 'the recovery was not logged once');
  await source.stop();
  assert.equal(clock.pendingTimers, 0, 'a read timer was left behind');
});

test('the read bound is an option, and a read that answers in time leaves no timer', { timeout: 10_000 }, async () => {
  const { clock, source, state } = setup(2 * second);
  state.hang = true;
  let sample: Sample | undefined;
  void source.readNow().then((s) => (sample = s));
  await clock.advanceAsync(2 * second);
  assert.match(sample?.error?.message ?? '', /did not answer within 2 s/);
  state.hang = false;
  assert.equal((await source.readNow()).reading?.temperature, 22);
  assert.equal(clock.pendingTimers, 0);
  assert.throws(() => new ReadingSource({ sensor: source.asSensor(), clock, log: memoryLogger(), readTimeoutMs: 0 }), /readTimeoutMs 0/);
});

test('stop does not wait on a read that hangs: its tick gets a gap at once, and no timer is left', { timeout: 10_000 }, async () => {
  const { clock, source, state } = setup();
  const got: Sample[] = [];
  source.subscribe(minute, (s) => void got.push(s));
  source.start();
  state.hang = true;
  await clock.advanceAsync(30 * second + 1);
  assert.equal(state.reads, 1);
  assert.equal(got.length, 0);
  await source.stop(); // the clock stands still: only giving up on the read lets this end
  assert.equal(got.length, 1, 'the abandoned read\'s tick got no sample');
  assert.match(got[0]?.error?.message ?? '', /^telepi stopped before counting sensor answered$/);
  assert.equal(clock.pendingTimers, 0);
  state.stuck[0]?.({ temperature: 99, humidity: 40, pressure: 1000 });
  await settle();
  assert.equal(got.length, 1);
  assert.equal(source.latest()?.reading, undefined);
});
