import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { LuaScript } from './lua-script.js';

/**
 * Loads codegod's Lua scripts from `.lua` files, as BullMQ does:
 *
 * - A script is one file named `<name>-<numberOfKeys>.lua`; it opens with a `--[[ … ]]`
 *   header saying what it does, its KEYS, its ARGV and what it returns.
 * - A line `--- @include "<name>"` is replaced by the file `<name>.lua`, found relative to
 *   the file that includes it (scripts say `"includes/emit"`, includes name their siblings).
 *   Each include is pasted once per script, where it is first included, after the includes it
 *   includes itself, so a helper may rely on the locals of the helpers it includes.
 *
 * The files ship beside the compiled modules (`npm run build` copies them into dist/), are
 * read when the module that defines the script is first imported, and each file is read
 * once per process.
 */
const INCLUDE_LINE = /^---[ \t]*@include[ \t]+(["'])(.+?)\1[ \t;]*$/gm;
const SCRIPT_NAME = /^([A-Za-z][A-Za-z0-9]*)-(\d+)\.lua$/;

const files = new Map<string, string>();

function read(path: string, includedFrom: string | undefined): string {
  let text = files.get(path);
  if (text === undefined) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && includedFrom) throw new Error(`Lua include ${path} not found (included from ${includedFrom})`);
      throw err;
    }
    files.set(path, text);
  }
  return text;
}

/**
 * The text of the last file of `chain` (the files including it, outermost first) with its
 * includes resolved; `emitted` holds the includes the script has already.
 */
function expand(chain: readonly string[], emitted: Set<string>): string {
  const path = chain[chain.length - 1]!;
  // A fresh RegExp per file: the replacer recurses, and a global RegExp carries state.
  return read(path, chain[chain.length - 2]).replace(new RegExp(INCLUDE_LINE), (_line, _quote, name: string) => {
    const target = resolve(dirname(path), `${name}.lua`);
    if (chain.includes(target)) throw new Error(`Lua include cycle: ${[...chain, target].join(' → ')}`);
    if (emitted.has(target)) return '';
    emitted.add(target);
    return expand([...chain, target], emitted).trimEnd();
  });
}

/** The script in `file` (a `file:` URL, usually `new URL('./lua/<name>-<n>.lua', import.meta.url)`), its replies checked by `reply`. */
export function loadLuaScript<Reply>(file: URL, reply: z.ZodType<Reply>): LuaScript<Reply> {
  const path = fileURLToPath(file);
  const match = SCRIPT_NAME.exec(basename(path));
  if (!match) throw new Error(`Lua script file ${path} must be named <name>-<numberOfKeys>.lua`);
  return new LuaScript(match[1]!, Number(match[2]), expand([path], new Set()), reply);
}
