import { describe, expect, it } from 'vitest';
import { CompletionBatcher } from '../../shared/engine/completion-batcher.js';

const turn = () => new Promise((r) => setImmediate(r));

describe('CompletionBatcher', () => {
  it('hands over what was added in one turn together, per build, and answers each caller in order', async () => {
    const flushed: Array<[string, number[]]> = [];
    const batcher = new CompletionBatcher<number, string>(async (buildId, entries) => {
      flushed.push([buildId, entries]);
      return entries.map((n) => `${buildId}:${n * 10}`);
    });
    const answers = await Promise.all([batcher.add('b1', 1), batcher.add('b2', 2), batcher.add('b1', 3)]);
    expect(answers).toEqual(['b1:10', 'b2:20', 'b1:30']);
    expect(flushed).toEqual([
      ['b1', [1, 3]],
      ['b2', [2]],
    ]);
    // A later turn is a new batch.
    expect(await batcher.add('b1', 4)).toBe('b1:40');
    expect(flushed).toHaveLength(3);
  });

  it('fails only the batch whose flush failed', async () => {
    const batcher = new CompletionBatcher<number, number>(async (buildId, entries) => {
      if (buildId === 'bad') throw new Error('redis is down');
      return entries;
    });
    const results = await Promise.allSettled([batcher.add('bad', 1), batcher.add('good', 2), batcher.add('bad', 3)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['redis is down', 2, 'redis is down']);
  });

  it('splits a large turn into batches of at most maxBatch', async () => {
    const sizes: number[] = [];
    const batcher = new CompletionBatcher<number, number>(async (_b, entries) => {
      sizes.push(entries.length);
      await turn();
      return entries;
    }, 4);
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.add('b', i)));
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(sizes).toEqual([4, 4, 2]);
  });
});
