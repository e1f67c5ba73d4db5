import { spawn } from 'node:child_process';
import { ChildHandle, ROOT } from './processes.js';

/** Runs the real `codegod` binary (bin/codegod.js) with exactly `env` plus PATH/HOME. */
export function startCli(args: string[], env: Record<string, string>, cwd = ROOT): ChildHandle {
  const proc = spawn(process.execPath, [`${ROOT}bin/codegod.js`, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ChildHandle(proc);
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], env: Record<string, string>, cwd?: string): Promise<CliRun> {
  const child = startCli(args, env, cwd);
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.proc.stdout?.on('data', (d: Buffer) => stdout.push(d.toString()));
  child.proc.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const { code } = await child.exited;
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** stdout of a `--json` command: one JSON document and nothing else. */
export function stdoutJson<T = Record<string, unknown>>(stdout: string): T {
  return JSON.parse(stdout) as T;
}
