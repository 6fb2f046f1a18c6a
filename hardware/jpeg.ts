// JPEG byte-level helpers: is a buffer a whole JPEG, and split a byte stream into JPEG frames.

const MARKER = 0xff;
const SOI = 0xd8;
const EOI = 0xd9;
const SOI_BYTES = Buffer.from([MARKER, SOI]);
const EOI_BYTES = Buffer.from([MARKER, EOI]);

/** True when `buf` starts with the SOI marker (FFD8) and ends with the EOI marker (FFD9). */
export function isCompleteJpeg(buf: Buffer): boolean {
  const n = buf.length;
  return n >= 4 && buf[0] === MARKER && buf[1] === SOI && buf[n - 2] === MARKER && buf[n - 1] === EOI;
}

export interface JpegFrameSplitterOptions {
  /** A frame that grows past this without an EOI is dropped as garbage. Default 4 MiB. */
  maxFrameBytes?: number;
}

/**
 * Splits a byte stream of back-to-back JPEGs (rpicam-vid --codec mjpeg, raspivid -cd MJPEG) into frames,
 * whatever the chunk boundaries. Bytes outside SOI…EOI are dropped.
 *
 * A frame ends at the first FFD9 after its SOI. Entropy-coded data cannot contain an unstuffed FFD9,
 * but an EXIF thumbnail nests its own SOI…EOI; rpicam's MJPEG frames carry no EXIF, so this is enough.
 * Each byte is scanned once (Buffer.indexOf), and a frame's chunks are joined once, when it completes.
 */
export class JpegFrameSplitter {
  private readonly maxFrameBytes: number;
  /** Chunks (or slices) of the frame in progress; empty while looking for an SOI. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private inFrame = false;
  /** The previous chunk ended with 0xFF: the next may complete an SOI or EOI marker. */
  private trailingMarker = false;
  /** Bytes thrown away: garbage between frames and oversized frames. */
  droppedBytes = 0;
  /** Frames dropped for exceeding maxFrameBytes. */
  oversizedFrames = 0;

  constructor(
    private readonly onFrame: (frame: Buffer) => void,
    options: JpegFrameSplitterOptions = {},
  ) {
    this.maxFrameBytes = options.maxFrameBytes ?? 4 * 1024 * 1024;
  }

  /** Feeds the next chunk; calls onFrame for each frame it completes, in order. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      pos = this.inFrame ? this.scanForEnd(chunk, pos) : this.scanForStart(chunk, pos);
    }
  }

  /** Forgets a partial frame, e.g. when the producing process was restarted. */
  reset(): void {
    this.droppedBytes += this.partsBytes;
    this.parts = [];
    this.partsBytes = 0;
    this.inFrame = false;
    this.trailingMarker = false;
  }

  private scanForStart(chunk: Buffer, from: number): number {
    if (this.trailingMarker && from === 0 && chunk[0] === SOI) {
      this.trailingMarker = false;
      this.droppedBytes -= 1; // the 0xFF counted as garbage was the SOI's first byte
      this.beginFrame(SOI_BYTES);
      return 1;
    }
    const start = chunk.indexOf(SOI_BYTES, from);
    if (start === -1) {
      this.droppedBytes += chunk.length - from;
      this.trailingMarker = chunk[chunk.length - 1] === MARKER;
      return chunk.length;
    }
    this.droppedBytes += start - from;
    this.trailingMarker = false;
    this.beginFrame(SOI_BYTES);
    return start + 2;
  }

  private scanForEnd(chunk: Buffer, from: number): number {
    if (this.trailingMarker && from === 0 && chunk[0] === EOI) {
      this.trailingMarker = false;
      this.finishFrame(chunk.subarray(0, 1));
      return 1;
    }
    const end = chunk.indexOf(EOI_BYTES, from);
    if (end === -1) {
      this.append(chunk.subarray(from));
      this.trailingMarker = chunk[chunk.length - 1] === MARKER;
      return chunk.length;
    }
    this.trailingMarker = false;
    this.finishFrame(chunk.subarray(from, end + 2));
    return end + 2;
  }

  private beginFrame(soi: Buffer): void {
    this.inFrame = true;
    this.parts = [soi];
    this.partsBytes = soi.length;
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.parts.push(part);
    this.partsBytes += part.length;
    if (this.partsBytes > this.maxFrameBytes) {
      this.oversizedFrames += 1;
      this.reset();
    }
  }

  private finishFrame(lastPart: Buffer): void {
    const length = this.partsBytes + lastPart.length;
    if (length > this.maxFrameBytes) {
      this.oversizedFrames += 1;
      this.droppedBytes += lastPart.length;
      this.reset();
      return;
    }
    this.parts.push(lastPart);
    // concat copies, so a kept frame never pins the (possibly much larger) chunks it came from
    const frame = Buffer.concat(this.parts, length);
    this.parts = [];
    this.partsBytes = 0;
    this.inFrame = false;
    this.onFrame(frame);
  }
}
