// Injected faults: a FIFO of misbehaviours that take the place of the next matching requests.
import type { ServerResponse } from 'node:http';
import { ApiError, pollConflict, sendError, statusDescription, tooManyRequests, unauthorized } from './http.js';
import type { Fault, FaultOptions } from './types.js';

interface QueuedFault {
  fault: Fault;
  method: string | undefined; // lower-cased
  remaining: number;
}

export class FaultQueue {
  private queue: QueuedFault[] = [];

  inject(fault: Fault, options: FaultOptions = {}): void {
    const count = options.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`injectFault: count must be a positive integer, got ${count}`);
    this.queue.push({ fault: { ...fault }, method: options.method?.toLowerCase(), remaining: count });
  }

  clear(): void {
    this.queue = [];
  }

  get pending(): number {
    return this.queue.reduce((n, q) => n + q.remaining, 0);
  }

  /** Consumes and returns the first queued fault that applies to `method`, if any. */
  take(method: string): Fault | undefined {
    if (this.queue.length === 0) return undefined;
    const lower = method.toLowerCase();
    const index = this.queue.findIndex((q) => q.method === undefined || q.method === lower);
    if (index < 0) return undefined;
    const entry = this.queue[index];
    if (!entry) return undefined;
    if (--entry.remaining === 0) this.queue.splice(index, 1);
    return entry.fault;
  }
}

const MALFORMED_BODY = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n';
const TRUNCATED_BODY = '{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"private","first_name":"x"},"text":"this answer is cut short"}}';

/**
 * Answers (or refuses to answer) a request with `fault`. Returns true for a hang, which the
 * caller keeps track of so that close() can end it.
 */
export function applyFault(res: ServerResponse, fault: Fault): boolean {
  switch (fault.kind) {
    case 'hang':
      return true;
    case 'reset': {
      const socket = res.socket;
      if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      else socket?.destroy();
      return false;
    }
    case 'status':
      sendError(res, new ApiError(fault.status, fault.description ?? statusDescription(fault.status), fault.parameters));
      return false;
    case 'retryAfter':
      sendError(res, tooManyRequests(fault.seconds));
      return false;
    case 'conflict':
      sendError(res, pollConflict());
      return false;
    case 'unauthorized':
      sendError(res, unauthorized());
      return false;
    case 'malformed':
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(MALFORMED_BODY) });
      res.end(MALFORMED_BODY);
      return false;
    case 'answer':
      res.writeHead(fault.status ?? 200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(fault.body) });
      res.end(fault.body);
      return false;
    case 'truncated': {
      const sent = TRUNCATED_BODY.slice(0, 40);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(TRUNCATED_BODY) });
      res.write(sent, () => res.socket?.end());
      return false;
    }
  }
}
