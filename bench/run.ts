// `npm run bench`: telepi against grammY, grammY + runner, telegraf and a bare loop on the same
// loopback emulator and the same updates, then telepi's own memory and latency figures and the
// MJPEG relay. Prints a Markdown table and writes it to bench/RESULTS.md.
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildTelepi } from './build-telepi.js';
import { contestants, type Contestant } from './contestants.js';
import { runExpiry, runUpload } from './memory.js';
import { renderHistory, runHistoryBench } from './history.js';
import { renderHostileHttp, runHostileHttpBench } from './hostile-http.js';
import { renderMqtt, runMqttBench } from './mqtt.js';
import { measureNowLatency, nowLatencyNote } from './now-latency.js';
import { renderMarkdown, type Results } from './report.js';
import { runStreamBenchApart } from './stream-child.js';
import { runThroughput, type ThroughputRun } from './throughput.js';
import { makeWorkload } from './workload.js';

const UPDATES = 20_000;
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3'));
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const load = (): string => loadavg().map((n) => n.toFixed(1)).join(' ');
const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

async function attempt<T>(what: string, run: () => Promise<T>): Promise<T | Error> {
  try {
    return await run();
  } catch (error) {
    progress(`${what} failed: ${String(error)}`);
    return asError(error);
  }
}

// The previous runs' emulators are garbage: collect it between runs, so the next run's emulator CPU is its own.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const startedAt = performance.now();
const loadBefore = load();
const library = await buildTelepi();
progress(library.note);
const all = contestants(library.entry);
const byId = (id: Contestant['id']): Contestant => all.find((c) => c.id === id) as Contestant;
const workloads = [await makeWorkload('1 chat', UPDATES, 1), await makeWorkload('1,000 chats', UPDATES, 1000)];

const runs: Results['runs'] = new Map(all.map((c) => [c.id, new Map(workloads.map((w) => [w.name, [] as ThroughputRun[]]))]));
for (let round = 0; round < rounds; round++) {
  // Alternated: A B C D E, then B C D E A, …, so no contestant always follows the same one.
  const order = all.map((_, i) => all[(i + round) % all.length] as Contestant);
  for (const workload of workloads) {
    for (const contestant of order) {
      collectGarbage();
      const run = await runThroughput(contestant, workload);
      runs.get(contestant.id)?.get(workload.name)?.push(run);
      const rate = run.updatesPerSecond === null ? `stalled after ${run.replies} replies` : `${Math.round(run.updatesPerSecond)}/s`;
      progress(`round ${round + 1}/${rounds}, ${workload.name}, ${contestant.name}: ${rate}, ${run.cpuUsPerUpdate?.toFixed(0) ?? '-'} µs CPU/update, start-up ${run.startupMs.toFixed(0)} ms`);
    }
  }
}

const upload: Results['upload'] = new Map();
for (const id of ['telepi', 'grammy'] as const) {
  upload.set(id, await attempt(`upload (${id})`, () => runUpload(byId(id))));
  progress(`20 MB upload, ${id}: done`);
}
const expiry = await attempt('expiry', () => runExpiry(byId('telepi')));
progress('10,000 chats timed out: done');
const now = await attempt('/now latency', async () => ({ latency: await measureNowLatency(), note: nowLatencyNote() }));
progress('/now latency: done');
// telepi run with MQTT off and on (about 25 s), and the cost of one published reading.
const mqtt = await attempt('MQTT', () => runMqttBench());
progress('MQTT: done');
// Last, as the brief asks: about 11 s with its own warm-up.
// History appends and queries, then /chart through telepi run (about 45 s).
const history = await attempt('history', runHistoryBench);
progress('history and /chart: done');
const stream = await attempt('stream', runStreamBenchApart);
progress('MJPEG relay: done');
// The viewer under a 60 s pipelined flood and 1,000 idle connections (about 2 min).
const hostile = await attempt('hostile HTTP', () => runHostileHttpBench());
progress('hostile HTTP: done');

const markdown = renderMarkdown({
  meta: {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.versions.node,
    cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus().length,
    loadBefore,
    loadAfter: load(),
    build: library.note,
    rounds,
    durationS: (performance.now() - startedAt) / 1000,
  },
  contestants: all,
  workloads: { oneChat: workloads[0]?.name ?? '', manyChats: workloads[1]?.name ?? '', updates: UPDATES },
  runs, upload, expiry, now, stream,
});
process.stdout.write(`${markdown}\n${renderMqtt(mqtt)}\n${renderHistory(history)}\n${renderHostileHttp(hostile)}`);
await writeFile(new URL('./RESULTS.md', import.meta.url), `# telepi benchmark results\n\n${markdown}\n${renderMqtt(mqtt)}\n${renderHistory(history)}\n${renderHostileHttp(hostile)}`);
