import { describe, expect, it } from 'vitest';
import { rewriteBuildOption } from '../../orchestrator/cli/main.js';
import { cli } from '../helpers/cli-io.js';

// Port 9 (discard) on loopback: nothing listens, so any attempt to use Redis fails. Usage
// errors must be reported before that, without a connection.
const env = { REDIS_URL: 'redis://127.0.0.1:9', CODEGOD_PREFIX: 'unitcli', LOG_LEVEL: 'silent', CODEGOD_CONNECT_TIMEOUT_MS: '500' };

/** Exactly one line on stderr, prefixed `codegod:`, without a stack trace. */
function expectOneLine(stderr: string): string {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^codegod: /);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('codegod argument parsing', () => {
  it.each([
    [['build'], /missing required argument 'goal'/],
    [['build', 'x', '--bogus'], /unknown option '--bogus'/],
    [['bild', 'x'], /unknown command 'bild'.*build/],
    [['build', 'x', '--max-tasks', 'abc'], /--max-tasks.*whole number/],
    [['build', 'x', '--max-tasks', '0'], /--max-tasks.*at least 1/],
    [['build', 'x', '--budget-tokens', '-5'], /--budget-tokens/],
    [['build', 'x', '--timeout', 'soon'], /--timeout.*seconds/],
    [['build', 'x', '--detach', '--local'], /--detach.*cannot be used with.*--local/],
    [['build', 'x', '--detach', '--timeout', '5'], /--detach.*cannot be used with.*--timeout/],
    [['build', 'x', '--workspace', '/tmp/w'], /--workspace applies only with --local/],
    [['status', 'not-a-build'], /not a build id/],
    [['status', '--follow'], /--follow needs a build/],
    [['status', 'b-m3x0k2a1-4f2a9c', '--timeout', '3'], /--timeout applies only with --follow/],
    [['trace', 'b-m3x0k2a1-4f2a9c', 'bad task!'], /not a task id/],
    [['cancel'], /missing required argument 'build'/],
    [['retry', 'b-m3x0k2a1-4f2a9c', 'a', 'extra'], /too many arguments/],
    [['wipe'], /exactly one of --agent <id>, --role <role>, --all/],
    [['wipe', '--all', '--agent', 'a1'], /exactly one of/],
    [['wipe', '--role', 'wizard'], /--role.*Allowed choices/],
    [['wipe', '--all'], /without --yes/],
    [['memory', 'restore', 'agent-1'], /missing required argument 'name'/],
    [['worker', '--role', 'chef'], /--role.*Allowed choices/],
  ])('codegod %j → exit 2 with one line', async (argv, message) => {
    const r = await cli(argv, env);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('rejects an empty or oversized goal before contacting Redis', async () => {
    const started = Date.now();
    const empty = await cli(['build', '   '], env);
    expect(empty.code).toBe(2);
    expect(expectOneLine(empty.stderr)).toMatch(/the goal is empty/);
    const long = await cli(['build', 'x'.repeat(50)], { ...env, CODEGOD_MAX_GOAL_CHARS: '20' });
    expect(long.code).toBe(2);
    expect(expectOneLine(long.stderr)).toMatch(/50 characters long; the limit is 20/);
    // A connection attempt to the closed port would take retries; validation takes none.
    expect(Date.now() - started).toBeLessThan(400);
  });

  it('reports a bad configuration as one line with exit 2', async () => {
    const r = await cli(['status'], { ...env, CODEGOD_PREFIX: 'has spaces!' });
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/invalid configuration: CODEGOD_PREFIX/);
  });

  it('doctor reports a bad configuration as a failed check, exit 1', async () => {
    const r = await cli(['doctor'], { ...env, WORKER_CONCURRENCY: 'lots' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^fail  configuration +invalid configuration: WORKER_CONCURRENCY/);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('prints help on stdout with exit 0, and usage on stderr with exit 2 when no command is given', async () => {
    const help = await cli(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: codegod/);
    expect(help.stdout).toMatch(/--build "goal"/);
    expect(help.stdout).toMatch(/Exit codes:/);
    const buildHelp = await cli(['build', '--help'], env);
    expect(buildHelp.code).toBe(0);
    for (const opt of ['--detach', '--json', '--timeout', '--max-tasks', '--budget-tokens', '--model', '--local', '--workspace']) expect(buildHelp.stdout).toContain(opt);
    const none = await cli([], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Usage: codegod/);
    const version = await cli(['--version'], env);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('takes the product spelling --build "goal" with the same options as build', async () => {
    const r = await cli(['--build', '', '--json'], env);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/the goal is empty/);
    const bad = await cli(['--max-tasks', 'many', '--build', 'x'], env);
    expect(bad.code).toBe(2);
    expect(expectOneLine(bad.stderr)).toMatch(/--max-tasks/);
  });
});

describe('rewriteBuildOption', () => {
  it.each([
    [['--build', 'make a thing'], ['build', 'make a thing']],
    [['--build=make it'], ['build', 'make it']],
    [['--json', '--build', 'g', '--timeout', '5'], ['build', 'g', '--json', '--timeout', '5']],
    [['--timeout', '5', '--build', 'g'], ['build', 'g', '--timeout', '5']],
    [['--build'], ['build']],
    [['status', '--build', 'x'], ['status', '--build', 'x']],
    [['build', '--build'], ['build', '--build']],
    [['--help'], ['--help']],
    [[], []],
  ])('%j → %j', (argv, expected) => {
    expect(rewriteBuildOption(argv)).toEqual(expected);
  });
});
