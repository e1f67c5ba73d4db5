/**
 * A shell script as the policy sees it: pipelines of simple commands, each with its words,
 * redirections and the scripts nested in it (substitutions, here-documents), so that every
 * command found anywhere in a string can be checked.
 */

export interface Word {
  /** The word after quote removal; substitutions stay as written (`$HOME`, `$(…)`). */
  text: string;
  /** Contains an unquoted or double-quoted expansion: `$VAR`, `${…}`, `$(…)`, backticks, `<(…)`. */
  dynamic: boolean;
  /** Begins with an unquoted `~`. */
  tilde: boolean;
  /** Contains an unquoted glob character. */
  glob: boolean;
  /** Contains an unquoted brace expansion (`{a,b}`, `{1..3}`). */
  brace: boolean;
}

export interface Redirect {
  op: string;
  target: Word;
  /** Body of a here-document. */
  heredoc?: string;
}

export interface SimpleCommand {
  words: Word[];
  redirects: Redirect[];
  /** Scripts run to produce this command's words or redirections (substitutions, here-docs). */
  subs: Script[];
}

export type Pipeline = SimpleCommand[];
export type Script = Pipeline[];
