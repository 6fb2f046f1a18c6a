import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import { Bot } from '../src/bot.js';
import { NetworkError, TelegramError } from '../src/errors.js';
import type { RecordedFile } from '../src/emulator/index.js';
import { InputFile } from '../src/inputfile.js';
import { harness, TOKEN } from './support.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-bot-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('each telepot method sends the request shape of the Bot API', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const me = await bot.getMe();
  assert.equal(me.is_bot, true);

  const sent = await bot.sendMessage(42, 'Good morning!', { reply_markup: { keyboard: [[{ text: 'Yes' }, { text: 'No' }]] } });
  assert.equal(sent.text, 'Good morning!');
  const call = h.emu.callsOf('sendMessage')[0];
  assert.deepEqual(call?.params, { chat_id: 42, text: 'Good morning!', reply_markup: { keyboard: [[{ text: 'Yes' }, { text: 'No' }]] } });

  await bot.forwardMessage(43, 42, sent.message_id);
  assert.deepEqual(h.emu.callsOf('forwardMessage')[0]?.params, { chat_id: 43, from_chat_id: 42, message_id: sent.message_id });

  await bot.sendLocation(42, 51.5, -0.12);
  assert.deepEqual(h.emu.callsOf('sendLocation')[0]?.params, { chat_id: 42, latitude: 51.5, longitude: -0.12 });

  assert.equal(await bot.sendChatAction(42, 'upload_photo'), true);
  assert.deepEqual(h.emu.callsOf('sendChatAction')[0]?.params, { chat_id: 42, action: 'upload_photo' });

  const photos = await bot.getUserProfilePhotos(42, { limit: 1 });
  assert.equal(typeof photos.total_count, 'number');
  assert.deepEqual(h.emu.callsOf('getUserProfilePhotos')[0]?.params, { user_id: 42, limit: 1 });

  assert.equal(await bot.setMyCommands([{ command: 'now', description: 'Climate now' }]), true);
  assert.deepEqual(h.emu.callsOf('setMyCommands')[0]?.params.commands, [{ command: 'now', description: 'Climate now' }]);

  assert.equal(await bot.answerCallbackQuery('cb1', { text: 'Done' }), true);
  assert.deepEqual(h.emu.callsOf('answerCallbackQuery')[0]?.params, { callback_query_id: 'cb1', text: 'Done' });

  const edited = await bot.editMessageText([42, sent.message_id], 'Good evening!');
  assert.equal(typeof edited === 'object' && 'text' in edited && edited.text, 'Good evening!');
  await bot.editMessageText(sent, 'Good night!');
  assert.deepEqual(h.emu.callsOf('editMessageText')[1]?.params, { chat_id: 42, message_id: sent.message_id, text: 'Good night!' });

  assert.equal(await bot.setWebhook('https://example.org/hook'), true);
  assert.equal(await bot.deleteWebhook(), true);
  assert.deepEqual(h.emu.callsOf('setWebhook')[0]?.params, { url: 'https://example.org/hook' });
});

test('the generic call reaches any method by name', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const commands = await bot.call('getMyCommands');
  assert.ok(Array.isArray(commands));
  const msg = await bot.call('sendMessage', { chat_id: 5, text: 'via call' });
  assert.equal(msg.chat.id, 5);
});

test('telepot\'s hide_keyboard is sent as today\'s remove_keyboard', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  await bot.sendMessage(42, 'I am hiding it', { reply_markup: { hide_keyboard: true } });
  // @ts-expect-error a markup that is neither today's nor telepot's is still refused by the types
  void (() => bot.sendMessage(42, 'x', { reply_markup: { hide_keyboard: 'yes' } }));
  assert.deepEqual(h.emu.callsOf('sendMessage')[0]?.params.reply_markup, { remove_keyboard: true });
});

test('inline keyboards are serialised in uploads too', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const markup = { inline_keyboard: [[{ text: 'Again', callback_data: 'again' }]] };
  await bot.sendPhoto(42, Buffer.from('not really a jpeg'), { caption: 'hi', reply_markup: markup });
  const call = h.emu.callsOf('sendPhoto')[0];
  assert.equal(call?.encoding, 'multipart');
  assert.deepEqual(call?.params.reply_markup, markup);
  assert.equal(call?.params.caption, 'hi');
});

test('a file goes up from a path, a Buffer or a stream, and a string is sent as a file_id', async (t) => {
  const h = await harness(t);
  const dir = await tempDir(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const data = Buffer.alloc(300_000, 7);
  const path = join(dir, 'photo.jpg');
  await writeFile(path, data);

  await bot.sendPhoto(42, InputFile.fromPath(path));
  await bot.sendDocument(42, data);
  await bot.sendAudio(42, Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
  await bot.sendVideo(42, InputFile.fromStream(Readable.from([data]), 'clip.mp4'));
  await bot.sendVoice(42, InputFile.fromBuffer(data, 'note.ogg'));
  const byId = await bot.sendSticker(42, 'CAACAgIAAxkBAAIBFileIdLooksLikeThis');

  const [photo] = h.emu.callsOf('sendPhoto');
  assert.equal(photo?.files.photo?.filename, 'photo.jpg');
  assert.equal(photo?.files.photo?.contentType, 'image/jpeg');
  for (const [method, field] of [['sendPhoto', 'photo'], ['sendDocument', 'document'], ['sendAudio', 'audio'], ['sendVideo', 'video'], ['sendVoice', 'voice']] as const) {
    const file = h.emu.callsOf(method)[0]?.files[field];
    assert.equal(file?.size, data.length, `${method} uploaded every byte`);
    assert.equal(file?.sha256, sha(data), `${method} uploaded the right bytes`);
  }
  assert.equal(h.emu.callsOf('sendVideo')[0]?.files.video?.filename, 'clip.mp4');
  const sticker = h.emu.callsOf('sendSticker')[0];
  assert.equal(sticker?.params.sticker, 'CAACAgIAAxkBAAIBFileIdLooksLikeThis');
  assert.deepEqual(sticker?.files, {});
  assert.ok(byId.sticker);
});

test('a bare string is never read as a path', async (t) => {
  const h = await harness(t);
  const dir = await tempDir(t);
  const path = join(dir, 'secret.txt');
  await writeFile(path, 'do not upload');
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  await bot.sendDocument(42, path);
  const call = h.emu.callsOf('sendDocument')[0];
  assert.equal(call?.params.document, path);
  assert.deepEqual(call?.files, {});
});

test('a missing file fails with an error naming the field, and nothing hangs', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  await assert.rejects(bot.sendPhoto(42, InputFile.fromPath('/nonexistent/photo.jpg')), (error: unknown) => {
    assert.ok(error instanceof NetworkError);
    assert.match(error.message, /photo/);
    assert.match(error.message, /ENOENT/);
    return true;
  });
});

test('a 100 MB upload from a stream grows memory by less than half its size (a buffered one needs all of it)', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const chunk = Buffer.alloc(64 * 1024, 1);
  const total = 100 * 1024 * 1024;
  const stream = () => Readable.from((function* () {
    for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  })());
  // Warm up once: a first large transfer grows RSS by socket buffers Node frees only at a later GC.
  await bot.sendDocument(42, InputFile.fromStream(stream(), 'warm-up.bin'));
  const source = stream();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    await bot.sendDocument(42, InputFile.fromStream(source, 'big.bin'));
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.equal(h.emu.callsOf('sendDocument')[1]?.files.document?.size, total);
  // The emulator runs in this process too, so this bounds both sides of the stream. Streaming costs a
  // constant here (about 25–35 MB of socket and parser buffers on this machine, whatever the size: 50,
  // 100 and 200 MB measured alike); an upload held in memory would cost at least its 100 MB.
  assert.ok(peak - before < total / 2, `RSS grew by ${((peak - before) / 1048576).toFixed(1)} MB`);
});

test('downloadFile streams a file to a path (via a .part file) or to a writable stream', async (t) => {
  const h = await harness(t);
  const dir = await tempDir(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
  const sent = await bot.sendDocument(42, InputFile.fromBuffer(data, 'report.bin'));
  const fileId = sent.document.file_id;

  const dest = join(dir, 'copy.bin');
  await bot.downloadFile(fileId, dest);
  assert.deepEqual(await readFile(dest), data);
  assert.deepEqual(await readdir(dir), ['copy.bin'], 'no partial file left behind');

  const chunks: Buffer[] = [];
  await bot.downloadFile(fileId, new Writable({ write(c: Buffer, _e, done) { chunks.push(c); done(); } }));
  assert.deepEqual(Buffer.concat(chunks), data);
});

test('an unknown file_id fails with the Bot API\'s description and leaves no file', async (t) => {
  const h = await harness(t);
  const dir = await tempDir(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  await assert.rejects(bot.downloadFile('nope', join(dir, 'x')), (error: unknown) => error instanceof TelegramError && error.method === 'getFile' && error.errorCode === 400);
  assert.deepEqual(await readdir(dir), []);
});

test('an API error carries method, code, description and parameters', async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  await assert.rejects(bot.sendMessage(42, ''), (error: unknown) => {
    assert.ok(error instanceof TelegramError);
    assert.equal(error.method, 'sendMessage');
    assert.equal(error.errorCode, 400);
    assert.match(error.description, /message text is empty/);
    return true;
  });
  const once = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, flow: false }));
  h.emu.injectFault({ kind: 'retryAfter', seconds: 3 }, { method: 'sendMessage' });
  await assert.rejects(once.sendMessage(42, 'x'), (error: unknown) => error instanceof TelegramError && error.errorCode === 429 && error.parameters.retry_after === 3);
});

test('the token never appears in an error\'s text, whatever fails', async (t) => {
  const h = await harness(t);
  // Sent once: the error itself is what is read here, not a resend.
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log, timeoutMs: 200, flow: { maxAttempts: 1 } }));
  const faults = [{ kind: 'hang' }, { kind: 'reset' }, { kind: 'malformed' }, { kind: 'truncated' }, { kind: 'status', status: 502 }, { kind: 'unauthorized' }] as const;
  for (const fault of faults) {
    h.emu.injectFault(fault);
    const error = await bot.getMe().then(() => undefined, (e: unknown) => e as Error);
    assert.ok(error, `${fault.kind} fails`);
    const text = `${error.message} ${error.stack ?? ''} ${String((error.cause as Error | undefined)?.message)} ${JSON.stringify(error)}`;
    assert.ok(!text.includes(TOKEN), `${fault.kind}: token leaked in ${text}`);
    assert.ok(!text.includes(TOKEN.split(':')[1] as string), `${fault.kind}: token secret leaked`);
  }
  const offline = h.own(new Bot(TOKEN, { apiRoot: 'http://127.0.0.1:9', log: h.log, flow: { maxAttempts: 1 } }));
  const refused = await offline.getMe().then(() => undefined, (e: unknown) => e as Error);
  assert.ok(refused instanceof NetworkError && refused.failure === 'network' && refused.notSent, 'a refused connection is known not to have been sent');
  assert.ok(!refused.message.includes(TOKEN));
});

test('sendMediaGroup with three Buffers sends three files, each named by attach://', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const files = [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(3000, 3)];
  const album = await bot.sendMediaGroup(42, [
    { type: 'photo', media: files[0] as Buffer, caption: 'first' },
    { type: 'photo', media: InputFile.fromBuffer(files[1] as Buffer, 'second.jpg') },
    { type: 'video', media: Readable.from([files[2] as Buffer]) },
  ]);
  assert.equal(album.length, 3);
  assert.equal(new Set(album.map((m) => ('media_group_id' in m ? m.media_group_id : undefined))).size, 1, 'one album');
  const call = h.emu.callsOf('sendMediaGroup')[0];
  assert.equal(call?.encoding, 'multipart');
  const media = call?.params.media as Array<{ media: string; caption?: string }>;
  assert.deepEqual(media.map((m) => m.media), ['attach://file0', 'attach://file1', 'attach://file2']);
  assert.equal(media[0]?.caption, 'first');
  for (const [i, data] of files.entries()) {
    const part: RecordedFile | undefined = call?.files[`file${i}`];
    assert.equal(part?.size, data.length, `file${i} arrived whole`);
    assert.equal(part?.sha256, sha(data));
  }
  assert.equal(call?.files.file1?.filename, 'second.jpg');
  const stored = album.map((m) => ('photo' in m ? m.photo?.at(-1)?.file_id : 'video' in m ? m.video?.file_id : undefined));
  assert.deepEqual(stored.map((id) => (id === undefined ? undefined : h.emu.files.get(id)?.size)), [1000, 2000, 3000]);
});

test('editMessageMedia, sendPaidMedia and a sticker set take uploads nested in their objects', { timeout: 10_000 }, async (t) => {
  const h = await harness(t);
  const dir = await tempDir(t);
  const bot = h.own(new Bot(TOKEN, { apiRoot: h.emu.apiRoot, log: h.log }));
  const sent = await bot.sendPhoto(42, Buffer.from('old photo'));
  const replacement = Buffer.alloc(5000, 9);
  const edited = await bot.call('editMessageMedia', { chat_id: 42, message_id: sent.message_id, media: { type: 'photo', media: replacement, caption: 'new' } });
  assert.ok(typeof edited === 'object' && 'photo' in edited && edited.caption === 'new');
  assert.equal(h.emu.callsOf('editMessageMedia')[0]?.files.file0?.sha256, sha(replacement));

  const path = join(dir, 'paid.jpg');
  await writeFile(path, Buffer.alloc(700, 4));
  const paid = await bot.call('sendPaidMedia', { chat_id: 42, star_count: 5, media: [{ type: 'photo', media: InputFile.fromPath(path) }] });
  assert.equal(paid.paid_media?.star_count, 5);
  assert.equal(h.emu.callsOf('sendPaidMedia')[0]?.files.file0?.filename, 'paid.jpg');

  const stickers = [Buffer.alloc(100, 1), Buffer.alloc(200, 2)].map((sticker) => ({ sticker, format: 'static' as const, emoji_list: ['🌡'] }));
  assert.equal(await bot.call('createNewStickerSet', { user_id: 42, name: 'climate_by_telepi_bot', title: 'Climate', stickers }), true);
  const set = h.emu.callsOf('createNewStickerSet')[0];
  assert.deepEqual([set?.files.file0?.size, set?.files.file1?.size], [100, 200]);

  await assert.rejects(
    bot.call('editMessageMedia', { chat_id: 42, message_id: sent.message_id, media: { type: 'photo', media: 'attach://nowhere' } }),
    /there is no nowhere in the request/,
  );
});
