import { z } from 'zod';
import { ROLE_CATALOGUE } from '../../shared/domain/role-catalogue.js';
import type { Sandbox } from '../../shared/sandbox/sandbox.js';
import { PathParam, type ActionDef, type ActionResult } from '../actions/action.js';
import {
  ArgsParam,
  commandSucceeded,
  defineSandboxAction,
  execCommand,
  runCommand,
  runCommandAction,
  type CommandContext,
} from '../actions/command.js';
import { FILE_ACTIONS, baseName, findFiles, pathExists, readTextOrNull, statPath } from '../actions/files.js';
import { recordKnowledgeAction } from '../actions/knowledge.js';
import { ActionRegistry } from '../actions/registry.js';
import type { Observation, ObserveContext, RoleDefinition } from './role.js';

/**
 * The backend role: Python services (Flask, Django, FastAPI), their virtualenv and their
 * dependencies. What it learns about the environment (where the venv is, which Python) goes
 * into the build's team knowledge, so the testing agent runs tests with the same interpreter.
 */

/** Team knowledge keys this role writes and others read. */
export const KNOWLEDGE_VENV_PATH = 'venv_path';
export const KNOWLEDGE_PYTHON_VERSION = 'python_version';

/** Where a virtualenv is looked for when team knowledge names none. */
export const DEFAULT_VENV_DIRS = ['.venv', 'venv'] as const;
export const PYTHON_ENTRY_POINTS = ['app.py', 'main.py', 'manage.py', 'wsgi.py'] as const;

/** pip never asks questions and never phones home for a newer pip (the sandbox may have no network). */
export const PIP_ENV = { PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1', PIP_PROGRESS_BAR: 'off' } as const;

/**
 * Python run by agents writes no bytecode next to the sources: a .pyc is trusted when the
 * source's mtime (whole seconds) and size match, so a file rewritten within the same second
 * at the same length would otherwise run as its previous version.
 */
export const PYTHON_ENV = { PYTHONDONTWRITEBYTECODE: '1' } as const;

const OBSERVE_LIST_MAX = 100;
const PROBE_TIMEOUT_MS = 30_000;

/** A workspace-relative directory name for a venv: plain characters only, never an option. */
const VenvPathParam = PathParam.regex(/^(?!-)[A-Za-z0-9_./-]+$/, 'letters, digits, _ . / - only, not starting with -');

const NAME = String.raw`[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?`;
const EXTRAS = String.raw`(?:\[\s*${NAME}(?:\s*,\s*${NAME})*\s*\])?`;
const CLAUSE = String.raw`(?:===|==|~=|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+`;
/** A PEP 508 requirement without markers or URLs: `flask`, `flask[async]>=3,<4`, `Django==5.0.1`. */
const REQUIREMENT = new RegExp(`^${NAME}\\s*${EXTRAS}\\s*(?:${CLAUSE}(?:\\s*,\\s*${CLAUSE})*)?$`);
/** A local wheel, sdist or package directory in the workspace. */
const LOCAL_PACKAGE = /^(?:\.\/)?[A-Za-z0-9_][A-Za-z0-9_.+/-]*$/;

export function isLocalPackagePath(spec: string): boolean {
  return spec.includes('/') || /\.(whl|tar\.gz|zip)$/i.test(spec);
}

/** PEP 503 normalisation: `Flask_SQLAlchemy` and `flask-sqlalchemy` are one package. */
export function normalizePackageName(spec: string): string {
  const name = /^[A-Za-z0-9._-]+/.exec(spec.trim())?.[0] ?? spec.trim();
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

const RequirementParam = z
  .string()
  .min(1)
  .max(300)
  .refine((v) => !v.trimStart().startsWith('-'), 'pip options are not accepted, only a requirement such as flask==3.0.0')
  .refine((v) => REQUIREMENT.test(v.trim()), 'not a requirement (expected e.g. flask, flask>=3,<4, uvicorn[standard]==0.30.0)')
  .transform((v) => v.trim());

const PackageParam = z
  .string()
  .min(1)
  .max(300)
  .refine((v) => !v.trimStart().startsWith('-'), 'pip options are not accepted, only a package such as flask==3.0.0 or a local path')
  .refine(
    (v) => (isLocalPackagePath(v.trim()) ? LOCAL_PACKAGE.test(v.trim()) && !v.split('/').includes('..') : REQUIREMENT.test(v.trim())),
    'not a requirement (e.g. flask, flask>=3,<4) nor a relative path to a local wheel or package directory',
  )
  .transform((v) => v.trim());

// --- probes -------------------------------------------------------------------------------------

/**
 * The workspace's virtualenv: `preferred` when given, else the one team knowledge names,
 * else `.venv` or `venv`. A directory counts when it holds `pyvenv.cfg` (its interpreter is a
 * symlink out of the workspace, which the sandbox rightly will not follow).
 */
export async function findVenv(sandbox: Sandbox, knowledge: Record<string, string>, preferred?: string): Promise<string | null> {
  const candidates = preferred !== undefined ? [preferred] : [knowledge[KNOWLEDGE_VENV_PATH], ...DEFAULT_VENV_DIRS];
  for (const dir of candidates) {
    if (dir && (await pathExists(sandbox, `${dir}/pyvenv.cfg`))) return dir.replace(/\/+$/, '');
  }
  return null;
}

/** The interpreter that runs the project's Python: the venv's when there is one. */
export function pythonCommand(venv: string | null): string {
  return venv === null ? 'python3' : `${venv}/bin/python`;
}

export function parsePythonVersion(text: string): string | null {
  return /Python (\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1] ?? null;
}

/**
 * Checks installed distributions against their RECORD (the list of files pip installed):
 * a package whose install was interrupted — its RECORD missing, or files of it missing —
 * is named with what is wrong. No names: every distribution of the environment. Exit 1 and
 * one line per problem when something is wrong.
 */
const CHECK_DISTRIBUTIONS = [
  'import importlib.metadata as m, os, sys',
  'names = sys.argv[1:]',
  'dists = [m.distribution(n) for n in names] if names else list(m.distributions())',
  'bad = []',
  'for d in dists:',
  '    name = d.metadata["Name"]',
  '    files = d.files',
  '    if files is None:',
  '        bad.append(f"{name}: no RECORD (its install was interrupted)")',
  '        continue',
  '    missing = [str(f) for f in files if not str(f).endswith(".pyc") and not os.path.exists(d.locate_file(f))]',
  '    if missing:',
  '        bad.append(f"{name}: {len(missing)} installed file(s) missing, e.g. {missing[0]} (its install was interrupted)")',
  'print("\\n".join(bad))',
  'sys.exit(1 if bad else 0)',
].join('\n');

function failureText(outcome: Awaited<ReturnType<typeof execCommand>>): string {
  if ('refused' in outcome) return outcome.refused;
  const text = `${outcome.result.stdout}\n${outcome.result.stderr}`.trim();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-3).join(' / ') || `exit ${outcome.result.exitCode ?? outcome.result.signal}`;
}

/** Why the virtualenv at `venv` cannot be used (its interpreter or its pip does not run), or null. */
export async function pipProblem(ctx: CommandContext, venv: string): Promise<string | null> {
  const pip = await execCommand(ctx, { command: `${venv}/bin/pip`, args: ['--version'], env: { ...PIP_ENV, ...PYTHON_ENV }, timeoutMs: PROBE_TIMEOUT_MS });
  return 'refused' in pip || !commandSucceeded(pip.result) ? `its interpreter or pip does not run (${failureText(pip)})` : null;
}

/** Which of the distributions named (none: all of them) are not installed whole, or null. */
export async function distributionProblem(ctx: CommandContext, venv: string, distributions: readonly string[] = []): Promise<string | null> {
  const check = await execCommand(ctx, { command: pythonCommand(venv), args: ['-c', CHECK_DISTRIBUTIONS, ...distributions], env: { ...PYTHON_ENV }, timeoutMs: PROBE_TIMEOUT_MS });
  return 'refused' in check || !commandSucceeded(check.result) ? failureText(check) : null;
}

/**
 * What is wrong with the virtualenv at `venv`, or null when it works: its interpreter and
 * its pip run, and every distribution it holds is installed whole. A venv half-made by a
 * killed `python3 -m venv` has `pyvenv.cfg` but no working pip; a package half-installed by
 * a killed pip has files of its RECORD missing.
 */
export async function venvProblem(ctx: CommandContext, venv: string): Promise<string | null> {
  return (await pipProblem(ctx, venv)) ?? (await distributionProblem(ctx, venv));
}

/** The distribution a pip argument installs, when it can be told from the argument (a requirement or a wheel's file name). */
export function distributionOf(spec: string): string | null {
  if (!isLocalPackagePath(spec)) return normalizePackageName(spec);
  const wheel = /([^/]+)\.whl$/i.exec(spec)?.[1];
  return wheel ? normalizePackageName(wheel.split('-')[0] ?? wheel) : null;
}

/** The version `python --version` reports, or null when there is no such interpreter. */
export async function probePythonVersion(ctx: CommandContext, python: string): Promise<string | null> {
  const outcome = await execCommand(ctx, { command: python, args: ['--version'], timeoutMs: PROBE_TIMEOUT_MS });
  if ('refused' in outcome || !commandSucceeded(outcome.result)) return null;
  return parsePythonVersion(`${outcome.result.stdout}\n${outcome.result.stderr}`);
}

const PipListSchema = z.array(z.object({ name: z.string(), version: z.string() }));

async function probeInstalled(ctx: CommandContext, venv: string): Promise<{ name: string; version: string }[] | null> {
  const outcome = await execCommand(ctx, {
    command: `${venv}/bin/pip`,
    args: ['list', '--format=json'],
    env: { ...PIP_ENV },
    timeoutMs: PROBE_TIMEOUT_MS,
  });
  if ('refused' in outcome || !commandSucceeded(outcome.result)) return null;
  try {
    const parsed = PipListSchema.safeParse(JSON.parse(outcome.result.stdout));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Requirement lines of a requirements file: comments, blank lines and pip options left out. */
export function requirementEntries(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('-'));
}

/**
 * Merges `packages` into a requirements file: one line per package (a new spec for a listed
 * package replaces it), sorted by normalised name. Comments and pip options (`-r`, `-e`,
 * `--index-url`) stay first, in their order.
 */
export function mergeRequirements(existing: string, packages: readonly string[]): { text: string; added: string[]; updated: string[] } {
  const head: string[] = [];
  const byName = new Map<string, string>();
  for (const raw of existing.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#') || line.startsWith('-')) head.push(line);
    else byName.set(normalizePackageName(line), line);
  }
  const added: string[] = [];
  const updated: string[] = [];
  for (const spec of packages) {
    const name = normalizePackageName(spec);
    const before = byName.get(name);
    if (before === undefined) added.push(spec);
    else if (before !== spec) updated.push(spec);
    byName.set(name, spec);
  }
  const sorted = [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, line]) => line);
  return { text: `${[...head, ...sorted].join('\n')}\n`, added, updated };
}

// --- actions ------------------------------------------------------------------------------------

export const createVenvAction = defineSandboxAction({
  name: 'create_venv',
  description:
    'Create a Python virtualenv (python3 -m venv), or check the one there works (interpreter and pip run) and rebuild it if not; records its path and Python version in team knowledge.',
  params: z.object({ path: VenvPathParam.default('.venv') }),
  async run({ path }, ctx) {
    const dir = ctx.sandbox.relative(await ctx.sandbox.resolvePath(path));
    if (dir === '.') return { ok: false, output: 'a virtualenv needs its own directory, e.g. .venv' };
    // A venv found here is verified, never trusted: a step killed inside `python3 -m venv`
    // leaves pyvenv.cfg without a working pip. One that does not work is rebuilt in place.
    const existed = (await findVenv(ctx.sandbox, {}, dir)) !== null;
    const broken = existed ? await venvProblem(ctx, dir) : null;
    let made: ActionResult | null = null;
    if (!existed || broken !== null) {
      made = await runCommand(ctx, { command: 'python3', args: ['-m', 'venv', '--clear', dir] });
      if (!made.ok) return made;
      const still = await venvProblem(ctx, dir);
      if (still !== null) return { ok: false, output: `${made.output}\nthe virtualenv at ${dir} does not work: ${still}` };
    }
    const version = await probePythonVersion(ctx, pythonCommand(dir));
    if (version === null) return { ok: false, output: `${dir} holds a virtualenv whose interpreter does not run; remove it or pick another path` };
    await ctx.knowledge.set(KNOWLEDGE_VENV_PATH, dir);
    await ctx.knowledge.set(KNOWLEDGE_PYTHON_VERSION, version);
    const head = !existed
      ? `virtualenv created at ${dir} (Python ${version})`
      : broken !== null
        ? `virtualenv at ${dir} was broken (${broken}); rebuilt it (Python ${version})`
        : `virtualenv already exists at ${dir} and works (Python ${version}, pip runs)`;
    return { ok: true, output: made ? `${head}\n${made.output}` : head, exitCode: 0 };
  },
});

export const installDependencyAction = defineSandboxAction({
  name: 'install_dependency',
  description:
    "Install one Python package into the virtualenv with its pip (<venv>/bin/pip install <package>): a requirement like flask==3.0.0 or a relative path to a local wheel/package.",
  params: z.object({ package: PackageParam, venv: VenvPathParam.optional() }),
  async run(params, ctx) {
    const knowledge = await ctx.knowledge.get();
    const venv = await findVenv(ctx.sandbox, knowledge, params.venv);
    if (venv === null) {
      return {
        ok: false,
        output: params.venv
          ? `no virtualenv at ${params.venv}; create it with create_venv`
          : `no virtualenv found (team knowledge, ${DEFAULT_VENV_DIRS.join(', ')}); create one with create_venv`,
      };
    }
    const broken = await pipProblem(ctx, venv);
    if (broken !== null) return { ok: false, output: `the virtualenv at ${venv} does not work: ${broken}; rebuild it with create_venv` };
    let target = params.package;
    if (isLocalPackagePath(target)) {
      const rel = ctx.sandbox.relative(await ctx.sandbox.resolvePath(target));
      if (!(await pathExists(ctx.sandbox, rel))) return { ok: false, output: `${target}: no such file or directory in the workspace` };
      // pip reads a bare name as a package from the index; `./` makes it a path.
      target = `./${rel}`;
    }
    const pip = (args: string[]) => runCommand(ctx, { command: `${venv}/bin/pip`, args: ['install', ...args, target], env: { ...PIP_ENV } });
    const installed = await pip([]);
    if (!installed.ok) return installed;
    // pip trusts a package's metadata ("already satisfied"): one whose earlier install was
    // killed half-way is found by its missing files and installed again over itself.
    const dist = distributionOf(params.package);
    const damage = dist === null ? null : await distributionProblem(ctx, venv, [dist]);
    if (damage === null) return installed;
    const repaired = await pip(['--force-reinstall', '--no-deps']);
    const left = repaired.ok ? await distributionProblem(ctx, venv, [dist!]) : null;
    const head = `${dist} was installed incompletely (${damage}); reinstalled it`;
    if (!repaired.ok || left !== null) return { ok: false, output: `${head}, and it is still broken: ${left ?? repaired.output}` };
    return { ...repaired, output: `${head}\n${repaired.output}` };
  },
});

export const updateRequirementsAction = defineSandboxAction({
  name: 'update_requirements',
  description: 'Add or update packages in requirements.txt (one line per package, sorted, no duplicates).',
  params: z.object({ packages: z.array(RequirementParam).min(1).max(100) }),
  async run({ packages }, ctx) {
    const existing = (await readTextOrNull(ctx.sandbox, 'requirements.txt')) ?? '';
    const merged = mergeRequirements(existing, packages);
    await ctx.sandbox.writeFile('requirements.txt', merged.text);
    const changes = [
      merged.added.length > 0 ? `added ${merged.added.join(', ')}` : '',
      merged.updated.length > 0 ? `updated ${merged.updated.join(', ')}` : '',
    ].filter(Boolean);
    return { ok: true, output: `requirements.txt: ${changes.join('; ') || 'already up to date'}\n${merged.text}` };
  },
});

export const runPythonAction = defineSandboxAction({
  name: 'run_python',
  description: "Run Python code (code) or a script (file) with the virtualenv's interpreter when there is one, else python3.",
  params: z
    .object({
      code: z.string().min(1).max(100_000).optional(),
      file: PathParam.refine((v) => !v.startsWith('-'), 'a script path, not an option').optional(),
      args: ArgsParam.default([]),
    })
    .refine((p) => (p.code === undefined) !== (p.file === undefined), 'give exactly one of code or file'),
  async run({ code, file, args }, ctx) {
    const venv = await findVenv(ctx.sandbox, await ctx.knowledge.get());
    if (file !== undefined && (await statPath(ctx.sandbox, file)) === null) return { ok: false, output: `${file}: no such file` };
    const program = code !== undefined ? ['-c', code] : [file!];
    return runCommand(ctx, { command: pythonCommand(venv), args: [...program, ...args], env: { ...PYTHON_ENV } });
  },
});

// --- observe ------------------------------------------------------------------------------------

async function observe(ctx: ObserveContext): Promise<Observation> {
  const { sandbox } = ctx;
  const findings: string[] = [];
  const venv = await findVenv(sandbox, ctx.knowledge);
  const [version, installed] = await Promise.all([
    probePythonVersion(ctx, pythonCommand(venv)),
    venv === null ? Promise.resolve(null) : probeInstalled(ctx, venv),
  ]);
  findings.push(venv === null ? `Virtual environment: none (looked for ${DEFAULT_VENV_DIRS.join(', ')})` : `Virtual environment: exists at ${venv}`);
  findings.push(`Python: ${version ?? 'not found'}${venv === null ? ' (system python3)' : ''}`);
  if (installed !== null) findings.push(`Installed packages: ${installed.length}`);

  const requirementsText = await readTextOrNull(sandbox, 'requirements.txt');
  const requirements = requirementsText === null ? null : requirementEntries(requirementsText);
  if (requirements === null) findings.push('requirements.txt: missing');
  else findings.push(`requirements.txt: ${requirements.length} dependencies`);
  let missing: string[] = [];
  if (requirements !== null && installed !== null) {
    const have = new Set(installed.map((p) => normalizePackageName(p.name)));
    missing = requirements.filter((r) => !have.has(normalizePackageName(r)));
    if (missing.length > 0) findings.push(`Required but not installed: ${missing.slice(0, 20).join(', ')}`);
  }

  const python = await findFiles(sandbox, (p) => p.endsWith('.py'));
  const entryPoints = python.files.filter((p) => (PYTHON_ENTRY_POINTS as readonly string[]).includes(baseName(p)));
  findings.push(`Python files: ${python.files.length}${python.truncated ? '+' : ''}`);
  findings.push(entryPoints.length > 0 ? `Entry points: ${entryPoints.slice(0, 10).join(', ')}` : 'Entry points: none found');

  return {
    facts: {
      venv_exists: venv !== null,
      venv_path: venv,
      python_version: version,
      installed_packages: installed?.slice(0, OBSERVE_LIST_MAX).map((p) => `${p.name}==${p.version}`) ?? null,
      installed_count: installed?.length ?? null,
      requirements_file: requirements?.slice(0, OBSERVE_LIST_MAX) ?? null,
      requirements_missing: missing.slice(0, OBSERVE_LIST_MAX),
      python_files: python.files.slice(0, OBSERVE_LIST_MAX),
      python_files_count: python.files.length,
      entry_points: entryPoints.slice(0, OBSERVE_LIST_MAX),
    },
    findings,
  };
}

export const BACKEND_ACTIONS: readonly ActionDef[] = [
  createVenvAction,
  installDependencyAction,
  updateRequirementsAction,
  runPythonAction,
  runCommandAction,
  recordKnowledgeAction,
  ...FILE_ACTIONS,
];

/** The virtualenv later tasks will use works: interpreter and pip run, every package is whole. */
async function verify(ctx: ObserveContext): Promise<string[]> {
  const venv = await findVenv(ctx.sandbox, ctx.knowledge);
  if (venv === null) return [];
  const problem = await venvProblem(ctx, venv);
  return problem === null ? [] : [`the virtualenv at ${venv} does not work: ${problem}; rebuild it with create_venv`];
}

export const backendRole: RoleDefinition = {
  role: 'backend',
  specialization: ROLE_CATALOGUE.backend.specialization,
  actions: new ActionRegistry(BACKEND_ACTIONS),
  observe,
  verify,
};
