// Rasterises a chart's SVG in a short-lived child process (render-child.ts), so nothing of resvg is
// loaded in the bot: its memory goes back to the system when the child exits.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../../hardware/child.js';

/** Debian's fonts-dejavu-core; Raspberry Pi OS Lite has no font until install.sh adds it. */
export const defaultFontDir = '/usr/share/fonts/truetype/dejavu';

export interface RenderOptions {
  fontDir?: string;
  /** Kill the child after this long (default 30 s: a Pi Zero 2 under load is slow, a hung one must not stay). */
  timeoutMs?: number;
}

/** How to start the child: the built .js beside the bundle, or the .ts source through tsx when run from source. */
export function renderChildCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return ['--import', import.meta.resolve('tsx'), path.join(path.dirname(here), 'render-child.ts')];
  // Bundled, this code sits in a chunk somewhere under dist/; the child is its own entry point there.
  let dist = path.dirname(here);
  while (path.basename(dist) !== 'dist' && path.dirname(dist) !== dist) dist = path.dirname(dist);
  return [path.join(dist, 'src', 'app', 'history', 'render-child.js')];
}

/** The PNG of `svg`. Rejects with the child's reason (no font: the apt-get command to run). */
export async function renderPng(svg: string, options: RenderOptions = {}): Promise<Buffer> {
  const args = renderChildCommand();
  const entry = args.at(-1) as string;
  if (!existsSync(entry)) throw new Error(`the chart renderer ${entry} is missing; rebuild telepi with \`npm run build\``);
  const result = await runCommand(process.execPath, [...args, options.fontDir ?? defaultFontDir], {
    input: svg, timeoutMs: options.timeoutMs ?? 30_000, env: {},
  });
  if (result.code !== 0) {
    throw new Error(`chart rendering failed: ${result.stderrTail.trim() || `exit code ${result.code ?? result.signal}`}`);
  }
  return result.stdout;
}
