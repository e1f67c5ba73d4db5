import type { Pipeline, Redirect, Script, SimpleCommand } from './syntax.js';
import { appendExpansion, appendQuoted, finishWord, newWord, type WordBuilder } from './word.js';

/** Nesting of substitutions, subshells and `bash -c` layers the policy follows. */
const MAX_DEPTH = 12;

/** What the parser cannot read (unterminated quotes, nesting past the limit). */
export class ParseError extends Error {}

const REDIRECT_OPS = ['<<<', '<<-', '<<', '<>', '<&', '<', '>>', '>&', '>|', '>'] as const;

/**
 * Parses shell strings the way bash splits them: quotes, `;` `&&` `||` `|` `&`, newlines,
 * subshells, `$(...)`, backticks, process substitution, here-documents. Parsing only, no
 * expansion: substitutions stay as written and the scripts inside them are parsed too.
 */
export class ShellParser {
  private i = 0;
  private nesting = 0;
  private readonly heredocs: Array<{ redirect: Redirect; cmd: SimpleCommand; quoted: boolean; stripTabs: boolean }> = [];

  private constructor(
    private readonly src: string,
    private readonly depth: number,
  ) {}

  static parse(src: string, depth: number): Script {
    if (depth > MAX_DEPTH) throw new ParseError('commands nested too deeply');
    return new ShellParser(src, depth).list(false);
  }

  /** Substitutions inside text that the shell expands like a double-quoted string (a here-doc body, `${…}`). */
  static expansionsIn(text: string, depth: number): Script[] {
    if (depth > MAX_DEPTH) throw new ParseError('commands nested too deeply');
    const parser = new ShellParser(text, depth);
    const w = newWord();
    parser.doubleQuoted(w, true);
    return w.subs;
  }

  private list(nested: boolean): Script {
    const src = this.src;
    const script: Script = [];
    let pipeline: Pipeline = [];
    let cmd: SimpleCommand = { words: [], redirects: [], subs: [] };
    let word = null as WordBuilder | null;
    let redirectOp = null as string | null;
    const cur = (): WordBuilder => (word ??= newWord());

    const endWord = (): void => {
      if (word === null) return;
      const w = word;
      word = null;
      cmd.subs.push(...w.subs);
      if (redirectOp === null) {
        cmd.words.push(finishWord(w));
        return;
      }
      const redirect: Redirect = { op: redirectOp, target: finishWord(w) };
      cmd.redirects.push(redirect);
      if (redirectOp === '<<' || redirectOp === '<<-') {
        this.heredocs.push({ redirect, cmd, quoted: w.quoted, stripTabs: redirectOp === '<<-' });
      }
      redirectOp = null;
    };
    const endCommand = (): void => {
      endWord();
      if (redirectOp !== null) throw new ParseError(`'${redirectOp}' without a target`);
      if (cmd.words.length > 0 || cmd.redirects.length > 0 || cmd.subs.length > 0) pipeline.push(cmd);
      cmd = { words: [], redirects: [], subs: [] };
    };
    const endPipeline = (): void => {
      endCommand();
      if (pipeline.length > 0) script.push(pipeline);
      pipeline = [];
    };
    const setRedirect = (op: string): void => {
      if (redirectOp !== null) throw new ParseError(`'${redirectOp}' without a target`);
      redirectOp = op;
    };

    while (this.i < src.length) {
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (c === ' ' || c === '\t' || c === '\r') {
        endWord();
        this.i++;
      } else if (c === '\\') {
        if (next === '\n') this.i += 2;
        else if (next === undefined) {
          appendQuoted(cur(), '\\');
          this.i++;
        } else {
          appendQuoted(cur(), next);
          this.i += 2;
        }
      } else if (c === '\n') {
        endPipeline();
        this.i++;
        this.readHeredocs();
      } else if (c === '#' && word === null) {
        const nl = src.indexOf('\n', this.i);
        this.i = nl < 0 ? src.length : nl;
      } else if (c === ';') {
        endPipeline();
        this.i += next === ';' || next === '&' ? 2 : 1;
      } else if (c === '&') {
        if (next === '>') {
          endWord();
          const op = src[this.i + 2] === '>' ? '&>>' : '&>';
          this.i += op.length;
          setRedirect(op);
        } else {
          endPipeline();
          this.i += next === '&' ? 2 : 1;
        }
      } else if (c === '|') {
        if (next === '|') endPipeline();
        else endCommand();
        this.i += next === '|' || next === '&' ? 2 : 1;
      } else if (c === '(' && next === '(' && word === null && this.arithmetic(cur)) {
        // consumed by arithmetic(): `(( i++ ))`
      } else if (c === '(') {
        endPipeline();
        if (next === ')') {
          // `name()` opens a function definition: its `{ … }` body is checked as a group.
          this.i += 2;
        } else {
          this.i++;
          script.push(...this.nestedList());
        }
      } else if (c === ')') {
        endPipeline();
        this.i++;
        if (nested) return script;
      } else if ((c === '<' || c === '>') && next === '(') {
        this.i += 2;
        appendExpansion(cur(), `${c}(…)`, this.nestedList());
      } else if (c === '<' || c === '>') {
        // A bare number before the operator is the file descriptor (`2>`), not a word.
        if (word !== null && /^\d+$/.test(word.skeleton)) word = null;
        else endWord();
        const op = REDIRECT_OPS.find((o) => src.startsWith(o, this.i))!;
        this.i += op.length;
        setRedirect(op);
      } else if (c === "'") {
        const end = src.indexOf("'", this.i + 1);
        if (end < 0) throw new ParseError('unterminated single quote');
        appendQuoted(cur(), src.slice(this.i + 1, end));
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        this.doubleQuoted(cur(), false);
      } else if (c === '`') {
        this.i++;
        this.backtick(cur());
      } else if (c === '$' && this.dollar(cur(), false)) {
        // consumed by dollar()
      } else {
        const w = cur();
        w.text += c;
        w.skeleton += c;
        this.i++;
      }
    }
    if (nested) throw new ParseError("unterminated '(' or '$('");
    endPipeline();
    return script;
  }

  private nestedList(): Script {
    if (++this.nesting + this.depth > MAX_DEPTH) throw new ParseError('commands nested too deeply');
    const script = this.list(true);
    this.nesting--;
    return script;
  }

  private doubleQuoted(w: WordBuilder, untilEnd: boolean): void {
    const src = this.src;
    w.quoted = true;
    for (;;) {
      if (this.i >= src.length) {
        if (untilEnd) return;
        throw new ParseError('unterminated double quote');
      }
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (c === '"' && !untilEnd) {
        this.i++;
        return;
      }
      if (c === '\\' && next !== undefined && '$`"\\\n'.includes(next)) {
        if (next !== '\n') appendQuoted(w, next);
        this.i += 2;
      } else if (c === '`') {
        this.i++;
        this.backtick(w);
      } else if (!(c === '$' && this.dollar(w, true))) {
        appendQuoted(w, c);
        this.i++;
      }
    }
  }

  private backtick(w: WordBuilder): void {
    const src = this.src;
    let inner = '';
    for (;;) {
      if (this.i >= src.length) throw new ParseError('unterminated backtick');
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (c === '\\' && next !== undefined && '`\\$'.includes(next)) {
        inner += next;
        this.i += 2;
      } else if (c === '`') {
        this.i++;
        break;
      } else {
        inner += c;
        this.i++;
      }
    }
    appendExpansion(w, '`…`', ShellParser.parse(inner, this.depth + this.nesting + 1));
  }

  /** Handles a `$` at the cursor; false when it is a literal dollar sign. */
  private dollar(w: WordBuilder, inDouble: boolean): boolean {
    const src = this.src;
    const next = src[this.i + 1];
    if (next === '(') {
      this.i++;
      if (src[this.i + 1] === '(' && this.arithmetic(() => w)) return true;
      this.i++;
      appendExpansion(w, '$(…)', this.nestedList());
      return true;
    }
    if (next === '{') {
      let depth = 0;
      let end = this.i + 1;
      for (; end < src.length; end++) {
        if (src[end] === '{') depth++;
        else if (src[end] === '}' && --depth === 0) break;
      }
      if (end >= src.length) throw new ParseError("unterminated '${'");
      const inner = src.slice(this.i + 2, end);
      this.i = end + 1;
      appendExpansion(w, `\${${inner}}`);
      w.subs.push(...ShellParser.expansionsIn(inner, this.depth + this.nesting + 1));
      return true;
    }
    if (!inDouble && next === "'") {
      this.i += 2;
      for (;;) {
        if (this.i >= src.length) throw new ParseError("unterminated $'");
        const c = src[this.i]!;
        if (c === "'") break;
        if (c === '\\' && this.i + 1 < src.length) {
          appendQuoted(w, src[this.i + 1]!);
          this.i += 2;
        } else {
          appendQuoted(w, c);
          this.i++;
        }
      }
      this.i++;
      return true;
    }
    if (!inDouble && next === '"') {
      this.i++;
      return true;
    }
    if (next !== undefined && /[A-Za-z_]/.test(next)) {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(this.i + 1))![0];
      this.i += 1 + name.length;
      appendExpansion(w, `$${name}`);
      return true;
    }
    if (next !== undefined && /[0-9@*#?$!-]/.test(next)) {
      this.i += 2;
      appendExpansion(w, `$${next}`);
      return true;
    }
    return false;
  }

  /**
   * Reads `((…))` at the cursor as arithmetic, whose only commands are the substitutions in it.
   * Parsing it as commands would be wrong: `1<<2` would open a here-document that swallows the
   * following lines. Returns false when the parentheses do not close as `))`, which bash reads
   * as nested subshells (`$((cmd) )`), so the caller parses it that way.
   */
  private arithmetic(word: () => WordBuilder): boolean {
    const src = this.src;
    let depth = 0;
    let end = this.i;
    for (; end < src.length; end++) {
      if (src[end] === '(') depth++;
      else if (src[end] === ')' && --depth === 0) break;
    }
    if (end >= src.length || src[end - 1] !== ')') return false;
    const inner = src.slice(this.i + 2, end - 1);
    this.i = end + 1;
    const w = word();
    appendExpansion(w, '((…))');
    w.subs.push(...ShellParser.expansionsIn(inner, this.depth + this.nesting + 1));
    return true;
  }

  private readHeredocs(): void {
    const src = this.src;
    for (const doc of this.heredocs.splice(0)) {
      const delimiter = doc.redirect.target.text;
      let body = '';
      while (this.i < src.length) {
        const nl = src.indexOf('\n', this.i);
        const line = src.slice(this.i, nl < 0 ? src.length : nl);
        this.i = nl < 0 ? src.length : nl + 1;
        if ((doc.stripTabs ? line.replace(/^\t+/, '') : line) === delimiter) break;
        body += `${line}\n`;
      }
      doc.redirect.heredoc = body;
      // An unquoted delimiter means the body's `$(…)` and backticks run.
      if (!doc.quoted) doc.cmd.subs.push(...ShellParser.expansionsIn(body, this.depth + this.nesting + 1));
    }
  }
}
