import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

/**
 * The layers of docs/ARCHITECTURE.md, held for every import (static and dynamic) of the
 * sources: subsystems under shared/ depend only on lower ones, programs depend downward
 * only, and workers/ and orchestrator/ never import each other.
 */
const SHARED_RANK: Record<string, number> = {
  domain: 0,
  '.': 1, // config.ts, logger.ts, process.ts, programs.ts
  redis: 2,
  telemetry: 3,
  llm: 4,
  memory: 4,
  sandbox: 4,
  engine: 5,
};

/** The unit a file belongs to, e.g. `shared/engine`, `workers`, `orchestrator/cli`. */
function unitOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'shared') return parts.length > 2 ? `shared/${parts[1]}` : 'shared/.';
  if (parts[0] === 'orchestrator') return parts.length > 2 && (parts[1] === 'cli' || parts[1] === 'http') ? `orchestrator/${parts[1]}` : 'orchestrator';
  if (parts[0] === 'scripts') return parts.length > 2 ? `scripts/${parts[1]}` : 'scripts';
  return parts[0]!;
}

/** Units each program unit may import besides shared/ and itself. */
const PROGRAM_DEPS: Record<string, readonly string[]> = {
  workers: [],
  orchestrator: ['orchestrator/http'],
  'orchestrator/http': [],
  'orchestrator/cli': [],
  'scripts/llm-server': [],
};

function allowed(from: string, to: string): boolean {
  if (from === to) return true;
  if (to.startsWith('tests')) return false;
  if (from.startsWith('shared/')) {
    if (!to.startsWith('shared/')) return false;
    const a = SHARED_RANK[from.slice(7)];
    const b = SHARED_RANK[to.slice(7)];
    if (a === undefined || b === undefined) return false;
    return b < a || (b === a && from === 'shared/.');
  }
  if (to.startsWith('shared/')) return true;
  const deps = PROGRAM_DEPS[from];
  // Benchmarks and maintenance scripts sit on top of everything.
  if (deps === undefined) return from.startsWith('scripts');
  return deps.includes(to);
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sources(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => relative(ROOT, resolve(dirname(join(ROOT, file)), m[2]!)));
}

const FILES = ['shared', 'workers', 'orchestrator', 'scripts'].flatMap(sources);

describe('layers', () => {
  it('finds the sources', () => {
    expect(FILES.length).toBeGreaterThan(80);
    expect(FILES.some((f) => f.startsWith('shared/engine/'))).toBe(true);
  });

  it('every import goes downward', () => {
    const violations: string[] = [];
    for (const file of FILES) {
      const from = unitOf(file);
      for (const target of importsOf(file)) {
        const to = unitOf(target);
        if (!allowed(from, to)) violations.push(`${file} → ${target} (${from} may not import ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('the shell parser knows nothing of the command policy', () => {
    const parser = FILES.filter((f) => f.startsWith('shared/sandbox/shell/'));
    expect(parser).toContain('shared/sandbox/shell/parser.ts');
    for (const file of parser) {
      for (const target of importsOf(file)) expect(target, `${file} imports ${target}`).toMatch(/^shared\/sandbox\/shell\//);
    }
  });

  it("the dashboard's browser modules import only each other", () => {
    const dir = 'orchestrator/http/assets';
    const modules = readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.js'));
    expect(modules).toContain('build.js');
    let found = 0;
    for (const file of modules) {
      const text = readFileSync(join(ROOT, dir, file), 'utf8');
      // JSDoc `@import` lines are types for the checker, not code the browser loads.
      const code = text.replace(/\/\*\*[^]*?\*\//g, '');
      const specifiers = [...code.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*(['"])([^'"]+)\1/gm), ...code.matchAll(/\bimport\s*\(\s*(['"])([^'"]+)\1/g)];
      found += specifiers.length;
      for (const m of specifiers) {
        expect(m[2], `${file} imports ${m[2]}`).toMatch(/^\.\/[a-z-]+\.js$/);
      }
    }
    expect(found).toBeGreaterThan(3);
  });

  it('the rule itself refuses what it must', () => {
    expect(allowed('workers', 'orchestrator')).toBe(false);
    expect(allowed('orchestrator', 'workers')).toBe(false);
    expect(allowed('orchestrator/cli', 'orchestrator')).toBe(false);
    expect(allowed('orchestrator/cli', 'workers')).toBe(false);
    expect(allowed('shared/engine', 'workers')).toBe(false);
    expect(allowed('shared/domain', 'shared/redis')).toBe(false);
    expect(allowed('shared/llm', 'shared/sandbox')).toBe(false);
    expect(allowed('shared/engine', 'shared/memory')).toBe(true);
    expect(allowed('scripts/bench', 'workers')).toBe(true);
    expect(unitOf('orchestrator/cli/main.ts')).toBe('orchestrator/cli');
    expect(importsOf('workers/main.ts')).toContain('shared/engine/role-worker.js');
  });
});
