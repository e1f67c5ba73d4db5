import { z } from 'zod';
import type { Logger } from '../../shared/logger.js';
import type { Role } from '../../shared/domain/roles.js';
import type { Sandbox } from '../../shared/sandbox/sandbox.js';
import type { FollowupRequest } from '../../shared/domain/followup.js';
import type { KnowledgeEntry } from '../../shared/memory/team-knowledge.js';

/**
 * An action is the only way an agent touches the world: a name, a zod schema for its
 * parameters (the LLM's plan is validated against it before anything runs) and code that
 * does the work through the sandbox. Actions never throw for an ordinary failure (a command
 * exiting non-zero, a missing file): they return `ok: false` with output the agent can read
 * on its next iteration.
 */

export interface ActionResult {
  ok: boolean;
  /** What the agent reads back: command output (clipped by the sandbox), file contents, a summary. */
  output: string;
  exitCode?: number | null;
  /** Follow-up work this action asks the orchestrator for (testing's report_followup). */
  followups?: FollowupRequest[];
}

/**
 * Access to the build's team knowledge (venv path, python version, entry point…): every key
 * can be read; `set` is refused (KNOWLEDGE_DENIED) for a key another role owns.
 */
export interface KnowledgeAccess {
  get(): Promise<Record<string, string>>;
  /** Every key with its value and owning role. */
  entries(): Promise<KnowledgeEntry[]>;
  set(key: string, value: string): Promise<void>;
}

export interface ActionContext {
  sandbox: Sandbox;
  signal: AbortSignal;
  buildId: string;
  taskId: string;
  role: Role;
  knowledge: KnowledgeAccess;
  logger: Logger;
}

export interface ActionDef<S extends z.ZodType = z.ZodType> {
  name: string;
  /** One line for the role's system prompt. */
  description: string;
  params: S;
  run(params: z.output<S>, ctx: ActionContext): Promise<ActionResult>;
}

/** Keeps the parameter type of `run` tied to the schema. */
export function defineAction<S extends z.ZodType>(def: ActionDef<S>): ActionDef<S> {
  return def;
}

/** A relative path inside the workspace; the sandbox enforces confinement, this bounds size. */
export const PathParam = z.string().min(1).max(500);
/** Strings the LLM sends to commands and files, bounded so a runaway reply cannot flood them. */
export const ArgParam = z.string().max(4_000);
export const ContentParam = z.string().max(1_000_000);
