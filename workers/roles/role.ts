import type { TaskSpec } from '../../shared/domain/plan.js';
import type { Role } from '../../shared/domain/roles.js';
import type { Sandbox } from '../../shared/sandbox/sandbox.js';
import type { ActionRegistry } from '../actions/registry.js';

/** What Observe found: facts as JSON for the LLM, and short findings for the agent's memory. */
export interface Observation {
  facts: Record<string, unknown>;
  findings: string[];
}

export interface ObserveContext {
  sandbox: Sandbox;
  signal: AbortSignal;
  task: TaskSpec;
  /** The build's team knowledge (venv path, python version, entry point…). */
  knowledge: Record<string, string>;
}

/**
 * One worker role: its specialization (for the system prompt), its typed actions and its
 * Observe probes. Probes are code, not LLM calls: they look at the workspace (files, venv,
 * installed packages, package.json, test files) and report facts.
 */
export interface RoleDefinition {
  role: Role;
  specialization: string;
  actions: ActionRegistry;
  observe(ctx: ObserveContext): Promise<Observation>;
  /**
   * What is wrong with the artefacts this role leaves for later tasks (a virtualenv whose pip
   * does not run, a package installed half-way), checked by code at every validation, whatever
   * the LLM's own checks say: a step killed and re-run must not leave a build that reports
   * success over a broken project. One line per problem; none means fine.
   */
  verify?(ctx: ObserveContext): Promise<string[]>;
}
