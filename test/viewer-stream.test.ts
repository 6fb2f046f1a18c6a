// The viewer page in a real browser (Debian's chromium), over the real stream server and the fake
// rpicam-vid: frames render and change, the snapshot downloads a JPEG, a wrong token shows no image,
// and all of that still works while strangers flood the server.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { isCompleteJpeg } from '../hardware/jpeg.js';
import { mulberry32 } from '../hardware/simulated/climate.js';
import { StreamServer } from '../hardware/stream-server.js';
import { MjpegProcessSource } from '../hardware/stream.js';
import { renderViewerPage } from '../src/app/viewer.js';
import { fakeCameraTools } from './fakes/camera-tools.js';
import { HttpAttacker } from './fakes/http-attacker.js';

const browserPath = '/usr/bin/chromium';

/** The colour of the stream image's centre pixel, as the browser decoded the current frame. */
const centrePixel = `(() => {
  const img = document.getElementById('stream');
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data).join(',');
})()`;

/** The fake camera, the stream server with a fresh token, and a browser; all closed in teardown. */
async function viewerRig(t: TestContext) {
  assert.ok(existsSync(browserPath), `${browserPath} is missing: apt-get install chromium (.ci/run does)`);
  const tools = fakeCameraTools(['rpicam-vid'], { fps: 20 });
  const source = new MjpegProcessSource({ env: tools.env, framerate: 20 });
  const server = new StreamServer({ source, renderPage: renderViewerPage });
  const browser = await chromium.launch({ executablePath: browserPath, args: ['--disable-gpu'] });
  t.after(async () => {
    await browser.close();
    await server.close();
    await source.stop();
    tools.cleanup();
  });
  await source.start();
  const port = await server.listen(0, '127.0.0.1');
  const token = randomBytes(24).toString('base64url');
  server.setAccess({ token, expiresAtMs: performance.now() + 600_000 });
  return { browser, server, port, token, base: `http://127.0.0.1:${port}` };
}

/** Downloads the snapshot through the page's button and returns its bytes. */
async function downloadSnapshot(page: Page): Promise<Buffer> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[href*="snapshot.jpg"]')]);
  return readFile(await download.path());
}

test('in a browser the viewer shows live frames that change, downloads a JPEG snapshot, and shows no image for a wrong token', async (t) => {
  const { browser, server, token, base } = await viewerRig(t);

  // bypassCSP lets the test evaluate its own probes; the page's inline script runs under the CSP either way.
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 390, height: 844 }, bypassCSP: true });
  await page.goto(`${base}/?token=${token}`);
  await page.waitForFunction('document.getElementById("stream").naturalWidth > 0', undefined, { timeout: 10_000 });
  const first = await page.evaluate<string>(centrePixel);
  await page.waitForFunction(`${centrePixel} !== ${JSON.stringify(first)}`, undefined, { timeout: 10_000, polling: 50 });
  assert.equal(await page.isVisible('#problem'), false);

  assert.ok(isCompleteJpeg(await downloadSnapshot(page)), 'the snapshot is a complete JPEG');

  const stranger = await browser.newPage();
  const denied = await stranger.goto(`${base}/?token=${token.slice(1)}x`);
  assert.equal(denied?.status(), 403);
  assert.equal(await stranger.locator('img').count(), 0, 'a wrong token gets no page and no image');

  // Revoking the link ends the stream: the open page replaces the image with a message.
  server.setAccess(null);
  await page.waitForSelector('#problem', { state: 'visible', timeout: 10_000 });
  assert.equal(await page.isVisible('#stream'), false);
});

test('in a browser the owner keeps watching and downloading while strangers flood the server from 20 addresses', async (t) => {
  const { browser, server, port, token, base } = await viewerRig(t);
  const page = await browser.newPage({ acceptDownloads: true, bypassCSP: true });
  await page.goto(`${base}/?token=${token}`);
  await page.waitForFunction('document.getElementById("stream").naturalWidth > 0', undefined, { timeout: 10_000 });
  const addresses = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 2}`);
  const attackers = [1, 2, 3].map((seed) => new HttpAttacker({ port, random: mulberry32(seed), addresses, tokenLength: token.length }));
  t.after(() => attackers.forEach((attacker) => attacker.close()));
  const deadline = performance.now() + 6_000;
  const attacking = attackers.map(async (attacker) => {
    while (!attacker.isClosed && performance.now() < deadline) await attacker.attack();
  });
  for (let change = 0; change < 3; change++) {
    const shown = await page.evaluate<string>(centrePixel);
    await page.waitForFunction(`${centrePixel} !== ${JSON.stringify(shown)}`, undefined, { timeout: 10_000, polling: 50 });
  }
  assert.ok(isCompleteJpeg(await downloadSnapshot(page)), 'a whole snapshot during the flood');
  await Promise.all(attacking);
  assert.equal(await page.isVisible('#problem'), false, 'the page never saw its stream end');
  const { refused, dropped } = server.connectionStats();
  assert.ok(refused + dropped > 0, 'the flood really hit the limits');
});
