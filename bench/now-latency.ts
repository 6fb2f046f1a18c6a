// `/now` latency through the appliance: an owner's /now pushed into the emulator, timed to the
// appliance's sendMessage, with the simulated BME280 (a read takes 10 ms, like a forced-mode conversion).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BotApiEmulator } from '../src/emulator/index.js';
import { TOKEN } from './contestants.js';

export interface Latency {
  p50Ms: number;
  p99Ms: number;
}

const OWNER = 1001;
/** What the simulated sensor's read takes (hardware/simulated/climate.ts's default). */
export const SENSOR_MS = 10;

let note = '';

/** Why the last measureNowLatency() returned null, or what it measured. */
export function nowLatencyNote(): string {
  return note;
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Pushes one message at a time with `send` and times it to the next sendMessage the emulator records. */
export async function sampleReplyLatency(emu: BotApiEmulator, send: () => void, samples: number, warmUp: number): Promise<Latency> {
  const latencies: number[] = [];
  for (let i = 0; i < warmUp + samples; i++) {
    const before = emu.callsOf('sendMessage').length;
    const pushedAt = performance.now();
    send();
    const calls = await emu.waitForCalls('sendMessage', before + 1, 10_000);
    if (i >= warmUp) latencies.push((calls[before] as { atMs: number }).atMs - pushedAt);
    await sleep(5); // one /now at a time, as a person would send them
  }
  latencies.sort((a, b) => a - b);
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

/** p50/p99 of /now through the appliance with simulated hardware, or null (see nowLatencyNote()). */
export async function measureNowLatency(samples = 300, warmUp = 20): Promise<Latency | null> {
  let modules;
  try {
    modules = await Promise.all([
      import('../src/app/appliance.js'), import('../src/app/config.js'), import('../hardware/index.js'), import('../src/log.js'),
    ]);
  } catch (error) {
    note = `the appliance could not be loaded (${String(error)}): no /now figure`;
    return null;
  }
  const [{ Appliance }, { loadConfig }, { createHardware }, { silentLogger }] = modules;
  const emu = await BotApiEmulator.start({ keepFileBytes: 0 });
  const stateDir = await mkdtemp(join(tmpdir(), 'telepi-bench-'));
  try {
    const config = loadConfig({
      TELEGRAM_BOT_TOKEN: TOKEN,
      TELEGRAM_API_ROOT: emu.apiRoot,
      TELEPI_OWNERS: String(OWNER),
      TELEPI_HARDWARE: 'simulated',
      TELEPI_STATE_DIR: stateDir,
    });
    const hardware = await createHardware({ kind: 'simulated' });
    const app = await Appliance.start({ config, hardware, log: silentLogger });
    try {
      const latency = await sampleReplyLatency(emu, () => emu.pushText('/now', { chatId: OWNER, userId: OWNER }), samples, warmUp);
      note = `appliance in the bench's process, simulated BME280 (${SENSOR_MS} ms a read), ${samples} sequential /now`;
      return latency;
    } finally {
      await app.stop();
    }
  } finally {
    await emu.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}
