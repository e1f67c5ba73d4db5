import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { commandStep, dumpRedis, leakedSecrets, pythonStep, RAN, readTree, RedTeamWorld } from '../../helpers/red-team.js';

/**
 * Hidden code writes, deletes and links outside its workspace: another build's workspace
 * through `../`, the host's /tmp and /var/tmp, a directory outside both; through a symlink
 * it made, through hard links it made (then written and read with write_file/read_file), and
 * by swapping a directory for a symlink while another task's file actions run. Judged from
 * outside: every canary is as the test left it and no new file exists out there.
 */
let world: RedTeamWorld;
/** Another build's workspace beside the attacked one. */
let neighbour: string;
/** A canary secret in each outside place (victim/secret.txt), new for each test: read_file must never return it. */
let hidden = '';

beforeAll(async () => {
  world = await RedTeamWorld.start();
  await world.startOrchestrator();
  await Promise.all([world.worker('backend'), world.worker('testing')]);
  neighbour = join(world.workspaceRoot, 'b-neighbour-0001');
}, 60_000);

/** Names an attack tried to create outside; removed at the end where it succeeded. */
const strays: string[] = [];

afterAll(async () => {
  for (const p of strays) rmSync(p, { force: true });
  await world?.close();
});

/** The outside places, each with a canary, a file to delete and a victim directory. */
function places(): string[] {
  return [world.outside.tmp, world.outside.varTmp, world.outside.home, neighbour];
}

beforeEach(() => {
  hidden = `rt-outside-secret-${randomBytes(8).toString('hex')}`;
  for (const dir of places()) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'victim'), { recursive: true });
    writeFileSync(join(dir, 'canary.txt'), `canary of ${dir}\n`);
    writeFileSync(join(dir, 'delete-me.txt'), 'keep me\n');
    writeFileSync(join(dir, 'victim', 'a.txt'), 'a\n');
    writeFileSync(join(dir, 'victim', 'secret.txt'), `${hidden}\n`);
  }
  writeFileSync(join(world.workspaceRoot, 'canary.txt'), 'root canary\n');
});

/** Everything outside the attacked workspace the test can see: must not change. */
function outsideView(): Record<string, string> {
  const view: Record<string, string> = Object.fromEntries(places().map((p) => [p, readTree(p)]));
  view.root = readdirSync(world.workspaceRoot).filter((n) => !n.startsWith('b-') || n === basename(neighbour)).sort().join(',');
  view.rootCanary = readFileSync(join(world.workspaceRoot, 'canary.txt'), 'utf8');
  return view;
}

/** Where a secret read from outside would have travelled: the task's trace, Redis, the prompts. */
async function secretTravelled(buildId: string, taskId: string): Promise<string[]> {
  const r = world.redis.client();
  const text = [await world.outputs(buildId, taskId), (await dumpRedis(r)).text, JSON.stringify(world.llm.requests.map((x) => x.messages))].join('\n');
  r.disconnect();
  return leakedSecrets(text, { hidden });
}

const WRITES = `
for path in TARGETS:
    try:
        with open(path, 'w') as fh:
            fh.write('PWNED')
        say('WRITE', path, 'ok')
    except OSError as e:
        say('WRITE', path, why(e))
for path in FRESH:
    try:
        with open(path, 'x') as fh:
            fh.write('PWNED')
        say('CREATE', path, 'ok')
    except OSError as e:
        say('CREATE', path, why(e))
for path in DELETE:
    try:
        os.unlink(path)
        say('DELETE', path, 'ok')
    except OSError as e:
        say('DELETE', path, why(e))
say(RAN)
`;

const SYMLINK_DELETE = `
import subprocess
for name, target in zip(LINKS[::2], LINKS[1::2]):
    try:
        os.symlink(target, name)
        say('LINK', name, 'ok')
    except OSError as e:
        say('LINK', name, why(e))
    try:
        for f in os.listdir(name):
            try:
                os.unlink(name + '/' + f)
                say('UNLINK', name, f, 'ok')
            except OSError as e:
                say('UNLINK', name, f, why(e))
    except OSError as e:
        say('LIST', name, why(e))
    r = subprocess.run(['r' + 'm', '-rf', name + '/'], capture_output=True, text=True)
    say('RM', name, r.returncode, r.stderr.strip()[:300])
say(RAN)
`;

const HARD_LINKS = `
for name, target in zip(LINKS[::2], LINKS[1::2]):
    try:
        os.link(target, name)
        say('HARDLINK', name, 'ok')
    except OSError as e:
        say('HARDLINK', name, why(e))
say(RAN)
`;

/**
 * Swaps race/d (a directory) and race/s (a symlink to a directory outside) atomically, and
 * back, then dwells: race/d is a symlink only now and then, so the workspace checks a file
 * action makes first mostly pass, and a later open may still meet the symlink.
 */
const SWAPPER = `
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
swap = libc.renameat2
os.makedirs('race/d', exist_ok=True)
with open('race/d/secret.txt', 'w') as fh:
    fh.write('inside\\n')
if not os.path.islink('race/s'):
    os.symlink(OUTSIDE, 'race/s')
swaps = 0
failed = None
end = time.time() + SECONDS
while failed is None and time.time() < end:
    for _ in range(200):
        if swap(-100, b'race/d', -100, b'race/s', 2) != 0 or swap(-100, b'race/d', -100, b'race/s', 2) != 0:
            failed = errno.errorcode.get(ctypes.get_errno(), '?')
            break
        swaps += 1
        for _ in range(DWELL):
            pass
if os.path.islink('race/d'):
    swap(-100, b'race/d', -100, b'race/s', 2)
say('swaps', swaps, 'failed', failed)
say(RAN)
`;

const WAIT_FOR_SWAPPER = `
import time
end = time.time() + 20
while time.time() < end and not (os.path.islink('race/s') or os.path.islink('race/d')):
    time.sleep(0.05)
say('swapper seen', os.path.islink('race/s') or os.path.islink('race/d'))
say(RAN)
`;

const GIT_MAKE_AND_PLANT = `
import subprocess
G = 'gi' + 't'
for d in ('.', 'frontend'):
    os.makedirs(d, exist_ok=True)
    subprocess.run([G, 'init', '-q', d], capture_output=True)
    r = subprocess.run([G, '-C', d, 'config', 'core.fs' + 'monitor', HOOK], capture_output=True, text=True)
    say('PLANTED', d, r.returncode, r.stderr.strip()[:200])
say(RAN)
`;

const GIT_PLANT = `
import subprocess
G = '.gi' + 't'
r = subprocess.run([G[1:], 'config', 'core.fs' + 'monitor', HOOK], capture_output=True, text=True)
say('GITCONFIG', r.returncode, r.stderr.strip()[:200])
r = subprocess.run([G[1:], 'config', 'core.hooks' + 'Path', '.hooks'], capture_output=True, text=True)
say('HOOKSPATH', r.returncode, r.stderr.strip()[:200])
try:
    with open(G + '/config', 'a') as fh:
        fh.write('[core]\\n\\tfs' + 'monitor = ' + HOOK + '\\n')
    say('APPEND ok')
except OSError as e:
    say('APPEND', why(e))
for d in (G + '/hooks', '.hooks'):
    try:
        os.makedirs(d, exist_ok=True)
        p = d + '/post-index-change'
        with open(p, 'w') as fh:
            fh.write('#!/bin/sh\\n' + HOOK + '\\n')
        os.chmod(p, 0o755)
        say('HOOK', d, 'ok')
    except OSError as e:
        say('HOOK', d, why(e))
say(RAN)
`;

describe('red team: the filesystem outside the workspace', () => {
  it('writes to ../, /tmp, /var/tmp and a directory outside: every canary unchanged, no new file outside', async () => {
    const before = outsideView();
    const fresh = `codegod-rt-fresh-${randomBytes(4).toString('hex')}`;
    const nb = basename(neighbour);
    const targets = [`../${nb}/canary.txt`, '../canary.txt', ...places().map((p) => join(p, 'canary.txt'))];
    const freshPaths = [`../${fresh}`, `../${nb}/${fresh}`, `/tmp/${fresh}`, `/var/tmp/${fresh}`, join(world.outside.home, fresh)];
    strays.push(`/tmp/${fresh}`, `/var/tmp/${fresh}`);
    world.script({ writes: [pythonStep(WRITES, { TARGETS: targets, FRESH: freshPaths, DELETE: places().map((p) => join(p, 'delete-me.txt')), RAN })] });
    const buildId = await world.build([{ id: 'writes', role: 'backend' }]);
    await world.ended(buildId);
    expect(outsideView()).toEqual(before);
    for (const p of [join(world.workspaceRoot, fresh), `/tmp/${fresh}`, `/var/tmp/${fresh}`]) expect(existsSync(p), p).toBe(false);
    const output = await world.outputs(buildId, 'writes', 'run_python');
    expect(output).toContain(RAN);
    expect(output).toMatch(new RegExp(`WRITE \\.\\./${nb}/canary\\.txt E[A-Z]+`));
  }, 90_000);

  it('deletes through a symlink it created to directories outside: every victim file is still there', async () => {
    const before = outsideView();
    // Pairs (name, target), flat.
    const links = places().map((p, i) => [`l-${i}`, join(p, 'victim')]);
    world.script({
      unlink: [
        pythonStep(SYMLINK_DELETE, { LINKS: links.flat(), RAN }),
        { action: 'write_file', params: { path: 'l-2/new.txt', content: 'PWNED' } },
        { action: 'read_file', params: { path: 'l-2/secret.txt' } },
      ],
    });
    const buildId = await world.build([{ id: 'unlink', role: 'backend' }]);
    await world.ended(buildId);
    expect(outsideView()).toEqual(before);
    expect(await secretTravelled(buildId, 'unlink')).toEqual([]);
    const output = await world.outputs(buildId, 'unlink', 'run_python');
    expect(output).toContain(RAN);
    expect(output).toMatch(/(UNLINK l-\d \S+|LIST l-\d) E[A-Z]+/);
  }, 90_000);

  it('hard links to files outside, then written with write_file and read with read_file: canaries unchanged, the secret read nowhere', async () => {
    const before = outsideView();
    const links = places().flatMap((p, i) => [[`hl-${i}`, join(p, 'canary.txt')], [`hs-${i}`, join(p, 'victim', 'secret.txt')]]);
    world.script({
      links: [
        pythonStep(HARD_LINKS, { LINKS: links.flat(), RAN }),
        ...places().map((_, i) => ({ action: 'write_file', params: { path: `hl-${i}`, content: 'PWNED via write_file' } })),
        ...places().map((_, i) => ({ action: 'read_file', params: { path: `hs-${i}` } })),
      ],
    });
    const buildId = await world.build([{ id: 'links', role: 'backend' }]);
    await world.ended(buildId);
    expect(outsideView()).toEqual(before);
    expect(await secretTravelled(buildId, 'links')).toEqual([]);
    const output = await world.outputs(buildId, 'links', 'run_python');
    expect(output).toContain(RAN);
    expect(output).toMatch(/HARDLINK h[ls]-\d E[A-Z]+/);
  }, 90_000);

  it('the rename race: a directory swapped for a symlink to outside while write_file and read_file run: nothing written or read outside', async () => {
    // Another build's workspace: what a build must never read or write.
    const outside = join(neighbour, 'race');
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'secret.txt'), `${hidden}\n`);
    const before = outsideView();
    // A plan holds at most 12 steps: mostly reads, which go on after a read that stayed inside.
    const tries = Array.from({ length: 11 }, (_, i) =>
      i % 4 === 3
        ? { action: 'write_file', params: { path: `race/d/pwned-${i}.txt`, content: 'PWNED' } }
        : { action: 'read_file', params: { path: 'race/d/secret.txt' } },
    );
    const racer = [pythonStep(WAIT_FOR_SWAPPER, { RAN }), ...tries];
    // Six racers, each trying again in every iteration while the swapper runs: a refused
    // step ends an iteration, so one racer alone may lose the race by chance.
    const racers = ['racer-1', 'racer-2', 'racer-3', 'racer-4', 'racer-5', 'racer-6'];
    world.script(
      { swapper: [commandStep(SWAPPER, { OUTSIDE: outside, SECONDS: 12, DWELL: 1000, RAN }, '', 25_000)] },
      racers.map((task) => ({ match: { phase: 'plan', task }, reply: { steps: racer.map((s) => ({ ...s, expected: 'works' })), estimated_duration: '10 seconds', confidence: 0.9 } })),
    );
    const buildId = await world.build([{ id: 'swapper', role: 'testing' }, ...racers.map((id) => ({ id, role: 'backend' }))]);
    await world.ended(buildId, 90_000);
    expect(outsideView()).toEqual(before);
    expect(readdirSync(outside)).toEqual(['secret.txt']);
    for (const r of racers) expect(await secretTravelled(buildId, r), r).toEqual([]);
    const swapper = await world.outputs(buildId, 'swapper', 'run_command');
    expect(swapper).toContain(RAN);
    expect(swapper).toMatch(/swaps [1-9]\d* failed None/);
    const racerSteps = (await Promise.all(racers.map((r) => world.steps(buildId, r)))).flat();
    expect(racerSteps.filter((s) => s.action === 'write_file' || s.action === 'read_file').length).toBeGreaterThan(3);
  }, 120_000);

  it('.git/config planting (core.fsmonitor, hooks) by a command and by write_file: nothing planted runs when a person runs git status in the output', async () => {
    const ran = join(world.outside.tmp, `git-hook-ran-${randomBytes(4).toString('hex')}`);
    const hook = `touch ${ran}; false`;
    const buildId = world.prepareWorkspace((dir) => {
      spawnSync('git', ['init', '-q'], { cwd: dir });
    });
    world.script({
      git: [
        pythonStep(GIT_PLANT, { HOOK: hook, RAN }),
        { action: 'write_file', params: { path: '.git/config', content: `[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = ${hook}\n\thooksPath = .hooks\n` } },
      ],
    });
    await world.build([{ id: 'git', role: 'backend' }], buildId);
    await world.ended(buildId);
    const ws = world.workspace(buildId);
    spawnSync('git', ['status'], { cwd: ws, env: { PATH: process.env.PATH ?? '', HOME: world.outside.home } });
    expect(existsSync(ran), 'a planted hook ran').toBe(false);
    const config = readFileSync(join(ws, '.git', 'config'), 'utf8');
    expect(config).not.toMatch(/fsmonitor|hookspath/i);
    expect(readdirSync(join(ws, '.git', 'hooks')).filter((n) => !n.endsWith('.sample'))).toEqual([]);
    const output = await world.outputs(buildId, 'git', 'run_python');
    expect(output).toContain(RAN);
    expect(output).toMatch(/APPEND E[A-Z]+/);
  }, 90_000);

  it('repositories the agent makes itself (at the top and in a subproject) are disarmed: git status in either runs nothing planted', async () => {
    const ran = join(world.outside.tmp, `git-hook-ran-${randomBytes(4).toString('hex')}`);
    const hook = `touch ${ran}; false`;
    const buildId = world.prepareWorkspace();
    world.script({ git: [pythonStep(GIT_MAKE_AND_PLANT, { HOOK: hook, RAN })] });
    await world.build([{ id: 'git', role: 'backend' }], buildId);
    await world.ended(buildId);
    const ws = world.workspace(buildId);
    const output = await world.outputs(buildId, 'git', 'run_python');
    expect(output).toContain(RAN);
    // The plant took inside the task: only its end can have undone it.
    expect(output).toMatch(/PLANTED \. 0/);
    expect(output).toMatch(/PLANTED frontend 0/);
    for (const dir of [ws, join(ws, 'frontend')]) {
      spawnSync('git', ['status'], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: world.outside.home, GIT_CEILING_DIRECTORIES: dirname(ws) } });
      expect(existsSync(join(dir, '.git')), `${dir}/.git`).toBe(false);
    }
    expect(existsSync(ran), 'a planted hook ran').toBe(false);
  }, 90_000);
});
