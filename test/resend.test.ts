import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Bot } from '../src/bot.js';
import { NetworkError, TelegramError } from '../src/errors.js';
import { BotApiEmulator } from '../src/emulator/index.js';
import { isRepeatable, resendDecision } from '../src/resend.js';
import { harness, TOKEN } from './support.js';
import { freePort } from './free-port.js';

const quickResend = { backoffInitialMs: 5, backoffCapMs: 20 };

test('a send that meets 429 is delivered after retry_after, once', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  h.emu.injectFault({ kind: 'retryAfter', seconds: 1 }, { method: 'sendMessage' });
  const startMs = performance.now();
  const sent = await bot.sendMessage(42, 'report');
  const elapsedMs = performance.now() - startMs;
  assert.equal(sent.text, 'report');
  assert.ok(elapsedMs >= 990, `waited ${Math.round(elapsedMs)} ms, retry_after asked 1000`);
  assert.deepEqual(h.emu.callsOf('sendMessage').map((c) => c.fault ?? 'answered'), ['retryAfter', 'answered']);
  assert.equal(h.emu.sentMessages(42).length, 1);
  assert.ok(h.log.lines.some((line) => /sendMessage failed: rate limited.*sending it again in 1000 ms/.test(line)), h.log.lines.join('\n'));
});

test('a 429 asking for longer than maxRetryAfterSeconds fails at once', { timeout: 5000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: { maxRetryAfterSeconds: 5 } }));
  h.emu.injectFault({ kind: 'retryAfter', seconds: 30 }, { method: 'sendMessage' });
  await assert.rejects(bot.sendMessage(42, 'x'), (error: unknown) => error instanceof TelegramError && error.errorCode === 429);
  assert.equal(h.emu.callsOf('sendMessage').length, 1);
});

test('a message that may have arrived (5xx, reset) is not sent twice; a repeatable method is', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: quickResend }));
  h.emu.injectFault({ kind: 'status', status: 502 }, { method: 'sendMessage' });
  await assert.rejects(bot.sendMessage(42, 'once'), (error: unknown) => error instanceof TelegramError && error.errorCode === 502);
  h.emu.injectFault({ kind: 'reset' }, { method: 'sendMessage' });
  await assert.rejects(bot.sendMessage(42, 'once more'), NetworkError);
  assert.equal(h.emu.callsOf('sendMessage').length, 2, 'each sent exactly once');

  h.emu.injectFault({ kind: 'status', status: 500 }, { method: 'setMyCommands' });
  h.emu.injectFault({ kind: 'reset' }, { method: 'setMyCommands' });
  h.emu.injectFault({ kind: 'malformed' }, { method: 'setMyCommands' });
  assert.equal(await bot.setMyCommands([{ command: 'now', description: 'Climate now' }]), true);
  assert.deepEqual(h.emu.callsOf('setMyCommands').map((c) => c.fault ?? 'answered'), ['status', 'reset', 'malformed', 'answered']);
});

test('resendAmbiguous sends a message again after a reset; attempts are bounded', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: { ...quickResend, resendAmbiguous: true, maxAttempts: 3 } }));
  h.emu.injectFault({ kind: 'reset' }, { method: 'sendMessage' });
  assert.equal((await bot.sendMessage(42, 'after a reset')).text, 'after a reset');
  h.emu.injectFault({ kind: 'status', status: 503 }, { method: 'sendMessage', count: 5 });
  await assert.rejects(bot.sendMessage(42, 'never'), (error: unknown) => error instanceof TelegramError && error.errorCode === 503);
  assert.equal(h.emu.callsOf('sendMessage').length, 2 + 3, 'three attempts, then the error');
});

test('a send to a server that refuses the connection goes out once it is up', { timeout: 10_000 }, async (t) => {
  const port = await freePort();
  const bot = new Bot(TOKEN, { apiRoot: `http://127.0.0.1:${port}`, flow: { backoffInitialMs: 100, backoffCapMs: 200, maxAttempts: 20 }, log: (await harness(t)).log });
  t.after(() => bot.close());
  const sent = bot.sendMessage(42, 'eventually');
  await new Promise((resolve) => setTimeout(resolve, 150));
  const emu = await BotApiEmulator.start({ token: TOKEN, port });
  t.after(() => emu.close());
  assert.equal((await sent).text, 'eventually');
  assert.equal(emu.callsOf('sendMessage').length, 1);
});

test('an upload read from a stream is not sent twice, and says why', { timeout: 5000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: quickResend }));
  h.emu.injectFault({ kind: 'retryAfter', seconds: 1 }, { method: 'sendDocument' });
  await assert.rejects(bot.sendDocument(42, Readable.from([Buffer.from('once')])), (error: unknown) => error instanceof TelegramError && error.errorCode === 429);
  h.emu.injectFault({ kind: 'retryAfter', seconds: 1 }, { method: 'sendDocument' });
  const fromBuffer = await bot.sendDocument(42, Buffer.from('twice is fine'));
  assert.ok(fromBuffer.document);
  const calls = h.emu.callsOf('sendDocument');
  assert.equal(calls.length, 3);
  assert.equal(calls[2]?.files.document?.size, 'twice is fine'.length, 'the retried upload carries every byte again');
});

test('close() ends a send waiting to go out again, promptly', { timeout: 5000 }, async (t) => {
  const h = await harness(t);
  const bot = new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  h.emu.injectFault({ kind: 'retryAfter', seconds: 30 }, { method: 'sendMessage' });
  const sending = bot.sendMessage(42, 'never');
  await h.emu.waitForCall('sendMessage');
  const startMs = performance.now();
  const rejected = assert.rejects(sending, (error: unknown) => error instanceof NetworkError && error.failure === 'aborted');
  await bot.close();
  await rejected;
  assert.ok(performance.now() - startMs < 1000);
});

test('only methods that do no harm twice count as repeatable', () => {
  for (const method of ['getMe', 'setMyCommands', 'editMessageText', 'answerCallbackQuery', 'deleteMessage', 'sendChatAction', 'closeForumTopic']) {
    assert.equal(isRepeatable(method), true, method);
  }
  for (const method of ['sendMessage', 'sendPhoto', 'forwardMessage', 'copyMessage', 'sendMediaGroup', 'createChatInviteLink', 'close', 'logOut', 'transferGift']) {
    assert.equal(isRepeatable(method), false, method);
  }
});


test('the resend decision, case by case, including odd answers from a hostile server', () => {
  const limited = (retryAfter: unknown) => new TelegramError('sendMessage', 429, 'Too Many Requests', { retry_after: retryAfter as number });
  const refused = new NetworkError('sendMessage', 'network', 'network error (ECONNREFUSED)', undefined, true);
  const reset = new NetworkError('sendMessage', 'network', 'network error (ECONNRESET)');
  const fixed = { random: () => 0.5, backoffInitialMs: 100, backoffCapMs: 1000 };
  const delayOf = (d: ReturnType<typeof resendDecision>) => (d.retry ? d.delayMs : undefined);
  assert.equal(delayOf(resendDecision('sendMessage', limited(2), 0, true, fixed)), 2000);
  assert.equal(delayOf(resendDecision('sendMessage', limited(1e9), 0, true, fixed)), undefined, 'an absurd retry_after fails at once');
  assert.equal(delayOf(resendDecision('sendMessage', limited('soon'), 0, true, fixed)), 75, 'a retry_after that is not a number: plain backoff');
  assert.equal(delayOf(resendDecision('sendMessage', limited(-5), 0, true, fixed)), 75, 'a negative one too');
  assert.equal(delayOf(resendDecision('sendMessage', refused, 2, true, fixed)), 300, 'never sent: backoff grows with the attempt');
  assert.equal(delayOf(resendDecision('sendMessage', refused, 3, true, fixed)), undefined, 'the fourth failure is the last');
  assert.equal(delayOf(resendDecision('sendMessage', reset, 0, true, fixed)), undefined);
  assert.equal(delayOf(resendDecision('sendMessage', reset, 0, true, { ...fixed, resendAmbiguous: true })), 75);
  assert.equal(delayOf(resendDecision('getChat', reset, 0, true, fixed)), 75);
  assert.equal(delayOf(resendDecision('sendDocument', limited(1), 0, false, fixed)), undefined, 'a stream cannot be read twice');
  assert.equal(delayOf(resendDecision('sendMessage', new TelegramError('sendMessage', 400, 'Bad Request'), 0, true, fixed)), undefined);
  assert.equal(delayOf(resendDecision('sendMessage', new NetworkError('sendMessage', 'aborted', 'aborted'), 0, true, fixed)), undefined);
  assert.equal(delayOf(resendDecision('sendMessage', new Error('could not read the file'), 0, true, fixed)), undefined);
});

test('a chat id given as a numeric string is paced as the same chat', { timeout: 5000 }, async (t) => {
  const h = await harness(t, { rateLimits: { perChat: { count: 1, windowMs: 60_000 } } });
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: { limits: { perChat: { count: 1, windowMs: 60_000 } }, maxAttempts: 1 } }));
  await bot.sendMessage(42, 'first');
  let second = false;
  void bot.sendMessage('42', 'second').then(() => (second = true), () => undefined);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(second, false, '"42" waits for 42\'s window instead of meeting a 429');
  assert.equal(h.emu.calls.filter((call) => call.rateLimited).length, 0);
});
