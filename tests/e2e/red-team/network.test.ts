import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pythonStep, RAN, RedTeamWorld } from '../../helpers/red-team.js';
import { waitFor } from '../../helpers/processes.js';

/**
 * An agent's code looks for every listening port it can find (the kernel's socket table and
 * a scan of every loopback port, plus the ports it is told about: the suite's Redis, the
 * tests' shared Redis, the LLM server, the dashboard), on 127.0.0.1, ::1 and the default
 * gateway, and talks Redis to each: AUTH with the real password (as if it had leaked), PING,
 * SET a key of its own, DEL the test's sentinel, and FLUSHALL the suite's own Redis. Judged
 * from outside: the sentinels are where they were, and no key of the payload exists.
 */
let world: RedTeamWorld;
let shared: Redis;

beforeAll(async () => {
  world = await RedTeamWorld.start();
  await world.startOrchestrator();
  await world.worker('backend');
  shared = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
}, 60_000);

afterAll(async () => {
  shared?.disconnect();
  await world?.close();
});

const PROBE = `
import socket
ports = set(KNOWN)
for table in ('tcp', 'tcp6'):
    try:
        with open('/' + 'proc/net/' + table) as fh:
            for line in fh.read().splitlines()[1:]:
                cols = line.split()
                if cols[3] == '0A':
                    ports.add(int(cols[1].rsplit(':', 1)[1], 16))
    except OSError as e:
        say('TABLE', table, why(e))
for port in range(1, 65536):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        if s.connect_ex(('127.0.0.1', port)) == 0:
            ports.add(port)
    except OSError:
        pass
    finally:
        s.close()
hosts = ['127.0.0.1', '::1']
try:
    with open('/' + 'proc/net/route') as fh:
        for line in fh.read().splitlines()[1:]:
            cols = line.split()
            if cols[1] == '00000000':
                gw = bytes.fromhex(cols[2])[::-1]
                hosts.append('.'.join(str(b) for b in gw))
except OSError as e:
    say('ROUTE', why(e))
def resp(*args):
    out = b'*%d\\r\\n' % len(args)
    for a in args:
        a = str(a).encode()
        out += b'$%d\\r\\n%s\\r\\n' % (len(a), a)
    return out
answered = 0
for host in hosts:
    for port in sorted(ports if host.startswith('127.') else KNOWN):
        try:
            s = socket.create_connection((host, port), timeout=1)
        except OSError as e:
            if port in KNOWN:
                say('CONNECT', host, port, why(e))
            continue
        cmds = [resp('AU' + 'TH', PASSWORD), resp('PI' + 'NG'), resp('S' + 'ET', MARK, 'pwned', 'EX', 300), resp('D' + 'EL', SENTINEL)]
        if port == OWN:
            cmds.append(resp('FLUSH' + 'ALL'))
        try:
            s.settimeout(1)
            s.sendall(b''.join(cmds))
            reply = s.recv(200)
        except OSError as e:
            reply = why(e).encode()
        s.close()
        answered += 1
        say('ANSWERED', host, port, reply[:60])
say('ports', len(ports), 'hosts', hosts, 'answered', answered)
say(RAN)
`;

describe('red team: network', () => {
  it('every loopback port probed as Redis by hidden code: the suite\'s Redis keeps every sentinel, and no key the payload wrote exists anywhere', async () => {
    const sentinel = `rt:sentinel:${randomBytes(4).toString('hex')}`;
    const mark = `rt:pwned:${randomBytes(4).toString('hex')}`;
    const own = world.redis.client();
    await own.set(sentinel, 'still here');
    await own.hset(`${sentinel}:h`, 'field', 'still here');
    await own.rpush(`${sentinel}:l`, 'a', 'b');
    await shared.set(sentinel, 'still here', 'EX', 600);
    const intact = async () =>
      (await own.get(sentinel)) === 'still here' && (await own.hget(`${sentinel}:h`, 'field')) === 'still here' && (await own.llen(`${sentinel}:l`)) === 2 && (await shared.get(sentinel)) === 'still here';

    const known = [world.redis.port, Number(new URL(inject('redisUrl')).port), world.llm.port, world.httpPort];
    world.script({ probe: [pythonStep(PROBE, { KNOWN: known, OWN: world.redis.port, PASSWORD: world.redis.password, MARK: mark, SENTINEL: sentinel, RAN })] });
    const buildId = await world.build([{ id: 'probe', role: 'backend' }]);
    // A wiped Redis takes the build's state with it: stop waiting as soon as a sentinel is gone.
    await waitFor(async () => !(await intact()) || (await world.getBuild(buildId))?.finishedAt !== undefined, 'the build to end or a sentinel to go', 90_000);
    expect(await intact(), 'the sentinels are untouched').toBe(true);
    expect(await own.exists(mark), 'the payload\'s key in the suite\'s Redis').toBe(0);
    expect(await shared.exists(mark), 'the payload\'s key in the shared Redis').toBe(0);
    await world.ended(buildId);
    const output = await world.outputs(buildId, 'probe', 'run_python');
    expect(output).toContain(RAN);
    // It tried the suite's Redis and the OS refused the connection.
    expect(output).toMatch(new RegExp(`CONNECT 127\\.0\\.0\\.1 ${world.redis.port} E[A-Z]+`));
    await shared.del(sentinel);
    own.disconnect();
  }, 120_000);
});
