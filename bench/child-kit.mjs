// What every contestant's child process shares: its settings from the environment, answers to the
// bench's IPC commands, and the 20 MB upload probe. Kept tiny so it adds nothing to start-up.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { clearInterval, setInterval } from 'node:timers';

/** The child's settings, set by the parent (bench/contestants.ts). */
export const settings = {
  apiRoot: process.env.BENCH_API_ROOT ?? '',
  token: process.env.BENCH_TOKEN ?? '',
  mode: process.env.BENCH_MODE ?? 'echo',
  /** Listener timeout in seconds for the expiry run (telepi only). */
  timeoutSeconds: Number(process.env.BENCH_TIMEOUT_S ?? '0'),
};

// An orderly exit on the parent's SIGTERM, so that --cpu-prof can write its profile.
process.once('SIGTERM', () => process.exit(0));

/** Answers the parent's commands `{ id, cmd, args }` with `{ id, ok, result | error }`. */
export function serve(handlers) {
  process.on('message', async (message) => {
    const { id, cmd, args } = message;
    try {
      const handler = handlers[cmd] ?? builtins[cmd];
      if (handler === undefined) throw new Error(`unknown command ${cmd}`);
      process.send({ id, ok: true, result: await handler(args) });
    } catch (error) {
      process.send({ id, ok: false, error: String(error?.stack ?? error) });
    }
  });
}

const builtins = {
  memory: () => memoryAfterGc(),
};

/** RSS and heap after full collections (when run with --expose-gc), in bytes. */
export function memoryAfterGc() {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapTotal: usage.heapTotal, heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers };
}

/** A stream of `bytes` pseudo-random bytes in fresh 64 KiB chunks, as a file read would give them. */
export function payloadStream(bytes) {
  let left = bytes;
  let seed = 0x9e3779b9;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const chunk = Buffer.allocUnsafe(Math.min(65536, left));
      for (let i = 0; i < chunk.length; i += 4) {
        seed = (seed * 1664525 + 1013904223) >>> 0;
        chunk.writeUInt32LE(seed, i);
      }
      left -= chunk.length;
      this.push(chunk);
    },
  });
}

/** Runs `send` and reports the RSS before it and the highest RSS seen while it ran, in bytes. */
export async function measureUpload(send) {
  const before = memoryAfterGc().rss;
  const hwmBefore = process.resourceUsage().maxRSS * 1024;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 2);
  const started = performance.now();
  await send();
  const ms = performance.now() - started;
  clearInterval(sampler);
  const hwmAfter = process.resourceUsage().maxRSS * 1024;
  // A peak between two samples still shows in the high-water mark, if it rose during the upload.
  if (hwmAfter > hwmBefore) peak = Math.max(peak, hwmAfter);
  return { rssBefore: before, rssPeak: peak, ms };
}
