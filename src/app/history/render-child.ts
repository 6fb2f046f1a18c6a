// The chart rasteriser, run as a short-lived child process: an SVG on stdin, a PNG on stdout. resvg
// stays out of the bot process, whose memory would otherwise keep ~31 MB after the first chart.
// Usage: render-child <font dir>. Exit 3: no font there; exit 1: the SVG did not render.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Resvg } from '@resvg/resvg-js';

const [fontDir] = process.argv.slice(2);
if (fontDir === undefined) {
  process.stderr.write('usage: render-child <font dir>\n');
  process.exit(2);
}
let fontFiles: string[] = [];
try {
  fontFiles = readdirSync(fontDir).filter((name) => /\.(ttf|otf)$/i.test(name)).map((name) => path.join(fontDir, name));
} catch {
  // Reported below with the fix.
}
if (!fontFiles.some((file) => path.basename(file) === 'DejaVuSans.ttf')) {
  process.stderr.write(`no DejaVuSans.ttf in ${fontDir}: install the fonts with \`sudo apt-get install fonts-dejavu-core\`\n`);
  process.exit(3);
}
const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
try {
  // Only DejaVu Sans itself: loading the whole folder (or the system's fonts) costs time for nothing.
  const png = new Resvg(Buffer.concat(chunks), {
    font: { loadSystemFonts: false, fontFiles: [path.join(fontDir, 'DejaVuSans.ttf'), path.join(fontDir, 'DejaVuSans-Bold.ttf')].filter((f) => fontFiles.includes(f)), defaultFontFamily: 'DejaVu Sans' },
    fitTo: { mode: 'original' },
  }).render().asPng();
  process.stdout.write(png);
} catch (error) {
  process.stderr.write(`the chart did not render: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
