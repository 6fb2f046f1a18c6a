// Issue 10 row 17: a URL with a user and password (TELEGRAM_API_ROOT=http://user:pass@host) is printed without them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeConfig, loadConfig } from '../src/app/config.js';
import { createLogger, describeError, redact } from '../src/log.js';
import { TOKEN } from './support.js';

test('the user and password of any URL are replaced, the rest of the URL kept', () => {
  assert.equal(redact('Bot API: http://user:s3cret@10.0.0.2:8081/bot'), 'Bot API: http://<credentials>@10.0.0.2:8081/bot');
  assert.equal(redact('mqtt://only-user@broker:1883 and https://a:b%40c@x'), 'mqtt://<credentials>@broker:1883 and https://<credentials>@x');
  for (const plain of ['https://api.telegram.org', 'mail me at me@example.com', 'http://host/path@not-credentials']) {
    assert.equal(redact(plain), plain);
  }
});

test('the start-up lines, log lines and error texts show TELEGRAM_API_ROOT without its password', () => {
  const config = loadConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEPI_OWNERS: '1', TELEGRAM_API_ROOT: 'http://user:s3cret@127.0.0.1:8081', TELEPI_STATE_DIR: '/tmp/x' });
  assert.equal(config.apiRoot, 'http://user:s3cret@127.0.0.1:8081', 'the setting itself is kept as given');
  const lines = describeConfig(config);
  assert.ok(lines.includes('Bot API: http://<credentials>@127.0.0.1:8081'), lines.join('\n'));
  const logged: string[] = [];
  const log = createLogger({ write: (line) => logged.push(line), timestamps: false });
  log.warn(`cannot reach ${config.apiRoot}`);
  assert.equal(describeError(new Error(`fetch ${config.apiRoot}/bot1/getMe failed`)).includes('s3cret'), false);
  assert.deepEqual(logged, ['WARN cannot reach http://<credentials>@127.0.0.1:8081']);
});
