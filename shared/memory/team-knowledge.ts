import type { Redis } from 'ioredis';
import { z } from 'zod';
import { CodegodError } from '../domain/errors.js';
import type { Keys } from '../redis/keys.js';
import { loadLuaScript } from '../redis/lua-loader.js';

/**
 * What the agents of one build learn and share: the venv path, the python version, the entry
 * point. Any agent of the build may add to it; agents of other builds may read it but never
 * write it, so one build's findings cannot leak into (or corrupt) another's workspace.
 */
export const KNOWLEDGE_KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

export const KNOWLEDGE_LIMITS = {
  valueMaxChars: 2_000,
  keysPerBuild: 200,
} as const;

/** Build ids become part of key names: no braces or colons, which would break the hash tag. */
export const KNOWLEDGE_BUILD_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Sets a knowledge entry unless the build is full: 1 when set, 0 when full (see the script's header). */
const SET_CAPPED = loadLuaScript(new URL('./lua/setKnowledgeCapped-1.lua', import.meta.url), z.union([z.literal(0), z.literal(1)]));

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

  /**
   * Records `key = value` in the knowledge of `buildId` on behalf of an agent working on
   * `writerBuildId`. Refused when the two differ, when the key or value breaks the limits, or
   * when the build already holds its maximum number of keys (overwriting a key always works).
   */
  async set(buildId: string, writerBuildId: string, key: string, value: string): Promise<void> {
    checkBuildId('build', buildId);
    checkBuildId('writer build', writerBuildId);
    if (writerBuildId !== buildId) {
      throw new CodegodError(
        'KNOWLEDGE_DENIED',
        `knowledge of build ${buildId} is read-only to agents of build ${writerBuildId}`,
      );
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
    const stored = await SET_CAPPED.run(this.redis, [this.keys.knowledge(buildId)], [key, value, KNOWLEDGE_LIMITS.keysPerBuild]);
    if (stored !== 1) {
      throw new CodegodError(
        'KNOWLEDGE_INVALID',
        `build ${buildId} already holds ${KNOWLEDGE_LIMITS.keysPerBuild} knowledge keys; cannot add '${key}'`,
      );
    }
  }
}
