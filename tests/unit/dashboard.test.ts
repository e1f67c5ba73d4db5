/**
 * Pure parts of the dashboard: HTML escaping and the page frame, the DAG layering, and the
 * one-line task status.
 */
import { describe, expect, it } from 'vitest';
import { agentView, dagLayers, taskStatus } from '../../orchestrator/http/views.js';
import { AgentStatusSchema } from '../../shared/telemetry/agent-status.js';
import { buildPage, contentSecurityPolicy, escapeHtml, messagePage } from '../../orchestrator/http/pages.js';
import type { TaskView } from '../../shared/engine/dag-store.js';
import type { TaskState } from '../../shared/domain/build.js';
import { taskView } from '../helpers/fixtures.js';

describe('escapeHtml', () => {
  it('leaves no character that can open markup or close an attribute', () => {
    const out = escapeHtml(`<img src=x onerror="alert('1')"> & \`tick\``);
    expect(out).not.toMatch(/[<>"'`]/);
    expect(out).toBe('&#60;img src=x onerror=&#34;alert(&#39;1&#39;)&#34;&#62; &#38; &#96;tick&#96;');
  });
});

describe('page frame', () => {
  it('tags its script and style with the nonce that the policy allows, and nothing else', () => {
    const html = buildPage('n0nce', 'b-abcd1234-ef01');
    expect(html.match(/<script type="module" nonce="n0nce" src="\/assets\/[0-9a-f]{16}\/build\.js"><\/script>/g)).toHaveLength(1);
    expect(html.match(/<link rel="stylesheet" nonce="n0nce" href="\/assets\/[0-9a-f]{16}\/dashboard\.css">/g)).toHaveLength(1);
    expect(html).not.toMatch(/<script(?! type="module" nonce="n0nce")/);
    expect(html).not.toMatch(/<style/);
    expect(html).not.toMatch(/<link rel="stylesheet"(?! nonce="n0nce")/);
    expect(html).not.toMatch(/ style="/);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const csp = contentSecurityPolicy('n0nce');
    expect(csp).toContain("script-src 'nonce-n0nce'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
  });

  it('escapes what it renders', () => {
    const html = messagePage('n', '<b>title</b>', ['line with <script>x</script>']);
    expect(html).not.toContain('<b>title</b>');
    expect(html).not.toContain('<script>x</script>');
    expect(html).toContain('&#60;script&#62;x&#60;/script&#62;');
  });
});

describe('dagLayers', () => {
  it('puts each task one column after its deepest dependency', () => {
    const layers = dagLayers([
      { id: 'api', deps: ['setup'] },
      { id: 'setup', deps: [] },
      { id: 'ui', deps: ['setup'] },
      { id: 'e2e', deps: ['api', 'ui', 'setup'] },
      { id: 'docs', deps: [] },
    ]);
    expect(layers).toEqual([['docs', 'setup'], ['api', 'ui'], ['e2e']]);
  });

  it('orders a column by where its dependencies sit, so edges cross less', () => {
    const layers = dagLayers([
      { id: 'a', deps: [] },
      { id: 'b', deps: [] },
      { id: 'z-from-a', deps: ['a'] },
      { id: 'a-from-b', deps: ['b'] },
    ]);
    expect(layers[1]).toEqual(['z-from-a', 'a-from-b']);
  });

  it('ignores unknown dependencies and survives a cycle in hand-edited data', () => {
    expect(dagLayers([{ id: 'a', deps: ['ghost'] }])).toEqual([['a']]);
    const cyclic = dagLayers([
      { id: 'a', deps: ['b'] },
      { id: 'b', deps: ['a'] },
      { id: 'c', deps: ['a'] },
    ]);
    expect(cyclic.flat().sort()).toEqual(['a', 'b', 'c']);
  });

  it('lays out a 20,000-task chain without recursion', () => {
    const chain = Array.from({ length: 20_000 }, (_, i) => ({ id: `t${i}`, deps: i === 0 ? [] : [`t${i - 1}`] }));
    const layers = dagLayers(chain);
    expect(layers).toHaveLength(20_000);
    expect(layers[19_999]).toEqual(['t19999']);
  });
});

function task(over: Partial<TaskView> & { id: string; state: TaskState }): TaskView {
  return taskView(over.id, over);
}

describe('taskStatus', () => {
  const states = new Map<string, TaskState>([
    ['done', 'succeeded'],
    ['busy', 'running'],
  ]);
  it('says what a task waits on, where it runs and how it ended', () => {
    expect(taskStatus(task({ id: 'p', state: 'pending', deps: ['done', 'busy'] }), states)).toBe('waiting on busy');
    expect(taskStatus(task({ id: 'q', state: 'queued' }), states)).toBe('queued for a backend agent');
    expect(taskStatus(task({ id: 'r', state: 'running', worker: 'backend-1', attempts: 2 }), states)).toBe('running on backend-1 (attempt 2)');
    expect(taskStatus(task({ id: 's', state: 'succeeded', startedAt: 1_000, finishedAt: 3_500 }), states)).toBe('succeeded in 2.5 s after 1 attempt');
    expect(taskStatus(task({ id: 'f', state: 'failed', attempts: 2, error: 'exit 1' }), states)).toBe('failed after 2 attempts: exit 1');
  });
});

describe('agentView', () => {
  it('marks an agent stale after three missed heartbeats, never an offline one', () => {
    const base = {
      agentId: 'a', role: 'backend', state: 'idle' as const, currentTasks: [], heartbeat: 10_000, startedAt: 0,
      tasksCompleted: 0, tasksFailed: 0, concurrency: 1, pid: 1, host: 'h',
    };
    expect(agentView(base, 12_000, 1_000)).toMatchObject({ heartbeatAgeMs: 2_000, stale: false, currentTask: null, uptimeMs: 10_000 });
    const busy = { ...base, state: 'reasoning' as const, currentTasks: [{ buildId: 'b', taskId: 't', since: 9_000, phase: 'reasoning' as const }, { buildId: 'b', taskId: 'u', since: 9_500 }] };
    expect(agentView(busy, 12_000, 1_000).currentTask).toEqual({ buildId: 'b', taskId: 't', since: 9_000, phase: 'reasoning' });
    expect(agentView(base, 14_000, 1_000).stale).toBe(true);
    expect(agentView({ ...base, state: 'offline' }, 99_000, 1_000).stale).toBe(false);
  });

  it("reads an entry of a version before the phases ('busy') as acting, and refuses unknown states", () => {
    const entry = { agentId: 'a', role: 'backend', currentTasks: [], heartbeat: 1, startedAt: 0, tasksCompleted: 0, tasksFailed: 0, concurrency: 1, pid: 1, host: 'h' };
    expect(AgentStatusSchema.parse({ ...entry, state: 'busy' }).state).toBe('acting');
    expect(AgentStatusSchema.safeParse({ ...entry, state: 'dreaming' }).success).toBe(false);
  });
});
