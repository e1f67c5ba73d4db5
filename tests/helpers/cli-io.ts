import { PassThrough } from 'node:stream';
import type { CliIo, CliOutput } from '../../orchestrator/cli/context.js';
import { run } from '../../orchestrator/cli/main.js';
import { orchestratorProgram } from '../../orchestrator/main.js';
import type { Programs } from '../../shared/programs.js';
import { scriptedLlmProgram } from '../../scripts/llm-server/program.js';
import { workerProgram } from '../../workers/main.js';

/** The programs bin/codegod.js hands the CLI, for in-process runs. */
export const programs: Programs = {
  workers: async () => workerProgram,
  orchestrator: async () => orchestratorProgram,
  scriptedLlm: async () => scriptedLlmProgram,
};

/** A stream that keeps what the CLI writes. */
export class Captured implements CliOutput {
  text = '';
  constructor(
    readonly isTTY = false,
    readonly columns = 120,
  ) {}

  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }

  get lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
}

export interface FakeIo {
  io: CliIo;
  stdout: Captured;
  stderr: Captured;
  stdin: PassThrough & { isTTY?: boolean };
  /** Simulates Ctrl-C: calls the handlers registered through onInterrupt. */
  interrupt(): void;
  /** Handlers registered and not yet removed. */
  readonly interruptHandlers: number;
}

/** An in-process CliIo: captured stdout/stderr, a scripted stdin, a fake Ctrl-C. */
export function fakeIo(env: Record<string, string>, opts: { tty?: boolean; stdinTTY?: boolean; stdinText?: string; cwd?: string } = {}): FakeIo {
  const stdout = new Captured(opts.tty === true);
  const stderr = new Captured(opts.tty === true);
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  if (opts.stdinTTY) stdin.isTTY = true;
  if (opts.stdinText !== undefined) stdin.end(opts.stdinText);
  const handlers = new Set<() => void>();
  const io: CliIo = {
    stdout,
    stderr,
    stdin,
    env,
    cwd: opts.cwd ?? process.cwd(),
    onInterrupt(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    exit(code) {
      throw new Error(`exit(${code}) called`);
    },
  };
  return {
    io,
    stdout,
    stderr,
    stdin,
    interrupt: () => [...handlers].forEach((h) => h()),
    get interruptHandlers() {
      return handlers.size;
    },
  };
}

export interface CliResult {
  code: number | undefined;
  stdout: string;
  stderr: string;
}

/** Runs `codegod <argv>` in this process. */
export async function cli(argv: string[], env: Record<string, string>, opts: Parameters<typeof fakeIo>[1] = {}): Promise<CliResult> {
  const f = fakeIo(env, opts);
  const code = await run(argv, f.io, programs);
  return { code, stdout: f.stdout.text, stderr: f.stderr.text };
}
