// MQTT's cost: idle RSS of `telepi run` (built dist/, simulated hardware, on the loopback emulator)
// with MQTT off and on (connected to a local Mosquitto), and the cost of publishing one reading —
// the state JSON sent as a retained QoS 1 message and acknowledged by the broker.
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MqttLink } from '../src/app/mqtt/link.js';
import { statePayload } from '../src/app/mqtt/discovery.js';
import { systemClock } from '../src/app/scheduler.js';
import { silentLogger } from '../src/log.js';
import { mosquittoMissing, startBroker, type Broker } from '../test/fakes/mosquitto.js';
import { percentile } from './now-latency.js';
import { startTelepiRun } from './telepi-run.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface MqttBenchResult {
  /** Idle RSS in MB of each run, MQTT off and on. */
  offMb: number[];
  onMb: number[];
  publishes: number;
  cpuUsPerPublish: number;
  ackP50Ms: number;
  ackP99Ms: number;
  payloadBytes: number;
}

/** Runs the whole MQTT bench: `runs` children each way, then `publishes` readings through one link. telepiRoot holds bin/ and a built dist/. */
export async function runMqttBench(runs = 5, publishes = 2000, telepiRoot = root): Promise<MqttBenchResult> {
  const missing = mosquittoMissing();
  if (missing !== false) throw new Error(missing);
  const cleanups: (() => Promise<unknown> | void)[] = [];
  try {
    const broker = await startBroker({ after: (fn) => void cleanups.push(fn as () => Promise<unknown>) });
    const offMb: number[] = [];
    const onMb: number[] = [];
    // Alternated, so neither side always runs on a warmer machine.
    for (let run = 0; run < runs; run++) {
      offMb.push(await idleRssMb(telepiRoot, null));
      onMb.push(await idleRssMb(telepiRoot, broker));
    }
    return { offMb, onMb, publishes, ...(await publishCost(broker, publishes)) };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/** `telepi run` from dist/: the median RSS over 2 s, from 3 s after it started (and, with MQTT, connected and published). */
export async function idleRssMb(telepiRoot: string, broker: Broker | null): Promise<number> {
  const run = await startTelepiRun({
    telepiRoot,
    env: broker === null ? {} : { MQTT_URL: broker.url, MQTT_NODE_ID: 'bench' },
    ready: broker === null ? /telepi started/ : /MQTT: connected/,
  });
  try {
    await sleep(3000);
    return await run.rssMedianMb(2000);
  } finally {
    await run.stop();
  }
}

/** One link, `count` state publishes one after another: this process's CPU per publish, and the ack's latency. */
async function publishCost(broker: Broker, count: number): Promise<Omit<MqttBenchResult, 'offMb' | 'onMb' | 'publishes'>> {
  const link = await MqttLink.open({
    url: broker.url, clientId: 'telepi-bench', will: { topic: 'telepi/bench/availability', payload: 'offline' }, subscriptions: [],
    onConnect: async () => {}, onMessage: () => {}, log: silentLogger, clock: systemClock,
  });
  try {
    const deadline = performance.now() + 10_000;
    while (!link.status.connected) {
      if (performance.now() > deadline) throw new Error('the bench link did not connect');
      await sleep(10);
    }
    const reading = { temperature: 21.43, humidity: 45.21, pressure: 1013.26 };
    const publishOne = async (i: number) => {
      const payload = statePayload({ ...reading, temperature: 20 + (i % 50) / 10 }, Date.now());
      const sentAt = performance.now();
      if (!(await link.publish('telepi/bench/state', payload, { retain: true, qos: 1 }))) throw new Error('a publish was dropped');
      return { ms: performance.now() - sentAt, bytes: Buffer.byteLength(payload) };
    };
    for (let i = 0; i < 200; i++) await publishOne(i); // warm-up
    const cpuBefore = process.cpuUsage();
    const acks: number[] = [];
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const one = await publishOne(i);
      acks.push(one.ms);
      bytes = one.bytes;
    }
    const cpu = process.cpuUsage(cpuBefore);
    acks.sort((a, b) => a - b);
    return { cpuUsPerPublish: (cpu.user + cpu.system) / count, ackP50Ms: percentile(acks, 50), ackP99Ms: percentile(acks, 99), payloadBytes: bytes };
  } finally {
    await link.close(null);
  }
}

/** The Markdown section for RESULTS.md. */
export function renderMqtt(result: MqttBenchResult | Error): string {
  if (result instanceof Error) return `### MQTT\n\nNot measured: ${result.message}\n`;
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  const list = (values: number[]) => values.map((v) => v.toFixed(1)).join(', ');
  const off = median(result.offMb);
  const on = median(result.onMb);
  return [
    '### MQTT (Home Assistant outlet)',
    '',
    '| measure | value |',
    '|---|---|',
    `| idle RSS of \`telepi run\` (median of 2 s of samples, 3 s after start), MQTT off: MQTT_URL unset, mqtt never imported | ${off.toFixed(1)} MB (runs: ${list(result.offMb)}) |`,
    `| idle RSS, MQTT on, connected, discovery and state published | ${on.toFixed(1)} MB (runs: ${list(result.onMb)}), +${(on - off).toFixed(1)} MB |`,
    `| one reading published (${result.payloadBytes} B state JSON, retained, QoS 1), ${result.publishes} in a row | ${result.cpuUsPerPublish.toFixed(0)} µs CPU; ack p50 ${result.ackP50Ms.toFixed(2)} ms, p99 ${result.ackP99Ms.toFixed(2)} ms |`,
    '',
  ].join('\n');
}
