import { join, posix } from 'node:path';
import { ROLE_CATALOGUE } from '../../shared/domain/role-catalogue.js';
import { z } from 'zod';
import { SANDBOX_DIR, type FileStat } from '../../shared/sandbox/sandbox.js';
import { FollowupRequestSchema } from '../../shared/domain/followup.js';
import { ArgParam, ContentParam, PathParam, type ActionContext, type ActionDef, type ActionResult } from '../actions/action.js';
import {
  ArgsParam,
  ProgramParam,
  commandResult,
  commandSucceeded,
  defineSandboxAction,
  execCommand,
  formatCommandLine,
  renderRunResult,
  runCommandAction,
  sandboxRefusal,
  type CommandContext,
  type CommandSpec,
} from '../actions/command.js';
import { FILE_ACTIONS, baseName, findFiles, pathExists, statPath } from '../actions/files.js';
import { recordKnowledgeAction, shareKnowledge } from '../actions/knowledge.js';
import { ActionRegistry } from '../actions/registry.js';
import { KNOWLEDGE_VENV_PATH, PYTHON_ENV, findVenv, probePythonVersion, pythonCommand } from './backend.js';
import { NPM_ENV, hasRealTestScript, readPackageJson } from './frontend.js';
import type { Observation, ObserveContext, RoleDefinition } from './role.js';

/**
 * The testing role: runs the project's tests with the framework it finds, checks syntax,
 * compares a command's output with what is expected, triages error output down to missing
 * modules and file:line references, and asks the orchestrator for follow-up work when the
 * fix belongs to another role (a missing package is the backend's to install).
 */

export const TEST_FRAMEWORKS = ['auto', 'pytest', 'unittest', 'npm', 'node'] as const;
type Runner = Exclude<(typeof TEST_FRAMEWORKS)[number], 'auto'>;

const PY_TEST_FILE = /(^|\/)(test_[^/]*|[^/]*_test)\.py$/;
const JS_TEST_FILE = /\.test\.(js|mjs|cjs)$/;
const OBSERVE_LIST_MAX = 100;
/** Most test files handed to one `node --test`. */
const NODE_TEST_FILES_MAX = 200;
const PROBE_TIMEOUT_MS = 30_000;

// --- counting results ---------------------------------------------------------------------------

export interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
}

function num(re: RegExp, text: string): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Key=value pairs of unittest's closing line: `FAILED (failures=1, errors=2, skipped=1)`. */
function unittestTally(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/([a-z ]+)=(\d+)/g)) out[m[1]!.trim()] = Number(m[2]);
  return out;
}

/**
 * Passed/failed counts from a test runner's output: node's TAP or spec summary, unittest,
 * pytest, jest, vitest or mocha. Null when none of them can be recognised.
 */
export function parseTestCounts(output: string): TestCounts | null {
  const tap = /^(?:#|ℹ) pass (\d+)$/m.exec(output);
  if (tap) {
    return { passed: Number(tap[1]), failed: num(/^(?:#|ℹ) fail (\d+)$/m, output), skipped: num(/^(?:#|ℹ) skipped (\d+)$/m, output) };
  }
  const ran = /^Ran (\d+) tests? in /m.exec(output);
  if (ran) {
    const closing = /^(?:OK|FAILED)(?: \(([^)]*)\))?\s*$/m.exec(output.slice(ran.index));
    const t = unittestTally(closing?.[1] ?? '');
    const failed = (t.failures ?? 0) + (t.errors ?? 0) + (t['unexpected successes'] ?? 0);
    const skipped = t.skipped ?? 0;
    return { passed: Number(ran[1]) - failed - skipped, failed, skipped };
  }
  const pytest = output
    .split('\n')
    .reverse()
    .find((l) => /\b\d+ (passed|failed|errors?|skipped)\b.* in [\d.]+s\b/.test(l) || /\bno tests ran\b/.test(l));
  if (pytest) {
    return {
      passed: num(/(\d+) passed/, pytest) + num(/(\d+) xfailed/, pytest),
      failed: num(/(\d+) failed/, pytest) + num(/(\d+) errors?\b/, pytest),
      skipped: num(/(\d+) skipped/, pytest),
    };
  }
  const jest = /^\s*Tests:\s+(.*)$/m.exec(output) ?? /^\s*Tests\s+(.*\(\d+\))\s*$/m.exec(output);
  if (jest) {
    const line = jest[1]!;
    return { passed: num(/(\d+) passed/, line), failed: num(/(\d+) failed/, line), skipped: num(/(\d+) (?:skipped|todo)/, line) };
  }
  const passing = /^\s*(\d+) passing\b/m.exec(output);
  if (passing) return { passed: Number(passing[1]), failed: num(/^\s*(\d+) failing\b/m, output), skipped: num(/^\s*(\d+) pending\b/m, output) };
  return null;
}

// --- choosing a runner --------------------------------------------------------------------------

interface Suite {
  runner: Runner;
  spec: CommandSpec;
}

type SuitePlan = { suites: Suite[] } | { problem: string };

/** The deepest directory holding every one of `files`. */
export function commonDir(files: readonly string[]): string {
  if (files.length === 0) return '.';
  let parts = posix.dirname(files[0]!).split('/');
  for (const f of files.slice(1)) {
    const other = posix.dirname(f).split('/');
    let i = 0;
    while (i < parts.length && parts[i] === other[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join('/') || '.';
}

async function pytestImportable(ctx: CommandContext, python: string): Promise<boolean> {
  const outcome = await execCommand(ctx, { command: python, args: ['-c', 'import pytest'], timeoutMs: PROBE_TIMEOUT_MS });
  return !('refused' in outcome) && commandSucceeded(outcome.result);
}

function unittestSuite(python: string, pyFiles: string[], target: { path: string; isFile: boolean } | null): Suite {
  if (target?.isFile) return { runner: 'unittest', spec: { command: python, args: ['-m', 'unittest', target.path], env: { ...PYTHON_ENV } } };
  const start = target?.path ?? commonDir(pyFiles);
  // unittest's default pattern is test*.py; a project of *_test.py files needs its own.
  const pattern = pyFiles.length > 0 && !pyFiles.some((f) => baseName(f).startsWith('test')) ? '*_test.py' : 'test*.py';
  return { runner: 'unittest', spec: { command: python, args: ['-m', 'unittest', 'discover', '-s', start, '-p', pattern], env: { ...PYTHON_ENV } } };
}

async function planSuites(ctx: ActionContext, framework: (typeof TEST_FRAMEWORKS)[number], path: string | undefined): Promise<SuitePlan> {
  let target: { path: string; isFile: boolean } | null = null;
  if (path !== undefined) {
    const s = await statPath(ctx.sandbox, path);
    if (s === null || (s.type !== 'file' && s.type !== 'dir')) return { problem: `${path}: no such file or directory` };
    target = { path: s.path, isFile: s.type === 'file' };
  }
  const scoped = async (re: RegExp): Promise<string[]> => {
    if (target?.isFile) return re.test(target.path) ? [target.path] : [];
    return (await findFiles(ctx.sandbox, (p) => re.test(p), { dir: target?.path ?? '.', depth: 6 })).files;
  };
  const [pyFiles, jsFiles] = await Promise.all([scoped(PY_TEST_FILE), scoped(JS_TEST_FILE)]);
  const python = pythonCommand(await findVenv(ctx.sandbox, await ctx.knowledge.get()));
  const pkg = await readPackageJson(ctx.sandbox);
  const npmTests = pkg.state === 'ok' && hasRealTestScript(pkg.manifest);
  const pytestSuite = (): Suite => ({
    runner: 'pytest',
    spec: { command: python, args: ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...(target ? [target.path] : [])], env: { ...PYTHON_ENV } },
  });
  const nodeSuite = (): Suite => ({ runner: 'node', spec: { command: 'node', args: ['--test', '--test-reporter=tap', ...jsFiles.slice(0, NODE_TEST_FILES_MAX)] } });
  const npmSuite = (): Suite => ({ runner: 'npm', spec: { command: 'npm', args: ['test'], env: { ...NPM_ENV } } });

  switch (framework) {
    case 'pytest':
      return (await pytestImportable(ctx, python))
        ? { suites: [pytestSuite()] }
        : { problem: `pytest is not importable by ${python}; ask backend to install_dependency pytest, or use framework unittest` };
    case 'unittest':
      return { suites: [unittestSuite(python, pyFiles, target)] };
    case 'npm':
      return npmTests ? { suites: [npmSuite()] } : { problem: 'package.json has no test script (or only the npm init placeholder)' };
    case 'node':
      return jsFiles.length > 0 ? { suites: [nodeSuite()] } : { problem: 'no *.test.js, *.test.mjs or *.test.cjs files found' };
    case 'auto': {
      const suites: Suite[] = [];
      if (pyFiles.length > 0) suites.push((await pytestImportable(ctx, python)) ? pytestSuite() : unittestSuite(python, pyFiles, target));
      // npm test cannot be narrowed to a path; with one, the test files are run directly.
      if (npmTests && target === null) suites.push(npmSuite());
      else if (jsFiles.length > 0) suites.push(nodeSuite());
      if (suites.length > 0) return { suites };
      return { problem: 'no tests found (looked for test_*.py, *_test.py, *.test.js/mjs/cjs and a package.json test script)' };
    }
  }
}

function describeCounts(c: TestCounts | null): string {
  if (c === null) return 'counts not recognised';
  return `${c.passed} passed, ${c.failed} failed${c.skipped > 0 ? `, ${c.skipped} skipped` : ''}`;
}

// --- error triage -------------------------------------------------------------------------------

/** Import names whose pip package is named differently. */
const PIP_NAMES: Record<string, string> = {
  yaml: 'PyYAML', cv2: 'opencv-python', PIL: 'Pillow', sklearn: 'scikit-learn', bs4: 'beautifulsoup4', dotenv: 'python-dotenv',
  jwt: 'PyJWT', dateutil: 'python-dateutil', attr: 'attrs', serial: 'pyserial', Crypto: 'pycryptodome', psycopg2: 'psycopg2-binary',
  MySQLdb: 'mysqlclient', google: 'protobuf', docx: 'python-docx', magic: 'python-magic',
};

export interface SourceLocation {
  file: string;
  line: number;
  column?: number;
}

export interface ErrorTriage {
  summary: string;
  errors: string[];
  missing_python_modules: string[];
  missing_node_modules: string[];
  /** Relative requires/imports of files that do not exist. */
  missing_files: string[];
  /** file:line references in the workspace's own code (not site-packages or node_modules). */
  locations: SourceLocation[];
  suggestions: string[];
}

const TRIAGE_MAX = 20;
const ERROR_LINES = [
  /\b(?:[A-Z][A-Za-z]*)?(?:Error|Exception)\b/,
  /^\s*(?:FAIL|FAILED|ERROR)\b/,
  /^\s*E {2,}\S/,
  /^npm (?:ERR!|error)/,
  /\berror TS\d+:/,
  /^\s*error(?:\[[A-Z]?\d+\])?:/,
  /^not ok \d+/,
];
const LOCATION_PATTERNS = [
  /File "([^"]+)", line (\d+)/g,
  /([\w@.\/-]*[\w-]\.(?:py|js|mjs|cjs|jsx|ts|tsx|mts|cts|vue)):(\d+)(?::(\d+))?/g,
  /([\w@.\/-]*[\w-]\.(?:ts|tsx|mts|cts))\((\d+),(\d+)\)/g,
];

function pushUnique<T>(list: T[], item: T, key: (t: T) => string = String): void {
  if (list.length < TRIAGE_MAX && !list.some((x) => key(x) === key(item))) list.push(item);
}

/** A path from error output as a workspace-relative path, or null when it is not the project's own code. */
function ownPath(raw: string, workspace: string | undefined): string | null {
  let p = posix.normalize(raw.replace(/^file:\/\//, ''));
  if (p.startsWith('/')) {
    if (workspace === undefined) return p;
    const rel = posix.relative(workspace, p);
    if (rel.startsWith('..') || posix.isAbsolute(rel)) return null;
    p = rel;
  }
  if (p.startsWith('..')) return null;
  if (/(^|\/)(node_modules|site-packages|dist-packages|\.venv|venv|__pycache__)\//.test(p)) return null;
  return p;
}

function npmPackageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Code-level triage of error output: what failed, what is missing, and where to look. */
export function triageErrorOutput(text: string, workspace?: string): ErrorTriage {
  const t: ErrorTriage = { summary: '', errors: [], missing_python_modules: [], missing_node_modules: [], missing_files: [], locations: [], suggestions: [] };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line !== '' && ERROR_LINES.some((re) => re.test(raw))) pushUnique(t.errors, line.length > 300 ? `${line.slice(0, 300)}…` : line);
  }
  for (const m of text.matchAll(/No module named ['"]?([A-Za-z_][\w.]*)['"]?/g)) pushUnique(t.missing_python_modules, m[1]!);
  for (const m of text.matchAll(/Cannot find (?:module|package) ['"]([^'"\s]+)['"]/g)) {
    const spec = m[1]!;
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('file:')) {
      const own = ownPath(spec, workspace);
      if (own !== null) pushUnique(t.missing_files, own);
    } else if (!spec.startsWith('node:')) pushUnique(t.missing_node_modules, npmPackageName(spec));
  }
  for (const re of LOCATION_PATTERNS) {
    for (const m of text.matchAll(re)) {
      const file = ownPath(m[1]!, workspace);
      if (file === null) continue;
      const loc: SourceLocation = { file, line: Number(m[2]), ...(m[3] === undefined ? {} : { column: Number(m[3]) }) };
      pushUnique(t.locations, loc, (l) => `${l.file}:${l.line}`);
    }
  }
  for (const mod of t.missing_python_modules) {
    const top = mod.split('.')[0]!;
    pushUnique(t.suggestions, `backend: install_dependency ${PIP_NAMES[top] ?? top} (No module named '${mod}'), then re-run the tests`);
  }
  for (const pkg of t.missing_node_modules) pushUnique(t.suggestions, `frontend: npm_install ${pkg} (Cannot find module '${pkg}'), then re-run the tests`);
  for (const f of t.missing_files) pushUnique(t.suggestions, `${f} is imported but does not exist: create it or fix the import`);
  if (t.locations[0]) pushUnique(t.suggestions, `look at ${t.locations[0].file}:${t.locations[0].line} first`);
  const missing = t.missing_python_modules.length + t.missing_node_modules.length;
  t.summary =
    t.errors.length === 0 && missing === 0
      ? 'no recognisable errors in the output'
      : `${t.errors.length} error line(s), ${missing} missing module(s), ${t.missing_files.length} missing file(s), ${t.locations.length} code location(s)`;
  return t;
}

// --- actions ------------------------------------------------------------------------------------

/** How to run a suite that passed, for the other agents: `test_command_<runner>`. */
function recordTestCommand(ctx: ActionContext, suite: Suite): Promise<void> {
  const line = `${formatCommandLine(suite.spec.command, suite.spec.args)}${suite.spec.cwd && suite.spec.cwd !== '.' ? `  (in ${suite.spec.cwd})` : ''}`;
  return shareKnowledge(ctx, `test_command_${suite.runner}`, line.slice(0, 500));
}

export const runTestsAction = defineSandboxAction({
  name: 'run_tests',
  description:
    'Run the tests: framework auto (pytest if importable, else unittest, for test_*.py; npm test or node --test for JS) or a given one, optionally limited to a path. Reports passed/failed counts.',
  params: z.object({ framework: z.enum(TEST_FRAMEWORKS).default('auto'), path: PathParam.refine((p) => !p.startsWith('-'), 'a path, not an option').optional() }),
  async run({ framework, path }, ctx) {
    const plan = await planSuites(ctx, framework, path);
    if ('problem' in plan) return { ok: false, output: plan.problem };
    const sections: string[] = [];
    const total: TestCounts = { passed: 0, failed: 0, skipped: 0 };
    const tallies: string[] = [];
    let ok = true;
    let exitCode: number | null = 0;
    for (const suite of plan.suites) {
      const outcome = await execCommand(ctx, suite.spec);
      if ('refused' in outcome) {
        const refused = commandResult(suite.spec, outcome);
        return { ...refused, output: `${suite.runner}: refused\n${refused.output}` };
      }
      const counts = parseTestCounts(`${outcome.result.stdout}\n${outcome.result.stderr}`);
      // A run that found nothing to test proves nothing, even when the runner exits 0.
      const passed = commandSucceeded(outcome.result) && (counts === null || counts.passed + counts.failed > 0);
      if (!passed && ok) exitCode = outcome.result.exitCode;
      ok &&= passed;
      if (counts) {
        total.passed += counts.passed;
        total.failed += counts.failed;
        total.skipped += counts.skipped;
      }
      const noTests = counts !== null && counts.passed + counts.failed === 0 ? ' (no tests ran)' : '';
      tallies.push(`${suite.runner}: ${describeCounts(counts)}${noTests}`);
      sections.push(`== ${suite.runner} ==\n${renderRunResult(suite.spec, outcome.result)}`);
    }
    const head = `tests ${ok ? 'passed' : 'FAILED'}: ${describeCounts(total)} [${tallies.join('; ')}]`;
    // How to run the tests is the testing agents' team knowledge: others read it from there.
    if (ok) for (const suite of plan.suites) await recordTestCommand(ctx, suite);
    return { ok, output: `${head}\n${sections.join('\n\n')}`, exitCode };
  },
});

type SyntaxVerdict = { path: string; state: 'ok' | 'error' | 'unchecked'; detail?: string };

const TS_FILE = /\.(ts|tsx|mts|cts)$/;
const JS_FILE = /\.(js|mjs|cjs)$/;

async function checkOne(ctx: CommandContext, spec: CommandSpec, path: string): Promise<SyntaxVerdict> {
  const outcome = await execCommand(ctx, spec);
  if ('refused' in outcome) return { path, state: 'unchecked', detail: outcome.refused };
  if (commandSucceeded(outcome.result)) return { path, state: 'ok' };
  return { path, state: 'error', detail: renderRunResult(spec, outcome.result) };
}

export const checkSyntaxAction = defineSandboxAction({
  name: 'check_syntax',
  description:
    'Check files for syntax errors without running them: .py (py_compile), .js/.mjs/.cjs (node --check), .json, .ts (tsc --noEmit when installed in the workspace).',
  params: z.object({ paths: z.array(PathParam.refine((p) => !p.startsWith('-'), 'a path, not an option')).min(1).max(50) }),
  async run({ paths }, ctx) {
    const python = pythonCommand(await findVenv(ctx.sandbox, await ctx.knowledge.get()));
    // py_compile always writes bytecode; kept out of the source tree, it can never be mistaken for a newer file's.
    const pycacheAside = { PYTHONPYCACHEPREFIX: join(ctx.sandbox.workspace, SANDBOX_DIR, 'pycache') };
    const verdicts: SyntaxVerdict[] = [];
    const tsFiles: string[] = [];
    for (const path of paths) {
      let s: FileStat | null;
      try {
        s = await statPath(ctx.sandbox, path);
      } catch (err) {
        const reason = sandboxRefusal(err);
        if (reason === null) throw err;
        verdicts.push({ path, state: 'error', detail: reason });
        continue;
      }
      if (s?.type !== 'file') verdicts.push({ path, state: 'error', detail: s === null ? 'no such file' : 'not a regular file' });
      else if (path.endsWith('.py')) verdicts.push(await checkOne(ctx, { command: python, args: ['-m', 'py_compile', path], env: pycacheAside }, path));
      else if (JS_FILE.test(path)) verdicts.push(await checkOne(ctx, { command: 'node', args: ['--check', path] }, path));
      else if (TS_FILE.test(path)) tsFiles.push(path);
      else if (path.endsWith('.json')) {
        try {
          JSON.parse(await ctx.sandbox.readFile(path, { maxBytes: 5 * 1024 * 1024 }));
          verdicts.push({ path, state: 'ok' });
        } catch (err) {
          verdicts.push({ path, state: 'error', detail: `invalid JSON: ${(err as Error).message}` });
        }
      } else verdicts.push({ path, state: 'unchecked', detail: 'no syntax checker for this file type' });
    }
    if (tsFiles.length > 0) {
      if (!(await pathExists(ctx.sandbox, 'node_modules/.bin/tsc'))) {
        for (const path of tsFiles) {
          verdicts.push({ path, state: 'unchecked', detail: 'TypeScript is not installed in the workspace (npm_install typescript with dev: true)' });
        }
      } else {
        // With a tsconfig the project's own settings decide what is valid, so the project is checked as a whole.
        const project = await pathExists(ctx.sandbox, 'tsconfig.json');
        const args = ['--no-install', 'tsc', '--noEmit', '--pretty', 'false', ...(project ? ['-p', 'tsconfig.json'] : tsFiles)];
        verdicts.push(await checkOne(ctx, { command: 'npx', args, env: { ...NPM_ENV } }, project ? `${tsFiles.join(', ')} (tsc -p tsconfig.json)` : tsFiles.join(', ')));
      }
    }
    const label = { ok: 'OK', error: 'ERROR', unchecked: 'NOT CHECKED' } as const;
    const lines = verdicts.map((v) => `${label[v.state]} ${v.path}${v.detail ? `: ${v.detail}` : ''}`);
    const bad = verdicts.filter((v) => v.state !== 'ok').length;
    return { ok: bad === 0, output: `${bad === 0 ? 'all files passed' : `${bad} of ${verdicts.length} not ok`}\n${lines.join('\n')}` };
  },
});

export const validateOutputAction = defineSandboxAction({
  name: 'validate_output',
  description: 'Run a command and check its exit code (default 0) and that its output contains the expected text.',
  params: z.object({
    command: ProgramParam,
    args: ArgsParam.default([]),
    cwd: PathParam.optional(),
    expect_exit: z.number().int().min(0).max(255).default(0),
    expect_contains: z.union([ArgParam.min(1), z.array(ArgParam.min(1)).min(1).max(20)]).optional(),
  }),
  async run({ command, args, cwd, expect_exit, expect_contains }, ctx) {
    const spec: CommandSpec = { command, args, ...(cwd === undefined ? {} : { cwd }) };
    const outcome = await execCommand(ctx, spec);
    if ('refused' in outcome) return commandResult(spec, outcome);
    const { result } = outcome;
    const text = `${result.stdout}\n${result.stderr}`;
    const checks: [boolean, string][] = [[result.exitCode === expect_exit && !result.timedOut, `exit code ${expect_exit} (got ${result.exitCode ?? 'none'})`]];
    const expected = expect_contains === undefined ? [] : typeof expect_contains === 'string' ? [expect_contains] : expect_contains;
    for (const e of expected) checks.push([text.includes(e), `output contains ${JSON.stringify(e)}`]);
    const ok = checks.every(([pass]) => pass);
    const report = checks.map(([pass, what]) => `${pass ? 'PASS' : 'FAIL'} ${what}`).join('\n');
    return { ok, output: `${ok ? 'output as expected' : 'output NOT as expected'}\n${report}\n${renderRunResult(spec, result)}`, exitCode: result.exitCode };
  },
});

export const debugErrorAction = defineSandboxAction({
  name: 'debug_error',
  description: 'Triage error output (a traceback, test or build log): error lines, missing Python/Node modules, missing files, file:line locations and suggested fixes, as JSON.',
  params: z.object({ output: ContentParam.min(1) }),
  async run({ output }, ctx): Promise<ActionResult> {
    return { ok: true, output: JSON.stringify(triageErrorOutput(output, ctx.sandbox.workspace), null, 2) };
  },
});

export const reportFollowupAction = defineSandboxAction({
  name: 'report_followup',
  description:
    'Ask the orchestrator for follow-up work by another role, e.g. {"role": "backend", "title": "Install flask", "description": "tests fail with No module named flask", "rerun": true}; rerun re-runs these checks afterwards.',
  params: FollowupRequestSchema,
  async run(request) {
    return {
      ok: true,
      output: `follow-up requested: ${request.role}: ${request.title}${request.rerun ? ' (checks re-run afterwards)' : ''}`,
      followups: [request],
    };
  },
});

// --- observe ------------------------------------------------------------------------------------

async function observe(ctx: ObserveContext): Promise<Observation> {
  const { sandbox } = ctx;
  const findings: string[] = [];
  const [py, js] = await Promise.all([
    findFiles(sandbox, (p) => PY_TEST_FILE.test(p), { depth: 6 }),
    findFiles(sandbox, (p) => JS_TEST_FILE.test(p), { depth: 6 }),
  ]);
  const venv = await findVenv(sandbox, ctx.knowledge);
  const python = pythonCommand(venv);
  const [pythonVersion, pytest, nodeVersion] = await Promise.all([
    probePythonVersion(ctx, python),
    pytestImportable(ctx, python),
    execCommand(ctx, { command: 'node', args: ['--version'], timeoutMs: PROBE_TIMEOUT_MS }).then((o) =>
      'refused' in o || !commandSucceeded(o.result) ? null : o.result.stdout.trim(),
    ),
  ]);
  const pkg = await readPackageJson(sandbox);
  const testScript = pkg.state === 'ok' ? (pkg.manifest.scripts?.test ?? null) : null;
  const realScript = pkg.state === 'ok' && hasRealTestScript(pkg.manifest);
  const frameworks = [
    ...(pytest ? ['pytest'] : []),
    ...(pythonVersion !== null ? ['unittest'] : []),
    ...(realScript ? ['npm'] : []),
    ...(nodeVersion !== null ? ['node'] : []),
  ];

  findings.push(`Python test files: ${py.files.length}${py.files.length > 0 ? ` (${py.files.slice(0, 5).join(', ')})` : ''}`);
  findings.push(`JS test files: ${js.files.length}${js.files.length > 0 ? ` (${js.files.slice(0, 5).join(', ')})` : ''}`);
  findings.push(`Frameworks available: ${frameworks.join(', ') || 'none'}`);
  findings.push(venv === null ? 'Virtual environment: none known' : `Virtual environment: ${venv} (Python ${pythonVersion ?? 'unknown'})`);
  if (testScript !== null) findings.push(`package.json test script: ${realScript ? testScript : 'only the npm init placeholder'}`);

  return {
    facts: {
      python_test_files: py.files.slice(0, OBSERVE_LIST_MAX),
      js_test_files: js.files.slice(0, OBSERVE_LIST_MAX),
      frameworks_available: frameworks,
      pytest_importable: pytest,
      python_version: pythonVersion,
      node_version: nodeVersion,
      venv_path: venv,
      venv_in_knowledge: ctx.knowledge[KNOWLEDGE_VENV_PATH] ?? null,
      package_json_test_script: testScript,
    },
    findings,
  };
}

export const TESTING_ACTIONS: readonly ActionDef[] = [
  runTestsAction,
  checkSyntaxAction,
  validateOutputAction,
  debugErrorAction,
  reportFollowupAction,
  runCommandAction,
  recordKnowledgeAction,
  ...FILE_ACTIONS,
];

export const testingRole: RoleDefinition = {
  role: 'testing',
  specialization: ROLE_CATALOGUE.testing.specialization,
  actions: new ActionRegistry(TESTING_ACTIONS),
  observe,
};
