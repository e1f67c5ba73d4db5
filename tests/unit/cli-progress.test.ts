import { describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../shared/engine/events.js';
import { emptyCounts, formatSnapshot, parseReport, ProgressView, describePlan } from '../../orchestrator/cli/progress.js';
import { clip, formatAge, formatCount, formatDuration, plural, table } from '../../orchestrator/cli/format.js';
import { Captured } from '../helpers/cli-io.js';

const T0 = 1_700_000_000_000;
let seq = 0;
function ev(type: BuildEvent['type'], atMs: number, fields: Partial<BuildEvent> = {}): BuildEvent {
  seq += 1;
  return { id: `${T0 + atMs}-${seq}`, type, at: T0 + atMs, ...fields };
}

const ANSI = /\u001b\[/;

function run(view: ProgressView) {
  view.begin({ createdAt: T0 });
  view.learnRoles(new Map([['ui', 'frontend']]));
  const first = view.apply([
    ev('build.submitted', 0),
    ev('build.planned', 900, { data: JSON.stringify({ summary: 'an api and a ui', tasks: [{ id: 'api' }, { id: 'ui', dependsOn: ['api'] }] }) }),
    ev('build.created', 1_000, { data: '2' }),
    ev('task.queued', 1_000, { task: 'api', role: 'backend' }),
    ev('task.started', 1_200, { task: 'api', role: 'backend', attempt: 1, worker: 'backend-1' }),
  ]);
  const second = view.apply([
    ev('task.failed', 2_700, { task: 'api', role: 'backend', reason: 'pytest failed:\n3 errors' }),
    ev('task.skipped', 2_700, { task: 'ui', reason: 'dependency api failed' }),
  ]);
  return { first, second };
}

const snapshot = (over: Partial<ReturnType<typeof emptyCounts>>, tokens = 1_234) => ({
  total: 2,
  counts: { ...emptyCounts(), ...over },
  tokens,
  elapsedMs: 2_700,
});

describe('ProgressView, plain output (not a terminal)', () => {
  it('prints one plain line per change with time, role, task and state', () => {
    const out = new Captured(false);
    const view = new ProgressView(out, false);
    const { first, second } = run(view);
    expect(first).toBe(true);
    expect(second).toBe(true);
    expect(out.text).not.toMatch(ANSI);
    expect(out.text).not.toContain('\r');
    const lines = out.lines;
    expect(lines[0]).toMatch(/^\s+0ms\s+build\s+submitted$/);
    expect(lines[1]).toMatch(/planned: 2 tasks — an api and a ui — api → ui$/);
    expect(lines[2]).toMatch(/^\s+1\.0s\s+build\s+running 2 tasks$/);
    expect(lines[3]).toMatch(/^\s+1\.0s\s+backend\s+api\s+queued$/);
    expect(lines[4]).toMatch(/^\s+1\.2s\s+backend\s+api\s+running \(attempt 1 on backend-1\)$/);
    expect(lines[5]).toMatch(/^\s+2\.7s\s+backend\s+api\s+failed in 1\.5s: pytest failed: 3 errors$/);
    // The role of a task that never got queued comes from what the follower looked up.
    expect(lines[6]).toMatch(/^\s+2\.7s\s+frontend\s+ui\s+skipped: dependency api failed$/);
  });

  it('shows a task that started and finished within one turn of its worker as one line with its start', () => {
    const out = new Captured(false);
    const view = new ProgressView(out, false);
    view.begin({ createdAt: T0 });
    view.apply([
      ev('build.created', 1_000, { data: '1' }),
      ev('task.succeeded', 1_250, { task: 'lint', role: 'devops', startedAt: T0 + 1_010, attempt: 1, worker: 'devops-2' }),
    ]);
    expect(out.lines[1]).toMatch(/^\s+1\.3s\s+devops\s+lint\s+succeeded in 240ms \(attempt 1 on devops-2\)$/);
  });

  it('prints a summary line at milestones only, once per change of the counts', () => {
    const out = new Captured(false);
    const view = new ProgressView(out, false);
    view.begin({ createdAt: Date.now() });
    view.summary(snapshot({ running: 1, pending: 1 }), false);
    expect(out.text).toBe('');
    view.summary(snapshot({ running: 1, pending: 1 }), true);
    view.summary(snapshot({ running: 1, pending: 1 }, 9_999), true);
    view.summary(snapshot({ succeeded: 1, running: 1 }), true);
    const lines = out.lines;
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/progress\s+done 0\/2 · running 1 · queued 0 · waiting 1 · failed 0 · 1,234 tokens · 2\.7s$/);
    expect(lines[1]).toMatch(/done 1\/2 · running 1/);
    view.end();
    expect(out.text).not.toMatch(ANSI);
  });
});

describe('ProgressView on a terminal', () => {
  it('redraws one status line in place and clears it before each change line', () => {
    const out = new Captured(true, 60);
    const view = new ProgressView(out, true);
    view.begin({ createdAt: T0 });
    view.summary(snapshot({ running: 1, pending: 1 }), false);
    expect(out.text).toMatch(/^\r\u001b\[2Kprogress  done 0\/2/);
    expect(out.text).not.toContain('\n');
    // Clipped to the terminal's width so it never wraps (which would break the redraw).
    expect(out.text.replace('\r\u001b[2K', '').length).toBeLessThanOrEqual(59);
    view.apply([ev('task.succeeded', 1_000, { task: 'api', role: 'backend' })]);
    expect(out.text).toMatch(/\r\u001b\[2K\s+1\.0s\s+backend\s+api\s+succeeded\n$/);
    view.summary(snapshot({ succeeded: 1, running: 1 }), true);
    view.end();
    expect(out.text.endsWith('\r\u001b[2K')).toBe(true);
  });
});

describe('formatting', () => {
  it('formats snapshots, durations, counts and tables', () => {
    expect(formatSnapshot(snapshot({ succeeded: 1, failed: 1, skipped: 2, cancelled: 1 }, 1_234_567))).toBe(
      'done 1/2 · running 0 · queued 0 · waiting 0 · failed 1 · skipped 2 · cancelled 1 · 1,234,567 tokens · 2.7s',
    );
    expect([850, 4_210, 72_000, 3 * 3_600_000 + 180_000, 3 * 86_400_000].map(formatDuration)).toEqual(['850ms', '4.2s', '1m 12s', '3h 03m', '3d 00h']);
    expect(formatDuration(-1)).toBe('-');
    expect(formatAge(T0, T0 + 12_000)).toBe('12.0s ago');
    expect(formatCount(1_234_567)).toBe('1,234,567');
    expect(plural(1, 'task')).toBe('1 task');
    expect(plural(2, 'call')).toBe('2 calls');
    expect(clip('a\nb\tc   d', 100)).toBe('a b c   d');
    expect(clip('abcdefghij', 5)).toBe('abcd…');
    expect(table(['ID', 'STATE'], [['a', 'ok'], ['long-id', 'failed']])).toEqual(['ID       STATE', 'a        ok', 'long-id  failed']);
  });

  it('accepts a build report only when it matches the report schema', () => {
    const report = {
      buildId: 'b-m3x0k2a1-4f2a9c',
      goal: 'g',
      state: 'succeeded',
      wallMs: 10,
      criticalPathMs: 5,
      tasks: [],
      files: ['app.py'],
      llm: { calls: 1, promptTokens: 2, completionTokens: 3 },
    };
    expect(parseReport(JSON.stringify(report))).toEqual(report);
    expect(parseReport(JSON.stringify({ ...report, files: 'app.py' }))).toBeUndefined();
    expect(parseReport('{not json')).toBeUndefined();
    expect(parseReport(undefined)).toBeUndefined();
  });
});

describe('describePlan', () => {
  it('shows the tasks by dependency layer', () => {
    const t = (id: string, dependsOn: string[] = []) => ({ id, dependsOn });
    const plan = { summary: 'todo app', tasks: [t('api'), t('ui'), t('container', ['api', 'ui']), t('test-api', ['api']), t('test-ui', ['ui']), t('release', ['test-api', 'test-ui', 'container'])] };
    expect(describePlan(JSON.stringify(plan))).toBe(': 6 tasks — todo app — api, ui → container, test-api, test-ui → release');
    expect(describePlan('not json')).toBeUndefined();
    expect(describePlan(JSON.stringify({ tasks: [{ nope: 1 }] }))).toBeUndefined();
  });
});

