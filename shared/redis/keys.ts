/**
 * Every Redis key codegod writes, in one place. `P` is CODEGOD_PREFIX (default `codegod`).
 *
 * | key                                   | type   | what                                                |
 * |---------------------------------------|--------|-----------------------------------------------------|
 * | P:builds                              | zset   | build id → created at (ms)                          |
 * | P:builds:active                       | set    | builds not yet ended (reconciler scans these)       |
 * | P:build:{B}                           | hash   | build record (goal, state, counters, reason)        |
 * | P:build:{B}:states                    | hash   | task id → state (one HGETALL shows the whole DAG)   |
 * | P:build:{B}:task:T                    | hash   | task record (spec, deps, dependents, times, result) |
 * | P:build:{B}:events                    | stream | every state change of the build, replayable         |
 * | P:build:{B}:audit                     | stream | every command and file write agents made            |
 * | P:build:{B}:llm                       | stream | one entry per LLM call (phase, tokens, latency)     |
 * | P:build:{B}:knowledge                 | hash   | team knowledge of the build (venv path, entry point) |
 * | P:build:{B}:knowledge:owners          | hash   | knowledge key → the role that owns (may write) it   |
 * | P:build:{B}:loop:T                    | hash   | ORPAV checkpoint of a task (resume after a crash)   |
 * | P:agent:A:memory                      | string | JSON of agent A's memory                            |
 * | P:agent:A:checkpoints                 | hash   | checkpoint name → JSON snapshot of that memory      |
 * | P:agents:known                        | set    | every agent id that has memory                      |
 * | P:metrics:llm                         | hash   | LLM counters (calls, tokens, ms; total and per role)|
 * | P:metrics:tasks                       | hash   | task counters (total and per role)                  |
 * | P:metrics:durations                   | hash   | task duration histogram per role and outcome        |
 * | P:agents:status                       | hash   | agent id → JSON (role, state, tasks, heartbeat)     |
 * | P:control                             | pubsub | cancel notices for workers                          |
 * | P:q:<queue>:*                         | BullMQ | queues `goals`, `backend`, `frontend`, `devops`, `testing` |
 *
 * All keys of one build share the hash tag `{B}`, so the Lua scripts that touch them stay in
 * one Redis Cluster slot.
 */
export interface Keys {
  readonly prefix: string;
  readonly queuePrefix: string;
  readonly builds: string;
  readonly activeBuilds: string;
  readonly metricsTasks: string;
  readonly agentsStatus: string;
  readonly control: string;
  readonly metricsLlm: string;
  readonly metricsDurations: string;
  readonly agentsKnown: string;
  audit(buildId: string): string;
  llmCalls(buildId: string): string;
  knowledge(buildId: string): string;
  knowledgeOwners(buildId: string): string;
  loopState(buildId: string, taskId: string): string;
  agentMemory(agentId: string): string;
  agentCheckpoints(agentId: string): string;
  build(buildId: string): string;
  buildStates(buildId: string): string;
  task(buildId: string, taskId: string): string;
  /** The task key without the task id, for Lua scripts that walk dependents. */
  taskPrefix(buildId: string): string;
  events(buildId: string): string;
}

export function createKeys(prefix: string): Keys {
  const build = (b: string) => `${prefix}:build:{${b}}`;
  return {
    prefix,
    queuePrefix: `${prefix}:q`,
    builds: `${prefix}:builds`,
    activeBuilds: `${prefix}:builds:active`,
    metricsTasks: `${prefix}:metrics:tasks`,
    agentsStatus: `${prefix}:agents:status`,
    control: `${prefix}:control`,
    metricsLlm: `${prefix}:metrics:llm`,
    metricsDurations: `${prefix}:metrics:durations`,
    agentsKnown: `${prefix}:agents:known`,
    audit: (b) => `${build(b)}:audit`,
    llmCalls: (b) => `${build(b)}:llm`,
    knowledge: (b) => `${build(b)}:knowledge`,
    knowledgeOwners: (b) => `${build(b)}:knowledge:owners`,
    loopState: (b, t) => `${build(b)}:loop:${t}`,
    agentMemory: (a) => `${prefix}:agent:${a}:memory`,
    agentCheckpoints: (a) => `${prefix}:agent:${a}:checkpoints`,
    build,
    buildStates: (b) => `${build(b)}:states`,
    task: (b, t) => `${build(b)}:task:${t}`,
    taskPrefix: (b) => `${build(b)}:task:`,
    events: (b) => `${build(b)}:events`,
  };
}
