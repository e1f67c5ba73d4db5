import { TERMINAL_BUILD_STATES } from '../../shared/domain/build.js';
import { CodegodError } from '../../shared/domain/errors.js';
import { withSession, type CliContext } from './context.js';
import { EXIT } from './exit-codes.js';

/** A request that does not fit the build's state (cancel an ended build, retry a task that did not fail) is bad input. */
function stateError(err: unknown): unknown {
  return err instanceof CodegodError && err.code === 'BUILD_STATE' ? new CodegodError('BUILD_STATE', err.message, { exitCode: EXIT.USAGE, cause: err }) : err;
}

/** `codegod cancel <build>`. */
export async function cancelCommand(ctx: CliContext, buildId: string, opts: { json?: boolean }): Promise<number> {
  return withSession(ctx, async ({ scheduler }) => {
    const before = await scheduler.dag.getBuild(buildId);
    if (TERMINAL_BUILD_STATES.has(before.state)) {
      throw new CodegodError('BUILD_STATE', `build ${buildId} already ended (${before.state}); nothing to cancel`, { exitCode: EXIT.USAGE });
    }
    await scheduler.cancel(buildId).catch((err: unknown) => {
      throw stateError(err);
    });
    const after = await scheduler.dag.getBuild(buildId);
    if (opts.json) ctx.json({ buildId, state: after.state, cancelledTasks: after.cancelled });
    else ctx.out(`build ${buildId} cancelled (${after.cancelled} open task(s) cancelled; running ones are told to stop)`);
    return EXIT.OK;
  });
}

/** `codegod retry <build> [task]`: one failed task, or every failed task of the build. */
export async function retryCommand(ctx: CliContext, buildId: string, taskId: string | undefined, opts: { json?: boolean }): Promise<number> {
  return withSession(ctx, async ({ scheduler }) => {
    await scheduler.dag.getBuild(buildId);
    if (taskId !== undefined) await scheduler.dag.getTask(buildId, taskId);
    const retried = await scheduler.retry(buildId, taskId).catch((err: unknown) => {
      throw stateError(err);
    });
    const after = await scheduler.dag.getBuild(buildId);
    if (opts.json) ctx.json({ buildId, state: after.state, retried });
    else {
      ctx.out(`build ${buildId}: retrying ${retried.join(', ')} (build is ${after.state})`);
      ctx.out(`follow: codegod status ${buildId} --follow`);
    }
    return EXIT.OK;
  });
}
