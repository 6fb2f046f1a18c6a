import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Authorizer } from '../src/app/auth.js';

function setup() {
  let nowMs = 1_000_000;
  const clock = { now: () => nowMs };
  const auth = new Authorizer({ owners: [1], users: [2], clock });
  return { auth, advance: (ms: number) => { nowMs += ms; } };
}

test('owners, users and strangers get their roles', () => {
  const { auth } = setup();
  assert.equal(auth.roleOf(1), 'owner');
  assert.equal(auth.roleOf(2), 'user');
  assert.equal(auth.roleOf(3), null);
  assert.equal(auth.roleOf(undefined), null);
});

test('owners may do everything, users the climate commands, strangers nothing', () => {
  const { auth } = setup();
  assert.equal(auth.may(1, 'owner'), true);
  assert.equal(auth.may(1, 'user'), true);
  assert.equal(auth.may(2, 'user'), true);
  assert.equal(auth.may(2, 'owner'), false);
  assert.equal(auth.may(3, 'user'), false);
  assert.equal(auth.may(undefined, 'user'), false);
});

test('someone listed as both owner and user is an owner', () => {
  const auth = new Authorizer({ owners: [5], users: [5] });
  assert.equal(auth.roleOf(5), 'owner');
  assert.equal(auth.may(5, 'owner'), true);
});

test('a stranger gets at most one refusal per minute', () => {
  const { auth, advance } = setup();
  assert.equal(auth.shouldSendRefusal(3), true);
  advance(59_999);
  assert.equal(auth.shouldSendRefusal(3), false);
  assert.equal(auth.shouldSendRefusal(4), true, 'another stranger is limited on their own');
  advance(1);
  assert.equal(auth.shouldSendRefusal(3), true);
  assert.equal(auth.shouldSendRefusal(3), false);
  assert.equal(auth.shouldSendRefusal(undefined), false, 'no sender, no one to answer');
});

test('the refusal interval can be set', () => {
  let nowMs = 0;
  const auth = new Authorizer({ owners: [1], users: [], clock: { now: () => nowMs }, refusalIntervalMs: 1000 });
  assert.equal(auth.shouldSendRefusal(9), true);
  nowMs = 1000;
  assert.equal(auth.shouldSendRefusal(9), true);
});

test('refusals are forgotten once they expire, so memory stays bounded', () => {
  const { auth, advance } = setup();
  for (let id = 100; id < 600; id++) auth.shouldSendRefusal(id);
  assert.equal(auth.rememberedRefusals, 500);
  advance(60_000);
  auth.shouldSendRefusal(7);
  assert.equal(auth.rememberedRefusals, 1);
});

test('a flood of distinct strangers within a minute cannot grow memory past the cap', () => {
  const { auth } = setup();
  for (let id = 100; id < 10_100 + 500; id++) auth.shouldSendRefusal(id);
  assert.ok(auth.rememberedRefusals <= 10_000, `remembers ${auth.rememberedRefusals}`);
  assert.equal(auth.shouldSendRefusal(10_599), false, 'the most recent stranger is still limited');
});

test('the refusal shows the user id and what to do', () => {
  const { auth } = setup();
  assert.equal(auth.refusalText(123456789),
    'Sorry, this bot is private. Your user id is 123456789 — ask the owner to add it to TELEPI_USERS.');
});
