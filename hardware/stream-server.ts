// Serves a FrameSource over HTTP: an MJPEG stream, a snapshot and a viewer page, behind one token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS, serverOptions, type ConnectionLimits, type ConnectionStats } from './connection-guard.js';
import { BOUNDARY, StreamClient, type StreamClientStats } from './stream-client.js';
import { waitForFrame } from './stream.js';
import { DEFAULT_THROTTLE, FailureThrottle, type ThrottleSettings } from './throttle.js';
import type { FrameSource } from './types.js';

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

export type { ConnectionLimits, ConnectionStats, StreamClientStats, ThrottleSettings };

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
  limits?: Partial<ConnectionLimits>;
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

/** Requests held back by the throttle at most; beyond this a flood of guesses is simply disconnected. */
const MAX_HELD_REQUESTS = 64;

/** A GET carries no body: one announced is refused rather than read. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The IP cam's HTTP side: GET /stream, /snapshot.jpg, /alive and / (the viewer page), each needing the token. */
export class StreamServer {
  private readonly server: Server;
  private readonly source: FrameSource;
  private readonly now: () => number;
  private readonly maxClients: number;
  private readonly log: (line: string) => void;
  private readonly throttle: FailureThrottle;
  private readonly guard: ConnectionGuard;
  private readonly clients = new Set<StreamClient>();
  private readonly held = new Set<NodeJS.Timeout>();
  private comparisons = 0;
  private access: StreamAccess | null = null;
  private unsubscribe: (() => void) | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: StreamServerOptions) {
    this.source = options.source;
    this.now = options.now ?? (() => performance.now());
    this.maxClients = options.maxClients ?? 10;
    this.log = options.log ?? (() => {});
    this.throttle = new FailureThrottle({ ...DEFAULT_THROTTLE, ...options.throttle }, this.now);
    const limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.limits };
    this.guard = new ConnectionGuard(limits, (address) => this.throttle.isTrusted(address), this.now);
    // node:http itself answers oversized headers (431), a timeout (408) or garbage (400), then destroys the socket.
    this.server = createServer(serverOptions(limits), (req, res) => this.handle(req, res));
    // No `100 Continue`: a body is never invited, the request is answered (400) as it stands.
    this.server.on('checkContinue', (req, res) => this.handle(req, res));
    this.guard.attach(this.server);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Addresses with recent wrong tokens remembered (bounded by `throttle.maxAddresses`). */
  get throttledAddressCount(): number {
    return this.throttle.size;
  }

  /** Tokens compared so far: the throttle decides before each comparison, so this is what a guesser gets. */
  get tokenComparisons(): number {
    return this.comparisons;
  }

  connectionStats(): ConnectionStats {
    return this.guard.stats();
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
    for (const timer of this.held) clearTimeout(timer);
    this.held.clear();
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
    if (!this.guard.admit(req, res)) return;
    if (req.method !== 'GET') return this.send(res, 405, 'only GET is served here\n', { Allow: 'GET' });
    if (hasBody(req)) return this.send(res, 400, 'a GET request carries no body\n');
    if (!URL.canParse(req.url ?? '/', 'http://localhost')) return this.send(res, 400, 'bad request\n');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    if (!(route === '/stream' || route === '/snapshot.jpg' || route === '/alive' || (route === '/' && this.options.renderPage))) {
      return this.send(res, 404, 'not found\n');
    }
    const address = req.socket.remoteAddress ?? 'unknown';
    this.authorize(res, address, url.searchParams.get('token'), true, (token) => {
      if (route === '/stream') return this.serveStream(res, address);
      if (route === '/snapshot.jpg') return void this.serveSnapshot(res);
      if (route === '/alive') return void res.writeHead(200, { ...COMMON_HEADERS, 'Content-Type': 'image/gif' }).end(PIXEL);
      return this.servePage(res, token);
    });
  }

  /** An error answer ends its connection: nothing further is read from a client that was refused. */
  private send(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    if (status >= 400) this.guard.closeAfter(res.req, res);
    res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...headers });
    res.end(text);
  }

  /** Compares the token only when the throttle admits it; a guess over budget waits once (bounded), then is compared or gets a 429. */
  private authorize(res: ServerResponse, address: string, token: string | null, mayWait: boolean, serve: (token: string) => void): void {
    const expected = this.access?.token ?? null;
    if (token === null || expected === null || this.isExpired()) return this.forbid(res); // nothing to guess: no comparison
    const admission = this.throttle.admit(address);
    if (!admission.compare) {
      const retryAfterS = String(Math.ceil(admission.waitMs / 1000));
      if (!mayWait) return this.send(res, 429, 'too many wrong links from here; wait and try again\n', { 'Retry-After': retryAfterS });
      return this.hold(res, admission.waitMs, () => this.authorize(res, address, token, false, serve));
    }
    this.comparisons += 1;
    if (tokensMatch(token, expected)) {
      this.throttle.succeed(address, admission.charged);
      return serve(token);
    }
    const { failures, firstSlowed } = this.throttle.fail(address);
    if (firstSlowed) this.log(`spacing out token guesses from ${address}: ${failures} wrong or expired tokens`);
    this.forbid(res);
  }

  private forbid(res: ServerResponse): void {
    this.send(res, 403, 'forbidden: this link is wrong or has expired; ask the bot for a new one\n');
  }

  /** Holds a request for `waitMs`; when too many are held already, its connection is dropped instead. */
  private hold(res: ServerResponse, waitMs: number, then: () => void): void {
    if (this.held.size >= MAX_HELD_REQUESTS) return this.guard.drop(res.req);
    const untilMs = performance.now() + waitMs;
    let timer: NodeJS.Timeout;
    const arm = (delayMs: number): void => {
      timer = setTimeout(() => {
        this.held.delete(timer);
        // A timer fires early by as long as the event loop was busy when it was set: wait out the rest.
        const leftMs = untilMs - performance.now();
        if (leftMs > 0) return arm(leftMs);
        if (!res.destroyed) then();
      }, Math.ceil(delayMs));
      this.held.add(timer);
    };
    arm(waitMs);
    res.once('close', () => {
      clearTimeout(timer);
      this.held.delete(timer);
    });
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
