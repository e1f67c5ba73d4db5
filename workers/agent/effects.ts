import type { AuditEntryInput, AuditSink } from '../../shared/telemetry/audit.js';
import { formatCommandLine } from '../actions/command.js';

/** What one Act step did, as its dependents and the agent's memory are told. */
export interface StepEffects {
  /** Workspace-relative paths the step wrote. */
  files: string[];
  /** Command lines the step ran that exited 0. */
  commands: string[];
  /** Team knowledge the step recorded. */
  knowledge: Record<string, string>;
}

/** Longest command line kept; inline code (python -c …) can be long. */
const COMMAND_CHARS = 300;

/**
 * Watches one task's sandbox (as its audit sink) and team knowledge writes, so the loop can
 * record per Act step which files it wrote, which commands passed and what it learned. The
 * loop drains it before and after each step: what Observe's probes or Validate's checks did in
 * between is not the step's.
 */
export class TaskEffects implements AuditSink {
  private files: string[] = [];
  private commands: string[] = [];
  private knowledge: Record<string, string> = {};

  constructor(private readonly inner: AuditSink) {}

  async record(entry: AuditEntryInput): Promise<void> {
    await this.inner.record(entry);
    if (entry.type === 'file.write' && !this.files.includes(entry.path)) this.files.push(entry.path);
    if (entry.type === 'command' && entry.exitCode === 0 && !entry.timedOut && !entry.cancelled) {
      const line = formatCommandLine(entry.command, entry.args);
      const shown = `${line.length > COMMAND_CHARS ? `${line.slice(0, COMMAND_CHARS)}…` : line}${entry.cwd && entry.cwd !== '.' ? `  (in ${entry.cwd})` : ''}`;
      if (!this.commands.includes(shown)) this.commands.push(shown);
    }
  }

  noteKnowledge(key: string, value: string): void {
    this.knowledge[key] = value;
  }

  /** What was seen since the last drain; starts over. */
  drain(): StepEffects {
    const out = { files: this.files, commands: this.commands, knowledge: this.knowledge };
    this.files = [];
    this.commands = [];
    this.knowledge = {};
    return out;
  }
}
