import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { z } from 'zod';

/**
 * A Lua script with a typed reply, run by SHA with a fallback to EVAL when Redis answers
 * NOSCRIPT (after a restart the script cache is empty; the fallback reloads it
 * transparently). Scripts come from `.lua` files through `loadLuaScript` (lua-loader.ts);
 * every reply is checked against the script's zod schema, so a caller gets typed values,
 * never a raw array to cast.
 */
export class LuaScript<Reply> {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly numberOfKeys: number,
    readonly source: string,
    private readonly reply: z.ZodType<Reply>,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<Reply> {
    if (keys.length !== this.numberOfKeys) {
      throw new Error(`Lua script ${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    return this.decode(await this.eval(redis, keys, args));
  }

  private async eval(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return await redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }

  /** A reply the schema refuses is a bug in the script or its caller, not bad input: it keeps its stack. */
  private decode(raw: unknown): Reply {
    const parsed = this.reply.safeParse(raw);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new Error(`Lua script ${this.name} replied ${JSON.stringify(raw).slice(0, 200)}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim());
  }
}
