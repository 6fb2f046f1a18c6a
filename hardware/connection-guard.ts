// Bounds what HTTP clients can hold on a server: connections per address and in all, requests pipelined on one
// connection, header size, and how long a connection may sit idle, trickle headers or linger after a refusal.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { touch } from './throttle.js';

export interface ConnectionLimits {
  /** Connections open at once from addresses not trusted. Default 128. */
  maxConnections: number;
  /** Further connections only trusted addresses (the owner's) may open, so a flood cannot lock them out. Default 16. */
  reservedConnections: number;
  /** Connections open at once from one address. Default 16 (a browser opens about 6). */
  maxConnectionsPerAddress: number;
  /** Requests read on one connection and not yet answered; one more drops the connection. Default 4. */
  maxPipelinedRequests: number;
  /** Request line and headers, in bytes; beyond, a 431 and the connection closed. Default 8 KiB. */
  maxHeaderBytes: number;
  /** From the connection's start (or its last answer) to the end of the request's headers. Default 10 s. */
  headersTimeoutMs: number;
  /** To the end of the whole request. Default 15 s. */
  requestTimeoutMs: number;
  /** An idle kept-alive connection between requests. Default 5 s. */
  keepAliveTimeoutMs: number;
  /** No byte read or written for this long: the connection is cut (a healthy stream writes every frame). Default 60 s. */
  idleTimeoutMs: number;
  /** How often Node checks the headers and request timeouts. Default 1 s. */
  checkIntervalMs: number;
  /** A connection answered with an error is cut this long after, if the client has not closed it. Default 2 s. */
  closeGraceMs: number;
  /**
   * An address whose connection was dropped for flooding may not connect for this long. Node parses the rest of
   * the chunk it read (up to 64 KiB of pipelined requests) before a drop takes effect; this bounds how often. It
   * doubles with each further drop while penalised or soon after (up to 32×). Default 10 s.
   */
  dropPenaltyMs: number;
  /** Penalised addresses remembered at most (the oldest forgotten first). Default 1024. */
  maxPenalisedAddresses: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 128, reservedConnections: 16, maxConnectionsPerAddress: 16, maxPipelinedRequests: 4,
  maxHeaderBytes: 8192, headersTimeoutMs: 10_000, requestTimeoutMs: 15_000, keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000, checkIntervalMs: 1_000, closeGraceMs: 2_000, dropPenaltyMs: 10_000, maxPenalisedAddresses: 1024,
};

/** The options node:http applies itself (createServer's), from the limits. */
export function serverOptions(limits: ConnectionLimits) {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
}

interface ConnectionState {
  address: string;
  inFlight: number;
  /** Answered with an error: nothing more is served on it. */
  closing: boolean;
}

export interface ConnectionStats {
  open: number;
  /** Connections refused at accept: over the total or the per-address cap, or from a penalised address. */
  refused: number;
  /** Connections dropped for pipelining too deep or sending on after a refusal. */
  dropped: number;
}

/** Counts connections per address and requests per connection, and drops what goes beyond the limits. */
export class ConnectionGuard {
  private readonly perAddress = new Map<string, number>();
  private readonly states = new WeakMap<Socket, ConnectionState>();
  /** Address → until when (on `now`) it may not connect, and its drops in a row. */
  private readonly penalised = new Map<string, { untilMs: number; strikes: number }>();
  private open = 0;
  private refused = 0;
  private dropped = 0;

  constructor(private readonly limits: ConnectionLimits, private readonly isTrusted: (address: string) => boolean,
    private readonly now: () => number) {}

  /** Applies the idle timeout and starts counting the server's connections; node:http drops a timed-out socket itself. */
  attach(server: Server): void {
    server.timeout = this.limits.idleTimeoutMs;
    // Beyond every cap, node:net closes the handle before making a socket of it: a connection flood costs no objects.
    server.maxConnections = this.limits.maxConnections + this.limits.reservedConnections;
    server.on('drop', () => (this.refused += 1));
    server.on('connection', (socket: Socket) => this.accept(socket));
  }

  stats(): ConnectionStats {
    return { open: this.open, refused: this.refused, dropped: this.dropped };
  }

  /** Call first for each request: false when the connection was dropped instead, and nothing must be answered. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    const state = this.states.get(socket);
    if (state === undefined || socket.destroyed) return !socket.destroyed; // the rest of a dropped flood's last chunk
    // A queued pipelined response has no socket yet (res.socket is null): cut the connection, not the response.
    if (state.closing || state.inFlight >= this.limits.maxPipelinedRequests) return (this.drop(req), false);
    state.inFlight += 1;
    res.once('close', () => (state.inFlight -= 1));
    return true;
  }

  /** Cuts the request's connection at once and keeps its address out for `dropPenaltyMs`. */
  drop(req: IncomingMessage): void {
    const socket = req.socket;
    const state = this.states.get(socket);
    if (socket.destroyed) return;
    this.dropped += 1;
    socket.destroy();
    if (state === undefined) return;
    const nowMs = this.now();
    const previous = this.penalised.get(state.address);
    // A drop within one penalty of the last one's end is a repeat: the address stays out twice as long.
    const strikes = previous !== undefined && nowMs - previous.untilMs < this.limits.dropPenaltyMs ? Math.min(previous.strikes + 1, 6) : 1;
    const untilMs = nowMs + this.limits.dropPenaltyMs * 2 ** (strikes - 1);
    touch(this.penalised, state.address, { untilMs, strikes }, this.limits.maxPenalisedAddresses);
  }

  /** The connection ends after this response: `Connection: close`, nothing further served, cut after a grace. */
  closeAfter(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Connection', 'close');
    const socket = req.socket;
    const state = this.states.get(socket);
    if (state === undefined || state.closing) return;
    state.closing = true;
    const timer = setTimeout(() => socket.destroy(), this.limits.closeGraceMs).unref();
    socket.once('close', () => clearTimeout(timer));
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const fromAddress = this.perAddress.get(address) ?? 0;
    const trusted = this.isTrusted(address);
    const cap = this.limits.maxConnections + (trusted ? this.limits.reservedConnections : 0);
    const penalisedUntilMs = this.penalised.get(address)?.untilMs ?? 0;
    if (this.open >= cap || fromAddress >= this.limits.maxConnectionsPerAddress || penalisedUntilMs > this.now()) {
      this.refused += 1;
      socket.destroy();
      return;
    }
    this.open += 1;
    this.perAddress.set(address, fromAddress + 1);
    this.states.set(socket, { address, inFlight: 0, closing: false });
    socket.once('close', () => {
      this.open -= 1;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left === 0) this.perAddress.delete(address);
      else this.perAddress.set(address, left);
    });
  }
}
