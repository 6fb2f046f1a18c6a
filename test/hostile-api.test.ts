// Issue 10, the Bot API half of the hostile suite: seeded random answers to getUpdates that are not a
// well-formed update list, between real updates. The loop stays up, logs each, and every real update is
// handled exactly once. A fresh seed each run; replay one with HOSTILE_SEED=<seed>.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { mulberry32 } from '../hardware/simulated/climate.js';
import { createRun, DelegatorBot, perChatId } from '../src/delegate.js';
import type { Msg } from '../src/glance.js';
import { ChatHandler } from '../src/handler.js';
import { eventually, harness, TOKEN } from './support.js';

const EPISODES = 150;
const FAR = 2 ** 40;

type Random = () => number;

/** A random odd answer: its HTTP status, its body, and whether it carries a (far) update a handler may see. */
function hostileAnswer(r: Random, farId: () => number): { status: number; body: string; stray: boolean } {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
  const odd = () => pick<unknown>([null, 0, -1, 1.5, 1e308, '', 'x', '7', true, [], {}, [null], { update_id: null }]);
  const message = { message_id: 1, date: 1, chat: { id: 900, type: 'private', first_name: 'stray' }, text: 'stray' };
  const kind = Math.floor(r() * 12);
  switch (kind) {
    case 0: return { status: 200, body: '{"ok":true}', stray: false };
    case 1: return { status: 200, body: JSON.stringify({ ok: true, result: odd() }), stray: false };
    case 2: return { status: 200, body: JSON.stringify({ ok: true, result: [odd()] }), stray: false };
    // Ids that are not whole numbers (0 is one: before the first real update it would be a fair first update).
    case 3: return { status: 200, body: JSON.stringify({ ok: true, result: [{ update_id: pick([null, -1, 1.5, 1e308, '', '7', true, [], {}]), message }] }), stray: false };
    case 4: return { status: pick([200, 500, 502]), body: pick(['', 'null', '[]', '"ok"', '{"ok":"yes","result":[]}', '<html>oops</html>']), stray: false };
    case 5: return { status: 200, body: JSON.stringify({ ok: false }), stray: false };
    case 6: return { status: pick([200, 500, 503]), body: JSON.stringify({ ok: false, error_code: pick([500, 'x', null, 1e9]), description: pick([5, null, 'odd']) }), stray: false };
    case 7: return { status: 429, body: JSON.stringify({ ok: false, error_code: 429, parameters: { retry_after: pick([1e308, -5, 'soon', null]) } }), stray: false };
    case 8: return { status: 200, body: '['.repeat(5000 + Math.floor(r() * 5000)), stray: false };
    case 9: return { status: 200, body: `{"ok":true,"result":[${'1,'.repeat(50_000)}1]}`, stray: false };
    // Payloads of the wrong shape under a far id: skipped or handled as strays, never a crash.
    case 10: return { status: 200, body: JSON.stringify({ ok: true, result: [{ update_id: farId(), message: pick([null, 5, 'x', {}, { chat: null }, []]) }] }), stray: false };
    default: return { status: 200, body: JSON.stringify({ ok: true, result: [{ update_id: farId(), message }] }), stray: true };
  }
}

async function run(t: TestContext, seed: number): Promise<void> {
  const r = mulberry32(seed);
  const h = await harness(t);
  const counts = new Map<string, number>();
  let strays = 0;
  class Tally extends ChatHandler {
    override async run(): Promise<void> {
      for (let msg: Msg = this.initialMessage; ; msg = await this.listener.wait()) {
        const text = 'text' in msg ? msg.text : undefined;
        if (text === 'stray') strays++;
        else if (typeof text === 'string') counts.set(text, (counts.get(text) ?? 0) + 1);
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Tally, { timeout: 0.5 })]], { apiRoot: h.emu.apiRoot, log: h.log, flow: false });
  const loop = h.loop(bot, undefined, { backoffInitialMs: 1, backoffCapMs: 10, retryAfterCapMs: 20, random: mulberry32(seed ^ 0x5bd1e995) });
  let next = 0;
  let farIds = 0;
  let strayAnswers = 0;
  const farId = () => FAR + farIds++;
  for (let episode = 0; episode < EPISODES; episode++) {
    const answers = 1 + Math.floor(r() * 3);
    for (let i = 0; i < answers; i++) {
      const answer = hostileAnswer(r, farId);
      if (answer.stray) strayAnswers++;
      h.emu.injectFault({ kind: 'answer', status: answer.status, body: answer.body }, { method: 'getUpdates' });
    }
    const pushed = Math.floor(r() * 8);
    for (let i = 0; i < pushed; i++) h.emu.pushText(`m${next++}`, { chatId: 1 + Math.floor(r() * 5) });
    // Wakes a waiting poll, so the injected answers are met now.
    h.emu.pushText(`m${next++}`, { chatId: 6 });
    const upTo = next;
    await eventually(() => counts.size >= upTo, 10_000, `episode ${episode}: all ${upTo} real updates handled`);
  }
  await eventually(() => h.emu.queuedUpdates === 0, 5000, 'everything confirmed');
  assert.equal(loop.running, true, 'the loop is still running');
  const twice = [...counts].filter(([, n]) => n > 1).map(([text]) => text);
  assert.deepEqual(twice, [], 'real updates handled more than once');
  assert.equal(counts.size, next, 'a real update was lost');
  assert.equal(strays, strayAnswers, 'each far update was handled once');
  const faults = h.log.lines.filter((l) => l.startsWith('WARN getUpdates failed')).length;
  t.diagnostic(`seed ${seed}: ${EPISODES} episodes, ${next} real updates, ${faults} faults logged, ${strays} far updates handled`);
  assert.ok(faults > EPISODES / 2, `only ${faults} odd answers were logged as faults`);
  assert.ok(h.log.lines.every((l) => !l.startsWith('ERROR') || l.includes('seed function failed') || l.includes('delegate for')), 'the loop logged an error');
}

const replay = process.env.HOSTILE_SEED;
if (replay !== undefined && replay !== '' && !/^\d+$/.test(replay)) throw new Error(`HOSTILE_SEED must be a whole number, got ${replay}`);
const seed = replay !== undefined && replay !== '' ? Number(replay) : randomInt(2 ** 31);

test(`random malformed getUpdates answers (seed ${seed}; replay: HOSTILE_SEED=${seed}) never stop the loop nor lose or repeat a real update`, { timeout: 60_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (replay: HOSTILE_SEED=${seed})`);
  try {
    await run(t, seed);
  } catch (error) {
    if (error instanceof Error) error.message = `[HOSTILE_SEED=${seed}] ${error.message}`;
    throw error;
  }
});
