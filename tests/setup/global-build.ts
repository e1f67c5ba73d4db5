import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = ['shared', 'orchestrator', 'workers', 'scripts'];

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (/\.(ts|lua|js|css)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * End-to-end tests run the real `codegod` binary, which runs dist/ when it exists. A dist/
 * older than the sources (TypeScript, and the Lua scripts and dashboard assets the build copies) would test
 * yesterday's code, so it is rebuilt first, as `npm run build` does (a few seconds).
 */
export default function setup(): void {
  const compiled = join(ROOT, 'dist/orchestrator/cli/main.js');
  const builtAt = existsSync(compiled) ? statSync(compiled).mtimeMs : 0;
  if (builtAt >= Math.max(...SOURCES.map((d) => newestSource(join(ROOT, d))))) return;
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
