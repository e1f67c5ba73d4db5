import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CodegodError } from '../../shared/domain/errors.js';
import { createKeys, type Keys } from '../../shared/redis/keys.js';
import { addObservation, addReasoning, completeTask, setKnowledge, startTask } from '../../shared/memory/reducers.js';
import { MEMORY_LIMITS, MemoryConflictError, type AgentMemory } from '../../shared/memory/schema.js';
import { MemoryStore } from '../../shared/memory/store.js';
import { MemoryExportSchema, MemoryImportError, exportMemories, importMemories } from '../../shared/memory/transfer.js';
import { createRedis } from '../../shared/redis/connection.js';
import { KNOWLEDGE_LIMITS, TeamKnowledge } from '../../shared/memory/team-knowledge.js';
import { testConfig } from '../helpers/config.js';
import { redisOptions } from '../../shared/options.js';

const connections: Redis[] = [];

function connect(config = testConfig()): { redis: Redis; keys: Keys } {
  const redis = createRedis(redisOptions(config), 'client');
  connections.push(redis);
  return { redis, keys: createKeys(config.CODEGOD_PREFIX) };
}

afterAll(async () => {
  await Promise.all(connections.map((r) => r.quit()));
});

async function rejection(promise: Promise<unknown>): Promise<CodegodError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CodegodError);
    return err as CodegodError;
  }
  throw new Error('expected the promise to reject');
}

/** The parts of a memory that are content, not write bookkeeping. */
function content(m: AgentMemory): Omit<AgentMemory, 'version' | 'updatedAt'> {
  const { version: _v, updatedAt: _u, ...rest } = m;
  return rest;
}

function busy(m: AgentMemory, tag: string): AgentMemory {
  let out = setKnowledge(m, 'venv_path', `/ws/${tag}/.venv`);
  out = startTask(out, { buildId: 'b1', taskId: `${tag}-2`, title: `second task of ${tag}` });
  out = completeTask(out, { buildId: 'b1', taskId: `${tag}-1` });
  out = addObservation(out, `${tag} saw flask missing`);
  return addReasoning(out, { buildId: 'b1', taskId: `${tag}-2`, phase: 'reason', summary: `${tag} needs pip install` });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MemoryStore', () => {
  let redis: Redis;
  let keys: Keys;
  let store: MemoryStore;

  beforeEach(() => {
    ({ redis, keys } = connect());
    store = new MemoryStore(redis, keys);
  });

  it('load creates an empty memory once and registers the agent', async () => {
    const first = await store.load('backend-1', 'backend');
    expect(first).toMatchObject({ agentId: 'backend-1', role: 'backend', version: 1, observations: [] });
    const again = await store.load('backend-1', 'frontend');
    expect(again).toEqual(first);
    expect(await store.listAgents()).toEqual(['backend-1']);
    expect(JSON.parse((await redis.get(keys.agentMemory('backend-1')))!)).toEqual(first);
  });

  it('update persists, counts versions and is seen by another connection', async () => {
    await store.update('b-1', 'backend', (m) => addObservation(m, 'one'));
    const after = await store.update('b-1', 'backend', (m) => addObservation(m, 'two'));
    expect(after.version).toBe(2);
    const other = new MemoryStore(connect({ ...testConfig(), CODEGOD_PREFIX: keys.prefix }).redis, keys);
    expect((await other.load('b-1', 'backend')).observations).toEqual(['one', 'two']);
  });

  it('refuses an invalid agent id and an update that breaks the schema', async () => {
    expect((await rejection(store.load('a:b', 'backend'))).code).toBe('MEMORY_INVALID');
    const err = await rejection(store.update('x', 'backend', (m) => ({ ...m, observations: ['o'.repeat(MEMORY_LIMITS.textMaxChars + 1)] })));
    expect(err.code).toBe('MEMORY_INVALID');
    expect(err.message).toMatch(/observations\.0/);
    expect(await redis.exists(keys.agentMemory('x'))).toBe(0);
  });

  it('save writes at the loaded version and refuses a stale copy', async () => {
    const loaded = await store.load('s1', 'devops');
    const saved = await store.save(addObservation(loaded, 'first'));
    expect(saved.version).toBe(loaded.version + 1);
    const err = await rejection(store.save(addObservation(loaded, 'stale')));
    expect(err).toBeInstanceOf(MemoryConflictError);
    expect(err.code).toBe('MEMORY_CONFLICT');
    expect((await store.load('s1', 'devops')).observations).toEqual(['first']);
  });

  it('concurrent updates from two connections lose no write', async () => {
    const second = new MemoryStore(connect({ ...testConfig(), CODEGOD_PREFIX: keys.prefix }).redis, keys);
    await store.load('shared', 'backend');
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? store : second).update('shared', 'backend', (m) => addObservation(m, `obs-${i}`))),
    );
    const m = await store.load('shared', 'backend');
    expect([...m.observations].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `obs-${i}`).sort());
    expect(m.version).toBe(21);
  });

  it('concurrent updates racing on one shared connection lose no write', async () => {
    // Separate stores do not queue behind each other, so only the compare-and-set protects them.
    const stores = Array.from({ length: 8 }, () => new MemoryStore(redis, keys));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => stores[i % stores.length]!.update('hot', 'testing', (m) => addObservation(m, `o${i}`))),
    );
    const m = await store.load('hot', 'testing');
    expect(m.observations).toHaveLength(24);
    expect(new Set(m.observations).size).toBe(24);
  });

  it('malformed memory in Redis does not throw: it is logged and replaced by an empty one', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logged = new MemoryStore(redis, keys, pino({ level: 'error' }, sink));

    await redis.set(keys.agentMemory('broken'), '{"agentId": "broken", "role": ');
    const m = await logged.load('broken', 'frontend');
    expect(m).toMatchObject({ agentId: 'broken', role: 'frontend', observations: [], version: 1 });
    expect(JSON.parse((await redis.get(keys.agentMemory('broken')))!)).toEqual(m);
    expect(lines.join('')).toContain('DATA_CORRUPT');

    await redis.set(keys.agentMemory('wrong-shape'), JSON.stringify({ version: 7, role: 'wizard' }));
    const updated = await logged.update('wrong-shape', 'devops', (x) => addObservation(x, 'fresh start'));
    expect(updated).toMatchObject({ role: 'devops', observations: ['fresh start'] });

    await redis.set(keys.agentMemory('bytes'), Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
    expect((await logged.load('bytes', 'testing')).role).toBe('testing');

    await redis.set(keys.agentMemory('other'), JSON.stringify({ ...m, agentId: 'someone-else' }));
    expect((await logged.load('other', 'backend')).agentId).toBe('other');
  });

  it('get returns the memory or null, and refuses a malformed one with the key and the problem', async () => {
    expect(await store.get('nobody')).toBeNull();
    const written = await store.update('reader', 'backend', (m) => addObservation(m, 'seen'));
    expect(await store.get('reader')).toEqual(written);
    await redis.set(keys.agentMemory('reader'), JSON.stringify({ ...written, observations: 'not a list' }));
    const err = await rejection(store.get('reader'));
    expect(err.code).toBe('DATA_CORRUPT');
    expect(err.message).toContain(keys.agentMemory('reader'));
    expect(err.message).toContain('observations');
    // Nothing was overwritten by reading.
    expect(JSON.parse((await redis.get(keys.agentMemory('reader')))!).observations).toBe('not a list');
  });

  it('wipe keeps role and core knowledge, clears the rest, and leaves checkpoints', async () => {
    await store.update('w1', 'backend', (m) => busy(m, 'w1'));
    await store.checkpoint('w1', 'before-wipe');
    const { memory: wiped, wrote } = await store.wipe('w1');
    expect(wrote).toBe(true);
    expect(wiped).toMatchObject({
      role: 'backend',
      knowledge: { venv_path: '/ws/w1/.venv' },
      currentTask: null,
      completedTasks: [],
      observations: [],
      reasoningHistory: [],
      blockedOn: null,
      wipes: 1,
    });
    expect(await store.load('w1', 'backend')).toEqual(wiped);
    expect((await store.listCheckpoints('w1')).map((c) => c.name)).toEqual(['before-wipe']);
    expect(await store.wipe('nobody')).toEqual({ memory: null, wrote: false });
    await redis.set(keys.agentMemory('garbled'), '{"agentId"');
    expect(await store.wipe('garbled')).toEqual({ memory: null, wrote: true });
    expect(await redis.exists(keys.agentMemory('garbled'))).toBe(0);
  });

  it('wipeRole wipes only that role; wipeAll wipes every agent, malformed ones included', async () => {
    await store.update('be', 'backend', (m) => busy(m, 'be'));
    await store.update('fe', 'frontend', (m) => busy(m, 'fe'));
    await store.update('ma', 'master', (m) => busy(m, 'ma'));
    expect(await store.wipeRole('backend')).toBe(1);
    expect((await store.load('be', 'backend')).observations).toEqual([]);
    expect((await store.load('fe', 'frontend')).observations).toHaveLength(1);

    await redis.set(keys.agentMemory('ma'), 'garbage');
    expect(await store.wipeAll()).toBe(3);
    expect((await store.load('fe', 'frontend')).observations).toEqual([]);
    expect((await store.load('fe', 'frontend')).knowledge).toEqual({ venv_path: '/ws/fe/.venv' });
    expect(await redis.exists(keys.agentMemory('ma'))).toBe(0);
  });

  it('checkpoint, mutate, restore brings the snapshot back', async () => {
    const before = await store.update('c1', 'frontend', (m) => busy(m, 'c1'));
    const cp = await store.checkpoint('c1', 'good');
    expect(cp.memory).toEqual(before);
    await store.update('c1', 'frontend', (m) => addObservation(setKnowledge(m, 'entry_point', 'app.py'), 'went wrong'));
    await store.wipe('c1');
    const restored = await store.restore('c1', 'good');
    expect(content(restored)).toEqual(content(before));
    expect(restored.version).toBeGreaterThan(before.version);
    expect(content(await store.load('c1', 'frontend'))).toEqual(content(before));
  });

  it('lists checkpoints oldest first, names by default as ISO time, deletes them', async () => {
    await store.load('c2', 'testing');
    await store.checkpoint('c2', 'zeta');
    await sleep(5);
    await store.checkpoint('c2', 'alpha');
    await sleep(5);
    const auto = await store.checkpoint('c2');
    expect(auto.name).toBe(auto.at);
    expect(Number.isNaN(Date.parse(auto.name))).toBe(false);
    expect((await store.listCheckpoints('c2')).map((c) => c.name)).toEqual(['zeta', 'alpha', auto.name]);
    expect(await store.deleteCheckpoint('c2', 'alpha')).toBe(true);
    expect(await store.deleteCheckpoint('c2', 'alpha')).toBe(false);
    expect((await store.listCheckpoints('c2')).map((c) => c.name)).toEqual(['zeta', auto.name]);
  });

  it('restore of an unknown checkpoint names the ones there are', async () => {
    await store.load('c3', 'devops');
    await store.checkpoint('c3', 'one');
    const err = await rejection(store.restore('c3', 'two'));
    expect(err.code).toBe('CHECKPOINT_NOT_FOUND');
    expect(err.message).toBe("agent c3 has no checkpoint 'two' (it has: one)");
    expect((await rejection(store.checkpoint('nobody'))).code).toBe('MEMORY_NOT_FOUND');
    expect((await rejection(store.checkpoint('c3', 'bad name'))).code).toBe('MEMORY_INVALID');
  });

  it('keeps at most the limit of checkpoints, dropping the oldest', async () => {
    await store.load('c4', 'backend');
    const total = MEMORY_LIMITS.checkpoints + 2;
    for (let i = 0; i < total; i += 1) await store.checkpoint('c4', `cp-${String(i).padStart(3, '0')}`);
    const names = (await store.listCheckpoints('c4')).map((c) => c.name);
    expect(names).toHaveLength(MEMORY_LIMITS.checkpoints);
    expect(names).not.toContain('cp-000');
    expect(names).not.toContain('cp-001');
    expect(names).toContain(`cp-${String(total - 1).padStart(3, '0')}`);
  });

  it('export, wipeAll, import round-trips memories and checkpoints', async () => {
    for (const [id, role] of [['r-be', 'backend'], ['r-te', 'testing']] as const) {
      await store.update(id, role, (m) => busy(m, id));
      await store.checkpoint(id, 'snap');
    }
    await redis.hset(keys.agentCheckpoints('r-te'), 'junk', 'not json');
    const doc = await exportMemories(store);
    const json = JSON.parse(JSON.stringify(doc)) as unknown;
    expect(MemoryExportSchema.parse(json)).toEqual(doc);
    expect(doc.agents.map((a) => a.agentId)).toEqual(['r-be', 'r-te']);
    expect(doc.agents[1]!.checkpoints.map((c) => c.name)).toEqual(['snap']);

    expect(await store.wipeAll()).toBe(2);
    await store.deleteCheckpoint('r-be', 'snap');

    const result = await importMemories(store, json, { replace: true });
    expect(result).toEqual({ memories: 2, memoriesSkipped: 0, checkpoints: 2 });
    for (const agent of doc.agents) {
      const now = await store.load(agent.agentId, agent.memory!.role);
      expect(content(now)).toEqual(content(agent.memory!));
      expect(now.updatedAt).toBe(agent.memory!.updatedAt);
      expect(await store.listCheckpoints(agent.agentId)).toEqual(agent.checkpoints);
    }
    expect(await redis.hexists(keys.agentCheckpoints('r-te'), 'junk')).toBe(0);
  });

  it('import without replace keeps what exists and adds what is missing', async () => {
    await store.update('m1', 'backend', (m) => addObservation(m, 'original'));
    await store.checkpoint('m1', 'mine');
    const doc = await exportMemories(store);
    await store.update('m1', 'backend', (m) => addObservation(m, 'newer'));
    await store.forget('m1');
    await store.update('m1', 'backend', (m) => addObservation(m, 'current'));
    await store.checkpoint('m1', 'current-cp');

    const fresh = new MemoryStore(redis, createKeys(`${keys.prefix}x`));
    expect(await importMemories(fresh, doc, { replace: false })).toEqual({ memories: 1, memoriesSkipped: 0, checkpoints: 1 });

    expect(await importMemories(store, doc, { replace: false })).toEqual({ memories: 0, memoriesSkipped: 1, checkpoints: 1 });
    expect((await store.load('m1', 'backend')).observations).toEqual(['current']);
    expect((await store.listCheckpoints('m1')).map((c) => c.name).sort()).toEqual(['current-cp', 'mine']);
    expect(await importMemories(store, doc, { replace: false })).toEqual({ memories: 0, memoriesSkipped: 1, checkpoints: 0 });
  });

  it('a bad document is refused with every problem listed, and nothing is written', async () => {
    const good = await (async () => {
      await store.update('i1', 'backend', (m) => addObservation(m, 'x'));
      return exportMemories(store);
    })();
    await store.forget('i1');
    const bad = {
      ...good,
      exportedAt: 'yesterday',
      agents: [{ ...good.agents[0], memory: { ...good.agents[0]!.memory, role: 'wizard', wipes: -1 } }],
    };
    const err = await rejection(importMemories(store, bad, { replace: true }));
    expect(err).toBeInstanceOf(MemoryImportError);
    expect((err as MemoryImportError).problems).toHaveLength(3);
    expect(err.message).toMatch(/^invalid memory export: /);
    expect(err.message).toContain('exportedAt');
    expect(err.message).toContain('agents.0.memory.role');
    expect(err.message).toContain('agents.0.memory.wipes');

    const twice = { ...good, agents: [good.agents[0], good.agents[0]] };
    expect((await rejection(importMemories(store, twice, { replace: true }))).message).toContain('appears twice');
    expect((await rejection(importMemories(store, 'nope', { replace: true }))).code).toBe('MEMORY_INVALID');
    expect(await store.listAgents()).toEqual([]);
  });

  it('forget removes memory, checkpoints and the agent', async () => {
    await store.load('f1', 'backend');
    await store.load('f2', 'backend');
    await store.checkpoint('f1', 'x');
    await store.forget('f1');
    expect(await store.listAgents()).toEqual(['f2']);
    expect(await redis.exists(keys.agentMemory('f1'), keys.agentCheckpoints('f1'))).toBe(0);
  });
});

describe('TeamKnowledge', () => {
  let knowledge: TeamKnowledge;
  let redis: Redis;
  let keys: Keys;

  beforeEach(() => {
    ({ redis, keys } = connect());
    knowledge = new TeamKnowledge(redis, keys);
  });

  it('is shared within a build and read-only to other builds', async () => {
    await knowledge.set('b-one', { buildId: 'b-one', role: 'backend' }, 'venv_path', '/ws/b-one/.venv');
    await knowledge.set('b-one', { buildId: 'b-one', role: 'backend' }, 'python_version', '3.11');
    await knowledge.set('b-two', { buildId: 'b-two', role: 'backend' }, 'venv_path', '/ws/b-two/.venv');

    const err = await rejection(knowledge.set('b-one', { buildId: 'b-two', role: 'backend' }, 'venv_path', '/elsewhere'));
    expect(err.code).toBe('KNOWLEDGE_DENIED');
    expect(err.message).toBe('knowledge of build b-one is read-only to agents of build b-two');

    expect(await knowledge.get('b-one')).toEqual({ venv_path: '/ws/b-one/.venv', python_version: '3.11' });
    expect(await knowledge.get('b-two')).toEqual({ venv_path: '/ws/b-two/.venv' });
    expect(await knowledge.get('b-none')).toEqual({});
  });

  it('lets only the owning role write a key, and tells the others why', async () => {
    await knowledge.set('b-own', { buildId: 'b-own', role: 'backend' }, 'venv_path', '.venv');
    const denied = await rejection(knowledge.set('b-own', { buildId: 'b-own', role: 'frontend' }, 'venv_path', 'node_modules/.venv'));
    expect(denied.code).toBe('KNOWLEDGE_DENIED');
    expect(denied.message).toBe(
      "team knowledge 'venv_path' is owned by the backend agents: a frontend agent may read it but not write it (frontend owns: package_manager, build_command, entry_point, npm_*, node_*, package_*, build_*, frontend_*)",
    );
    // Owned by name even before anyone wrote it.
    expect((await rejection(knowledge.set('b-own', { buildId: 'b-own', role: 'backend' }, 'test_command_unittest', 'x'))).code).toBe('KNOWLEDGE_DENIED');
    await knowledge.set('b-own', { buildId: 'b-own', role: 'testing' }, 'test_command_unittest', 'python3 -m unittest');
    // A key no role claims belongs to its first writer.
    await knowledge.set('b-own', { buildId: 'b-own', role: 'devops' }, 'release_notes', 'README.md');
    expect((await rejection(knowledge.set('b-own', { buildId: 'b-own', role: 'testing' }, 'release_notes', 'x'))).message).toContain('owned by the devops agents');
    await knowledge.set('b-own', { buildId: 'b-own', role: 'devops' }, 'release_notes', 'NOTES.md');
    expect(await knowledge.entries('b-own')).toEqual([
      { key: 'release_notes', value: 'NOTES.md', owner: 'devops' },
      { key: 'test_command_unittest', value: 'python3 -m unittest', owner: 'testing' },
      { key: 'venv_path', value: '.venv', owner: 'backend' },
    ]);
  });

  it('refuses bad keys, long values and bad build ids', async () => {
    expect((await rejection(knowledge.set('b1', { buildId: 'b1', role: 'backend' }, 'EntryPoint', 'x'))).code).toBe('KNOWLEDGE_INVALID');
    expect((await rejection(knowledge.set('b1', { buildId: 'b1', role: 'backend' }, '9lives', 'x'))).code).toBe('KNOWLEDGE_INVALID');
    const long = await rejection(knowledge.set('b1', { buildId: 'b1', role: 'frontend' }, 'entry_point', 'x'.repeat(KNOWLEDGE_LIMITS.valueMaxChars + 1)));
    expect(long.message).toContain(`at most ${KNOWLEDGE_LIMITS.valueMaxChars}`);
    expect((await rejection(knowledge.get('b}1'))).code).toBe('KNOWLEDGE_INVALID');
    await knowledge.set('b1', { buildId: 'b1', role: 'frontend' }, 'entry_point', 'x'.repeat(KNOWLEDGE_LIMITS.valueMaxChars));
    expect(Object.keys(await knowledge.get('b1'))).toEqual(['entry_point']);
  });

  it('caps the keys of a build atomically, and overwriting still works at the cap', async () => {
    const cap = KNOWLEDGE_LIMITS.keysPerBuild;
    for (let i = 0; i < cap - 5; i += 1) await knowledge.set('full', { buildId: 'full', role: 'backend' }, `k${i}`, 'v');
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => knowledge.set('full', { buildId: 'full', role: 'backend' }, `extra_${i}`, 'v')),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(await redis.hlen(keys.knowledge('full'))).toBe(cap);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as CodegodError).message).toContain(`already holds ${cap} knowledge keys`);
    await knowledge.set('full', { buildId: 'full', role: 'backend' }, 'k0', 'changed');
    expect((await knowledge.get('full')).k0).toBe('changed');
  });
});
