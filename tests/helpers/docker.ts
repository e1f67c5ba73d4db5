import { execa, type Options } from 'execa';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './processes.js';

/**
 * The Docker engines of the deployment suites (tests/e2e/deployment), from the environment
 * `.ci/engine.sh env` prints:
 *
 * - DOCKER_HOST: where images are built and the image tests run. Their containers use host
 *   networking (that daemon may have no bridge), so they reach the tests' Redis on 127.0.0.1.
 * - CODEGOD_TEST_STACK_DOCKER_HOST (default: DOCKER_HOST): where the compose stack runs; it
 *   needs bridge networks and published ports. CODEGOD_TEST_STACK_NETNS, when set, is the
 *   network namespace that engine lives in: what talks to published ports runs inside it.
 *
 * The CODEGOD_TEST_*_IMAGE variables name base images made locally where no registry is
 * reachable; unset, the public images of the Dockerfile and the compose file are used.
 */
export const IMAGE_ENGINE = process.env.DOCKER_HOST;
export const STACK_ENGINE = process.env.CODEGOD_TEST_STACK_DOCKER_HOST ?? process.env.DOCKER_HOST;
export const STACK_NETNS = process.env.CODEGOD_TEST_STACK_NETNS;
export const TEST_IMAGES = {
  debian: process.env.CODEGOD_TEST_DEBIAN_IMAGE,
  node: process.env.CODEGOD_TEST_NODE_IMAGE,
  redis: process.env.CODEGOD_TEST_REDIS_IMAGE,
  redisCommander: process.env.CODEGOD_TEST_REDIS_COMMANDER_IMAGE,
  python: process.env.CODEGOD_TEST_PYTHON_IMAGE,
};

/** The codegod image the deployment suites build and run. */
export const CODEGOD_TEST_IMAGE = 'codegod:test';

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function engineEnv(host: string | undefined): Record<string, string> {
  return host === undefined ? {} : { DOCKER_HOST: host };
}

/** `docker …` against ENGINE (DOCKER_HOST by default); never throws on a non-zero exit. */
export async function docker(args: string[], options: { engine?: string; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  const r = await execa('docker', args, {
    env: engineEnv(options.engine ?? IMAGE_ENGINE),
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Like docker() but fails the test with the command's stderr on a non-zero exit. */
export async function dockerOk(args: string[], options: Parameters<typeof docker>[1] = {}): Promise<string> {
  const r = await docker(args, options);
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** A command run in the stack engine's network namespace (where its published ports are). */
export function inStackNetns(command: string, args: string[], options: Options = {}) {
  const [cmd, argv] = STACK_NETNS === undefined ? [command, args] : ['nsenter', [`--net=${STACK_NETNS}`, '--', command, ...args]];
  return execa(cmd, argv, { reject: false, ...options, env: { ...engineEnv(STACK_ENGINE), ...(options.env ?? {}) } });
}

/**
 * Builds the codegod image once per run: test files that need it wait on a lock, and the
 * second build is all cache hits anyway. Returns the build's wall time (0 when another file
 * built it).
 */
export async function ensureCodegodImage(): Promise<{ image: string; seconds: number }> {
  const lock = join(tmpdir(), `codegod-test-image-${Buffer.from(IMAGE_ENGINE ?? 'default').toString('hex').slice(-24)}.lock`);
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      if (lockIsStale(lock)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`waited 20 min for ${lock}`);
      else await sleep(1_000);
    }
  }
  try {
    const started = Date.now();
    const args = ['build', '--network', 'host', '-t', CODEGOD_TEST_IMAGE];
    if (TEST_IMAGES.node) args.push('--build-arg', `NODE_IMAGE=${TEST_IMAGES.node}`);
    const r = await docker([...args, ROOT], { timeoutMs: 15 * 60_000 });
    if (r.exitCode !== 0) throw new Error(`docker build failed:\n${(r.stdout + r.stderr).split('\n').slice(-30).join('\n')}`);
    return { image: CODEGOD_TEST_IMAGE, seconds: (Date.now() - started) / 1000 };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function lockIsStale(lock: string): boolean {
  try {
    const pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // No pid file yet: the holder is between mkdir and write, unless that was long ago.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 10_000;
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Makes IMAGES (present on the image engine) available on the stack engine. */
export async function copyToStackEngine(images: string[]): Promise<void> {
  if (STACK_ENGINE === IMAGE_ENGINE) return;
  const wanted: string[] = [];
  for (const image of images) {
    const src = await dockerOk(['image', 'inspect', '-f', '{{.Id}}', image]);
    const dst = await docker(['image', 'inspect', '-f', '{{.Id}}', image], { engine: STACK_ENGINE });
    if (dst.stdout.trim() !== src) wanted.push(image);
  }
  if (wanted.length === 0) return;
  const save = execa('docker', ['save', ...wanted], { env: engineEnv(IMAGE_ENGINE), buffer: false });
  const load = execa('docker', ['load', '-q'], { env: engineEnv(STACK_ENGINE), reject: false });
  save.stdout?.pipe(load.stdin!);
  const [, loaded] = await Promise.all([save, load]);
  if (loaded.exitCode !== 0) throw new Error(`docker load failed: ${String(loaded.stderr)}`);
}

/** Polls `check` until it returns a value (not undefined), or fails after timeoutMs. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}
