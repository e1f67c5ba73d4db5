import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadLuaScript } from '../../shared/redis/lua-loader.js';

const DIR = mkdtempSync(join(tmpdir(), 'codegod-lua-loader-'));
mkdirSync(join(DIR, 'includes'));

function file(path: string, text: string): URL {
  writeFileSync(join(DIR, path), text);
  return pathToFileURL(join(DIR, path));
}

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('loadLuaScript', () => {
  it('pastes each include once, after the includes it includes, where it is first included', () => {
    file('includes/base.lua', 'local base = 1');
    file('includes/left.lua', '--- @include "base"\nlocal left = base + 1');
    file('includes/right.lua', "--- @include 'base'\nlocal right = base + 2");
    const script = loadLuaScript(
      file('sum-2.lua', '--[[ header ]]\n--- @include "includes/left"\n--- @include "includes/right"\n--- @include "includes/base"\nreturn left + right'),
      z.number(),
    );
    expect(script.name).toBe('sum');
    expect(script.numberOfKeys).toBe(2);
    const code = script.source.split('\n').filter((l) => l.trim() !== '');
    expect(code).toEqual(['--[[ header ]]', 'local base = 1', 'local left = base + 1', 'local right = base + 2', 'return left + right']);
    expect(script.sha).toMatch(/^[0-9a-f]{40}$/);
  });

  it('refuses a cycle, a missing include and a file not named <name>-<numberOfKeys>.lua', () => {
    file('includes/a.lua', '--- @include "b"');
    file('includes/b.lua', '--- @include "a"');
    expect(() => loadLuaScript(file('cycle-1.lua', '--- @include "includes/a"'), z.unknown())).toThrow(/Lua include cycle: .*a\.lua → .*b\.lua → .*a\.lua/);
    expect(() => loadLuaScript(file('lost-1.lua', '--- @include "includes/nowhere"'), z.unknown())).toThrow(/Lua include .*nowhere\.lua not found \(included from .*lost-1\.lua\)/);
    expect(() => loadLuaScript(file('unnamed.lua', 'return 1'), z.unknown())).toThrow(/must be named <name>-<numberOfKeys>\.lua/);
  });

  it('runs a script only with as many keys as its name says', async () => {
    const script = loadLuaScript(file('two-2.lua', 'return 1'), z.literal(1));
    // The check comes before any Redis call, so no connection is needed to see it refuse.
    await expect(script.run(undefined as never, ['only-one'], [])).rejects.toThrow(/two takes 2 keys, got 1/);
  });
});
