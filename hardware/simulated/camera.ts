// A camera for the demo: a painted scene with the date and time on it, encoded as a real JPEG.
import type { Camera, CaptureOptions } from '../types.js';

// 5x7 glyphs, one byte per row, bit 4 the leftmost pixel: enough for "2024-06-01 12:34:56".
const FONT: Record<string, readonly number[]> = {
  '0': [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
  '1': [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  '2': [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
  '3': [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  '4': [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
  '5': [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  '6': [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
  '7': [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  '8': [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
  '9': [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  ':': [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
  '-': [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
  ' ': [0, 0, 0, 0, 0, 0, 0],
};

type Rgb = readonly [number, number, number];

/** An RGBA canvas just big enough for a scene and a caption. */
class Canvas {
  readonly data: Buffer;

  constructor(readonly width: number, readonly height: number) {
    this.data = Buffer.alloc(width * height * 4, 255);
  }

  fill(x0: number, y0: number, w: number, h: number, color: Rgb): void {
    const x1 = Math.min(this.width, x0 + w);
    const y1 = Math.min(this.height, y0 + h);
    for (let y = Math.max(0, y0); y < y1; y++) {
      for (let x = Math.max(0, x0); x < x1; x++) {
        const i = (y * this.width + x) * 4;
        this.data[i] = color[0];
        this.data[i + 1] = color[1];
        this.data[i + 2] = color[2];
      }
    }
  }

  /** Draws `text` with the 5x7 font, each font pixel `scale` pixels square. */
  text(text: string, x0: number, y0: number, scale: number, color: Rgb): void {
    [...text].forEach((char, index) => {
      const glyph = FONT[char] ?? FONT[' '] ?? [];
      glyph.forEach((row, gy) => {
        for (let gx = 0; gx < 5; gx++) {
          if (row & (0x10 >> gx)) this.fill(x0 + (index * 6 + gx) * scale, y0 + gy * scale, scale, scale, color);
        }
      });
    });
  }

  /** Mirrors the picture: rotation 180 is both flips. */
  flip(horizontal: boolean, vertical: boolean): void {
    const { width, height } = this;
    const pixels = new Uint32Array(this.data.buffer, this.data.byteOffset, width * height);
    let mirrorRows = horizontal;
    if (vertical) {
      pixels.reverse(); // reversing every pixel flips both ways: undo the horizontal part below
      mirrorRows = !mirrorRows;
    }
    if (mirrorRows) for (let y = 0; y < height; y++) pixels.subarray(y * width, (y + 1) * width).reverse();
  }
}

const pad = (n: number) => String(n).padStart(2, '0');

/** "2024-06-01 12:34:56" in local time. */
export function clockText(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export interface SimulatedCameraOptions {
  now?: () => Date;
  width?: number;
  height?: number;
  /** JPEG quality. Default 75. */
  quality?: number;
}

/** Paints a sky, a hill and a sun that crosses the sky once a minute, with the time written on it. */
export class SimulatedCamera implements Camera {
  readonly description = 'simulated camera';
  private readonly now: () => Date;

  constructor(private readonly options: SimulatedCameraOptions = {}) {
    this.now = options.now ?? (() => new Date());
  }

  async capture(options: CaptureOptions = {}): Promise<Buffer> {
    const width = options.width ?? this.options.width ?? 640;
    const height = options.height ?? this.options.height ?? 360;
    const canvas = this.paint(width, height, this.now());
    const upsideDown = options.rotation === 180;
    canvas.flip(Boolean(options.hflip) !== upsideDown, Boolean(options.vflip) !== upsideDown);
    const { encode } = await import('jpeg-js');
    const quality = options.quality ?? this.options.quality ?? 75;
    return encode({ data: canvas.data, width, height }, quality).data;
  }

  private paint(width: number, height: number, date: Date): Canvas {
    const canvas = new Canvas(width, height);
    const horizon = Math.round(height * 0.7);
    for (let y = 0; y < horizon; y++) {
      const t = y / horizon;
      canvas.fill(0, y, width, 1, [Math.round(60 + 120 * t), Math.round(120 + 90 * t), 235]);
    }
    canvas.fill(0, horizon, width, height - horizon, [70, 140, 60]);
    const secondOfMinute = date.getSeconds() + date.getMilliseconds() / 1000;
    const sunX = Math.round((secondOfMinute / 60) * width);
    const sunY = Math.round(horizon * 0.3);
    const sunSize = Math.max(4, Math.round(height / 12));
    canvas.fill(sunX - sunSize, sunY - sunSize, sunSize * 2, sunSize * 2, [250, 210, 60]);
    const caption = clockText(date);
    const scale = Math.max(1, Math.floor(width / (caption.length * 6 * 2)));
    canvas.fill(0, 0, (caption.length * 6 + 2) * scale, 9 * scale, [20, 20, 20]);
    canvas.text(caption, scale, scale, scale, [255, 255, 255]);
    return canvas;
  }
}
