/**
 * start-agents.sh against stub `docker` / `docker-compose` binaries: each stub appends its
 * argv and the environment compose would see to a log, and prints canned output for
 * `docker info` and `docker compose version`. PATH holds only the stubs and links to the
 * machine's other tools, so a real Docker installation never answers.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/redis/redis-server.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'start-agents.sh');
const SEP = '\x1f';

const DOCKER_STUB = `#!/bin/bash
{
  printf 'CALL'; printf '\\x1f%s' "docker" "$@"; printf '\\n'
  printf 'ENV\\x1fCOMPOSE_PROFILES=%s\\x1fCODEGOD_UID=%s\\x1fCODEGOD_GID=%s\\x1fVLLM_API_URL=%s\\x1fLLM_MODEL=%s\\x1fREDIS_COMMANDER_PASSWORD=%s\\x1fCODEGOD_DOCKER_HOST=%s\\x1fCODEGOD_AGENT_PROC_OPT=%s\\x1fCWD=%s\\n' \\
    "\${COMPOSE_PROFILES-}" "\${CODEGOD_UID-}" "\${CODEGOD_GID-}" "\${VLLM_API_URL-}" "\${LLM_MODEL-}" "\${REDIS_COMMANDER_PASSWORD-}" "\${CODEGOD_DOCKER_HOST-}" "\${CODEGOD_AGENT_PROC_OPT-}" "$PWD"
} >>"$STUB_LOG"
case "$1" in
  info)
    if [ "\${STUB_ENGINE:-up}" = down ]; then
      echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
      exit 1
    fi
    printf 'Client:\\n Version:    27.3.1\\n\\nServer:\\n Server Version: 27.3.1\\n Runtimes: io.containerd.runc.v2 %srunc\\n Default Runtime: runc\\n' "\${STUB_NVIDIA:+nvidia }"
    exit 0
    ;;
  compose)
    if [ "\${STUB_COMPOSE_PLUGIN:-1}" = 0 ]; then
      echo "docker: 'compose' is not a docker command." >&2
      exit 1
    fi
    if [ "$2" = version ]; then echo "Docker Compose version v2.29.7"; exit 0; fi
    case " $* " in *" up "*) exit "\${STUB_UP_RC:-\${STUB_COMPOSE_RC:-0}}" ;; esac
    exit "\${STUB_COMPOSE_RC:-0}"
    ;;
esac
exit 0
`;

const COMPOSE_V1_STUB = `#!/bin/bash
{
  printf 'CALL'; printf '\\x1f%s' "docker-compose" "$@"; printf '\\n'
  printf 'ENV\\x1fCOMPOSE_PROFILES=%s\\x1fCODEGOD_UID=%s\\x1fCODEGOD_GID=%s\\x1fVLLM_API_URL=%s\\x1fLLM_MODEL=%s\\x1fREDIS_COMMANDER_PASSWORD=%s\\x1fCODEGOD_DOCKER_HOST=%s\\x1fCODEGOD_AGENT_PROC_OPT=%s\\x1fCWD=%s\\n' \\
    "\${COMPOSE_PROFILES-}" "\${CODEGOD_UID-}" "\${CODEGOD_GID-}" "\${VLLM_API_URL-}" "\${LLM_MODEL-}" "\${REDIS_COMMANDER_PASSWORD-}" "\${CODEGOD_DOCKER_HOST-}" "\${CODEGOD_AGENT_PROC_OPT-}" "$PWD"
} >>"$STUB_LOG"
if [ "$1" = version ]; then echo "docker-compose version 1.29.2, build unknown"; exit 0; fi
case " $* " in *" up "*) exit "\${STUB_UP_RC:-\${STUB_COMPOSE_RC:-0}}" ;; esac
exit "\${STUB_COMPOSE_RC:-0}"
`;

interface Call {
  argv: string[];
  env: Record<string, string>;
}

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: Call[];
  /** Compose invocations with the `-f <file> -p <project>` prefix removed; `version` probes dropped. */
  compose: string[][];
}

type Stubs = 'docker' | 'docker+v1' | 'v1-only';

let work: string;
let toolsDir: string;
/** Free ports, so that `up`'s check of the published ports never meets this machine's. */
const ports = { dashboard: 0, commander: 0 };
const stubDirs = new Map<Stubs, string>();

/** Links every tool on this machine's PATH except Docker's into one directory. */
function linkTools(target: string): void {
  mkdirSync(target);
  const seen = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || !existsSync(dir)) continue;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith('docker') || seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(dir, name), join(target, name));
    }
  }
}

function writeStub(dir: string, name: string, text: string): void {
  writeFileSync(join(dir, name), text);
  chmodSync(join(dir, name), 0o755);
}

function parseLog(path: string): Call[] {
  if (!existsSync(path)) return [];
  const calls: Call[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [kind, ...fields] = line.split(SEP);
    if (kind === 'CALL') calls.push({ argv: fields, env: {} });
    if (kind === 'ENV') {
      const last = calls.at(-1);
      if (!last) continue;
      for (const field of fields) {
        const eq = field.indexOf('=');
        last.env[field.slice(0, eq)] = field.slice(eq + 1);
      }
    }
  }
  return calls;
}

/** A fresh project directory holding a copy of the script (and an optional .env). */
function project(dotenv?: string): string {
  const dir = mkdtempSync(join(work, 'project-'));
  copyFileSync(SCRIPT, join(dir, 'start-agents.sh'));
  if (dotenv !== undefined) writeFileSync(join(dir, '.env'), dotenv);
  return dir;
}

function runScript(args: string[], opts: { stubs?: Stubs; env?: Record<string, string>; dir?: string } = {}): Result {
  const dir = opts.dir ?? project();
  const log = join(dir, `calls-${Math.random().toString(36).slice(2)}.log`);
  const stubDir = stubDirs.get(opts.stubs ?? 'docker');
  const env: Record<string, string> = {
    PATH: `${stubDir}${delimiter}${toolsDir}`,
    HOME: dir,
    STUB_LOG: log,
    STUB_NVIDIA: '1',
    CODEGOD_DASHBOARD_PORT: String(ports.dashboard),
    REDIS_COMMANDER_PORT: String(ports.commander),
    ...opts.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
  const child = spawnSync('bash', [join(dir, 'start-agents.sh'), ...args], {
    env,
    input: '',
    encoding: 'utf8',
    timeout: 20_000,
  });
  const calls = parseLog(log);
  const compose = calls
    .map((c) => c.argv)
    .filter((argv) => (argv[0] === 'docker' && argv[1] === 'compose') || argv[0] === 'docker-compose')
    .map((argv) => (argv[0] === 'docker' ? argv.slice(2) : argv.slice(1)))
    .filter((argv) => argv[0] !== 'version')
    .map((argv) => {
      expect(argv.slice(0, 4)).toEqual(['-f', join(dir, 'docker-compose.agents.yml'), '-p', 'codegod']);
      return argv.slice(4);
    });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr, calls, compose };
}

function composeEnv(result: Result): Record<string, string> {
  const call = result.calls.find((c) => c.argv.includes('-f'));
  if (!call) throw new Error('no compose invocation was logged');
  return call.env;
}

function expectUsageError(result: Result, message: RegExp): void {
  expect(result.status).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).toMatch(/^usage: start-agents\.sh up \[--no-build\] \| down/m);
  expect(result.calls).toEqual([]);
}

const expectedUid = process.getuid?.() === 0 ? '10001' : String(process.getuid?.());

beforeAll(async () => {
  ports.dashboard = await freePort();
  ports.commander = await freePort();
  work = mkdtempSync(join(tmpdir(), 'codegod-start-agents-'));
  toolsDir = join(work, 'tools');
  linkTools(toolsDir);
  for (const kind of ['docker', 'docker+v1', 'v1-only'] as const) {
    const dir = join(work, `stubs-${kind.replace('+', '-')}`);
    mkdirSync(dir);
    if (kind !== 'v1-only') writeStub(dir, 'docker', DOCKER_STUB);
    if (kind !== 'docker') writeStub(dir, 'docker-compose', COMPOSE_V1_STUB);
    stubDirs.set(kind, dir);
  }
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('start-agents.sh is clean shell', () => {
  it('passes shellcheck', () => {
    const result = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });
    if (result.error) {
      throw new Error(`shellcheck is not installed (${result.error.message}); install it: apt-get install -y shellcheck`);
    }
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('uses strict mode', () => {
    expect(readFileSync(SCRIPT, 'utf8')).toMatch(/^set -euo pipefail$/m);
  });
});

describe('up', () => {
  it('creates 0600 secrets, builds the image and starts every service with the gpu profile', () => {
    const dir = project();
    const result = runScript(['up'], { dir });
    expect(result.stderr).toBe(
      `start-agents: created redis_password llm_api_key redis_commander_password api_token hf_token in ${join(dir, 'secrets')} (mode 0600)\n`,
    );
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([['build'], ['up', '-d', '--no-build']]);

    const secrets = join(dir, 'secrets');
    expect(statSync(secrets).mode & 0o777).toBe(0o700);
    for (const name of ['redis_password', 'llm_api_key', 'redis_commander_password', 'api_token']) {
      const file = join(secrets, name);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(String(statSync(file).uid)).toBe(expectedUid);
      expect(readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(readFileSync(join(secrets, 'hf_token'), 'utf8')).toBe('');
    expect(readFileSync(join(secrets, 'redis_password'), 'utf8')).not.toBe(readFileSync(join(secrets, 'llm_api_key'), 'utf8'));

    const env = composeEnv(result);
    expect(env.COMPOSE_PROFILES).toBe('gpu');
    expect(env.CODEGOD_UID).toBe(expectedUid);
    expect(env.REDIS_COMMANDER_PASSWORD).toBe(readFileSync(join(secrets, 'redis_commander_password'), 'utf8'));
    expect(env.VLLM_API_URL).toBe('');
    expect(env.CWD).toBe(dir);
    expect(result.stdout).toContain(`http://127.0.0.1:${ports.dashboard}`);
    expect(result.stdout).toContain(`http://127.0.0.1:${ports.commander}`);
  });

  it('keeps existing secrets on the next run', () => {
    const dir = project();
    runScript(['up'], { dir });
    const before = readFileSync(join(dir, 'secrets', 'redis_password'), 'utf8');
    const again = runScript(['up'], { dir });
    expect(again.status).toBe(0);
    expect(readFileSync(join(dir, 'secrets', 'redis_password'), 'utf8')).toBe(before);
    expect(again.stderr).toBe('');
  });

  it('refuses vLLM when docker info lists no nvidia runtime, pointing at the cpu profile', () => {
    const result = runScript(['up'], { env: { STUB_NVIDIA: '' } });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('no nvidia runtime');
    expect(result.stderr).toContain('COMPOSE_PROFILES=cpu');
    expect(result.compose).toEqual([]);
  });

  it('runs Ollama without a GPU under the cpu profile and points the agents at it', () => {
    const result = runScript(['up'], { env: { STUB_NVIDIA: '', COMPOSE_PROFILES: 'cpu' } });
    expect(result.stderr).not.toMatch(/nvidia/i);
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([['build'], ['up', '-d', '--no-build']]);
    const env = composeEnv(result);
    expect(env.COMPOSE_PROFILES).toBe('cpu');
    expect(env.VLLM_API_URL).toBe('http://ollama:11434/v1');
    expect(env.LLM_MODEL).toBe('qwen2.5-coder:7b');
  });

  it('reads the profile from .env and leaves what .env sets to compose', () => {
    const dir = project('COMPOSE_PROFILES=cpu\nLLM_MODEL="llama3.2:3b"\nREDIS_COMMANDER_PASSWORD=from-dotenv\n');
    const result = runScript(['up'], { dir, env: { STUB_NVIDIA: '' } });
    expect(result.status).toBe(0);
    const env = composeEnv(result);
    expect(env.COMPOSE_PROFILES).toBe('cpu');
    expect(env.VLLM_API_URL).toBe('http://ollama:11434/v1');
    expect(env.LLM_MODEL).toBe('');
    expect(env.REDIS_COMMANDER_PASSWORD).toBe('');
  });

  it('rejects a root container uid', () => {
    const result = runScript(['up'], { env: { CODEGOD_UID: '0' } });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('CODEGOD_UID=0');
    expect(result.compose).toEqual([]);
  });
});

describe('profiles without a GPU and the devops engine', () => {
  it('scripted: the scripted LLM in place of vLLM, no NVIDIA check, its model by default', () => {
    const result = runScript(['up'], { env: { STUB_NVIDIA: '', COMPOSE_PROFILES: 'scripted' } });
    expect(result.stderr).not.toMatch(/nvidia/i);
    expect(result.status).toBe(0);
    const env = composeEnv(result);
    expect(env.COMPOSE_PROFILES).toBe('scripted');
    expect(env.VLLM_API_URL).toBe('http://scripted-llm:8000/v1');
    expect(env.LLM_MODEL).toBe('codegod-test');
    expect(env.CODEGOD_DOCKER_HOST).toBe('');
    expect(result.stdout).toContain('Create a Flask + React todo app');
  });

  it('docker: the devops agent gets the isolated engine, alongside any LLM profile', () => {
    const result = runScript(['up'], { env: { COMPOSE_PROFILES: 'gpu,docker' } });
    expect(result.status).toBe(0);
    const env = composeEnv(result);
    expect(env.COMPOSE_PROFILES).toBe('gpu,docker');
    expect(env.CODEGOD_DOCKER_HOST).toBe('tcp://docker-engine:2375');
    expect(runScript(['up'], { env: { COMPOSE_PROFILES: 'scripted,docker', STUB_NVIDIA: '' } }).status).toBe(0);
  });

  it('refuses two LLM servers at once', () => {
    const result = runScript(['up'], { env: { COMPOSE_PROFILES: 'cpu,scripted' } });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/several LLM servers \(cpu scripted\)/);
    expect(result.compose).toEqual([]);
  });

  it('up --no-build starts from the images already there', () => {
    const result = runScript(['up', '--no-build']);
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([['up', '-d', '--no-build']]);
    expectUsageError(runScript(['up', '--fast']), /up takes only --no-build/);
  });
});

describe('bad input for up: one line naming the fix, non-zero, nothing left half-started', () => {
  function oneLine(result: Result): string {
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    return lines[0] ?? '';
  }

  it('a published port already taken by something else', async () => {
    const server = createServer().listen(ports.dashboard, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const dir = project();
      runScript(['down'], { dir }); // creates the secrets, so that stderr holds only the verdict
      const result = runScript(['up'], { dir });
      expect(result.status).toBe(1);
      expect(oneLine(result)).toBe(
        `start-agents: port ${ports.dashboard} on 127.0.0.1 is taken (the master-orchestrator port, CODEGOD_DASHBOARD_PORT); stop what listens there or set CODEGOD_DASHBOARD_PORT to a free port in .env`,
      );
      // Only `compose port` asked whether the project itself holds it.
      expect(result.compose).toEqual([['port', 'master-orchestrator', '8080']]);
    } finally {
      server.close();
    }
  });

  it('an empty secret', () => {
    const dir = project();
    mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
    writeFileSync(join(dir, 'secrets', 'redis_password'), '\n', { mode: 0o600 });
    const result = runScript(['up'], { dir });
    expect(result.status).toBe(1);
    expect(oneLine(result)).toMatch(/secrets\/redis_password is empty; write the secret into it, or delete it so that a new one is generated$/);
    expect(result.compose).toEqual([]);
  });

  it('a secret that is not a file', () => {
    const dir = project();
    mkdirSync(join(dir, 'secrets', 'api_token'), { recursive: true });
    const result = runScript(['up'], { dir });
    expect(result.status).toBe(1);
    expect(oneLine(result)).toMatch(/secrets\/api_token is not a regular file/);
    expect(result.compose).toEqual([]);
  });

  it('a failed start removes what it started and says so', () => {
    const result = runScript(['up'], { env: { STUB_UP_RC: '1' } });
    expect(result.status).toBe(1);
    expect(result.compose).toEqual([['build'], ['up', '-d', '--no-build'], ['down']]);
    expect(result.stderr).toMatch(/up failed \(the output above says why\); the containers it had started were removed/);
  });

  it('a failed build starts nothing', () => {
    const result = runScript(['up'], { env: { STUB_COMPOSE_RC: '1' } });
    expect(result.status).toBe(1);
    expect(result.compose).toEqual([['build']]);
    expect(result.stderr).toMatch(/building the images failed .*nothing was started/);
  });
});

describe('prerequisites', () => {
  it('says in one line that the engine is unreachable', () => {
    const result = runScript(['status'], { env: { STUB_ENGINE: 'down' } });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^start-agents: cannot reach the Docker engine \(Cannot connect to the Docker daemon/);
    expect(result.compose).toEqual([]);
  });

  it('falls back to docker-compose v1 when the compose plugin is missing', () => {
    const result = runScript(['up'], { stubs: 'docker+v1', env: { STUB_COMPOSE_PLUGIN: '0' } });
    expect(result.status).toBe(0);
    const v1 = result.calls.filter((c) => c.argv[0] === 'docker-compose').map((c) => c.argv.slice(5));
    expect(v1).toEqual([['build'], ['up', '-d', '--no-build']]);
    expect(result.calls.some((c) => c.argv[0] === 'docker' && c.argv[1] === 'compose' && c.argv[2] === '-f')).toBe(false);
    // v1 cannot say systempaths=unconfined: the agents get a no-op option in its place.
    expect(composeEnv(result).CODEGOD_AGENT_PROC_OPT).toBe('no-new-privileges');
    // …where the agents' isolated network cannot start: one line says so and names the fixes.
    expect(result.stderr).toMatch(/^start-agents: warning: docker-compose v1 .*CODEGOD_SANDBOX_NETWORK=off.*Compose v2/m);
    for (const env of [{ CODEGOD_SANDBOX_NETWORK: 'off' }, { CODEGOD_SANDBOX: 'host' }] as Record<string, string>[]) {
      const chosen = runScript(['up'], { stubs: 'docker+v1', env: { STUB_COMPOSE_PLUGIN: '0', ...env } });
      expect(chosen.status).toBe(0);
      expect(chosen.stderr).not.toMatch(/warning/);
    }
    expect(runScript(['up'], { stubs: 'docker+v1' }).stderr).not.toMatch(/warning/);
  });

  it('leaves the agents their unmasked /proc under the compose plugin, and a setting of it under v1', () => {
    expect(composeEnv(runScript(['up'], { stubs: 'docker+v1' })).CODEGOD_AGENT_PROC_OPT).toBe('');
    const own = runScript(['up'], { stubs: 'docker+v1', env: { STUB_COMPOSE_PLUGIN: '0', CODEGOD_AGENT_PROC_OPT: 'systempaths=unconfined' } });
    expect(composeEnv(own).CODEGOD_AGENT_PROC_OPT).toBe('systempaths=unconfined');
  });

  it('prefers the compose plugin when both are installed', () => {
    const result = runScript(['down'], { stubs: 'docker+v1' });
    expect(result.status).toBe(0);
    expect(result.calls.some((c) => c.argv[0] === 'docker-compose')).toBe(false);
    expect(result.compose).toEqual([['down']]);
  });

  it('fails clearly when no compose is installed', () => {
    const result = runScript(['up'], { env: { STUB_COMPOSE_PLUGIN: '0' } });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Docker Compose is not installed/);
  });

  it('fails clearly without the docker CLI', () => {
    const result = runScript(['status'], { stubs: 'v1-only' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/docker CLI is not installed/);
    expect(result.calls).toEqual([]);
  });
});

describe('subcommands map onto compose', () => {
  it('down, restart, logs', () => {
    expect(runScript(['down']).compose).toEqual([['down']]);
    expect(runScript(['restart']).compose).toEqual([['restart']]);
    expect(runScript(['restart', 'backend-agent']).compose).toEqual([['restart', 'backend-agent']]);
    expect(runScript(['logs']).compose).toEqual([['logs', '-f', '--tail=200']]);
    expect(runScript(['logs', 'master-orchestrator']).compose).toEqual([['logs', '-f', '--tail=200', 'master-orchestrator']]);
  });

  it('down works without an NVIDIA runtime (only up, pull-model and doctor need one)', () => {
    const result = runScript(['down'], { env: { STUB_NVIDIA: '' } });
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([['down']]);
  });

  it('status shows the containers and asks the orchestrator for queues, agents and builds', () => {
    const result = runScript(['status']);
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([['ps'], ['exec', '-T', 'master-orchestrator', 'codegod', 'status']]);
  });

  it('wipe --yes uses the CLI wipe, never FLUSHALL', () => {
    const result = runScript(['wipe', '--yes']);
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([['exec', '-T', 'master-orchestrator', 'codegod', 'wipe', '--all', '--yes']]);
    expect(JSON.stringify(result.calls)).not.toMatch(/flushall/i);
  });

  it('scale runs n replicas of an agent service', () => {
    expect(runScript(['scale', 'backend-agent', '4']).compose).toEqual([
      ['up', '-d', '--no-deps', '--scale', 'backend-agent=4', 'backend-agent'],
    ]);
    expect(runScript(['scale', 'testing-agent', '0']).compose).toEqual([
      ['up', '-d', '--no-deps', '--scale', 'testing-agent=0', 'testing-agent'],
    ]);
    expect(runScript(['scale', 'frontend-agent', '08']).compose).toEqual([
      ['up', '-d', '--no-deps', '--scale', 'frontend-agent=8', 'frontend-agent'],
    ]);
  });

  it('exec defaults to a shell and passes commands through', () => {
    expect(runScript(['exec', 'redis']).compose).toEqual([['exec', '-T', 'redis', 'sh']]);
    expect(runScript(['exec', 'backend-agent', 'python3', '--version']).compose).toEqual([
      ['exec', '-T', 'backend-agent', 'python3', '--version'],
    ]);
  });

  it('build hands the goal to the CLI in the orchestrator and returns its exit code', () => {
    const ok = runScript(['build', 'Build a Flask + React todo app', '--detach']);
    expect(ok.status).toBe(0);
    expect(ok.compose).toEqual([
      ['exec', '-T', 'master-orchestrator', 'codegod', 'build', 'Build a Flask + React todo app', '--detach'],
    ]);
    const failed = runScript(['build', 'Build it'], { env: { STUB_COMPOSE_RC: '3' } });
    expect(failed.status).toBe(3);
  });

  it('backup streams the archive out of the orchestrator into a file, complete or not at all', () => {
    const dir = project();
    const file = join(dir, 'nightly.tar.gz');
    const ok = runScript(['backup', file], { dir });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.compose).toEqual([['exec', '-T', 'master-orchestrator', 'codegod', 'backup', '-']]);
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const failed = runScript(['backup', join(dir, 'failed.tar.gz')], { dir, env: { STUB_COMPOSE_RC: '3' } });
    expect(failed.status).toBe(3);
    expect(readdirSync(dir).filter((f) => f.startsWith('failed'))).toEqual([]);
  });

  it('restore feeds the archive to the orchestrator', () => {
    const dir = project();
    const file = join(dir, 'nightly.tar.gz');
    writeFileSync(file, 'archive');
    const ok = runScript(['restore', file], { dir });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.compose).toEqual([['exec', '-T', 'master-orchestrator', 'codegod', 'restore', '-']]);
  });

  it('pull-model downloads the vLLM model into the Hugging Face cache', () => {
    const result = runScript(['pull-model']);
    expect(result.status).toBe(0);
    expect(result.compose).toHaveLength(1);
    const [argv] = result.compose;
    expect(argv?.slice(0, 8)).toEqual(['run', '--rm', '--no-deps', '-e', 'HF_HUB_OFFLINE=0', '--entrypoint', 'python3', 'vllm-server']);
    expect(argv?.[9]).toContain('snapshot_download');
    expect(argv?.[10]).toBe('Qwen/Qwen2.5-Coder-7B-Instruct');
    expect(runScript(['pull-model', 'mistralai/Mistral-7B-Instruct-v0.3']).compose[0]?.at(-1)).toBe(
      'mistralai/Mistral-7B-Instruct-v0.3',
    );
  });

  it('pull-model pulls into Ollama under the cpu profile', () => {
    const result = runScript(['pull-model'], { env: { COMPOSE_PROFILES: 'cpu', STUB_NVIDIA: '' } });
    expect(result.status).toBe(0);
    expect(result.compose).toEqual([
      ['up', '-d', 'ollama'],
      ['exec', '-T', 'ollama', 'ollama', 'pull', 'qwen2.5-coder:7b'],
    ]);
  });

  it('doctor reports the checks and runs codegod doctor', () => {
    const result = runScript(['doctor']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('ok: Docker engine reachable (Server Version: 27.3.1)');
    expect(result.stdout).toContain('ok: LLM: vLLM on the GPU');
    expect(result.compose).toEqual([['ps'], ['exec', '-T', 'master-orchestrator', 'codegod', 'doctor']]);
  });

  it('help prints the commands without touching Docker', () => {
    const result = runScript(['help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: start-agents\.sh/);
    for (const cmd of ['up', 'down', 'restart', 'logs', 'status', 'wipe', 'scale', 'exec', 'pull-model', 'build', 'doctor']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    }
    expect(result.calls).toEqual([]);
  });
});

describe('bad arguments: usage on stderr, exit 2, Docker untouched', () => {
  it('backup to a target that cannot be written, restore of a file that is not there: one line, nothing changed', () => {
    const dir = project();
    const before = readdirSync(dir).sort();
    const unwritable = runScript(['backup', join(dir, 'no-such-dir', 'b.tar.gz')], { dir });
    expect(unwritable.status).toBe(2);
    expect(unwritable.stderr).toBe(`start-agents: cannot write the backup to ${join(dir, 'no-such-dir', 'b.tar.gz')} (its directory is missing or not writable)\n`);
    expect(unwritable.calls).toEqual([]);
    const intoDir = runScript(['backup', dir], { dir });
    expect(intoDir.status).toBe(2);
    expect(intoDir.calls).toEqual([]);
    const missing = runScript(['restore', join(dir, 'missing.tar.gz')], { dir });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`start-agents: cannot read the backup ${join(dir, 'missing.tar.gz')} (no such file, or not readable)\n`);
    expect(missing.calls).toEqual([]);
    expectUsageError(runScript(['restore'], { dir }), /restore needs the archive/);
    expectUsageError(runScript(['backup', 'a', 'b'], { dir }), /backup takes at most one file/);
    expect(readdirSync(dir).filter((f) => !f.startsWith('calls-')).sort()).toEqual(before);
  });

  it('wipe without --yes and without a terminal', () => {
    expectUsageError(runScript(['wipe']), /needs confirmation: run it on a terminal or pass --yes/);
  });

  it('unknown or missing commands', () => {
    expectUsageError(runScript([]), /missing command/);
    expectUsageError(runScript(['launch']), /unknown command 'launch'/);
    expectUsageError(runScript(['up', 'now']), /up takes only --no-build/);
  });

  it('scale of unknown services, non-agents and bad counts', () => {
    expectUsageError(runScript(['scale', 'redis', '2']), /only agent services scale/);
    expectUsageError(runScript(['scale', 'master-orchestrator', '2']), /only agent services scale/);
    expectUsageError(runScript(['scale', 'backend-agent', '-1']), /non-negative integer/);
    expectUsageError(runScript(['scale', 'backend-agent', '2.5']), /non-negative integer/);
    expectUsageError(runScript(['scale', 'backend-agent', 'many']), /non-negative integer/);
    expectUsageError(runScript(['scale', 'backend-agent']), /needs a service and a replica count/);
  });

  it('logs, restart and exec of unknown services', () => {
    expectUsageError(runScript(['logs', 'postgres']), /unknown service 'postgres'/);
    expectUsageError(runScript(['restart', 'a', 'b']), /at most one service/);
    expectUsageError(runScript(['exec']), /exec needs a service/);
  });

  it('build without a goal, with an empty goal or unknown flags', () => {
    expectUsageError(runScript(['build']), /build needs a goal/);
    expectUsageError(runScript(['build', '   ']), /the goal is empty/);
    expectUsageError(runScript(['build', 'goal', '--fast']), /only --detach/);
    expectUsageError(runScript(['build', '--detach']), /goal comes first/);
  });

  it('wipe with unknown flags and pull-model with two models', () => {
    expectUsageError(runScript(['wipe', '--force']), /wipe takes only --yes/);
    expectUsageError(runScript(['pull-model', 'a', 'b']), /at most one model/);
  });
});
