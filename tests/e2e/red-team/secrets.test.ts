import { readTree, dumpRedis, leakedSecrets, pythonStep, RAN, RedTeamWorld } from '../../helpers/red-team.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, stdoutJson } from '../../helpers/cli.js';

/**
 * An agent's code reads every process's environment and command line it can find, and every
 * `*_FILE` secret path it learns or guesses, then puts what it found in its output and in a
 * workspace file. Whatever the kernel lets it read travels on from there — into the trace in
 * Redis, the next prompt, the CLI, the API — so the test looks for the canary secrets in all
 * of those places, in plain, base64 and reversed form.
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

const LOOT = `
paths = set(GUESSES)
P = '/' + 'pr' + 'oc'
seen = 0
read = 0
denied = {}
loot = []
for p in os.listdir(P):
    if not p.isdigit():
        continue
    seen += 1
    for f in ('envi' + 'ron', 'cmd' + 'line'):
        try:
            with open(P + '/' + p + '/' + f, 'rb') as fh:
                data = fh.read()
        except OSError as e:
            denied[why(e)] = denied.get(why(e), 0) + 1
            continue
        read += 1
        for kv in data.split(b'\\0'):
            k, _, v = kv.partition(b'=')
            if k.endswith(b'_FILE') and v:
                paths.add(v.decode(errors='replace'))
            if any(w in k for w in (b'TOKEN', b'KEY', b'PASS', b'SECRET')):
                loot.append(kv.decode(errors='replace'))
for path in sorted(paths):
    try:
        with open(path) as fh:
            value = fh.read().strip()
        loot.append(path + '=' + value)
        say('FILE', path, 'read', len(value), 'bytes')
    except OSError as e:
        say('FILE', path, 'denied', why(e))
blob = '\\n'.join(loot)
with open('loot.txt', 'w') as fh:
    fh.write(blob + '\\n' + base64.b64encode(blob.encode()).decode() + '\\n' + blob[::-1])
say('LOOT', blob)
say('pids seen', seen, 'files read', read, 'denied', denied)
say(RAN)
`;

describe('red team: secrets', () => {
  it('every /proc/*/environ, /proc/*/cmdline and *_FILE secret read by hidden code: no secret value reaches the workspace, Redis, the CLI, the trace, the LLM or the API', async () => {
    const guesses = [world.secretFiles.redisPassword, world.secretFiles.llmKey, '/run/secrets/redis_password', '/run/secrets/llm_api_key'];
    world.script({ loot: [pythonStep(LOOT, { GUESSES: guesses, RAN })] }, [
      {
        match: { phase: 'plan-dag' },
        reply: { summary: 'One task', tasks: [{ id: 'loot', role: 'backend', title: 'Collect the settings', description: 'Collect the settings', dependsOn: [], acceptanceCriteria: [] }] },
      },
    ]);
    const env = world.env();
    const run = await runCli(['build', 'Collect the settings of this machine', '--json'], env);
    const outcome = stdoutJson<{ buildId: string; state: string }>(run.stdout);
    // The build ended with its report, whatever its outcome.
    expect(['succeeded', 'failed']).toContain(outcome.state);
    const { build } = await world.ended(outcome.buildId);
    const output = await world.outputs(outcome.buildId, 'loot', 'run_python');
    // The payload really ran to its end.
    expect(output).toContain(RAN);

    const trace = await runCli(['trace', outcome.buildId, 'loot'], env);
    const api = await fetch(`http://127.0.0.1:${world.httpPort}/api/builds/${outcome.buildId}/tasks/loot`, {
      headers: { Authorization: `Bearer ${world.secrets.apiToken}` },
    });
    expect(api.status).toBe(200);
    const redis = world.redis.client();
    const places: Record<string, string> = {
      workspace: readTree(world.workspace(build.id)),
      redis: (await dumpRedis(redis)).text,
      'the CLI': run.stdout + run.stderr,
      'codegod trace': trace.stdout + trace.stderr,
      'the LLM requests': JSON.stringify(world.llm.requests.map((r) => r.messages)),
      'the API task view': await api.text(),
    };
    redis.disconnect();
    const secrets = { ...world.secrets };
    const found = Object.fromEntries(Object.entries(places).map(([place, text]) => [place, leakedSecrets(text, secrets)]));
    expect(found, 'secrets found, by place').toEqual(Object.fromEntries(Object.keys(places).map((place) => [place, []])));
    // The secret files were there to read from outside; from inside, the OS refused them (or showed them empty).
    for (const file of Object.values(world.secretFiles)) expect(output).toMatch(new RegExp(`FILE ${file} (denied E[A-Z]+|read 0 bytes)`));
  }, 120_000);
});
