// JPEG frames for tests, and a frame source that tests push them through by hand.
import jpeg from 'jpeg-js';
import { FrameHub } from '../../hardware/stream.js';
import type { FrameSource } from '../../hardware/types.js';

const pixels = Buffer.alloc(16 * 8 * 4, 0x80);

/** A small valid JPEG carrying `label` as a comment, padded with further comments to about `minBytes`. */
export function testJpeg(label: string, minBytes = 0): Buffer {
  const comments = [label];
  for (let room = minBytes - 700; room > 0; room -= 60_000) comments.push('x'.repeat(Math.min(room, 60_000)));
  return jpeg.encode({ data: pixels, width: 16, height: 8, comments }, 50).data;
}

/** The comments of a JPEG (e.g. the label given to testJpeg, or the fake camera's frame counter). */
export function jpegComments(frame: Buffer): string[] {
  return jpeg.decode(frame, { useTArray: true }).comments ?? [];
}

/** A FrameSource driven by the test: `emit(frame)` publishes, `running` is whatever the test sets. */
export class ManualFrameSource implements FrameSource {
  running = true;
  private readonly hub = new FrameHub();

  start(): Promise<void> {
    this.running = true;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.running = false;
    this.hub.clear();
    return Promise.resolve();
  }

  latestFrame(): Buffer | null {
    return this.hub.latestFrame();
  }

  onFrame(listener: (frame: Buffer) => void): () => void {
    return this.hub.onFrame(listener);
  }

  emit(frame: Buffer): void {
    this.hub.publish(frame);
  }
}
