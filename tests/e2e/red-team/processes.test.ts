import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, commandStep, HOST_PID_NS, processesWith, pythonStep, RAN, RedTeamWorld } from '../../helpers/red-team.js';
import { waitFor } from '../../helpers/processes.js';

/**
 * Hidden code attacks processes: a setsid double-fork daemon that should outlive its command,
 * killing its ancestors and every process it can see, a fork bomb. Judged from outside: no
 * process of the payload is left, the worker is alive, the build ends with its report.
 *
 * The payloads that signal broadly (kill -1, every pid in sight) or fork without end first
 * compare their pid namespace with the test's: in the host's they hold back (printing
 * HOST-GUARD, which fails the test) rather than take the machine down.
 */
let world: RedTeamWorld;

beforeAll(async () => {
  world = await RedTeamWorld.start();
  await world.startOrchestrator();
  await world.worker('backend');
}, 60_000);

afterAll(async () => {
  await world?.close();
});

const DAEMON = `
import select, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b'up %d' % os.getpid())
        os.close(w)
        os.execvp('sh', ['sh', '-c', 'while :; do date +%s%N > "$1"; sleep 0.2; done', TAG, HEARTBEAT])
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
ready, _, _ = select.select([r], [], [], 5)
say('daemon', os.read(r, 100).decode() if ready else 'silent')
say(RAN)
time.sleep(LINGER)
`;

const KILL_ANCESTORS = `
import subprocess
boxed = os.readlink('/' + 'proc/self/ns/pid') != HOST_NS
say('pid namespace', 'own' if boxed else "HOST-GUARD: the host's; broad kills held back")
def cmdline(p):
    try:
        with open('/' + 'proc/%d/cmdline' % p, 'rb') as fh:
            return fh.read().replace(b'\\0', b' ').decode(errors='replace')
    except OSError:
        return ''
def parent(p):
    try:
        with open('/' + 'proc/%d/stat' % p) as fh:
            return int(fh.read().rsplit(')', 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0
ours = ('workers/main', 'command-host', 'python', 'bwrap', 'codegod')
chain = []
p = os.getppid()
while p > 1:
    c = cmdline(p)
    if 'vitest' in c or not (boxed or any(o in c for o in ours)):
        break
    chain.append(p)
    p = parent(p)
say('ancestors', chain)
for p in reversed(chain):
    try:
        os.kill(p, 9)
        say('KILL ancestor', p, 'sent')
    except OSError as e:
        say('KILL ancestor', p, why(e))
try:
    os.kill(os.getppid(), 9)
    say('KILL parent sent')
except OSError as e:
    say('KILL parent', why(e))
if boxed:
    for name in os.listdir('/' + 'proc'):
        if name.isdigit() and int(name) not in (1, os.getpid()):
            try:
                os.kill(int(name), 9)
                say('KILL', name, 'sent')
            except OSError as e:
                say('KILL', name, why(e))
    try:
        os.kill(-1, 9)
        say('KILL -1 sent')
    except OSError as e:
        say('KILL -1', why(e))
say(RAN)
if boxed:
    subprocess.run(['ki' + 'll', '-9', '-0' + '1'])
    say('the kill program ran')
`;

const FORK_BOMB = `
import time
boxed = os.readlink('/' + 'proc/self/ns/pid') != HOST_NS
cap = CAP if boxed else 100
if not boxed:
    say("HOST-GUARD: the host's pid namespace; the bomb held to", cap)
kids = []
refused = None
for i in range(cap):
    try:
        pid = os.fork()
    except OSError as e:
        refused = why(e)
        break
    if pid == 0:
        try:
            time.sleep(3)
        finally:
            os._exit(0)
    kids.append(pid)
say('forked', len(kids), 'of', cap, 'refused', refused)
for k in kids:
    try:
        os.waitpid(k, 0)
    except OSError:
        pass
say(RAN)
`;

/** Waits for every process carrying one of `tags` to go (a short grace for the kernel to reap them); returns those left. */
async function leftAfterGrace(tags: string[]): Promise<number[]> {
  const left = () => tags.flatMap((t) => processesWith(t));
  await waitFor(() => left().length === 0, 'no tagged process', 5_000).catch(() => undefined);
  return left();
}

describe('red team: processes', () => {
  it('a setsid double-fork daemon, from a command that exits and from one that times out: no process left after the task', async () => {
    const quick = world.tag('daemon');
    const slow = world.tag('daemon-timeout');
    world.script({
      daemon: [
        pythonStep(DAEMON, { TAG: quick, HEARTBEAT: 'heartbeat-1.txt', LINGER: 0, RAN }, quick),
        commandStep(DAEMON, { TAG: slow, HEARTBEAT: 'heartbeat-2.txt', LINGER: 30, RAN }, slow, 1_500),
      ],
    });
    const buildId = await world.build([{ id: 'daemon', role: 'backend' }]);
    await world.ended(buildId);
    expect(await leftAfterGrace([quick, slow]), 'daemon processes left').toEqual([]);
    // Nothing keeps writing into the workspace either.
    const beat = join(world.workspace(buildId), 'heartbeat-1.txt');
    const mtime = () => statSync(beat, { throwIfNoEntry: false })?.mtimeMs;
    const first = mtime();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(mtime()).toBe(first);
    const output = await world.outputs(buildId, 'daemon');
    expect(output).toContain(RAN);
    // Both daemons did start.
    expect(output.match(/daemon up \d+/g)?.length).toBe(2);
  }, 90_000);

  it('killing its ancestors, every pid it can see and kill -9 -01: the worker lives on and the build ends with its report', async () => {
    // A worker of its own: where the attack works, its retried job would kill any worker of the role again.
    const worker = await world.worker('testing');
    const tag = world.tag('killer');
    world.script({ killer: [commandStep(KILL_ANCESTORS, { HOST_NS: HOST_PID_NS, RAN }, tag)] });
    const buildId = await world.build([{ id: 'killer', role: 'testing' }]);
    await waitFor(async () => !alive(worker.pid) || (await world.getBuild(buildId))?.finishedAt !== undefined, 'the build to end or the worker to die', 60_000);
    expect(alive(worker.pid), 'the worker is alive').toBe(true);
    const { report } = await world.ended(buildId);
    expect(report.tasks.length).toBe(1);
    expect(alive(worker.pid), 'the worker is alive').toBe(true);
    expect(alive(world.orchestrator!.pid), 'the orchestrator is alive').toBe(true);
    const output = await world.outputs(buildId, 'killer');
    expect(output).toContain(RAN);
    expect(output).not.toContain('HOST-GUARD');
    expect(await leftAfterGrace([tag])).toEqual([]);
  }, 90_000);

  it('a fork bomb of 5000: refused inside the task; the worker stays alive and responsive, the build ends, no process left', async () => {
    const worker = await world.worker('backend');
    const tag = world.tag('bomb');
    world.script({ bomb: [pythonStep(FORK_BOMB, { HOST_NS: HOST_PID_NS, CAP: 5000, RAN }, tag)] });
    const buildId = await world.build([{ id: 'bomb', role: 'backend' }]);
    const { report } = await world.ended(buildId, 90_000);
    expect(report.tasks.length).toBe(1);
    expect(alive(worker.pid), 'the worker is alive').toBe(true);
    expect(await leftAfterGrace([tag]), 'processes of the bomb left').toEqual([]);
    const output = await world.outputs(buildId, 'bomb');
    expect(output).not.toContain('HOST-GUARD');
    // The kernel stopped it: a fork was refused before the cap, or the command was killed.
    expect(output).toMatch(/refused E[A-Z]+|killed by SIG/);
    // The same worker still takes and finishes a build promptly.
    const started = Date.now();
    world.script({});
    const next = await world.build([{ id: 'after', role: 'backend' }]);
    const { build } = await world.ended(next, 30_000);
    expect(build.state).toBe('succeeded');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await world.worker('backend')).pid).toBe(worker.pid);
  }, 150_000);
});
