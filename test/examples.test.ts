import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { createChatbox } from '../src/examples/chatbox.js';
import { createCounter } from '../src/examples/counter.js';
import { createDiceyClock } from '../src/examples/diceyclock.js';
import { codePoints, createEmodi } from '../src/examples/emodi.js';
import { createGuess } from '../src/examples/guess.js';
import { createSkeleton } from '../src/examples/skeleton.js';
import { eventually, harness, textsTo, TOKEN } from './support.js';

test('dicey clock answers /roll with 1 to 6 and /time with the time', async (t) => {
  const h = await harness(t);
  const bot = createDiceyClock(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, now: () => new Date('2026-11-25T08:30:00Z') });
  h.loop(bot);
  for (let i = 0; i < 30; i++) h.emu.pushText('/roll');
  h.emu.pushText('/time');
  await eventually(() => h.emu.sentMessages(42).length === 31);
  const replies = textsTo(h.emu, 42);
  const rolls = replies.slice(0, 30).map(Number);
  assert.ok(rolls.every((n) => Number.isInteger(n) && n >= 1 && n <= 6), `rolls: ${rolls}`);
  assert.ok(new Set(rolls).size > 1, 'the die is not stuck on one face');
  assert.equal(replies[30], '2026-11-25 08:30:00');
});

test('the counter counts three chats independently', async (t) => {
  const h = await harness(t);
  h.loop(createCounter(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }), undefined, { stopDeadlineMs: 50 });
  const plan = [1, 2, 1, 3, 1, 2, 3, 3, 3];
  for (const chatId of plan) h.emu.pushText('hello', { chatId });
  await eventually(() => h.emu.sentMessages().length === plan.length);
  assert.deepEqual(textsTo(h.emu, 1), ['1', '2', '3']);
  assert.deepEqual(textsTo(h.emu, 2), ['1', '2']);
  assert.deepEqual(textsTo(h.emu, 3), ['1', '2', '3', '4']);
});

test('guess-a-number plays two games at once to the end', async (t) => {
  const h = await harness(t);
  h.loop(createGuess(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  // Each player bisects from the bot's "Larger"/"Smaller" answers until "Correct!".
  const players = [101, 202].map((chatId) => ({ chatId, low: 0, high: 100, guesses: 0, won: false }));
  for (const p of players) h.emu.pushText('hi', { chatId: p.chatId });
  for (const p of players) await eventually(() => textsTo(h.emu, p.chatId).length === 2);
  for (const p of players) assert.deepEqual(textsTo(h.emu, p.chatId), ['Guess my number (0 to 100)', 'Give me a number, please.']);
  while (players.some((p) => !p.won)) {
    const active = players.filter((p) => !p.won);
    const guesses = active.map((p) => Math.floor((p.low + p.high) / 2));
    active.forEach((p, i) => {
      p.guesses++;
      h.emu.pushText(String(guesses[i]), { chatId: p.chatId });
    });
    for (const [i, p] of active.entries()) {
      await eventually(() => textsTo(h.emu, p.chatId).length === 2 + p.guesses);
      const answer = textsTo(h.emu, p.chatId).at(-1);
      const guess = guesses[i] as number;
      if (answer === 'Correct!') p.won = true;
      else if (answer === 'Larger') p.low = guess + 1;
      else if (answer === 'Smaller') p.high = guess - 1;
      else assert.fail(`unexpected answer ${answer}`);
      assert.ok(p.guesses <= 8, 'bisection ends within 8 guesses');
    }
  }
  assert.ok(players.every((p) => p.won));
});

test('chatbox keeps strangers\' messages and replays them to the owner only', async (t) => {
  const h = await harness(t);
  const owner = 1000;
  h.loop(createChatbox(TOKEN, owner, { apiRoot: h.emu.apiRoot, log: h.log }), undefined, { stopDeadlineMs: 50 });
  h.emu.pushText('hello there', { chatId: 5, firstName: 'Bea' });
  h.emu.pushText('second note', { chatId: 5, firstName: 'Bea' });
  h.emu.pushText('/unread', { chatId: 6, firstName: 'Cy' });
  await eventually(() => h.emu.confirmedOffset >= 3 || h.emu.queuedUpdates === 0);
  h.emu.pushText('/unread', { chatId: owner });
  await eventually(() => textsTo(h.emu, owner).length === 1);
  assert.deepEqual(textsTo(h.emu, owner)[0]?.split('\n'), ['Bea: 2', 'Cy: 1']);
  h.emu.pushText('/next', { chatId: owner });
  await eventually(() => h.emu.callsOf('forwardMessage').length === 2);
  assert.deepEqual(h.emu.callsOf('forwardMessage').map((c) => c.params.from_chat_id), [5, 5]);
  assert.equal(textsTo(h.emu, 6).length, 0, 'a stranger\'s /unread is stored, not obeyed');
  h.emu.pushText('/unread', { chatId: owner });
  await eventually(() => textsTo(h.emu, owner).includes('Cy: 1'));
});

test('emodi answers with code points, and skeleton glances at what comes', async (t) => {
  assert.equal(codePoints('😊!'), 'U+1F60A U+0021');
  const h = await harness(t);
  const emodi = h.loop(createEmodi(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  h.emu.pushText('👍🏽', { chatId: 3 });
  await eventually(() => textsTo(h.emu, 3).length === 1);
  assert.equal(textsTo(h.emu, 3)[0], 'U+1F44D U+1F3FD');
  const skeleton = createSkeleton(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log });
  await emodi.stop();
  h.loop(skeleton);
  h.emu.pushText('/start', { chatId: -7, chatType: 'group' });
  await eventually(() => skeleton.seen.length >= 1);
  assert.deepEqual(skeleton.seen.at(-1), ['text', 'group', -7]);
});

test('an example runs from the command line against any Bot API root and stops on SIGTERM', async (t) => {
  const h = await harness(t);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/examples/diceyclock.ts'], {
    env: { ...process.env, TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_API_ROOT: h.emu.apiRoot },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  h.emu.pushText('/roll', { chatId: 77 });
  await eventually(() => textsTo(h.emu, 77).length === 1, 15_000, 'the example answered');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(h.emu.queuedUpdates, 0, 'it confirmed the offset on the way out');
  assert.ok(!stderr.includes(TOKEN));
});
