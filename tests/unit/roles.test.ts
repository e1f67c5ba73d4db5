import { describe, expect, it } from 'vitest';
import { ROLE_CATALOGUE } from '../../shared/domain/role-catalogue.js';
import { ROLES, type Role } from '../../shared/domain/roles.js';
import type { RunResult } from '../../shared/sandbox/sandbox.js';
import { commandResult, formatCommandLine, renderRunResult } from '../../workers/actions/command.js';
import { isLocalPackagePath, mergeRequirements, normalizePackageName, requirementEntries } from '../../workers/roles/backend.js';
import { composePorts, dockerfilePorts, envFileKeys, envValue, mergeEnvFile, renderDockerfile, DockerfileSchema } from '../../workers/roles/devops.js';
import { hasRealTestScript, PackageJsonSchema, setDotted } from '../../workers/roles/frontend.js';
import { ROLE_DEFINITIONS, roleDefinition } from '../../workers/roles/index.js';
import { commonDir, parseTestCounts, triageErrorOutput } from '../../workers/roles/testing.js';

/** Every role's actions as the product defines them, plus the file actions, run_command and record_knowledge all roles share. */
const COMMON = ['read_file', 'write_file', 'list_files', 'check_file_exists', 'run_command', 'record_knowledge'];
const PRODUCT_ACTIONS: Record<Role, string[]> = {
  backend: ['install_dependency', 'check_file_exists', 'run_command', 'update_requirements', 'create_venv', 'run_python'],
  frontend: ['npm_install', 'npm_run', 'update_package_json', 'check_entry_point', 'build_frontend'],
  devops: ['create_dockerfile', 'build_image', 'run_container', 'setup_env', 'deploy'],
  testing: ['run_tests', 'validate_output', 'check_syntax', 'debug_error', 'report_followup'],
};

const MB = 'x'.repeat(1024 * 1024);
const many = (n: number, v: unknown = 'a') => Array.from({ length: n }, () => v);

function check(role: Role, action: string, params: unknown) {
  return roleDefinition(role).actions.check({ action, params });
}

describe('role catalogue', () => {
  it.each(ROLES)('%s has exactly the product actions plus the shared ones', (role) => {
    expect(new Set(roleDefinition(role).actions.names)).toEqual(new Set([...PRODUCT_ACTIONS[role], ...COMMON]));
  });

  it.each(ROLES)('%s: the planner\'s catalogue lists exactly the actions its workers run', (role) => {
    expect(roleDefinition(role).actions.names).toEqual(ROLE_CATALOGUE[role].actions);
    expect(roleDefinition(role).specialization).toBe(ROLE_CATALOGUE[role].specialization);
  });

  it.each(ROLES)('%s: a specialization, a one-line description for every action, and a catalogue naming them all', (role) => {
    const def = ROLE_DEFINITIONS[role];
    expect(def.role).toBe(role);
    expect(def.specialization.length).toBeGreaterThan(10);
    for (const action of def.actions.actions) {
      expect(action.description.length, action.name).toBeGreaterThan(20);
      expect(action.description.length, action.name).toBeLessThanOrEqual(300);
      expect(action.description, action.name).not.toContain('\n');
    }
    const catalogue = def.actions.describe();
    for (const name of def.actions.names) expect(catalogue).toContain(`- ${name}: `);
  });

  it('refuses unknown actions and non-object params', () => {
    expect(check('backend', 'npm_install', {})).toMatchObject({ ok: false, problem: expect.stringMatching(/unknown action 'npm_install'/) });
    expect(check('backend', 'read_file', 42)).toMatchObject({ ok: false });
  });
});

type Case = [role: Role, action: string, params: unknown];

const REJECTED: [string, Case[]][] = [
  [
    'file actions',
    [
      ['backend', 'read_file', { path: 42 }],
      ['backend', 'read_file', {}],
      ['backend', 'read_file', { path: MB }],
      ['frontend', 'write_file', { path: 'a.txt' }],
      ['frontend', 'write_file', { path: 'a.txt', content: 'x'.repeat(1_000_001) }],
      ['frontend', 'write_file', { path: 'a.txt', content: { text: 'x' } }],
      ['devops', 'list_files', { depth: 'deep' }],
      ['devops', 'list_files', { depth: 100 }],
      ['testing', 'check_file_exists', { path: '' }],
    ],
  ],
  [
    'run_command',
    [
      ['backend', 'run_command', { command: 'npm install' }],
      ['backend', 'run_command', { command: '-rf' }],
      ['backend', 'run_command', { command: 'ls', args: '-la' }],
      ['backend', 'run_command', { command: 'ls', args: [MB] }],
      ['backend', 'run_command', { command: 'ls', args: many(201) }],
      ['backend', 'run_command', { command: 'ls', args: many(20, 'y'.repeat(4_000)) }],
      ['backend', 'run_command', { command: 'ls', timeout_ms: -1 }],
      ['backend', 'run_command', { command: 'ls', timeout_ms: 1e9 }],
      ['backend', 'run_command', { command: MB }],
    ],
  ],
  [
    'backend',
    [
      ['backend', 'create_venv', { path: '--system-site-packages' }],
      ['backend', 'create_venv', { path: 'my venv' }],
      ['backend', 'create_venv', { path: MB }],
      ['backend', 'install_dependency', { package: '-r requirements.txt' }],
      ['backend', 'install_dependency', { package: '--index-url=http://example.invalid' }],
      ['backend', 'install_dependency', { package: ' -e .' }],
      ['backend', 'install_dependency', { package: 'flask; os_name == "nt"' }],
      ['backend', 'install_dependency', { package: 'git+https://example.invalid/x.git' }],
      ['backend', 'install_dependency', { package: '../outside/pkg.whl' }],
      ['backend', 'install_dependency', { package: 'flask', venv: '--user' }],
      ['backend', 'install_dependency', { package: MB }],
      ['backend', 'install_dependency', { package: 42 }],
      ['backend', 'update_requirements', { packages: 'flask' }],
      ['backend', 'update_requirements', { packages: [] }],
      ['backend', 'update_requirements', { packages: ['-e .'] }],
      ['backend', 'update_requirements', { packages: ['dist/x-1.0-py3-none-any.whl'] }],
      ['backend', 'update_requirements', { packages: many(101, 'flask') }],
      ['backend', 'run_python', {}],
      ['backend', 'run_python', { code: 'print(1)', file: 'a.py' }],
      ['backend', 'run_python', { file: '-c' }],
      ['backend', 'run_python', { code: MB }],
      ['backend', 'run_python', { code: 'print(1)', args: [MB] }],
    ],
  ],
  [
    'frontend',
    [
      ['frontend', 'npm_install', { packages: ['--registry=http://example.invalid'] }],
      ['frontend', 'npm_install', { packages: ['-g', 'left-pad'] }],
      ['frontend', 'npm_install', { packages: ['file:../outside'] }],
      ['frontend', 'npm_install', { packages: ['https://example.invalid/x.tgz'] }],
      ['frontend', 'npm_install', { packages: ['react; rm -rf /'] }],
      ['frontend', 'npm_install', { packages: 'react' }],
      ['frontend', 'npm_install', { dev: 'yes' }],
      ['frontend', 'npm_install', { packages: [MB] }],
      ['frontend', 'npm_install', { packages: many(51, 'react') }],
      ['frontend', 'npm_run', { script: '--prefix=/' }],
      ['frontend', 'npm_run', { script: 'build && rm' }],
      ['frontend', 'npm_run', { script: 'build', args: [MB] }],
      ['frontend', 'update_package_json', { set: {} }],
      ['frontend', 'update_package_json', { set: 'main=src/index.js' }],
      ['frontend', 'update_package_json', { set: { '__proto__.polluted': true } }],
      ['frontend', 'update_package_json', { set: { 'scripts.constructor': 'x' } }],
      ['frontend', 'update_package_json', { set: { 'a..b': 1 } }],
      ['frontend', 'update_package_json', { set: { main: 'x'.repeat(200_000) } }],
      ['frontend', 'update_package_json', { set: { [MB]: 1 } }],
      ['frontend', 'check_entry_point', 42],
      ['frontend', 'build_frontend', 'now'],
    ],
  ],
  [
    'devops',
    [
      ['devops', 'create_dockerfile', { base_image: 'python:3.11; rm -rf /', cmd: ['x'] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: [] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: 'python app.py' }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: ['x'], expose: [70_000] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: ['x'], install: ['pip install x\nUSER root'] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: ['x'], copy: ['../secrets'] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: ['x'], copy: ['/etc/passwd'] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: ['x'], copy: [{ src: '.', dest: 'a b' }] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: ['x'], workdir: 'app' }],
      ['devops', 'create_dockerfile', { base_image: MB, cmd: ['x'] }],
      ['devops', 'create_dockerfile', { base_image: 'python', cmd: [MB] }],
      ['devops', 'setup_env', { vars: { lower_case: 'x' } }],
      ['devops', 'setup_env', { vars: { '1ABC': 'x' } }],
      ['devops', 'setup_env', { vars: { KEY: 'two\nlines' } }],
      ['devops', 'setup_env', { vars: {} }],
      ['devops', 'setup_env', { vars: { KEY: MB } }],
      ['devops', 'setup_env', { vars: { KEY: 1 } }],
      ['devops', 'build_image', { tag: 'Bad Tag' }],
      ['devops', 'build_image', { tag: 'app:1', context: '--file=/etc/passwd' }],
      ['devops', 'run_container', { image: '--privileged' }],
      ['devops', 'run_container', { image: 'app', name: '--privileged' }],
      ['devops', 'run_container', { image: 'app', ports: ['99999:80'] }],
      ['devops', 'run_container', { image: 'app', ports: ['-v/:/host'] }],
      ['devops', 'deploy', { target: '--help.yml' }],
      ['devops', 'deploy', { target: 'compose.txt' }],
      ['devops', 'deploy', {}],
    ],
  ],
  [
    'testing',
    [
      ['testing', 'run_tests', { framework: 'jest' }],
      ['testing', 'run_tests', { path: '--collect-only' }],
      ['testing', 'run_tests', { path: MB }],
      ['testing', 'check_syntax', { paths: [] }],
      ['testing', 'check_syntax', { paths: ['-x'] }],
      ['testing', 'check_syntax', { paths: many(51, 'a.py') }],
      ['testing', 'validate_output', { command: 'ls', expect_exit: 'zero' }],
      ['testing', 'validate_output', { command: 'ls', expect_exit: 256 }],
      ['testing', 'validate_output', { command: 'ls', expect_contains: MB }],
      ['testing', 'validate_output', { command: 'ls', expect_contains: many(21, 'a') }],
      ['testing', 'validate_output', { command: 'ls -la' }],
      ['testing', 'debug_error', { output: '' }],
      ['testing', 'debug_error', { output: 'x'.repeat(1_000_001) }],
      ['testing', 'report_followup', { role: 'master', title: 't', description: 'd', rerun: true }],
      ['testing', 'report_followup', { role: 'backend', title: '', description: 'd', rerun: true }],
      ['testing', 'report_followup', { role: 'backend', title: 't', description: 'd' }],
      ['testing', 'report_followup', { role: 'backend', title: 't', description: MB, rerun: false }],
    ],
  ],
];

const ACCEPTED: Case[] = [
  ['backend', 'read_file', { path: 'app.py', unknown: 'stripped' }],
  ['backend', 'run_command', { command: 'python3', args: ['-m', 'pytest'], cwd: 'api', timeout_ms: 5_000 }],
  ['backend', 'run_command', { command: '.venv/bin/flask', args: ['routes'] }],
  ['backend', 'create_venv', {}],
  ['backend', 'install_dependency', { package: 'flask==3.0.0' }],
  ['backend', 'install_dependency', { package: 'uvicorn[standard]>=0.30,<1' }],
  ['backend', 'install_dependency', { package: './dist/x-1.0-py3-none-any.whl', venv: 'venv' }],
  ['backend', 'install_dependency', { package: 'vendor/localpkg' }],
  ['backend', 'update_requirements', { packages: ['Flask>=3', 'SQLAlchemy==2.0.30'] }],
  ['backend', 'run_python', { code: 'import flask', args: ['--flag-for-the-script'] }],
  ['frontend', 'npm_install', {}],
  ['frontend', 'npm_install', { packages: ['react@^18.2.0', '@types/node', 'file:local-lib', './vendored', 'webpack@>=5 <6'], dev: true }],
  ['frontend', 'npm_run', { script: 'test:unit', args: ['--watch=false'] }],
  ['frontend', 'update_package_json', { set: { main: 'src/index.js', 'scripts.test': 'node --test', 'exports.import': null, private: true } }],
  ['frontend', 'check_entry_point', {}],
  ['devops', 'create_dockerfile', { base_image: 'ghcr.io/acme/api:1.2.3', cmd: ['node', 'server.js'], copy: ['package.json', { src: 'src', dest: 'src/' }], expose: [3000] }],
  ['devops', 'setup_env', { file: 'deploy/.env.production', vars: { DATABASE_URL: 'postgres://db/app', DEBUG: '' } }],
  ['devops', 'build_image', { tag: 'localhost:5000/app:dev', context: 'backend' }],
  ['devops', 'run_container', { image: 'app:1', name: 'web-1', ports: ['8080:80', '9000'] }],
  ['devops', 'deploy', { target: 'docker-compose.yml' }],
  ['testing', 'run_tests', { framework: 'node', path: 'tests' }],
  ['testing', 'check_syntax', { paths: ['app.py', 'src/index.js', 'src/main.ts'] }],
  ['testing', 'validate_output', { command: 'curl', args: ['-s', 'http://127.0.0.1:5000/health'], expect_contains: ['ok'] }],
  ['testing', 'debug_error', { output: 'Traceback ...' }],
  ['testing', 'report_followup', { role: 'frontend', title: 'Fix main', description: 'main points at a missing file', rerun: false }],
];

describe('action parameter schemas', () => {
  for (const [group, cases] of REJECTED) {
    it.each(cases)(`${group}: %s %s rejects %j`, (role, action, params) => {
      expect(check(role, action, params).ok).toBe(false);
    });
  }

  it.each(ACCEPTED)('%s %s accepts %j', (role, action, params) => {
    const checked = check(role, action, params);
    expect(checked.ok, checked.ok ? '' : checked.problem).toBe(true);
  });

  it('fills defaults and strips unknown fields', () => {
    expect(check('testing', 'list_files', { extra: 1 })).toMatchObject({ ok: true, params: { path: '.' } });
    expect(check('testing', 'run_tests', {})).toMatchObject({ ok: true, params: { framework: 'auto' } });
    expect(check('backend', 'create_venv', {})).toMatchObject({ ok: true, params: { path: '.venv' } });
    expect(check('devops', 'setup_env', { vars: { A: '1' } })).toMatchObject({ ok: true, params: { file: '.env' } });
    const read = check('backend', 'read_file', { path: 'a', extra: 1 });
    expect(read.ok && read.params).toEqual({ path: 'a' });
  });

  it('names the problem so the LLM can fix its plan', () => {
    const injected = check('backend', 'install_dependency', { package: '--pre' });
    expect(!injected.ok && injected.problem).toMatch(/package: pip options are not accepted/);
    const spaced = check('backend', 'run_command', { command: 'npm install' });
    expect(!spaced.ok && spaced.problem).toMatch(/put them in args/);
  });
});

describe('requirements', () => {
  it('merges, replaces by normalised name, sorts and keeps options and comments first', () => {
    const merged = mergeRequirements('# app\n-r base.txt\nrequests>=2  # http\n\nFlask_SQLAlchemy\nflask\n', ['flask==3.0.0', 'flask-sqlalchemy', 'Alembic']);
    expect(merged.text).toBe('# app\n-r base.txt\nAlembic\nflask==3.0.0\nflask-sqlalchemy\nrequests>=2  # http\n');
    expect(merged.added).toEqual(['Alembic']);
    expect(merged.updated).toEqual(['flask==3.0.0', 'flask-sqlalchemy']);
    expect(mergeRequirements('', ['b', 'a', 'b'])).toEqual({ text: 'a\nb\n', added: ['b', 'a'], updated: [] });
  });

  it('reads requirement entries and package names the way pip does', () => {
    expect(requirementEntries('# c\n-e .\nflask==3  # web\n\nrequests\n')).toEqual(['flask==3', 'requests']);
    expect(normalizePackageName('Flask_SQLAlchemy>=3')).toBe('flask-sqlalchemy');
    expect(normalizePackageName('zope.interface')).toBe('zope-interface');
    expect(isLocalPackagePath('dist/x.whl')).toBe(true);
    expect(isLocalPackagePath('x-1.0.tar.gz')).toBe(true);
    expect(isLocalPackagePath('flask==3.0')).toBe(false);
  });
});

describe('package.json', () => {
  it('sets and removes dotted paths, creating objects but never overwriting a non-object', () => {
    const pkg: Record<string, unknown> = { name: 'x', scripts: { build: 'webpack' }, files: ['a'] };
    expect(setDotted(pkg, 'scripts.test', 'node --test')).toBeNull();
    expect(setDotted(pkg, 'config.port.http', 8080)).toBeNull();
    expect(setDotted(pkg, 'scripts.build', null)).toBeNull();
    expect(setDotted(pkg, 'missing.deep', null)).toBeNull();
    expect(pkg).toEqual({ name: 'x', scripts: { test: 'node --test' }, files: ['a'], config: { port: { http: 8080 } } });
    expect(setDotted(pkg, 'name.first', 'y')).toMatch(/name is string, not an object/);
    expect(setDotted(pkg, 'files.0', 'b')).toMatch(/files is an array/);
  });

  it('tells a real test script from the npm init placeholder and tolerates malformed fields', () => {
    expect(hasRealTestScript(PackageJsonSchema.parse({ scripts: { test: 'echo "Error: no test specified" && exit 1' } }))).toBe(false);
    expect(hasRealTestScript(PackageJsonSchema.parse({ scripts: { test: 'jest' } }))).toBe(true);
    expect(hasRealTestScript(PackageJsonSchema.parse({ scripts: 'oops' }))).toBe(false);
    expect(PackageJsonSchema.parse({ name: 7, main: 'a.js' })).toMatchObject({ name: undefined, main: 'a.js' });
  });
});

describe('devops files', () => {
  it('renders a Dockerfile that switches to a non-root user before CMD', () => {
    const text = renderDockerfile(DockerfileSchema.parse({ base_image: 'node:20-alpine', cmd: ['node', 'server.js'], expose: [3000, 9229] }));
    expect(text).toBe(
      'FROM node:20-alpine\nWORKDIR /app\nCOPY --chown=10001:10001 . .\nUSER 10001:10001\nEXPOSE 3000\nEXPOSE 9229\nCMD ["node","server.js"]\n',
    );
  });

  it('quotes env values so they read back unchanged, and merges files in place', () => {
    expect(envValue('postgres://u@db:5432/app')).toBe('postgres://u@db:5432/app');
    expect(envValue('two words')).toBe("'two words'");
    expect(envValue(`it's $HOME "x"`)).toBe(String.raw`"it's \$HOME \"x\""`);
    const merged = mergeEnvFile('# c\nexport A=1\nB=2\nA=3\n\nC = 4\n', { A: 'x', C: 'y', D: 'z' });
    expect(merged).toEqual({ text: '# c\nA=x\nB=2\n\nC=y\nD=z\n', added: ['D'], updated: ['A', 'C'] });
    expect(mergeEnvFile('', { A: '1' }).text).toBe('A=1\n');
    expect(envFileKeys('# X=1\nexport TOKEN=abc\nPORT=80\nPORT=81\nnot a line\n')).toEqual(['TOKEN', 'PORT']);
  });

  it('finds exposed ports in Dockerfiles and compose files', () => {
    expect(dockerfilePorts('FROM x\nEXPOSE 80 443/tcp\nexpose 8080\n')).toEqual(['80', '443/tcp', '8080']);
    const compose = 'services:\n  web:\n    ports:\n      - "8080:80"\n      - 9000\n    environment:\n      - A=1\n  db:\n    ports:\n      - \'127.0.0.1:5432:5432\'\n';
    expect(composePorts(compose)).toEqual(['8080:80', '9000', '127.0.0.1:5432:5432']);
  });
});

describe('test output counts', () => {
  it.each([
    ['node TAP', 'TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n# tests 2\n# suites 0\n# pass 1\n# fail 1\n# cancelled 0\n# skipped 0\n', { passed: 1, failed: 1, skipped: 0 }],
    ['node spec', '✔ a (0.5ms)\n✖ b\nℹ tests 3\nℹ pass 2\nℹ fail 1\nℹ skipped 0\n', { passed: 2, failed: 1, skipped: 0 }],
    ['unittest failed', '.FE\n----\nRan 3 tests in 0.001s\n\nFAILED (failures=1, errors=1)\n', { passed: 1, failed: 2, skipped: 0 }],
    ['unittest ok', '..s\n----\nRan 3 tests in 0.001s\n\nOK (skipped=1)\n', { passed: 2, failed: 0, skipped: 1 }],
    ['unittest none', '\n----\nRan 0 tests in 0.000s\n\nOK\n', { passed: 0, failed: 0, skipped: 0 }],
    ['pytest -q', '..F\nFAILED t.py::x - AssertionError\n1 failed, 2 passed, 1 skipped in 0.12s\n', { passed: 2, failed: 1, skipped: 1 }],
    ['pytest banner', '===== 3 passed, 1 error in 0.50s =====\n', { passed: 3, failed: 1, skipped: 0 }],
    ['pytest none', '===== no tests ran in 0.01s =====\n', { passed: 0, failed: 0, skipped: 0 }],
    ['jest', 'Test Suites: 1 failed, 1 total\nTests:       1 failed, 4 passed, 5 total\n', { passed: 4, failed: 1, skipped: 0 }],
    ['vitest', ' Test Files  1 failed (1)\n      Tests  2 failed | 5 passed (7)\n', { passed: 5, failed: 2, skipped: 0 }],
    ['mocha', '  3 passing (12ms)\n  1 pending\n  2 failing\n', { passed: 3, failed: 2, skipped: 1 }],
  ])('%s', (_name, output, counts) => {
    expect(parseTestCounts(output)).toEqual(counts);
  });

  it('is null for output no runner wrote', () => {
    expect(parseTestCounts('hello\nworld\n')).toBeNull();
  });

  it('finds the directory all test files share', () => {
    expect(commonDir(['tests/unit/test_a.py', 'tests/test_b.py'])).toBe('tests');
    expect(commonDir(['test_a.py', 'tests/test_b.py'])).toBe('.');
    expect(commonDir(['api/tests/test_a.py'])).toBe('api/tests');
    expect(commonDir([])).toBe('.');
  });
});

describe('error triage', () => {
  const ws = '/srv/ws/build-1';

  it('extracts missing python modules, own code locations and suggestions from a traceback', () => {
    const output = [
      'Traceback (most recent call last):',
      `  File "${ws}/app.py", line 3, in <module>`,
      '    from models import db',
      `  File "${ws}/models.py", line 1, in <module>`,
      '    import yaml',
      `  File "${ws}/.venv/lib/python3.11/site-packages/x.py", line 9, in <module>`,
      '  File "/usr/lib/python3.11/importlib/__init__.py", line 126, in import_module',
      "ModuleNotFoundError: No module named 'yaml'",
    ].join('\n');
    const t = triageErrorOutput(output, ws);
    expect(t.missing_python_modules).toEqual(['yaml']);
    expect(t.locations).toEqual([
      { file: 'app.py', line: 3 },
      { file: 'models.py', line: 1 },
    ]);
    expect(t.errors).toEqual(["ModuleNotFoundError: No module named 'yaml'"]);
    expect(t.suggestions).toEqual([
      "backend: install_dependency PyYAML (No module named 'yaml'), then re-run the tests",
      'look at app.py:3 first',
    ]);
  });

  it('separates missing node packages from missing files and reads TypeScript locations', () => {
    const output = [
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'express' imported from /srv/ws/build-1/src/server.mjs",
      "Error: Cannot find module '@scope/ui/button'",
      "Error: Cannot find module './routes/api'",
      "Error: Cannot find module 'node:missing'",
      `    at Object.<anonymous> (${ws}/src/index.js:4:15)`,
      '    at Module._compile (node:internal/modules/cjs/loader:1521:14)',
      `    at load (${ws}/node_modules/lib/index.js:1:1)`,
      'src/app.ts(12,5): error TS2322: Type string is not assignable to type number.',
    ].join('\n');
    const t = triageErrorOutput(output, ws);
    expect(t.missing_node_modules).toEqual(['express', '@scope/ui']);
    expect(t.missing_files).toEqual(['routes/api']);
    expect(t.locations).toEqual([
      { file: 'src/index.js', line: 4, column: 15 },
      { file: 'src/app.ts', line: 12, column: 5 },
    ]);
    expect(t.errors).toHaveLength(5);
    expect(t.suggestions[0]).toBe("frontend: npm_install express (Cannot find module 'express'), then re-run the tests");
  });

  it('says when there is nothing to triage', () => {
    const t = triageErrorOutput('all good\n', ws);
    expect(t).toMatchObject({ summary: 'no recognisable errors in the output', errors: [], locations: [], suggestions: [] });
  });

  it('bounds what it reports', () => {
    const noisy = Array.from({ length: 500 }, (_, i) => `ValueError: bad ${i}\n  File "m${i}.py", line ${i + 1}`).join('\n');
    const t = triageErrorOutput(noisy, ws);
    expect(t.errors).toHaveLength(20);
    expect(t.locations).toHaveLength(20);
  });
});

describe('command output', () => {
  const result = (over: Partial<RunResult>): RunResult => ({
    exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false, cancelled: false, durationMs: 12, truncated: false, droppedEnv: [], ...over,
  });

  it('quotes arguments only where a shell would need it and shortens long ones', () => {
    expect(formatCommandLine('pip', ['install', 'flask>=3', "it's", 'a b'])).toBe(`pip install 'flask>=3' 'it'\\''s' 'a b'`);
    expect(formatCommandLine('python3', ['-c', 'x'.repeat(500)])).toMatch(/^python3 -c x{200}…$/);
  });

  it('shows how the command ended and both streams', () => {
    expect(renderRunResult({ command: 'npm', args: ['test'], cwd: 'web' }, result({ exitCode: 1, stdout: 'out\n', stderr: 'err\n' }))).toBe(
      '$ npm test  (in web)\nexit code 1 in 12 ms\n--- stdout ---\nout\n--- stderr ---\nerr',
    );
    expect(renderRunResult({ command: 'sleep', args: ['9'] }, result({ exitCode: null, signal: 'SIGTERM', timedOut: true, droppedEnv: ['API_TOKEN'] }))).toBe(
      '$ sleep 9\ntimed out after 12 ms (stopped)\nwithheld secret variables: API_TOKEN\n(no output)',
    );
  });

  it('succeeds only on exit 0, and turns a refusal into a failed result', () => {
    expect(commandResult({ command: 'true' }, { result: result({}) })).toMatchObject({ ok: true, exitCode: 0 });
    expect(commandResult({ command: 'false' }, { result: result({ exitCode: 1 }) })).toMatchObject({ ok: false, exitCode: 1 });
    expect(commandResult({ command: 'x' }, { result: result({ exitCode: 0, cancelled: true }) }).ok).toBe(false);
    expect(commandResult({ command: 'rm', args: ['-rf', '/'] }, { refused: "refused: rm -r '/'" })).toEqual({
      ok: false,
      output: "$ rm -rf /\nrefused: rm -r '/'",
      exitCode: null,
    });
  });
});
