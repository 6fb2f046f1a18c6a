// Serves a FrameSource over HTTP: an MJPEG stream, a snapshot and a viewer page, behind one token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { waitForFrame } from './stream.js';
import { FailureThrottle, type ThrottleSettings } from './throttle.js';
import type { FrameSource } from './types.js';

const BOUNDARY = 'telepiframe';

/** Sent with every response: nothing cached, no token leaked through a Referer, no type sniffing. */
const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
} as const;

/** The viewer page may load images from this server and run its own inline style and script; nothing else. */
export const PAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface StreamAccess {
  token: string;
  /** On the server's monotonic clock (`now`); null: no expiry. */
  expiresAtMs: number | null;
}

export interface PageInfo {
  token: string;
  /** Until the link expires; null: it does not. */
  remainingMs: number | null;
}

export type { ThrottleSettings };

export interface StreamServerOptions {
  source: FrameSource;
  /** Monotonic milliseconds. Default performance.now. */
  now?: () => number;
  renderPage?: (info: PageInfo) => string;
  /** Open /stream responses at most. Default 10. */
  maxClients?: number;
  log?: (line: string) => void;
  /** How long /snapshot.jpg waits for a first frame before a 503. Default 2000 ms. */
  snapshotWaitMs?: number;
  throttle?: Partial<ThrottleSettings>;
}

export interface StreamClientStats {
  remoteAddress: string;
  remotePort: number | undefined;
  framesSent: number;
  /** Frames replaced in the pending slot before the client was ready for them. */
  framesDropped: number;
  /** 0 or 1: a client never has more than one frame waiting. */
  pendingFrames: number;
  /** Bytes written to the response and not yet flushed to the socket. */
  bufferedBytes: number;
}

/** One /stream response. It gets a frame only when the previous one has drained; meanwhile, the newest waits. */
class StreamClient {
  framesSent = 0;
  framesDropped = 0;
  private pending: Buffer | null = null;
  private busy = false;

  constructor(readonly res: ServerResponse, readonly remoteAddress: string) {}

  offer(frame: Buffer): void {
    if (!this.busy) return this.write(frame);
    if (this.pending !== null) this.framesDropped += 1;
    this.pending = frame;
  }

  /** Ends the response; a client that stopped reading would never see the end, so it is cut off. */
  end(): void {
    this.pending = null;
    this.res.off('drain', this.onDrain);
    if (this.busy) this.res.destroy();
    else this.res.end(`--${BOUNDARY}--\r\n`);
  }

  stats(): StreamClientStats {
    return {
      remoteAddress: this.remoteAddress, remotePort: this.res.socket?.remotePort, framesSent: this.framesSent, framesDropped: this.framesDropped,
      pendingFrames: this.pending === null ? 0 : 1, bufferedBytes: this.res.writableLength,
    };
  }

  private write(frame: Buffer): void {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return;
    res.cork();
    res.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.length}\r\n\r\n`);
    res.write(frame);
    const ready = res.write('\r\n');
    res.uncork();
    this.framesSent += 1;
    if (!ready) {
      this.busy = true;
      res.once('drain', this.onDrain);
    }
  }

  private readonly onDrain = (): void => {
    this.busy = false;
    const next = this.pending;
    this.pending = null;
    if (next !== null) this.write(next);
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Compares in constant time: both sides are hashed first, so lengths never differ. */
function tokensMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** /alive answers this 1×1 GIF: the viewer page probes it to notice a link closed under it. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/** Delayed 403s held open at most; beyond this a flood of wrong tokens is simply disconnected. */
const MAX_DELAYED_DENIALS = 64;

/** The IP cam's HTTP side: GET /stream, /snapshot.jpg, /alive and / (the viewer page), each needing the token. */
export class StreamServer {
  private readonly server: Server;
  private readonly source: FrameSource;
  private readonly now: () => number;
  private readonly maxClients: number;
  private readonly log: (line: string) => void;
  private readonly throttle: FailureThrottle;
  private readonly clients = new Set<StreamClient>();
  private readonly delayedDenials = new Set<NodeJS.Timeout>();
  private access: StreamAccess | null = null;
  private unsubscribe: (() => void) | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: StreamServerOptions) {
    this.source = options.source;
    this.now = options.now ?? (() => performance.now());
    this.maxClients = options.maxClients ?? 10;
    this.log = options.log ?? (() => {});
    this.throttle = new FailureThrottle({
      freeFailures: 5, initialDelayMs: 250, maxDelayMs: 8000, maxAddresses: 1024, forgetAfterMs: 15 * 60_000,
      ...options.throttle,
    }, this.now);
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('clientError', (_error, socket) => socket.destroy());
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Addresses with recent wrong tokens remembered (bounded by `throttle.maxAddresses`). */
  get throttledAddressCount(): number {
    return this.throttle.size;
  }

  clientStats(): StreamClientStats[] {
    return [...this.clients].map((client) => client.stats());
  }

  /** Listens on `port` (0: any free one) and resolves with the port bound. */
  listen(port: number, host = '0.0.0.0'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.unsubscribe ??= this.source.onFrame((frame) => this.broadcast(frame));
        // streams end on expiry even when no frame comes to notice it
        this.expiryTimer ??= setInterval(() => this.endIfExpired(), 1000).unref();
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** Grants access with `token` until `expiresAtMs`; null (or a new token) ends every open stream. */
  setAccess(access: StreamAccess | null): void {
    const previous = this.access;
    this.access = access;
    if (access === null || previous === null || previous.token !== access.token) this.endStreams('access revoked');
  }

  /** Ends every response, drops every connection and stops listening. */
  async close(): Promise<void> {
    this.endStreams('server closing');
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.expiryTimer !== null) clearInterval(this.expiryTimer);
    this.expiryTimer = null;
    for (const timer of this.delayedDenials) clearTimeout(timer);
    this.delayedDenials.clear();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private isExpired(): boolean {
    const expiresAtMs = this.access?.expiresAtMs ?? null;
    return expiresAtMs !== null && this.now() >= expiresAtMs;
  }

  private endIfExpired(): void {
    if (this.clients.size > 0 && this.isExpired()) this.endStreams('access expired');
  }

  private endStreams(why: string): void {
    if (this.clients.size === 0) return;
    this.log(`ending ${this.clients.size} stream(s): ${why}`);
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private broadcast(frame: Buffer): void {
    this.endIfExpired();
    for (const client of this.clients) client.offer(frame);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET') return this.send(res, 405, 'only GET is served here\n', { Allow: 'GET' });
    if (!URL.canParse(req.url ?? '/', 'http://localhost')) return this.send(res, 400, 'bad request\n');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    if (!(route === '/stream' || route === '/snapshot.jpg' || route === '/alive' || (route === '/' && this.options.renderPage))) {
      return this.send(res, 404, 'not found\n');
    }
    const address = req.socket.remoteAddress ?? 'unknown';
    const token = url.searchParams.get('token');
    if (token === null || this.access === null || this.isExpired() || !tokensMatch(token, this.access.token)) {
      return this.deny(res, address);
    }
    this.throttle.succeed(address);
    if (route === '/stream') return this.serveStream(res, address);
    if (route === '/snapshot.jpg') return void this.serveSnapshot(res);
    if (route === '/alive') return void res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'image/gif' }).end(PIXEL);
    return this.servePage(res, token);
  }

  private send(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...headers });
    res.end(text);
  }

  private deny(res: ServerResponse, address: string): void {
    const { delayMs, failures, firstSlowed } = this.throttle.fail(address);
    const answer = () => this.send(res, 403, 'forbidden: this link is wrong or has expired; ask the bot for a new one\n');
    if (delayMs === 0) return answer();
    if (firstSlowed) this.log(`slowing down ${address}: ${failures} wrong or expired tokens`);
    if (this.delayedDenials.size >= MAX_DELAYED_DENIALS) {
      res.socket?.destroy();
      return;
    }
    const timer = setTimeout(() => {
      this.delayedDenials.delete(timer);
      answer();
    }, delayMs);
    this.delayedDenials.add(timer);
  }

  private serveStream(res: ServerResponse, address: string): void {
    if (this.clients.size >= this.maxClients) {
      return this.send(res, 503, `too many viewers (${this.maxClients}); close one and reload\n`, { 'Retry-After': '5' });
    }
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      Connection: 'close',
      Pragma: 'no-cache',
    });
    res.socket?.setNoDelay(true);
    const client = new StreamClient(res, address);
    this.clients.add(client);
    this.log(`viewer from ${address} connected (${this.clients.size} watching)`);
    res.on('close', () => {
      if (this.clients.delete(client)) this.log(`viewer from ${address} left (${this.clients.size} watching)`);
    });
    const latest = this.source.latestFrame();
    if (latest !== null) client.offer(latest);
  }

  private async serveSnapshot(res: ServerResponse): Promise<void> {
    const frame = await waitForFrame(this.source, this.options.snapshotWaitMs ?? 2000);
    if (res.destroyed) return;
    if (frame === null) {
      return this.send(res, 503, 'no frame yet: the camera stream is not running; try again in a moment\n',
        { 'Retry-After': '2' });
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': 'image/jpeg',
      'Content-Length': String(frame.length),
      'Content-Disposition': `attachment; filename="telepi-${stamp}.jpg"`,
    });
    res.end(frame);
  }

  private servePage(res: ServerResponse, token: string): void {
    const expiresAtMs = this.access?.expiresAtMs ?? null;
    const remainingMs = expiresAtMs === null ? null : Math.max(0, expiresAtMs - this.now());
    let html: string;
    try {
      html = this.options.renderPage?.({ token, remainingMs }) ?? '';
    } catch (error) {
      this.log(`the viewer page failed to render: ${(error as Error).message}`);
      return this.send(res, 500, 'the viewer page failed to render; see the log\n');
    }
    res.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': PAGE_CSP,
      'X-Frame-Options': 'DENY',
    });
    res.end(html);
  }
}
