import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRedis } from '../../shared/redis/connection.js';
import { loadLuaScript } from '../../shared/redis/lua-loader.js';
import { testConfig } from '../helpers/config.js';
import { ROOT } from '../helpers/processes.js';
import { redisOptions } from '../../shared/options.js';

/** Every Lua script of the sources: a `<name>-<numKeys>.lua` file in a `lua/` folder. */
function scripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'includes' ? [] : scripts(path);
    return e.name.endsWith('.lua') ? [path] : [];
  });
}

const FILES = scripts(join(ROOT, 'shared'));
const TMP = mkdtempSync(join(tmpdir(), 'codegod-lua-scripts-'));
let redis: Redis;

beforeAll(() => {
  redis = createRedis(redisOptions(testConfig()), 'client');
});

afterAll(async () => {
  await redis?.quit();
  rmSync(TMP, { recursive: true, force: true });
});

describe('Lua scripts', () => {
  it('every script has its header, and Redis compiles it as loaded', async () => {
    expect(FILES.length).toBeGreaterThanOrEqual(14);
    for (const path of FILES) {
      const name = relative(ROOT, path);
      const text = readFileSync(path, 'utf8');
      expect(text.startsWith('--[['), `${name} opens with its header`).toBe(true);
      const header = text.slice(0, text.indexOf(']]'));
      expect(header, `${name} documents its keys`).toMatch(/Input:[^]*KEYS\[1/);
      expect(header, `${name} says what it returns`).toMatch(/Output:/);
      const script = loadLuaScript(pathToFileURL(path), z.unknown());
      expect(await redis.script('LOAD', script.source), name).toBe(script.sha);
    }
  });

  it('a script Redis does not know yet runs through EVAL and is cached after', async () => {
    const marker = randomBytes(8).toString('hex');
    const path = join(TMP, 'echo-1.lua');
    writeFileSync(path, `-- ${marker}\nreturn {KEYS[1], ARGV[1]}`);
    const script = loadLuaScript(pathToFileURL(path), z.tuple([z.string(), z.string()]));
    expect(await redis.script('EXISTS', script.sha)).toEqual([0]);
    expect(await script.run(redis, ['k'], ['v'])).toEqual(['k', 'v']);
    expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    expect(await script.run(redis, ['k2'], [7])).toEqual(['k2', '7']);
  });

  it('a reply its schema refuses fails the call with what was replied', async () => {
    const path = join(TMP, 'wrong-1.lua');
    writeFileSync(path, `-- ${randomBytes(8).toString('hex')}\nreturn 'surprise'`);
    const script = loadLuaScript(pathToFileURL(path), z.literal('ok'));
    await expect(script.run(redis, ['k'], [])).rejects.toThrow(/Lua script wrong replied "surprise"/);
  });
});
