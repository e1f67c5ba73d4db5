import { execa, type ResultPromise } from 'execa';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CODEGOD_TEST_IMAGE,
  STACK_ENGINE,
  STACK_NETNS,
  TEST_IMAGES,
  copyToStackEngine,
  docker,
  dockerOk,
  ensureCodegodImage,
  until,
} from '../../helpers/docker.js';
import { roleAgentSecurity } from '../../helpers/agent-security.js';

/**
 * The container tier of the agent sandbox, measured from outside: the codegod image run with
 * exactly the security settings docker-compose.agents.yml gives the role agents (read from
 * the file: its seccomp profile, unmasked /proc, /dev/net/tun; non-root, read-only, no
 * capability), on a backplane network with a password-protected Redis and an egress network
 * without inter-container traffic, as compose wires them. Inside it, commands run the way the
 * executor runs them: bubblewrap, and pasta for egress with its sockets bound to the
 * interface of the default route.
 *
 * The "internet" is an address in a network namespace of the test's own behind the engine's
 * namespace (a veth pair and a route): reached like any outside host, through the default
 * route, the engine's forwarding and its masquerade. Creating it needs root.
 */
const tag = `cgsbx${process.pid}`;
const SECRET = `redis-secret-${process.pid}-${Date.now()}`;
const CANARY = `environ-canary-${process.pid}-${Date.now()}`;
const OUTSIDE = { ip: `198.51.100.${(process.pid % 200) + 20}`, port: 8099 };
const LINK = { host: `10.253.${process.pid % 250}.1`, outside: `10.253.${process.pid % 250}.2` };
const scratch = mkdtempSync(join(tmpdir(), 'codegod-sandbox-tier-'));
const outsideNetns = join(scratch, 'outside.netns');
const created = { containers: [] as string[], networks: [] as string[], veth: false, netns: false };
let outsideServer: ResultPromise | undefined;
let agent = '';
let redisIp = '';
let peerIp = '';


/** The role agents' security flags without the option matching `pattern`. */
const withoutOpt = (pattern: RegExp) => {
  const flags = roleAgentSecurity(scratch);
  const i = flags.findIndex((f, n) => f === '--security-opt' && pattern.test(flags[n + 1] ?? ''));
  flags.splice(i, 2);
  return flags;
};

async function onStack(args: string[], input?: string) {
  return docker(args, { engine: STACK_ENGINE, timeoutMs: 120_000, ...(input === undefined ? {} : { input }) });
}

async function stackOk(args: string[]): Promise<string> {
  return dockerOk(args, { engine: STACK_ENGINE, timeoutMs: 120_000 });
}

function inNetns(netns: string, command: string[]): Promise<unknown> {
  return execa('nsenter', [`--net=${netns}`, '--', ...command]);
}

/** Runs a Python program in the agent container: unsandboxed, or as the executor runs commands. */
async function python(program: string, how: 'container' | 'bwrap' | 'pasta' | 'pasta-unbound'): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  // The program travels base64-encoded: no text filter could read it on the way.
  const payload = Buffer.from(program).toString('base64');
  const run = `python3 -c "import base64; exec(base64.b64decode('${payload}'))"`;
  const bwrap = 'bwrap --die-with-parent --ro-bind / / --tmpfs /run --tmpfs /tmp --tmpfs /var/tmp --proc /proc --dev /dev';
  // Without a network the sandbox is one bwrap with every namespace. With egress, pasta owns
  // the user and network namespaces and bwrap adds the rest inside them: bubblewrap reads
  // /proc/<pid> of its child, which needs a /proc of pasta's pid namespace first.
  const iface = `"$(awk '$2 == "00000000" { print $1; exit }' /proc/net/route)"`;
  const pasta = (bound: boolean) =>
    `pasta --config-net -f -q -T none -U none --no-map-gw ${bound ? `--outbound-if4 ${iface}` : ''} -- ` +
    `unshare --mount --mount-proc ${bwrap.replace('bwrap ', 'bwrap --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try --cap-drop ALL ')}`;
  const script = {
    container: run,
    bwrap: `${bwrap.replace('bwrap ', 'bwrap --unshare-all ')} ${run}`,
    pasta: `${pasta(true)} ${run}`,
    'pasta-unbound': `${pasta(false)} ${run}`,
  }[how];
  const r = await onStack(['exec', agent, 'sh', '-c', script]);
  // pasta reports what it cannot mirror (no IPv6, no usable nameserver) on stderr and to syslog.
  const stderr = r.stderr.split('\n').filter((l) => l && !/syslog|IPv6|nameserver/.test(l)).join('\n');
  return { exitCode: r.exitCode, stdout: r.stdout, stderr };
}

const PROBE = (targets: Array<[string, string, number]>) => `
import socket
for name, host, port in ${JSON.stringify(targets)}:
    try:
        socket.create_connection((host, port), 3).close(); print(name, "reachable")
    except OSError as e:
        print(name, "unreachable", type(e).__name__)
`;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the sandbox tier suite creates a network namespace and a veth pair: run it as root');
  const built = await ensureCodegodImage();
  await copyToStackEngine([built.image, ...[TEST_IMAGES.redis, TEST_IMAGES.python].filter((i): i is string => i !== undefined)]);

  // Networks as compose makes them: backplane internal, egress without inter-container traffic.
  await stackOk(['network', 'create', '--internal', `${tag}-backplane`]);
  created.networks.push(`${tag}-backplane`);
  await stackOk(['network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', `${tag}-egress`]);
  created.networks.push(`${tag}-egress`);

  const redis = `${tag}-redis`;
  created.containers.push(redis);
  await stackOk(['run', '-d', '--name', redis, '--network', `${tag}-backplane`, TEST_IMAGES.redis ?? 'redis:7.4-alpine', 'redis-server', '--requirepass', SECRET]);
  redisIp = await stackOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${tag}-backplane").IPAddress}}`, redis]);

  const peer = `${tag}-peer`;
  created.containers.push(peer);
  await stackOk(['run', '-d', '--name', peer, '--network', `${tag}-egress`, TEST_IMAGES.python ?? 'python:3-slim', 'python3', '-m', 'http.server', '8000']);
  peerIp = await stackOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${tag}-egress").IPAddress}}`, peer]);

  // The outside: a namespace behind the engine's, reached through its default route.
  const engineNetns = STACK_NETNS;
  if (engineNetns === undefined) throw new Error('CODEGOD_TEST_STACK_NETNS is unset: run `eval "$(bash .ci/engine.sh env)"`');
  writeFileSync(outsideNetns, '');
  await execa('unshare', [`--net=${outsideNetns}`, 'true']);
  created.netns = true;
  await inNetns(engineNetns, ['ip', 'link', 'add', `${tag}a`, 'type', 'veth', 'peer', 'name', `${tag}b`]);
  created.veth = true;
  await inNetns(engineNetns, ['ip', 'link', 'set', `${tag}b`, 'netns', outsideNetns]);
  await inNetns(engineNetns, ['ip', 'addr', 'add', `${LINK.host}/30`, 'dev', `${tag}a`]);
  await inNetns(engineNetns, ['ip', 'link', 'set', `${tag}a`, 'up']);
  await inNetns(engineNetns, ['ip', 'route', 'add', `${OUTSIDE.ip}/32`, 'via', LINK.outside]);
  await inNetns(outsideNetns, ['ip', 'link', 'set', 'lo', 'up']);
  await inNetns(outsideNetns, ['ip', 'addr', 'add', `${LINK.outside}/30`, 'dev', `${tag}b`]);
  await inNetns(outsideNetns, ['ip', 'link', 'set', `${tag}b`, 'up']);
  await inNetns(outsideNetns, ['ip', 'addr', 'add', `${OUTSIDE.ip}/32`, 'dev', 'lo']);
  await inNetns(outsideNetns, ['ip', 'route', 'add', 'default', 'via', LINK.host]);
  outsideServer = execa('nsenter', [`--net=${outsideNetns}`, '--', 'python3', '-m', 'http.server', '--bind', OUTSIDE.ip, String(OUTSIDE.port)], { reject: false });

  // The agent container: the role agents' settings, a secret file as compose mounts it, and a
  // process with a canary in its environment standing in for the worker.
  const secretFile = join(scratch, 'redis_password');
  writeFileSync(secretFile, SECRET);
  chownSync(secretFile, 10001, 10001);
  chmodSync(secretFile, 0o600);
  agent = `${tag}-agent`;
  created.containers.push(agent);
  await stackOk([
    'create', '--name', agent, '--network', `${tag}-backplane`, ...roleAgentSecurity(scratch),
    '-v', `${secretFile}:/run/secrets/redis_password:ro`, '-v', '/workspace',
    '--entrypoint', '/usr/bin/tini', CODEGOD_TEST_IMAGE, '--', 'env', `CODEGOD_TEST_CANARY=${CANARY}`, 'sleep', '3600',
  ]);
  await stackOk(['network', 'connect', `${tag}-egress`, agent]);
  await stackOk(['start', agent]);
  await until(async () => ((await python(PROBE([['outside', OUTSIDE.ip, OUTSIDE.port]]), 'container')).stdout.includes('outside reachable') ? true : undefined), 'the outside server', 30_000);
}, 25 * 60_000);

afterAll(async () => {
  for (const name of created.containers.reverse()) await onStack(['rm', '-f', '-v', name]);
  for (const name of created.networks) await onStack(['network', 'rm', name]);
  outsideServer?.kill();
  await outsideServer;
  if (created.veth && STACK_NETNS) await execa('nsenter', [`--net=${STACK_NETNS}`, '--', 'ip', 'link', 'del', `${tag}a`], { reject: false });
  if (created.netns) await execa('umount', [outsideNetns], { reject: false });
  rmSync(scratch, { recursive: true, force: true });
}, 120_000);

describe('the role agents’ container tier', () => {
  it('bubblewrap creates user, mount, pid, ipc, uts and network namespaces as uid 10001, with a fresh /proc', async () => {
    const program = `
import os
print(os.getuid())
print(",".join(os.readlink("/proc/self/ns/" + n) for n in ["user", "mnt", "pid", "net"]))
print(len([p for p in os.listdir("/proc") if p.isdigit()]))
`;
    const outside = (await python(program, 'container')).stdout.trim().split('\n');
    const inside = await python(program, 'bwrap');
    expect(inside.stderr).toBe('');
    const [uid, namespaces, pids] = inside.stdout.trim().split('\n');
    expect(uid).toBe('10001');
    const [outerNs, innerNs] = [outside[1]!.split(','), namespaces!.split(',')];
    for (let i = 0; i < 4; i++) expect(innerNs[i], `namespace ${i}`).not.toBe(outerNs[i]);
    // bwrap and the command only; the container's own processes are not there.
    expect(Number(pids)).toBeLessThanOrEqual(3);
    expect(Number(outside[2])).toBeGreaterThan(Number(pids));
  });

  it('a sandboxed command reads neither /run/secrets nor any other process’s environ', async () => {
    const program = `
import glob
found = []
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/run/secrets/*"):
    try:
        found.append(open(path, "rb").read().decode(errors="replace"))
    except OSError:
        pass
print("\\n".join(found))
`;
    // Control: the same program outside the sandbox, in the same container, finds both.
    const control = await python(program, 'container');
    expect(control.stdout).toContain(CANARY);
    expect(control.stdout).toContain(SECRET);
    for (const how of ['bwrap', 'pasta'] as const) {
      const r = await python(program, how);
      expect(r.exitCode, `${how}: ${r.stderr}`).toBe(0);
      expect(r.stdout, how).not.toContain(CANARY);
      expect(r.stdout, how).not.toContain(SECRET);
    }
  });

  it('a sandboxed command reaches the outside but not Redis, nor another container on egress', async () => {
    const targets: Array<[string, string, number]> = [
      ['redis', redisIp, 6379],
      ['egress-peer', peerIp, 8000],
      ['outside', OUTSIDE.ip, OUTSIDE.port],
    ];
    // Control: the agent container itself (the worker) reaches Redis and the outside.
    const control = await python(PROBE(targets), 'container');
    expect(control.stdout).toMatch(/^redis reachable$/m);
    expect(control.stdout).toMatch(/^outside reachable$/m);
    expect(control.stdout).toMatch(/^egress-peer unreachable/m);

    const sandboxed = await python(PROBE(targets), 'pasta');
    expect(sandboxed.stderr).toBe('');
    expect(sandboxed.stdout).toMatch(/^redis unreachable/m);
    expect(sandboxed.stdout).toMatch(/^egress-peer unreachable/m);
    expect(sandboxed.stdout).toMatch(/^outside reachable$/m);
  });

  it('without binding pasta to the default route’s interface, Redis would be reachable (why the executor binds it)', async () => {
    const r = await python(PROBE([['redis', redisIp, 6379]]), 'pasta-unbound');
    expect(r.stdout).toMatch(/^redis reachable$/m);
  });

  it('without a network (CODEGOD_SANDBOX_NETWORK=off) nothing answers but loopback', async () => {
    const r = await python(PROBE([['redis', redisIp, 6379], ['outside', OUTSIDE.ip, OUTSIDE.port]]), 'bwrap');
    expect(r.stdout).toMatch(/^redis unreachable/m);
    expect(r.stdout).toMatch(/^outside unreachable/m);
  });

  it('per-command cost inside the container', async () => {
    // plain `true`; bubblewrap alone (no network); pasta started for the command; and pasta
    // started once per task, each command entering its user and network namespaces.
    const program = `
import os, subprocess, time
IF = [l.split()[0] for l in open("/proc/net/route") if l.split()[1] == "00000000"][0]
PASTA = ["pasta", "--config-net", "-f", "-q", "-T", "none", "-U", "none", "--no-map-gw", "--outbound-if4", IF, "--"]
BWRAP = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL", "--die-with-parent",
         "--ro-bind", "/", "/", "--tmpfs", "/run", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev", "true"]
def p(ts, q): return sorted(ts)[min(len(ts) - 1, int(len(ts) * q))]
def timed(cmd, n=30):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); ts.append((time.perf_counter() - t) * 1000)
        assert r.returncode == 0, (cmd, r.returncode)
    return ts
out = {"plain": timed(["true"]), "bwrap": timed(["bwrap", "--unshare-all"] + BWRAP[7:]),
       "pasta-per-command": timed(PASTA + ["unshare", "--mount", "--mount-proc"] + BWRAP)}
t = time.perf_counter()
holder = subprocess.Popen(PASTA + ["sleep", "604"], stderr=subprocess.DEVNULL)
pid = None
while pid is None:
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and open(f"/proc/{d}/cmdline").read() == "sleep\\x00604\\x00": pid = d
        except OSError: pass
start = (time.perf_counter() - t) * 1000
out["pasta-per-task"] = timed(["nsenter", "--target=" + pid, "--user", "--net", "--preserve-credentials", "--",
                               "unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"] + BWRAP)
holder.kill(); os.kill(int(pid), 9)
for k, ts in out.items(): print(k, f"{p(ts, 0.5):.1f}", f"{p(ts, 0.99):.1f}")
print("pasta-start", f"{start:.1f}", f"{start:.1f}")
`;
    const r = await python(program, 'container');
    expect(r.exitCode, r.stderr).toBe(0);
    const ms = Object.fromEntries(r.stdout.trim().split('\n').map((l) => {
      const [how, p50, p99] = l.split(' ');
      return [how, { p50: Number(p50), p99: Number(p99) }];
    })) as Record<string, { p50: number; p99: number }>;
    const line = Object.entries(ms).map(([k, v]) => (k === 'pasta-start' ? `${k} ${v.p50}` : `${k} p50 ${v.p50} p99 ${v.p99}`));
    console.log(`sandbox-tier: ms in the container (30 runs each): ${line.join('; ')}`);
    expect(ms.bwrap!.p50).toBeGreaterThan(ms.plain!.p50);
    expect(ms['pasta-per-task']!.p50).toBeLessThan(ms['pasta-per-command']!.p50);
  }, 180_000);
});

// codegod's own executor, as the non-root agent: pasta starts each task's holder in the user
// and network namespaces it creates (network on), unshare does (network off); commands enter
// them. pasta is bound to the default route's interface, and names resolve through codegod's
// relay to Docker's resolver on the container's loopback.
describe("codegod's own executor in the container", () => {
  /** Runs PROGRAM (Python) as an agent command through codegod's Sandbox, in the agent container. */
  async function throughCodegod(program: string, env: Record<string, string> = {}, container = agent): Promise<{ tier: string; exitCode: number | null; stdout: string; stderr: string; written: string }> {
    const payload = Buffer.from(program).toString('base64');
    const driver = `
import { loadConfig } from '/app/dist/shared/config.js';
import { compileOptions } from '/app/dist/shared/options.js';
import { detectIsolation } from '/app/dist/shared/sandbox/executor/isolation.js';
import { Sandbox } from '/app/dist/shared/sandbox/sandbox.js';
const config = loadConfig({ ...process.env, REDIS_PASSWORD_FILE: '/run/secrets/redis_password' });
const isolation = await detectIsolation(compileOptions(config).sandbox.isolation);
const sandbox = await Sandbox.forBuild({ root: '/workspace', buildId: 'tier', sink: { record: async () => undefined }, isolation });
try {
  await sandbox.writeFile('note.txt', 'from a file action');
  const r = await sandbox.run({ command: 'python3', args: ['-c', "import base64; exec(base64.b64decode('${payload}'))"], timeoutMs: 60000 });
  const written = await sandbox.readFile('out.txt').catch((err) => 'unread: ' + err.message);
  console.log(JSON.stringify({ tier: isolation.description, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, written }));
} catch (err) {
  console.log(JSON.stringify({ tier: isolation.description, exitCode: null, stdout: '', stderr: String(err?.message ?? err), written: '' }));
} finally {
  await sandbox.close();
}
`;
    const vars = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const r = await onStack(['exec', '-i', ...vars, '-w', '/app', container, 'node', '--input-type=module', '-'], driver);
    if (r.exitCode !== 0) throw new Error(`the driver failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}');
  }

  /** Command lines in the agent container that match `pattern` (a regex that does not match itself). */
  async function leftIn(pattern: string, container = agent): Promise<string> {
    const r = await onStack(['exec', container, 'sh', '-c', `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f" 2>/dev/null; echo; done | grep -E -- '${pattern}' || true`]);
    return r.stdout.trim();
  }

  // Each command writes out.txt, reads the file action's note, and leaves a setsid'd daemon
  // behind that must not outlive it.
  const COMMON = `
import os, subprocess
open("out.txt", "w").write("written by the command")
print("note:", open("note.txt").read())
subprocess.Popen(["setsid", "sleep", "4321"], start_new_session=True)
`;

  for (const network of ['on', 'off'] as const) {
    it(`network ${network}: names the namespaces tier, runs commands and file actions, keeps secrets and other processes out of reach, leaves no process`, async () => {
      const r = await throughCodegod(`${COMMON}
import glob
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/run/secrets/*"):
    try: print(open(path, "rb").read().decode(errors="replace"))
    except OSError: pass
`, { CODEGOD_SANDBOX_NETWORK: network });
      expect(r.tier).toMatch(network === 'on' ? /^namespaces:/ : /^namespaces, network off/);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain('note: from a file action');
      expect(r.written).toBe('written by the command');
      expect(r.stdout).not.toContain(CANARY);
      expect(r.stdout).not.toContain(SECRET);
      expect(await leftIn('sleep 432[1]')).toBe('');
      expect(await leftIn('sleep infinit[y]')).toBe('');
    });
  }

  it('its commands reach the outside but not Redis nor another container on egress, and resolve names through Docker’s resolver', async () => {
    const r = await throughCodegod(`${PROBE([['redis', redisIp, 6379], ['egress-peer', peerIp, 8000], ['outside', OUTSIDE.ip, OUTSIDE.port]])}
import socket
print("resolved", socket.gethostbyname("${tag}-peer"))
`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^outside reachable$/m);
    expect(r.stdout).toMatch(/^redis unreachable/m);
    expect(r.stdout).toMatch(/^egress-peer unreachable/m);
    expect(r.stdout).toContain(`resolved ${peerIp}`);
  });

  it('with the network off, its commands reach nothing but loopback', async () => {
    const r = await throughCodegod(PROBE([['redis', redisIp, 6379], ['outside', OUTSIDE.ip, OUTSIDE.port]]), { CODEGOD_SANDBOX_NETWORK: 'off' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^redis unreachable/m);
    expect(r.stdout).toMatch(/^outside unreachable/m);
  });

  it('per-command cost through codegod’s executor', async () => {
    const driver = (network: string) => `
import { loadConfig } from '/app/dist/shared/config.js';
import { compileOptions } from '/app/dist/shared/options.js';
import { detectIsolation } from '/app/dist/shared/sandbox/executor/isolation.js';
import { Sandbox } from '/app/dist/shared/sandbox/sandbox.js';
const config = loadConfig({ ...process.env, CODEGOD_SANDBOX_NETWORK: '${network}' });
const isolation = await detectIsolation(compileOptions(config).sandbox.isolation);
const sandbox = await Sandbox.forBuild({ root: '/workspace', buildId: 'cost', sink: { record: async () => undefined }, isolation });
const timed = async () => { const t = performance.now(); const r = await sandbox.run({ command: 'true', args: [], timeoutMs: 60000 }); if (r.exitCode !== 0) throw new Error('exit ' + r.exitCode); return performance.now() - t; };
const first = await timed();
const ts = [];
for (let i = 0; i < 30; i++) ts.push(await timed());
ts.sort((a, b) => a - b);
await sandbox.close();
console.log(JSON.stringify({ first, p50: ts[15], p99: ts[29] }));
`;
    const line: string[] = [];
    for (const network of ['on', 'off']) {
      const r = await onStack(['exec', '-i', '-w', '/app', agent, 'node', '--input-type=module', '-'], driver(network));
      expect(r.exitCode, r.stderr).toBe(0);
      const ms = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { first: number; p50: number; p99: number };
      // The first command starts the task's holder (and pasta) too.
      expect(ms.first).toBeGreaterThan(ms.p50);
      line.push(`network ${network}: first command ${ms.first.toFixed(1)}, then p50 ${ms.p50.toFixed(1)} p99 ${ms.p99.toFixed(1)}`);
    }
    console.log(`sandbox-tier: ms per \`true\` through Sandbox.run in the container (30 runs): ${line.join('; ')}`);
  }, 120_000);

  it('with /proc masked (docker-compose v1): network off runs with /proc hidden; network on is refused with the reason', async () => {
    const masked = `${tag}-agent-masked`;
    created.containers.push(masked);
    await stackOk([
      'run', '-d', '--name', masked, '--network', `${tag}-backplane`, ...withoutOpt(/^systempaths=/),
      '-v', `${join(scratch, 'redis_password')}:/run/secrets/redis_password:ro`, '-v', '/workspace',
      '--entrypoint', '/usr/bin/tini', CODEGOD_TEST_IMAGE, '--', 'env', `CODEGOD_TEST_CANARY=${CANARY}`, 'sleep', '3600',
    ]);
    const off = await throughCodegod(`${COMMON}
import glob
print("pids", len(glob.glob("/proc/[0-9]*")))
for path in glob.glob("/run/secrets/*"):
    try: print(open(path).read())
    except OSError: pass
`, { CODEGOD_SANDBOX_NETWORK: 'off' }, masked);
    expect(off.tier).toMatch(/^namespaces, network off.*\/proc hidden/);
    expect(off.exitCode, off.stderr).toBe(0);
    expect(off.stdout).toContain('note: from a file action');
    expect(off.written).toBe('written by the command');
    expect(off.stdout).toContain('pids 0');
    expect(off.stdout).not.toContain(SECRET);
    expect(await leftIn('sleep 432[1]', masked)).toBe('');
    expect(await leftIn('sleep infinit[y]', masked)).toBe('');
    const on = await throughCodegod('print("ran")', {}, masked);
    expect(on.tier).toMatch(/^unavailable: \/proc is masked here.*CODEGOD_SANDBOX_NETWORK=off/);
    expect(on.stdout).not.toContain('ran');
  });

  it('CODEGOD_SANDBOX_OUTBOUND: its commands leave through the interface that reaches that host, and nowhere else', async () => {
    // The Redis container's name stands in for the devops engine: the interface on backplane.
    const r = await throughCodegod(PROBE([['redis', redisIp, 6379], ['outside', OUTSIDE.ip, OUTSIDE.port]]), { CODEGOD_SANDBOX_OUTBOUND: `${tag}-redis` });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^redis reachable$/m);
    expect(r.stdout).toMatch(/^outside unreachable/m);
  });
});

describe('where the container tier is refused', () => {
  async function bwrapIn(flags: string[]): Promise<string> {
    const name = `${tag}-refused-${created.containers.length}`;
    created.containers.push(name);
    const r = await onStack(['run', '--name', name, '--network', 'none', ...flags, CODEGOD_TEST_IMAGE, 'bwrap', '--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true']);
    expect(r.exitCode).not.toBe(0);
    return r.stderr;
  }


  it("Docker's default seccomp profile: no namespace at all", async () => {
    expect(await bwrapIn(withoutOpt(/^seccomp=/))).toMatch(/No permissions to create new namespace/);
  });

  it("codegod doctor there: the isolation check fails and workers refuse agent commands, unless CODEGOD_SANDBOX=host", async () => {
    const doctor = async (env: string[]) => {
      const name = `${tag}-doctor-${created.containers.length}`;
      created.containers.push(name);
      const r = await onStack(['run', '--name', name, '--network', 'none', ...withoutOpt(/^seccomp=/), ...env, CODEGOD_TEST_IMAGE, 'codegod', 'doctor']);
      return (r.stdout + r.stderr).split('\n').find((l) => /isolation/.test(l)) ?? '';
    };
    expect(await doctor([])).toMatch(/fail.*isolation.*workers here refuse agent commands/);
    expect(await doctor(['-e', 'CODEGOD_SANDBOX=host'])).toMatch(/warn.*isolation/);
  });

  it('masked /proc (docker-compose v1, the Docker API): namespaces but no fresh /proc', async () => {
    expect(await bwrapIn(withoutOpt(/^systempaths=/))).toMatch(/Can't mount proc on \/newroot\/proc: Operation not permitted/);
  });
});
