/**
 * Collects the task completions a process reports within one turn of its event loop and
 * hands them over together, per build: a worker running many short tasks then records them
 * with one Lua script and one round trip instead of one per task (measured with
 * `npm run bench:dag`: 17 completions per turn on average at concurrency 50). Nothing waits
 * on a timer: the batch is flushed in the same turn's check phase (setImmediate), after
 * every reply that arrived with it has been handled, so a lone completion is not delayed.
 */
export class CompletionBatcher<Entry, Outcome> {
  private pending = new Map<string, Array<Waiting<Entry, Outcome>>>();
  private scheduled = false;

  /**
   * `flush` records one build's entries and answers one outcome per entry, in order. A
   * failed flush fails every entry of that build's batch (each caller sees the error).
   */
  constructor(
    private readonly flush: (buildId: string, entries: Entry[]) => Promise<Outcome[]>,
    private readonly maxBatch = 500,
  ) {}

  add(buildId: string, entry: Entry): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let list = this.pending.get(buildId);
      if (!list) this.pending.set(buildId, (list = []));
      list.push({ entry, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  private drain(): void {
    const batches = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    for (const [buildId, list] of batches) {
      for (let i = 0; i < list.length; i += this.maxBatch) void this.settle(buildId, list.slice(i, i + this.maxBatch));
    }
  }

  private async settle(buildId: string, list: Array<Waiting<Entry, Outcome>>): Promise<void> {
    try {
      const outcomes = await this.flush(buildId, list.map((w) => w.entry));
      list.forEach((w, i) => w.resolve(outcomes[i]!));
    } catch (err) {
      for (const w of list) w.reject(err);
    }
  }
}

interface Waiting<Entry, Outcome> {
  entry: Entry;
  resolve: (outcome: Outcome) => void;
  reject: (err: unknown) => void;
}
