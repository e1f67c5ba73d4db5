import type { Config } from '../../shared/config.js';
import type { BuildOptions } from './build.js';
import type { CliContext } from './context.js';
import { localBuild } from './local.js';

/** The goal the bundled scenario answers. */
export const DEMO_GOAL = 'Create a Flask + React todo app';

/**
 * Demo builds keep their keys under their own prefix, so a deployment's workers sharing the
 * Redis at REDIS_URL never take a demo task (they would ask the real LLM about it).
 */
export const DEMO_PREFIX = 'codegod-demo';

export type DemoOptions = Pick<BuildOptions, 'workspace' | 'json' | 'timeout'>;

/**
 * `codegod demo`: a whole local build (`build --local`) against the scripted LLM, started in
 * this process on a free port and answering from the bundled todo-app scenario — no GPU, no
 * network, no second terminal. The agents write the files and run the commands for real.
 */
export async function demoCommand(ctx: CliContext, opts: DemoOptions): Promise<number> {
  const scripted = await ctx.programs.scriptedLlm();
  const server = await scripted.start({ scenarioPath: scripted.demoScenarioPath });
  try {
    ctx.err(`codegod: demo: the LLM is a scripted stand-in at ${server.url}, answering from ${scripted.demoScenarioPath}; the agents' files and commands are real`);
    const config: Config = {
      ...ctx.config,
      VLLM_API_URL: server.url,
      CODEGOD_PREFIX: DEMO_PREFIX,
      CODEGOD_EXECUTOR: 'agent',
      LLM_STRUCTURED_OUTPUT: 'json_schema',
      LLM_MODEL: undefined,
      LLM_MODEL_BACKEND: undefined,
      LLM_MODEL_FRONTEND: undefined,
      LLM_MODEL_DEVOPS: undefined,
      LLM_MODEL_TESTING: undefined,
    };
    return await localBuild(ctx, DEMO_GOAL, { ...opts, local: true }, config);
  } finally {
    await server.close();
  }
}
