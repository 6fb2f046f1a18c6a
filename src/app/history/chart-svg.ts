// The chart telepi sends for /chart, as an SVG: one panel per quantity measured (a BMP280 has no humidity),
// each with a min–max band, the average line, broken where readings are missing, and its min and max marked.

import type { Downsampled, Quantity, Series, Stats } from './downsample.js';

export interface ChartSvgOptions {
  title: string;
  widthPx?: number;
  panelHeightPx?: number;
  /** What to add to UTC for the labels' local time; default: the Pi's time zone at that moment. */
  utcOffsetMs?: (ms: number) => number;
}

interface PanelStyle {
  label: string;
  unit: string;
  colour: string;
  /** A flat period still gets at least this much height, so sensor noise does not look like weather. */
  minSpan: number;
}

export const panelStyles: Record<Quantity, PanelStyle> = {
  temperature: { label: 'Temperature', unit: '°C', colour: '#d9480f', minSpan: 2 },
  humidity: { label: 'Humidity', unit: '%', colour: '#1971c2', minSpan: 10 },
  pressure: { label: 'Pressure', unit: 'hPa', colour: '#2f9e44', minSpan: 4 },
};

export const chartFont = 'DejaVu Sans';
const margin = { left: 66, right: 18, top: 34, bottom: 26 };
const panelGapPx = 26;
const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
const monthNames = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The layout a test (or the viewer page) needs to find the panels in the picture. */
export interface ChartLayout {
  widthPx: number;
  heightPx: number;
  /** The plot rectangle of each panel, top to bottom, in pixels. */
  panels: Array<{ quantity: Quantity; x: number; y: number; width: number; height: number }>;
}

export function chartLayout(data: Downsampled, options: Pick<ChartSvgOptions, 'widthPx' | 'panelHeightPx'> = {}): ChartLayout {
  const widthPx = options.widthPx ?? 800;
  const panelHeightPx = options.panelHeightPx ?? 150;
  const shown = (Object.keys(panelStyles) as Quantity[]).filter((q) => data.series[q].stats !== null);
  const panels = shown.map((quantity, i) => ({
    quantity,
    x: margin.left,
    y: margin.top + i * (panelHeightPx + panelGapPx) + 16,
    width: widthPx - margin.left - margin.right,
    height: panelHeightPx - 16,
  }));
  const heightPx = margin.top + Math.max(1, shown.length) * (panelHeightPx + panelGapPx) - panelGapPx + margin.bottom;
  return { widthPx, heightPx, panels };
}

/** The chart of `data` as an SVG document; a period with no reading at all gets a picture that says so. */
export function chartSvg(data: Downsampled, options: ChartSvgOptions): string {
  const layout = chartLayout(data, options);
  const offset = options.utcOffsetMs ?? ((ms: number) => -new Date(ms).getTimezoneOffset() * 60_000);
  const ticks = timeTicks(data.fromMs, data.toMs, offset);
  const x = (ms: number) => margin.left + ((ms - data.fromMs) / (data.toMs - data.fromMs)) * (layout.widthPx - margin.left - margin.right);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.widthPx}" height="${layout.heightPx}" viewBox="0 0 ${layout.widthPx} ${layout.heightPx}" font-family="${chartFont}" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${margin.left}" y="20" font-size="15" font-weight="bold" fill="#212529">${escapeXml(options.title)}</text>`,
  ];
  if (layout.panels.length === 0) {
    out.push(`<text x="${layout.widthPx / 2}" y="${margin.top + 60}" text-anchor="middle" fill="#868e96">No readings in this period</text>`);
  }
  for (const [i, panel] of layout.panels.entries()) {
    const style = panelStyles[panel.quantity];
    const series = data.series[panel.quantity];
    const stats = series.stats as Stats;
    const scale = valueScale(stats.min, stats.max, style.minSpan);
    const y = (v: number) => panel.y + panel.height - ((v - scale.lo) / (scale.hi - scale.lo)) * panel.height;
    out.push(`<text x="${panel.x}" y="${panel.y - 5}" font-weight="bold" fill="${style.colour}">${style.label} (${style.unit})</text>`);
    out.push(`<rect x="${panel.x}" y="${panel.y}" width="${panel.width}" height="${panel.height}" fill="#f8f9fa" stroke="#ced4da"/>`);
    for (let v = scale.lo; v <= scale.hi + scale.step / 2; v += scale.step) {
      out.push(`<line x1="${panel.x}" x2="${panel.x + panel.width}" y1="${r(y(v))}" y2="${r(y(v))}" stroke="#e9ecef"/>`);
      out.push(`<text x="${panel.x - 6}" y="${r(y(v) + 4)}" text-anchor="end" fill="#495057">${formatValue(v, scale.step)}</text>`);
    }
    for (const tick of ticks) {
      out.push(`<line x1="${r(x(tick.ms))}" x2="${r(x(tick.ms))}" y1="${panel.y}" y2="${panel.y + panel.height}" stroke="#e9ecef"/>`);
      if (i === layout.panels.length - 1) {
        out.push(`<text x="${r(x(tick.ms))}" y="${panel.y + panel.height + 16}" text-anchor="middle" fill="#495057">${tick.label}</text>`);
      }
    }
    out.push(...seriesPaths(data, series, x, y, style.colour));
    out.push(extremeMark('max', stats.maxAtMs, stats.max, x, y, panel, style));
    out.push(extremeMark('min', stats.minAtMs, stats.min, x, y, panel, style));
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The band and the average line, one piece per run of buckets with readings: missing ones leave a gap. */
function seriesPaths(data: Downsampled, series: Series, x: (ms: number) => number, y: (v: number) => number, colour: string): string[] {
  const out: string[] = [];
  const centre = (i: number) => Math.min(data.toMs, Math.max(data.fromMs, data.startMs + (i + 0.5) * data.bucketMs));
  for (let i = 0; i < data.buckets; i++) {
    if (Number.isNaN(series.avg[i] as number)) continue;
    let end = i;
    while (end + 1 < data.buckets && !Number.isNaN(series.avg[end + 1] as number)) end++;
    const run = Array.from({ length: end - i + 1 }, (_, k) => i + k);
    if (run.length === 1) {
      const cx = r(x(centre(i)));
      out.push(`<line x1="${cx - 2}" x2="${cx + 2}" y1="${r(y(series.avg[i] as number))}" y2="${r(y(series.avg[i] as number))}" stroke="${colour}" stroke-width="2"/>`);
    } else {
      const upper = run.map((b) => `${r(x(centre(b)))},${r(y(series.max[b] as number))}`);
      const lower = [...run].reverse().map((b) => `${r(x(centre(b)))},${r(y(series.min[b] as number))}`);
      out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${colour}" fill-opacity="0.18"/>`);
      const line = run.map((b) => `${r(x(centre(b)))},${r(y(series.avg[b] as number))}`);
      out.push(`<polyline points="${line.join(' ')}" fill="none" stroke="${colour}" stroke-width="1.6" stroke-linejoin="round"/>`);
    }
    i = end;
  }
  return out;
}

function extremeMark(
  which: 'min' | 'max', atMs: number, value: number, x: (ms: number) => number, y: (v: number) => number,
  panel: ChartLayout['panels'][number], style: PanelStyle,
): string {
  const cx = r(x(atMs));
  const cy = r(y(value));
  // Keep the label inside the plot: left of the mark near the right edge, below a max at the top.
  const anchor = cx > panel.x + panel.width * 0.75 ? 'end' : 'start';
  const dx = anchor === 'end' ? -6 : 6;
  const dy = which === 'max' ? (cy - panel.y < 14 ? 12 : -4) : (panel.y + panel.height - cy < 14 ? -4 : 12);
  return `<circle cx="${cx}" cy="${cy}" r="3" fill="${style.colour}" stroke="#ffffff"/>`
    + `<text x="${cx + dx}" y="${cy + dy}" text-anchor="${anchor}" font-size="11" fill="#212529">${which} ${formatValue(value, 0.1)}${style.unit}</text>`;
}

/** A value axis on round steps (1, 2, 2.5, 5 × 10^k), about four of them, at least `minSpan` tall. */
export function valueScale(min: number, max: number, minSpan: number): { lo: number; hi: number; step: number } {
  let lo = min;
  let hi = max;
  if (hi - lo < minSpan) {
    const mid = (lo + hi) / 2;
    [lo, hi] = [mid - minSpan / 2, mid + minSpan / 2];
  }
  const rough = (hi - lo) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * power >= rough) ?? 10) * power;
  return { lo: Math.floor(lo / step) * step, hi: Math.ceil(hi / step) * step, step };
}

export interface TimeTick {
  ms: number;
  label: string;
}

/** Ticks on round local times, at most about eight: hours, days, or months for long periods. */
export function timeTicks(fromMs: number, toMs: number, offset: (ms: number) => number): TimeTick[] {
  const spanMs = toMs - fromMs;
  const local = (ms: number) => new Date(ms + offset(ms));
  const ticks: TimeTick[] = [];
  if (spanMs > 60 * dayMs) {
    const monthsStep = Math.max(1, Math.ceil(spanMs / (30 * dayMs) / 8));
    const first = local(fromMs);
    for (let m = first.getUTCMonth() + 1, year = first.getUTCFullYear(); ; m += monthsStep) {
      const wall = Date.UTC(year, m, 1);
      const ms = wall - offset(wall);
      if (ms > toMs) break;
      const date = new Date(wall);
      const name = monthNames[date.getUTCMonth()] as string;
      ticks.push({ ms, label: date.getUTCMonth() === 0 ? `${name} ${date.getUTCFullYear()}` : name });
    }
    return ticks;
  }
  const steps = [hourMs, 2 * hourMs, 3 * hourMs, 6 * hourMs, 12 * hourMs, dayMs, 2 * dayMs, 7 * dayMs, 14 * dayMs];
  const stepMs = steps.find((s) => spanMs / s <= 8) ?? 14 * dayMs;
  const fromLocal = fromMs + offset(fromMs);
  for (let wall = Math.ceil(fromLocal / stepMs) * stepMs; ; wall += stepMs) {
    const ms = wall - offset(wall);
    if (ms > toMs) break;
    const date = new Date(wall);
    const dayLabel = `${monthNames[date.getUTCMonth()] as string} ${date.getUTCDate()}`;
    const atMidnight = wall % dayMs === 0;
    ticks.push({ ms, label: stepMs >= dayMs || atMidnight ? dayLabel : `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}` });
  }
  return ticks;
}

/** A value with as many decimals as its step needs (20, 22.5); no digit grouping in the chart. */
function formatValue(value: number, step: number): string {
  const decimals = Number.isInteger(step) ? 0 : Number.isInteger(Math.round(step * 1e6) / 1e5) ? 1 : 2;
  const text = value.toFixed(decimals);
  return text === '-0' || /^-0\.0+$/.test(text) ? text.slice(1) : text;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function r(n: number): number {
  return Math.round(n * 10) / 10;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
