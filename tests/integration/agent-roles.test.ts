import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAudit } from '../../shared/telemetry/audit.js';
import { TeamKnowledge } from '../../shared/memory/team-knowledge.js';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';

/**
 * Each role completes a scenario with real files and real commands, offline: a Python venv
 * and stdlib tests (backend), a local npm dependency and node --test (frontend), a Dockerfile
 * and env file (devops), and a test run over the backend's code (testing).
 */
const TODO_PY = `
class TodoList:
    def __init__(self):
        self.items = []

    def add(self, title):
        item = {"id": len(self.items) + 1, "title": title, "done": False}
        self.items.append(item)
        return item

    def complete(self, item_id):
        for item in self.items:
            if item["id"] == item_id:
                item["done"] = True
                return item
        raise KeyError(item_id)
`;
const TODO_TEST_PY = `
import unittest
from todo import TodoList

class TodoTest(unittest.TestCase):
    def test_add_and_complete(self):
        todos = TodoList()
        item = todos.add("write tests")
        self.assertEqual(item["id"], 1)
        self.assertTrue(todos.complete(1)["done"])

if __name__ == "__main__":
    unittest.main()
`;

const scenario = {
  rules: [
    { match: { phase: 'reason' }, reply: REASON },
    {
      match: { role: 'backend', phase: 'plan' },
      reply: plan1([
        { action: 'create_venv', params: { path: '.venv' } },
        { action: 'write_file', params: { path: 'todo.py', content: TODO_PY } },
        { action: 'write_file', params: { path: 'test_todo.py', content: TODO_TEST_PY } },
        { action: 'run_python', params: { file: 'test_todo.py', args: [] } },
      ]),
    },
    {
      match: { role: 'backend', phase: 'validate' },
      reply: validateWith([
        { kind: 'command', target: '.venv/bin/python', args: ['-m', 'unittest', '-q', 'test_todo'] },
        { kind: 'file_exists', target: '.venv/pyvenv.cfg' },
      ]),
    },
    {
      match: { role: 'frontend', phase: 'plan' },
      reply: plan1([
        { action: 'write_file', params: { path: 'web/lib/todo-format/package.json', content: '{"name":"todo-format","version":"1.0.0","main":"index.js"}\n' } },
        { action: 'write_file', params: { path: 'web/lib/todo-format/index.js', content: "exports.label = (t) => (t.done ? '[x] ' : '[ ] ') + t.title;\n" } },
        { action: 'write_file', params: { path: 'web/package.json', content: '{"name":"todo-web","version":"1.0.0","private":true}\n' } },
        { action: 'run_command', params: { command: 'npm', args: ['pkg', 'set', 'dependencies.todo-format=file:./lib/todo-format'], cwd: 'web' } },
        { action: 'write_file', params: { path: 'web/src/index.js', content: "const { label } = require('todo-format');\nmodule.exports = { render: (todos) => todos.map(label).join('\\n') };\n" } },
        { action: 'write_file', params: { path: 'web/src/index.test.js', content: "const test = require('node:test');\nconst assert = require('node:assert');\nconst { render } = require('./index.js');\ntest('renders todos', () => assert.strictEqual(render([{ title: 'a', done: true }]), '[x] a'));\n" } },
        { action: 'run_command', params: { command: 'npm', args: ['install', '--no-audit', '--no-fund', '--offline'], cwd: 'web' } },
        { action: 'run_command', params: { command: 'node', args: ['--test'], cwd: 'web' } },
      ]),
    },
    {
      match: { role: 'frontend', phase: 'validate' },
      reply: validateWith([
        { kind: 'file_exists', target: 'web/node_modules/todo-format/index.js' },
        { kind: 'command', target: 'node', args: ['--test', 'web/src/'] },
      ]),
    },
    {
      match: { role: 'devops', phase: 'plan' },
      reply: plan1([
        { action: 'create_dockerfile', params: { base_image: 'python:3.12-slim', workdir: '/app', copy: ['.'], install: ['pip install --no-cache-dir -r requirements.txt'], cmd: ['python', 'app.py'], expose: [5000] } },
        { action: 'setup_env', params: { vars: { FLASK_ENV: 'production', PORT: '5000' } } },
      ]),
    },
    {
      match: { role: 'devops', phase: 'validate' },
      reply: validateWith([
        { kind: 'file_contains', target: 'Dockerfile', contains: 'USER' },
        { kind: 'file_contains', target: '.env', contains: 'PORT=5000' },
      ]),
    },
    { match: { role: 'testing', phase: 'plan' }, reply: plan1([{ action: 'run_tests', params: { framework: 'unittest' } }]) },
    { match: { role: 'testing', phase: 'validate' }, reply: validateWith([{ kind: 'command', target: 'python3', args: ['-m', 'unittest', '-q', 'test_todo'] }]) },
  ],
};

let world: AgentWorld;
let buildId: string;

beforeAll(async () => {
  world = await AgentWorld.start(scenario);
  for (const role of ['backend', 'frontend', 'devops', 'testing']) await world.startWorker(role);
  buildId = await world.build([
    { id: 'api', role: 'backend' },
    { id: 'ui', role: 'frontend' },
    { id: 'container', role: 'devops' },
    { id: 'verify', role: 'testing', dependsOn: ['api'] },
  ]);
  const build = await world.waitForEnd(buildId, 90_000);
  expect(build.state, build.reason).toBe('succeeded');
}, 120_000);

afterAll(async () => {
  await world?.close();
});

describe('each role completes a scenario with real files and commands', () => {
  it('backend: a venv, a module and its passing unittest; the venv is shared team knowledge', async () => {
    const ws = world.workspace(buildId);
    expect(existsSync(join(ws, '.venv/bin/python'))).toBe(true);
    expect(readFileSync(join(ws, 'todo.py'), 'utf8')).toContain('class TodoList');
    const result = await world.result(buildId, 'api');
    expect(result.success).toBe(true);
    expect(result.actions_taken.map((a) => a.action)).toEqual(['create_venv', 'write_file', 'write_file', 'run_python']);
    expect(result.actions_taken.every((a) => a.success)).toBe(true);
    expect(result.validation).toEqual({ valid: true, output: 'checked' });
    const knowledge = await new TeamKnowledge(world.engine.redis, world.engine.scheduler.keys).get(buildId);
    expect(knowledge.venv_path).toBe('.venv');
    expect(knowledge.python_version).toMatch(/^3\.\d+/);
  });

  it('frontend: a local npm dependency installed offline and node --test passing', async () => {
    const ws = world.workspace(buildId);
    expect(JSON.parse(readFileSync(join(ws, 'web/package.json'), 'utf8')).dependencies['todo-format']).toBe('file:./lib/todo-format');
    expect(existsSync(join(ws, 'web/node_modules/todo-format/index.js'))).toBe(true);
    const result = await world.result(buildId, 'ui');
    expect(result.success).toBe(true);
    expect(result.actions_taken.at(-1)!.output).toMatch(/pass 1/);
  });

  it('devops: a Dockerfile with a non-root user and an env file', async () => {
    const ws = world.workspace(buildId);
    const dockerfile = readFileSync(join(ws, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM python:3\.12-slim/m);
    expect(dockerfile).toMatch(/^USER /m);
    expect(dockerfile).toMatch(/^EXPOSE 5000/m);
    expect(readFileSync(join(ws, '.env'), 'utf8')).toMatch(/PORT=5000/);
  });

  it('testing: runs the backend\'s tests after the backend finished', async () => {
    const result = await world.result(buildId, 'verify');
    expect(result.success).toBe(true);
    expect(result.actions_taken[0]!.output).toMatch(/OK|passed/);
    const tasks = new Map((await world.engine.scheduler.dag.getTasks(buildId)).map((t) => [t.id, t]));
    expect(tasks.get('verify')!.startedAt!).toBeGreaterThanOrEqual(tasks.get('api')!.finishedAt!);
  });

  it('every command and file write is in the build\'s audit stream; the trace has every phase', async () => {
    const audit = await readAudit(world.engine.redis, world.engine.scheduler.keys, buildId);
    const writes = audit.filter((a) => a.entry.type === 'file.write').map((a) => (a.entry as { path: string }).path);
    expect(writes).toEqual(expect.arrayContaining(['todo.py', 'test_todo.py', 'Dockerfile', '.env', 'web/src/index.js']));
    const commands = audit.filter((a) => a.entry.type === 'command');
    expect(commands.length).toBeGreaterThanOrEqual(6);
    for (const c of commands) expect(c.entry).toHaveProperty('exitCode');
    const trace = (await world.trace(buildId, 'api'))!;
    const it0 = trace.iterations[0]!;
    expect(Object.keys(it0)).toEqual(expect.arrayContaining(['observe', 'reason', 'plan', 'act', 'validate']));
    expect(it0.observe!.facts).toBeTypeOf('object');
    expect(it0.reason!.usage.promptTokens).toBeGreaterThan(0);
    expect(it0.act!.steps.every((s) => typeof s.ms === 'number')).toBe(true);
  });
});
