import { rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { BUILD_ID_PATTERN, TERMINAL_BUILD_STATES } from '../domain/build.js';
import { CodegodError, errorMessage } from '../domain/errors.js';
import { ROLES, RoleSchema } from '../domain/roles.js';
import type { Logger } from '../logger.js';
import { listAgents } from '../telemetry/agent-status.js';
import { Periodic } from '../periodic.js';
import { GOALS_QUEUE, taskJobId } from './queues.js';
import type { Scheduler } from './scheduler.js';

/**
 * Retention: ended builds are removed completely — every key under the build's hash tag
 * (record, task records, DAG states, event, audit and LLM streams, loop checkpoints, team
 * knowledge), its entries in the build indexes and its BullMQ jobs (through BullMQ's
 * `Queue.remove`) — and, when asked, its workspace. Builds that have not ended (planning,
 * running, or reopened by a retry while being pruned) are never touched: each build's keys
 * are deleted in a transaction that aborts if its record changed since it was read.
 *
 * `codegod prune` runs it by hand; the orchestrator applies CODEGOD_RETENTION with `start`,
 * and drops agents whose heartbeat is older than CODEGOD_AGENT_EXPIRY_MS from agents:status.
 * Any number of orchestrators may do so at once: every step is idempotent.
 */
export interface SelectOptions {
  /** Only builds that ended at least this long ago. */
  olderThanMs?: number;
  /** Keep the `keep` most recently ended builds, whatever their age. */
  keep?: number;
  now?: number;
}

export interface EndedBuild {
  buildId: string;
  state: string;
  endedAt: number;
  goal: string;
}

export interface BuildFootprint {
  keys: number;
  /** What Redis reports for those keys (MEMORY USAGE), BullMQ jobs not included. */
  bytes: number;
}

export interface PrunedBuild extends BuildFootprint {
  buildId: string;
  /** BullMQ jobs removed (the goal job and every generation of every task's job). */
  jobs: number;
  /** Whether its workspace directory was removed (only when asked). */
  workspaceRemoved: boolean;
}

export interface PruneResult {
  pruned: PrunedBuild[];
  /** Builds selected that were left alone: reopened or changed while being pruned. */
  skipped: Array<{ buildId: string; reason: string }>;
}

const SCAN_COUNT = 1_000;
const DEL_CHUNK = 500;

export class Retention {
  private periodic: Periodic | undefined;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  private get keys() {
    return this.scheduler.keys;
  }

  /** Ended builds the options select, oldest first. */
  async select(opts: SelectOptions = {}): Promise<EndedBuild[]> {
    const now = opts.now ?? Date.now();
    const ids = await this.redis.zrange(this.keys.builds, 0, -1);
    const active = new Set(await this.redis.smembers(this.keys.activeBuilds));
    const ended: EndedBuild[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const batch = ids.slice(i, i + 500).filter((id) => !active.has(id));
      const pipe = this.redis.pipeline();
      for (const id of batch) pipe.hmget(this.keys.build(id), 'state', 'finishedAt', 'createdAt', 'goal');
      const rows = (await pipe.exec()) ?? [];
      batch.forEach((buildId, j) => {
        const [state, finishedAt, createdAt, goal] = (rows[j]?.[1] ?? []) as Array<string | null>;
        if (!state || !TERMINAL_BUILD_STATES.has(state)) return;
        ended.push({ buildId, state, endedAt: Number(finishedAt ?? createdAt ?? 0), goal: goal ?? '' });
      });
    }
    ended.sort((a, b) => b.endedAt - a.endedAt);
    const kept = ended.slice(opts.keep ?? 0);
    const olderThan = opts.olderThanMs;
    return kept.filter((b) => olderThan === undefined || now - b.endedAt >= olderThan).reverse();
  }

  /** Every key of each build (its hash tag), found in one SCAN pass. */
  async buildKeys(buildIds: readonly string[]): Promise<Map<string, string[]>> {
    const wanted = new Set(buildIds);
    const out = new Map<string, string[]>(buildIds.map((id) => [id, []]));
    const head = `${this.keys.prefix}:build:{`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${head}*`, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const key of keys) {
        const id = key.slice(head.length, key.indexOf('}', head.length));
        if (wanted.has(id)) out.get(id)!.push(key);
      }
    } while (cursor !== '0');
    return out;
  }

  /** What each build holds in Redis: its keys and their bytes. */
  async footprint(buildIds: readonly string[]): Promise<Map<string, BuildFootprint>> {
    const out = new Map<string, BuildFootprint>();
    for (const [id, keys] of await this.buildKeys(buildIds)) out.set(id, await this.footprintOf(keys));
    return out;
  }

  /**
   * Removes the builds given (from `select`), and their workspaces under `workspaceRoot`
   * when one is given. A build that is no longer ended when its turn comes is skipped.
   */
  async prune(builds: readonly EndedBuild[], opts: { workspaceRoot?: string } = {}): Promise<PruneResult> {
    const result: PruneResult = { pruned: [], skipped: [] };
    if (builds.length === 0) return result;
    const keysByBuild = await this.buildKeys(builds.map((b) => b.buildId));
    // WATCH needs a connection no one else sends a transaction on meanwhile.
    const tx = this.redis.duplicate();
    tx.on('error', () => undefined);
    try {
      for (const { buildId } of builds) {
        try {
          const pruned = await this.pruneOne(tx, buildId, keysByBuild.get(buildId) ?? [], opts.workspaceRoot);
          if (typeof pruned === 'string') result.skipped.push({ buildId, reason: pruned });
          else result.pruned.push(pruned);
        } catch (err) {
          if (err instanceof CodegodError) throw err;
          result.skipped.push({ buildId, reason: errorMessage(err) });
        }
      }
    } finally {
      tx.disconnect();
    }
    if (result.pruned.length) this.logger.info({ builds: result.pruned.length, keys: result.pruned.reduce((n, b) => n + b.keys, 0) }, 'ended builds pruned');
    return result;
  }

  private async pruneOne(tx: Redis, buildId: string, keys: string[], workspaceRoot: string | undefined): Promise<PrunedBuild | string> {
    const buildKey = this.keys.build(buildId);
    const footprint = (await this.footprintOf(keys)).bytes;
    await tx.watch(buildKey);
    const [state, active] = await Promise.all([tx.hget(buildKey, 'state'), tx.sismember(this.keys.activeBuilds, buildId)]);
    if (state === null || !TERMINAL_BUILD_STATES.has(state) || active === 1) {
      await tx.unwatch();
      return state === null ? 'already gone' : `not ended (${state})`;
    }
    const jobs = await this.removeJobs(buildId);
    // The record last: should the transaction abort, the build is still whole enough to prune again.
    const ordered = [...keys.filter((k) => k !== buildKey), buildKey];
    const multi = tx.multi();
    for (let i = 0; i < ordered.length; i += DEL_CHUNK) multi.del(...ordered.slice(i, i + DEL_CHUNK));
    const done = await multi.exec();
    if (done === null) return 'changed while being pruned (retried?)';
    // The indexes live outside the build's hash tag (another Cluster slot): removed on their own.
    await this.redis.multi().zrem(this.keys.builds, buildId).srem(this.keys.activeBuilds, buildId).exec();
    const workspaceRemoved = workspaceRoot !== undefined && (await removeWorkspace(workspaceRoot, buildId));
    return { buildId, keys: keys.length, bytes: footprint, jobs, workspaceRemoved };
  }

  private async footprintOf(keys: readonly string[]): Promise<BuildFootprint> {
    const pipe = this.redis.pipeline();
    for (const key of keys) pipe.memory('USAGE', key);
    const rows = (await pipe.exec()) ?? [];
    return { keys: keys.length, bytes: rows.reduce((n, r) => n + (Number(r?.[1]) || 0), 0) };
  }

  /** The build's BullMQ jobs: its goal job and every generation of every task's job. */
  private async removeJobs(buildId: string): Promise<number> {
    const { queues } = this.scheduler;
    const ids = await this.redis.hkeys(this.keys.buildStates(buildId));
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hmget(this.keys.task(buildId, id), 'role', 'gen');
    const rows = (await pipe.exec()) ?? [];
    const removals: Array<Promise<number>> = [queues.get(GOALS_QUEUE).remove(buildId)];
    ids.forEach((taskId, i) => {
      const [role, gen] = (rows[i]?.[1] ?? []) as Array<string | null>;
      const parsed = RoleSchema.safeParse(role);
      // A task whose role is unreadable may have a job on any role's queue.
      const roles = parsed.success ? [parsed.data] : ROLES;
      for (let g = 0; g <= Math.max(0, Number(gen) || 0); g++) {
        for (const r of roles) removals.push(queues.get(r).remove(taskJobId(buildId, taskId, g)));
      }
    });
    return (await Promise.all(removals)).reduce((n, removed) => n + removed, 0);
  }

  /** Drops agents whose last heartbeat is older than `maxAgeMs` (dead or long stopped). */
  async expireAgents(maxAgeMs: number, now = Date.now()): Promise<string[]> {
    const { agents } = await listAgents(this.redis, this.keys);
    const gone = agents.filter((a) => now - a.heartbeat > maxAgeMs).map((a) => a.agentId);
    if (gone.length) {
      await this.redis.hdel(this.keys.agentsStatus, ...gone);
      this.logger.info({ agents: gone }, 'dead agents removed from agents:status');
    }
    return gone;
  }

  /** Applies the policy now, then every `intervalMs`. */
  start(policy: { retentionMs: number | null; agentExpiryMs: number; intervalMs: number }): void {
    this.periodic = new Periodic(async () => {
      try {
        if (policy.retentionMs !== null) await this.prune(await this.select({ olderThanMs: policy.retentionMs }));
        await this.expireAgents(policy.agentExpiryMs);
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, 'retention pass failed; next pass retries');
      }
    });
    this.periodic.start(policy.intervalMs);
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
  }
}

/** Removes `<root>/<buildId>`; false when there was none. */
async function removeWorkspace(root: string, buildId: string): Promise<boolean> {
  if (!BUILD_ID_PATTERN.test(buildId)) return false;
  const dir = join(resolve(root), buildId);
  const exists = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (exists) await rm(dir, { recursive: true, force: true });
  return exists;
}
