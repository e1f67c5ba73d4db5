import { readFile } from 'node:fs/promises';
import Module, { createRequire } from 'node:module';
import type * as XgrammarModule from '@mlc-ai/web-xgrammar';
import { CodegodError } from '../../shared/domain/errors.js';

/**
 * xgrammar, vLLM's default structured-output engine, in its WebAssembly build
 * (`@mlc-ai/web-xgrammar`, a dev dependency): it compiles a JSON schema into the grammar a
 * model is held to and tells whether a given reply could have come out of it. The scripted
 * server checks its replies with it, and the grammar tests check every schema codegod sends.
 *
 * The vocabulary is one token per byte plus an end token: no tokenizer download, and a reply
 * is accepted exactly when the grammar allows its bytes in order and then allows it to stop,
 * which is what matters for any real tokenizer too (tokens only group bytes).
 *
 * Grammars are compiled as vLLM compiles them: strict (no properties the schema does not
 * list, properties in schema order), one line, with `anyWhitespace` as vLLM's
 * `disable_any_whitespace` leaves it (vLLM's default allows any whitespace between tokens).
 */

type Xgrammar = typeof XgrammarModule;
type CompiledGrammar = XgrammarModule.CompiledGrammar;

let loading: Promise<Xgrammar> | undefined;

/**
 * Loads the WebAssembly build once per process. Its `lib/index.js` is a CommonJS (UMD) bundle
 * inside a `"type": "module"` package, so neither `import` nor `require` reads it right; it
 * is compiled as the CommonJS module it is.
 */
export function loadXgrammar(): Promise<Xgrammar> {
  loading ??= (async () => {
    let file: string;
    try {
      file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
    } catch {
      throw new CodegodError('USAGE', 'the grammar check needs the dev dependency @mlc-ai/web-xgrammar: run npm ci, or turn the check off');
    }
    const mod = new Module(file) as Module & { filename: string; _compile(source: string, filename: string): void };
    mod.filename = file;
    mod._compile(await readFile(file, 'utf8'), file);
    return mod.exports as Xgrammar;
  })();
  return loading;
}

const END_TOKEN = 256;

export type GrammarVerdict = { ok: true } | { ok: false; problem: string };

/** A schema xgrammar cannot turn into a grammar (vLLM answers HTTP 400 for it). */
export class GrammarCompileError extends Error {}

function describeByte(b: number): string {
  return b < 0x80 ? JSON.stringify(String.fromCharCode(b)) : `byte 0x${b.toString(16).toUpperCase()}`;
}

/** What stands before byte `at` of `bytes`, for messages. */
function before(bytes: Buffer, at: number): string {
  return JSON.stringify(bytes.subarray(Math.max(0, at - 48), at).toString('utf8'));
}

export class JsonGrammar {
  private readonly compiled = new Map<string, Promise<CompiledGrammar>>();
  private disposed = false;

  private constructor(
    private readonly xg: Xgrammar,
    private readonly info: XgrammarModule.TokenizerInfo,
    private readonly compiler: XgrammarModule.GrammarCompiler,
    private readonly anyWhitespace: boolean,
  ) {}

  /** `anyWhitespace` false is vLLM with `disable_any_whitespace` (codegod's compose file). */
  static async create(options: { anyWhitespace?: boolean } = {}): Promise<JsonGrammar> {
    const xg = await loadXgrammar();
    const vocab = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    vocab.push('</s>');
    const info = await xg.TokenizerInfo.createTokenizerInfo(vocab, 'byte_fallback', false, vocab.length, [END_TOKEN]);
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
    return new JsonGrammar(xg, info, compiler, options.anyWhitespace ?? true);
  }

  /** The grammar of `schema` (compiled once per distinct schema). Throws GrammarCompileError. */
  compile(schema: unknown): Promise<CompiledGrammar> {
    const text = JSON.stringify(schema);
    let grammar = this.compiled.get(text);
    if (!grammar) {
      grammar = this.compiler.compileJSONSchema(text, this.anyWhitespace, -1).catch((err: unknown) => {
        this.compiled.delete(text);
        throw new GrammarCompileError(`xgrammar cannot compile the schema: ${err instanceof Error ? err.message : String(err)}`);
      });
      this.compiled.set(text, grammar);
    }
    return grammar;
  }

  /** Frees the WebAssembly memory of the compiler and its grammars. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const grammars = await Promise.allSettled(this.compiled.values());
    this.compiled.clear();
    for (const g of grammars) if (g.status === 'fulfilled') g.value.dispose();
    this.compiler.dispose();
    this.info.dispose();
  }

  /** Whether a model held to `schema`'s grammar could have written exactly `text` and stopped. */
  async check(schema: unknown, text: string): Promise<GrammarVerdict> {
    const matcher = await this.xg.GrammarMatcher.createGrammarMatcher(await this.compile(schema));
    try {
      const bytes = Buffer.from(text, 'utf8');
      for (let i = 0; i < bytes.length; i++) {
        if (!matcher.acceptToken(bytes[i]!)) {
          return { ok: false, problem: `the grammar rejects ${describeByte(bytes[i]!)} at byte ${i}${i > 0 ? `, after ${before(bytes, i)}` : ' (the first)'}` };
        }
      }
      if (!matcher.acceptToken(END_TOKEN)) return { ok: false, problem: `the grammar does not let the reply end after ${before(bytes, bytes.length)}` };
      return { ok: true };
    } finally {
      matcher.dispose();
    }
  }
}
