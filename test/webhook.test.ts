// handleUpdate() and the node:http webhook adapter: the same dispatch as the loop, answered once the
// handler has finished with the update, and refusing what is not Telegram's.
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import type { Update } from '@grammyjs/types';
import { Bot } from '../src/bot.js';
import { DelegatorBot, createRun, perChatId } from '../src/delegate.js';
import type { Msg } from '../src/glance.js';
import { ChatHandler } from '../src/handler.js';
import { memoryLogger } from '../src/log.js';
import { webhookCallback, type WebhookOptions } from '../src/webhook.js';
import { TOKEN } from './support.js';

const textOf = (msg: Msg) => ('text' in msg ? (msg.text ?? '') : '');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const update = (id: number, text: string, chatId = 1): Update =>
  ({ update_id: id, message: { message_id: id, date: 1, chat: { id: chatId, type: 'private', first_name: 'x' }, text } }) as Update;

async function serve(t: TestContext, bot: Bot, options?: WebhookOptions): Promise<string> {
  const server: Server = createServer(webhookCallback(bot, options));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => bot.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

function post(url: string, body: string | Buffer, headers: Record<string, string> = {}, method = 'POST'): Promise<{ status: number; text: string; atMs: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, atMs: performance.now() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('an update POSTed to the webhook reaches the handler, and the answer waits until the handler has finished', async (t) => {
  const seen: string[] = [];
  let finishedAt = 0;
  const bot = new Bot(TOKEN, { log: memoryLogger() });
  const url = await serve(t, bot, { handler: async (msg) => {
    seen.push(textOf(msg));
    await sleep(100);
    finishedAt = performance.now();
  } });
  const answer = await post(url, JSON.stringify(update(5, 'hello')));
  assert.equal(answer.status, 200);
  assert.deepEqual(seen, ['hello']);
  assert.ok(finishedAt > 0 && answer.atMs >= finishedAt, 'answered only after the handler finished');
});

test('through a DelegatorBot, a ChatHandler\'s update is answered when it asks for the next message', async (t) => {
  const events: string[] = [];
  class Chat extends ChatHandler {
    override async run() {
      for (let msg: Msg = this.initialMessage; ; msg = await this.listener.wait()) {
        await sleep(50);
        events.push(`handled ${textOf(msg)}`);
      }
    }
  }
  const bot = new DelegatorBot(TOKEN, [[perChatId(), createRun(Chat)]], { log: memoryLogger() });
  const url = await serve(t, bot);
  const first = post(url, JSON.stringify(update(1, 'a'))).then((a) => events.push(`answered a ${a.status}`));
  const second = post(url, JSON.stringify(update(2, 'b'))).then((a) => events.push(`answered b ${a.status}`));
  await Promise.all([first, second]);
  assert.deepEqual(events, ['handled a', 'answered a 200', 'handled b', 'answered b 200']);
});

test('the webhook refuses a wrong secret, another method, a body that is not an update, and an oversized body', async (t) => {
  const seen: string[] = [];
  const bot = new Bot(TOKEN, { log: memoryLogger() });
  const url = await serve(t, bot, { secretToken: 's3cret-value', maxBodyBytes: 4096, handler: (msg) => seen.push(textOf(msg)) });
  const ok = { 'x-telegram-bot-api-secret-token': 's3cret-value' };
  assert.equal((await post(url, JSON.stringify(update(1, 'no secret')))).status, 401);
  assert.equal((await post(url, JSON.stringify(update(1, 'wrong')), { 'x-telegram-bot-api-secret-token': 's3cret-valuf' })).status, 401);
  assert.equal((await post(url, '', ok, 'GET')).status, 405);
  const notJson = await post(url, '{"update_id":', ok);
  assert.deepEqual([notJson.status, notJson.text.trim()], [400, 'the body is not JSON']);
  const notUpdate = await post(url, '{"update_id":"x"}', ok);
  assert.equal(notUpdate.status, 400);
  assert.match(notUpdate.text, /handleUpdate: expected an Update object with an integer update_id/);
  assert.equal((await post(url, Buffer.alloc(100_000, 0x20), ok).catch(() => ({ status: 413 }))).status, 413);
  assert.deepEqual(seen, [], 'nothing refused reached the handler');
  assert.equal((await post(url, JSON.stringify(update(3, 'right')), ok)).status, 200);
  assert.deepEqual(seen, ['right']);
});

test('a handler stuck on a webhook update is answered after answerWithinMs, with a log line naming the update', async (t) => {
  const log = memoryLogger();
  const bot = new Bot(TOKEN, { log });
  const url = await serve(t, bot, { answerWithinMs: 100, handler: () => new Promise(() => {}) });
  const started = performance.now();
  const answer = await post(url, JSON.stringify(update(77, 'stuck')));
  assert.equal(answer.status, 200);
  assert.ok(answer.atMs - started >= 95, 'answered after the bound, not before');
  assert.ok(log.lines.some((l) => l.includes('update 77 is still unfinished after 100 ms')));
});
