// Downsampling on demand: one pass over the stored rows into fixed time buckets (min/avg/max per
// quantity), plus exact min/avg/max of the whole period for the caption. bench/history.ts measures why
// on demand rather than kept views: a year of minutes scans in tens of ms here.

import type { HistoryStore, Row } from './store.js';

export const quantities = ['temperature', 'humidity', 'pressure'] as const;
export type Quantity = (typeof quantities)[number];

/** Exact statistics of one quantity over the period, from every stored reading. */
export interface Stats {
  min: number;
  minAtMs: number;
  max: number;
  maxAtMs: number;
  avg: number;
  count: number;
}

/** One quantity in buckets: NaN where a bucket holds no reading (telepi was down, or the sensor failed). */
export interface Series {
  min: Float64Array;
  avg: Float64Array;
  max: Float64Array;
  /** null when the period holds no reading of this quantity (a BMP280 has no humidity). */
  stats: Stats | null;
}

export interface Downsampled {
  fromMs: number;
  toMs: number;
  /** Bucket i covers [startMs + i·bucketMs, startMs + (i+1)·bucketMs). */
  startMs: number;
  bucketMs: number;
  buckets: number;
  series: Record<Quantity, Series>;
  /** Rows read, gaps included. */
  rows: number;
}

export interface DownsampleOptions {
  /** At most this many buckets (about one per pixel of the plot). */
  maxBuckets: number;
  /** The recording interval: a bucket is never shorter, so an empty bucket really is a gap. */
  everyMs: number;
}

/**
 * Reads [fromMs, toMs] from `store` into buckets of a whole number of recording intervals, aligned to
 * the recording grid, so a bucket holds a reading unless one is missing.
 */
export async function downsample(store: HistoryStore, fromMs: number, toMs: number, options: DownsampleOptions): Promise<Downsampled> {
  const spanMs = Math.max(toMs - fromMs, options.everyMs);
  const bucketMs = Math.ceil(spanMs / options.maxBuckets / options.everyMs) * options.everyMs;
  const startMs = Math.floor(fromMs / bucketMs) * bucketMs;
  const buckets = Math.max(1, Math.ceil((toMs + 1 - startMs) / bucketMs));
  const acc = Object.fromEntries(quantities.map((q) => [q, new Accumulator(buckets)])) as Record<Quantity, Accumulator>;
  let rows = 0;
  await store.scan(fromMs, toMs, (row: Readonly<Row>) => {
    rows++;
    const i = Math.floor((row.atMs - startMs) / bucketMs);
    for (const q of quantities) acc[q].add(i, row[q], row.atMs);
  });
  const series = Object.fromEntries(quantities.map((q) => [q, acc[q].series()])) as Record<Quantity, Series>;
  return { fromMs, toMs, startMs, bucketMs, buckets, series, rows };
}

class Accumulator {
  readonly #min: Float64Array;
  readonly #max: Float64Array;
  readonly #sum: Float64Array;
  readonly #count: Uint32Array;
  #stats: Stats | null = null;
  #total = 0;

  constructor(buckets: number) {
    this.#min = new Float64Array(buckets).fill(Infinity);
    this.#max = new Float64Array(buckets).fill(-Infinity);
    this.#sum = new Float64Array(buckets);
    this.#count = new Uint32Array(buckets);
  }

  add(bucket: number, value: number, atMs: number): void {
    if (Number.isNaN(value)) return;
    if (value < (this.#min[bucket] as number)) this.#min[bucket] = value;
    if (value > (this.#max[bucket] as number)) this.#max[bucket] = value;
    this.#sum[bucket] = (this.#sum[bucket] as number) + value;
    this.#count[bucket] = (this.#count[bucket] as number) + 1;
    const stats = (this.#stats ??= { min: value, minAtMs: atMs, max: value, maxAtMs: atMs, avg: 0, count: 0 });
    if (value < stats.min) [stats.min, stats.minAtMs] = [value, atMs];
    if (value > stats.max) [stats.max, stats.maxAtMs] = [value, atMs];
    stats.count++;
    this.#total += value;
  }

  series(): Series {
    const n = this.#count.length;
    const avg = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const count = this.#count[i] as number;
      avg[i] = count === 0 ? NaN : (this.#sum[i] as number) / count;
      if (count === 0) this.#min[i] = this.#max[i] = NaN;
    }
    if (this.#stats !== null) this.#stats.avg = this.#total / this.#stats.count;
    return { min: this.#min, avg, max: this.#max, stats: this.#stats };
  }
}
