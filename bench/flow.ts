// The cost of outgoing flow control on the throughput path (a sendMessage per update):
// 1. the scheduler alone, admit + release per send, for 1 and 1,000 chats;
// 2. sendMessage through the client against the loopback emulator: unpaced, paced under limits it never
//    reaches (every send admitted at once, as a reply is), and with flow control off altogether.
// Run: node --import tsx bench/flow.ts   (prints a small Markdown table)
import { Bot } from '../src/bot.js';
import { BotApiEmulator } from '../src/emulator/index.js';
import { SendScheduler } from '../src/flow.js';
import { silentLogger } from '../src/log.js';

const TOKEN = '1234:bench-token';
const SENDS = Number(process.env.FLOW_SENDS ?? '20000');
const roomy = { global: { count: 1e9, windowMs: 1000 }, perChat: { count: 1e9, windowMs: 1000 }, perGroup: { count: 1e9, windowMs: 60_000 } };

function schedulerNsPerSend(chats: number): number {
  const scheduler = new SendScheduler(roomy);
  const runs = 1_000_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) {
    const permit = scheduler.admit(1 + (i % chats));
    if (permit instanceof Promise) throw new Error('a send under roomy limits waited');
    scheduler.release(permit);
  }
  return Number(process.hrtime.bigint() - start) / runs;
}

async function clientRun(label: string, flow: ConstructorParameters<typeof Bot>[1]): Promise<{ label: string; perSecond: number; cpuUsPerSend: number }> {
  const emu = await BotApiEmulator.start({ token: TOKEN });
  const bot = new Bot(TOKEN, { apiRoot: emu.apiRoot, log: silentLogger, ...flow });
  try {
    await bot.sendMessage(1, 'warm up');
    const cpuBefore = process.cpuUsage();
    const start = performance.now();
    let next = 0;
    // 100 sends in flight, across 1,000 chats, like replies to a busy loop.
    await Promise.all(Array.from({ length: 100 }, async () => {
      while (next < SENDS) {
        const i = next++;
        await bot.sendMessage(1 + (i % 1000), `reply ${i}`);
      }
    }));
    const elapsedMs = performance.now() - start;
    const cpu = process.cpuUsage(cpuBefore);
    // The emulator runs in this process too: its CPU is in the figure, the same for every row.
    return { label, perSecond: (SENDS / elapsedMs) * 1000, cpuUsPerSend: (cpu.user + cpu.system) / SENDS };
  } finally {
    await bot.close();
    await emu.close();
  }
}

const lines = ['| case | figure |', '|---|---|'];
for (const chats of [1, 1000]) lines.push(`| scheduler admit + release, ${chats} chat(s) | ${schedulerNsPerSend(chats).toFixed(0)} ns per send |`);
const rows = [];
for (let round = 0; round < 3; round++) {
  rows.push(await clientRun('flow off', { flow: false }));
  rows.push(await clientRun('default (loopback: resends, no pacing)', {}));
  rows.push(await clientRun('paced, limits never reached', { flow: { limits: roomy } }));
}
const median = (values: number[]): number => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
for (const label of [...new Set(rows.map((r) => r.label))]) {
  const mine = rows.filter((r) => r.label === label);
  lines.push(`| sendMessage, ${label} | ${median(mine.map((r) => r.perSecond)).toFixed(0)} sends/s, ${median(mine.map((r) => r.cpuUsPerSend)).toFixed(1)} µs CPU per send (median of 3) |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
