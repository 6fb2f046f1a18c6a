#!/usr/bin/env node
// The `telepi` command: runs the built CLI (dist/ is made by `npm run build`, also run by `npm ci`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/app/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('telepi: dist/ is missing; run `npm run build` in the telepi folder first.\n');
  process.exit(1);
}
await import(cli.href);
