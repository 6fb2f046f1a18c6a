// Every HTTP surface of the stream server is bounded: pipelined floods, token guesses, trickled and oversized
// headers, idle connections by the thousand; and the owner's stream and snapshot are served throughout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isCompleteJpeg } from '../hardware/jpeg.js';
import { testJpeg } from './fakes/jpeg.js';
import { get, openStream, rawClient, startServer, TOKEN, until } from './stream-support.js';

const OWNER = '127.0.0.1';
const STRANGER = '127.0.0.2';
const MB = 1048576;

/** Asks for a snapshot as the owner, over and over, until `stop()`: every answer's status, in order. */
function ownerSnapshots(port: number) {
  const statuses: number[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      statuses.push((await get(port, `/snapshot.jpg?token=${TOKEN}`, OWNER)).status);
      await sleep(20);
    }
  })();
  return { statuses, stop: async () => ((running = false), await done) };
}

test('wrong tokens pipelined on a connection get one comparison, the connection is cut, and memory stays flat (issue 10 row 1)', async (t) => {
  const { server, source, port } = await startServer(t);
  source.emit(testJpeg('owner view'));
  const owner = ownerSnapshots(port);
  const rssBefore = process.memoryUsage().rss;
  // ~140 KB of pipelined guesses per write; before the fix, 5 MB of these took RSS up by hundreds of MB.
  const flood = Buffer.from(`GET /stream?token=guess-${'x'.repeat(24)} HTTP/1.1\r\nHost: telepi\r\n\r\n`.repeat(2000));
  let written = 0;
  let connections = 0;
  const deadline = performance.now() + 5_000;
  while (written < 5 * MB && performance.now() < deadline) {
    const attacker = rawClient(t, port, STRANGER);
    connections += 1;
    await attacker.settled('connect');
    while (!attacker.closed && written < 5 * MB) {
      written += flood.length;
      if (!attacker.socket.write(flood)) await attacker.settled('drain');
    }
    await until(() => attacker.closed, 'the server to cut the flooding connection', 5_000);
    assert.ok(!/HTTP\/1\.1 200/.test(attacker.received), 'no guess was let in');
  }
  const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / MB;
  await owner.stop();
  t.diagnostic(`${(written / MB).toFixed(1)} MB of pipelined guesses over ${connections} connections: RSS +${rssGrowthMb.toFixed(1)} MB`);
  assert.ok(rssGrowthMb < 40, `RSS grew ${rssGrowthMb.toFixed(1)} MB under a 5 MB pipelined flood`);
  assert.ok(server.tokenComparisons <= connections + owner.statuses.length, `${server.tokenComparisons} comparisons for ${connections} connections`);
  assert.equal(server.connectionStats().dropped, 1, 'the flood was dropped, not queued');
  assert.equal(server.connectionStats().refused, connections - 1, 'the flooding address is kept out after its drop');
  assert.ok(owner.statuses.length > 0 && owner.statuses.every((status) => status === 200), `owner got ${owner.statuses.join(',')}`);
  await until(() => server.connectionStats().open === 0, 'every connection to close');
});

test('an address whose connection was dropped is kept out for the penalty, twice as long after a repeat', async (t) => {
  let nowMs = 0;
  const { server, port } = await startServer(t, { now: () => nowMs, limits: { dropPenaltyMs: 1_000 } });
  const pipelined = `GET /alive?token=wrong HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(10);
  const flood = async () => {
    const client = rawClient(t, port, STRANGER);
    await client.settled('connect');
    client.socket.write(pipelined);
    await until(() => client.closed, 'the flood to be dropped');
    return client;
  };
  /** Whether a fresh connection from STRANGER is served: a refused one is closed with no answer. */
  const served = async () => {
    const client = rawClient(t, port, STRANGER);
    client.socket.write('GET /alive HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => client.closed, 'an answer or a refusal');
    return client.received.startsWith('HTTP/1.1 403');
  };
  assert.match((await flood()).received, /^HTTP\/1\.1 403 /);
  assert.equal(server.connectionStats().dropped, 1);
  assert.equal(await served(), false, 'kept out during the penalty');
  assert.equal((await get(port, `/alive?token=${TOKEN}`, '127.0.0.3')).status, 200, 'other addresses are served');
  nowMs = 1_000;
  assert.equal(await served(), true, 'back after the penalty');
  await flood();
  nowMs = 2_900;
  assert.equal(await served(), false, 'a repeat within a penalty of the last one keeps it out twice as long');
  nowMs = 3_000;
  assert.equal(await served(), true);
});

test('an error answer says Connection: close and nothing pipelined behind it is answered', async (t) => {
  const { port } = await startServer(t);
  const client = rawClient(t, port);
  await client.settled('connect');
  client.socket.write(`GET /alive?token=wrong HTTP/1.1\r\nHost: x\r\n\r\nGET /alive?token=${TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await until(() => client.closed, 'the connection to close');
  assert.match(client.received, /^HTTP\/1\.1 403 [^]*\r\nConnection: close\r\n/);
  assert.equal(client.received.match(/HTTP\/1\.1 /g)?.length, 1, 'one answer, then the connection ends');
});

test('pipelined requests within the depth are all answered; deeper pipelining drops the connection', async (t) => {
  const { server, port } = await startServer(t, { limits: { maxPipelinedRequests: 4 } });
  const alive = `GET /alive?token=${TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n`;
  const polite = rawClient(t, port);
  await polite.settled('connect');
  polite.socket.write(alive.repeat(3));
  await until(() => polite.received.match(/HTTP\/1\.1 200/g)?.length === 3, 'three answers');
  assert.equal(polite.closed, false, 'a short pipeline keeps its connection');
  const greedy = rawClient(t, port);
  await greedy.settled('connect');
  greedy.socket.write(alive.repeat(40));
  await until(() => greedy.closed, 'the deep pipeline to be dropped');
  assert.ok((greedy.received.match(/HTTP\/1\.1 200/g)?.length ?? 0) < 40);
  assert.equal(server.connectionStats().dropped, 1);
});

test('the throttle limits comparisons, not answers: many addresses share one budget and the owner keeps getting in (issue 10 row 11)', async (t) => {
  let nowMs = 0; // the throttle's clock stands still: no budget comes back unless the test moves it
  const throttle = { freeFailures: 5, initialDelayMs: 20, maxDelayMs: 40, globalFailuresPerSecond: 50, globalFailureBurst: 20 };
  const { server, source, port } = await startServer(t, { now: () => nowMs, throttle });
  source.emit(testJpeg('view'));
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`, OWNER)).status, 200, 'the owner, before the flood');
  const guessers = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
  const round = async () => {
    const statuses: number[] = [];
    await Promise.all(guessers.map(async (address) => {
      for (let i = 0; i < 8; i++) statuses.push((await get(port, '/alive?token=guess', address)).status);
    }));
    return statuses;
  };
  const owner = ownerSnapshots(port);
  const first = await round();
  assert.equal(first.filter((s) => s === 403).length, 20, 'the burst, and not one comparison more, for 80 guesses from 10 addresses');
  assert.equal(first.filter((s) => s === 429).length, 60, 'the rest answered 429 without a comparison');
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`, '127.0.0.99')).status, 429,
    'an address that never showed the token waits for the shared budget like any other');
  nowMs += 100; // 50 failures/s: 5 more
  const second = await round();
  assert.equal(second.filter((s) => s === 403).length, 5, 'a tenth of a second buys five comparisons');
  await owner.stop();
  assert.ok(owner.statuses.length > 0 && owner.statuses.every((status) => status === 200), `owner got ${owner.statuses.join(',')}`);
  // Counted at the comparison itself: the guesses answered 403, the owner's snapshots, and nothing else.
  assert.equal(server.tokenComparisons, 1 + 20 + 5 + owner.statuses.length);
});

test('trickled headers (slowloris) and a silent connection are cut at the headers timeout; oversized headers get a 431', async (t) => {
  const { server, source, port } = await startServer(t, { limits: { headersTimeoutMs: 400, checkIntervalMs: 50, maxHeaderBytes: 8192 } });
  source.emit(testJpeg('view'));
  const started = performance.now();
  const trickler = rawClient(t, port, STRANGER);
  const silent = rawClient(t, port, STRANGER);
  await trickler.settled('connect');
  trickler.socket.write('GET /stream?token=');
  const drip = setInterval(() => trickler.closed || trickler.socket.write('a'), 50);
  t.after(() => clearInterval(drip));
  const owner = ownerSnapshots(port);
  await until(() => trickler.closed && silent.closed, 'both connections to be cut', 5_000);
  const cutAfterMs = performance.now() - started;
  await owner.stop();
  assert.ok(cutAfterMs >= 350 && cutAfterMs < 2_000, `cut after ${Math.round(cutAfterMs)} ms`);
  assert.match(trickler.received, /^HTTP\/1\.1 408 /);
  assert.ok(owner.statuses.length > 0 && owner.statuses.every((status) => status === 200));

  const big = rawClient(t, port, STRANGER);
  big.socket.write(`GET /snapshot.jpg?token=${TOKEN} HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(9000)}\r\n\r\n`);
  await until(() => big.closed, 'the oversized request to be refused');
  assert.match(big.received, /^HTTP\/1\.1 431 /);
  assert.equal(server.connectionStats().open, 0);
});

test('a GET that announces a body is refused without reading it, or inviting it', async (t) => {
  const { port } = await startServer(t);
  const client = rawClient(t, port);
  client.socket.write(`GET /alive?token=${TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n`);
  await until(() => client.closed, 'the connection to close');
  assert.match(client.received, /^HTTP\/1\.1 400 [^]*Connection: close/);
  const hopeful = rawClient(t, port);
  hopeful.socket.write(`GET /alive?token=${TOKEN} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000000000\r\n\r\n`);
  await until(() => hopeful.closed, 'the connection to close');
  assert.match(hopeful.received, /^HTTP\/1\.1 400 /, 'no 100 Continue: the body is never invited');
});

test('1,000 idle connections: capped per address and in total, timed out, while the owner still streams', async (t) => {
  const limits = { maxConnections: 128, reservedConnections: 16, maxConnectionsPerAddress: 16, headersTimeoutMs: 1_500, checkIntervalMs: 100 };
  const { server, source, port } = await startServer(t, { limits });
  source.emit(testJpeg('view'));
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`, OWNER)).status, 200, 'the owner, before the flood');
  const idle = Array.from({ length: 1000 }, (_, i) => rawClient(t, port, `127.0.0.${2 + (i % 20)}`));
  await until(() => idle.every((c) => c.connected || c.closed), 'every idle connection to be accepted or refused');
  await until(() => server.connectionStats().refused === 1000 - 128, 'the caps to refuse the rest');
  assert.equal(server.connectionStats().open, 128);
  const viewer = openStream(t, port);
  await until(() => server.clientCount === 1, 'the owner\'s stream, over the reserved room');
  source.emit(testJpeg('live'));
  await until(() => viewer.parts.length === 1, 'a frame to the owner');
  assert.ok(isCompleteJpeg(viewer.parts[0]!));
  assert.equal((await get(port, `/snapshot.jpg?token=${TOKEN}`, OWNER)).status, 200);
  await until(() => idle.every((c) => c.closed), 'the idle connections to time out', 10_000);
  assert.equal(server.connectionStats().open, 1, 'only the owner\'s stream is left');
  assert.equal(viewer.ended, false);
});

test('a healthy stream outlives the idle timeout: every frame written counts as activity', async (t) => {
  const { server, source, port } = await startServer(t, { limits: { idleTimeoutMs: 300 } });
  const viewer = openStream(t, port);
  await until(() => server.clientCount === 1, 'the viewer');
  const pump = setInterval(() => source.emit(testJpeg('tick')), 50);
  t.after(() => clearInterval(pump));
  await until(() => viewer.parts.length >= 25, '25 frames, over four idle timeouts', 10_000);
  assert.equal(viewer.ended, false);
  clearInterval(pump);
  await until(() => viewer.ended, 'a stream with no frame for longer than the idle timeout to be cut', 5_000);
});
