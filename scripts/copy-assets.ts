/**
 * The step of `npm run build` after tsc: `node dist/scripts/copy-assets.js` copies what the
 * compiled modules read at run time and tsc does not emit into dist/, at the same paths: the
 * Lua scripts (`*.lua`, read by shared/redis/lua-loader.ts beside the module that loads
 * them) and the dashboard's browser files (orchestrator/http/assets/, served as they are).
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, from dist/scripts/copy-assets.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Folders of sources, and which of their files ship as they are. */
const ASSETS: ReadonlyArray<{ dir: string; ship: (file: string) => boolean }> = [
  { dir: 'shared', ship: (f) => extname(f) === '.lua' },
  { dir: 'orchestrator/http/assets', ship: (f) => ['.js', '.css'].includes(extname(f)) },
];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

for (const { dir, ship } of ASSETS) {
  for (const file of files(join(ROOT, dir)).filter(ship)) {
    const target = join(ROOT, 'dist', relative(ROOT, file));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(file, target);
  }
}
