// `npm run bench:install`: the install's build step (`install.sh --build-into`: npm ci of the production
// dependencies, the native addons one at a time, esbuild alone, the build) in a memory cgroup of its own,
// with a cold npm cache as on a fresh Pi. Three runs: the old step (`npm ci` of every package, dev ones
// included) for comparison, the new one measured, and the new one again under a hard 250 MB limit without
// swap, which must finish without an OOM kill. Needs root (cgroups); writes bench/install-memory.md.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const LIMIT_MB = 250;
const SAMPLE_MS = 20;
const RUN_TIMEOUT_MS = 20 * 60_000;

/** A memory cgroup (v2, or v1 as on hybrid hosts) made under this process's own. */
interface MemoryGroup {
  procs: string;
  /** Anonymous memory now (what swap or the OOM killer must deal with; page cache is reclaimable), bytes. */
  anonBytes(): number;
  /** The kernel's own high-water mark of everything charged, page cache included, bytes. */
  peakBytes(): number;
  oomKills(): number;
  remove(): void;
}

function memoryGroup(name: string, limitBytes: number | null): MemoryGroup {
  const self = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers') && readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('memory');
  const own = (v2 ? self.find((l) => l.startsWith('0::')) : self.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l)))?.split(':')[2];
  if (own === undefined) throw new Error('no memory cgroup for this process: run it on Linux with the memory controller');
  const dir = path.join(v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory', own, name);
  mkdirSync(dir);
  const read = (file: string): string => readFileSync(path.join(dir, file), 'utf8');
  const stat = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(read('memory.stat'))?.[1] ?? 0);
  if (limitBytes !== null) {
    if (v2) {
      writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
      writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    } else {
      writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
      // Swap counted into the same limit (where swap accounting exists): no escape into swap.
      if (existsSync(path.join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(path.join(dir, 'memory.memsw.limit_in_bytes'), String(limitBytes));
    }
  }
  return {
    procs: path.join(dir, 'cgroup.procs'),
    anonBytes: () => (v2 ? stat('anon') : stat('total_rss')),
    peakBytes: () => Number(read(v2 ? 'memory.peak' : 'memory.max_usage_in_bytes')),
    oomKills: () => Number(/^oom_kill (\d+)$/m.exec(read(v2 ? 'memory.events' : 'memory.oom_control'))?.[1] ?? 0),
    remove: () => rmdirSync(dir),
  };
}

interface Measure {
  name: string;
  code: number | null;
  seconds: number;
  anonPeakMb: number;
  chargedPeakMb: number;
  oomKills: number;
  limitMb: number | null;
}

/** Runs `script` (bash) in a new cgroup from its first instruction on, sampling its memory until it ends. */
async function measure(name: string, script: string, limitMb: number | null, work: string): Promise<Measure> {
  const group = memoryGroup(`telepi-bench-install-${process.pid}-${name.replace(/\W+/g, '-')}`, limitMb === null ? null : limitMb * 1024 * 1024);
  const env = { ...process.env, npm_config_cache: path.join(work, `npm-cache-${name.replace(/\W+/g, '-')}`), npm_config_update_notifier: 'false' };
  let anonPeak = 0;
  const start = performance.now();
  const code = await new Promise<number | null>((resolve, reject) => {
    // The shell moves itself into the group, then becomes the step: nothing runs outside it.
    const child = spawn('bash', ['-c', `echo $$ >'${group.procs}' && exec bash -c "$0"`, script],
      { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    const sampler = setInterval(() => { anonPeak = Math.max(anonPeak, group.anonBytes()); }, SAMPLE_MS);
    const timer = setTimeout(() => process.kill(-(child.pid ?? 0), 'SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (exit) => {
      clearInterval(sampler);
      clearTimeout(timer);
      if (exit !== 0) process.stderr.write(`${name}: exit ${exit}\n${stderr}\n`);
      resolve(exit);
    });
  });
  const result = {
    name, code, seconds: (performance.now() - start) / 1000, limitMb, oomKills: group.oomKills(),
    anonPeakMb: anonPeak / 2 ** 20, chargedPeakMb: group.peakBytes() / 2 ** 20,
  };
  group.remove();
  return result;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:install makes cgroups: run it as root');
  const work = mkdtempSync(path.join(os.tmpdir(), 'telepi-bench-install-'));
  try {
    // The last commit, as a clone has it: other work in progress in the checkout cannot break the build.
    const src = path.join(work, 'src');
    mkdirSync(src);
    execFileSync('bash', ['-c', `git -C '${REPO}' archive HEAD | tar -C '${src}' -xf -`]);
    const commit = execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).trim();
    const runs = [
      await measure('before: npm ci (every package, dev ones too)', `cp -a '${src}' '${work}/old' && cd '${work}/old' && npm ci --no-audit --no-fund`, null, work),
      await measure('install.sh --build-into', `bash '${src}/install.sh' --build-into '${work}/new'`, null, work),
      await measure(`install.sh --build-into, limit ${LIMIT_MB} MB`, `bash '${src}/install.sh' --build-into '${work}/limited'`, LIMIT_MB, work),
    ];
    const lines = [
      `Measured ${new Date().toISOString()} at commit ${commit} with Node ${process.version} on ${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} cores), ` +
        `by \`npm run bench:install\`; a cold npm cache each run, memory sampled every ${SAMPLE_MS} ms.`, '',
      '| step | result | time | peak anonymous memory | peak charged (with page cache) | OOM kills |',
      '|---|---|---:|---:|---:|---:|',
      ...runs.map((r) => `| ${r.name} | ${r.code === 0 ? 'done' : `exit ${r.code ?? 'timeout'}`} | ${r.seconds.toFixed(0)} s | ` +
        `${r.anonPeakMb.toFixed(0)} MB | ${r.chargedPeakMb.toFixed(0)} MB${r.limitMb === null ? '' : ` (limit ${r.limitMb})`} | ${r.oomKills} |`),
    ];
    const table = lines.join('\n');
    console.log(table);
    writeFileSync(path.join(REPO, 'bench/install-memory.md'), `# Install step memory\n\n${table}\n`);
    const limited = runs[2];
    if (limited && (limited.code !== 0 || limited.oomKills > 0)) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
