#!/usr/bin/env node
// The `codegod` command. Runs the compiled CLI (`npm run build` writes dist/); in a source
// checkout without a build, it runs the TypeScript sources through tsx instead.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/orchestrator/cli.js', import.meta.url);
if (existsSync(fileURLToPath(compiled))) {
  await import(compiled.href);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('codegod: not built; run `npm run build` (or `npm ci` for a development checkout)\n');
    process.exit(1);
  }
  register();
  await import(new URL('../orchestrator/cli.ts', import.meta.url).href);
}
