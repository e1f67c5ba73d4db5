#!/usr/bin/env node
// The `codegod` command, and the one place that wires its programs together: the CLI gets
// loaders for the worker and orchestrator programs it launches (`codegod worker`,
// `codegod orchestrator`, `codegod build --local`) and for the scripted LLM (`codegod
// demo`). Runs the compiled sources (`npm run build` writes dist/); in a source checkout
// without a build, the TypeScript through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = existsSync(fileURLToPath(new URL('../dist/orchestrator/cli/main.js', import.meta.url)));
if (!compiled) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('codegod: not built; run `npm run build` (or `npm ci` for a development checkout)\n');
    process.exit(1);
  }
  register();
}
const load = (module) => import(new URL(compiled ? `../dist/${module}.js` : `../${module}.ts`, import.meta.url).href);

const { main } = await load('orchestrator/cli/main');
main({
  workers: async () => (await load('workers/main')).workerProgram,
  orchestrator: async () => (await load('orchestrator/main')).orchestratorProgram,
  scriptedLlm: async () => (await load('scripts/llm-server/program')).scriptedLlmProgram,
});
