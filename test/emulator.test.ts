import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { Message, Update } from '@grammyjs/types';
import { BotApiEmulator, type EmulatorOptions } from '../src/emulator/index.js';
import { MultipartParser } from '../src/emulator/multipart.js';
import { SpillDir } from '../src/emulator/uploads.js';

const TOKEN = '123456:TEST-token_abc';

interface Answer {
  status: number;
  body: { ok: boolean; result?: unknown; error_code?: number; description?: string; parameters?: { retry_after?: number } };
  headers: Headers;
}

async function withEmulator(options: EmulatorOptions, fn: (emu: BotApiEmulator) => Promise<void>): Promise<void> {
  const emu = await BotApiEmulator.start(options);
  try {
    await fn(emu);
  } finally {
    await emu.close();
  }
}

const url = (emu: BotApiEmulator, method: string, token = TOKEN): string => `${emu.apiRoot}/bot${token}/${method}`;

async function answer(response: Response): Promise<Answer> {
  return { status: response.status, body: (await response.json()) as Answer['body'], headers: response.headers };
}

async function api(emu: BotApiEmulator, method: string, params?: Record<string, unknown>, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url(emu, method), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params ?? {}),
    ...init,
  });
  return answer(response);
}

function multipart(fields: Record<string, string>, files: Record<string, { name: string; type: string; bytes: Buffer }>): { body: Buffer; type: string } {
  const boundary = '----telepi-test-boundary-7MA4YWxkTrZu0gW';
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const [name, file] of Object.entries(files)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`));
    parts.push(file.bytes, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('getMe answers with a good token and 401 with a bad one; unknown routes and methods are 404', async () => {
  await withEmulator({}, async (emu) => {
    assert.match(emu.apiRoot, /^http:\/\/127\.0\.0\.1:\d+$/);
    const me = await api(emu, 'getMe');
    assert.equal(me.status, 200);
    assert.match(me.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(me.body.ok, true);
    const bot = me.body.result as { id: number; is_bot: boolean; username: string };
    assert.equal(bot.id, 1000);
    assert.equal(bot.is_bot, true);
    assert.equal(bot.username, 'telepi_bot');

    const bad = await answer(await fetch(url(emu, 'getMe', 'not-a-token')));
    assert.deepEqual([bad.status, bad.body], [401, { ok: false, error_code: 401, description: 'Unauthorized' }]);

    const lower = await answer(await fetch(url(emu, 'getme')));
    assert.equal(lower.status, 200);
    assert.equal(emu.callsOf('getMe').length, 3);
    assert.equal(emu.callsOf('getMe')[2]?.method, 'getme');
    assert.equal(emu.callsOf('getMe')[2]?.encoding, 'none');

    const unknown = await answer(await fetch(url(emu, 'noSuchMethod')));
    assert.deepEqual([unknown.status, unknown.body], [404, { ok: false, error_code: 404, description: 'Not Found' }]);
    const elsewhere = await answer(await fetch(`${emu.apiRoot}/something/else`));
    assert.equal(elsewhere.status, 404);
    assert.equal(elsewhere.body.description, 'Not Found');
  });
  await withEmulator({ token: '42:only-this', bot: { first_name: 'Custom', username: 'custom_bot' } }, async (emu) => {
    assert.equal((await answer(await fetch(url(emu, 'getMe')))).status, 401);
    const me = await answer(await fetch(url(emu, 'getMe', '42:only-this')));
    assert.equal((me.body.result as { username: string }).username, 'custom_bot');
  });
});

test('pushText reaches getUpdates with a bot_command entity, and offsets confirm', async () => {
  await withEmulator({}, async (emu) => {
    const first = emu.pushText('/start@telepi_bot hello');
    const second = emu.pushText('just text', { userId: 7, firstName: 'Ann', username: 'ann' });
    const third = emu.pushText('/now', { chatId: -1001234, chatType: 'supergroup' });
    assert.deepEqual([first.update_id, second.update_id, third.update_id], [1, 2, 3]);
    assert.equal(emu.queuedUpdates, 3);
    assert.equal(emu.confirmedOffset, 0);

    const got = await api(emu, 'getUpdates', { limit: 2 });
    const updates = got.body.result as Update[];
    assert.equal(updates.length, 2);
    const message = updates[0]?.message;
    assert.ok(message);
    assert.equal(message.text, '/start@telepi_bot hello');
    assert.deepEqual(message.entities, [{ type: 'bot_command', offset: 0, length: 17 }]);
    assert.deepEqual(message.chat, { id: 42, type: 'private', first_name: 'Tester' });
    assert.equal(message.from?.id, 42);
    assert.equal(message.from?.is_bot, false);
    assert.equal(message.message_id, 1);
    assert.ok(Math.abs(message.date - Date.now() / 1000) < 5);
    assert.equal(updates[1]?.message?.entities, undefined);
    assert.deepEqual(updates[1]?.message?.chat, { id: 7, type: 'private', first_name: 'Ann', username: 'ann' });

    const again = emu.pushText('second message in chat 42');
    assert.equal(again.message?.message_id, 2);

    // nothing is confirmed until an offset says so
    assert.equal(emu.queuedUpdates, 4);
    const rest = await api(emu, 'getUpdates', { offset: 3 });
    assert.deepEqual((rest.body.result as Update[]).map((u) => u.update_id), [3, 4]);
    assert.equal((rest.body.result as Update[])[0]?.message?.chat.type, 'supergroup');
    assert.equal(emu.queuedUpdates, 2);
    assert.equal(emu.confirmedOffset, 3);

    await api(emu, 'getUpdates', { offset: 5, timeout: 0 });
    assert.equal(emu.queuedUpdates, 0);
    assert.equal(emu.confirmedOffset, 5);

    emu.pushText('a');
    emu.pushText('b');
    emu.pushText('c');
    const tail = await api(emu, 'getUpdates', { offset: -1 });
    assert.deepEqual((tail.body.result as Update[]).map((u) => u.message?.text), ['c']);
    assert.equal(emu.queuedUpdates, 1);
    assert.equal(emu.callsOf('getUpdates').length, 4);
  });
});

test('long polls wake on a push, time out empty, and a newer poll makes the older one fail with 409', async () => {
  await withEmulator({ maxPollTimeoutSeconds: 1 }, async (emu) => {
    const started = performance.now();
    const poll = api(emu, 'getUpdates', { timeout: 30 });
    await emu.waitForCall('getUpdates');
    setTimeout(() => emu.pushText('wake up'), 50);
    const woke = await poll;
    assert.equal((woke.body.result as Update[])[0]?.message?.text, 'wake up');
    assert.ok(performance.now() - started < 900, 'answered as soon as the update came');

    const emptyStart = performance.now();
    const empty = await api(emu, 'getUpdates', { offset: 2, timeout: 30 }); // capped at 1 s
    const waited = performance.now() - emptyStart;
    assert.deepEqual(empty.body, { ok: true, result: [] });
    assert.ok(waited >= 900 && waited < 3000, `waited ${waited} ms`);
  });
  await withEmulator({}, async (emu) => {
    const older = api(emu, 'getUpdates', { timeout: 20 });
    await emu.waitForCall('getUpdates');
    const newer = api(emu, 'getUpdates', { timeout: 20 });
    const conflict = await older;
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.description, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
    emu.pushText('for the newer poll');
    assert.equal(((await newer).body.result as Update[]).length, 1);
  });
});

test('a poll whose client went away is dropped silently; webhooks and allowed_updates act like Telegram', async () => {
  await withEmulator({}, async (emu) => {
    const abort = new AbortController();
    const gone = fetch(url(emu, 'getUpdates?timeout=20'), { signal: abort.signal });
    await emu.waitForCall('getUpdates');
    abort.abort();
    await assert.rejects(gone);
    await new Promise((resolve) => setTimeout(resolve, 50));
    emu.pushText('after the abort');
    const next = await api(emu, 'getUpdates', { timeout: 5 });
    assert.equal(next.status, 200);
    assert.equal((next.body.result as Update[])[0]?.message?.text, 'after the abort');

    assert.equal((await api(emu, 'setWebhook', { url: 'http://insecure.example' })).status, 400);
    assert.equal((await api(emu, 'setWebhook', { url: 'https://example.com/hook' })).body.result, true);
    const info = await api(emu, 'getWebhookInfo');
    assert.equal((info.body.result as { url: string; pending_update_count: number }).url, 'https://example.com/hook');
    const blocked = await api(emu, 'getUpdates');
    assert.equal(blocked.status, 409);
    assert.match(blocked.body.description ?? '', /can't use getUpdates method while webhook is active/);
    await api(emu, 'deleteWebhook', { drop_pending_updates: true });
    assert.equal(emu.queuedUpdates, 0);

    emu.pushText('a message');
    const query = emu.pushCallbackQuery({ data: 'x' });
    const filtered = await api(emu, 'getUpdates', { allowed_updates: ['callback_query'] });
    assert.deepEqual((filtered.body.result as Update[]).map((u) => u.update_id), [query.update_id]);
    emu.pushText('filtered out again: allowed_updates is remembered');
    const remembered = await api(emu, 'getUpdates', { offset: query.update_id + 1 });
    assert.deepEqual(remembered.body.result, []);
  });
});

test('every fault kind, consumed in order, before validation', async () => {
  await withEmulator({}, async (emu) => {
    // hang: the client gives up; the next request is served normally
    emu.injectFault({ kind: 'hang' });
    await assert.rejects(fetch(url(emu, 'getMe'), { signal: AbortSignal.timeout(200) }), /abort|timeout/i);
    assert.equal((await api(emu, 'getMe')).status, 200);

    emu.injectFault({ kind: 'reset' });
    await assert.rejects(fetch(url(emu, 'getMe')));
    assert.equal((await api(emu, 'getMe')).status, 200);

    emu.injectFault({ kind: 'status', status: 502 });
    emu.injectFault({ kind: 'status', status: 500, description: 'Internal Server Error: restart' });
    assert.deepEqual((await api(emu, 'getMe')).body, { ok: false, error_code: 502, description: 'Bad Gateway' });
    const five = await api(emu, 'getMe');
    assert.deepEqual([five.status, five.body.description], [500, 'Internal Server Error: restart']);

    emu.injectFault({ kind: 'retryAfter', seconds: 3 });
    const limited = await api(emu, 'sendMessage', { chat_id: 1, text: 'hi' });
    assert.deepEqual([limited.status, limited.body], [429, {
      ok: false, error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 },
    }]);

    emu.injectFault({ kind: 'conflict' });
    const conflict = await api(emu, 'getUpdates');
    assert.equal(conflict.status, 409);
    assert.match(conflict.body.description ?? '', /^Conflict: terminated by other getUpdates request/);

    emu.injectFault({ kind: 'unauthorized' });
    assert.equal((await api(emu, 'getMe')).status, 401);

    emu.injectFault({ kind: 'malformed' });
    const malformed = await fetch(url(emu, 'getMe'));
    assert.equal(malformed.status, 200);
    await assert.rejects(malformed.json(), SyntaxError);

    emu.injectFault({ kind: 'truncated' });
    await assert.rejects(async () => {
      const truncated = await fetch(url(emu, 'getMe'));
      assert.equal(truncated.status, 200);
      await truncated.text();
    });

    // a fault for one method only, twice; other methods pass; faults come before token checks
    emu.injectFault({ kind: 'status', status: 503 }, { method: 'sendMessage', count: 2 });
    assert.equal((await api(emu, 'getMe')).status, 200);
    assert.equal((await answer(await fetch(url(emu, 'sendMessage', 'bad token')))).status, 503);
    assert.equal((await api(emu, 'sendmessage', { chat_id: 1, text: 'x' })).status, 503);
    assert.equal((await api(emu, 'sendMessage', { chat_id: 1, text: 'x' })).status, 200);

    emu.injectFault({ kind: 'status', status: 500 }, { count: 5 });
    emu.clearFaults();
    assert.equal((await api(emu, 'getMe')).status, 200);

    const faulted = emu.calls.filter((c) => c.fault).map((c) => c.fault);
    assert.deepEqual(faulted, ['hang', 'reset', 'status', 'status', 'retryAfter', 'conflict', 'unauthorized', 'malformed', 'truncated', 'status', 'status']);
  });
});

test('JSON, urlencoded, multipart and query parameters are recorded, reply_markup parsed', async () => {
  await withEmulator({}, async (emu) => {
    const markup = { inline_keyboard: [[{ text: 'Go', callback_data: 'go' }]] };
    const json = await api(emu, 'sendMessage', { chat_id: 42, text: 'json', reply_markup: markup });
    assert.deepEqual((json.body.result as Message).reply_markup, markup);

    await fetch(url(emu, 'sendMessage'), {
      method: 'POST',
      body: new URLSearchParams({ chat_id: '42', text: 'form', reply_markup: JSON.stringify(markup), parse_mode: 'HTML' }),
    });
    const form = multipart({ chat_id: '42', text: 'multi', reply_markup: JSON.stringify(markup) }, {});
    await fetch(url(emu, 'sendMessage'), { method: 'POST', headers: { 'content-type': form.type }, body: form.body });
    await fetch(url(emu, 'sendMessage?chat_id=42&text=query'));

    const calls = emu.callsOf('sendMessage');
    assert.deepEqual(calls.map((c) => c.encoding), ['json', 'urlencoded', 'multipart', 'query']);
    assert.deepEqual(calls[0]?.params, { chat_id: 42, text: 'json', reply_markup: markup });
    assert.deepEqual(calls[1]?.params, { chat_id: '42', text: 'form', reply_markup: markup, parse_mode: 'HTML' });
    assert.deepEqual(calls[2]?.params, { chat_id: '42', text: 'multi', reply_markup: markup });
    assert.deepEqual(calls[3]?.params, { chat_id: '42', text: 'query' });
    assert.ok(calls.every((c, i) => i === 0 || c.atMs >= (calls[i - 1]?.atMs ?? 0)));
    assert.deepEqual(emu.sentMessages(42).map((m) => m.text), ['json', 'form', 'multi', 'query']);

    const broken = await fetch(url(emu, 'sendMessage'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"chat_id":' });
    assert.equal(broken.status, 400);
    assert.match(((await broken.json()) as { description: string }).description, /^Bad Request: /);
    const unterminated = await fetch(url(emu, 'sendMessage'), {
      method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
    });
    assert.equal(unterminated.status, 400);
  });
});

test('a multipart upload is recorded with size and sha256, and is downloadable through getFile', async () => {
  await withEmulator({}, async (emu) => {
    // a 2x1 PNG header is enough for the dimensions
    const png = Buffer.concat([
      Buffer.from('89504e470d0a1a0a0000000d49484452000000020000000108060000001f15c489', 'hex'),
      Buffer.alloc(3000, 7),
    ]);
    const form = multipart({ chat_id: '42', caption: 'look' }, { photo: { name: 'cam.png', type: 'image/png', bytes: png } });
    const sent = await answer(await fetch(url(emu, 'sendPhoto'), { method: 'POST', headers: { 'content-type': form.type }, body: form.body }));
    assert.equal(sent.status, 200);
    const message = sent.body.result as Message;
    assert.equal(message.caption, 'look');
    assert.equal(message.photo?.length, 1);
    const photo = message.photo?.[0];
    assert.ok(photo);
    assert.deepEqual([photo.width, photo.height, photo.file_size], [2, 1, png.length]);

    const call = await emu.waitForCall('sendPhoto');
    assert.deepEqual(call.files.photo, { field: 'photo', filename: 'cam.png', contentType: 'image/png', size: png.length, sha256: sha256(png) });
    assert.deepEqual(call.params, { chat_id: '42', caption: 'look' });
    const stored = emu.files.get(photo.file_id);
    assert.equal(stored?.sha256, sha256(png));
    assert.deepEqual(stored?.bytes, png);

    const file = await api(emu, 'getFile', { file_id: photo.file_id });
    const info = file.body.result as { file_path: string; file_size: number };
    assert.match(info.file_path, /^photos\/file_\d+\.png$/);
    assert.equal(info.file_size, png.length);
    const download = await fetch(`${emu.apiRoot}/file/bot${TOKEN}/${info.file_path}`);
    assert.equal(download.status, 200);
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), png);
    assert.equal((await fetch(`${emu.apiRoot}/file/bot${TOKEN}/photos/nope.jpg`)).status, 404);
    assert.equal((await api(emu, 'getFile', { file_id: 'unknown' })).body.description, 'Bad Request: invalid file_id');

    // attach:// references, file_ids and URLs
    const doc = multipart({ chat_id: '42', document: 'attach://report' }, { report: { name: 'r.txt', type: 'text/plain', bytes: Buffer.from('hello') } });
    const docSent = await answer(await fetch(url(emu, 'sendDocument'), { method: 'POST', headers: { 'content-type': doc.type }, body: doc.body }));
    const document = (docSent.body.result as Message).document;
    assert.deepEqual([document?.file_name, document?.mime_type, document?.file_size], ['r.txt', 'text/plain', 5]);
    const again = await api(emu, 'sendPhoto', { chat_id: 42, photo: photo.file_id });
    assert.equal((again.body.result as Message).photo?.[0]?.file_unique_id, photo.file_unique_id);
    const byUrl = await api(emu, 'sendVoice', { chat_id: 42, voice: 'https://example.com/a.ogg' });
    assert.equal(typeof (byUrl.body.result as Message).voice?.file_id, 'string');
    assert.equal((await api(emu, 'sendAudio', { chat_id: 42 })).body.description, 'Bad Request: there is no audio in the request');
  });
});

test('a 50 MB multipart upload streams through without being held in memory', async (t) => {
  await withEmulator({}, async (emu) => {
    const boundary = 'big-upload-boundary';
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;
    const chunks = 800; // 50 MiB
    const hash = createHash('sha256');
    for (let i = 0; i < chunks; i++) hash.update(chunk);
    const expected = hash.digest('hex');
    async function* body(count: number): AsyncGenerator<Buffer> {
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n42\r\n`);
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="document"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
      for (let i = 0; i < count; i++) yield chunk;
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    const upload = (parts: number): Promise<Response> => fetch(url(emu, 'sendDocument'), {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.toWeb(Readable.from(body(parts))) as ReadableStream<Uint8Array>,
      duplex: 'half',
    } as RequestInit);
    // The first bulk transfer in a process grows the allocator's arenas by 30-40 MB even with a
    // server that drops every byte (the socket's read buffers are garbage collected lazily): warm
    // up with one upload of the same size, so that the measurement shows what the emulator keeps.
    assert.equal((await upload(chunks)).status, 200);
    const before = process.memoryUsage().rss;
    const sent = await answer(await upload(chunks));
    const growth = process.memoryUsage().rss - before;
    t.diagnostic(`RSS growth during the 50 MiB upload: ${(growth / 1048576).toFixed(1)} MB`);
    assert.equal(sent.status, 200);
    assert.ok(growth < 20 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
    const document = (sent.body.result as Message).document;
    assert.equal(document?.file_size, chunks * chunk.length);
    const call = emu.callsOf('sendDocument')[1];
    assert.deepEqual(call?.files.document, { field: 'document', filename: 'big.bin', contentType: 'application/octet-stream', size: chunks * chunk.length, sha256: expected });
    const stored = emu.files.get(document?.file_id ?? '');
    assert.equal(stored?.sha256, expected);
    assert.equal(stored?.bytes, undefined, 'larger than keepFileBytes: only size and hash are kept');
  });
});

test('uploads above 1 MiB are kept up to keepFileBytes; larger ones keep only their size and hash', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i += 4093) big[i] = i & 0xff;
  const send = async (emu: BotApiEmulator): Promise<Message> => {
    const form = multipart({ chat_id: '5' }, { video: { name: 'clip.mp4', type: 'video/mp4', bytes: big } });
    const sent = await answer(await fetch(url(emu, 'sendVideo'), { method: 'POST', headers: { 'content-type': form.type }, body: form.body }));
    assert.equal(sent.status, 200);
    return sent.body.result as Message;
  };
  await withEmulator({}, async (emu) => {
    const video = (await send(emu)).video;
    assert.equal(video?.file_size, big.length);
    const info = (await api(emu, 'getFile', { file_id: video?.file_id })).body.result as { file_path: string };
    assert.match(info.file_path, /^videos\/file_\d+\.mp4$/);
    const download = await fetch(`${emu.apiRoot}/file/bot${TOKEN}/${info.file_path}`);
    assert.equal(download.headers.get('content-type'), 'video/mp4');
    assert.equal(sha256(Buffer.from(await download.arrayBuffer())), sha256(big));
  });
  await withEmulator({ keepFileBytes: 1024 }, async (emu) => {
    const video = (await send(emu)).video;
    const stored = emu.files.get(video?.file_id ?? '');
    assert.deepEqual([stored?.size, stored?.sha256, stored?.bytes], [big.length, sha256(big), undefined]);
    const info = (await api(emu, 'getFile', { file_id: video?.file_id })).body.result as { file_path: string };
    assert.equal((await fetch(`${emu.apiRoot}/file/bot${TOKEN}/${info.file_path}`)).status, 404);
  });
});

test('the multipart parser gives the same result however the body is split into chunks', async () => {
  const file = Buffer.alloc(5000);
  for (let i = 0; i < file.length; i++) file[i] = (i * 31) % 251;
  // bytes that look almost like the delimiter, to trip a careless boundary search
  Buffer.from('\r\n----telepi-test-boundary-7MA4YWxkTrZu0g').copy(file, 1000);
  const form = multipart({ chat_id: '42', caption: 'split ✓', reply_markup: '{"inline_keyboard":[]}' }, { document: { name: 'f.bin', type: 'application/x-test', bytes: file } });
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const spill = new SpillDir();
  try {
    for (let round = 0; round < 40; round++) {
      const parser = new MultipartParser(form.type.split('boundary=')[1] ?? '', { keepFileBytes: 1 << 20, spill });
      for (let at = 0; at < form.body.length;) {
        const size = round === 0 ? 1 : 1 + random(round < 20 ? 80 : 3000);
        await parser.write(form.body.subarray(at, at + size));
        at += size;
      }
      const result = await parser.end();
      assert.deepEqual(result.fields, { chat_id: '42', caption: 'split ✓', reply_markup: '{"inline_keyboard":[]}' });
      const part = result.files.get('document');
      assert.deepEqual([part?.filename, part?.contentType, part?.size, part?.sha256], ['f.bin', 'application/x-test', file.length, sha256(file)]);
      assert.deepEqual(part?.bytes, file);
    }
  } finally {
    await spill.remove();
  }
});

test('sendMessage errors, editMessageText, deleteMessage, forwardMessage and the botMessage event', async () => {
  await withEmulator({}, async (emu) => {
    assert.deepEqual((await api(emu, 'sendMessage', { chat_id: 42, text: '' })).body, {
      ok: false, error_code: 400, description: 'Bad Request: message text is empty',
    });
    assert.equal((await api(emu, 'sendMessage', { text: 'no chat' })).body.description, 'Bad Request: chat not found');
    assert.equal((await api(emu, 'sendMessage', { chat_id: 'nonsense', text: 'x' })).body.description, 'Bad Request: chat not found');

    const seen: Array<[string, string]> = [];
    emu.on('botMessage', (message: Message, method: string) => seen.push([method, message.text ?? '']));
    emu.pushText('/start');
    const sent = (await api(emu, 'sendMessage', { chat_id: 42, text: 'Hello', reply_markup: { inline_keyboard: [[{ text: 'A', callback_data: 'a' }]] } })).body.result as Message;
    assert.equal(sent.message_id, 2, 'message ids are per chat, shared with the user');
    assert.equal(sent.from?.id, 1000);
    assert.equal(sent.chat.id, 42);

    const edited = await api(emu, 'editMessageText', { chat_id: 42, message_id: sent.message_id, text: 'Hello again' });
    assert.equal((edited.body.result as Message).text, 'Hello again');
    assert.equal((edited.body.result as Message).reply_markup, undefined);
    assert.equal((await api(emu, 'editMessageText', { chat_id: 42, message_id: 99, text: 'x' })).body.description, 'Bad Request: message to edit not found');
    assert.match((await api(emu, 'editMessageText', { chat_id: 42, message_id: sent.message_id, text: 'Hello again' })).body.description ?? '', /message is not modified/);
    assert.deepEqual(emu.sentMessages().map((m) => m.text), ['Hello again']);
    assert.deepEqual(seen, [['sendMessage', 'Hello'], ['editMessageText', 'Hello again']]);

    const forwarded = (await api(emu, 'forwardMessage', { chat_id: 7, from_chat_id: 42, message_id: 1 })).body.result as Message;
    assert.equal(forwarded.text, '/start');
    assert.equal(forwarded.forward_origin?.type, 'user');
    const query = emu.pushCallbackQuery({ data: 'a', messageId: sent.message_id });
    assert.equal(query.callback_query?.message?.message_id, sent.message_id);
    assert.equal((await api(emu, 'answerCallbackQuery', { callback_query_id: query.callback_query?.id })).body.result, true);
    assert.equal((await api(emu, 'sendChatAction', { chat_id: 42, action: 'typing' })).body.result, true);
    assert.equal((await api(emu, 'sendChatAction', { chat_id: 42, action: 'dancing' })).status, 400);
    const location = (await api(emu, 'sendLocation', { chat_id: 42, latitude: 52.5, longitude: 13.4 })).body.result as Message;
    assert.deepEqual(location.location, { latitude: 52.5, longitude: 13.4 });
    assert.equal((await api(emu, 'deleteMessage', { chat_id: 42, message_id: sent.message_id })).body.result, true);
    assert.equal((await api(emu, 'deleteMessage', { chat_id: 42, message_id: sent.message_id })).status, 400);
    assert.deepEqual(await api(emu, 'getUserProfilePhotos', { user_id: 42 }).then((a) => a.body.result), { total_count: 0, photos: [] });
  });
});

test('setMyCommands validates names and stores commands per scope and language', async () => {
  await withEmulator({}, async (emu) => {
    const commands = [{ command: 'now', description: 'Current readings' }, { command: 'photo_1', description: 'A photo' }];
    assert.equal((await api(emu, 'setMyCommands', { commands })).body.result, true);
    const form = await fetch(url(emu, 'setMyCommands'), {
      method: 'POST', body: new URLSearchParams({ commands: JSON.stringify([{ command: 'hallo', description: 'Hallo' }]), language_code: 'de' }),
    });
    assert.equal(form.status, 200);
    assert.deepEqual((await api(emu, 'getMyCommands')).body.result, commands);
    assert.deepEqual((await api(emu, 'getMyCommands', { language_code: 'de' })).body.result, [{ command: 'hallo', description: 'Hallo' }]);
    assert.deepEqual((await api(emu, 'getMyCommands', { scope: { type: 'all_private_chats' } })).body.result, []);
    for (const bad of ['Now', 'with space', '', 'x'.repeat(33), 'émoji']) {
      const answerBad = await api(emu, 'setMyCommands', { commands: [{ command: bad, description: 'd' }] });
      assert.deepEqual([answerBad.status, answerBad.body.description], [400, 'Bad Request: BOT_COMMAND_INVALID'], bad);
    }
    await api(emu, 'deleteMyCommands');
    assert.deepEqual((await api(emu, 'getMyCommands')).body.result, []);
  });
});

test('waitForCall and waitForCalls resolve on past and future calls, and time out naming the method', async () => {
  await withEmulator({}, async (emu) => {
    await api(emu, 'getMe');
    assert.equal((await emu.waitForCall('getMe')).method, 'getMe');
    const later = emu.waitForCall('sendMessage', (c) => c.params.text === 'second', 2000);
    const both = emu.waitForCalls('sendMessage', 2, 2000);
    await api(emu, 'sendMessage', { chat_id: 1, text: 'first' });
    await api(emu, 'sendMessage', { chat_id: 1, text: 'second' });
    assert.equal((await later).params.text, 'second');
    assert.deepEqual((await both).map((c) => c.params.text), ['first', 'second']);
    await assert.rejects(emu.waitForCall('sendPhoto', undefined, 50), /sendPhoto/);
    await assert.rejects(emu.waitForCalls('sendMessage', 3, 50), /sendMessage/);
  });
});

test('close() ends a hanging request and a waiting long poll promptly, and is idempotent', async () => {
  const emu = await BotApiEmulator.start();
  emu.injectFault({ kind: 'hang' }, { method: 'getMe' });
  const outcome = (promise: Promise<unknown>): Promise<string> => promise.then(() => 'settled', (error: Error) => `rejected: ${error.message}`);
  const hanging = outcome(fetch(url(emu, 'getMe')));
  const polling = outcome(fetch(url(emu, 'getUpdates?timeout=50')));
  await emu.waitForCall('getMe');
  await emu.waitForCall('getUpdates');
  const waiting = outcome(emu.waitForCall('sendMessage', undefined, 10_000));
  const started = performance.now();
  await Promise.all([emu.close(), emu.close()]);
  assert.match(await hanging, /^rejected/);
  assert.match(await polling, /^rejected/);
  assert.match(await waiting, /^rejected: .*closed/);
  assert.ok(performance.now() - started < 1000, 'closed promptly');
  await emu.close();
  await assert.rejects(fetch(url(emu, 'getMe')));
});

test('on demand, sends beyond the rate limits are answered 429 with retry_after: per chat, per group and overall', { timeout: 10_000 }, async () => {
  const rateLimits = { global: { count: 5, windowMs: 60_000 }, perChat: { count: 2, windowMs: 60_000 }, perGroup: { count: 3, windowMs: 60_000 } };
  await withEmulator({ rateLimits }, async (emu) => {
    const send = async (chatId: number) => (await api(emu, 'sendMessage', { chat_id: chatId, text: 'x' })).status;
    assert.deepEqual([await send(1), await send(1), await send(1)], [200, 200, 429], 'a private chat: 2 per window');
    assert.deepEqual([await send(-5), await send(-5), await send(-5)], [200, 200, 200], 'a group: 3 per window');
    const limited = await api(emu, 'sendMessage', { chat_id: 2, text: 'x' });
    assert.deepEqual([limited.status, limited.body.parameters?.retry_after], [429, 60], 'overall: 5 per window, and it says when to come back');
    assert.equal((await api(emu, 'sendChatAction', { chat_id: 1, action: 'typing' })).status, 200, 'chat actions are not messages');
    assert.equal((await api(emu, 'getMe')).status, 200);
    assert.equal(emu.calls.filter((call) => call.rateLimited).length, 2);
    assert.equal(emu.sentMessages().length, 5, 'nothing limited was sent');
    emu.enforceRateLimits(false);
    assert.equal(await send(1), 200);
  });
});

test('an album is refused whole when one attach:// part is missing, and needs 2 to 10 items', { timeout: 5000 }, async () => {
  await withEmulator({}, async (emu) => {
    const photo = { name: 'a.jpg', type: 'image/jpeg', bytes: Buffer.from('jpeg') };
    const media = JSON.stringify([{ type: 'photo', media: 'attach://a' }, { type: 'photo', media: 'attach://b' }]);
    const { body, type } = multipart({ chat_id: '1', media }, { a: photo });
    const refused = await answer(await fetch(url(emu, 'sendMediaGroup'), { method: 'POST', headers: { 'content-type': type }, body }));
    assert.deepEqual([refused.status, refused.body.description], [400, 'Bad Request: there is no b in the request for photo']);
    assert.equal(emu.sentMessages(1).length, 0, 'no half album');
    const one = await api(emu, 'sendMediaGroup', { chat_id: 1, media: [{ type: 'photo', media: 'AgACAgIAAx0' }] });
    assert.deepEqual([one.status, one.body.description], [400, 'Bad Request: media must hold 2 to 10 items']);
  });
});
