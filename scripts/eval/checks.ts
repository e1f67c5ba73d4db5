import type { Config } from '../../shared/config.js';
import { errorMessage } from '../../shared/domain/errors.js';
import type { Logger } from '../../shared/logger.js';
import { compileOptions } from '../../shared/options.js';
import { Sandbox } from '../../shared/sandbox/sandbox.js';
import type { AuditSink } from '../../shared/telemetry/audit.js';
import type { ActionContext, KnowledgeAccess } from '../../workers/actions/action.js';
import { runTestsAction } from '../../workers/roles/testing.js';
import { isCommandCheck, type SuiteCheck } from './suite.js';

/**
 * Judging a finished build from outside: its own tests (found and run the way the testing
 * agent runs them) and the suite's independent checks. Both run in the build's sandbox —
 * the project is code an LLM wrote — and neither writes to the build's audit trail or team
 * knowledge.
 */

export interface ProjectTests {
  /** False when no tests were found. */
  ran: boolean;
  passed: boolean;
  /** The runner's one-line tally, or why nothing ran. */
  summary: string;
}

export interface CheckOutcome {
  name: string;
  passed: boolean;
  /** What failed, clipped. */
  detail?: string;
}

const NO_AUDIT: AuditSink = { record: async () => undefined };
const READ_ONLY_KNOWLEDGE = (values: Record<string, string>): KnowledgeAccess => ({
  get: async () => values,
  entries: async () => Object.entries(values).map(([key, value]) => ({ key, value })),
  set: async () => undefined,
});

function clip(text: string, max = 600): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

export class BuildJudge {
  private constructor(
    private readonly sandbox: Sandbox,
    private readonly ctx: ActionContext,
  ) {}

  static async open(config: Config, buildId: string, knowledge: Record<string, string>, logger: Logger, signal: AbortSignal): Promise<BuildJudge> {
    const sandbox = await Sandbox.fromOptions(compileOptions(config).sandbox, { buildId, sink: NO_AUDIT, taskId: 'eval', agentId: 'eval', logger });
    const ctx: ActionContext = { sandbox, signal, buildId, taskId: 'eval', role: 'testing', knowledge: READ_ONLY_KNOWLEDGE(knowledge), logger };
    return new BuildJudge(sandbox, ctx);
  }

  /** Ends the judge's executor (its namespaces and their processes). */
  close(): Promise<void> {
    return this.sandbox.close();
  }

  /** The project's own tests, by the testing agent's runner detection. */
  async projectTests(): Promise<ProjectTests> {
    const res = await runTestsAction.run({ framework: 'auto' }, this.ctx);
    const summary = res.output.split('\n')[0] ?? '';
    const ran = /^tests (passed|FAILED)/.test(summary);
    return { ran, passed: ran && res.ok, summary: clip(summary, 300) };
  }

  async check(check: SuiteCheck): Promise<CheckOutcome> {
    try {
      if (!isCommandCheck(check)) {
        if (!(await this.sandbox.exists(check.file))) return { name: check.name, passed: false, detail: `${check.file} does not exist` };
        const text = await this.sandbox.readFile(check.file);
        const missing = check.contains.filter((c) => !text.includes(c));
        return missing.length ? { name: check.name, passed: false, detail: `${check.file} lacks ${missing.map((m) => JSON.stringify(m)).join(', ')}` } : { name: check.name, passed: true };
      }
      for (const [path, content] of Object.entries(check.files)) await this.sandbox.writeFile(path, content);
      const res = await this.sandbox.run({
        command: check.command,
        args: check.args,
        ...(check.cwd ? { cwd: check.cwd } : {}),
        ...(check.stdin !== undefined ? { input: check.stdin } : {}),
        timeoutMs: check.timeoutSec * 1_000,
        signal: this.ctx.signal,
      });
      const problems: string[] = [];
      if (res.exitCode !== check.exitCode) problems.push(`exit ${res.exitCode ?? res.signal}${res.timedOut ? ' (timed out)' : ''}, expected ${check.exitCode}`);
      for (const want of check.stdout) if (!res.stdout.includes(want)) problems.push(`stdout lacks ${JSON.stringify(want)}`);
      if (problems.length === 0) return { name: check.name, passed: true };
      return { name: check.name, passed: false, detail: clip(`${problems.join('; ')}\n${res.stdout.trim()}\n${res.stderr.trim()}`.trim()) };
    } catch (err) {
      return { name: check.name, passed: false, detail: clip(errorMessage(err)) };
    }
  }
}
