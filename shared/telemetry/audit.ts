import type { Redis } from 'ioredis';
import { z } from 'zod';
import { DataCorruptError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';

/**
 * The audit trail of a build: every command an agent ran or was refused, and every file it
 * wrote or was refused, appended to the build's stream `keys.audit(buildId)`. Stream fields
 * are flat strings so `XRANGE` reads well by hand: text fields as they are, numbers, booleans
 * and lists as JSON, a missing signal as ''.
 *
 * A command is recorded twice: `command.started` before it is spawned and `command` when it
 * has ended, both carrying the same `run` id. A start with no end is a command that never
 * ended — its worker died while it ran (see `unfinishedCommands`).
 */

/** Approximate number of entries kept per build (XADD MAXLEN ~). */
export const AUDIT_MAXLEN = 10_000;

const count = z.number().int().nonnegative();

const common = {
  /** Milliseconds since the epoch; filled in when the entry is recorded. */
  at: count.default(() => Date.now()),
  taskId: z.string().min(1).optional(),
  agentId: z.string().min(1).optional(),
};

const commandFields = {
  command: z.string(),
  args: z.array(z.string()),
  shell: z.boolean(),
  /** Working directory, relative to the workspace. */
  cwd: z.string(),
};

export const AuditEntrySchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('command'),
    ...common,
    ...commandFields,
    exitCode: z.number().int().nullable(),
    signal: z.string().min(1).nullable(),
    timedOut: z.boolean(),
    cancelled: z.boolean(),
    durationMs: count,
    /** Bytes the command wrote, before clipping. */
    stdoutBytes: count,
    stderrBytes: count,
    truncated: z.boolean(),
    /** Environment variables the caller passed that were withheld (secrets). */
    droppedEnv: z.array(z.string()),
    /** The `run` of its `command.started` entry. */
    run: z.string().min(1).optional(),
  }),
  z.object({ type: z.literal('command.started'), ...common, ...commandFields, run: z.string().min(1) }),
  z.object({ type: z.literal('command.refused'), ...common, ...commandFields, reason: z.string() }),
  z.object({ type: z.literal('file.write'), ...common, path: z.string(), bytes: count }),
  z.object({ type: z.literal('file.refused'), ...common, path: z.string(), reason: z.string() }),
]);

export type AuditEntry = z.infer<typeof AuditEntrySchema>;
/** What callers hand to a sink; `at` is optional there. */
export type AuditEntryInput = z.input<typeof AuditEntrySchema>;

export interface AuditRecord {
  /** Stream entry id, usable as `fromId` to read on after it. */
  id: string;
  entry: AuditEntry;
}

export interface AuditSink {
  record(entry: AuditEntryInput): Promise<void>;
}

const TEXT_FIELDS = new Set(['type', 'taskId', 'agentId', 'command', 'cwd', 'path', 'reason', 'run']);

export function encodeAuditEntry(entry: AuditEntry): string[] {
  const fields: string[] = [];
  for (const [name, value] of Object.entries(entry)) {
    if (value === undefined) continue;
    if (name === 'signal') fields.push(name, value === null ? '' : String(value));
    else fields.push(name, TEXT_FIELDS.has(name) ? String(value) : JSON.stringify(value));
  }
  return fields;
}

/** Decodes stream fields back into an entry, or explains what is wrong with them. */
export function decodeAuditEntry(fields: readonly string[]): { entry: AuditEntry } | { problem: string } {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name === 'signal') raw[name] = value === '' ? null : value;
    else if (TEXT_FIELDS.has(name)) raw[name] = value;
    else {
      try {
        raw[name] = JSON.parse(value);
      } catch {
        return { problem: `field ${name} is not JSON` };
      }
    }
  }
  const parsed = AuditEntrySchema.safeParse(raw);
  if (!parsed.success) {
    return { problem: parsed.error.issues.map((i) => `${i.path.join('.') || 'entry'}: ${i.message}`).join('; ') };
  }
  return { entry: parsed.data };
}

export class RedisAuditSink implements AuditSink {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly buildId: string,
    private readonly maxLen: number = AUDIT_MAXLEN,
  ) {}

  async record(entry: AuditEntryInput): Promise<void> {
    const fields = encodeAuditEntry(AuditEntrySchema.parse(entry));
    await this.redis.xadd(this.keys.audit(this.buildId), 'MAXLEN', '~', String(this.maxLen), '*', ...fields);
  }
}

/** Entries of a build's audit stream, oldest first, after `fromId` (exclusive) when given. */
export async function readAudit(
  redis: Redis,
  keys: Keys,
  buildId: string,
  fromId?: string,
  count = 1_000,
): Promise<AuditRecord[]> {
  const key = keys.audit(buildId);
  const rows = await redis.xrange(key, fromId === undefined ? '-' : `(${fromId}`, '+', 'COUNT', count);
  return rows.map(([id, fields]) => {
    const decoded = decodeAuditEntry(fields);
    if ('problem' in decoded) throw new DataCorruptError(`${key} ${id}`, decoded.problem);
    return { id, entry: decoded.entry };
  });
}

/**
 * The commands of `records` that started and never ended: their `command.started` entry has
 * no `command` entry with the same run (the process running them died). Read the whole
 * stream (or everything since a point before the starts) for a true answer.
 */
export function unfinishedCommands(records: readonly AuditRecord[]): AuditRecord[] {
  const ended = new Set<string>();
  for (const r of records) if (r.entry.type === 'command' && r.entry.run !== undefined) ended.add(r.entry.run);
  return records.filter((r) => r.entry.type === 'command.started' && !ended.has(r.entry.run));
}
