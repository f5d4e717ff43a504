#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (built by `npm run build`, which `npm install` runs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error('muster: the CLI is not built yet; run `npm run build` in the muster folder.');
  process.exit(1);
}
await import(compiled.href);
