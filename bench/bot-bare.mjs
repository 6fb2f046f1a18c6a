// The ceiling: the same calls with no framework, over undici's Pool (the transport telepi uses,
// loaded the same lean way). getUpdates runs back to back; replies are chained per chat (order kept)
// and concurrent across chats.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve, settings } from './child-kit.mjs';

const require = createRequire(import.meta.url);
const Pool = require('undici/lib/dispatcher/pool.js');
const undiciRequest = require('undici/lib/api/api-request.js');

const root = new URL(settings.apiRoot);
// Eight connections, as telepi's pool: one holds the long poll, the rest carry replies.
const pool = new Pool(root.origin, { connections: 8 });
const headers = { 'content-type': 'application/json' };

async function call(method, params) {
  const response = await undiciRequest.call(pool, {
    origin: root.origin,
    path: `/bot${settings.token}/${method}`,
    method: 'POST',
    headers,
    body: JSON.stringify(params),
  });
  const answer = JSON.parse(await response.body.text());
  if (!answer.ok) throw new Error(`${method}: ${answer.description}`);
  return answer.result;
}

const chains = new Map();

function reply(chatId, text) {
  const previous = chains.get(chatId) ?? Promise.resolve();
  const next = previous.then(() => call('sendMessage', { chat_id: chatId, text })).catch((error) => console.error(String(error)));
  chains.set(chatId, next);
  void next.then(() => chains.get(chatId) === next && chains.delete(chatId));
}

async function loop() {
  let offset = 0;
  for (;;) {
    let updates;
    try {
      updates = await call('getUpdates', { offset, timeout: 30, limit: 100 });
    } catch (error) {
      console.error(String(error));
      await sleep(500);
      continue;
    }
    for (const update of updates) {
      offset = update.update_id + 1;
      const message = update.message;
      if (message?.text !== undefined) reply(message.chat.id, message.text);
    }
  }
}

void loop();
serve({});
