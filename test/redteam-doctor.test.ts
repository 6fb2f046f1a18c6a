// Red team: `telepi doctor` against a Bot API that accepts the connection and never answers (a captive
// portal, a stuck proxy). The token check gives up after its timeout, once, as doctor promises, instead
// of four tries (over 40 s at the default 10 s) with resend warnings in the report.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { checkToken } from '../src/app/doctor-checks.js';
import type { Config } from '../src/app/config.js';
import { TOKEN } from './support.js';

test('checkToken against a silent Bot API fails after one timeout, naming it', { timeout: 15_000 }, async (t) => {
  let requests = 0;
  const server = http.createServer(() => {
    requests++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const apiRoot = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const started = performance.now();
  const result = await checkToken({ token: TOKEN, apiRoot } as Config, 800);
  const took = performance.now() - started;
  assert.equal(result.status, 'fail');
  assert.match(result.detail, /cannot reach .*no answer within the client-side timeout/);
  assert.equal(requests, 1, 'one try');
  assert.ok(took < 2500, `gave up after ${Math.round(took)} ms`);
  assert.ok(!JSON.stringify(result).includes(TOKEN.split(':')[1] as string));
});
