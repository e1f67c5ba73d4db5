import { InvalidArgumentError } from 'commander';
import { DURATION_HINT, parseDuration } from '../../shared/domain/duration.js';
import { Retention, type EndedBuild } from '../../shared/engine/retention.js';
import { withSession, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { clip, formatAge, formatBytes, formatDuration, plural, table } from './format.js';

export interface PruneOptions {
  /** Milliseconds (the option is a duration such as 7d). */
  olderThan?: number;
  keep?: number;
  workspaces?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** `--older-than 7d`: a duration, in milliseconds. */
export function durationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError(`must be ${DURATION_HINT} (got '${value}')`);
  return ms;
}

/** Ended builds are pruned this long after they ended when neither the option nor CODEGOD_RETENTION says. */
const DEFAULT_OLDER_THAN_MS = 7 * 86_400_000;

/**
 * `codegod prune`: removes ended builds completely (keys, streams, BullMQ jobs; workspaces
 * with --workspaces). Builds still planning or running are never touched. `--dry-run` shows
 * what would go and how much Redis memory each build holds.
 */
export async function pruneCommand(ctx: CliContext, opts: PruneOptions): Promise<number> {
  const olderThanMs = opts.olderThan ?? ctx.config.CODEGOD_RETENTION ?? DEFAULT_OLDER_THAN_MS;
  return withSession(ctx, async (session) => {
    const retention = new Retention(session.scheduler, session.redis, session.logger);
    const now = Date.now();
    const selected = await retention.select({ olderThanMs, ...(opts.keep !== undefined ? { keep: opts.keep } : {}), now });
    const criteria = `ended over ${formatDuration(olderThanMs)} ago${opts.keep !== undefined ? `, beyond the ${opts.keep} most recent` : ''}`;
    const row = (b: EndedBuild, keys: number, bytes: number) => [b.buildId, ctx.colour.state(b.state), `ended ${formatAge(b.endedAt, now)}`, String(keys), formatBytes(bytes), clip(b.goal, 50)];
    if (opts.dryRun) {
      const footprint = await retention.footprint(selected.map((b) => b.buildId));
      const builds = selected.map((b) => ({ ...b, ...(footprint.get(b.buildId) ?? { keys: 0, bytes: 0 }) }));
      if (opts.json) {
        ctx.json({ dryRun: true, olderThanMs, keep: opts.keep ?? 0, builds });
        return EXIT.OK;
      }
      if (builds.length === 0) ctx.out(`nothing to prune: no build ${criteria}`);
      else {
        const bytes = builds.reduce((n, b) => n + b.bytes, 0);
        ctx.out(`would prune ${plural(builds.length, 'build')} ${criteria}: ${builds.reduce((n, b) => n + b.keys, 0)} keys, ${formatBytes(bytes)} of Redis memory${opts.workspaces ? ', and their workspaces' : ''}`);
        ctx.out(...table(['BUILD', 'STATE', 'ENDED', 'KEYS', 'MEMORY', 'GOAL'], builds.map((b) => row(b, b.keys, b.bytes))).map((l) => `  ${l}`));
      }
      return EXIT.OK;
    }
    const result = await retention.prune(selected, opts.workspaces ? { workspaceRoot: session.config.CODEGOD_WORKSPACE_ROOT } : {});
    if (opts.json) {
      ctx.json({ dryRun: false, olderThanMs, keep: opts.keep ?? 0, ...result });
      return EXIT.OK;
    }
    if (result.pruned.length === 0) ctx.out(`nothing pruned: no build ${criteria}`);
    else {
      const keys = result.pruned.reduce((n, b) => n + b.keys, 0);
      const bytes = result.pruned.reduce((n, b) => n + b.bytes, 0);
      const jobs = result.pruned.reduce((n, b) => n + b.jobs, 0);
      const workspaces = result.pruned.filter((b) => b.workspaceRemoved).length;
      ctx.out(
        `pruned ${plural(result.pruned.length, 'build')} ${criteria}: ${keys} keys and ${formatBytes(bytes)} of Redis memory, ${plural(jobs, 'job')}${opts.workspaces ? `, ${plural(workspaces, 'workspace')}` : ''}`,
      );
    }
    for (const s of result.skipped) ctx.err(`codegod: left ${s.buildId} alone: ${s.reason}`);
    return EXIT.OK;
  });
}
