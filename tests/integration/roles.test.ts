import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEntryInput, AuditSink } from '../../shared/telemetry/audit.js';
import { loadConfig, type Config } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import type { Role } from '../../shared/domain/roles.js';
import { Sandbox } from '../../shared/sandbox/sandbox.js';
import type { ActionContext, ActionResult, KnowledgeAccess } from '../../workers/actions/action.js';
import type { KnowledgeEntry } from '../../shared/memory/team-knowledge.js';
import { NO_DOCKER_ENDPOINT } from '../../workers/roles/devops.js';
import { roleDefinition } from '../../workers/roles/index.js';
import type { ErrorTriage } from '../../workers/roles/testing.js';

/**
 * The roles' actions and Observe probes against real temporary workspaces, with real python,
 * pip, node and npm, and no network: packages come from the workspace itself (a wheel built
 * in the test, an npm `file:` dependency).
 */

const roots: string[] = [];

afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

class MemorySink implements AuditSink {
  readonly entries: AuditEntryInput[] = [];
  async record(entry: AuditEntryInput): Promise<void> {
    this.entries.push(entry);
  }
}

class MemoryKnowledge implements KnowledgeAccess {
  readonly values: Record<string, string> = {};
  async get(): Promise<Record<string, string>> {
    return { ...this.values };
  }
  async entries(): Promise<KnowledgeEntry[]> {
    return Object.entries(this.values).map(([key, value]) => ({ key, value }));
  }
  async set(key: string, value: string): Promise<void> {
    this.values[key] = value;
  }
}

interface World {
  sandbox: Sandbox;
  sink: MemorySink;
  knowledge: MemoryKnowledge;
  config: Config;
  act(action: string, params?: unknown): Promise<ActionResult>;
  observe(): ReturnType<ReturnType<typeof roleDefinition>['observe']>;
  /** The role's own checks of what it leaves for later tasks (run at every validation). */
  verify(): Promise<string[]>;
  write(files: Record<string, string>): Promise<void>;
}

async function world(role: Role, options: { dockerHost?: string } = {}): Promise<World> {
  const root = await mkdtemp(join(tmpdir(), 'codegod-roles-'));
  roots.push(root);
  const sink = new MemorySink();
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    CODEGOD_WORKSPACE_ROOT: root,
  });
  const sandbox = await Sandbox.forBuild({
    root,
    buildId: 'build-1',
    sink,
    taskId: 't1',
    commandTimeoutMs: 60_000,
    ...(options.dockerHost ? { dockerHost: options.dockerHost } : {}),
  });
  const knowledge = new MemoryKnowledge();
  const definition = roleDefinition(role);
  const signal = new AbortController().signal;
  const ctx: ActionContext = { sandbox, signal, buildId: 'build-1', taskId: 't1', role, knowledge, logger: createLogger('silent') };
  const task = { id: 't1', role, title: 'task', description: 'task', dependsOn: [], acceptanceCriteria: [] };
  return {
    verify: async () => (await definition.verify?.({ sandbox, signal, knowledge: await knowledge.get(), task })) ?? [],
    sandbox,
    sink,
    knowledge,
    config,
    act: (action, params = {}) => definition.actions.run({ action, params }, ctx),
    observe: async () =>
      definition.observe({
        sandbox,
        signal,
        knowledge: await knowledge.get(),
        task: { id: 't1', role, title: 'task', description: 'task', dependsOn: [], acceptanceCriteria: [] },
      }),
    write: async (files) => {
      for (const [path, content] of Object.entries(files)) await sandbox.writeFile(path, content);
    },
  };
}

/** Builds a minimal pure-Python wheel with the standard library (no setuptools, no wheel, no network). */
const MAKE_WHEEL = `
import base64, hashlib, os, zipfile
name, ver = 'hello_codegod', '0.1.0'
files = {
    f'{name}/__init__.py': 'def greet():\\n    return "hello from codegod"\\n',
    f'{name}-{ver}.dist-info/METADATA': f'Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n',
    f'{name}-{ver}.dist-info/WHEEL': 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
os.makedirs('dist', exist_ok=True)
record = []
with zipfile.ZipFile(f'dist/{name}-{ver}-py3-none-any.whl', 'w') as z:
    for path, text in files.items():
        data = text.encode()
        z.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
        record.append(f'{path},sha256={digest},{len(data)}')
    record.append(f'{name}-{ver}.dist-info/RECORD,,')
    z.writestr(f'{name}-{ver}.dist-info/RECORD', '\\n'.join(record) + '\\n')
print('built')
`;

const UNITTEST_FILE = (secondPasses: boolean) => `import unittest

class MathTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(1 + 1, 2)

    def test_mul(self):
        self.assertEqual(2 * 3, ${secondPasses ? 6 : 7})
`;

const NODE_TEST_FILE = `import test from 'node:test';
import assert from 'node:assert';
test('adds', () => assert.equal(1 + 1, 2));
test('multiplies', () => assert.equal(2 * 3, 7));
`;

describe('shared actions', () => {
  it('reads, writes, lists and checks files inside the workspace only', async () => {
    const w = await world('frontend');
    expect(await w.act('write_file', { path: 'src/app.py', content: 'print(1)\n' })).toEqual({ ok: true, output: 'wrote 9 bytes to src/app.py' });
    expect(await w.act('read_file', { path: 'src/app.py' })).toEqual({ ok: true, output: 'print(1)\n' });
    expect(await w.act('check_file_exists', { path: 'src/app.py' })).toEqual({ ok: true, output: 'src/app.py: exists (file, 9 bytes)' });
    expect(await w.act('check_file_exists', { path: 'src' })).toEqual({ ok: true, output: 'src: exists (directory)' });
    expect(await w.act('check_file_exists', { path: 'nope.txt' })).toEqual({ ok: false, output: 'nope.txt: does not exist' });
    expect((await w.act('list_files')).output).toBe('.codegod/  (not expanded)\nsrc/\nsrc/app.py  9 B');
    expect(await w.act('read_file', { path: 'src' })).toMatchObject({ ok: false, output: 'src is a directory; use list_files' });

    const escape = await w.act('read_file', { path: '../outside.txt' });
    expect(escape.ok).toBe(false);
    expect(escape.output).toMatch(/escapes the workspace/);
    const absolute = await w.act('write_file', { path: '/tmp/x.txt', content: 'x' });
    expect(absolute.ok).toBe(false);
    expect(absolute.output).toMatch(/absolute paths are not allowed/);
    expect((await w.act('list_files', { path: '../..' })).ok).toBe(false);
    expect(w.sink.entries.filter((e) => e.type === 'file.write').map((e) => (e.type === 'file.write' ? e.path : ''))).toEqual(['src/app.py']);
  });

  it('runs programs without a shell, within the policy and the time limit', async () => {
    const w = await world('devops');
    const hello = await w.act('run_command', { command: 'node', args: ['-e', 'console.log("hi"); console.error("warn")'] });
    expect(hello).toEqual({ ok: true, exitCode: 0, output: expect.stringMatching(/^\$ node -e 'console\.log\("hi"\); console\.error\("warn"\)'\nexit code 0 in \d+ ms\n--- stdout ---\nhi\n--- stderr ---\nwarn$/) });
    const refused = await w.act('run_command', { command: 'rm', args: ['-rf', '/'] });
    expect(refused).toMatchObject({ ok: false, exitCode: null, output: expect.stringMatching(/refused: rm -r/) });
    const slow = await w.act('run_command', { command: 'node', args: ['-e', 'setTimeout(() => {}, 20000)'], timeout_ms: 300 });
    expect(slow).toMatchObject({ ok: false, output: expect.stringMatching(/timed out after \d+ ms/) });
    expect(await w.act('run_command', { command: 'no-such-program-codegod' })).toMatchObject({ ok: false, exitCode: 127 });
    expect((await w.act('run_command', { command: 'ls', cwd: 'missing-dir' })).ok).toBe(false);
  });
});

describe('backend role', () => {
  it('creates a venv, runs python in it, installs a local wheel offline, keeps requirements sorted, and observes it all', async () => {
    const w = await world('backend');
    await w.write({ 'app.py': 'print("app")\n', 'pkg/util.py': 'X = 1\n', 'requirements.txt': '# web\nrequests>=2\nflask\n' });

    const created = await w.act('create_venv');
    expect(created.ok, created.output).toBe(true);
    expect(w.knowledge.values.venv_path).toBe('.venv');
    expect(w.knowledge.values.python_version).toMatch(/^3\.\d+\.\d+$/);
    const again = await w.act('create_venv', { path: './.venv/' });
    expect(again).toMatchObject({ ok: true, output: `virtualenv already exists at .venv and works (Python ${w.knowledge.values.python_version}, pip runs)` });

    const prefix = await w.act('run_python', { code: 'import sys; print(sys.prefix)' });
    expect(prefix.ok).toBe(true);
    expect(prefix.output).toContain(join(w.sandbox.workspace, '.venv'));

    const built = await w.act('run_python', { code: MAKE_WHEEL });
    expect(built.ok, built.output).toBe(true);
    const installed = await w.act('install_dependency', { package: 'dist/hello_codegod-0.1.0-py3-none-any.whl' });
    expect(installed.ok, installed.output).toBe(true);
    expect(installed.output).toContain('.venv/bin/pip install ./dist/hello_codegod-0.1.0-py3-none-any.whl');
    const imported = await w.act('run_python', { code: 'import hello_codegod; print(hello_codegod.greet())' });
    expect(imported.output).toContain('hello from codegod');

    const missingWheel = await w.act('install_dependency', { package: 'dist/nothing-1.0-py3-none-any.whl' });
    expect(missingWheel).toMatchObject({ ok: false });
    expect(missingWheel.output).toMatch(/no such file/);
    const injected = await w.act('install_dependency', { package: '--index-url=http://example.invalid/simple' });
    expect(injected.ok).toBe(false);
    expect(injected.output).toMatch(/options are not accepted/);

    const reqs = await w.act('update_requirements', { packages: ['Flask==3.0.0', 'hello-codegod', 'requests>=2'] });
    expect(reqs.ok).toBe(true);
    expect(await w.sandbox.readFile('requirements.txt')).toBe('# web\nFlask==3.0.0\nhello-codegod\nrequests>=2\n');
    expect(reqs.output).toMatch(/added hello-codegod; updated Flask==3\.0\.0/);

    const script = await w.act('run_python', { file: 'app.py' });
    expect(script).toMatchObject({ ok: true, exitCode: 0 });
    const noScript = await w.act('run_python', { file: 'nope.py' });
    expect(noScript).toMatchObject({ ok: false });

    const seen = await w.observe();
    expect(seen.facts).toMatchObject({
      venv_exists: true,
      venv_path: '.venv',
      python_version: w.knowledge.values.python_version,
      entry_points: ['app.py'],
      requirements_file: ['Flask==3.0.0', 'hello-codegod', 'requests>=2'],
      requirements_missing: ['Flask==3.0.0', 'requests>=2'],
    });
    expect(seen.facts.installed_packages).toContain('hello_codegod==0.1.0');
    expect(seen.facts.python_files).toEqual(expect.arrayContaining(['app.py', 'pkg/util.py']));
    expect(seen.findings).toContain('Virtual environment: exists at .venv');
    expect(seen.findings.join('\n')).toMatch(/Required but not installed: Flask==3\.0\.0, requests>=2/);
  });

  it('observes a workspace without a venv and refuses to install into none', async () => {
    const w = await world('backend');
    const install = await w.act('install_dependency', { package: 'flask' });
    expect(install.ok).toBe(false);
    expect(install.output).toMatch(/no virtualenv found.*create_venv/);
    const seen = await w.observe();
    expect(seen.facts).toMatchObject({ venv_exists: false, requirements_file: null, installed_packages: null, entry_points: [] });
    expect(seen.facts.python_version).toMatch(/^3\.\d+/);
  });
});

describe('crash-consistent actions: what a killed step left is found and redone', () => {
  it('rebuilds a venv left without pip by a killed `python3 -m venv`, and reinstalls a package a killed pip left half-installed', async () => {
    const w = await world('backend');
    // What a kill inside `python3 -m venv` leaves: pyvenv.cfg and an interpreter, no pip yet.
    expect((await w.act('run_command', { command: 'python3', args: ['-m', 'venv', '--without-pip', '.venv'] })).ok).toBe(true);
    expect(await w.verify()).toEqual([expect.stringMatching(/^the virtualenv at \.venv does not work: its interpreter or pip does not run/)]);
    const rebuilt = await w.act('create_venv');
    expect(rebuilt.ok, rebuilt.output).toBe(true);
    expect(rebuilt.output).toMatch(/^virtualenv at \.venv was broken \(its interpreter or pip does not run.*\); rebuilt it/);
    expect(await w.verify()).toEqual([]);

    expect((await w.act('run_python', { code: MAKE_WHEEL })).ok).toBe(true);
    const wheel = { package: 'dist/hello_codegod-0.1.0-py3-none-any.whl' };
    expect((await w.act('install_dependency', wheel)).ok).toBe(true);
    // What a kill inside pip can leave: the package's metadata, some of its files gone.
    const cut = await w.act('run_python', { code: 'import os, hello_codegod; os.remove(hello_codegod.__file__); print("cut")' });
    expect(cut.ok, cut.output).toBe(true);
    expect(await w.verify()).toEqual([expect.stringMatching(/hello_codegod: 1 installed file\(s\) missing, e\.g\. hello_codegod\/__init__\.py/)]);
    const again = await w.act('install_dependency', wheel);
    expect(again.ok, again.output).toBe(true);
    expect(again.output).toMatch(/^hello-codegod was installed incompletely .*; reinstalled it/);
    expect((await w.act('run_python', { code: 'import hello_codegod; print(hello_codegod.greet())' })).output).toContain('hello from codegod');
    expect(await w.verify()).toEqual([]);
  }, 120_000);

  it('starts an npm install over when node_modules is what an interrupted one left, and finds a tree with holes', async () => {
    const w = await world('frontend');
    await w.write({
      'package.json': '{"name": "web", "version": "1.0.0"}\n',
      'local-lib/package.json': '{"name": "local-lib", "version": "1.0.0", "main": "index.js"}\n',
      'local-lib/index.js': 'module.exports = () => 42;\n',
    });
    expect((await w.act('npm_install', { packages: ['file:local-lib'] })).ok).toBe(true);
    expect(await w.verify()).toEqual([]);
    // npm writes its hidden lockfile last: without it, the install did not finish.
    expect((await w.act('run_command', { command: 'rm', args: ['node_modules/.package-lock.json'] })).ok).toBe(true);
    expect(await w.verify()).toEqual([expect.stringMatching(/an npm install there did not finish; run npm_install again/)]);
    const again = await w.act('npm_install');
    expect(again.ok, again.output).toBe(true);
    expect(again.output).toMatch(/^node_modules was left by an install that did not finish; removed it/);
    expect(await w.verify()).toEqual([]);
    expect((await w.act('run_command', { command: 'rm', args: ['node_modules/local-lib'] })).ok).toBe(true);
    expect(await w.verify()).toEqual([expect.stringMatching(/npm ls finds the installed tree incomplete: .*missing: local-lib/)]);
  }, 120_000);
});

describe('frontend role', () => {
  it('installs a local file: package offline, edits package.json, checks the entry point and builds', async () => {
    const w = await world('frontend');
    await w.write({
      'package.json': '{"name": "web", "version": "1.0.0"}\n',
      'local-lib/package.json': '{"name": "local-lib", "version": "1.0.0", "main": "index.js"}\n',
      'local-lib/index.js': 'module.exports = () => 42;\n',
      'build.js': 'require("fs").mkdirSync("dist", { recursive: true }); require("fs").writeFileSync("dist/out.js", "ok"); console.log("built", require("local-lib")());\n',
    });

    const installed = await w.act('npm_install', { packages: ['file:local-lib'] });
    expect(installed.ok, installed.output).toBe(true);
    expect(await w.sandbox.exists('node_modules/local-lib')).toBe(true);
    expect(JSON.parse(await w.sandbox.readFile('package.json')).dependencies).toEqual({ 'local-lib': 'file:local-lib' });
    expect(w.knowledge.values.package_manager).toBe('npm');
    expect((await w.act('npm_install', { packages: ['file:missing-lib'] })).ok).toBe(false);

    const noBuild = await w.act('build_frontend');
    expect(noBuild.ok).toBe(false);
    expect(noBuild.output).toMatch(/no "build" script/);

    const updated = await w.act('update_package_json', {
      set: { main: 'src/index.js', 'scripts.build': 'node build.js', 'scripts.test': 'node --test', private: true },
    });
    expect(updated.ok, updated.output).toBe(true);
    const manifest = JSON.parse(await w.sandbox.readFile('package.json'));
    expect(manifest).toMatchObject({ name: 'web', main: 'src/index.js', private: true, scripts: { build: 'node build.js', test: 'node --test' } });
    const conflict = await w.act('update_package_json', { set: { 'main.file': 'x' } });
    expect(conflict.ok).toBe(false);
    expect(conflict.output).toMatch(/main is string, not an object/);

    await w.write({ 'index.js': 'module.exports = 1;\n' });
    const missing = await w.act('check_entry_point');
    expect(missing.ok).toBe(false);
    expect(missing.output).toMatch(/main: src\/index\.js → MISSING/);
    expect(missing.output).toMatch(/candidates: index\.js/);
    await w.write({ 'src/index.js': 'console.log("hi");\n' });
    const found = await w.act('check_entry_point');
    expect(found.ok, found.output).toBe(true);
    expect(w.knowledge.values.entry_point).toBe('src/index.js');

    const build = await w.act('build_frontend');
    expect(build.ok, build.output).toBe(true);
    expect(build.output).toContain('built 42');
    expect(w.knowledge.values.build_command).toBe('npm run build');
    expect(await w.sandbox.exists('dist/out.js')).toBe(true);
    const unknown = await w.act('npm_run', { script: 'lint' });
    expect(unknown.ok).toBe(false);
    expect(unknown.output).toMatch(/no "lint" script \(scripts: build, test\)/);

    const seen = await w.observe();
    expect(seen.facts).toMatchObject({
      node_modules_present: true,
      dependencies_not_installed: [],
      src_files: ['src/index.js'],
      package_json: { name: 'web', main: 'src/index.js', dependencies: { 'local-lib': 'file:local-lib' } },
      entry_point: { ok: true },
    });
    expect(seen.facts.node_version).toMatch(/^v\d+/);
    expect(seen.facts.npm_version).toMatch(/^\d+\.\d+/);
  });

  it('observes a project whose dependencies are not installed and whose entry point is missing', async () => {
    const w = await world('frontend');
    await w.write({ 'package.json': JSON.stringify({ name: 'x', main: 'lib/main.js', dependencies: { react: '^18' } }), 'src/index.js': '' });
    const seen = await w.observe();
    expect(seen.facts).toMatchObject({ node_modules_present: false, dependencies_not_installed: ['react'], entry_point: { ok: false, candidates: ['src/index.js'] } });
    expect(seen.findings).toContain('node_modules: missing');
  });
});

describe('testing role', () => {
  it('detects unittest in a venv without pytest and counts passes and failures', async () => {
    const w = await world('testing');
    const venv = await w.act('run_command', { command: 'python3', args: ['-m', 'venv', '--without-pip', '.venv'] });
    expect(venv.ok, venv.output).toBe(true);
    await w.knowledge.set('venv_path', '.venv');
    await w.write({ 'tests/test_math.py': UNITTEST_FILE(false) });

    const failing = await w.act('run_tests');
    expect(failing.ok).toBe(false);
    expect(failing.output).toMatch(/^tests FAILED: 1 passed, 1 failed \[unittest: 1 passed, 1 failed\]/);
    expect(failing.output).toContain(".venv/bin/python -m unittest discover -s tests -p 'test*.py'");

    await w.write({ 'tests/test_math.py': UNITTEST_FILE(true) });
    const passing = await w.act('run_tests', { framework: 'unittest', path: 'tests/test_math.py' });
    expect(passing.ok, passing.output).toBe(true);
    expect(passing.output).toMatch(/^tests passed: 2 passed, 0 failed/);
    expect(w.knowledge.values.test_command_unittest).toMatch(/ -m unittest tests\/test_math\.py$/);

    const pytest = await w.act('run_tests', { framework: 'pytest' });
    expect(pytest.ok).toBe(false);
    expect(pytest.output).toMatch(/pytest is not importable by \.venv\/bin\/python/);

    const seen = await w.observe();
    expect(seen.facts).toMatchObject({ python_test_files: ['tests/test_math.py'], venv_path: '.venv', venv_in_knowledge: '.venv', pytest_importable: false });
    expect(seen.facts.frameworks_available).toEqual(expect.arrayContaining(['unittest', 'node']));
  });

  it('auto-detects pytest when the system python has it, else unittest, with the same counts', async () => {
    const w = await world('testing');
    await w.write({ 'test_math.py': UNITTEST_FILE(false) });
    const probe = await w.act('run_command', { command: 'python3', args: ['-c', 'import pytest'] });
    const result = await w.act('run_tests');
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(new RegExp(`^tests FAILED: 1 passed, 1 failed \\[${probe.ok ? 'pytest' : 'unittest'}: `));
  });

  it('runs node --test and npm test, counting passes and failures', async () => {
    const w = await world('testing');
    await w.write({ 'math.test.mjs': NODE_TEST_FILE, 'package.json': JSON.stringify({ name: 'x', scripts: { test: 'echo "Error: no test specified" && exit 1' } }) });
    const node = await w.act('run_tests');
    expect(node.ok).toBe(false);
    expect(node.output).toMatch(/^tests FAILED: 1 passed, 1 failed \[node: 1 passed, 1 failed\]/);

    await w.write({ 'math.test.mjs': NODE_TEST_FILE.replace('7', '6') });
    const fixed = await w.act('run_tests', { framework: 'node' });
    expect(fixed.ok, fixed.output).toBe(true);
    expect(fixed.output).toMatch(/^tests passed: 2 passed, 0 failed/);

    await w.write({ 'package.json': JSON.stringify({ name: 'x', scripts: { test: 'node --test --test-reporter=tap' } }) });
    const npm = await w.act('run_tests');
    expect(npm.ok, npm.output).toBe(true);
    expect(npm.output).toMatch(/\[npm: 2 passed, 0 failed\]/);

    const seen = await w.observe();
    expect(seen.facts).toMatchObject({ js_test_files: ['math.test.mjs'], package_json_test_script: 'node --test --test-reporter=tap' });
    expect(seen.facts.frameworks_available).toContain('npm');
  });

  it('reports when there are no tests at all', async () => {
    const w = await world('testing');
    const none = await w.act('run_tests');
    expect(none).toMatchObject({ ok: false });
    expect(none.output).toMatch(/no tests found/);
  });

  it('checks syntax of python, javascript and json, and says what it cannot check', async () => {
    const w = await world('testing');
    await w.write({
      'good.py': 'def f():\n    return 1\n',
      'bad.py': 'def f(:\n',
      'good.mjs': 'export const x = 1;\n',
      'bad.js': 'function (\n',
      'bad.json': '{"a": }',
      'app.ts': 'const x: number = 1;\n',
    });
    const good = await w.act('check_syntax', { paths: ['good.py', 'good.mjs'] });
    expect(good.ok, good.output).toBe(true);
    const bad = await w.act('check_syntax', { paths: ['good.py', 'bad.py', 'bad.js', 'bad.json', 'app.ts', 'missing.py'] });
    expect(bad.ok).toBe(false);
    expect(bad.output).toMatch(/^5 of 6 not ok/);
    expect(bad.output).toMatch(/^OK good\.py$/m);
    expect(bad.output).toMatch(/^ERROR bad\.py: [\s\S]*SyntaxError/m);
    expect(bad.output).toMatch(/^ERROR bad\.js: [\s\S]*SyntaxError/m);
    expect(bad.output).toMatch(/^ERROR bad\.json: invalid JSON/m);
    expect(bad.output).toMatch(/^NOT CHECKED app\.ts: TypeScript is not installed/m);
    expect(bad.output).toMatch(/^ERROR missing\.py: no such file$/m);
  });

  it('validates command output, triages errors and asks for follow-up work', async () => {
    const w = await world('testing');
    const valid = await w.act('validate_output', { command: 'node', args: ['-e', 'console.log("server ready")'], expect_contains: 'ready' });
    expect(valid.ok, valid.output).toBe(true);
    const wrong = await w.act('validate_output', { command: 'node', args: ['-e', 'process.exit(3)'], expect_exit: 0, expect_contains: ['ready'] });
    expect(wrong.ok).toBe(false);
    expect(wrong.output).toMatch(/FAIL exit code 0 \(got 3\)/);
    expect(wrong.output).toMatch(/FAIL output contains "ready"/);

    // A module no interpreter here has, so the failure does not depend on what is installed.
    await w.write({ 'test_app.py': 'import frobnicate_codegod\n' });
    const run = await w.act('run_tests', { framework: 'unittest' });
    expect(run.ok).toBe(false);
    const triage = await w.act('debug_error', { output: run.output });
    expect(triage.ok).toBe(true);
    const parsed = JSON.parse(triage.output) as ErrorTriage;
    expect(parsed.missing_python_modules).toEqual(['frobnicate_codegod']);
    expect(parsed.locations).toContainEqual({ file: 'test_app.py', line: 1 });
    expect(parsed.suggestions[0]).toMatch(/^backend: install_dependency frobnicate_codegod/);

    const followup = await w.act('report_followup', { role: 'backend', title: 'Install flask', description: 'tests fail: No module named flask', rerun: true });
    expect(followup).toMatchObject({ ok: true, followups: [{ role: 'backend', title: 'Install flask', description: 'tests fail: No module named flask', rerun: true }] });
  });
});

describe('devops role', () => {
  it('writes a non-root Dockerfile and merges env files without echoing values', async () => {
    const w = await world('devops');
    const made = await w.act('create_dockerfile', {
      base_image: 'python:3.11-slim',
      copy: ['requirements.txt', { src: 'app', dest: 'app/' }],
      install: ['pip install --no-cache-dir -r requirements.txt'],
      cmd: ['python', 'app/main.py'],
      expose: [8000],
    });
    expect(made.ok, made.output).toBe(true);
    expect(w.knowledge.values.ports).toBe('8000');
    expect(await w.sandbox.readFile('Dockerfile')).toBe(
      [
        'FROM python:3.11-slim',
        'WORKDIR /app',
        'COPY --chown=10001:10001 requirements.txt .',
        'COPY --chown=10001:10001 app app/',
        'RUN pip install --no-cache-dir -r requirements.txt',
        'USER 10001:10001',
        'EXPOSE 8000',
        'CMD ["python","app/main.py"]',
        '',
      ].join('\n'),
    );
    expect((await w.act('create_dockerfile', { base_image: 'python:3.11', cmd: ['x'], install: ['echo a\nrm -rf /'] })).ok).toBe(false);

    await w.write({ '.env': '# settings\nDEBUG=1\nPORT=3000\n' });
    const env = await w.act('setup_env', { vars: { PORT: '8000', SECRET_KEY: 's3cr3t value' } });
    expect(env.ok, env.output).toBe(true);
    expect(env.output).not.toContain('s3cr3t');
    expect(env.output).toMatch(/added SECRET_KEY; updated PORT/);
    expect(await w.sandbox.readFile('.env')).toBe("# settings\nDEBUG=1\nPORT=8000\nSECRET_KEY='s3cr3t value'\n");
    expect((await w.act('setup_env', { vars: { lower: 'x' } })).ok).toBe(false);
    expect((await w.act('setup_env', { vars: { KEY: 'two\nlines' } })).ok).toBe(false);

    await w.write({ 'docker-compose.yml': 'services:\n  web:\n    build: .\n    ports:\n      - "8080:8000"\n    environment:\n      - A=1\n' });
    const seen = await w.observe();
    expect(seen.facts).toMatchObject({
      dockerfiles: ['Dockerfile'],
      compose_files: ['docker-compose.yml'],
      env_files: { '.env': ['DEBUG', 'PORT', 'SECRET_KEY'] },
      exposed_ports: { Dockerfile: ['8000'], 'docker-compose.yml': ['8080:8000'] },
      dockerfiles_running_as_root: [],
      docker_endpoint_configured: false,
    });
    expect(JSON.stringify(seen)).not.toContain('s3cr3t');
  });

  it('fails image, container and deploy actions without a Docker endpoint, running nothing', async () => {
    const w = await world('devops');
    await w.write({ Dockerfile: 'FROM scratch\n', 'docker-compose.yml': 'services: {}\n' });
    for (const [action, params] of [
      ['build_image', { tag: 'app:1' }],
      ['run_container', { image: 'app:1', ports: ['8080:80'] }],
      ['deploy', { target: 'docker-compose.yml' }],
    ] as const) {
      expect(await w.act(action, params)).toEqual({ ok: false, output: NO_DOCKER_ENDPOINT });
    }
    expect(w.sink.entries.filter((e) => e.type === 'command' || e.type === 'command.refused')).toEqual([]);
  });

  it('runs docker against the configured endpoint through the sandbox', async () => {
    const host = 'tcp://127.0.0.1:9';
    const w = await world('devops', { dockerHost: host });
    await w.write({ Dockerfile: 'FROM scratch\n' });
    const built = await w.act('build_image', { tag: 'app:1' });
    // Nothing listens on the endpoint: the command runs and fails.
    expect(built.ok).toBe(false);
    const ran = await w.act('run_container', { image: 'app:1', name: 'web', ports: ['8080:80'] });
    expect(ran.ok).toBe(false);
    const commands = w.sink.entries.filter((e) => e.type === 'command');
    expect(commands.map((e) => (e.type === 'command' ? [e.command, ...e.args] : []))).toEqual([
      ['docker', '-H', host, 'build', '-t', 'app:1', '.'],
      ['docker', '-H', host, 'run', '-d', '--name', 'web', '-p', '8080:80', 'app:1'],
    ]);
  });
});
