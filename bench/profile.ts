// Profiles one contestant's throughput run (CPU profile of the bot process) and prints the functions
// with the most self time. Run: node --import tsx bench/profile.ts [telepi|bare] [chats]
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleTelepi } from './build-telepi.js';
import { contestants, type Contestant } from './contestants.js';
import { runThroughput } from './throughput.js';
import { makeWorkload } from './workload.js';

const id = process.argv[2] ?? 'telepi';
const chats = Number(process.argv[3] ?? '1000');
const contestant = contestants(process.env.PROFILE_ENTRY ?? (await bundleTelepi('telepi-bench'))).find((c) => c.id === id) as Contestant;
const dir = join('/tmp', `telepi-prof-${id}`);
await rm(dir, { recursive: true, force: true });
await mkdir(dir, { recursive: true });
const env = process.env.BENCH_INBOX ? { ...contestant.env, BENCH_INBOX: process.env.BENCH_INBOX } : contestant.env;
const run = await runThroughput({ ...contestant, ...(env ? { env } : {}) }, await makeWorkload('w', 20_000, chats), { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
process.stdout.write(`${run.updatesPerSecond?.toFixed(0)}/s ${run.cpuUsPerUpdate?.toFixed(1)} µs\n`);
const file = (await readdir(dir))[0] as string;
interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const self = new Map<number, number>();
profile.samples.forEach((node, i) => self.set(node, (self.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const byName = new Map<string, number>();
let total = 0;
for (const node of profile.nodes) {
  const t = self.get(node.id) ?? 0;
  if (node.callFrame.functionName === '(idle)') continue;
  total += t;
  const key = `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.replace(/.*node_modules\//, '').replace(/^file:\/\/.*\//, '')}:${node.callFrame.lineNumber}`;
  byName.set(key, (byName.get(key) ?? 0) + t);
}
const top = [...byName].filter(([n]) => process.env.FILTER === undefined || n.includes(process.env.FILTER)).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 45));
for (const [name, t] of top) process.stdout.write(`${((t / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
const byFile = new Map<string, number>();
for (const node of profile.nodes) {
  const t = self.get(node.id) ?? 0;
  if (node.callFrame.functionName === '(idle)') continue;
  const url = node.callFrame.url;
  const key = url.includes('telepi-bench') ? 'telepi' : url.includes('undici') ? 'undici' : url.startsWith('node:') ? url.split('/')[1] ?? url : url === '' ? node.callFrame.functionName : url.replace(/.*\//, '');
  byFile.set(key, (byFile.get(key) ?? 0) + t);
}
process.stdout.write('\nby file (µs per update):\n');
for (const [name, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 20)) process.stdout.write(`${(t / 20_000).toFixed(1).padStart(6)}  ${name}\n`);
