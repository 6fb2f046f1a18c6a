// Red team: odd migrate_to_chat_id answers. Only a group (negative id) becomes a supergroup (negative
// id): a migrate_to_chat_id for a private chat, to a positive id or to the chat itself leaves the
// subscription where it is (logged as a failed report) instead of moving a private chat's reports away.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ClimateService, migratedTo } from '../src/app/climate.js';
import { StateStore } from '../src/app/state.js';
import { TelegramError } from '../src/errors.js';
import { memoryLogger } from '../src/log.js';
import { FakeClock } from './fakes/clock.js';

const upgraded = (to: unknown) => new TelegramError('sendMessage', 400, 'Bad Request: group chat was upgraded to a supergroup chat', { migrate_to_chat_id: to as number });

test('migratedTo: only a group to a negative id other than its own', () => {
  assert.equal(migratedTo(upgraded(-1_000_000_500), -500), -1_000_000_500);
  assert.equal(migratedTo(upgraded(-1_000_000_500)), -1_000_000_500);
  assert.equal(migratedTo(upgraded(-1_000_000_500), 42), null, 'a private chat does not become a supergroup');
  assert.equal(migratedTo(upgraded(777), -500), null, 'a supergroup id is negative');
  assert.equal(migratedTo(upgraded(-500), -500), null, 'not to itself');
  assert.equal(migratedTo(upgraded('-1000000500'), -500), null);
});

async function service(t: TestContext, send: (chatId: number, text: string) => Promise<unknown>) {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-redteam-migrate-'));
  const log = memoryLogger();
  const store = await StateStore.open(dir, log);
  const clock = new FakeClock();
  const climate = new ClimateService({ sensor: { description: 'fake', read: async () => ({ temperatureC: 21, humidityPercent: 40, pressureHpa: 1000 }) } as never, store, send, clock, log });
  t.after(async () => {
    climate.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { climate, store, log };
}

test('a report to a private chat answered with migrate_to_chat_id stays subscribed there', async (t) => {
  const sent: number[] = [];
  const { climate, store, log } = await service(t, async (chatId) => {
    sent.push(chatId);
    if (chatId === 42) throw upgraded(-1_000_000_999);
  });
  await climate.subscribe(42, 3_600_000);
  await climate.report(42);
  assert.deepEqual(store.state.subscriptions.map((s) => s.chatId), [42], 'the subscription did not move');
  assert.deepEqual(sent, [42], 'nothing was sent to the odd id');
  assert.ok(log.lines.some((line) => /report to chat 42 failed/.test(line)));
});

test('a group answered with migrate_to_chat_id still moves (the control)', async (t) => {
  const sent: number[] = [];
  const { climate, store } = await service(t, async (chatId) => {
    sent.push(chatId);
    if (chatId === -500) throw upgraded(-1_000_000_500);
  });
  await climate.subscribe(-500, 3_600_000);
  await climate.report(-500);
  assert.deepEqual(store.state.subscriptions.map((s) => s.chatId), [-1_000_000_500]);
  assert.deepEqual(sent, [-500, -1_000_000_500]);
});
