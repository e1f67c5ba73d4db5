import { z } from 'zod';
import { ROLE_CATALOGUE } from '../../shared/domain/role-catalogue.js';
import type { Sandbox } from '../../shared/sandbox/sandbox.js';
import { ArgParam, type ActionDef } from '../actions/action.js';
import { commandSucceeded, defineSandboxAction, execCommand, runCommand, runCommandAction, type CommandContext } from '../actions/command.js';
import { FILE_ACTIONS, findFiles, pathExists, readTextOrNull, statOrNull, statPath } from '../actions/files.js';
import { recordKnowledgeAction, shareKnowledge } from '../actions/knowledge.js';
import { ActionRegistry } from '../actions/registry.js';
import type { Observation, ObserveContext, RoleDefinition } from './role.js';

/**
 * The frontend role: npm projects (React, Vue, webpack). package.json is read and edited as
 * JSON, never with text substitution, so every edit leaves a valid file.
 */

export const KNOWLEDGE_ENTRY_POINT = 'entry_point';
export const KNOWLEDGE_PACKAGE_MANAGER = 'package_manager';
export const KNOWLEDGE_BUILD_COMMAND = 'build_command';

/** npm stays quiet and never nags about updates, audits or funding (the sandbox may have no network). */
export const NPM_ENV = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_progress: 'false' } as const;

/** What `npm init` writes as the test script: not a test suite. */
export const NPM_DEFAULT_TEST_SCRIPT = 'echo "Error: no test specified" && exit 1';

/** Files an entry point usually is, suggested when the declared one is missing. */
const ENTRY_CANDIDATES = [
  'index.js', 'index.mjs', 'main.js', 'app.js', 'server.js',
  'src/index.js', 'src/index.jsx', 'src/index.ts', 'src/index.tsx', 'src/main.js', 'src/main.jsx', 'src/main.ts', 'src/main.tsx', 'src/App.jsx', 'src/App.vue',
];
const OBSERVE_LIST_MAX = 100;
const PROBE_TIMEOUT_MS = 30_000;
/** Path segments that would reach an object's prototype instead of a field. */
const UNSAFE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

// --- package.json -------------------------------------------------------------------------------

const StringMap = z.record(z.string(), z.string());
/** The parts of package.json codegod reads; a malformed field reads as absent rather than failing the whole file. */
export const PackageJsonSchema = z.looseObject({
  name: z.string().optional().catch(undefined),
  main: z.string().optional().catch(undefined),
  module: z.string().optional().catch(undefined),
  exports: z.unknown().optional(),
  scripts: StringMap.optional().catch(undefined),
  dependencies: StringMap.optional().catch(undefined),
  devDependencies: StringMap.optional().catch(undefined),
});
export type PackageJson = z.infer<typeof PackageJsonSchema>;

export type PackageJsonRead =
  | { state: 'missing' }
  | { state: 'invalid'; problem: string }
  | { state: 'ok'; raw: Record<string, unknown>; manifest: PackageJson };

export async function readPackageJson(sandbox: Sandbox): Promise<PackageJsonRead> {
  const text = await readTextOrNull(sandbox, 'package.json', 1024 * 1024);
  if (text === null) return { state: 'missing' };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { state: 'invalid', problem: `package.json is not valid JSON (${(err as Error).message})` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { state: 'invalid', problem: 'package.json is not a JSON object' };
  return { state: 'ok', raw: raw as Record<string, unknown>, manifest: PackageJsonSchema.parse(raw) };
}

/** Whether package.json has a real test script (not the placeholder `npm init` writes). */
export function hasRealTestScript(manifest: PackageJson): boolean {
  const test = manifest.scripts?.test;
  return test !== undefined && test.trim() !== '' && test.trim() !== NPM_DEFAULT_TEST_SCRIPT;
}

/**
 * Sets (or, for null, removes) a dotted path in a JSON object: `scripts.test`, `main`.
 * Missing objects on the way are created; a non-object on the way is a problem, not overwritten.
 */
export function setDotted(target: Record<string, unknown>, path: string, value: unknown): string | null {
  const parts = path.split('.');
  let node: Record<string, unknown> = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i]!;
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next === undefined) {
      if (value === null) return null;
      const created: Record<string, unknown> = {};
      node[key] = created;
      node = created;
    } else if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      return `cannot set ${path}: ${parts.slice(0, i + 1).join('.')} is ${Array.isArray(next) ? 'an array' : typeof next}, not an object`;
    }
  }
  const last = parts[parts.length - 1]!;
  if (value === null) delete node[last];
  else node[last] = value;
  return null;
}

const DottedPathParam = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^.\s]+(\.[^.\s]+){0,9}$/, 'a dotted path such as main or scripts.test')
  .refine((p) => !p.split('.').some((k) => UNSAFE_KEYS.has(k)), '__proto__, prototype and constructor are not settable');

const NpmName = String.raw`(?:@[A-Za-z0-9][A-Za-z0-9._~-]*/)?[A-Za-z0-9][A-Za-z0-9._~-]*`;
/** `react`, `react@18`, `@types/node@^20`, `webpack@">=5 <6"`. */
const NPM_SPEC = new RegExp(String.raw`^${NpmName}(?:@[A-Za-z0-9.^~<>=*|+_ -]{1,100})?$`);
/** A package in the workspace: `file:local-lib` or `./local-lib`. */
const NPM_LOCAL = /^(?:file:|\.\/)[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

export function localNpmPath(spec: string): string | null {
  if (!NPM_LOCAL.test(spec)) return null;
  return spec.startsWith('file:') ? spec.slice('file:'.length) : spec;
}

const NpmPackageParam = z
  .string()
  .min(1)
  .max(200)
  .refine((v) => !v.startsWith('-'), 'npm options are not accepted, only packages such as react@18 or file:local-lib')
  .refine(
    (v) => NPM_SPEC.test(v) || (NPM_LOCAL.test(v) && !v.split('/').includes('..')),
    'not an npm package (e.g. react, react@^18, @types/node) nor a local file:path inside the workspace',
  );

const ScriptParam = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_:.][A-Za-z0-9_:.-]*$/, 'a script name from package.json such as build or test:unit');

// --- entry points ---------------------------------------------------------------------------------

export interface EntryTarget {
  /** `main`, `module`, `exports`, `exports["."].import`, … */
  field: string;
  target: string;
  /** The existing file it resolves to, or null. */
  resolved: string | null;
}

export interface EntryPointStatus {
  packageJson: 'missing' | 'invalid' | 'ok';
  problem?: string;
  declared: EntryTarget[];
  /** With nothing declared, Node loads index.js: whether that exists. */
  fallback: EntryTarget | null;
  /** Usual entry files that exist, offered when a declared one does not. */
  candidates: string[];
  ok: boolean;
}

function exportTargets(value: unknown, field: string, out: { field: string; target: string }[]): void {
  if (out.length >= 20) return;
  if (typeof value === 'string') out.push({ field, target: value });
  else if (Array.isArray(value)) value.forEach((v, i) => exportTargets(v, `${field}[${i}]`, out));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) exportTargets(v, `${field}[${JSON.stringify(k)}]`, out);
  }
}

/** Resolves a manifest target to an existing file; `main` gets Node's extension and index fallbacks. */
async function resolveTarget(sandbox: Sandbox, target: string, legacy: boolean): Promise<string | null> {
  if (target.includes('*') || target.startsWith('/') || target.includes('\0')) return null;
  const base = target.replace(/^\.\//, '').replace(/\/+$/, '') || '.';
  const tries = legacy ? [base, `${base}.js`, `${base}.json`, `${base}/index.js`, `${base}/index.json`] : [base];
  for (const t of tries) {
    if ((await statOrNull(sandbox, t))?.type === 'file') return t;
  }
  return null;
}

export async function inspectEntryPoints(sandbox: Sandbox): Promise<EntryPointStatus> {
  const pkg = await readPackageJson(sandbox);
  const candidates: string[] = [];
  for (const c of ENTRY_CANDIDATES) if ((await statOrNull(sandbox, c))?.type === 'file') candidates.push(c);
  if (pkg.state !== 'ok') {
    return { packageJson: pkg.state, ...(pkg.state === 'invalid' ? { problem: pkg.problem } : {}), declared: [], fallback: null, candidates, ok: false };
  }
  const wanted: { field: string; target: string; legacy: boolean }[] = [];
  if (pkg.manifest.main !== undefined) wanted.push({ field: 'main', target: pkg.manifest.main, legacy: true });
  if (pkg.manifest.module !== undefined) wanted.push({ field: 'module', target: pkg.manifest.module, legacy: false });
  const exported: { field: string; target: string }[] = [];
  exportTargets(pkg.manifest.exports, 'exports', exported);
  wanted.push(...exported.map((e) => ({ ...e, legacy: false })));
  const declared: EntryTarget[] = [];
  for (const w of wanted) declared.push({ field: w.field, target: w.target, resolved: await resolveTarget(sandbox, w.target, w.legacy) });
  if (declared.length > 0) return { packageJson: 'ok', declared, fallback: null, candidates, ok: declared.every((d) => d.resolved !== null) };
  const fallback: EntryTarget = { field: '(default)', target: 'index.js', resolved: await resolveTarget(sandbox, 'index.js', false) };
  return { packageJson: 'ok', declared, fallback, candidates, ok: fallback.resolved !== null };
}

export function describeEntryPoints(status: EntryPointStatus): string {
  if (status.packageJson === 'missing') return 'no package.json in the workspace';
  if (status.packageJson === 'invalid') return status.problem ?? 'package.json is invalid';
  const line = (t: EntryTarget) => `${t.field}: ${t.target} → ${t.resolved === null ? 'MISSING' : `exists (${t.resolved})`}`;
  const lines = status.declared.length > 0 ? status.declared.map(line) : [`no main/module/exports declared; Node falls back to ${line(status.fallback!)}`];
  if (!status.ok) lines.push(status.candidates.length > 0 ? `existing entry candidates: ${status.candidates.join(', ')}` : 'no usual entry file (index.js, src/index.js, …) exists');
  return lines.join('\n');
}

// --- installed tree -----------------------------------------------------------------------------

/** npm writes its hidden lockfile last: node_modules without it is what an interrupted install left. */
export const NPM_HIDDEN_LOCKFILE = 'node_modules/.package-lock.json';

function outputTail(outcome: Awaited<ReturnType<typeof execCommand>>): string {
  if ('refused' in outcome) return outcome.refused;
  const lines = `${outcome.result.stdout}\n${outcome.result.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-4).join(' / ') || `exit ${outcome.result.exitCode ?? outcome.result.signal}`;
}

/**
 * What is wrong with the workspace's installed npm tree, or null when it is whole (or there
 * is none): an install that never finished, or packages package.json needs that are missing
 * or invalid (`npm ls`).
 */
export async function npmTreeProblem(ctx: CommandContext & { sandbox: Sandbox }): Promise<string | null> {
  if ((await statOrNull(ctx.sandbox, 'node_modules'))?.type !== 'dir') return null;
  if (!(await pathExists(ctx.sandbox, NPM_HIDDEN_LOCKFILE))) return `node_modules has no ${NPM_HIDDEN_LOCKFILE.split('/')[1]}: an npm install there did not finish`;
  const ls = await execCommand(ctx, { command: 'npm', args: ['ls', '--depth=0'], env: { ...NPM_ENV }, timeoutMs: PROBE_TIMEOUT_MS });
  if ('refused' in ls || !commandSucceeded(ls.result)) return `npm ls finds the installed tree incomplete: ${outputTail(ls)}`;
  return null;
}

// --- actions ------------------------------------------------------------------------------------

export const npmInstallAction = defineSandboxAction({
  name: 'npm_install',
  description:
    'npm install in the workspace: the packages named (saved to dependencies, or devDependencies with dev) or, with none, everything package.json lists. Local packages as file:dir.',
  params: z.object({ packages: z.array(NpmPackageParam).max(50).default([]), dev: z.boolean().default(false) }),
  async run({ packages, dev }, ctx) {
    if (packages.length === 0 && !(await pathExists(ctx.sandbox, 'package.json'))) {
      return { ok: false, output: 'no package.json to install from; name the packages or create package.json first' };
    }
    for (const p of packages) {
      const local = localNpmPath(p);
      if (local !== null && (await statPath(ctx.sandbox, local))?.type !== 'dir') return { ok: false, output: `${p}: no such package directory in the workspace` };
    }
    // An install killed half-way leaves packages npm would take as installed: start over.
    let cleared = '';
    if ((await statOrNull(ctx.sandbox, 'node_modules'))?.type === 'dir' && !(await pathExists(ctx.sandbox, NPM_HIDDEN_LOCKFILE))) {
      const rm = await runCommand(ctx, { command: 'rm', args: ['-rf', 'node_modules'] });
      if (!rm.ok) return rm;
      cleared = 'node_modules was left by an install that did not finish; removed it\n';
    }
    const args = ['install', '--no-audit', '--no-fund', ...(dev && packages.length > 0 ? ['--save-dev'] : []), ...packages];
    const installed = await runCommand(ctx, { command: 'npm', args, env: { ...NPM_ENV } });
    if (!installed.ok) return { ...installed, output: `${cleared}${installed.output}` };
    const problem = await npmTreeProblem(ctx);
    if (problem !== null) return { ok: false, output: `${cleared}${installed.output}\n${problem}`, exitCode: installed.exitCode ?? null };
    await shareKnowledge(ctx, KNOWLEDGE_PACKAGE_MANAGER, 'npm');
    return { ...installed, output: `${cleared}${installed.output}` };
  },
});

export const npmRunAction = defineSandboxAction({
  name: 'npm_run',
  description: 'Run a script of package.json (npm run <script> -- <args>).',
  params: z.object({ script: ScriptParam, args: z.array(ArgParam).max(50).default([]) }),
  async run({ script, args }, ctx) {
    const pkg = await readPackageJson(ctx.sandbox);
    if (pkg.state !== 'ok') return { ok: false, output: pkg.state === 'missing' ? 'no package.json in the workspace' : pkg.problem };
    const scripts = pkg.manifest.scripts ?? {};
    if (!Object.hasOwn(scripts, script)) {
      return { ok: false, output: `package.json has no "${script}" script (scripts: ${Object.keys(scripts).join(', ') || 'none'})` };
    }
    return runCommand(ctx, { command: 'npm', args: ['run', script, ...(args.length > 0 ? ['--', ...args] : [])], env: { ...NPM_ENV } });
  },
});

export const updatePackageJsonAction = defineSandboxAction({
  name: 'update_package_json',
  description:
    'Set fields of package.json by dotted path, e.g. {"set": {"main": "src/index.js", "scripts.test": "node --test"}}; null removes a field. Creates package.json if missing.',
  params: z.object({
    set: z
      .record(DottedPathParam, z.json())
      .refine((s) => Object.keys(s).length >= 1 && Object.keys(s).length <= 50, 'set 1 to 50 fields')
      .refine((s) => JSON.stringify(s).length <= 100_000, 'values total more than 100000 characters'),
  }),
  async run({ set }, ctx) {
    const pkg = await readPackageJson(ctx.sandbox);
    if (pkg.state === 'invalid') return { ok: false, output: `${pkg.problem}; fix or rewrite it with write_file` };
    const raw = pkg.state === 'ok' ? pkg.raw : {};
    for (const [path, value] of Object.entries(set)) {
      const problem = setDotted(raw, path, value);
      if (problem !== null) return { ok: false, output: problem };
    }
    const text = `${JSON.stringify(raw, null, 2)}\n`;
    await ctx.sandbox.writeFile('package.json', text);
    return { ok: true, output: `package.json ${pkg.state === 'missing' ? 'created' : 'updated'}: ${Object.keys(set).join(', ')}\n${text}` };
  },
});

export const checkEntryPointAction = defineSandboxAction({
  name: 'check_entry_point',
  description: "Check that package.json's main/module/exports point at existing files (or index.js when none is declared); records the entry point in team knowledge.",
  params: z.object({}),
  async run(_params, ctx) {
    const status = await inspectEntryPoints(ctx.sandbox);
    const entry = [...status.declared, ...(status.fallback ? [status.fallback] : [])].find((t) => t.resolved !== null);
    if (status.ok && entry?.resolved) await ctx.knowledge.set(KNOWLEDGE_ENTRY_POINT, entry.resolved);
    return { ok: status.ok, output: describeEntryPoints(status) };
  },
});

export const buildFrontendAction = defineSandboxAction({
  name: 'build_frontend',
  description: 'Build the frontend with npm run build (needs a build script in package.json).',
  params: z.object({}),
  async run(_params, ctx) {
    const pkg = await readPackageJson(ctx.sandbox);
    if (pkg.state !== 'ok') return { ok: false, output: pkg.state === 'missing' ? 'no package.json in the workspace' : pkg.problem };
    const scripts = pkg.manifest.scripts ?? {};
    if (!Object.hasOwn(scripts, 'build')) {
      return {
        ok: false,
        output: `package.json has no "build" script (scripts: ${Object.keys(scripts).join(', ') || 'none'}); add one with update_package_json, e.g. {"set": {"scripts.build": "webpack --mode production"}}`,
      };
    }
    const res = await runCommand(ctx, { command: 'npm', args: ['run', 'build'], env: { ...NPM_ENV } });
    if (res.ok) await shareKnowledge(ctx, KNOWLEDGE_BUILD_COMMAND, 'npm run build');
    return res;
  },
});

// --- observe ------------------------------------------------------------------------------------

async function probeVersion(ctx: CommandContext, command: string): Promise<string | null> {
  const outcome = await execCommand(ctx, { command, args: ['--version'], timeoutMs: PROBE_TIMEOUT_MS, env: { ...NPM_ENV } });
  if ('refused' in outcome || !commandSucceeded(outcome.result)) return null;
  return outcome.result.stdout.trim().split('\n')[0] || null;
}

function bounded(map: Record<string, string> | undefined): Record<string, string> | null {
  return map === undefined ? null : Object.fromEntries(Object.entries(map).slice(0, OBSERVE_LIST_MAX));
}

async function observe(ctx: ObserveContext): Promise<Observation> {
  const { sandbox } = ctx;
  const findings: string[] = [];
  const [nodeVersion, npmVersion] = await Promise.all([probeVersion(ctx, 'node'), probeVersion(ctx, 'npm')]);
  findings.push(`node ${nodeVersion ?? 'not found'}, npm ${npmVersion ?? 'not found'}`);

  const pkg = await readPackageJson(sandbox);
  const manifest = pkg.state === 'ok' ? pkg.manifest : null;
  if (pkg.state === 'missing') findings.push('package.json: missing');
  else if (pkg.state === 'invalid') findings.push(`package.json: ${pkg.problem}`);
  else findings.push(`package.json: ${manifest!.name ?? '(no name)'}, scripts: ${Object.keys(manifest!.scripts ?? {}).join(', ') || 'none'}`);

  const nodeModules = (await statOrNull(sandbox, 'node_modules'))?.type === 'dir';
  findings.push(`node_modules: ${nodeModules ? 'present' : 'missing'}`);
  const declaredDeps = Object.keys({ ...manifest?.dependencies, ...manifest?.devDependencies }).slice(0, OBSERVE_LIST_MAX);
  const notInstalled: string[] = [];
  for (const dep of declaredDeps) if (!(await pathExists(sandbox, `node_modules/${dep}`))) notInstalled.push(dep);
  if (declaredDeps.length > 0 && notInstalled.length > 0) findings.push(`Declared but not installed: ${notInstalled.slice(0, 20).join(', ')}`);

  const src = await findFiles(sandbox, () => true, { dir: 'src', depth: 4, max: 1_000 });
  findings.push(`src files: ${src.files.length}${src.truncated ? '+' : ''}`);

  const entry = await inspectEntryPoints(sandbox);
  if (pkg.state === 'ok') findings.push(`Entry point: ${entry.ok ? 'ok' : 'problem'} — ${describeEntryPoints(entry).split('\n').join('; ')}`);

  return {
    facts: {
      node_version: nodeVersion,
      npm_version: npmVersion,
      package_json: manifest && {
        name: manifest.name ?? null,
        main: manifest.main ?? null,
        module: manifest.module ?? null,
        scripts: bounded(manifest.scripts),
        dependencies: bounded(manifest.dependencies),
        devDependencies: bounded(manifest.devDependencies),
      },
      package_json_problem: pkg.state === 'invalid' ? pkg.problem : null,
      node_modules_present: nodeModules,
      dependencies_not_installed: notInstalled,
      src_files: src.files.slice(0, OBSERVE_LIST_MAX),
      src_files_count: src.files.length,
      entry_point: { ok: entry.ok, declared: entry.declared, fallback: entry.fallback, candidates: entry.candidates },
    },
    findings,
  };
}

export const FRONTEND_ACTIONS: readonly ActionDef[] = [
  npmInstallAction,
  npmRunAction,
  updatePackageJsonAction,
  checkEntryPointAction,
  buildFrontendAction,
  runCommandAction,
  recordKnowledgeAction,
  ...FILE_ACTIONS,
];

/** The npm tree later tasks will use is whole. */
async function verify(ctx: ObserveContext): Promise<string[]> {
  const problem = await npmTreeProblem(ctx);
  return problem === null ? [] : [`${problem}; run npm_install again`];
}

export const frontendRole: RoleDefinition = {
  role: 'frontend',
  specialization: ROLE_CATALOGUE.frontend.specialization,
  actions: new ActionRegistry(FRONTEND_ACTIONS),
  observe,
  verify,
};
