/**
 * The one way codegod bounds how long it waits for something that cannot be cancelled (a
 * Redis command, a probe, a shutdown step): the wait ends, the work is left to finish or fail
 * on its own. Built on `AbortSignal.timeout`, whose timer never keeps a process alive.
 */

/** `work`'s outcome, or a rejection with `onTimeout()` when it has not settled within `ms`. */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  const signal = AbortSignal.timeout(Math.max(0, ms));
  const late = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(onTimeout()), { once: true }));
  return Promise.race([work, late]);
}

/** Whether `work` settles within `ms` (its outcome, error included, is not awaited past that). */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = work.then(
    () => true,
    () => true,
  );
  return withTimeout(settled, ms, () => new Error('late')).catch(() => false);
}
