// One throughput run: a fresh emulator, the contestant started and idle for a second (start-up and
// idle RSS), then every update of the workload pushed at once and timed to the last reply.
import { setTimeout as sleep } from 'node:timers/promises';
import { BotApiEmulator, type RecordedCall } from '../src/emulator/index.js';
import { start, type Contestant, type SpawnOptions } from './contestants.js';
import { cpuMsOf, peakRssOf, rssOf } from './proc.js';
import { orderKept, push, type Workload } from './workload.js';

export interface ThroughputRun {
  startupMs: number;
  idleRss: number;
  peakRss: number;
  /** null when replies went missing (the run stalled before the last one). */
  updatesPerSecond: number | null;
  cpuUsPerUpdate: number | null;
  replies: number;
  orderKept: boolean;
  /** The emulator's (parent's) CPU time over the run, as a share of one core, and per update. */
  emulatorCpuShare: number;
  emulatorCpuUsPerUpdate: number;
}

const idleMs = 1000;
/** A run ends early when no reply has come for this long: replies were lost. */
const stallMs = 3000;

/** The first `count` sendMessage calls, or those recorded before the replies stopped coming. */
function repliesOrStall(emu: BotApiEmulator, count: number): Promise<RecordedCall[]> {
  return new Promise((resolve) => {
    let seen = 0;
    const timer = setTimeout(finish, stallMs);
    const onCall = (call: RecordedCall): void => {
      if (call.method !== 'sendMessage') return;
      seen += 1;
      if (seen >= count) return finish();
      timer.refresh();
    };
    function finish(): void {
      clearTimeout(timer);
      emu.off('call', onCall);
      resolve(emu.callsOf('sendMessage').slice(0, count));
    }
    emu.on('call', onCall);
  });
}

export async function runThroughput(contestant: Contestant, workload: Workload, options: SpawnOptions = {}): Promise<ThroughputRun> {
  const emu = await BotApiEmulator.start({ keepFileBytes: 0 });
  try {
    const bot = await start(contestant, emu, options);
    try {
      await sleep(idleMs);
      const idleRss = rssOf(bot.pid);
      const count = workload.updates.length;
      const cpuBefore = cpuMsOf(bot.pid);
      push(emu, workload);
      // The clock starts once every update is queued: the bot's getUpdates is answered after this line.
      const startedAt = performance.now();
      const parentCpu = process.cpuUsage();
      const replies = await repliesOrStall(emu, count);
      const endedAt = replies.at(-1)?.atMs ?? startedAt;
      const cpuMs = cpuMsOf(bot.pid) - cpuBefore;
      const parentUsed = process.cpuUsage(parentCpu);
      const elapsedMs = endedAt - startedAt;
      const complete = replies.length === count;
      return {
        startupMs: bot.startupMs,
        idleRss,
        peakRss: peakRssOf(bot.pid),
        updatesPerSecond: complete ? (count * 1000) / elapsedMs : null,
        cpuUsPerUpdate: complete ? (cpuMs * 1000) / count : null,
        replies: replies.length,
        orderKept: complete && orderKept(replies, workload),
        emulatorCpuShare: (parentUsed.user + parentUsed.system) / 1000 / (performance.now() - startedAt),
        emulatorCpuUsPerUpdate: (parentUsed.user + parentUsed.system) / count,
      };
    } finally {
      await bot.stop();
    }
  } finally {
    await emu.close();
  }
}
