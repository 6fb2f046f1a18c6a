// Issue 6, crash suite: 200 `kill -9` of a child adding subscriptions through StateStore, each at a random
// moment; after every kill the file is checked, then the writer restarts on the same directory.
// test/state.test.ts's 50-kill test covers the same property with a writer that rewrites whole states.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { StateStore, type AppState } from '../src/app/state.js';
import { memoryLogger } from '../src/log.js';
import { bundleFixture, runUntilKilled } from './fixture-child.js';
import { stateAfter } from './fixtures/subscription-sequence.js';

const KILLS = 200;
// Two writers in two directories at once: a kill costs mostly the CPU of a node start-up, and there are two cores.
const LANES = 2;
// A new directory (a new device) now and then keeps state.json small, so the writes stay fast.
const KILLS_PER_DIR = 25;
const MAX_KILL_DELAY_MS = 30;

let root: string;
let script: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'telepi-crash-'));
  // Bundled once and run with plain node: `node --import tsx` costs ~0.35 s per start, 200 starts would not fit.
  script = await bundleFixture('subscription-writer', root);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Run {
  /** Subscriptions the restarted writer found. */
  loaded: number;
  /** The last step whose update() resolved before the kill (0: none in this run). */
  acked: number;
  /** The last step whose update() was called. */
  issued: number;
}

/** Starts the writer on `dir`, kills it with SIGKILL `delayMs` after it is ready, and reads what it said. */
async function runAndKill(dir: string, maxBurst: number, delayMs: number): Promise<Run> {
  const run: Run = { loaded: -1, acked: 0, issued: 0 };
  await runUntilKilled(script, [dir, String(maxBurst)], delayMs, (word, rest) => {
    const k = Number(rest);
    if (word === 'ready') run.loaded = k;
    else if (word === 'issued') run.issued = k;
    else if (word === 'ack') run.acked = k;
  });
  return run;
}

interface Outcome {
  /** The step the file holds. */
  n: number;
  /** Whether the kill left a temp file behind (it landed inside a write). */
  tempLeft: boolean;
}

/** What a restart finds: one whole state of the sequence, at or after every acknowledged step. */
async function check(dir: string, what: string, acked: number, issued: number): Promise<Outcome> {
  const names = await readdir(dir);
  const tempLeft = names.some((name) => name.startsWith('.state.json.') && name.endsWith('.tmp'));
  let n = 0;
  if (names.includes('state.json')) {
    const text = await readFile(path.join(dir, 'state.json'), 'utf8');
    let state: AppState;
    try {
      state = JSON.parse(text) as AppState;
    } catch {
      assert.fail(`${what}: state.json does not parse (${text.length} bytes)`);
    }
    n = Array.isArray(state.subscriptions) ? state.subscriptions.length : -1;
    assert.deepEqual(state, stateAfter(n), `${what}: state.json is no state the writer wrote (a mix)`);
  }
  assert.ok(n >= acked, `${what}: the file holds step ${n}, but step ${acked} had been acknowledged: a subscription was lost`);
  assert.ok(n <= issued, `${what}: the file holds step ${n}, beyond the last step issued (${issued})`);
  // Reopening takes the file as it is, warns about nothing, and clears the temp file a kill may leave.
  const log = memoryLogger();
  const store = await StateStore.open(dir, log);
  // Closed at once: its lock must not keep the next writer out.
  await store.close();
  assert.deepEqual(store.state, stateAfter(n), `${what}: the reopened store holds another state`);
  assert.deepEqual(log.lines.filter((line) => line.startsWith('WARN')), [], `${what}: reopening warned`);
  assert.deepEqual((await readdir(dir)).filter((name) => name !== 'state.json'), [], `${what}: files left after reopening`);
  return { n, tempLeft };
}

async function killSeries(t: TestContext, kills: number, maxBurst: number): Promise<void> {
  const started = performance.now();
  const outcomes = { old: 0, new: 0, tempLeft: 0, subscriptions: 0, acks: 0 };
  let killNumber = 0;
  const lane = async (laneIndex: number, laneKills: number) => {
    let dir = '';
    let acked = 0;
    let highest = 0;
    for (let i = 0; i < laneKills; i++) {
      if (i % KILLS_PER_DIR === 0) {
        dir = path.join(root, `burst-${maxBurst}-lane-${laneIndex}-dir-${i / KILLS_PER_DIR}`);
        acked = 0;
        highest = 0;
      }
      const what = `kill ${++killNumber} (lane ${laneIndex}, run ${i})`;
      const run = await runAndKill(dir, maxBurst, Math.random() * MAX_KILL_DELAY_MS);
      assert.equal(run.loaded, highest, `${what}: the restarted writer found ${run.loaded} subscriptions where ${highest} were on disk`);
      acked = Math.max(acked, run.acked);
      const outcome = await check(dir, what, acked, Math.max(run.issued, highest));
      outcomes.acks += run.acked === 0 ? 0 : run.acked - run.loaded;
      if (outcome.n === Math.max(run.acked, run.loaded)) outcomes.old++;
      else outcomes.new++;
      if (outcome.tempLeft) outcomes.tempLeft++;
      highest = outcome.n;
      if (i % KILLS_PER_DIR === KILLS_PER_DIR - 1 || i === laneKills - 1) outcomes.subscriptions += highest;
    }
  };
  const perLane = Math.ceil(kills / LANES);
  await Promise.all(Array.from({ length: LANES }, (_, i) => lane(i, Math.min(perLane, kills - i * perLane))));
  assert.equal(killNumber, kills);
  assert.ok(outcomes.acks >= kills / 4, `only ${outcomes.acks} acknowledged writes in ${kills} runs: the writer hardly wrote`);
  t.diagnostic(`${kills} kills in ${((performance.now() - started) / 1000).toFixed(1)} s: ${outcomes.acks} acknowledged writes, `
    + `${outcomes.subscriptions} subscriptions kept; the file held the last acknowledged step ${outcomes.old} times, a later one `
    + `${outcomes.new} times; a temp file was left (the kill landed inside a write) ${outcomes.tempLeft} times`);
}

// Two series of half the kills each: each stays well inside the per-test timeout on a busy machine.
test(`${KILLS / 2} kill -9 while subscriptions are added one at a time: state.json is always the old or the new state, and a restart keeps every acknowledged subscription`, (t) =>
  killSeries(t, KILLS / 2, 1));

test(`${KILLS / 2} kill -9 while up to three updates are queued: state.json is always one whole queued state, never a mix, and keeps every acknowledged subscription`, (t) =>
  killSeries(t, KILLS / 2, 3));
