import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../../scripts/llm-server/server.js';
import { TERMINAL_BUILD_STATES, type BuildRecord } from '../../shared/domain/build.js';
import { readAudit } from '../../shared/telemetry/audit.js';
import { testConfig } from '../helpers/config.js';
import { engine, plan, waitForWorkers } from '../helpers/engine.js';
import { FAST_RECOVERY, startWorker, waitFor, type ChildHandle } from '../helpers/processes.js';

/**
 * A bounded kill storm over what builds produce: a few builds whose backend tasks make a
 * virtualenv (`env`, validated only by "pyvenv.cfg exists") and install a package into it
 * (`deps`), with the worker SIGKILLed while it runs `python3 -m venv` and while it runs pip.
 * Each build must end succeeded with a venv that works (pip runs, the package imports) or
 * failed with a reason, and no `env` may succeed over a broken venv (the bug: a retry found
 * pyvenv.cfg, said "already exists", and its validation passed).
 */
const BUILDS = 3;

/** A pure-Python wheel made with the standard library (no network, no setuptools). */
const MAKE_WHEEL = [
  'import base64, hashlib, os, zipfile',
  "name, ver = 'storm_pkg', '1.0.0'",
  "files = {f'{name}/__init__.py': 'VALUE = 42\\n', f'{name}-{ver}.dist-info/METADATA': f'Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n', f'{name}-{ver}.dist-info/WHEEL': 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'}",
  "os.makedirs('dist', exist_ok=True)",
  'record = []',
  "with zipfile.ZipFile(f'dist/{name}-{ver}-py3-none-any.whl', 'w') as z:",
  '    for path, text in files.items():',
  '        data = text.encode()',
  '        z.writestr(path, data)',
  "        record.append(f'{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b\"=\").decode()},{len(data)}')",
  "    record.append(f'{name}-{ver}.dist-info/RECORD,,')",
  "    z.writestr(f'{name}-{ver}.dist-info/RECORD', '\\n'.join(record) + '\\n')",
].join('\n');

const step = (action: string, params: Record<string, unknown>) => ({ action, params, expected: 'done' });
const plan1 = (...steps: unknown[]) => ({ steps, estimated_duration: '10 seconds', confidence: 0.9 });
const SCENARIO = {
  rules: [
    {
      match: { phase: 'reason' },
      reply: { problem_analysis: 'needs a venv', root_causes: ['none yet'], approach: 'make it', risks: ['none'], success_criteria: 'it works', conclusion: 'make it' },
    },
    { match: { phase: 'plan', task: 'env' }, reply: plan1(step('create_venv', { path: '.venv' })) },
    // The weak check that let a broken venv pass: its config file exists.
    { match: { phase: 'validate', task: 'env' }, reply: { checks: [{ kind: 'file_exists', target: '.venv/pyvenv.cfg', args: [], contains: null }], summary: 'the venv exists' } },
    {
      match: { phase: 'plan', task: 'deps' },
      reply: plan1(step('run_python', { code: MAKE_WHEEL, args: [] }), step('install_dependency', { package: 'dist/storm_pkg-1.0.0-py3-none-any.whl' })),
    },
    { match: { phase: 'validate', task: 'deps' }, reply: { checks: [{ kind: 'command', target: '.venv/bin/python', args: ['-c', 'import storm_pkg'], contains: null }], summary: 'installed' } },
  ],
};

/** Whether the venv at `dir` works: pip runs, and (when asked) the package imports. */
function venvWorks(dir: string, withPackage: boolean): boolean {
  try {
    execFileSync(join(dir, 'bin', 'pip'), ['--version'], { stdio: 'pipe' });
    if (withPackage) return execFileSync(join(dir, 'bin', 'python'), ['-c', 'import storm_pkg; print(storm_pkg.VALUE)'], { encoding: 'utf8' }).trim() === '42';
    return true;
  } catch {
    return false;
  }
}

const workspaceRoot = mkdtempSync(join(tmpdir(), 'codegod-storm-'));
let llm: ScriptedLlmServer | undefined;
const children: ChildHandle[] = [];
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await llm?.close();
  rmSync(workspaceRoot, { recursive: true, force: true });
});

describe('kill storm over venvs and installs', () => {
  it('SIGKILL inside python3 -m venv and inside pip: every build ends with a working venv or a reason', async () => {
    llm = await startScriptedLlmServer({ scenario: SCENARIO });
    const extra = { ...FAST_RECOVERY, CODEGOD_EXECUTOR: 'agent', VLLM_API_URL: llm.url, CODEGOD_WORKSPACE_ROOT: workspaceRoot, WORKER_CONCURRENCY: String(BUILDS), CODEGOD_MAX_STALLED_COUNT: '10' };
    const config = testConfig(extra);
    const h = engine(config);
    try {
      let worker = startWorker(config, 'backend', extra);
      children.push(worker);
      await waitForWorkers(h.redis, config, [worker]);
      const ids: string[] = [];
      for (let i = 0; i < BUILDS; i++) {
        ids.push(await h.scheduler.createBuild({ goal: `storm ${i}`, plan: plan([{ id: 'env' }, { id: 'deps', dependsOn: ['env'] }]) }));
      }
      const venvOf = (id: string) => join(workspaceRoot, id, '.venv');
      const restart = async () => {
        await worker.kill('SIGKILL');
        worker = startWorker(config, 'backend', extra);
        children.push(worker);
      };

      // The moment a task is recorded succeeded, what it made must work: 'env' is checked then.
      const envChecked = new Map<string, boolean>();
      const watchEnv = (async () => {
        while (envChecked.size < ids.length) {
          for (const id of ids) {
            if (envChecked.has(id)) continue;
            const state = (await h.scheduler.dag.getTaskStates(id)).get('env');
            if (state === 'succeeded') envChecked.set(id, venvWorks(venvOf(id), false));
            else if (state === 'failed' || state === 'cancelled' || state === 'skipped') envChecked.set(id, true);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })();

      // Inside `python3 -m venv`: pyvenv.cfg is written, ensurepip has not put pip in place yet.
      await waitFor(() => ids.some((id) => existsSync(join(venvOf(id), 'pyvenv.cfg')) && !existsSync(join(venvOf(id), 'bin', 'pip'))), 'a venv half-made', 90_000, 10);
      await restart();
      // Inside pip: its command has started.
      await waitFor(async () => {
        for (const id of ids) {
          const records = await readAudit(h.redis, h.scheduler.keys, id);
          if (records.some((r) => r.entry.type === 'command.started' && r.entry.args.includes('install'))) return true;
        }
        return false;
      }, 'pip install to start', 120_000, 20);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
      await restart();

      const ended = await waitFor(async () => {
        const builds = await Promise.all(ids.map((id) => h.scheduler.dag.getBuild(id)));
        return builds.every((b) => TERMINAL_BUILD_STATES.has(b.state)) ? builds : undefined;
      }, 'every build to end', 240_000, 250);
      await watchEnv;
      expect([...envChecked].filter(([, works]) => !works).map(([id]) => id), 'env tasks that succeeded over a broken venv').toEqual([]);

      const outcomes = ended.map((b: BuildRecord) =>
        b.state === 'succeeded' ? { id: b.id, state: b.state, works: venvWorks(venvOf(b.id), true) } : { id: b.id, state: b.state, reason: b.reason ?? '' },
      );
      for (const o of outcomes) {
        if (o.state === 'succeeded') expect(o, 'a succeeded build has a working venv').toMatchObject({ works: true });
        else expect(o.reason, `build ${o.id} ${o.state} without a reason`).not.toBe('');
      }
      console.info(`storm: ${outcomes.map((o) => `${o.id} ${o.state}${'works' in o ? (o.works ? ' (venv works)' : ' (venv BROKEN)') : ''}`).join('; ')}`);
    } finally {
      await h.close();
    }
  }, 300_000);
});
