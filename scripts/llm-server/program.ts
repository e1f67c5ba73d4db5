import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScriptedLlmProgram } from '../../shared/programs.js';
import { startScriptedLlmServer } from './server.js';

/**
 * The scripted LLM as a program the CLI may start in its own process (`codegod demo`).
 * Scenario files are data, not code: they stay in scripts/llm-server/scenarios/ beside this
 * module in a checkout, and the package and the image ship that folder beside dist/.
 */
function bundledScenario(name: string): string {
  const candidates = [
    new URL(`./scenarios/${name}`, import.meta.url),
    // Compiled: <root>/dist/scripts/llm-server/program.js; the scenarios stay at <root>/scripts/llm-server/scenarios.
    new URL(`../../../scripts/llm-server/scenarios/${name}`, import.meta.url),
  ].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export const scriptedLlmProgram: ScriptedLlmProgram = {
  demoScenarioPath: bundledScenario('todo-app.yaml'),
  async start({ scenarioPath, port }) {
    // The grammar check needs xgrammar's WASM build, a development dependency: a production
    // install has only the light shape check (the scenarios are held to the grammar in tests).
    const server = await startScriptedLlmServer({ scenarioPath, port: port ?? 0, grammarCheck: false });
    return { url: server.url, close: () => server.close() };
  },
};
