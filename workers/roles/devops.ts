import { z } from 'zod';
import { ROLE_CATALOGUE } from '../../shared/domain/role-catalogue.js';
import { PathParam, type ActionContext, type ActionDef, type ActionResult } from '../actions/action.js';
import { defineSandboxAction, runCommand, runCommandAction } from '../actions/command.js';
import { FILE_ACTIONS, baseName, findFiles, readTextOrNull, statOrNull, statPath } from '../actions/files.js';
import { recordKnowledgeAction, shareKnowledge } from '../actions/knowledge.js';
import { ActionRegistry } from '../actions/registry.js';
import type { Observation, ObserveContext, RoleDefinition } from './role.js';

/**
 * The devops role: Dockerfiles, env files, images, containers and deployment. Files are
 * generated from validated parameters (never free text), and everything that talks to Docker
 * needs an endpoint configured explicitly: the host's Docker socket is never used by default,
 * since access to it is root on the host.
 */

export const NO_DOCKER_ENDPOINT = 'no Docker endpoint configured (set CODEGOD_DOCKER_HOST)';

/** The unprivileged user generated images run as; numeric, so it needs no user database in the image. */
export const CONTAINER_USER = '10001:10001';

const OBSERVE_LIST_MAX = 50;

const IMAGE_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
/** `python:3.11-slim`, `ghcr.io/acme/api:1.2`, `localhost:5000/app`, `node@sha256:…`. */
const IMAGE_REF = new RegExp(
  String.raw`^(?:[A-Za-z0-9.-]+(?::\d{1,5})?/)?${IMAGE_COMPONENT}(?:/${IMAGE_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
);
export const ImageParam = z.string().min(1).max(255).regex(IMAGE_REF, 'an image reference such as python:3.11-slim or registry.example/app:1.0');

const SingleLine = (max: number) => z.string().max(max).regex(/^[^\r\n\0]*$/, 'must be a single line');
/** A path in the image: plain characters, no spaces or newlines. */
const ContainerPathParam = z.string().min(1).max(300).regex(/^[A-Za-z0-9_./-]+$/, 'letters, digits, _ . / - only');
/** A COPY source inside the build context: relative, no `..`, globs allowed. */
const CopySourceParam = z
  .string()
  .min(1)
  .max(300)
  .regex(/^(?![/-])[A-Za-z0-9_.*?/-]+$/, 'a path relative to the build context')
  .refine((p) => !p.split('/').includes('..'), 'must stay inside the build context');
const PortParam = z.number().int().min(1).max(65_535);
const PortMappingParam = z
  .string()
  .regex(/^(\d{1,5}:)?\d{1,5}$/, 'HOST:CONTAINER or CONTAINER, e.g. 8080:80')
  .refine((p) => p.split(':').every((n) => Number(n) >= 1 && Number(n) <= 65_535), 'ports are 1-65535');
export const EnvKeyParam = z.string().max(128).regex(/^[A-Z][A-Z0-9_]*$/, 'upper-case letters, digits and _, starting with a letter');

// --- Dockerfile ---------------------------------------------------------------------------------

export const DockerfileSchema = z.object({
  path: PathParam.default('Dockerfile'),
  base_image: ImageParam,
  workdir: ContainerPathParam.refine((p) => p.startsWith('/'), 'an absolute path in the image').default('/app'),
  copy: z
    .array(z.union([CopySourceParam, z.object({ src: CopySourceParam, dest: ContainerPathParam.default('.') })]))
    .min(1)
    .max(20)
    .default(['.']),
  /** Build-time commands (RUN lines), run as root before the image switches to its user. */
  install: z.array(SingleLine(1_000).min(1)).max(20).default([]),
  cmd: z.array(z.string().min(1).max(500)).min(1).max(50),
  expose: z.array(PortParam).max(20).default([]),
});
export type DockerfileSpec = z.output<typeof DockerfileSchema>;

export function renderDockerfile(spec: DockerfileSpec): string {
  const lines = [`FROM ${spec.base_image}`, `WORKDIR ${spec.workdir}`];
  for (const c of spec.copy) {
    const { src, dest } = typeof c === 'string' ? { src: c, dest: '.' } : c;
    lines.push(`COPY --chown=${CONTAINER_USER} ${src} ${dest}`);
  }
  for (const run of spec.install) lines.push(`RUN ${run}`);
  lines.push(`USER ${CONTAINER_USER}`);
  for (const port of spec.expose) lines.push(`EXPOSE ${port}`);
  lines.push(`CMD ${JSON.stringify(spec.cmd)}`);
  return `${lines.join('\n')}\n`;
}

// --- env files ----------------------------------------------------------------------------------

const ENV_LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/;

/** Keys defined in an env file (values are never read out: they are often secrets). */
export function envFileKeys(text: string): string[] {
  const keys: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const key = ENV_LINE.exec(line)?.[1];
    if (key !== undefined && !keys.includes(key)) keys.push(key);
  }
  return keys;
}

/** A value as dotenv and docker compose read it back unchanged. */
export function envValue(value: string): string {
  if (/^[A-Za-z0-9_./:@,+=-]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$')}"`;
}

/** Sets `vars` in an env file: existing keys are replaced in place, new ones appended; other lines are kept. */
export function mergeEnvFile(existing: string, vars: Record<string, string>): { text: string; added: string[]; updated: string[] } {
  const pending = new Map(Object.entries(vars));
  const updated: string[] = [];
  const lines = existing === '' ? [] : existing.replace(/\r?\n$/, '').split(/\r?\n/);
  const out: string[] = [];
  for (const line of lines) {
    const key = ENV_LINE.exec(line)?.[1];
    if (key === undefined || !Object.hasOwn(vars, key)) {
      out.push(line);
      continue;
    }
    // A key listed twice keeps only its first line, updated; a later duplicate would override it.
    if (!pending.has(key)) continue;
    out.push(`${key}=${envValue(vars[key]!)}`);
    updated.push(key);
    pending.delete(key);
  }
  const added = [...pending.keys()];
  for (const key of added) out.push(`${key}=${envValue(vars[key]!)}`);
  return { text: `${out.join('\n')}\n`, added, updated };
}

// --- Docker commands ----------------------------------------------------------------------------

/** Runs `docker -H <endpoint> …`, or fails without running anything when no endpoint is configured. */
async function docker(ctx: ActionContext, args: string[]): Promise<ActionResult> {
  const host = ctx.sandbox.dockerHost;
  if (host === undefined) return { ok: false, output: NO_DOCKER_ENDPOINT };
  return runCommand(ctx, { command: 'docker', args: ['-H', host, ...args] });
}

// --- actions ------------------------------------------------------------------------------------

/** Team knowledge this role writes and others read: the ports its image exposes, the image it built. */
export const KNOWLEDGE_PORTS = 'ports';
export const KNOWLEDGE_IMAGE = 'image';

export const createDockerfileAction = defineSandboxAction({
  name: 'create_dockerfile',
  description:
    'Write a Dockerfile from parameters: FROM base_image, WORKDIR, COPY (src or {src, dest}), RUN install commands, a non-root USER, EXPOSE ports, CMD in exec form.',
  params: DockerfileSchema,
  async run(spec, ctx) {
    const text = renderDockerfile(spec);
    const written = await ctx.sandbox.writeFile(spec.path, text);
    if (spec.expose.length > 0) await shareKnowledge(ctx, KNOWLEDGE_PORTS, spec.expose.join(','));
    return { ok: true, output: `wrote ${written.path}\n${text}` };
  },
});

export const setupEnvAction = defineSandboxAction({
  name: 'setup_env',
  description: 'Set variables in an env file (default .env): keys like DATABASE_URL, single-line values; existing keys are updated, others kept.',
  params: z.object({
    file: PathParam.default('.env'),
    vars: z
      .record(EnvKeyParam, SingleLine(4_000))
      .refine((v) => Object.keys(v).length >= 1 && Object.keys(v).length <= 100, 'set 1 to 100 variables'),
  }),
  async run({ file, vars }, ctx) {
    const s = await statPath(ctx.sandbox, file);
    if (s !== null && s.type !== 'file') return { ok: false, output: `${file} is not a regular file` };
    const existing = (await readTextOrNull(ctx.sandbox, file)) ?? '';
    const merged = mergeEnvFile(existing, vars);
    const written = await ctx.sandbox.writeFile(file, merged.text);
    const parts = [merged.added.length > 0 ? `added ${merged.added.join(', ')}` : '', merged.updated.length > 0 ? `updated ${merged.updated.join(', ')}` : ''];
    return { ok: true, output: `${written.path}: ${parts.filter(Boolean).join('; ')} (values not shown); keys now: ${envFileKeys(merged.text).join(', ')}` };
  },
});

export const buildImageAction = defineSandboxAction({
  name: 'build_image',
  description: 'Build a Docker image from a directory with a Dockerfile (docker build -t tag context). Needs a configured Docker endpoint.',
  params: z.object({ tag: ImageParam, context: PathParam.refine((p) => !p.startsWith('-'), 'a directory, not an option').default('.') }),
  async run({ tag, context }, ctx) {
    if (ctx.sandbox.dockerHost === undefined) return { ok: false, output: NO_DOCKER_ENDPOINT };
    if ((await statPath(ctx.sandbox, context))?.type !== 'dir') return { ok: false, output: `${context}: no such directory` };
    if ((await statOrNull(ctx.sandbox, `${context}/Dockerfile`))?.type !== 'file') {
      return { ok: false, output: `no Dockerfile in ${context}; write one with create_dockerfile` };
    }
    const res = await docker(ctx, ['build', '-t', tag, context]);
    if (res.ok) await shareKnowledge(ctx, KNOWLEDGE_IMAGE, tag);
    return res;
  },
});

export const runContainerAction = defineSandboxAction({
  name: 'run_container',
  description: 'Start a container from an image in the background (docker run -d), with an optional name and port mappings. Needs a configured Docker endpoint.',
  params: z.object({
    image: ImageParam,
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, _ . - (max 63)').optional(),
    ports: z.array(PortMappingParam).max(20).default([]),
  }),
  async run({ image, name, ports }, ctx) {
    const args = ['run', '-d', ...(name === undefined ? [] : ['--name', name]), ...ports.flatMap((p) => ['-p', p]), image];
    return docker(ctx, args);
  },
});

export const deployAction = defineSandboxAction({
  name: 'deploy',
  description: 'Deploy with docker compose: docker compose -f <target> up -d --build, target being a compose file in the workspace. Needs a configured Docker endpoint.',
  params: z.object({ target: PathParam.regex(/^(?!-).*\.ya?ml$/, 'a compose file such as docker-compose.yml') }),
  async run({ target }, ctx) {
    if (ctx.sandbox.dockerHost === undefined) return { ok: false, output: NO_DOCKER_ENDPOINT };
    if ((await statPath(ctx.sandbox, target))?.type !== 'file') return { ok: false, output: `${target}: no such compose file` };
    return docker(ctx, ['compose', '-f', target, 'up', '-d', '--build']);
  },
});

// --- observe ------------------------------------------------------------------------------------

const DOCKERFILE = /^(Dockerfile(\..+)?|.+\.dockerfile)$/i;
const COMPOSE_FILE = /^(docker-)?compose(\.[\w-]+)?\.ya?ml$/i;
const ENV_FILE = /^(\.env(\..+)?|.+\.env)$/;

/** Ports a Dockerfile exposes (`EXPOSE 80 443/tcp`). */
export function dockerfilePorts(text: string): string[] {
  const ports: string[] = [];
  for (const m of text.matchAll(/^\s*EXPOSE\s+(.+)$/gim)) ports.push(...m[1]!.trim().split(/\s+/));
  return ports;
}

/** Port mappings in a compose file's `ports:` lists (`- "8080:80"`). */
export function composePorts(text: string): string[] {
  const ports: string[] = [];
  let indent: number | null = null;
  for (const line of text.split(/\r?\n/)) {
    const depth = line.length - line.trimStart().length;
    if (/^\s*ports:\s*$/.test(line)) {
      indent = depth;
      continue;
    }
    if (indent === null || line.trim() === '') continue;
    const item = /^\s*-\s*["']?([0-9.:/a-z-]+?)["']?\s*$/.exec(line);
    if (item && depth >= indent) ports.push(item[1]!);
    else indent = null;
  }
  return ports;
}

async function observe(ctx: ObserveContext): Promise<Observation> {
  const { sandbox } = ctx;
  const { files } = await findFiles(sandbox, (p) => DOCKERFILE.test(baseName(p)) || COMPOSE_FILE.test(baseName(p)) || ENV_FILE.test(baseName(p)), { depth: 3 });
  const dockerfiles = files.filter((p) => DOCKERFILE.test(baseName(p))).slice(0, OBSERVE_LIST_MAX);
  const composeFiles = files.filter((p) => COMPOSE_FILE.test(baseName(p))).slice(0, OBSERVE_LIST_MAX);
  const envFiles = files.filter((p) => ENV_FILE.test(baseName(p))).slice(0, OBSERVE_LIST_MAX);
  const findings: string[] = [];

  const exposed: Record<string, string[]> = {};
  const rootUser: string[] = [];
  for (const f of dockerfiles.slice(0, 10)) {
    const text = (await readTextOrNull(sandbox, f, 256 * 1024)) ?? '';
    exposed[f] = dockerfilePorts(text);
    if (!/^\s*USER\s+(?!root\b|0\b)\S+/im.test(text)) rootUser.push(f);
  }
  for (const f of composeFiles.slice(0, 10)) exposed[f] = composePorts((await readTextOrNull(sandbox, f, 256 * 1024)) ?? '');
  const envKeys: Record<string, string[]> = {};
  for (const f of envFiles.slice(0, 10)) envKeys[f] = envFileKeys((await readTextOrNull(sandbox, f, 256 * 1024)) ?? '').slice(0, 100);

  const endpoint = ctx.sandbox.dockerHost !== undefined;
  findings.push(dockerfiles.length > 0 ? `Dockerfiles: ${dockerfiles.join(', ')}` : 'Dockerfile: none');
  if (rootUser.length > 0) findings.push(`Runs as root (no non-root USER): ${rootUser.join(', ')}`);
  findings.push(composeFiles.length > 0 ? `Compose files: ${composeFiles.join(', ')}` : 'Compose file: none');
  findings.push(envFiles.length > 0 ? `Env files: ${envFiles.map((f) => `${f} (${envKeys[f]?.length ?? 0} keys)`).join(', ')}` : 'Env files: none');
  const ports = [...new Set(Object.values(exposed).flat())];
  if (ports.length > 0) findings.push(`Exposed ports: ${ports.join(', ')}`);
  findings.push(`Docker endpoint: ${endpoint ? 'configured' : 'not configured (image, container and deploy actions are unavailable)'}`);

  return {
    facts: {
      dockerfiles,
      compose_files: composeFiles,
      env_files: envKeys,
      exposed_ports: exposed,
      dockerfiles_running_as_root: rootUser,
      docker_endpoint_configured: endpoint,
    },
    findings,
  };
}

export const DEVOPS_ACTIONS: readonly ActionDef[] = [
  createDockerfileAction,
  setupEnvAction,
  buildImageAction,
  runContainerAction,
  deployAction,
  runCommandAction,
  recordKnowledgeAction,
  ...FILE_ACTIONS,
];

export const devopsRole: RoleDefinition = {
  role: 'devops',
  specialization: ROLE_CATALOGUE.devops.specialization,
  actions: new ActionRegistry(DEVOPS_ACTIONS),
  observe,
};
