import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import playwright from 'playwright-core';
import { escapeHtml, renderViewerPage } from '../src/app/viewer.js';

const token = '0123456789abcdef0123456789abcdef';

test('the page shows the stream and links the snapshot, both with the token', () => {
  const html = renderViewerPage({ token, remainingMs: 3_600_000 });
  assert.match(html, new RegExp(`<img id="stream" src="/stream\\?token=${token}"`));
  assert.match(html, new RegExp(`href="/snapshot\\.jpg\\?token=${token}"`));
  assert.match(html, /<title>telepi camera<\/title>/);
});

test('the page works on a phone: viewport and a scaling image', () => {
  const html = renderViewerPage({ token, remainingMs: 1000 });
  assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  assert.match(html, /img \{[^}]*width: 100%; height: auto;/);
});

test('the page loads nothing from elsewhere and leaks no referrer', () => {
  const html = renderViewerPage({ token, remainingMs: 1000 });
  const urls = [...html.matchAll(/\b(?:src|href|action)\s*=\s*"([^"]*)"/g)].map((m) => m[1] ?? '');
  assert.ok(urls.length >= 2);
  for (const url of urls) assert.ok(url.startsWith('/'), `not a local URL: ${url}`);
  assert.doesNotMatch(html, /https?:\/\//);
  assert.doesNotMatch(html, /<link\b|@import|url\(/);
  assert.match(html, /<meta name="referrer" content="no-referrer">/);
});

test('the token is escaped into the HTML', () => {
  const html = renderViewerPage({ token: '"><script>alert(1)</script>&', remainingMs: null });
  assert.doesNotMatch(html, /<script>alert/);
  assert.ok(html.includes('src="/stream?token=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%26"'));
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('the time left is given to the countdown, and the page says when the link expires', () => {
  assert.match(renderViewerPage({ token, remainingMs: 125_400 }), /data-remaining-ms="125400"/);
  assert.match(renderViewerPage({ token, remainingMs: -5 }), /data-remaining-ms="0"/);
  const html = renderViewerPage({ token, remainingMs: 1000 });
  assert.match(html, /This link has expired\./);
  assert.match(html, /Link expires in /);
  const open = renderViewerPage({ token, remainingMs: null });
  assert.match(open, /data-remaining-ms=""[^>]*>This link does not expire\./);
});

test('the page warns that the link is private and the connection plain HTTP', () => {
  const html = renderViewerPage({ token, remainingMs: 1000 });
  assert.match(html, /This link is private/);
  assert.match(html, /plain HTTP, not encrypted/);
});

test('a stream that fails to load shows a message instead of a broken image', () => {
  const html = renderViewerPage({ token, remainingMs: 1000 });
  assert.match(html, /<p id="problem" class="problem" role="alert" hidden><\/p>/);
  assert.match(html, /stream\.addEventListener\('error'/);
  assert.match(html, /The stream is not available: the link has expired or was closed\. Send \/open/);
});

// In a real browser (Debian's chromium, as CI installs it): the script's countdown, expiry and error message.
const chromium = '/usr/bin/chromium';
test('in a browser the page counts down, and shows a message when the stream is refused or the link expires', async () => {
    assert.ok(existsSync(chromium), `${chromium} is missing: apt-get install chromium (.ci/run does)`);
    const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
    let streamAllowed = true;
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      if (url.pathname === '/') {
        response.setHeader('content-type', 'text/html; charset=utf-8');
        response.end(renderViewerPage({ token, remainingMs: 125_400 }));
      } else if ((url.pathname === '/stream' || url.pathname === '/alive') && streamAllowed && url.searchParams.get('token') === token) {
        response.setHeader('content-type', 'image/gif');
        response.end(gif);
      } else {
        response.statusCode = 403;
        response.end('forbidden');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const browser = await playwright.chromium.launch({ executablePath: chromium, args: ['--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
      // Paused: only fastForward moves the page's time, however slowly the machine runs the test.
      const start = new Date('2026-01-01T12:00:00Z');
      await page.clock.install({ time: start });
      await page.clock.pauseAt(new Date(start.getTime() + 60_000)); // ahead of the clock, however slow the start

      await page.goto(`http://127.0.0.1:${port}/?token=${token}`);
      await page.waitForFunction('document.getElementById("stream").complete');
      assert.equal(await page.textContent('#left'), 'Link expires in 2m 5s');
      assert.equal(await page.isVisible('#stream'), true);
      assert.equal(await page.isVisible('#problem'), false);
      const width = (await page.locator('#stream').boundingBox())?.width;
      assert.ok(width !== undefined && width > 300 && width <= 390, `image ${width}px wide on a 390px phone`);

      await page.clock.fastForward(65_000);
      assert.equal(await page.textContent('#left'), 'Link expires in 1m 0s');
      await page.clock.fastForward(61_000);
      assert.equal(await page.textContent('#left'), 'This link has expired.');
      assert.equal(await page.isVisible('#stream'), false);
      assert.match(await page.textContent('#problem') ?? '', /This link has expired\. Send \/open/);

      streamAllowed = false;
      await page.reload();
      await page.waitForSelector('#problem', { state: 'visible' });
      assert.match(await page.textContent('#problem') ?? '', /The stream is not available/);
      assert.equal(await page.isVisible('#stream'), false);
    } finally {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
