/**
 * A pass that runs now and then every `intervalMs` (the timer never holds the process open),
 * never two at once: a tick that finds the last pass still running is skipped. `stop` waits
 * for the pass in progress.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly pass: () => Promise<unknown>) {}

  /** Starts the passes; resolves when the first one has run. */
  start(intervalMs: number): Promise<unknown> {
    const tick = () => {
      if (this.running) return;
      this.running = this.pass().finally(() => {
        this.running = undefined;
      });
    };
    tick();
    const first = this.running;
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
    return first ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
