import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { z } from 'zod';
import { CodegodError, DataCorruptError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { Logger } from '../logger.js';
import { loadLuaScript } from '../redis/lua-loader.js';
import { PLAN_LIMITS, TASK_ID_PATTERN } from '../domain/plan.js';
import { ROLES } from '../domain/roles.js';
import { KNOWLEDGE_BUILD_ID_PATTERN, KNOWLEDGE_KEY_PATTERN } from './team-knowledge.js';

/**
 * Per-agent memory with the seed's semantics: role, current task, completed tasks, core
 * knowledge, observations, reasoning history, blocked_on. A wipe clears the working state and
 * keeps role and core knowledge; checkpoints are named snapshots that can be restored.
 *
 * Every list grows without bound in a long-running agent unless trimmed, and the whole memory
 * is one Redis string rewritten on every change, so growth is bounded here: the limits below
 * are enforced by the functions that add entries and by the schema that reads memory back.
 */
export const MEMORY_LIMITS = {
  observations: 50,
  reasoningHistory: 50,
  completedTasks: 500,
  knowledgeKeys: 200,
  textMaxChars: 2_000,
  checkpoints: 50,
  /** Length of the excerpts of dropped observations kept in the leading summary entry. */
  droppedExcerptChars: 400,
} as const;

/** Agent ids become part of key names, hence the same charset as AGENT_ID in the config. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9_.-]{1,80}$/;
/** Admits ISO timestamps, the default checkpoint name. */
export const CHECKPOINT_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

export const MEMORY_ROLES = [...ROLES, 'master'] as const;
export const MemoryRoleSchema = z.enum(MEMORY_ROLES);
export type MemoryRole = z.infer<typeof MemoryRoleSchema>;

export const REASONING_PHASES = ['observe', 'reason', 'plan', 'act', 'validate'] as const;
export const ReasoningPhaseSchema = z.enum(REASONING_PHASES);
export type ReasoningPhase = z.infer<typeof ReasoningPhaseSchema>;

const TextSchema = z.string().max(MEMORY_LIMITS.textMaxChars);
const BuildIdSchema = z.string().regex(KNOWLEDGE_BUILD_ID_PATTERN, 'not a build id');
const TaskIdSchema = z.string().max(PLAN_LIMITS.idMaxChars).regex(TASK_ID_PATTERN, 'not a task id');
const IsoTimeSchema = z.iso.datetime();

export const CurrentTaskSchema = z.object({ buildId: BuildIdSchema, taskId: TaskIdSchema, title: TextSchema });
export type CurrentTask = z.infer<typeof CurrentTaskSchema>;

export const ReasoningEntrySchema = z.object({
  buildId: BuildIdSchema,
  taskId: TaskIdSchema,
  phase: ReasoningPhaseSchema,
  summary: TextSchema,
  at: IsoTimeSchema,
});
export type ReasoningEntry = z.infer<typeof ReasoningEntrySchema>;

export const AgentMemorySchema = z.object({
  agentId: z.string().regex(AGENT_ID_PATTERN, 'not an agent id'),
  role: MemoryRoleSchema,
  currentTask: CurrentTaskSchema.nullable(),
  /** `buildId/taskId`, oldest first. */
  completedTasks: z.array(z.string().min(3).max(120)).max(MEMORY_LIMITS.completedTasks),
  /** Core knowledge: survives wipes. */
  knowledge: z
    .record(z.string().regex(KNOWLEDGE_KEY_PATTERN, 'not a knowledge key'), TextSchema)
    .refine((k) => Object.keys(k).length <= MEMORY_LIMITS.knowledgeKeys, {
      message: `at most ${MEMORY_LIMITS.knowledgeKeys} knowledge keys`,
    }),
  /** Oldest first; a leading entry may summarise observations dropped to stay bounded. */
  observations: z.array(TextSchema).max(MEMORY_LIMITS.observations),
  reasoningHistory: z.array(ReasoningEntrySchema).max(MEMORY_LIMITS.reasoningHistory),
  blockedOn: TextSchema.nullable(),
  updatedAt: IsoTimeSchema,
  wipes: z.number().int().min(0),
  /** Number of writes so far; a write succeeds only against the version it was based on. */
  version: z.number().int().min(0),
});
export type AgentMemory = z.infer<typeof AgentMemorySchema>;

export const CheckpointSchema = z.object({
  name: z.string().regex(CHECKPOINT_NAME_PATTERN, 'not a checkpoint name'),
  at: IsoTimeSchema,
  memory: AgentMemorySchema,
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

export const MemoryExportSchema = z
  .object({
    version: z.literal(1),
    exportedAt: IsoTimeSchema,
    agents: z.array(
      z.object({
        agentId: z.string().regex(AGENT_ID_PATTERN, 'not an agent id'),
        memory: AgentMemorySchema.nullable(),
        checkpoints: z.array(CheckpointSchema).max(MEMORY_LIMITS.checkpoints),
      }),
    ),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.agents.forEach((agent, i) => {
      if (seen.has(agent.agentId)) {
        ctx.addIssue({ code: 'custom', path: ['agents', i, 'agentId'], message: `agent ${agent.agentId} appears twice` });
      }
      seen.add(agent.agentId);
      if (agent.memory && agent.memory.agentId !== agent.agentId) {
        ctx.addIssue({ code: 'custom', path: ['agents', i, 'memory', 'agentId'], message: `must be ${agent.agentId}` });
      }
      const names = new Set<string>();
      agent.checkpoints.forEach((cp, j) => {
        if (names.has(cp.name)) {
          ctx.addIssue({ code: 'custom', path: ['agents', i, 'checkpoints', j, 'name'], message: `checkpoint ${cp.name} appears twice` });
        }
        names.add(cp.name);
        if (cp.memory.agentId !== agent.agentId) {
          ctx.addIssue({ code: 'custom', path: ['agents', i, 'checkpoints', j, 'memory', 'agentId'], message: `must be ${agent.agentId}` });
        }
      });
    });
  });
export type MemoryExport = z.infer<typeof MemoryExportSchema>;

export interface ImportResult {
  /** Memories written. */
  memories: number;
  /** Memories left alone because the agent already had one (merge mode). */
  memoriesSkipped: number;
  /** Checkpoints written. */
  checkpoints: number;
}

export class MemoryConflictError extends CodegodError {
  constructor(agentId: string, detail: string) {
    super('MEMORY_CONFLICT', `memory of agent ${agentId} changed concurrently: ${detail}`);
  }
}

export class MemoryImportError extends CodegodError {
  constructor(readonly problems: string[]) {
    const shown = problems.slice(0, 20).join('; ');
    const more = problems.length > 20 ? `; and ${problems.length - 20} more` : '';
    super('MEMORY_INVALID', `invalid memory export: ${shown}${more}`, { exitCode: 2 });
  }
}

function invalid(message: string): CodegodError {
  return new CodegodError('MEMORY_INVALID', message, { exitCode: 2 });
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : 'document'}: ${i.message}`);
}

function checkAgentId(agentId: string): void {
  if (!AGENT_ID_PATTERN.test(agentId)) throw invalid(`'${agentId.slice(0, 80)}' is not a valid agent id`);
}

// ---------------------------------------------------------------------------------------------
// Pure operations on the in-memory value. None of them stamps `updatedAt` or `version`: the
// store does that when it writes, so these stay deterministic.

/**
 * `value` cut to at most `max` characters, ending with a note saying how much was cut, so a
 * reader (or the LLM) knows the text is incomplete.
 */
export function clipText(value: string, max: number = MEMORY_LIMITS.textMaxChars): string {
  if (value.length <= max) return value;
  const note = (n: number) => ` … [${n} more characters clipped]`;
  let keep = Math.max(0, max - note(value.length).length);
  // Never split a surrogate pair: half of one is not valid text.
  const last = value.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return value.slice(0, keep) + note(value.length - keep);
}

export function emptyMemory(agentId: string, role: MemoryRole, now: Date = new Date()): AgentMemory {
  return {
    agentId,
    role,
    currentTask: null,
    completedTasks: [],
    knowledge: {},
    observations: [],
    reasoningHistory: [],
    blockedOn: null,
    updatedAt: now.toISOString(),
    wipes: 0,
    version: 0,
  };
}

/** Clears current task, completed tasks, observations, reasoning history and blockedOn; keeps role and core knowledge. */
export function wipeMemory(m: AgentMemory): AgentMemory {
  return {
    ...m,
    currentTask: null,
    completedTasks: [],
    observations: [],
    reasoningHistory: [],
    blockedOn: null,
    wipes: m.wipes + 1,
  };
}

export function startTask(m: AgentMemory, task: CurrentTask): AgentMemory {
  return {
    ...m,
    currentTask: { buildId: task.buildId, taskId: task.taskId, title: clipText(task.title) },
    blockedOn: null,
  };
}

export function setBlockedOn(m: AgentMemory, reason: string | null): AgentMemory {
  return { ...m, blockedOn: reason === null ? null : clipText(reason) };
}

/**
 * Records `buildId/taskId` as completed (once; completing it again moves it to the end) and,
 * when it was the current task, clears the current task and what it was blocked on. The oldest
 * entries beyond MEMORY_LIMITS.completedTasks are dropped.
 */
export function completeTask(m: AgentMemory, task: { buildId: string; taskId: string }): AgentMemory {
  const ref = `${task.buildId}/${task.taskId}`;
  const completed = [...m.completedTasks.filter((r) => r !== ref), ref].slice(-MEMORY_LIMITS.completedTasks);
  const wasCurrent = m.currentTask?.buildId === task.buildId && m.currentTask.taskId === task.taskId;
  return {
    ...m,
    completedTasks: completed,
    ...(wasCurrent ? { currentTask: null, blockedOn: null } : {}),
  };
}

// The summary takes one of the slots, so a trim always drops at least two observations.
const DROPPED_SUMMARY = /^\((\d+) earlier observations dropped: ([\s\S]*)\)$/;

function droppedSummary(count: number, excerpts: string): string {
  const max = MEMORY_LIMITS.droppedExcerptChars;
  const kept = excerpts.length > max ? `…${excerpts.slice(-(max - 1))}` : excerpts;
  return `(${count} earlier observations dropped: ${kept})`;
}

function firstWords(text: string): string {
  const words = text.trim().split(/\s+/).slice(0, 6).join(' ');
  return words.length > 60 ? `${words.slice(0, 59)}…` : words;
}

/**
 * Appends an observation (clipped to MEMORY_LIMITS.textMaxChars). Beyond
 * MEMORY_LIMITS.observations entries, the oldest are folded into one leading summary entry that
 * counts them and keeps their first words, so the agent knows something was there.
 */
export function addObservation(m: AgentMemory, observation: string): AgentMemory {
  const limit = MEMORY_LIMITS.observations;
  const all = [...m.observations, clipText(observation)];
  if (all.length <= limit) return { ...m, observations: all };
  const previous = DROPPED_SUMMARY.exec(all[0] ?? '');
  const rest = previous ? all.slice(1) : all;
  const dropped = rest.slice(0, rest.length - (limit - 1));
  const kept = rest.slice(rest.length - (limit - 1));
  const count = Number(previous?.[1] ?? 0) + dropped.length;
  const excerpts = [...(previous?.[2] ? [previous[2]] : []), ...dropped.map(firstWords)].join(' | ');
  return { ...m, observations: [droppedSummary(count, excerpts), ...kept] };
}

/** Appends one reasoning step; the oldest beyond MEMORY_LIMITS.reasoningHistory are dropped. */
export function addReasoning(
  m: AgentMemory,
  entry: { buildId: string; taskId: string; phase: ReasoningPhase; summary: string },
  at: Date = new Date(),
): AgentMemory {
  const step: ReasoningEntry = {
    buildId: entry.buildId,
    taskId: entry.taskId,
    phase: entry.phase,
    summary: clipText(entry.summary),
    at: at.toISOString(),
  };
  return { ...m, reasoningHistory: [...m.reasoningHistory, step].slice(-MEMORY_LIMITS.reasoningHistory) };
}

/**
 * Sets one entry of core knowledge (kept across wipes). Refuses a malformed key, and a new key
 * once MEMORY_LIMITS.knowledgeKeys are held: core knowledge is curated, not a log.
 */
export function setKnowledge(m: AgentMemory, key: string, value: string): AgentMemory {
  if (!KNOWLEDGE_KEY_PATTERN.test(key)) {
    throw invalid(`knowledge key '${key.slice(0, 80)}' must match ${KNOWLEDGE_KEY_PATTERN.source} (e.g. venv_path)`);
  }
  if (!(key in m.knowledge) && Object.keys(m.knowledge).length >= MEMORY_LIMITS.knowledgeKeys) {
    throw invalid(`agent ${m.agentId} already holds ${MEMORY_LIMITS.knowledgeKeys} knowledge keys; cannot add '${key}'`);
  }
  return { ...m, knowledge: { ...m.knowledge, [key]: clipText(value) } };
}

// ---------------------------------------------------------------------------------------------
// Redis store.

/** Compare-and-set of one agent's memory: 1 when written, 0 on a conflict (see the script's header). */
const MEMORY_CAS = loadLuaScript(new URL('./lua/compareAndSetMemory-2.lua', import.meta.url), z.union([z.literal(0), z.literal(1)]));

/** What an agent's memory key holds. */
type Stored =
  | { kind: 'absent' }
  | { kind: 'ok'; memory: AgentMemory }
  | { kind: 'corrupt'; sha: string };

/**
 * Retries of a read-modify-write that lost a race. Writers of one agent's memory in one process
 * are already queued (see `exclusive`), so races come only from other processes — the agent
 * and the orchestrator wiping it — and a handful of tries with jittered backoff settles them.
 */
const UPDATE_ATTEMPTS = 25;

function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
}

function byTime(a: Checkpoint, b: Checkpoint): number {
  return a.at < b.at ? -1 : a.at > b.at ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Agent memory and checkpoints in Redis (`P:agent:A:memory`, `P:agent:A:checkpoints`,
 * `P:agents:known`).
 *
 * A memory that cannot be read back (bad JSON, or JSON that breaks the schema) must not stop an
 * agent: it is logged as DATA_CORRUPT with an excerpt of the value, treated as an empty memory,
 * and overwritten by the next write (`load` writes at once). Nothing else is kept of it.
 */
export class MemoryStore {
  private readonly log: Logger;
  /** Tail of the queue of writes per agent id in this process. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    logger?: Logger,
  ) {
    this.log = (logger ?? pino({ enabled: false })).child({ component: 'memory' });
  }

  /**
   * The agent's memory; an empty one (written to Redis) when it has none or it is malformed.
   * `role` (here and in `update`) only applies to a memory being created: an agent's role is the
   * one it was created with.
   */
  async load(agentId: string, role: MemoryRole): Promise<AgentMemory> {
    checkAgentId(agentId);
    return this.put(agentId, (s) => (s.kind === 'ok' ? undefined : emptyMemory(agentId, role)));
  }

  /**
   * Writes `m`, provided the stored memory is still at `m.version` (the version it was loaded
   * at); returns what was written, one version up. A version mismatch is a real concurrent
   * change, so it is not retried here: it throws MemoryConflictError and the caller reloads, or
   * uses `update`, which does that itself.
   */
  async save(m: AgentMemory): Promise<AgentMemory> {
    const parsed = AgentMemorySchema.safeParse(m);
    if (!parsed.success) throw invalid(`cannot save memory: ${describeIssues(parsed.error).join('; ')}`);
    const next: AgentMemory = { ...parsed.data, version: parsed.data.version + 1, updatedAt: new Date().toISOString() };
    return this.exclusive(next.agentId, async () => {
      const written = await MEMORY_CAS.run(
        this.redis,
        [this.keys.agentMemory(next.agentId), this.keys.agentsKnown],
        ['version', m.version, JSON.stringify(next), next.agentId],
      );
      if (written !== 1) throw new MemoryConflictError(next.agentId, `it is no longer at version ${m.version}`);
      return next;
    });
  }

  /**
   * Read-modify-write of the agent's memory (an empty one when it has none): `fn` gets the
   * current memory and returns the new one. `fn` may run more than once when another process
   * writes at the same time, so it must be pure — the functions of this module are.
   */
  async update(agentId: string, role: MemoryRole, fn: (m: AgentMemory) => AgentMemory): Promise<AgentMemory> {
    checkAgentId(agentId);
    return this.put(agentId, (s) => {
      const next = fn(s.kind === 'ok' ? s.memory : emptyMemory(agentId, role));
      if (next.agentId !== agentId) throw invalid(`update of agent ${agentId} returned the memory of ${next.agentId}`);
      return { ...next, updatedAt: new Date().toISOString() };
    });
  }

  /**
   * Wipes the agent's memory (see `wipeMemory`); its checkpoints stay, so a wipe can be undone
   * with `restore`. Returns the wiped memory, or null when the agent has none. A malformed
   * memory has no role or knowledge left to keep: it is deleted.
   */
  async wipe(agentId: string): Promise<AgentMemory | null> {
    checkAgentId(agentId);
    return (await this.wipeWhere(agentId, () => true)).memory;
  }

  /** Wipes every known agent; returns how many memories were wiped. */
  async wipeAll(): Promise<number> {
    return this.wipeEach(() => true);
  }

  /** Wipes every known agent of `role`; returns how many memories were wiped. */
  async wipeRole(role: MemoryRole): Promise<number> {
    return this.wipeEach((m) => m.role === role);
  }

  /** Removes the agent entirely: memory, checkpoints and its entry in the known set. */
  async forget(agentId: string): Promise<void> {
    checkAgentId(agentId);
    await this.exclusive(agentId, async () => {
      // One transaction, so no reader sees checkpoints of an agent that is no longer known.
      await this.redis
        .multi()
        .del(this.keys.agentMemory(agentId), this.keys.agentCheckpoints(agentId))
        .srem(this.keys.agentsKnown, agentId)
        .exec();
    });
  }

  /** Every agent id that has memory or checkpoints, sorted. */
  async listAgents(): Promise<string[]> {
    const ids = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.sscan(this.keys.agentsKnown, cursor, 'COUNT', 500);
      cursor = next;
      for (const id of batch) ids.add(id);
    } while (cursor !== '0');
    return [...ids].sort();
  }

  /**
   * Saves a snapshot of the agent's current memory under `name` (default: now as an ISO
   * timestamp); an existing checkpoint of that name is replaced. Beyond
   * MEMORY_LIMITS.checkpoints, the oldest are deleted.
   */
  async checkpoint(agentId: string, name?: string): Promise<Checkpoint> {
    checkAgentId(agentId);
    const at = new Date().toISOString();
    const cpName = name ?? at;
    if (!CHECKPOINT_NAME_PATTERN.test(cpName)) {
      throw invalid(`checkpoint name '${cpName.slice(0, 100)}' must match ${CHECKPOINT_NAME_PATTERN.source}`);
    }
    const stored = await this.read(agentId);
    if (stored.kind === 'absent') {
      throw new CodegodError('MEMORY_NOT_FOUND', `agent ${agentId} has no memory to checkpoint`, { exitCode: 4 });
    }
    if (stored.kind === 'corrupt') {
      throw new DataCorruptError(this.keys.agentMemory(agentId), 'a malformed memory cannot be checkpointed; load it to reset it');
    }
    const cp: Checkpoint = { name: cpName, at, memory: stored.memory };
    await this.redis.hset(this.keys.agentCheckpoints(agentId), cpName, JSON.stringify(cp));
    await this.pruneCheckpoints(agentId);
    return cp;
  }

  /** The agent's checkpoints, oldest first; malformed ones are logged and left out. */
  async listCheckpoints(agentId: string): Promise<Checkpoint[]> {
    checkAgentId(agentId);
    return (await this.readCheckpoints(agentId)).valid;
  }

  /** Makes the checkpoint `name` the agent's current memory again; returns it as written. */
  async restore(agentId: string, name: string): Promise<AgentMemory> {
    checkAgentId(agentId);
    const key = this.keys.agentCheckpoints(agentId);
    const raw = await this.redis.hget(key, name);
    if (raw === null) {
      const names = (await this.redis.hkeys(key)).sort();
      const known = names.length ? `it has: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''}` : 'it has none';
      throw new CodegodError('CHECKPOINT_NOT_FOUND', `agent ${agentId} has no checkpoint '${name}' (${known})`, { exitCode: 4 });
    }
    const cp = this.parseCheckpoint(agentId, raw);
    if (cp instanceof DataCorruptError) throw cp;
    return this.put(agentId, () => ({ ...cp.memory, updatedAt: new Date().toISOString() }));
  }

  /** Deletes one checkpoint; false when there was none of that name. */
  async deleteCheckpoint(agentId: string, name: string): Promise<boolean> {
    checkAgentId(agentId);
    return (await this.redis.hdel(this.keys.agentCheckpoints(agentId), name)) === 1;
  }

  /**
   * Every known agent's memory and checkpoints, as one JSON-serialisable document. Each agent
   * is read consistently; the document as a whole is not a point-in-time snapshot of all
   * agents. Malformed values are logged and left out (a malformed memory exports as null).
   */
  async exportAll(): Promise<MemoryExport> {
    const agents: MemoryExport['agents'] = [];
    for (const agentId of await this.listAgents()) {
      const stored = await this.read(agentId);
      const { valid } = await this.readCheckpoints(agentId);
      if (stored.kind !== 'ok' && valid.length === 0) continue;
      agents.push({ agentId, memory: stored.kind === 'ok' ? stored.memory : null, checkpoints: valid });
    }
    return { version: 1, exportedAt: new Date().toISOString(), agents };
  }

  /**
   * Loads a document made by `exportAll`, validated first as a whole (MemoryImportError lists
   * every problem, and nothing is written). With `replace`, each agent in the document gets
   * exactly its memory and checkpoints from it; without, existing memories and checkpoints of
   * the same name are kept and only what is missing is added. Agents absent from the document
   * are left alone either way. Written memories continue the stored version count rather than
   * taking the document's, so a writer holding an older copy still sees a conflict.
   */
  async importAll(doc: unknown, options: { replace: boolean }): Promise<ImportResult> {
    const parsed = MemoryExportSchema.safeParse(doc);
    if (!parsed.success) throw new MemoryImportError(describeIssues(parsed.error));
    const result: ImportResult = { memories: 0, memoriesSkipped: 0, checkpoints: 0 };
    for (const agent of parsed.data.agents) {
      const memory = agent.memory;
      if (memory) {
        const { wrote } = await this.mutate(agent.agentId, (s) =>
          options.replace || s.kind !== 'ok' ? memory : undefined,
        );
        if (wrote) result.memories += 1;
        else result.memoriesSkipped += 1;
      }
      result.checkpoints += await this.importCheckpoints(agent.agentId, agent.checkpoints, options.replace);
    }
    return result;
  }

  private async importCheckpoints(agentId: string, checkpoints: Checkpoint[], replace: boolean): Promise<number> {
    const key = this.keys.agentCheckpoints(agentId);
    if (replace) {
      // One transaction, so no reader sees the agent's checkpoints half replaced.
      const tx = this.redis.multi().del(key);
      for (const cp of checkpoints) tx.hset(key, cp.name, JSON.stringify(cp));
      await tx.sadd(this.keys.agentsKnown, agentId).exec();
      return checkpoints.length;
    }
    if (checkpoints.length === 0) return 0;
    const tx = this.redis.multi();
    for (const cp of checkpoints) tx.hsetnx(key, cp.name, JSON.stringify(cp));
    const replies = (await tx.sadd(this.keys.agentsKnown, agentId).exec()) ?? [];
    await this.pruneCheckpoints(agentId);
    return replies.slice(0, checkpoints.length).filter(([, added]) => added === 1).length;
  }

  private async wipeEach(match: (m: AgentMemory) => boolean): Promise<number> {
    let wiped = 0;
    for (const agentId of await this.listAgents()) {
      if ((await this.wipeWhere(agentId, match)).wrote) wiped += 1;
    }
    return wiped;
  }

  private wipeWhere(agentId: string, match: (m: AgentMemory) => boolean): Promise<{ memory: AgentMemory | null; wrote: boolean }> {
    return this.mutate(agentId, (s) => {
      if (s.kind === 'absent') return undefined;
      if (s.kind === 'corrupt') return null;
      return match(s.memory) ? { ...wipeMemory(s.memory), updatedAt: new Date().toISOString() } : undefined;
    });
  }

  /**
   * `mutate` for writers that never delete and leave the memory alone only when one is stored,
   * so a memory always stands afterwards.
   */
  private async put(agentId: string, decide: (stored: Stored) => AgentMemory | undefined): Promise<AgentMemory> {
    return (await this.mutate(agentId, decide)).memory as AgentMemory;
  }

  /**
   * The optimistic loop under every write: read, decide, compare-and-set, retry on a lost race.
   * `decide` returns the memory to write, null to delete it, or undefined to leave it as it is.
   * Returns the memory as it stands afterwards and whether this call wrote it.
   */
  private mutate(
    agentId: string,
    decide: (stored: Stored) => AgentMemory | null | undefined,
  ): Promise<{ memory: AgentMemory | null; wrote: boolean }> {
    return this.exclusive(agentId, async () => {
      for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt += 1) {
        const stored = await this.read(agentId);
        const target = decide(stored);
        if (target === undefined) return { memory: stored.kind === 'ok' ? stored.memory : null, wrote: false };
        let next: AgentMemory | null = null;
        if (target) {
          const candidate = { ...target, version: (stored.kind === 'ok' ? stored.memory.version : 0) + 1 };
          const parsed = AgentMemorySchema.safeParse(candidate);
          if (!parsed.success) throw invalid(`memory of agent ${agentId} would be invalid: ${describeIssues(parsed.error).join('; ')}`);
          next = parsed.data;
        }
        const expected = stored.kind === 'corrupt' ? ['sha', stored.sha] : ['version', stored.kind === 'ok' ? stored.memory.version : 0];
        const written = await MEMORY_CAS.run(
          this.redis,
          [this.keys.agentMemory(agentId), this.keys.agentsKnown],
          [...expected, next ? JSON.stringify(next) : '', agentId],
        );
        if (written === 1) return { memory: next, wrote: true };
        await backoff(attempt);
      }
      throw new MemoryConflictError(agentId, `gave up after ${UPDATE_ATTEMPTS} attempts`);
    });
  }

  private async read(agentId: string): Promise<Stored> {
    const key = this.keys.agentMemory(agentId);
    // Bytes, not a string: the hash the script compares must be of exactly what Redis holds,
    // even when a malformed value is not valid UTF-8.
    const raw = await this.redis.getBuffer(key);
    if (raw === null) return { kind: 'absent' };
    const text = raw.toString('utf8');
    let detail: string;
    try {
      const parsed = AgentMemorySchema.safeParse(JSON.parse(text));
      if (parsed.success && parsed.data.agentId === agentId) return { kind: 'ok', memory: parsed.data };
      detail = parsed.success ? `holds the memory of ${parsed.data.agentId}` : describeIssues(parsed.error).slice(0, 5).join('; ');
    } catch (err) {
      detail = `not JSON (${err instanceof Error ? err.message : String(err)})`;
    }
    const err = new DataCorruptError(key, detail);
    this.log.error({ err, agentId, excerpt: text.slice(0, 200) }, 'malformed agent memory; starting from an empty one');
    return { kind: 'corrupt', sha: createHash('sha1').update(raw).digest('hex') };
  }

  private parseCheckpoint(agentId: string, raw: string): Checkpoint | DataCorruptError {
    const where = this.keys.agentCheckpoints(agentId);
    try {
      const parsed = CheckpointSchema.safeParse(JSON.parse(raw));
      if (!parsed.success) return new DataCorruptError(where, describeIssues(parsed.error).slice(0, 5).join('; '));
      if (parsed.data.memory.agentId !== agentId) return new DataCorruptError(where, `holds a memory of ${parsed.data.memory.agentId}`);
      return parsed.data;
    } catch (err) {
      return new DataCorruptError(where, `not JSON (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  private async readCheckpoints(agentId: string): Promise<{ valid: Checkpoint[]; corrupt: string[] }> {
    const all = await this.redis.hgetall(this.keys.agentCheckpoints(agentId));
    const valid: Checkpoint[] = [];
    const corrupt: string[] = [];
    for (const [name, raw] of Object.entries(all)) {
      const cp = this.parseCheckpoint(agentId, raw);
      if (cp instanceof DataCorruptError) {
        this.log.error({ err: cp, agentId, checkpoint: name }, 'malformed checkpoint; ignoring it');
        corrupt.push(name);
      } else {
        valid.push(cp);
      }
    }
    return { valid: valid.sort(byTime), corrupt };
  }

  /** Deletes malformed checkpoints first, then the oldest, until at most the limit remain. */
  private async pruneCheckpoints(agentId: string): Promise<void> {
    const key = this.keys.agentCheckpoints(agentId);
    const excess = (await this.redis.hlen(key)) - MEMORY_LIMITS.checkpoints;
    if (excess <= 0) return;
    const { valid, corrupt } = await this.readCheckpoints(agentId);
    const victims = [...corrupt, ...valid.map((cp) => cp.name)].slice(0, excess);
    if (victims.length) await this.redis.hdel(key, ...victims);
  }

  /**
   * Runs `fn` after every earlier write of the same agent in this process has settled. The
   * compare-and-set alone is correct, but concurrent writers of one agent in one process (the
   * loop recording an observation while a heartbeat marks it blocked) would mostly lose races
   * against each other and retry; queueing them here leaves retries for other processes only.
   */
  private exclusive<T>(agentId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(agentId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(agentId, tail);
    void tail.then(() => {
      if (this.queues.get(agentId) === tail) this.queues.delete(agentId);
    });
    return run;
  }
}
