import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from '@grammyjs/types';
import { LoopStopped, WaitTooLong } from '../src/errors.js';
import { Listener, Microphone, matches } from '../src/speaker.js';

const msg = (chatId: number, text: string, extra: Record<string, unknown> = {}) =>
  ({ message_id: 1, date: 1, chat: { id: chatId, type: 'private', first_name: 'x' }, text, ...extra }) as unknown as Message;

test('a nested object pattern matches on every field it names', () => {
  assert.equal(matches({ chat: { id: 1 } }, msg(1, 'a')), true);
  assert.equal(matches({ chat: { id: 2 } }, msg(1, 'a')), false);
  assert.equal(matches({ chat: { id: 1 }, text: 'b' }, msg(1, 'a')), false);
  assert.equal(matches({ from: { id: 1 } }, msg(1, 'a')), false, 'a missing field does not match');
});

test('patterns accept regular expressions and field predicates', () => {
  assert.equal(matches({ text: /^\/now/ }, msg(1, '/now')), true);
  assert.equal(matches({ text: /^\/now/ }, msg(1, 'now')), false);
  assert.equal(matches({ chat: { id: (v: unknown) => typeof v === 'number' && v > 0 } }, msg(5, 'x')), true);
  assert.equal(matches((m: unknown) => typeof m === 'object' && m !== null && 'text' in m && m.text === 'x', msg(5, 'x')), true);
});

test('wait resolves with the next matching message and skips the others', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic);
  const waiting = listener.wait({ text: 'b' });
  mic.send(msg(1, 'a'));
  mic.send(msg(1, 'b'));
  assert.equal(((await waiting) as Message).text, 'b');
});

test('messages that arrive while no one waits are kept in order for the next waits', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic);
  mic.send(msg(1, 'first'));
  mic.send(msg(1, 'second'));
  assert.equal(((await listener.wait()) as Message).text, 'first');
  assert.equal(((await listener.wait()) as Message).text, 'second');
});

test('a wait longer than listener.timeout rejects with WaitTooLong and detaches the listener', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic, 0.05);
  const started = performance.now();
  await assert.rejects(listener.wait(), (error: unknown) => error instanceof WaitTooLong && error.seconds === 0.05);
  assert.ok(performance.now() - started >= 40, 'waited about the timeout');
  assert.equal(listener.expired, true);
  assert.equal(mic.size, 0, 'a timed-out listener no longer receives messages');
});

test('a listener that captured a chat receives only that chat\'s messages', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic);
  listener.captureChat(7);
  const waiting = listener.wait();
  mic.send(msg(8, 'other chat'));
  mic.send(msg(7, 'mine'));
  assert.equal(((await waiting) as Message).text, 'mine');
});

test('stopping the microphone rejects pending waits with LoopStopped, and later waits too', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic);
  const waiting = listener.wait();
  mic.stop();
  await assert.rejects(waiting, LoopStopped);
  await assert.rejects(listener.wait(), LoopStopped);
});

test('after stop, a listener still hands out what was queued for it, then rejects with LoopStopped', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic);
  mic.send(msg(1, 'queued 1'));
  mic.send(msg(1, 'queued 2'));
  mic.stop();
  assert.equal(((await listener.wait()) as Message).text, 'queued 1');
  assert.equal(((await listener.wait()) as Message).text, 'queued 2');
  await assert.rejects(listener.wait(), LoopStopped);
});

test('once stop\'s deadline passed (abandon), queued messages are no longer handed out', async () => {
  const mic = new Microphone();
  const listener = new Listener(mic);
  mic.send(msg(1, 'queued'));
  mic.stop();
  mic.abandon();
  await assert.rejects(listener.wait(), LoopStopped);
  assert.equal(mic.queued, 0);
});
