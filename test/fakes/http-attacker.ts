// Hostile HTTP clients for the stream server, driven by a seeded random source: pipelined floods, trickled and
// oversized headers, garbage, token guesses, bodies, odd methods and idle connections, from many loopback addresses.
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const ATTACKS = ['pipelined', 'stalled-pipelined', 'slowloris', 'oversized', 'garbage', 'guesses', 'body', 'method', 'idle'] as const;
export type Attack = typeof ATTACKS[number];

const ROUTES = ['/stream', '/snapshot.jpg', '/alive', '/'];
const PATHS = [...ROUTES, '/../etc/passwd', '/%00', '/stream/', '//stream', '/favicon.ico'];
const METHODS = ['POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PATCH', 'BREW', 'PRI'];

export interface AttackerOptions {
  port: number;
  /** A seeded source in [0, 1): the same seed replays the same attacks. */
  random: () => number;
  /** Source addresses to attack from (loopback: 127.0.0.0/8 works on Linux without set-up). */
  addresses: string[];
  /** The right token's length, so guesses look like the real thing. */
  tokenLength: number;
  /** How long one attack may hold its connections. Default 3000 ms. */
  maxAttackMs?: number;
}

/** Attacks a server one random attack at a time; every socket it opens is tracked and destroyed by close(). */
export class HttpAttacker {
  readonly counts = new Map<Attack, number>();
  /** Bytes written in all. */
  bytesSent = 0;
  private readonly sockets = new Set<Socket>();
  private readonly random: () => number;
  private closed = false;

  constructor(private readonly options: AttackerOptions) {
    this.random = options.random;
  }

  /** Runs one attack chosen by the random source and resolves when its connections are gone. */
  async attack(kind: Attack = this.pick(ATTACKS)): Promise<Attack> {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    const maxMs = this.options.maxAttackMs ?? 3000;
    switch (kind) {
      case 'pipelined':
      case 'stalled-pipelined': {
        const socket = this.open();
        if (kind === 'stalled-pipelined') socket.pause(); // never reads its answers
        // Guesses on the real routes, sent until the server cuts the connection off: issue 10 row 1's flood.
        const requests = Array.from({ length: this.int(10, 3000) }, () => this.request(ROUTES)).join('');
        await this.flood(socket, Buffer.from(requests), Number.POSITIVE_INFINITY, maxMs);
        return kind;
      }
      case 'slowloris': {
        const socket = this.open();
        const text = `GET ${this.pick(PATHS)}?token=${this.token()} HTTP/1.1\r\nHost: telepi\r\nX-Slow: ${'a'.repeat(200)}\r\n\r\n`;
        const stepMs = this.int(20, 200);
        for (let at = 0; at < text.length && !socket.destroyed && at * stepMs < maxMs; at++) {
          this.write(socket, text[at] as string);
          await sleep(stepMs);
        }
        return this.finish([socket], maxMs, kind);
      }
      case 'oversized': {
        const socket = this.open();
        this.write(socket, `GET /stream?token=${this.token()} HTTP/1.1\r\nHost: telepi\r\nX-Big: ${'b'.repeat(this.int(9_000, 200_000))}\r\n\r\n`);
        return this.finish([socket], maxMs, kind);
      }
      case 'garbage': {
        const socket = this.open();
        this.write(socket, Buffer.from(Array.from({ length: this.int(1, 20_000) }, () => this.int(0, 255))));
        return this.finish([socket], maxMs, kind);
      }
      case 'guesses': {
        for (let i = this.int(1, 12); i > 0 && !this.closed; i--) {
          const socket = this.open();
          this.write(socket, this.request());
          await this.finish([socket], maxMs / 4, kind);
        }
        return kind;
      }
      case 'body': {
        const socket = this.open();
        const chunked = this.random() < 0.5;
        this.write(socket, `GET /alive?token=${this.token()} HTTP/1.1\r\nHost: telepi\r\n` +
          (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${this.int(1, 1e9)}\r\n\r\n`));
        await this.flood(socket, Buffer.alloc(64 * 1024, chunked ? 'f\r\n0123456789abcde\r\n' : 'x'), 8, maxMs);
        return kind;
      }
      case 'method': {
        const socket = this.open();
        const method = this.pick(METHODS);
        this.write(socket, method === 'PRI' ? 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' : `${method} ${this.pick(PATHS)}?token=${this.token()} HTTP/1.1\r\nHost: telepi\r\n\r\n`);
        return this.finish([socket], maxMs, kind);
      }
      case 'idle': {
        const sockets = Array.from({ length: this.int(20, 200) }, () => this.open());
        await sleep(this.int(maxMs / 3, maxMs));
        for (const socket of sockets) socket.destroy();
        return kind;
      }
    }
  }

  /** Keeps `count` connections open and silent for `durationMs`, reopening each `reopenDelayMs` after the server closes it. */
  async idleCrowd(count: number, durationMs: number, reopenDelayMs = 250): Promise<void> {
    const deadline = performance.now() + durationMs;
    await Promise.all(Array.from({ length: count }, async () => {
      while (!this.closed && performance.now() < deadline) {
        const socket = this.open();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
          socket.once('close', () => (clearTimeout(timer), resolve()));
        });
        socket.destroy();
        await sleep(reopenDelayMs);
      }
    }));
  }

  /** True once close() was called: loops of attacks should stop. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Destroys every connection still open. */
  close(): void {
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private open(): Socket {
    const socket = connect({ port: this.options.port, host: '127.0.0.1', localAddress: this.pick(this.options.addresses) });
    socket.on('error', () => {}); // resets and refusals are the server defending itself
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (this.closed) socket.destroy();
    return socket;
  }

  private write(socket: Socket, data: string | Buffer): boolean {
    if (socket.destroyed) return false;
    this.bytesSent += data.length;
    return socket.write(data);
  }

  /** Writes `data` `times` times as fast as the socket drains, until done, closed, or `maxMs`. */
  private async flood(socket: Socket, data: Buffer, times: number, maxMs: number): Promise<void> {
    const deadline = performance.now() + maxMs;
    for (let i = 0; i < times && !socket.destroyed && performance.now() < deadline; i++) {
      if (!this.write(socket, data)) await closedOrDrained(socket, deadline - performance.now());
    }
    await this.finish([socket], Math.max(0, deadline - performance.now()), 'pipelined');
  }

  /** Waits for the server to close `sockets`, at most `maxMs`, then closes what is left. */
  private async finish<K>(sockets: Socket[], maxMs: number, kind: K): Promise<K> {
    const deadline = performance.now() + maxMs;
    while (sockets.some((s) => !s.destroyed) && performance.now() < deadline && !this.closed) await sleep(25);
    for (const socket of sockets) socket.destroy();
    return kind;
  }

  private request(paths: readonly string[] = PATHS): string {
    return `GET ${this.pick(paths)}?token=${this.token()} HTTP/1.1\r\nHost: telepi\r\n\r\n`;
  }

  /** Mostly guesses the length of the real token; sometimes empty, absurdly long or not URL-safe. */
  private token(): string {
    const roll = this.random();
    if (roll < 0.05) return '';
    if (roll < 0.1) return 'z'.repeat(this.int(1000, 6000));
    if (roll < 0.15) return '%ff%00%zz';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    return Array.from({ length: this.options.tokenLength }, () => alphabet[this.int(0, 63)]).join('');
  }

  private int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }
}

function closedOrDrained(socket: Socket, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, maxMs));
    socket.once('drain', done);
    socket.once('close', done);
  });
}
