// Red team: odd-but-valid and hostile Bot API answers against the client, from a tiny loopback server.
// An answer that trickles forever ends at the client-side timeout; one of gigabytes is cut at a bound
// without being kept; `ok: true` without a result is a malformed answer, not an undefined Message; a
// character split across chunks arrives whole; no error text carries the token.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { ApiClient, maxAnswerBytes } from '../src/client.js';
import { NetworkError } from '../src/errors.js';
import { TOKEN } from './support.js';

type Answer = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(t: TestContext, answer: Answer): Promise<{ client: ApiClient; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new ApiClient(TOKEN, { apiRoot: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 800, flow: false });
  t.after(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { client, requests: () => requests };
}

/** An answer that starts, then sends a space every 100 ms and never ends. */
function trickle(t: TestContext, headers: http.OutgoingHttpHeaders): Answer {
  const timers = new Set<NodeJS.Timeout>();
  t.after(() => timers.forEach(clearInterval));
  return (_req, res) => {
    res.writeHead(200, headers);
    res.write('{"ok":true,"result":');
    const timer = setInterval(() => res.write(' '), 100);
    timers.add(timer);
    res.on('close', () => clearInterval(timer));
  };
}

function noToken(error: unknown): void {
  const text = `${String(error)} ${JSON.stringify(error)} ${(error as Error).stack ?? ''}`;
  assert.ok(!text.includes(TOKEN.split(':')[1] as string), 'the token is not in the error');
}

test('an answer that trickles a byte every 100 ms ends at the client-side timeout', { timeout: 10_000 }, async (t) => {
  const { client } = await serve(t, trickle(t, { 'content-type': 'application/json' }));
  const started = Date.now();
  const error = await client.call('getMe').then(() => undefined, (e: unknown) => e);
  const took = Date.now() - started;
  assert.ok(error instanceof NetworkError, `a NetworkError, not ${String(error)}`);
  assert.equal(error.failure, 'timeout');
  assert.match(error.message, /no complete answer within \d+ ms/);
  assert.ok(took < 3000, `ended after ${took} ms, not at the 800 ms timeout`);
  noToken(error);
});

test('the caller aborting still ends the call as aborted, not as a timeout', { timeout: 10_000 }, async (t) => {
  const { client } = await serve(t, () => undefined);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const error = await client.call('getMe', {}, { signal: controller.signal, timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof NetworkError);
  assert.equal(error.failure, 'aborted');
});

test('an answer larger than the bound is refused as it streams, without being kept', { timeout: 15_000 }, async (t) => {
  let written = 0;
  const { client } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"ok":true,"result":"');
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const more = () => {
      // 4× the bound in all, unless the client hangs up first.
      while (written < 4 * maxAnswerBytes && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end('"}');
    };
    res.on('error', () => undefined);
    more();
  });
  const error = await client.call('getMe', {}, { timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof NetworkError, `a NetworkError, not ${String(error)}`);
  assert.equal(error.failure, 'malformed');
  assert.match(error.message, /body over 32 MiB/);
  assert.ok(written < 3 * maxAnswerBytes, `the client stopped reading (${written >> 20} MiB written)`);
});

test('a Content-Length over the bound is refused before the body is read', { timeout: 10_000 }, async (t) => {
  const { client } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(maxAnswerBytes + 1) });
    res.write('{"ok":true,');
  });
  const error = await client.call('getMe').then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof NetworkError);
  assert.match(error.message, /body over 32 MiB/);
});

test('"ok": true without a result is a malformed answer for a send, and a send is not made twice', { timeout: 10_000 }, async (t) => {
  const { client, requests } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('{"ok":true}');
  });
  const flowing = new ApiClient(TOKEN, { apiRoot: client.apiRoot, timeoutMs: 800, flow: { backoffInitialMs: 1, backoffCapMs: 2 } });
  t.after(() => flowing.close());
  const error = await flowing.call('sendMessage', { chat_id: 1, text: 'x' }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof NetworkError, `a NetworkError, not ${String(error)}`);
  assert.equal(error.failure, 'malformed');
  assert.match(error.message, /"ok": true but no "result"/);
  assert.equal(requests(), 1, 'a message that may have arrived is not sent again');
  // A result of false, null or true is a result.
  noToken(error);
});

test('a result of null, false or true is passed on as it is', { timeout: 10_000 }, async (t) => {
  const results = ['null', 'false', 'true'];
  let i = 0;
  const { client } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"ok":true,"result":${results[i++]},"unknown_field":{"a":[1,2]}}`);
  });
  assert.equal(await client.call('deleteWebhook'), null);
  assert.equal(await client.call('deleteWebhook'), false);
  assert.equal(await client.call('deleteWebhook'), true);
});

test('a multi-byte character split across chunks (and packets) arrives whole', { timeout: 10_000 }, async (t) => {
  const body = Buffer.from('{"ok":true,"result":{"text":"Grüße 🌡️ 21 °C"}}');
  const split = body.indexOf(Buffer.from('🌡')) + 2;
  const timers = new Set<NodeJS.Timeout>();
  t.after(() => timers.forEach(clearTimeout));
  const { client } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write(body.subarray(0, split));
    timers.add(setTimeout(() => res.end(body.subarray(split)), 50));
  });
  assert.deepEqual(await client.call('getMe'), { text: 'Grüße 🌡️ 21 °C' });
});

test('an answer with a Content-Length that trickles ends at the client-side timeout too', { timeout: 10_000 }, async (t) => {
  const { client } = await serve(t, trickle(t, { 'content-type': 'application/json', 'content-length': '1000' }));
  const started = Date.now();
  const error = await client.call('getMe').then(() => undefined, (e: unknown) => e);
  const took = Date.now() - started;
  assert.ok(error instanceof NetworkError, `a NetworkError, not ${String(error)}`);
  assert.equal(error.failure, 'timeout');
  assert.ok(took < 3000, `ended after ${took} ms, not at the 800 ms timeout`);
  noToken(error);
});
