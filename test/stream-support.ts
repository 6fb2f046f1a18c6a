// The stream server on loopback for tests: a server with a hand-driven frame source, plain GETs, a viewer
// that parses the multipart stream, and a raw socket for what well-behaved clients never send.
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamServer, type StreamServerOptions } from '../hardware/stream-server.js';
import { ManualFrameSource } from './fakes/jpeg.js';

export type After = { after: (fn: () => unknown) => void };
export const TOKEN = 'c0ffee-0123456789abcdef-token';

/** Polls `condition` until it holds, failing after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export async function startServer(t: After, options: Partial<StreamServerOptions> = {}) {
  const source = new ManualFrameSource();
  const server = new StreamServer({ source, ...options });
  const port = await server.listen(0, '127.0.0.1');
  server.setAccess({ token: TOKEN, expiresAtMs: null });
  t.after(() => server.close());
  return { server, source, port };
}

export interface Reply { status: number; headers: IncomingMessage['headers']; body: Buffer; ms: number }

export function get(port: number, path: string, localAddress?: string): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    request({ port, path, host: '127.0.0.1', localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks),
        ms: performance.now() - started }));
    }).on('error', reject).end();
  });
}

/** Opens /stream and collects its JPEG parts. */
export function openStream(t: After, port: number, token = TOKEN) {
  const viewer = { parts: [] as Buffer[], ended: false, res: null as IncomingMessage | null };
  let pending = Buffer.alloc(0);
  const req = request({ port, path: `/stream?token=${token}`, host: '127.0.0.1', agent: false }, (res) => {
    viewer.res = res;
    res.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const headerEnd = pending.indexOf('\r\n\r\n');
        if (headerEnd < 0) break;
        const header = pending.subarray(0, headerEnd).toString('latin1');
        assert.match(header, /^--telepiframe\r\nContent-Type: image\/jpeg\r\nContent-Length: \d+$/);
        const length = Number(/Content-Length: (\d+)/.exec(header)![1]);
        if (pending.length < headerEnd + 4 + length + 2) break;
        viewer.parts.push(pending.subarray(headerEnd + 4, headerEnd + 4 + length));
        pending = pending.subarray(headerEnd + 4 + length + 2);
      }
    });
    res.on('end', () => (viewer.ended = true));
    res.on('error', () => (viewer.ended = true));
  });
  req.on('error', () => (viewer.ended = true));
  req.end();
  t.after(() => req.destroy());
  return viewer;
}

/** A raw connection that records what it receives and when the server closed it. */
export function rawClient(t: After, port: number, localAddress?: string) {
  const socket: Socket = connect({ port, host: '127.0.0.1', localAddress });
  const client = {
    socket, received: '', closed: false, connected: false,
    /** Resolves on `event`, or when the connection closes first; never rejects (a reset is an outcome here). */
    settled: (event: 'connect' | 'drain') => new Promise<void>((resolve) => {
      if (client.closed) return resolve();
      socket.once(event, () => resolve());
      socket.once('close', () => resolve());
    }),
  };
  socket.on('connect', () => (client.connected = true));
  socket.on('data', (chunk: Buffer) => (client.received += chunk.toString('latin1')));
  socket.on('error', () => {}); // a reset is how the server drops a flood: the test reads `closed`
  socket.on('close', () => (client.closed = true));
  t.after(() => socket.destroy());
  return client;
}
