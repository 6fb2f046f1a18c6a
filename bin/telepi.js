#!/usr/bin/env node
// The `telepi` command: runs the built CLI (dist/ is made by `npm run build`, also run by `npm ci`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/app/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('telepi: dist/ is missing; run `npm run build` in the telepi folder first.\n');
  process.exit(1);
}
const { main } = await import(cli.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; this only guards against a handle someone forgot.
setTimeout(() => process.exit(code), 3000).unref();
