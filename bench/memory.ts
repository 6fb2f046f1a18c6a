// Memory after many short-lived chats, and while uploading a large file from a stream.
import { setTimeout as sleep } from 'node:timers/promises';
import { BotApiEmulator } from '../src/emulator/index.js';
import { start, type Contestant } from './contestants.js';
import { makeWorkload, push } from './workload.js';

interface ChildMemory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
}

interface DelegateStats {
  delegateCount: number;
  listeners: number;
  running: number;
}

export interface ExpiryResult {
  baselineRss: number;
  afterRss: number;
  heapGrowth: number;
  /** Live delegates and attached listeners left after the wave (both should be 0). */
  delegatesLeft: number;
  listenersLeft: number;
}

/** Waits until every delegate of the child has ended (its handlers' listeners timed out). */
async function delegatesEnded(bot: Awaited<ReturnType<typeof start>>, timeoutMs: number): Promise<DelegateStats> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await bot.command<DelegateStats>('delegates');
    if ((stats.delegateCount === 0 && stats.running === 0) || performance.now() > deadline) return stats;
    await sleep(100);
  }
}

/**
 * The child's memory once V8 has given back the heap a burst made it grow: its memory reducer shrinks
 * the heap a few seconds after the burst, so RSS is read once heapTotal is back near heapUsed and
 * two readings a second apart agree.
 */
async function settledMemory(bot: Awaited<ReturnType<typeof start>>, timeoutMs = 20_000): Promise<ChildMemory> {
  const deadline = performance.now() + timeoutMs;
  const shrunk = (m: ChildMemory): boolean => m.heapTotal < m.heapUsed + 4 * 1048576;
  let previous = await bot.command<ChildMemory>('memory');
  for (;;) {
    await sleep(1000);
    const current = await bot.command<ChildMemory>('memory');
    // The pages go back a moment after the heap shrinks: wait for a shrunk heap twice in a row.
    if ((shrunk(previous) && shrunk(current) && Math.abs(current.rss - previous.rss) < 524288) || performance.now() > deadline) return current;
    previous = current;
  }
}

/**
 * telepi with handlers whose listener times out after `timeoutSeconds`: the RSS after `chats`
 * distinct chats' handlers have all ended, against the RSS after a warm-up wave of 1,000 chats.
 */
export async function runExpiry(telepi: Contestant, chats = 10_000, timeoutSeconds = 0.2): Promise<ExpiryResult> {
  const warmUp = await makeWorkload('warm-up', 1000, 1000, 500_001);
  const wave = await makeWorkload('wave', chats, chats, 1_000_001);
  const emu = await BotApiEmulator.start({ keepFileBytes: 0 });
  try {
    const bot = await start(telepi, emu, { mode: 'expire', timeoutSeconds, exposeGc: true });
    try {
      push(emu, warmUp);
      await emu.waitForCalls('sendMessage', warmUp.updates.length, 60_000);
      await delegatesEnded(bot, 30_000);
      const baseline = await settledMemory(bot);
      push(emu, wave);
      await emu.waitForCalls('sendMessage', warmUp.updates.length + wave.updates.length, 120_000);
      const left = await delegatesEnded(bot, 60_000);
      const after = await settledMemory(bot);
      return {
        baselineRss: baseline.rss,
        afterRss: after.rss,
        heapGrowth: after.heapUsed - baseline.heapUsed,
        delegatesLeft: left.delegateCount,
        listenersLeft: left.listeners,
      };
    } finally {
      await bot.stop();
    }
  } finally {
    await emu.close();
  }
}

export interface UploadResult {
  rssBefore: number;
  rssPeak: number;
  ms: number;
  /** Bytes the emulator received in the document part. */
  received: number;
}

/** The contestant sends a `bytes`-long document from a stream while polling; its RSS is sampled meanwhile. */
export async function runUpload(contestant: Contestant, bytes = 20_000_000): Promise<UploadResult> {
  const emu = await BotApiEmulator.start({ keepFileBytes: 0 });
  try {
    const bot = await start(contestant, emu, { mode: 'upload', exposeGc: true });
    try {
      await sleep(1000);
      const result = await bot.command<Omit<UploadResult, 'received'>>('upload', { chatId: 7, bytes });
      // grammY names the file part itself and refers to it with attach://: count every part.
      const files = Object.values(emu.callsOf('sendDocument')[0]?.files ?? {});
      return { ...result, received: files.reduce((sum, file) => sum + file.size, 0) };
    } finally {
      await bot.stop();
    }
  } finally {
    await emu.close();
  }
}
