import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SimulatedClimateSensor } from '../hardware/simulated/climate.js';

const START = Date.UTC(2025, 5, 1, 0, 0, 0);

/** Reads `count` times, the clock stepping `stepMs` between reads. */
async function readings(options: { seed?: number }, count: number, stepMs: number) {
  let clock = START;
  const sensor = new SimulatedClimateSensor({ ...options, latencyMs: 0, now: () => clock });
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(await sensor.read());
    clock += stepMs;
  }
  return out;
}

describe('SimulatedClimateSensor', () => {
  test('the same seed and clock give the same readings; another seed does not', async () => {
    const a = await readings({ seed: 7 }, 50, 60_000);
    assert.deepEqual(await readings({ seed: 7 }, 50, 60_000), a);
    assert.notDeepEqual(await readings({ seed: 8 }, 50, 60_000), a);
  });

  test('stays indoors for two weeks: 19–23 °C, 40–55 %RH, about 1013 hPa', async () => {
    const all = await readings({ seed: 3 }, 14 * 24 * 4, 15 * 60_000);
    for (const r of all) {
      assert.ok(r.temperature >= 19 && r.temperature <= 23, `${r.temperature} °C`);
      assert.ok(r.humidity !== null && r.humidity >= 40 && r.humidity <= 55, `${r.humidity} %RH`);
      assert.ok(r.pressure >= 1005 && r.pressure <= 1021, `${r.pressure} hPa`);
    }
    const temperatures = all.map((r) => r.temperature);
    assert.ok(Math.max(...temperatures) - Math.min(...temperatures) > 3, 'the day shows in the temperature');
  });

  test('takes its latency, and fails when told to', async () => {
    let broken = false;
    const sensor = new SimulatedClimateSensor({ latencyMs: 30, fail: () => (broken ? new Error('loose wire') : null) });
    const started = performance.now();
    await sensor.read();
    assert.ok(performance.now() - started >= 25);
    broken = true;
    await assert.rejects(sensor.read(), /loose wire/);
    await sensor.close();
    await assert.rejects(sensor.read(), /closed/);
  });
});
