// One /stream response of the MJPEG relay: never more than one frame waiting, the newest.
import type { ServerResponse } from 'node:http';

export const BOUNDARY = 'telepiframe';

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
export class StreamClient {
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
