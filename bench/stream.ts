// Benchmark: the stream server with 10 viewers, one of them stalled, fed by the real MjpegProcessSource
// over the fake rpicam-vid (or a SimulatedStream). Viewers run in a child process, so the CPU figure
// is the server's (and the frame splitter's) alone. Run: node --import tsx bench/stream.ts
import { fork } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SimulatedStream } from '../hardware/simulated/stream.js';
import { StreamServer } from '../hardware/stream-server.js';
import { MjpegProcessSource } from '../hardware/stream.js';
import type { FrameSource } from '../hardware/types.js';
import { fakeCameraTools } from '../test/fakes/camera-tools.js';

export interface StreamBenchOptions {
  /** Default 10 000 ms. */
  durationMs?: number;
  /** Viewers in all, the stalled one included. Default 10. */
  clients?: number;
  /** Default 30 fps. */
  framerate?: number;
  /** Pads the fake camera's frames to this size (a 1280x720 q70 frame is about 100 KB). Default 100 000. */
  frameBytes?: number;
  /** 'fake-rpicam-vid' (default): MjpegProcessSource over test/fakes/bin/rpicam-vid; 'simulated': SimulatedStream. */
  source?: 'fake-rpicam-vid' | 'simulated';
}

export interface StreamBenchResult {
  source: string;
  durationMs: number;
  framesFromSource: number;
  healthyFramesMin: number;
  healthyFramesAvg: number;
  stalledFramesSent: number;
  stalledFramesDropped: number;
  /** Peak RSS over the run minus RSS after warm-up. */
  rssGrowthMb: number;
  /** The server process's CPU time per wall-clock second. */
  serverCpuMsPerSecond: number;
}

const TOKEN = 'bench-token-0123456789abcdef';
const BOUNDARY = Buffer.from('--telepiframe\r\n');

/** Child-process side: healthy viewers count frame boundaries; one viewer connects and never reads. */
function runViewers(port: number, healthy: number, durationMs: number): void {
  const counts = new Array<number>(healthy).fill(0);
  const stalled = connect(port, '127.0.0.1', () => {
    stalled.write(`GET /stream?token=${TOKEN} HTTP/1.1\r\nHost: bench\r\n\r\n`);
    stalled.pause();
  });
  for (let i = 0; i < healthy; i++) {
    request({ port, host: '127.0.0.1', path: `/stream?token=${TOKEN}`, agent: false }, (res) => {
      let carry: Buffer = Buffer.alloc(0); // a boundary may straddle two chunks
      res.on('data', (chunk: Buffer) => {
        const text = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
        for (let at = text.indexOf(BOUNDARY); at !== -1; at = text.indexOf(BOUNDARY, at + BOUNDARY.length)) counts[i]! += 1;
        carry = text.subarray(Math.max(0, text.length - BOUNDARY.length + 1));
      });
    }).end();
  }
  setTimeout(() => {
    process.send?.(counts, () => process.exit(0));
  }, durationMs);
}

function makeSource(kind: 'fake-rpicam-vid' | 'simulated', framerate: number, frameBytes: number) {
  if (kind === 'simulated') return { source: new SimulatedStream({ framerate }) as FrameSource, cleanup: () => {} };
  const fakes = fakeCameraTools(['rpicam-vid'], { fps: framerate, frameBytes });
  return { source: new MjpegProcessSource({ env: fakes.env, framerate }) as FrameSource, cleanup: () => fakes.cleanup() };
}

export async function runStreamBench(options: StreamBenchOptions = {}): Promise<StreamBenchResult> {
  const durationMs = options.durationMs ?? 10_000;
  const clients = options.clients ?? 10;
  const framerate = options.framerate ?? 30;
  const kind = options.source ?? 'fake-rpicam-vid';
  const { source, cleanup } = makeSource(kind, framerate, options.frameBytes ?? 100_000);
  const server = new StreamServer({ source, maxClients: clients });
  try {
    const port = await server.listen(0, '127.0.0.1');
    server.setAccess({ token: TOKEN, expiresAtMs: null });
    let framesFromSource = 0;
    source.onFrame(() => (framesFromSource += 1));
    await source.start();
    await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up: first frames, JIT
    const viewers = fork(fileURLToPath(import.meta.url), ['--viewers', String(port), String(clients - 1), String(durationMs)],
      { execArgv: ['--import', 'tsx'] });
    const viewersReady = new Promise<number[]>((resolve, reject) => {
      viewers.once('message', (counts) => resolve(counts as number[]));
      viewers.once('exit', (code) => reject(new Error(`the viewer process exited (code ${code}) before reporting`)));
    });
    while (server.clientCount < clients) await new Promise((resolve) => setTimeout(resolve, 20));
    const rssBase = process.memoryUsage().rss;
    let rssPeak = rssBase;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 200);
    const cpuBefore = process.cpuUsage();
    const framesBefore = framesFromSource;
    const started = performance.now();
    const counts = await viewersReady;
    const elapsedMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    clearInterval(sampler);
    const stalled = server.clientStats().reduce((a, b) => (a.framesSent <= b.framesSent ? a : b));
    return {
      source: kind,
      durationMs: Math.round(elapsedMs),
      framesFromSource: framesFromSource - framesBefore,
      healthyFramesMin: Math.min(...counts),
      healthyFramesAvg: Math.round(counts.reduce((a, b) => a + b, 0) / counts.length),
      stalledFramesSent: stalled.framesSent,
      stalledFramesDropped: stalled.framesDropped,
      rssGrowthMb: Math.round(((rssPeak - rssBase) / 1048576) * 10) / 10,
      serverCpuMsPerSecond: Math.round((cpu.user + cpu.system) / 1000 / (elapsedMs / 1000)),
    };
  } finally {
    await server.close();
    await source.stop();
    cleanup();
  }
}

function printTable(r: StreamBenchResult): void {
  const rows: Array<[string, string]> = [
    ['source', r.source],
    ['duration', `${(r.durationMs / 1000).toFixed(1)} s`],
    ['frames from the source', String(r.framesFromSource)],
    ['frames per healthy viewer (min / avg)', `${r.healthyFramesMin} / ${r.healthyFramesAvg}`],
    ['frames written to the stalled viewer', `${r.stalledFramesSent} (${r.stalledFramesDropped} dropped)`],
    ['RSS growth (peak - start)', `${r.rssGrowthMb} MB`],
    ['server CPU', `${r.serverCpuMsPerSecond} ms/s (${(r.serverCpuMsPerSecond / 10).toFixed(1)} %)`],
  ];
  for (const [name, value] of rows) console.log(`${name.padEnd(40)} ${value}`);
}

if (process.argv[2] === '--viewers') {
  runViewers(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const source = process.argv.includes('--simulated') ? 'simulated' : 'fake-rpicam-vid';
  printTable(await runStreamBench({ source }));
}
