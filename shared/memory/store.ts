import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { CodegodError, DataCorruptError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import type { Logger } from '../logger.js';
import { z } from 'zod';
import { loadLuaScript } from '../redis/lua-loader.js';
import { emptyMemory, wipeMemory } from './reducers.js';
import {
  AgentMemorySchema,
  CHECKPOINT_NAME_PATTERN,
  CheckpointSchema,
  MEMORY_LIMITS,
  MemoryConflictError,
  checkAgentId,
  describeIssues,
  invalid,
  type AgentMemory,
  type Checkpoint,
  type MemoryRole,
} from './schema.js';

/** Compare-and-set of one agent's memory: 1 when written, 0 on a conflict (see the script's header). */
const MEMORY_CAS = loadLuaScript(new URL('./lua/compareAndSetMemory-2.lua', import.meta.url), z.union([z.literal(0), z.literal(1)]));

/** What an agent's memory key holds. */
type Stored =
  | { kind: 'absent' }
  | { kind: 'ok'; memory: AgentMemory }
  | { kind: 'corrupt'; sha: string; error: DataCorruptError };

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
 * A memory that cannot be read back (bad JSON, or JSON that breaks the schema) is logged as
 * DATA_CORRUPT with an excerpt of the value. Writers treat it as an empty memory and overwrite
 * it (`load` writes at once; a wipe deletes it); `get` throws, for readers that must not act
 * on it.
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
   * with `restore`. Returns the wiped memory and whether anything was written: a malformed
   * memory has no role or knowledge left to keep, so it is deleted (`memory` null, `wrote`
   * true); an agent without memory is left alone (`memory` null, `wrote` false).
   */
  async wipe(agentId: string): Promise<{ memory: AgentMemory | null; wrote: boolean }> {
    checkAgentId(agentId);
    return this.wipeWhere(agentId, () => true);
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
   * The agent's memory as stored, or null when it has none. A malformed memory is logged and
   * thrown as DataCorruptError: a reader that must act on the memory (an agent building its
   * prompts) stops with a clear reason rather than act as if the agent knew nothing.
   */
  async get(agentId: string): Promise<AgentMemory | null> {
    checkAgentId(agentId);
    const stored = await this.read(agentId);
    if (stored.kind === 'corrupt') throw stored.error;
    return stored.kind === 'ok' ? stored.memory : null;
  }

  /**
   * Writes `memory` as the agent's memory (continuing the stored version count, so a writer
   * holding an older copy still sees a conflict); with `keepExisting`, only when the agent has
   * no readable memory yet. Returns whether it was written.
   */
  async putMemory(agentId: string, memory: AgentMemory, options: { keepExisting: boolean }): Promise<boolean> {
    checkAgentId(agentId);
    const { wrote } = await this.mutate(agentId, (s) => (!options.keepExisting || s.kind !== 'ok' ? memory : undefined));
    return wrote;
  }

  /**
   * Writes checkpoints of the agent: with `replace`, exactly these (the others are deleted);
   * without, only those whose name is not taken. Returns how many were written.
   */
  async putCheckpoints(agentId: string, checkpoints: Checkpoint[], options: { replace: boolean }): Promise<number> {
    checkAgentId(agentId);
    const key = this.keys.agentCheckpoints(agentId);
    if (options.replace) {
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
    return { kind: 'corrupt', sha: createHash('sha1').update(raw).digest('hex'), error: err };
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
