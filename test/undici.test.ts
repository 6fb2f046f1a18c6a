import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { undici, undiciFiles } from '../src/undici.js';

const require = createRequire(import.meta.url);

// The client loads two files inside undici instead of its index (half the memory). They are not public
// API: this fails loudly, naming the files, when an undici update moves or changes them.
test('the undici internals the client loads are the public Pool and request', () => {
  const publicApi = require('undici') as typeof import('undici');
  const { version } = require('undici/package.json') as { version: string };
  assert.match(version, /^7\./, 'undici 7 (8 needs Node 22)');
  const parts = undici();
  assert.equal(parts.Pool, publicApi.Pool, `${undiciFiles.Pool} is undici's Pool in ${version}`);
  // undici's index puts the same function on every dispatcher as its request() method.
  assert.equal(parts.request, publicApi.Pool.prototype.request, `${undiciFiles.request} is undici's request in ${version}`);
});
