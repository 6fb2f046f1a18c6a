// The page /open links to: live stream, snapshot download and time left, on a phone, with no outside resource.

export interface ViewerPageOptions {
  token: string;
  /** Time left on the link when the page is served; null when it does not expire. */
  remainingMs: number | null;
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => escapes[c] ?? c);
}

// The countdown restarts from remainingMs on each load; the server, not this script, enforces the expiry.
const script = `
const left = document.getElementById('left');
const stream = document.getElementById('stream');
const problem = document.getElementById('problem');
const remaining = Number(left.dataset.remainingMs);
let ended = false;
// The first reason the stream ended is the one shown; a probe answered late must not overwrite it.
function fail(text) {
  if (ended) return;
  ended = true;
  clearInterval(probe);
  stream.hidden = true;
  problem.textContent = text;
  problem.hidden = false;
}
const gone = 'The stream is not available: the link has expired or was closed. Send /open to the bot for a new link.';
stream.addEventListener('error', () => fail(gone));
// An MJPEG image just freezes when its stream ends: probe the link so a /close shows up here too.
const probe = setInterval(() => {
  const image = new Image();
  image.onerror = () => fail(gone);
  image.src = '/alive?' + stream.src.split('?')[1] + '&t=' + Date.now();
}, 5000);
if (left.dataset.remainingMs !== '') {
  const endsAt = Date.now() + remaining;
  const show = () => {
    const seconds = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
    if (seconds === 0) {
      clearInterval(timer);
      left.textContent = 'This link has expired.';
      stream.removeAttribute('src');
      fail('This link has expired. Send /open to the bot for a new link.');
      return;
    }
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    left.textContent = 'Link expires in ' + (h > 0 ? h + 'h ' : '') + (h > 0 || m > 0 ? m + 'm ' : '') + s + 's';
  };
  const timer = setInterval(show, 1000);
  show();
}
`;

// [hidden] must win over img's display: block, or a failed stream still shows a broken image.
const style = `
[hidden] { display: none !important; }
body { margin: 0; font: 16px/1.4 system-ui, sans-serif; background: #111; color: #eee; }
main { max-width: 960px; margin: 0 auto; padding: 12px; }
h1 { font-size: 1.2em; margin: 0 0 8px; }
img { display: block; width: 100%; height: auto; background: #222; border-radius: 4px; }
.problem { padding: 24px 12px; background: #402020; border-radius: 4px; }
a.button { display: inline-block; margin: 12px 0; padding: 10px 16px; background: #2a6fdb; color: #fff;
  text-decoration: none; border-radius: 4px; }
p { margin: 8px 0; }
.note { color: #aaa; font-size: 0.9em; }
`;

/** The viewer page's HTML, self-contained: inline CSS and script, relative URLs only. */
export function renderViewerPage(options: ViewerPageOptions): string {
  const query = escapeHtml(`token=${encodeURIComponent(options.token)}`);
  const remaining = options.remainingMs === null ? '' : String(Math.max(0, Math.round(options.remainingMs)));
  const initialLeft = options.remainingMs === null ? 'This link does not expire.' : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>telepi camera</title>
<style>${style}</style>
</head>
<body>
<main>
<h1>telepi camera</h1>
<img id="stream" src="/stream?${query}" alt="Live camera stream">
<p id="problem" class="problem" role="alert" hidden></p>
<a class="button" href="/snapshot.jpg?${query}" download="telepi-snapshot.jpg">Download a snapshot</a>
<p id="left" data-remaining-ms="${remaining}" aria-live="polite">${initialLeft}</p>
<p class="note">This link is private: anyone who has it can watch until it expires. The connection is plain HTTP, not encrypted.</p>
</main>
<script>${script}</script>
</body>
</html>
`;
}
