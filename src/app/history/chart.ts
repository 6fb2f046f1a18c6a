// A chart of the history for a period: the PNG (rendered in a child process) and its caption, with the
// exact min/avg/max of the stored readings. Knows nothing of Telegram.
import { formatReading } from '../format.js';
import { chartSvg } from './chart-svg.js';
import { downsample, type Downsampled } from './downsample.js';
import { renderPng } from './render.js';
import { formatSpan } from './span.js';
import type { HistoryStore } from './store.js';

export interface ChartMakerOptions {
  store: HistoryStore;
  /** The recording interval (HISTORY_EVERY). */
  everyMs: number;
  fontDir?: string;
  /** What to add to UTC for local times; default: the Pi's time zone. */
  utcOffsetMs?: (ms: number) => number;
  widthPx?: number;
}

export interface Chart {
  png: Buffer;
  caption: string;
  data: Downsampled;
}

const maxWaiting = 3;

export class ChartMaker {
  // One chart at a time: on a Pi Zero 2 (512 MB) a burst of presses must not start a renderer each.
  #queue: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  constructor(private readonly options: ChartMakerOptions) {}

  /** The chart of the `spanMs` before `nowMs`. Rejects when rendering fails (no font, renderer missing). */
  make(spanMs: number, nowMs: number): Promise<Chart> {
    // A flood of presses must not queue renders without end: past a few waiting, say so instead.
    if (this.#waiting >= maxWaiting) return Promise.reject(new Error(`busy drawing ${this.#waiting} other charts; try again in a moment`));
    this.#waiting++;
    const chart = this.#queue.then(() => this.#make(spanMs, nowMs)).finally(() => {
      this.#waiting--;
    });
    this.#queue = chart.catch(() => undefined);
    return chart;
  }

  async #make(spanMs: number, nowMs: number): Promise<Chart> {
    const { store, everyMs, widthPx = 800 } = this.options;
    const data = await downsample(store, nowMs - spanMs, nowMs, { maxBuckets: widthPx - 84, everyMs });
    const title = `Last ${formatSpan(spanMs)}`;
    const svg = chartSvg(data, { title, widthPx, utcOffsetMs: this.options.utcOffsetMs });
    const png = await renderPng(svg, { fontDir: this.options.fontDir });
    return { png, caption: caption(title, data), data };
  }
}

/** "Last 7d" and a line each for min, avg and max, in /now's format; or why there is nothing to show. */
export function caption(title: string, data: Downsampled): string {
  const [t, h, p] = [data.series.temperature.stats, data.series.humidity.stats, data.series.pressure.stats];
  if (t === null || p === null) return `${title}: no readings in this period yet.`;
  const line = (key: 'min' | 'avg' | 'max') => `${key}  ${formatReading({ temperature: t[key], humidity: h === null ? null : h[key], pressure: p[key] })}`;
  return [title, line('min'), line('avg'), line('max')].join('\n');
}
