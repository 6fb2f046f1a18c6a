// The cost of at-least-once delivery: telepi's DelegatorBot + ChatHandler path (updates confirmed only
// once handled), the same with the durable inbox, and the bare loop that keeps per-chat order (it
// confirms updates as soon as they are fetched), side by side on the same emulator and updates; then
// the inbox alone: CPU per update and the SD card's write budget (bytes and fsyncs per update).
// Run: node --import tsx bench/delivery.ts   (about 2 minutes; prints a Markdown table)
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inbox } from '../src/inbox.js';
import { silentLogger } from '../src/log.js';
import { bundleTelepi } from './build-telepi.js';
import { contestants, type Contestant } from './contestants.js';
import { runThroughput, type ThroughputRun } from './throughput.js';
import { makeWorkload, type Workload } from './workload.js';

const UPDATES = 20_000;
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3'));
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

const entry = await bundleTelepi('telepi-bench');
// BENCH_BASELINE=<git ref>: that commit's library as one more contestant (the cost of a change, same run).
const baselineRef = process.env.BENCH_BASELINE;
const baselineEntry = baselineRef === undefined || baselineRef === '' ? undefined : await bundleTelepi('telepi-baseline', baselineRef);

const all = contestants(entry);
const telepi = all.find((c) => c.id === 'telepi') as Contestant;
const bare = all.find((c) => c.id === 'bare') as Contestant;
interface Entry { label: string; contestant: () => Promise<{ contestant: Contestant; cleanup: () => Promise<void> }> }
const entries: Entry[] = [
  { label: 'bare loop (per-chat order, confirms at fetch)', contestant: async () => ({ contestant: bare, cleanup: async () => {} }) },
  { label: 'telepi, at least once', contestant: async () => ({ contestant: telepi, cleanup: async () => {} }) },
  ...(baselineEntry === undefined ? [] : [{
    label: `telepi at ${baselineRef}`,
    contestant: async () => ({ contestant: { ...telepi, env: { ...telepi.env, BENCH_TELEPI: baselineEntry as string } }, cleanup: async () => {} }),
  }]),
  {
    label: 'telepi, at least once + inbox',
    contestant: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'telepi-bench-inbox-'));
      return { contestant: { ...telepi, env: { ...telepi.env, BENCH_INBOX: dir } }, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
];

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

const loadBefore = loadavg().map((n) => n.toFixed(1)).join(' ');
// BENCH_CHATS=1 (or 1000) runs only that workload.
const workloads: Workload[] = [await makeWorkload('1 chat', UPDATES, 1), await makeWorkload('1,000 chats', UPDATES, 1000)]
  .filter((w) => process.env.BENCH_CHATS === undefined || String(w.chats) === process.env.BENCH_CHATS);
const results = new Map<string, ThroughputRun[]>();
for (let round = 0; round < rounds; round++) {
  const order = entries.map((_, i) => entries[(i + round) % entries.length] as Entry);
  for (const workload of workloads) {
    for (const entry of order) {
      const { contestant, cleanup } = await entry.contestant();
      const run = await runThroughput(contestant, workload).finally(cleanup);
      const key = `${entry.label}|${workload.name}`;
      results.set(key, [...(results.get(key) ?? []), run]);
      progress(`round ${round + 1}/${rounds}, ${workload.name}, ${entry.label}: ${run.updatesPerSecond === null ? `stalled after ${run.replies}` : `${Math.round(run.updatesPerSecond)}/s`}, ${run.cpuUsPerUpdate?.toFixed(0) ?? '-'} µs CPU/update, order ${run.orderKept ? 'kept' : 'NOT kept'}, emulator ${run.emulatorCpuUsPerUpdate.toFixed(0)} µs/update (${(run.emulatorCpuShare * 100).toFixed(0)} % of a core)`);
    }
  }
}

const lines: string[] = [];
lines.push(`Measured ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} with Node ${process.versions.node} on ${cpus()[0]?.model.trim() ?? '?'} (${cpus().length} cores), ${UPDATES.toLocaleString('en')} updates per run, medians of ${rounds} rounds, load ${loadBefore}.`, '');
lines.push('| per bot process | 1 chat: updates/s | CPU µs/update | 1,000 chats: updates/s | CPU µs/update | order kept |', '|---|---:|---:|---:|---:|:-:|');
const figure = (label: string, workload: string) => {
  const runs = results.get(`${label}|${workload}`) ?? [];
  const base = results.get(`${entries[0]?.label}|${workload}`) ?? [];
  const rate = median(runs.map((r) => r.updatesPerSecond ?? 0));
  const cpu = median(runs.map((r) => r.cpuUsPerUpdate ?? Number.NaN));
  const baseRate = median(base.map((r) => r.updatesPerSecond ?? 0));
  const baseCpu = median(base.map((r) => r.cpuUsPerUpdate ?? Number.NaN));
  return [`${Math.round(rate).toLocaleString('en')} (${(rate / baseRate).toFixed(2)}×)`, `${cpu.toFixed(0)} (${(cpu / baseCpu).toFixed(2)}×)`, runs.every((r) => r.orderKept)];
};
for (const entry of entries) {
  const [oneRate, oneCpu, oneOrder] = figure(entry.label, '1 chat');
  const [manyRate, manyCpu, manyOrder] = figure(entry.label, '1,000 chats');
  lines.push(`| ${entry.label} | ${oneRate} | ${oneCpu} | ${manyRate} | ${manyCpu} | ${oneOrder && manyOrder ? '✓' : '✗'} |`);
}

// The inbox alone, on this machine's temp folder: batches of 100 (a busy bot) and of 1 (a quiet one).
lines.push('', '| inbox alone | CPU per update | wall per update | bytes written per update | fsyncs per update |', '|---|---:|---:|---:|---:|');
const sample = workloads[1]?.updates ?? [];
for (const batch of [100, 1]) {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-inbox-bench-'));
  const inbox = await Inbox.open(dir, silentLogger);
  const count = batch === 1 ? 500 : 10_000;
  const startWritten = { ...inbox.written };
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let first = 0; first < count; first += batch) {
    const ids: number[] = [];
    for (let i = first; i < first + batch; i++) {
      inbox.stage({ ...sample[i % sample.length], update_id: i + 1 } as Parameters<Inbox['stage']>[0]);
      ids.push(i + 1);
    }
    await inbox.commit(first + batch + 1);
    for (const id of ids) inbox.finished(id);
  }
  await inbox.close();
  const wallUs = ((performance.now() - started) * 1000) / count;
  const used = process.cpuUsage(cpu);
  await rm(dir, { recursive: true, force: true });
  lines.push(`| batches of ${batch} | ${((used.user + used.system) / count).toFixed(1)} µs | ${wallUs.toFixed(1)} µs | ${((inbox.written.bytes - startWritten.bytes) / count).toFixed(0)} B | ${((inbox.written.fsyncs - startWritten.fsyncs) / count).toFixed(3)} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
