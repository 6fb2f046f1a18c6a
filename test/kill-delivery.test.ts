// kill -9 of a bot mid-burst, then a restart: no update is lost, and only updates that were not
// confirmed at the kill (to Telegram, or in the inbox) come again. Seeded; replay with KILL_SEED=<seed>.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { mulberry32 } from '../hardware/simulated/climate.js';
import { BotApiEmulator } from '../src/emulator/index.js';
import { inboxFileName } from '../src/inbox.js';
import { eventually, TOKEN } from './support.js';

const ROUNDS = 3;
const MESSAGES = 1000;
const CHATS = 20;

const nodeModules = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules');
let root: string;
let script: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'telepi-kill-'));
  script = path.join(root, 'delivery-bot.mjs');
  // Bundled once and run with plain node: a tsx start costs ~0.35 s.
  await build({
    entryPoints: [path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'delivery-bot.ts')],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: script, logLevel: 'silent',
  });
});
after(() => rm(root, { recursive: true, force: true }));

interface Run {
  got: Map<string, number>;
  done: Set<string>;
  kill(): Promise<void>;
}

function startBot(t: TestContext, apiRoot: string, inboxDir: string, seed: number): Promise<Run> {
  // The bundle lives in a temp folder: NODE_PATH lets it load undici's files from this checkout.
  const env = { BOT_TOKEN: TOKEN, NODE_PATH: nodeModules };
  const child = spawn(process.execPath, [script, apiRoot, inboxDir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'], env });
  t.after(() => child.kill('SIGKILL'));
  const run: Run = { got: new Map(), done: new Set(), kill: async () => {} };
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  run.kill = async () => {
    child.kill('SIGKILL');
    await closed;
  };
  let stderr = '';
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('close', (code, signal) => reject(new Error(`the bot ended (${code ?? signal}) before it was ready: ${stderr}`)));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [word, text] = line.split(' ');
        if (word === 'ready') resolve(run);
        else if (word === 'got') run.got.set(text as string, (run.got.get(text as string) ?? 0) + 1);
        else if (word === 'done') run.done.add(text as string);
      }
    });
  });
}

/** The updates the inbox file holds and has not marked done, read without opening it (which would rewrite it). */
async function unfinishedIn(dir: string): Promise<Set<number>> {
  const kept = new Set<number>();
  const done = new Set<number>();
  for (const line of (await readFile(path.join(dir, inboxFileName), 'utf8')).split('\n')) {
    let record: { update_id?: number; done?: number[] };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      continue;
    }
    if (typeof record.update_id === 'number') kept.add(record.update_id);
    for (const id of record.done ?? []) done.add(id);
  }
  for (const id of done) kept.delete(id);
  return kept;
}

async function round(t: TestContext, withInbox: boolean, seed: number): Promise<string> {
  const r = mulberry32(seed);
  const emu = await BotApiEmulator.start({ token: TOKEN });
  t.after(() => emu.close());
  const inboxDir = withInbox ? await mkdtemp(path.join(root, 'inbox-')) : '-';
  const ids = new Map<string, number>();
  for (let i = 0; i < MESSAGES; i++) ids.set(`m${i}`, emu.pushText(`m${i}`, { chatId: 1 + Math.floor(r() * CHATS) }).update_id);
  const killAfter = 50 + Math.floor(r() * (MESSAGES - 200));

  const first = await startBot(t, emu.apiRoot, inboxDir, seed);
  await eventually(() => first.done.size >= killAfter, 20_000, `${killAfter} done before the kill`);
  await first.kill();
  const confirmed = emu.confirmedOffset;
  let kept = new Set<number>();
  if (withInbox) kept = await unfinishedIn(inboxDir);

  const second = await startBot(t, emu.apiRoot, inboxDir, seed + 1);
  const doneAnywhere = (text: string) => first.done.has(text) || second.done.has(text);
  await eventually(() => [...ids.keys()].every(doneAnywhere), 20_000, 'every message done after the restart');
  await second.kill();

  const lost = [...ids.keys()].filter((text) => !doneAnywhere(text));
  assert.deepEqual(lost, [], 'messages lost');
  const repeated = [...second.got.keys()].filter((text) => first.got.has(text));
  // Unconfirmed at the kill: at or above the offset the server had, or still in the inbox.
  const unconfirmed = (text: string) => (ids.get(text) as number) >= confirmed || kept.has(ids.get(text) as number);
  assert.deepEqual(repeated.filter((text) => !unconfirmed(text)), [], 'messages confirmed at the kill were handed out again');
  const inFlight = repeated.filter((text) => !first.done.has(text)).length;
  if (!withInbox) assert.ok(repeated.length <= 100, `${repeated.length} repeated: more than one getUpdates window`);
  const twiceInOneRun = [...first.got, ...second.got].filter(([, n]) => n > 1);
  assert.deepEqual(twiceInOneRun, [], 'a run handled a message twice');
  return `kill after ${first.done.size} done (${first.got.size} taken): ${repeated.length} repeated after the restart `
    + `(${inFlight} taken and unfinished at the kill, ${repeated.length - inFlight} finished but not yet confirmed)`;
}

const replay = process.env.KILL_SEED;
if (replay !== undefined && replay !== '' && !/^\d+$/.test(replay)) throw new Error(`KILL_SEED must be a whole number, got ${replay}`);
const baseSeed = replay !== undefined && replay !== '' ? Number(replay) : randomInt(2 ** 31);

for (const withInbox of [false, true]) {
  test(`kill -9 mid-burst, ${ROUNDS} times (${withInbox ? 'with' : 'without'} an inbox): nothing lost, only unconfirmed updates repeated`, { timeout: 120_000 }, async (t) => {
    t.diagnostic(`seed ${baseSeed} (replay: KILL_SEED=${baseSeed})`);
    for (let i = 0; i < ROUNDS; i++) {
      const seed = baseSeed + i * 7919;
      try {
        t.diagnostic(await round(t, withInbox, seed));
      } catch (error) {
        if (error instanceof Error) error.message = `[KILL_SEED=${baseSeed}, round ${i}] ${error.message}`;
        throw error;
      }
    }
  });
}
