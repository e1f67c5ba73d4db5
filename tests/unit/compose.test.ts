/**
 * docker-compose.agents.yml: the hardening the deployment promises, read from the file with
 * the `yaml` package, and the file as Compose itself sees it (`docker-compose config`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../shared/config.js';
import { ROLES } from '../../shared/domain/roles.js';

const ROOT = resolve(import.meta.dirname, '../..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.agents.yml');
const ENV_EXAMPLE = join(ROOT, '.env.example');
const text = readFileSync(COMPOSE_FILE, 'utf8');

type Obj = Record<string, any>;

const compose = parse(text, { merge: true }) as Obj;
const services = compose.services as Record<string, Obj>;
const AGENTS = ROLES.map((role) => `${role}-agent`);
const CODEGOD = ['master-orchestrator', ...AGENTS];

/** Resolves `${VAR:-default}` to its default; `${VAR:?message}` (required) to undefined. */
function withDefaults(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const s = String(value);
  if (/\$\{[A-Z0-9_]+:\?[^}]*\}/.test(s)) return undefined;
  return s.replace(/\$\{[A-Z0-9_]+(?::-([^}]*))?\}/g, (_m, def: string | undefined) => def ?? '');
}

/** Compose durations such as 35m, 1h30m, 90s, in seconds. */
function durationSeconds(value: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(h|m|s)/g;
  let matched = '';
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    matched += m[0];
  }
  if (matched !== value) throw new Error(`not a duration: ${value}`);
  return total;
}

/** Bytes from compose sizes such as 4g, 1536m. */
function bytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(value);
  if (!m) throw new Error(`not a size: ${value}`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Number(m[1]) * (mult[(m[2] ?? '').toLowerCase()] as number);
}

function commandText(service: Obj): string {
  return [service.entrypoint, service.command].flat().filter(Boolean).join(' ');
}

describe('structure', () => {
  it('has the services of the design', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['redis', 'redis-commander', 'vllm-server', 'ollama', ...CODEGOD]),
    );
  });

  it('defines the orchestrator from x-agent and every role agent from x-role-agent (x-agent plus the sandbox)', () => {
    expect(compose['x-agent']).toBeTruthy();
    expect(text).toMatch(/\nx-role-agent: &role-agent\n  <<: \*agent\n/);
    expect(text).toMatch(/\n  master-orchestrator:\n    <<: \*agent\n/);
    for (const name of AGENTS) {
      expect(text).toMatch(new RegExp(`\\n  ${name}:\\n    <<: \\*role-agent\\n`));
    }
  });

  it('gives each agent its role and runs the worker command', () => {
    for (const role of ROLES) {
      const svc = services[`${role}-agent`] as Obj;
      expect(svc.environment.AGENT_ROLE).toBe(role);
      expect(svc.command).toEqual(['codegod', 'worker']);
    }
    expect(services['master-orchestrator']?.command).toEqual(['codegod', 'orchestrator']);
    expect(services['master-orchestrator']?.environment.CODEGOD_HTTP_HOST).toBe('0.0.0.0');
  });

  it('builds the codegod image once, in the orchestrator service (and the devops engine its own)', () => {
    const builders = Object.entries(services).filter(([, s]) => s.build).map(([name]) => name);
    expect(builders.sort()).toEqual(['docker-engine', 'master-orchestrator']);
    for (const name of [...CODEGOD, 'scripted-llm']) expect(services[name]?.image).toBe(services['master-orchestrator']?.image);
  });

  it("builds FROM the Dockerfile's own default base unless NODE_IMAGE names another", () => {
    const dockerfileDefault = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
    expect(withDefaults(services['master-orchestrator']?.build.args.NODE_IMAGE)).toBe(dockerfileDefault);
    const engineDefault = /^ARG BASE_IMAGE=(\S+)$/m.exec(readFileSync(join(ROOT, 'deploy/docker-engine/Dockerfile'), 'utf8'))?.[1];
    expect(withDefaults(services['docker-engine']?.build.args.BASE_IMAGE)).toBe(engineDefault);
  });
});

describe('hardening of the orchestrator and every agent', () => {
  const taskTimeoutSeconds = ConfigSchema.shape.CODEGOD_TASK_TIMEOUT_MS.parse(undefined) / 1000;

  it.each(CODEGOD.map((n) => [n]))('%s', (name) => {
    const svc = services[name] as Obj;
    expect(svc.container_name).toBeUndefined();
    const [uid, gid] = (withDefaults(svc.user) ?? '').split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    expect(svc.read_only).toBe(true);
    expect(svc.cap_drop).toEqual(['ALL']);
    expect(svc.cap_add).toBeUndefined();
    expect(svc.privileged ?? false).toBe(false);
    expect(svc.security_opt).toContain('no-new-privileges:true');
    expect(svc.pids_limit).toBeGreaterThan(0);
    expect(bytes(withDefaults(svc.mem_limit) ?? '')).toBeGreaterThan(0);
    expect(Number(withDefaults(svc.cpus))).toBeGreaterThan(0);
    // Agents finish their task on SIGTERM; the orchestrator hands its goals back in < 10 s.
    if (name === 'master-orchestrator') expect(durationSeconds(withDefaults(svc.stop_grace_period) ?? '')).toBe(15);
    else expect(durationSeconds(withDefaults(svc.stop_grace_period) ?? '')).toBeGreaterThan(taskTimeoutSeconds);
    expect(svc.restart).toBe('unless-stopped');
    expect(svc.healthcheck.test).toEqual(['CMD', 'node', '/app/dist/scripts/healthcheck.js']);
    // The workspace volume is the only writable path besides the /tmp tmpfs.
    expect(svc.volumes).toEqual(['workspace:/workspace']);
    expect((svc.tmpfs as string[]).map((t) => t.split(':')[0])).toEqual(['/tmp']);
    expect(svc.environment.CODEGOD_WORKSPACE_ROOT).toBe('/workspace');
    expect(svc.environment.CODEGOD_HEALTH_FILE).toMatch(/^\/tmp\//);
  });

  it('no container anywhere gets the Docker socket', () => {
    expect(text).not.toMatch(/docker\.sock/);
    for (const [name, svc] of Object.entries(services)) {
      for (const v of (svc.volumes ?? []) as unknown[]) {
        const source = String(typeof v === 'string' ? v.split(':')[0] : (v as Obj).source);
        // Named volumes only: no host path, let alone the engine's.
        expect(source, name).toMatch(/^[a-z][a-z0-9-]*$/);
        expect(Object.keys(compose.volumes as Obj), name).toContain(source);
      }
      expect(svc.privileged ?? false, name).toBe(false);
      expect(svc.pid, name).toBeUndefined();
      expect(svc.network_mode === 'host', name).toBe(false);
    }
  });

  it('secrets reach codegod as files, never as environment values', () => {
    for (const name of CODEGOD) {
      const svc = services[name] as Obj;
      expect(svc.secrets).toEqual(expect.arrayContaining(['redis_password', 'llm_api_key']));
      expect(svc.environment.REDIS_PASSWORD_FILE).toBe('/run/secrets/redis_password');
      expect(svc.environment.LLM_API_KEY_FILE).toBe('/run/secrets/llm_api_key');
      expect(svc.environment).not.toHaveProperty('REDIS_PASSWORD');
      expect(svc.environment).not.toHaveProperty('LLM_API_KEY');
    }
    for (const [name, secret] of Object.entries(compose.secrets as Record<string, Obj>)) {
      expect(secret.file, name).toBe(`./secrets/${name}`);
    }
  });
});

describe('redis', () => {
  const redis = services.redis as Obj;

  it('publishes no port and sits only on the internal network', () => {
    expect(redis.ports).toBeUndefined();
    expect(redis.networks).toEqual(['backplane']);
    expect(compose.networks.backplane.internal).toBe(true);
  });

  it('runs with AOF everysec, noeviction and the password from the secret file', () => {
    const cmd = commandText(redis);
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--appendfsync everysec');
    expect(cmd).toContain('--maxmemory-policy noeviction');
    expect(cmd).toMatch(/requirepass .*cat \/run\/secrets\/redis_password/);
    expect(redis.secrets).toEqual(['redis_password']);
    expect(redis.healthcheck.test.join(' ')).toContain('redis-cli ping');
    expect(redis.environment).not.toHaveProperty('REDIS_PASSWORD');
  });

  it('is non-root, read-only and capability-free too', () => {
    expect(Number((withDefaults(redis.user) ?? '').split(':')[0])).toBeGreaterThan(0);
    expect(redis.read_only).toBe(true);
    expect(redis.cap_drop).toEqual(['ALL']);
  });
});

describe('published ports bind 127.0.0.1 only', () => {
  it('redis-commander: 127.0.0.1:8081 with basic auth from the environment', () => {
    const commander = services['redis-commander'] as Obj;
    expect(commander.ports.map(withDefaults)).toEqual(['127.0.0.1:8081:8081']);
    expect(commander.environment.HTTP_USER).toMatch(/^\$\{REDIS_COMMANDER_USER/);
    expect(commander.environment.HTTP_PASSWORD).toMatch(/^\$\{REDIS_COMMANDER_PASSWORD:\?/);
    expect(commander.environment.REDIS_PASSWORD_FILE).toBe('/run/secrets/redis_password');
  });

  it('the orchestrator dashboard: 127.0.0.1:8080', () => {
    expect(services['master-orchestrator']?.ports.map(withDefaults)).toEqual(['127.0.0.1:8080:8080']);
  });

  it('every published port of every service', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const port of (svc.ports ?? []) as string[]) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });
});

describe('LLM servers', () => {
  const vllm = services['vllm-server'] as Obj;

  it('vLLM: pinned tag, GPU reservation, model and context from the environment', () => {
    expect(vllm.image).toMatch(/^vllm\/vllm-openai:v\d+\.\d+\.\d+$/);
    const [device] = vllm.deploy.resources.reservations.devices as Obj[];
    expect(device?.driver).toBe('nvidia');
    expect(device?.capabilities).toEqual(['gpu']);
    const cmd = commandText(vllm);
    expect(cmd).toContain('vllm serve "$$LLM_MODEL"');
    expect(cmd).toContain('--max-model-len "$$LLM_MAX_CONTEXT"');
    expect(cmd).toContain('--enable-prefix-caching');
    expect(cmd).toContain('--structured-outputs-config');
    expect(cmd).not.toContain('--guided-decoding-backend');
    expect(cmd).not.toContain('--api-key');
    expect(vllm.environment.LLM_MODEL).toMatch(/^\$\{LLM_MODEL:-/);
    expect(vllm.environment.LLM_MAX_CONTEXT).toMatch(/^\$\{LLM_MAX_CONTEXT:-/);
    expect(vllm.volumes).toEqual(['huggingface-cache:/root/.cache/huggingface']);
    expect(vllm.profiles).toEqual(['gpu']);
  });

  it('vLLM: /health check with a long start period', () => {
    expect(vllm.healthcheck.test.join(' ')).toContain('/health');
    expect(durationSeconds(vllm.healthcheck.start_period)).toBeGreaterThanOrEqual(600);
  });

  it('the small-model profile serves a second model with the same hardened vLLM setup', () => {
    const small = services['vllm-small'] as Obj;
    expect(small.profiles).toEqual(['small-model']);
    expect(small.image).toBe(vllm.image);
    expect(commandText(small)).toBe(commandText(vllm));
    expect(small.deploy).toEqual(vllm.deploy);
    expect(small.healthcheck).toEqual(vllm.healthcheck);
    expect(small.environment.LLM_MODEL).toMatch(/^\$\{LLM_SMALL_MODEL:-/);
    expect(small.environment.VLLM_GPU_MEMORY_UTILIZATION).toMatch(/^\$\{VLLM_SMALL_GPU_MEMORY_UTILIZATION:-0\.\d+\}$/);
    expect(small.networks).toContain('backplane');
    // Agents reach it through their per-role endpoint settings.
    for (const v of ['VLLM_API_URL_DEVOPS', 'VLLM_API_URL_TESTING', 'LLM_MODEL_DEVOPS', 'LLM_TEMPERATURE_TESTING']) expect(compose['x-codegod-env'], v).toHaveProperty(v);
  });

  it('Ollama replaces vLLM under the cpu profile', () => {
    const ollama = services.ollama as Obj;
    expect(ollama.profiles).toEqual(['cpu']);
    expect(ollama.image).toMatch(/^ollama\/ollama:\d+\.\d+\.\d+$/);
    expect(ollama.healthcheck).toBeTruthy();
  });

  it('the internal network carries Redis and the LLM; egress only where downloads happen', () => {
    for (const name of ['vllm-server', 'ollama', 'master-orchestrator', ...AGENTS]) {
      expect(services[name]?.networks, name).toContain('backplane');
    }
    const withEgress = Object.entries(services)
      .filter(([, s]) => (s.networks ?? []).includes('egress'))
      .map(([name]) => name)
      .sort();
    expect(withEgress).toEqual([...AGENTS].sort());
    const withDownloads = Object.entries(services)
      .filter(([, s]) => (s.networks ?? []).includes('downloads'))
      .map(([name]) => name)
      .sort();
    expect(withDownloads).toEqual(['docker-engine', 'ollama', 'vllm-server', 'vllm-small']);
  });

  it('every image is pinned', () => {
    for (const [name, svc] of Object.entries(services)) {
      const image = withDefaults(svc.image) ?? '';
      expect(image, name).toMatch(/^[^:]+(\/[^:]+)*:[^:]+$/);
      expect(image, name).not.toMatch(/:latest$/);
    }
  });
});

describe('trying the stack without a GPU: the scripted profile', () => {
  const scripted = services['scripted-llm'] as Obj;

  it('runs the scripted server from the codegod image on the internal network only', () => {
    expect(scripted.profiles).toEqual(['scripted']);
    expect(scripted.command.slice(0, 4)).toEqual(['node', '/app/dist/scripts/llm-server/main.js', '--scenario', '/app/scripts/llm-server/scenarios/todo-app.yaml']);
    // xgrammar is a development dependency, not in the image.
    expect(scripted.command).toContain('--no-grammar-check');
    expect(scripted.networks).toEqual(['backplane']);
    expect(scripted.ports).toBeUndefined();
    expect(scripted.read_only).toBe(true);
    expect(scripted.cap_drop).toEqual(['ALL']);
    expect(scripted.healthcheck.test.join(' ')).toContain('/v1/models');
  });
});

describe('the devops agent\'s isolated engine: the docker profile', () => {
  const engine = services['docker-engine'] as Obj;
  const devops = services['devops-agent'] as Obj;

  it('is rootless dockerd under its own profile, with no host path, no socket and no privileged flag', () => {
    expect(engine.profiles).toEqual(['docker']);
    expect(engine.build.context).toBe('deploy/docker-engine');
    expect(engine.privileged ?? false).toBe(false);
    expect(engine.cap_drop).toEqual(['ALL']);
    expect(engine.cap_add.sort()).toEqual(['DAC_OVERRIDE', 'SETFCAP', 'SETGID', 'SETUID', 'SYS_ADMIN']);
    expect(engine.devices).toEqual(['/dev/net/tun', '/dev/fuse']);
    expect(engine.volumes).toEqual(['docker-engine-data:/home/rootless/.local/share/docker']);
    expect(engine.ports).toBeUndefined();
    const entrypoint = readFileSync(join(ROOT, 'deploy/docker-engine/entrypoint.sh'), 'utf8');
    expect(entrypoint).toMatch(/setpriv --reuid=rootless/);
    expect(entrypoint).toContain('dockerd-rootless.sh');
  });

  it('shares the internal builder network with the devops agent alone', () => {
    expect(compose.networks.builder.internal).toBe(true);
    const onBuilder = Object.entries(services).filter(([, s]) => (s.networks ?? []).includes('builder')).map(([name]) => name).sort();
    expect(onBuilder).toEqual(['devops-agent', 'docker-engine']);
    expect(devops.environment.CODEGOD_DOCKER_HOST).toBe('${CODEGOD_DOCKER_HOST:-}');
    for (const name of CODEGOD.filter((n) => n !== 'devops-agent')) {
      expect(services[name]?.environment.CODEGOD_DOCKER_HOST, name).toBeUndefined();
    }
  });
});

describe("the role agents' command sandbox", () => {
  const SECCOMP = 'deploy/seccomp/codegod-agent.json';
  const profile = JSON.parse(readFileSync(join(ROOT, SECCOMP), 'utf8')) as Obj;
  const rules = profile.syscalls as Obj[];
  const ADDED = ['clone', 'unshare', 'setns', 'mount', 'umount2', 'pivot_root'];

  it.each(AGENTS.map((n) => [n]))('%s: the agent seccomp profile, unmasked /proc, /dev/net/tun, and still no capability', (name) => {
    const svc = services[name] as Obj;
    expect(svc.security_opt).toEqual(['no-new-privileges:true', `seccomp=${SECCOMP}`, '${CODEGOD_AGENT_PROC_OPT:-systempaths=unconfined}']);
    expect(svc.devices).toEqual(['${CODEGOD_TUN_DEVICE:-/dev/net/tun}:/dev/net/tun']);
    expect(svc.cap_add).toBeUndefined();
    expect(svc.privileged ?? false).toBe(false);
  });

  it('every other service keeps the default seccomp profile, masks and devices', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (AGENTS.includes(name) || name === 'docker-engine') continue;
      for (const opt of (svc.security_opt ?? []) as string[]) expect(opt, name).not.toMatch(/^(seccomp|systempaths|apparmor)/);
      if (name !== 'vllm-server' && name !== 'vllm-small') expect(svc.devices, name).toBeUndefined();
    }
  });

  it("the profile is Docker's default plus one rule that allows exactly the namespace syscalls", () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO');
    const added = rules.at(-1) as Obj;
    expect([...added.names].sort()).toEqual([...ADDED].sort());
    expect(added.action).toBe('SCMP_ACT_ALLOW');
    expect(added.args ?? added.includes ?? added.excludes).toBeUndefined();
    // Everywhere else they are allowed only as in Docker's default: with CAP_SYS_ADMIN (which
    // the agents never have), or clone without namespace flags.
    for (const rule of rules.slice(0, -1)) {
      const ns = (rule.names as string[]).filter((n) => ADDED.includes(n));
      if (ns.length === 0 || rule.action !== 'SCMP_ACT_ALLOW') continue;
      if (rule.includes?.caps) expect(rule.includes.caps).toEqual(['CAP_SYS_ADMIN']);
      else expect(ns.length === 1 && ns[0] === 'clone' && rule.args?.[0]?.op === 'SCMP_CMP_MASKED_EQ', JSON.stringify(rule)).toBe(true);
    }
    // What Docker's default keeps from every container stays refused unless a capability says so.
    const unconditional = new Set(rules.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.includes && !r.args).flatMap((r) => r.names as string[]));
    for (const name of ['bpf', 'perf_event_open', 'kexec_load', 'init_module', 'reboot', 'swapon', 'keyctl', 'add_key', 'userfaultfd', 'open_by_handle_at', 'chroot', 'setdomainname']) {
      expect(unconditional.has(name), name).toBe(false);
    }
  });

  it('no container reaches another over egress or downloads: commands leave through egress', () => {
    for (const net of ['egress', 'downloads']) expect(compose.networks[net].driver_opts['com.docker.network.bridge.enable_icc'], net).toBe('false');
  });

  it('an agent shares egress with no service it talks to (a name would resolve to the unreachable address there)', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (!AGENTS.includes(name)) expect(svc.networks ?? [], name).not.toContain('egress');
    }
  });

  it("the devops agent's commands leave through the interface that reaches its engine", () => {
    expect(services['devops-agent']?.environment.CODEGOD_SANDBOX_OUTBOUND).toBe('docker-engine');
    for (const name of AGENTS.filter((n) => n !== 'devops-agent')) expect(services[name]?.environment.CODEGOD_SANDBOX_OUTBOUND, name).toBeUndefined();
  });
});

describe('.env.example', () => {
  const example = readFileSync(ENV_EXAMPLE, 'utf8');
  const documented = new Set([...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

  it('documents every variable of shared/config.ts', () => {
    const missing = Object.keys(ConfigSchema.shape).filter((k) => !documented.has(k));
    expect(missing).toEqual([]);
  });

  it('documents every variable the compose file reads', () => {
    const used = new Set([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1] as string));
    expect([...used].filter((v) => !documented.has(v))).toEqual([]);
  });

  it('passes only real codegod settings to the containers', () => {
    const known = new Set([...Object.keys(ConfigSchema.shape), 'REDIS_PASSWORD_FILE', 'LLM_API_KEY_FILE']);
    const unknown = Object.keys(compose['x-codegod-env'] as Obj).filter((k) => !known.has(k));
    expect(unknown).toEqual([]);
  });
});

describe('docker-compose validates the file', () => {
  // An empty env file, so a developer's own .env cannot change what is checked.
  const scratch = mkdtempSync(join(tmpdir(), 'codegod-compose-'));
  const emptyEnv = join(scratch, 'empty.env');
  writeFileSync(emptyEnv, '');
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  function dockerCompose(args: string[], env: Record<string, string> = { REDIS_COMMANDER_PASSWORD: 'x' }) {
    const result = spawnSync('docker-compose', ['--env-file', emptyEnv, '-f', COMPOSE_FILE, ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      timeout: 30_000,
    });
    if (result.error) {
      throw new Error(
        `docker-compose is not installed (${result.error.message}); install it: apt-get install -y --no-install-recommends docker-compose`,
      );
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  it('config -q accepts it', () => {
    const result = dockerCompose(['config', '-q']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('resolves the shared agent settings the same way', () => {
    const result = dockerCompose(['config']);
    expect(result.status).toBe(0);
    const resolved = parse(result.stdout) as Obj;
    for (const name of CODEGOD) {
      const svc = resolved.services[name] as Obj;
      expect(svc.user, name).toBe('10001:10001');
      expect(svc.read_only, name).toBe(true);
      expect(svc.cap_drop, name).toEqual(['ALL']);
      expect(svc.stop_grace_period, name).toBe(name === 'master-orchestrator' ? '15s' : '35m');
      expect(svc.container_name, name).toBeUndefined();
      if (name === 'master-orchestrator') expect(svc.security_opt, name).toEqual(['no-new-privileges:true']);
      else expect(svc.security_opt, name).toEqual(['no-new-privileges:true', 'seccomp:deploy/seccomp/codegod-agent.json', 'systempaths=unconfined']);
    }
    expect(resolved.services.redis.ports).toBeUndefined();
  });

  it('refuses to start Redis Commander without a password', () => {
    const result = dockerCompose(['config', '-q'], {});
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('REDIS_COMMANDER_PASSWORD');
  });
});
