/** What a check is given, what it answers, and what it carries while it walks a script. */

export interface PolicyContext {
  /** Whether `command` is a shell script (run by bash) or a program run with `args` as argv. */
  shell: boolean;
  /** Absolute real path of the build's workspace. */
  workspace: string;
  /** Absolute directory the command starts in; the workspace when unset. */
  cwd?: string;
  /** Whether docker commands may run at all (a docker endpoint is configured). */
  allowDocker?: boolean;
}

export type PolicyDecision = { allowed: true } | { allowed: false; reason: string };

/** The fixed context of one check: the workspace resolved, docker allowed or not. */
export interface Ctx {
  workspace: string;
  allowDocker: boolean;
}

export interface State {
  /** Where the next command starts; null after a `cd` the policy cannot follow. */
  cwd: string | null;
  depth: number;
}
