// `telepi history --csv`: the recorded readings as CSV on stdout, oldest first; a gap has empty values.
import { silentLogger } from '../../log.js';
import { FileHistoryStore, type Row } from './store.js';

export const csvHeader = 'time,temperature_c,humidity_pct,pressure_hpa';

/** Thrown inside the scan to stop it: the reader went away, so no more history is read. */
const readerGone = Symbol('the CSV reader went away');

/**
 * Writes the rows of [fromMs, toMs] as CSV lines through `out`, a thousand lines per call; resolves with
 * the row count. `out` returning false (`telepi history --csv | head`: the reader went away) stops the
 * export there, reading no more history.
 */
export async function exportCsv(dir: string, fromMs: number, toMs: number, out: (text: string) => boolean | void): Promise<number> {
  const store = await FileHistoryStore.openReadOnly(dir, silentLogger);
  const lines: string[] = [csvHeader];
  let rows = 0;
  const value = (v: number) => (Number.isNaN(v) ? '' : String(v));
  const write = () => {
    if (out(lines.splice(0).join('\n')) === false) throw readerGone;
  };
  try {
    await store.scan(fromMs, toMs, (row: Readonly<Row>) => {
      rows++;
      lines.push(`${new Date(row.atMs).toISOString()},${value(row.temperature)},${value(row.humidity)},${value(row.pressure)}`);
      if (lines.length >= 1000) write();
    });
    if (lines.length > 0) write();
  } catch (error) {
    if (error !== readerGone) throw error;
  }
  return rows;
}
