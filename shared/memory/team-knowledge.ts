import type { Redis } from 'ioredis';
import { z } from 'zod';
import { CodegodError } from '../domain/errors.js';
import type { Role } from '../domain/roles.js';
import type { Keys } from '../redis/keys.js';
import { loadLuaScript } from '../redis/lua-loader.js';

/**
 * What the agents of one build learn and share: the venv path, the python version, the entry
 * point, the test commands. Every agent of the build reads it; each key has one owning role
 * that alone may write it (the backend owns the venv, the testing agents the test commands),
 * so one agent cannot overwrite what another found out about its own work. Agents of other
 * builds may read it but never write it, so one build's findings cannot leak into (or
 * corrupt) another's workspace.
 */
export const KNOWLEDGE_KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

export const KNOWLEDGE_LIMITS = {
  valueMaxChars: 2_000,
  keysPerBuild: 200,
} as const;

/** Build ids become part of key names: no braces or colons, which would break the hash tag. */
export const KNOWLEDGE_BUILD_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Which role owns which keys: named keys, and every key starting with one of the prefixes.
 * A key no role claims belongs to the role that writes it first.
 */
export const KNOWLEDGE_OWNERS: Readonly<Record<Role, { keys: readonly string[]; prefixes: readonly string[] }>> = {
  backend: { keys: ['venv_path', 'python_version', 'api_entry_point'], prefixes: ['venv_', 'python_', 'api_', 'backend_'] },
  frontend: { keys: ['package_manager', 'build_command', 'entry_point'], prefixes: ['npm_', 'node_', 'package_', 'build_', 'frontend_'] },
  devops: { keys: ['image', 'ports'], prefixes: ['image_', 'port_', 'docker_', 'container_', 'deploy_'] },
  testing: { keys: [], prefixes: ['test_'] },
};

/** The role that owns `key` by the table above, if any. */
export function knowledgeOwner(key: string): Role | undefined {
  for (const [role, own] of Object.entries(KNOWLEDGE_OWNERS) as Array<[Role, (typeof KNOWLEDGE_OWNERS)[Role]]>) {
    if (own.keys.includes(key) || own.prefixes.some((p) => key.startsWith(p))) return role;
  }
  return undefined;
}

/** The keys a role may write, as a line for its prompt and for refusals. */
export function ownedKeysOf(role: Role): string {
  const own = KNOWLEDGE_OWNERS[role];
  return [...own.keys, ...own.prefixes.map((p) => `${p}*`)].join(', ') || 'none by name';
}

/** Sets an entry for its owner unless the build is full: 'ok', 'full', or the role that owns the key (see the script's header). */
const SET_OWNED = loadLuaScript(new URL('./lua/setOwnedKnowledge-2.lua', import.meta.url), z.string().min(1));

export interface KnowledgeEntry {
  key: string;
  value: string;
  /** The role that owns the key (absent for a key written before owners were recorded). */
  owner?: string;
}

/** Who writes: an agent of `buildId` with `role`. */
export interface KnowledgeWriter {
  buildId: string;
  role: Role;
}

function checkBuildId(what: string, buildId: string): void {
  if (!KNOWLEDGE_BUILD_ID_PATTERN.test(buildId)) {
    throw new CodegodError('KNOWLEDGE_INVALID', `${what} '${buildId.slice(0, 80)}' is not a valid build id`, { exitCode: 2 });
  }
}

export class TeamKnowledge {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Everything the build's agents have recorded; `{}` for a build with none. */
  async get(buildId: string): Promise<Record<string, string>> {
    checkBuildId('build', buildId);
    return this.redis.hgetall(this.keys.knowledge(buildId));
  }

  /** Every entry with its owning role, sorted by key. */
  async entries(buildId: string): Promise<KnowledgeEntry[]> {
    checkBuildId('build', buildId);
    const [values, owners] = await Promise.all([this.redis.hgetall(this.keys.knowledge(buildId)), this.redis.hgetall(this.keys.knowledgeOwners(buildId))]);
    return Object.keys(values)
      .sort()
      .map((key) => ({ key, value: values[key]!, ...(owners[key] ? { owner: owners[key] } : {}) }));
  }

  /**
   * Records `key = value` in the knowledge of `buildId` on behalf of `writer`. Refused
   * (KNOWLEDGE_DENIED) when the writer works on another build or its role does not own the
   * key; refused (KNOWLEDGE_INVALID) when the key or value breaks the limits, or when the
   * build already holds its maximum number of keys (overwriting a key always works).
   */
  async set(buildId: string, writer: KnowledgeWriter, key: string, value: string): Promise<void> {
    checkBuildId('build', buildId);
    checkBuildId('writer build', writer.buildId);
    if (writer.buildId !== buildId) {
      throw new CodegodError('KNOWLEDGE_DENIED', `knowledge of build ${buildId} is read-only to agents of build ${writer.buildId}`);
    }
    if (!KNOWLEDGE_KEY_PATTERN.test(key)) {
      throw new CodegodError(
        'KNOWLEDGE_INVALID',
        `knowledge key '${key.slice(0, 80)}' must match ${KNOWLEDGE_KEY_PATTERN.source} (e.g. venv_path)`,
        { exitCode: 2 },
      );
    }
    if (value.length > KNOWLEDGE_LIMITS.valueMaxChars) {
      throw new CodegodError(
        'KNOWLEDGE_INVALID',
        `knowledge value of '${key}' has ${value.length} characters; at most ${KNOWLEDGE_LIMITS.valueMaxChars} are allowed`,
        { exitCode: 2 },
      );
    }
    const outcome = await SET_OWNED.run(
      this.redis,
      [this.keys.knowledge(buildId), this.keys.knowledgeOwners(buildId)],
      [key, value, KNOWLEDGE_LIMITS.keysPerBuild, writer.role, knowledgeOwner(key) ?? ''],
    );
    if (outcome === 'ok') return;
    if (outcome === 'full') {
      throw new CodegodError('KNOWLEDGE_INVALID', `build ${buildId} already holds ${KNOWLEDGE_LIMITS.keysPerBuild} knowledge keys; cannot add '${key}'`);
    }
    throw new CodegodError(
      'KNOWLEDGE_DENIED',
      `team knowledge '${key}' is owned by the ${String(outcome)} agents: a ${writer.role} agent may read it but not write it (${writer.role} owns: ${ownedKeysOf(writer.role)})`,
    );
  }
}
