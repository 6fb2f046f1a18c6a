// Issue 10, the seeded hostile HTTP suite: random pipelined, stalled, trickled, oversized, garbage and guessing
// clients from 40 loopback addresses against a real `telepi run` (simulated hardware, the emulator as Telegram),
// while the owner watches the stream, downloads snapshots and asks /now. A fresh seed each run, printed;
// replay one with TELEPI_HOSTILE_SEED=<seed> node --import tsx --test test/hostile-http.test.ts
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCompleteJpeg } from '../hardware/jpeg.js';
import { mulberry32 } from '../hardware/simulated/climate.js';
import { HttpAttacker } from './fakes/http-attacker.js';
import { get, openStream, until } from './stream-support.js';
import { harness, TOKEN } from './support.js';
import { askAsOwner, freePort, openLink, startTelepiChild } from './telepi-child.js';

const ATTACK_MS = 12_000;
const QUIET_MS = 3_000;
const ATTACKERS = 4;
const MB = 1048576;
/** RSS growth allowed over the attack; unbounded queues grew by hundreds of MB in seconds before issue 10. */
const RSS_GROWTH_LIMIT_MB = 48;
/** The simulated camera makes 4 frames a second; a loaded 2-core CI machine may delay some, but never for long. */
const MAX_FRAME_GAP_MS = 4_000;

/** Watches a frame counter every 50 ms; stop() gives the longest time it stood still. */
function frameGaps(count: () => number) {
  let last = count();
  let lastAt = performance.now();
  let longestMs = 0;
  const timer = setInterval(() => {
    const nowAt = performance.now();
    if (count() !== last) {
      longestMs = Math.max(longestMs, nowAt - lastAt);
      last = count();
      lastAt = nowAt;
    }
  }, 50);
  return { stop: () => (clearInterval(timer), Math.max(longestMs, performance.now() - lastAt)) };
}

test('hostile HTTP from 40 addresses cannot take telepi down: memory bounded, the owner streams and gets /now answered throughout',
  { timeout: 90_000 }, async (t) => {
    const given = process.env.TELEPI_HOSTILE_SEED ?? '';
    if (given !== '' && !/^\d+$/.test(given)) throw new Error(`TELEPI_HOSTILE_SEED must be a seed this suite printed (digits), not ${JSON.stringify(given)}`);
    const seed = given === '' ? randomInt(2 ** 31) : Number(given);
    t.diagnostic(`seed ${seed} (replay: TELEPI_HOSTILE_SEED=${seed} node --import tsx --test test/hostile-http.test.ts)`);
    const h = await harness(t);
    const stateDir = await mkdtemp(join(tmpdir(), 'telepi-hostile-'));
    t.after(() => rm(stateDir, { recursive: true, force: true }));
    // A 64 MB old space, a quarter of what a Pi Zero 2 gives Node: an unbounded queue ends the process in seconds.
    const telepi = startTelepiChild(h.emu, { token: TOKEN, stateDir, streamPort: await freePort(), nodeArgs: ['--max-old-space-size=64'] });
    t.after(() => telepi.stop(2_000));
    const replay = `seed ${seed}`;

    assert.match((await askAsOwner(h.emu, '/now', 30_000)).reply, /°C/, 'telepi answers before the attack');
    const { port, token } = await openLink(h.emu);
    const viewer = openStream(t, port, token);
    await until(() => viewer.parts.length > 0, 'the owner\'s first frame');
    for (let i = 0; i < 3; i++) { // warm-up: the first /now and snapshots load code and fill caches
      await askAsOwner(h.emu, '/now');
      assert.equal((await get(port, `/snapshot.jpg?token=${token}`)).status, 200);
    }
    // The simulated camera paints and encodes each frame in JavaScript: RSS swings by tens of MB on its own.
    // The baseline is the peak over a quiet spell, and growth is measured peak to peak.
    let baselineRss = 0;
    for (const quietUntil = performance.now() + QUIET_MS; performance.now() < quietUntil; await sleep(100)) baselineRss = Math.max(baselineRss, telepi.rss());
    const frames = frameGaps(() => viewer.parts.length);
    t.after(() => frames.stop());

    const addresses = Array.from({ length: 40 }, (_, i) => `127.0.0.${i + 2}`);
    const attackers = Array.from({ length: ATTACKERS }, (_, i) =>
      new HttpAttacker({ port, random: mulberry32(seed + i), addresses, tokenLength: token.length }));
    t.after(() => attackers.forEach((attacker) => attacker.close()));
    const deadline = performance.now() + ATTACK_MS;
    const attacking = attackers.map(async (attacker) => {
      while (!attacker.isClosed && performance.now() < deadline) await attacker.attack();
    });

    const nowMs: number[] = [];
    const snapshots: number[] = [];
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, telepi.rss())), 100);
    t.after(() => clearInterval(sampler));
    const unanswered: string[] = [];
    // Failures are collected, not thrown, so that a telepi that died is reported with its log.
    while (performance.now() < deadline && telepi.alive()) {
      const now = await askAsOwner(h.emu, '/now', 10_000).catch((error: Error) => ({ reply: error.message, ms: Number.NaN }));
      if (/°C/.test(now.reply)) nowMs.push(now.ms);
      else unanswered.push(now.reply);
      const snapshot = await get(port, `/snapshot.jpg?token=${token}`).catch(() => null);
      snapshots.push(snapshot?.status ?? 0);
      assert.ok(snapshot?.status !== 200 || isCompleteJpeg(snapshot.body), `${replay}: the snapshot is a whole JPEG`);
      await sleep(500);
    }
    await Promise.all(attacking);
    const longestGapMs = frames.stop();
    clearInterval(sampler);

    const attacks = attackers.flatMap((a) => [...a.counts]).reduce((all, [kind, n]) => all.set(kind, (all.get(kind) ?? 0) + n), new Map<string, number>());
    const sentMb = attackers.reduce((sum, a) => sum + a.bytesSent, 0) / MB;
    const growthMb = (peakRss - baselineRss) / MB;
    t.diagnostic(`${replay}: ${[...attacks].map(([kind, n]) => `${kind} ×${n}`).join(', ')}; ${sentMb.toFixed(1)} MB sent`);
    t.diagnostic(`${replay}: RSS peak ${(baselineRss / MB).toFixed(1)} MB before, ${growthMb >= 0 ? '+' : ''}${growthMb.toFixed(1)} MB during the attack; /now answered ${nowMs.length}× ` +
      `(slowest ${Math.round(Math.max(...nowMs))} ms); ${viewer.parts.length} frames to the owner, ` +
      `at most ${Math.round(longestGapMs)} ms apart`);

    assert.ok(telepi.alive(), `${replay}: telepi died:\n${telepi.log().slice(-2000)}`);
    assert.ok(growthMb < RSS_GROWTH_LIMIT_MB, `${replay}: RSS grew ${growthMb.toFixed(1)} MB`);
    assert.deepEqual(unanswered, [], `${replay}: every /now during the attack is answered`);
    assert.ok(nowMs.length >= 5, `${replay}: only ${nowMs.length} /now answered in ${ATTACK_MS} ms`);
    assert.deepEqual(snapshots.filter((status) => status !== 200), [], `${replay}: every owner snapshot is served`);
    assert.equal(viewer.ended, false, `${replay}: the owner's stream is still open`);
    assert.ok(longestGapMs < MAX_FRAME_GAP_MS, `${replay}: the owner's stream froze for ${Math.round(longestGapMs)} ms`);
    assert.match((await askAsOwner(h.emu, '/now')).reply, /°C/, `${replay}: /now after the attack`);
    assert.ok(!telepi.log().includes(TOKEN) && !telepi.log().includes(token), `${replay}: no token in the log`);
    assert.equal(await telepi.stop(), 0, `${replay}: telepi stops cleanly after the attack`);
  });
