import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { formatValue, parseRule } from '../src/app/alert-rule.js';
import { AlertService } from '../src/app/alerts.js';
import type { Sample } from '../src/app/readings.js';
import { memoryLogger } from '../src/log.js';
import { ask, applianceRig, OWNER, raw } from './appliance-support.js';
import { settle } from './fakes/clock.js';

const minute = 60_000;
const t0 = Date.UTC(2025, 0, 1, 3, 0);
const CHAT = 42;

async function setup(t: TestContext, dir?: string) {
  const stateDir = dir ?? (await mkdtemp(path.join(tmpdir(), 'telepi-alerts-')));
  if (dir === undefined) t.after(() => rm(stateDir, { recursive: true, force: true }));
  const sent: Array<{ chatId: number; text: string }> = [];
  const log = memoryLogger();
  const alerts = await AlertService.open({ stateDir, log, send: async (chatId, text) => void sent.push({ chatId, text }), utcOffsetMs: () => 0 });
  /** Feeds one reading a minute, from minute `from`, with these temperatures. */
  const feed = async (from: number, temperatures: number[]) => {
    for (const [i, temperature] of temperatures.entries()) {
      await alerts.judge({ atMs: t0 + (from + i) * minute, reading: { temperature, humidity: 50, pressure: 1000 } });
    }
  };
  return { alerts, sent, log, feed, stateDir };
}

const reading = (temperature: number, humidity: number | null = 50): () => Promise<Sample> => async () => ({ atMs: t0, reading: { temperature, humidity, pressure: 1000 } });

test('an alert fires once on crossing, stays quiet while the value hovers, and says once when it is back', { timeout: 10_000 }, async (t) => {
  const { alerts, sent, feed } = await setup(t);
  assert.match(await alerts.command(CHAT, 'temp < 5', reading(7)), /^OK: I will tell you when the temperature below 5\.0°C, and when it is back\. Now 7\.0°C\.$/);
  await feed(0, [6, 5.5, 5.1]);
  assert.equal(sent.length, 0, 'a rule that was clear when set spoke up');
  await feed(3, [4.8]);
  assert.deepEqual(sent.map((s) => s.text), ['❄ 4.8°C: below 5.0°C since 03:03']);
  // Hovering within the 0.5°C band, for half an hour: nothing.
  await feed(4, Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? 5.2 : 4.9)));
  assert.equal(sent.length, 1, `chatter: ${sent.map((s) => s.text).join(' | ')}`);
  await feed(34, [5.6, 5.8]);
  assert.deepEqual(sent.map((s) => s.text).slice(1), ['✅ 5.6°C: temperature back above 5.0°C since 03:34']);
  assert.ok(sent.every((s) => s.chatId === CHAT));
});

test('a rule already true when set fires with the next reading; two changes within 10 minutes say nothing more', { timeout: 10_000 }, async (t) => {
  const { alerts, sent, feed } = await setup(t);
  await alerts.command(CHAT, 'h > 65', reading(20));
  await alerts.judge({ atMs: t0, reading: { temperature: 20, humidity: 70, pressure: 1000 } });
  assert.deepEqual(sent.map((s) => s.text), ['💧 70.0%: above 65.0% since 03:00']);
  await alerts.command(CHAT, 't > 30', reading(20));
  await feed(1, [31, 20, 31, 20]);
  // 31 at 03:01 fires; back at 03:02 and up again at 03:03 are within the rule's 10 minutes; back at 03:04 waits for 03:11.
  assert.deepEqual(sent.map((s) => s.text).slice(1), ['🔥 31.0°C: above 30.0°C since 03:01']);
  await feed(5, [20, 20, 20, 20, 20, 20, 20]);
  // The humidity rule, fed 50% since 03:01, says it is back once its own 10 minutes are up (03:10).
  assert.deepEqual(sent.map((s) => s.text).slice(2), ['✅ 50.0%: humidity back below 65.0% since 03:01', '✅ 20.0°C: temperature back below 30.0°C since 03:04']);
});

test('a failed read changes no alert', { timeout: 10_000 }, async (t) => {
  const { alerts, sent } = await setup(t);
  await alerts.command(CHAT, 'temp < 5', reading(7));
  await alerts.judge({ atMs: t0, error: new Error('no answer') });
  assert.deepEqual(sent, []);
  assert.equal(alerts.list(CHAT)[0]?.active, null);
});

test('absurd or impossible alerts get a clear refusal and change nothing', { timeout: 10_000 }, async (t) => {
  const { alerts, stateDir } = await setup(t);
  const refusals: Array<[string, RegExp]> = [
    ['temp < 1e9', /is not an alert\. Send \/alert temp < 5/],
    ['temp < NaN', /is not an alert/],
    ['temp < 5.25', /is not an alert/],
    ['temp << 5', /is not an alert/],
    ['wind > 5', /"wind" is not something I measure/],
    ['temp < 200', /200\.0°C is outside what the sensor measures \(-40\.0°C to 85\.0°C\)/],
    ['pressure < 5000', /outside what the sensor measures/],
    ['humidity > -3', /outside what the sensor measures/],
    ['off 3', /No alerts to remove/],
  ];
  for (const [args, expected] of refusals) assert.match(await alerts.command(CHAT, args, reading(20)), expected, args);
  assert.match(await alerts.command(CHAT, 'humidity > 65', reading(20, null)), /no humidity \(a BMP280/);
  assert.deepEqual(readdirSync(stateDir), [], 'a refused alert was saved');
  assert.deepEqual(parseRule('p<990hPa'), { quantity: 'pressure', op: '<', threshold: 990 });
  assert.deepEqual(parseRule(' T > -2,5 °C '), { quantity: 'temperature', op: '>', threshold: -2.5 });
  assert.equal(formatValue('pressure', 1013.25), '1,013.3hPa');
});

test('alerts are listed, removed one by one or all, and survive a restart without speaking again', { timeout: 10_000 }, async (t) => {
  const first = await setup(t);
  await first.alerts.command(CHAT, 'temp < 5', reading(3));
  await first.alerts.command(CHAT, 'pressure < 990', reading(3));
  await first.alerts.command(CHAT, 'humidity > 80', reading(3));
  assert.match(await first.alerts.command(CHAT, 'temp < 5', reading(3)), /already/);
  await first.feed(0, [3]);
  assert.equal(first.sent.length, 1);
  assert.equal(await first.alerts.command(CHAT, 'off 2', reading(3)), 'Removed: pressure below 990.0hPa.');
  assert.match(await first.alerts.command(CHAT, 'off 9', reading(3)), /There is no alert 9: this chat has 2/);
  assert.equal(await first.alerts.command(CHAT, '', reading(3)), [
    '1. temperature below 5.0°C (now below, since 03:00)',
    '2. humidity above 80.0% (not now)',
    '/alert off <number> removes one, /alert off all of them.',
  ].join('\n'));

  const second = await setup(t, first.stateDir);
  assert.equal(second.alerts.list(CHAT).length, 2);
  await second.feed(1, [3, 3]);
  assert.deepEqual(second.sent, [], 'an alert already announced was announced again after a restart');
  assert.equal(await second.alerts.command(CHAT, 'off', reading(3)), 'All 2 alerts removed.');
  assert.match(await second.alerts.command(CHAT, '', reading(3)), /^No alerts in this chat/);
  const third = await setup(t, first.stateDir);
  assert.equal(third.alerts.list(CHAT).length, 0);
});

test('a damaged alerts.json keeps its good rules, and one that does not parse is moved aside', { timeout: 10_000 }, async (t) => {
  const { stateDir } = await setup(t);
  const good = { quantity: 'temperature', op: '<', threshold: 5, active: false, announced: false, changedAtMs: t0, sentAtMs: 0 };
  writeFileSync(path.join(stateDir, 'alerts.json'), JSON.stringify({
    version: 1,
    chats: { [CHAT]: [good, { ...good, threshold: 1e9 }, { ...good, quantity: 'wind' }, 'x'], nonsense: [good] },
  }));
  const damaged = await setup(t, stateDir);
  assert.equal(damaged.alerts.list(CHAT).length, 1);
  assert.equal(damaged.log.lines.filter((l) => l.includes('that rule is dropped')).length, 4);

  writeFileSync(path.join(stateDir, 'alerts.json'), '{"version": 1, "chats": {"42": [');
  const torn = await setup(t, stateDir);
  assert.equal(torn.alerts.list(CHAT).length, 0);
  assert.ok(readdirSync(stateDir).some((name) => name.startsWith('alerts.json.corrupt-')));
  assert.ok(torn.log.lines.some((l) => l.includes('is not valid JSON')));
  await torn.alerts.command(CHAT, 'temp > 25', reading(20));
  assert.equal((JSON.parse(readFileSync(path.join(stateDir, 'alerts.json'), 'utf8')) as { chats: Record<string, unknown[]> }).chats[CHAT]?.length, 1);
});

test('through the emulator: an alert set with /alert fires once on crossing, stays quiet while hovering, and says once when back', { timeout: 60_000 }, async (t) => {
  const rig = await applianceRig(t);
  // raw.adcT reads 25.08°C; 1000 raw counts more is about 0.3°C more.
  assert.match(await ask(rig, '/alert temp > 25.5'), /^OK: I will tell you when the temperature above 25\.5°C, and when it is back\. Now 25\.1°C\.$/);
  // 25.55 crosses; 25.40–25.52 hovers around 25.5 for 10 minutes; 24.77 is back (below 25.5 − 0.5).
  const temperatures = [0, 0, 1500, 1200, 1000, 1300, 1100, 1400, 1000, 1200, 1300, 1100, -1000, -1000];
  rig.chip.queueRaw(...temperatures.map((offset) => ({ ...raw, adcT: raw.adcT + offset })));
  const before = rig.emu.sentMessages(OWNER).length;
  for (let i = 0; i < temperatures.length + 1; i++) {
    await rig.wall.advanceAsync(minute);
    for (let k = 0; k < 8; k++) await settle();
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const texts = rig.emu.sentMessages(OWNER).slice(before).map((m) => ('text' in m ? m.text : ''));
  assert.equal(texts.length, 2, `expected one alert and one all-clear: ${texts.join(' | ')}`);
  // "since" is the Pi's local time of the crossing (12:03 and 12:13 UTC on the rig's clock).
  const local = (utcMinute: number) => {
    const at = new Date(Date.UTC(2025, 0, 1, 12, utcMinute));
    return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
  };
  assert.equal(texts[0], `🔥 25.6°C: above 25.5°C since ${local(3)}`);
  assert.equal(texts[1], `✅ 24.8°C: temperature back below 25.5°C since ${local(13)}`);
  assert.equal(JSON.parse(readFileSync(path.join(rig.stateDir, 'alerts.json'), 'utf8')).chats[OWNER].length, 1);
});
