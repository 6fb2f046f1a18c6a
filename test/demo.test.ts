import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runDemo, type DemoOptions, type DemoReply } from '../src/app/demo.js';
import { freePort } from './free-port.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const READING = /^-?\d+\.\d°C {2}\d+\.\d% {2}[\d,]+\.\dhPa$/m;

const cleanups: (() => Promise<unknown>)[] = [];
after(() => Promise.all(cleanups.map((cleanup) => cleanup())));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'telepi-demo-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function listening(port = 0): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}


async function demo(args: string[], env: NodeJS.ProcessEnv, options: DemoOptions = {}) {
  const out: string[] = [];
  const err: string[] = [];
  let stateDir = '';
  const replies = new Map<string, DemoReply>();
  const code = await runDemo(args, env, { out: (t) => out.push(t), err: (t) => err.push(t) }, {
    photoDir: await tempDir(),
    ...options,
    onStart: (info) => (stateDir = info.stateDir),
    onReply: async (command, reply) => {
      replies.set(command, reply);
      await options.onReply?.(command, reply);
    },
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), stateDir, replies };
}

test('scripted /now /photo /open /close: a reading, a JPEG on disk, a viewer URL that opens here, then a clean exit', async () => {
  const port = await freePort();
  let viewer: { status: number; type: string | null; body: string } | undefined;
  const run = await demo(['/now', '/photo', '/open', '/close'], { STREAM_PORT: String(port) }, {
    onReply: async (command, reply) => {
      if (command !== '/open') return;
      const url = /http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+/.exec(reply.text ?? '')?.[0];
      assert.ok(url, `no viewer URL in ${reply.text}`);
      const response = await fetch(url);
      viewer = { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
    },
  });
  assert.equal(run.code, 0, run.stderr);

  const now = run.replies.get('/now')?.text ?? '';
  assert.match(now, READING);
  assert.ok(run.stdout.includes(`you> /now\ntelepi> ${now}`), run.stdout);

  const photo = run.replies.get('/photo')?.photoPath ?? '';
  const jpeg = await readFile(photo);
  assert.equal(jpeg.readUInt16BE(0), 0xffd8);
  assert.equal(jpeg.readUInt16BE(jpeg.length - 2), 0xffd9);
  assert.match(run.stdout, /^telepi is taking a photo…$/m);
  assert.ok(run.stdout.includes(`telepi> [photo] saved to ${photo}`));

  assert.match(run.stdout, new RegExp(`^ +http://127\\.0\\.0\\.1:${port}/\\?token=[\\w-]{32,}$`, 'm'));
  assert.equal(viewer?.status, 200);
  assert.match(viewer?.type ?? '', /^text\/html/);
  assert.match(viewer?.body ?? '', /<html/i);
  assert.match(run.replies.get('/close')?.text ?? '', /^Port closed/);

  assert.notEqual(run.stateDir, '');
  await assert.rejects(stat(run.stateDir), { code: 'ENOENT' }, 'the temporary state directory is removed');
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'nothing listens on the stream port any more');
});

test('a busy STREAM_PORT falls back to a free port and says so', async () => {
  const busy = portOf(await listening());
  const run = await demo(['/open'], { STREAM_PORT: String(busy) });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`^Port ${busy} is busy: the camera link uses port \\d+ instead\\.$`, 'm'));
  const used = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(run.replies.get('/open')?.text ?? '')?.[1];
  assert.ok(used !== undefined && Number(used) !== busy, `the link uses port ${used}`);
});

test('lines read from a non-interactive input run one by one, and the demo ends at EOF', async () => {
  const run = await demo([], {}, { input: Readable.from(['/now\n', '\n', 'hello\n']), interactive: false });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^telepi demo: /);
  assert.match(run.stdout, /Try:\n {2}\/now {2}\/1m {2}\/chart {2}\/alert temp < 18 {2}\/status {2}\/photo {2}\/open {2}\/close {2}\/help/);
  assert.match(run.replies.get('/now')?.text ?? '', READING);
  assert.match(run.stdout, /^you> hello\ntelepi> I don't understand\n\n {8}\/now — /m);
  await assert.rejects(stat(run.stateDir), { code: 'ENOENT' });
});

test('/every 15m given as two arguments is one command', async () => {
  const run = await demo(['/every', '15m', '/cancel'], {});
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.replies.get('/every 15m')?.text ?? '', /I will report every 15m/);
  assert.equal(run.replies.get('/cancel')?.text, 'OK');
});

test('a command the bot does not answer fails after the reply timeout with a clear error', async () => {
  const run = await demo(['/now@some_other_bot', '/now'], {}, { replyTimeoutMs: 1000 });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^telepi demo: no reply to \/now@some_other_bot within 1 s/m);
  assert.equal(run.replies.size, 0, 'the commands after it do not run');
  await assert.rejects(stat(run.stateDir), { code: 'ENOENT' });
});

interface Spawned { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the CLI in a child (without a token, with its own TMPDIR); `drive` may write to it or signal it. */
function cli(argv: string[], env: NodeJS.ProcessEnv, drive: (child: ReturnType<typeof spawn>, stdout: () => string) => void, timeoutMs = 20_000): Promise<Spawned> {
  const script = `import('./src/app/cli.ts').then((m) => m.main(${JSON.stringify(argv)})).then((c) => process.exit(c))`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  drive(child, () => stdout);
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer);
    resolve({ code, signal, stdout, stderr });
  }));
}

async function childEnv(): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: await tempDir(), STREAM_PORT: String(await freePort()) };
  delete env.TELEGRAM_BOT_TOKEN;
  delete env.NODE_TEST_CONTEXT;
  return env;
}

test('`telepi demo /now` in a fresh process prints the reply and exits 0 within 20 s', async () => {
  const env = await childEnv();
  const started = performance.now();
  const run = await cli(['demo', '/now'], env, (child) => child.stdin?.end());
  assert.equal(run.code, 0, run.stderr);
  assert.ok(performance.now() - started < 20_000);
  assert.match(run.stdout, /^telepi> -?\d+\.\d°C {2}\d+\.\d% {2}[\d,]+\.\dhPa$/m);
  assert.deepEqual((await readdir(env.TMPDIR!)).filter((name) => name.startsWith('telepi-demo-state-')), []);
});

test('`telepi` with no command and no token says it starts the demo, and `echo /now | telepi` works', async () => {
  const run = await cli([], await childEnv(), (child) => child.stdin?.end('/now\n'));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /TELEGRAM_BOT_TOKEN is not set: starting the demo/);
  assert.match(run.stdout, /^you> \/now\ntelepi> -?\d+\.\d°C/m);
});

test('SIGTERM stops a waiting demo cleanly and removes its temporary state', async () => {
  const env = await childEnv();
  const run = await cli(['demo'], env, (child, stdout) => {
    const poll = setInterval(() => {
      if (stdout().includes('Ctrl-D or /quit leaves.')) {
        clearInterval(poll);
        child.kill('SIGTERM');
      }
    }, 20);
    child.on('close', () => clearInterval(poll));
  });
  assert.equal(run.signal, null, 'it exits by itself, not by the signal');
  assert.equal(run.code, 130, run.stderr);
  assert.deepEqual((await readdir(env.TMPDIR!)).filter((name) => name.startsWith('telepi-demo-state-')), []);
});
