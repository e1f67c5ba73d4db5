/**
 * Text from outside codegod reaches a terminal only with its control characters made
 * visible: a real agent build (the scripted LLM, a real worker) whose command prints ESC
 * and C1 sequences, OSC 52, BEL, `\r` and bidi overrides, built from character codes so no
 * text filter could see them, and whose LLM replies and goal carry more. `codegod trace`,
 * `status` and the progress of `status --follow` print them escaped; on a terminal the
 * only raw escapes are codegod's own colours; `--json` stays the exact values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentWorld, plan1, REASON, validateWith } from '../helpers/agent.js';
import { cli } from '../helpers/cli-io.js';
import { configEnv } from '../helpers/config.js';

/** Every character a terminal would act on (tab and newline are layout). */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/** The SGR sequences codegod's palette writes. */
const PALETTE = /\u001b\[(?:1|2|22|31|32|33|39)m/g;

const PRINT_HOSTILE = [
  'import sys',
  'e = chr(27)',
  "sys.stdout.write(e + ']52;c;' + 'cm0gLXJm' + chr(7) + e + '[2J' + e + '[H' + 'all tests passed' + chr(13) + 'FAKE' + chr(0x9b) + '31m' + chr(0x202e) + 'txt.exe' + chr(10))",
].join('\n');

const CONCLUSION = 'Clear the screen\u001b[2J\u001b[H then \u009b1;31m';

let world: AgentWorld;
let env: Record<string, string>;
let buildId: string;

beforeAll(async () => {
  world = await AgentWorld.start({
    rules: [
      { match: { phase: 'reason' }, reply: { ...REASON, conclusion: CONCLUSION } },
      { match: { phase: 'plan' }, reply: plan1([{ action: 'run_command', params: { command: 'python3', args: ['-c', PRINT_HOSTILE] } }]) },
      { match: { phase: 'validate' }, reply: validateWith([{ kind: 'command', target: 'python3', args: ['-c', PRINT_HOSTILE], contains: 'passed' }]) },
    ],
  });
  await world.startWorker('backend');
  env = configEnv(world.config);
  buildId = await world.build([{ id: 'esc', role: 'backend' }], 'a goal with a bidi override \u202egnp.exe and an 8-bit CSI \u009b2J');
  expect((await world.waitForEnd(buildId)).state).toBe('succeeded');
}, 60_000);

afterAll(async () => {
  await world?.close();
});

function expectNoRawControl(text: string, what: string): void {
  expect(text.replace(/\n/g, '').replace(/\t/g, ''), what).not.toMatch(RAW_CONTROL);
}

describe('untrusted text on a terminal', () => {
  it('trace shows the command output, LLM text and goal with every control made visible', async () => {
    const trace = await cli(['trace', buildId, 'esc', '--full'], env);
    expect(trace.code, trace.stderr).toBe(0);
    expectNoRawControl(trace.stdout, 'trace');
    expect(trace.stdout).toContain('\\x1b]52;c;cm0gLXJm\\x07\\x1b[2J\\x1b[Hall tests passed\\rFAKE\\x9b31m\\u202etxt.exe');
    expect(trace.stdout).toContain('conclusion: Clear the screen\\x1b[2J\\x1b[H then \\x9b1;31m');

    const brief = await cli(['trace', buildId], env);
    expectNoRawControl(brief.stdout, 'trace of every task');
  });

  it('status and the followed progress print no raw control character', async () => {
    for (const argv of [['status', buildId], ['status'], ['status', buildId, '--follow']]) {
      const r = await cli(argv, env);
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
      expectNoRawControl(r.stdout, argv.join(' '));
      expectNoRawControl(r.stderr, `${argv.join(' ')} (stderr)`);
    }
    const status = await cli(['status', buildId], env);
    expect(status.stdout).toContain('\\u202egnp.exe and an 8-bit CSI \\x9b2J');
  });

  it("on a terminal, the only raw escapes are codegod's own colours", async () => {
    for (const argv of [['trace', buildId, 'esc'], ['status', buildId], ['status', buildId, '--follow']]) {
      const r = await cli(argv, env, { tty: true });
      expect(r.code, r.stderr).toBe(0);
      // status colours the build's state; trace prints no colour.
      if (argv[0] === 'status') expect(r.stdout.match(PALETTE)?.length ?? 0, argv.join(' ')).toBeGreaterThan(0);
      // The progress view redraws its status line with CR + erase-line, codegod's own too.
      expectNoRawControl(r.stdout.replace(PALETTE, '').replace(/\r\u001b\[2K/g, ''), argv.join(' '));
    }
  });

  it('--json keeps the exact values, with no raw control character in its text', async () => {
    const r = await cli(['trace', buildId, 'esc', '--json'], env);
    expectNoRawControl(r.stdout, 'trace --json');
    const doc = JSON.parse(r.stdout) as { trace: { iterations: Array<{ reason: { output: { conclusion: string } }; act: { steps: Array<{ output: string }> } }> } };
    expect(doc.trace.iterations[0]!.reason.output.conclusion).toBe(CONCLUSION);
    expect(doc.trace.iterations[0]!.act.steps[0]!.output).toContain('\u001b]52;c;cm0gLXJm\u0007');
    const status = await cli(['status', buildId, '--json'], env);
    expectNoRawControl(status.stdout, 'status --json');
    expect((JSON.parse(status.stdout) as { build: { goal: string } }).build.goal).toContain('\u202egnp.exe');
  });
});
