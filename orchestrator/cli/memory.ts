import { readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { resolve } from 'node:path';
import { CodegodError } from '../../shared/domain/errors.js';
import { MemoryRoleSchema, MEMORY_ROLES, type MemoryRole } from '../../shared/memory/schema.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { exportMemories, importMemories } from '../../shared/memory/transfer.js';
import { terminalSafeJson } from '../../shared/terminal-safe.js';
import { usage } from './args.js';
import { paint } from './colour.js';
import { withSession, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { formatAge, table } from './format.js';

export interface WipeOptions {
  agent?: string;
  role?: string;
  all?: boolean;
  yes?: boolean;
  json?: boolean;
}

type Selector = { kind: 'agent'; agentId: string } | { kind: 'role'; role: MemoryRole } | { kind: 'all' };

function selector(opts: WipeOptions): Selector {
  const given = [opts.agent !== undefined, opts.role !== undefined, opts.all === true].filter(Boolean).length;
  if (given !== 1) throw usage('wipe needs exactly one of --agent <id>, --role <role>, --all');
  if (opts.agent !== undefined) return { kind: 'agent', agentId: opts.agent };
  if (opts.role !== undefined) {
    const role = MemoryRoleSchema.safeParse(opts.role);
    if (!role.success) throw usage(`--role must be one of ${MEMORY_ROLES.join(', ')} (got '${opts.role}')`);
    return { kind: 'role', role: role.data };
  }
  return { kind: 'all' };
}

function describe(s: Selector): string {
  if (s.kind === 'agent') return `the memory of agent ${s.agentId}`;
  if (s.kind === 'role') return `the memory of every ${s.role} agent`;
  return 'the memory of every agent';
}

/** Asks on the terminal; anything but y/yes is a no. */
async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  const rl = createInterface({ input: ctx.io.stdin, terminal: false });
  try {
    ctx.io.stderr.write(`${paint(question)} [y/N] `);
    const answer = await new Promise<string>((done) => {
      rl.once('line', done);
      rl.once('close', () => done(''));
    });
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

/**
 * `codegod wipe`: clears current task, completed tasks, observations and reasoning history,
 * keeping role and core knowledge (and checkpoints, so `memory restore` undoes it).
 */
export async function wipeCommand(ctx: CliContext, opts: WipeOptions): Promise<number> {
  const target = selector(opts);
  if (!opts.yes) {
    if (ctx.io.stdin.isTTY !== true) throw usage(`refusing to wipe ${describe(target)} without --yes (stdin is not a terminal to confirm on)`);
    if (!(await confirm(ctx, `wipe ${describe(target)}?`))) {
      ctx.err('codegod: nothing wiped');
      return EXIT.USAGE;
    }
  }
  return withSession(ctx, async (session) => {
    const store = new MemoryStore(session.redis, session.keys, session.logger);
    let wiped: number;
    let malformed = false;
    if (target.kind === 'agent') {
      const { memory, wrote } = await store.wipe(target.agentId);
      if (!wrote) throw new CodegodError('MEMORY_NOT_FOUND', `agent ${target.agentId} has no memory to wipe`, { exitCode: EXIT.NOT_FOUND });
      malformed = memory === null;
      wiped = 1;
    } else wiped = target.kind === 'role' ? await store.wipeRole(target.role) : await store.wipeAll();
    if (opts.json) ctx.json({ wiped });
    else if (malformed) ctx.out(`wiped ${describe(target)}: it was malformed and is deleted (checkpoints kept)`);
    else ctx.out(`wiped ${describe(target)}: ${wiped} memor${wiped === 1 ? 'y' : 'ies'} (role and core knowledge kept; checkpoints kept)`);
    return EXIT.OK;
  });
}

export async function checkpointCommand(ctx: CliContext, agentId: string, name: string | undefined, opts: { json?: boolean }): Promise<number> {
  return withSession(ctx, async (session) => {
    const cp = await new MemoryStore(session.redis, session.keys, session.logger).checkpoint(agentId, name);
    if (opts.json) ctx.json({ agentId, name: cp.name, at: cp.at });
    else ctx.out(`checkpoint '${cp.name}' of ${agentId} saved; bring it back with codegod memory restore ${agentId} ${cp.name}`);
    return EXIT.OK;
  });
}

/** `memory list`: every agent with memory; `memory list <agent>`: that agent's checkpoints. */
export async function listCommand(ctx: CliContext, agentId: string | undefined, opts: { json?: boolean }): Promise<number> {
  return withSession(ctx, async (session) => {
    const store = new MemoryStore(session.redis, session.keys, session.logger);
    const now = Date.now();
    if (agentId !== undefined) {
      if (!(await store.listAgents()).includes(agentId)) {
        throw new CodegodError('MEMORY_NOT_FOUND', `agent ${agentId} has no memory or checkpoints`, { exitCode: EXIT.NOT_FOUND });
      }
      const checkpoints = await store.listCheckpoints(agentId);
      if (opts.json) {
        ctx.json({ agentId, checkpoints: checkpoints.map((c) => ({ name: c.name, at: c.at, completedTasks: c.memory.completedTasks.length, knowledge: Object.keys(c.memory.knowledge).length })) });
        return EXIT.OK;
      }
      if (checkpoints.length === 0) ctx.out(`agent ${agentId} has no checkpoints: codegod memory checkpoint ${agentId} [name]`);
      else {
        const rows = checkpoints.map((c) => [c.name, formatAge(Date.parse(c.at), now), String(c.memory.completedTasks.length), String(Object.keys(c.memory.knowledge).length)]);
        ctx.out(...table(['CHECKPOINT', 'SAVED', 'COMPLETED', 'KNOWLEDGE'], rows));
      }
      return EXIT.OK;
    }
    const doc = await exportMemories(store);
    if (opts.json) {
      ctx.json({
        agents: doc.agents.map((a) => ({
          agentId: a.agentId,
          role: a.memory?.role ?? null,
          currentTask: a.memory?.currentTask ?? null,
          completedTasks: a.memory?.completedTasks.length ?? 0,
          knowledge: a.memory ? Object.keys(a.memory.knowledge).length : 0,
          observations: a.memory?.observations.length ?? 0,
          wipes: a.memory?.wipes ?? 0,
          updatedAt: a.memory?.updatedAt ?? null,
          checkpoints: a.checkpoints.map((c) => c.name),
        })),
      });
      return EXIT.OK;
    }
    if (doc.agents.length === 0) {
      ctx.out('no agent has memory yet');
      return EXIT.OK;
    }
    const rows = doc.agents.map((a) => {
      const m = a.memory;
      return [
        a.agentId,
        m?.role ?? '-',
        m?.currentTask ? `${m.currentTask.buildId}/${m.currentTask.taskId}` : '-',
        String(m?.completedTasks.length ?? 0),
        String(m ? Object.keys(m.knowledge).length : 0),
        String(m?.wipes ?? 0),
        String(a.checkpoints.length),
        m ? formatAge(Date.parse(m.updatedAt), now) : 'unreadable',
      ];
    });
    ctx.out(...table(['AGENT', 'ROLE', 'TASK', 'COMPLETED', 'KNOWLEDGE', 'WIPES', 'CHECKPOINTS', 'UPDATED'], rows));
    return EXIT.OK;
  });
}

export async function restoreCommand(ctx: CliContext, agentId: string, name: string, opts: { json?: boolean }): Promise<number> {
  return withSession(ctx, async (session) => {
    const memory = await new MemoryStore(session.redis, session.keys, session.logger).restore(agentId, name);
    if (opts.json) ctx.json({ agentId, restored: name, version: memory.version });
    else ctx.out(`memory of ${agentId} restored from checkpoint '${name}'`);
    return EXIT.OK;
  });
}

function fileError(action: 'read' | 'write', file: string, err: unknown): CodegodError {
  const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
  return new CodegodError('USAGE', `cannot ${action} ${file} (${code})`, { exitCode: EXIT.USAGE, cause: err });
}

/** `memory export <file>`: every agent's memory and checkpoints as one JSON document (`-` for stdout). */
export async function exportCommand(ctx: CliContext, file: string): Promise<number> {
  return withSession(ctx, async (session) => {
    const doc = await exportMemories(new MemoryStore(session.redis, session.keys, session.logger));
    const text = `${JSON.stringify(doc, null, 2)}\n`;
    if (file === '-') {
      // The same document, with nothing in it a terminal would act on.
      ctx.io.stdout.write(terminalSafeJson(text));
      return EXIT.OK;
    }
    // Memories can hold what agents learned about a project: readable by the owner only.
    await writeFile(resolve(ctx.io.cwd, file), text, { mode: 0o600 }).catch((err: unknown) => {
      throw fileError('write', file, err);
    });
    ctx.out(`exported ${doc.agents.length} agent(s) to ${file}`);
    return EXIT.OK;
  });
}

/** `memory import <file>`: adds what is missing, or with `--replace` makes each listed agent exactly as in the file. */
export async function importCommand(ctx: CliContext, file: string, opts: { replace?: boolean; json?: boolean }): Promise<number> {
  const text = await readFile(resolve(ctx.io.cwd, file), 'utf8').catch((err: unknown) => {
    throw fileError('read', file, err);
  });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CodegodError('MEMORY_INVALID', `${file} is not JSON (${err instanceof Error ? err.message : String(err)})`, { exitCode: EXIT.USAGE });
  }
  return withSession(ctx, async (session) => {
    const result = await importMemories(new MemoryStore(session.redis, session.keys, session.logger), doc, { replace: opts.replace === true });
    if (opts.json) ctx.json(result);
    else {
      const skipped = result.memoriesSkipped ? `, ${result.memoriesSkipped} kept as they were (use --replace to overwrite)` : '';
      ctx.out(`imported ${result.memories} memor${result.memories === 1 ? 'y' : 'ies'} and ${result.checkpoints} checkpoint(s) from ${file}${skipped}`);
    }
    return EXIT.OK;
  });
}
