// The library's own cost per update, without sockets: telepi's DelegatorBot + ChatHandler path and the
// ordered bare loop, each in a child process of its own, talking to an in-process fake of the Bot API
// at undici's dispatcher seam (answers in the next macrotask, as a socket's would come). What is left
// is what the library adds: routing, delivery bookkeeping, the client, undici's request API, JSON.
// Run: node --import tsx bench/framework.ts   (BENCH_CHATS=1|1000, BENCH_ROUNDS, BENCH_BASELINE=<git ref>)
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Update } from '@grammyjs/types';
import { bundleTelepi } from './build-telepi.js';

const UPDATES = Number(process.env.BENCH_UPDATES ?? 20_000);
const require = createRequire(import.meta.url);

/** The Bot API at the dispatcher seam: getUpdates from a fixed list honouring offset, sendMessage echoed back. */
class FakeApi {
  sent = 0;
  private parked: (() => void) | undefined;

  constructor(private readonly updates: Update[], private readonly onAllSent: () => void) {}

  dispatch(options: { path: string; body?: unknown }, handler: FakeHandler): boolean {
    const method = options.path.slice(options.path.lastIndexOf('/') + 1);
    const params = JSON.parse(String(options.body ?? '{}')) as Record<string, unknown>;
    if (method === 'getUpdates') {
      const offset = Math.max(1, Number(params.offset ?? 0));
      const limit = Number(params.limit ?? 100);
      const batch = this.updates.slice(offset - 1, offset - 1 + limit);
      // Nothing left: the long poll stays open (the run ends before it would time out).
      if (batch.length === 0 && Number(params.timeout ?? 0) > 0) this.parked = () => answer(handler, '{"ok":true,"result":[]}');
      else setImmediate(() => answer(handler, JSON.stringify({ ok: true, result: batch })));
      return true;
    }
    const reply = `{"ok":true,"result":{"message_id":${++this.sent},"date":1700000000,"chat":{"id":${Number(params.chat_id)},"type":"private","first_name":"A"},"text":${JSON.stringify(params.text)}}}`;
    setImmediate(() => {
      answer(handler, reply);
      if (this.sent === this.updates.length) this.onAllSent();
    });
    return true;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    return Promise.resolve();
  }

  on(): this {
    return this;
  }
}

interface FakeHandler {
  onConnect(abort: (error?: Error) => void): void;
  onHeaders(status: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: Buffer[]): void;
}

function answer(handler: FakeHandler, text: string): void {
  const body = Buffer.from(text);
  handler.onConnect(() => {});
  handler.onHeaders(200, [Buffer.from('content-type'), Buffer.from('application/json'), Buffer.from('content-length'), Buffer.from(String(body.length))], () => {}, 'OK');
  handler.onData(body);
  handler.onComplete([]);
}

function workload(chats: number): Update[] {
  const updates: Update[] = [];
  for (let i = 0; i < UPDATES; i++) {
    const chatId = 1001 + (i % chats);
    updates.push({
      update_id: i + 1,
      message: { message_id: i + 1, date: 1_700_000_000, chat: { id: chatId, type: 'private', first_name: 'A' }, from: { id: chatId, is_bot: false, first_name: 'A' }, text: String(Math.floor(i / chats)) },
    } as Update);
  }
  return updates;
}

/** The child: runs one contestant until every reply was sent, prints its CPU µs per update. */
async function child(kind: string, chats: number, entry: string): Promise<void> {
  const updates = workload(chats);
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  const api = new FakeApi(updates, () => finished());
  const token = '123456789:framework-bench-token';
  // Loaded before the clock starts: start-up is measured elsewhere.
  const telepi = kind === 'bare' ? undefined : ((await import(entry)) as typeof import('../src/index.js'));
  let inboxDir: string | undefined;
  const started = process.cpuUsage();
  const wallStarted = performance.now();
  if (telepi === undefined) {
    const request = require('undici/lib/api/api-request.js') as (this: unknown, options: object) => Promise<{ body: { text(): Promise<string> } }>;
    const headers = { 'content-type': 'application/json' };
    const call = async (method: string, params: object): Promise<unknown> => {
      const response = await request.call(api, { origin: 'http://127.0.0.1:1', path: `/bot${token}/${method}`, method: 'POST', headers, body: JSON.stringify(params) });
      const parsed = JSON.parse(await response.body.text()) as { ok: boolean; result: unknown };
      return parsed.result;
    };
    const chains = new Map<number, Promise<unknown>>();
    void (async () => {
      let offset = 0;
      for (;;) {
        const batch = (await call('getUpdates', { offset, timeout: 30, limit: 100 })) as Update[];
        for (const update of batch) {
          offset = update.update_id + 1;
          const message = update.message;
          if (message?.text === undefined) continue;
          const chatId = message.chat.id;
          const next = (chains.get(chatId) ?? Promise.resolve()).then(() => call('sendMessage', { chat_id: chatId, text: message.text }));
          chains.set(chatId, next);
          void next.then(() => chains.get(chatId) === next && chains.delete(chatId));
        }
      }
    })();
  } else {
    const { ChatHandler, DelegatorBot, createRun, perChatId } = telepi;
    class Echo extends ChatHandler {
      override async run(): Promise<void> {
        await this.sender.sendMessage(String((this.initialMessage as { text: string }).text));
        for (;;) await this.sender.sendMessage(String(((await this.listener.wait()) as { text: string }).text));
      }
    }
    const bot = new DelegatorBot(token, [[perChatId(), createRun(Echo)]], { apiRoot: 'http://127.0.0.1:1', dispatcher: api as never, flow: { limits: false } });
    // 'telepi-inbox': the same with the durable inbox in a fresh temporary folder (as the appliance runs).
    if (kind === 'telepi-inbox') inboxDir = await mkdtemp(join(tmpdir(), 'telepi-framework-inbox-'));
    bot.messageLoop(undefined, inboxDir === undefined ? {} : { inboxDir });
  }
  await done;
  const used = process.cpuUsage(started);
  process.stdout.write(`${JSON.stringify({ cpuUs: (used.user + used.system) / UPDATES, wallUs: ((performance.now() - wallStarted) * 1000) / UPDATES })}\n`);
  if (inboxDir !== undefined) await rm(inboxDir, { recursive: true, force: true });
  process.exit(0);
}

function runChild(kind: string, chats: number, entry: string): Promise<{ cpuUs: number; wallUs: number }> {
  return new Promise((resolve, reject) => {
    const flags = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
    const proc = spawn(process.execPath, [...flags, '--import', 'tsx', fileURLToPath(import.meta.url), 'child', kind, String(chats), entry], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as { cpuUs: number; wallUs: number });
      } catch {
        reject(new Error(`${kind} exited ${code} without a result: ${out}`));
      }
    });
  });
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as string, Number(process.argv[4]), process.argv[5] as string);
} else {
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '5'));
  const current = await bundleTelepi('telepi-framework');
  const entries: Array<[string, string, string]> = [['bare loop (per-chat order)', 'bare', ''], ['telepi', 'telepi', current], ['telepi + inbox', 'telepi-inbox', current]];
  // BENCH_ONLY=telepi-inbox (say): that contestant alone, e.g. to profile it with BENCH_PROFILE_DIR.
  if (process.env.BENCH_ONLY) entries.splice(0, entries.length, ...entries.filter(([, kind]) => kind === process.env.BENCH_ONLY));
  if (process.env.BENCH_BASELINE) entries.push([`telepi at ${process.env.BENCH_BASELINE}`, 'telepi', await bundleTelepi('telepi-framework-baseline', process.env.BENCH_BASELINE)]);
  const chatCounts = [1, 1000].filter((n) => process.env.BENCH_CHATS === undefined || String(n) === process.env.BENCH_CHATS);
  const results = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const chats of chatCounts) {
      for (let i = 0; i < entries.length; i++) {
        const [label, kind, entry] = entries[(i + round) % entries.length] as [string, string, string];
        const { cpuUs } = await runChild(kind, chats, entry);
        results.set(`${label}|${chats}`, [...(results.get(`${label}|${chats}`) ?? []), cpuUs]);
        process.stderr.write(`round ${round + 1}, ${chats} chat(s), ${label}: ${cpuUs.toFixed(1)} µs CPU/update\n`);
      }
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  const lines = ['| no sockets, per update | ' + chatCounts.map((n) => `${n} chat${n === 1 ? '' : 's'}: CPU µs`).join(' | ') + ' |', '|---|' + chatCounts.map(() => '---:').join('|') + '|'];
  for (const [label] of entries) {
    const cells = chatCounts.map((n) => {
      const cpu = median(results.get(`${label}|${n}`) ?? []);
      const base = median(results.get(`${entries[0]?.[0]}|${n}`) ?? []);
      return `${cpu.toFixed(1)} (${(cpu / base).toFixed(2)}×)`;
    });
    lines.push(`| ${label} | ${cells.join(' | ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
