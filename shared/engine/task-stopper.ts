import { CodegodError } from '../domain/errors.js';

/**
 * Every reason a task attempt must stop (cancel, timeout, shutdown, a start check that says
 * no) in one place. The AbortSignal executors see is created only when one asks for it:
 * most no-op and fast tasks never do, and an AbortController per task is a measurable part
 * of the engine's per-task cost.
 */
export class TaskStopper {
  private controller: AbortController | undefined;
  private rejectRace: ((err: Error) => void) | undefined;
  private why: unknown;
  stopped = false;

  get reason(): unknown {
    return this.why;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.stopped) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  stop(reason: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.why = reason;
    this.controller?.abort(reason);
    this.rejectRace?.(new CodegodError('TASK_ABORTED', String(reason)));
  }

  /** Settles with `work`, or rejects as soon as the task is stopped, even if `work` ignores it. */
  race<T>(work: () => Promise<T>): Promise<T> {
    if (this.stopped) return Promise.reject(new CodegodError('TASK_ABORTED', String(this.why)));
    return new Promise<T>((resolve, reject) => {
      this.rejectRace = reject;
      work().then(resolve, reject);
    });
  }
}
