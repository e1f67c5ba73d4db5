/**
 * The Kubernetes manifests under deploy/k8s: every document parses, the hardening holds for
 * every workload, and each role has a KEDA ScaledObject that targets its Deployment and
 * counts its own queue.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROLES } from '../../shared/domain/roles.js';

const K8S_DIR = resolve(import.meta.dirname, '../../deploy/k8s');

type Obj = Record<string, any>;

interface Manifest {
  file: string;
  doc: Obj;
}

function load(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    // Kubernetes reads YAML 1.1 (0440 is octal there).
    for (const parsed of parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'), { version: '1.1' })) {
      if (parsed.errors.length > 0) throw new Error(`${file}: ${parsed.errors.map((e) => e.message).join('; ')}`);
      const doc = parsed.toJS() as Obj | null;
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

const manifests = load();
const objects = manifests.filter((m) => m.doc.kind !== 'Kustomization').map((m) => m.doc);
const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
const named = (kind: string, name: string): Obj => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} named ${name}`);
  return found;
};
const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const config = named('ConfigMap', 'codegod-config').data as Record<string, string>;
const roleDeployment = (role: string): Obj => named('Deployment', `codegod-${role}`);
/** The agents' seccomp profile: deploy/seccomp/codegod-agent.json installed on the nodes. */
const AGENT_SECCOMP = { type: 'Localhost', localhostProfile: 'codegod/agent.json' };

describe('manifests parse', () => {
  it('every document has apiVersion, kind and a name in the codegod namespace', () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) {
      expect(o.apiVersion, JSON.stringify(o.metadata)).toBeTruthy();
      expect(o.kind).toBeTruthy();
      expect(o.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('codegod');
    }
  });

  it('kustomization.yaml lists every manifest file', () => {
    const kustomization = manifests.find((m) => m.doc.kind === 'Kustomization');
    expect(kustomization?.file).toBe('kustomization.yaml');
    const files = [...new Set(manifests.map((m) => m.file))].filter((f) => f !== 'kustomization.yaml').sort();
    expect([...(kustomization?.doc.resources as string[])].sort()).toEqual(files);
  });

  it('has the expected kinds', () => {
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of [
      'Namespace', 'Secret', 'ConfigMap', 'StatefulSet', 'Service', 'PersistentVolumeClaim',
      'Deployment', 'NetworkPolicy', 'ScaledObject', 'TriggerAuthentication',
    ]) {
      expect(kinds, kind).toContain(kind);
    }
    expect(ofKind('Deployment').map((d) => d.metadata.name)).toEqual(
      expect.arrayContaining(['codegod-orchestrator', ...ROLES.map((r) => `codegod-${r}`)]),
    );
  });

  it('enforces the restricted Pod Security Standard on the namespace', () => {
    expect(named('Namespace', 'codegod').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

describe('secrets', () => {
  it('are templates without real values', () => {
    const secrets = ofKind('Secret');
    expect(secrets.map((s) => s.metadata.name).sort()).toEqual(['codegod-api', 'codegod-llm', 'codegod-redis']);
    for (const s of secrets) {
      expect(s.data).toBeUndefined();
      for (const value of Object.values(s.stringData as Record<string, string>)) {
        expect(['REPLACE_ME', '']).toContain(value);
      }
    }
  });

  it('reach containers as files, never as environment variables', () => {
    for (const w of workloads) {
      for (const c of w.spec.template.spec.containers as Obj[]) {
        for (const e of (c.env ?? []) as Obj[]) expect(e.valueFrom?.secretKeyRef, `${w.metadata.name} ${e.name}`).toBeUndefined();
        for (const e of (c.envFrom ?? []) as Obj[]) expect(e.secretRef, w.metadata.name).toBeUndefined();
      }
    }
    expect(config.REDIS_PASSWORD_FILE).toMatch(/^\/run\/secrets\//);
    expect(config.LLM_API_KEY_FILE).toMatch(/^\/run\/secrets\//);
    expect(config).not.toHaveProperty('REDIS_PASSWORD');
    expect(config).not.toHaveProperty('LLM_API_KEY');
  });
});

describe('every workload is hardened', () => {
  it.each(workloads.map((w) => [`${w.kind}/${w.metadata.name}`, w] as const))('%s', (_name, w) => {
    const pod = w.spec.template.spec as Obj;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    // Agents: the profile of their command sandbox (below); every other pod the runtime's default.
    const seccomp = w.metadata.labels['app.kubernetes.io/component'] === 'agent' ? AGENT_SECCOMP : { type: 'RuntimeDefault' };
    expect(pod.securityContext.seccompProfile).toEqual(seccomp);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    for (const c of pod.containers as Obj[]) {
      const where = `${w.metadata.name}/${c.name}`;
      expect(c.image, where).toMatch(/^[^:]+:[^:]+$/);
      expect(c.image, where).not.toMatch(/:latest$/);
      expect(c.securityContext.allowPrivilegeEscalation, where).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem, where).toBe(true);
      expect(c.securityContext.runAsNonRoot, where).toBe(true);
      expect(c.securityContext.capabilities.drop, where).toEqual(['ALL']);
      expect(c.securityContext.capabilities.add, where).toBeUndefined();
      expect(c.securityContext.privileged ?? false, where).toBe(false);
      expect(c.securityContext.seccompProfile ?? seccomp, where).toEqual(seccomp);
      expect(c.securityContext.procMount ?? 'Default', where).toBe('Default');
      for (const kind of ['requests', 'limits']) {
        expect(c.resources[kind].cpu, `${where} ${kind}`).toBeTruthy();
        expect(c.resources[kind].memory, `${where} ${kind}`).toBeTruthy();
      }
      expect(c.livenessProbe, where).toBeTruthy();
      expect(c.readinessProbe, where).toBeTruthy();
    }
    for (const v of (pod.volumes ?? []) as Obj[]) expect(v.hostPath, `${w.metadata.name} ${v.name}`).toBeUndefined();
  });
});

describe("the agents' command sandbox", () => {
  const agents = ROLES.map(roleDeployment);

  it('runs under the Localhost seccomp profile that docs/DEPLOYMENT.md installs, with no capability and no host path', () => {
    const readme = readFileSync(join(K8S_DIR, 'README.md'), 'utf8') + readFileSync(resolve(K8S_DIR, '../../docs/DEPLOYMENT.md'), 'utf8');
    expect(readme).toContain(`/var/lib/kubelet/seccomp/${AGENT_SECCOMP.localhostProfile}`);
    expect(readme).toContain('deploy/seccomp/codegod-agent.json');
    for (const d of agents) {
      const pod = d.spec.template.spec as Obj;
      expect(pod.securityContext.seccompProfile, d.metadata.name).toEqual(AGENT_SECCOMP);
      expect(pod.securityContext.runAsUser, d.metadata.name).toBe(10001);
      expect(pod.hostUsers ?? true, d.metadata.name).toBe(true);
      const c: Obj = pod.containers[0];
      expect(c.securityContext.seccompProfile, d.metadata.name).toEqual(AGENT_SECCOMP);
      expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'] });
    }
  });

  it('keeps the network of commands off: one pod interface cannot keep them from Redis', () => {
    for (const d of agents) {
      const env = (d.spec.template.spec.containers[0].env as Obj[]).find((e) => e.name === 'CODEGOD_SANDBOX_NETWORK');
      expect(env?.value, d.metadata.name).toBe('off');
    }
    expect(config).not.toHaveProperty('CODEGOD_SANDBOX_NETWORK');
  });
});

describe('codegod workloads', () => {
  const codegod = [named('Deployment', 'codegod-orchestrator'), ...ROLES.map(roleDeployment)];

  it('run the codegod image, probe the heartbeat file and mount the shared workspace', () => {
    for (const d of codegod) {
      const pod = d.spec.template.spec as Obj;
      const c: Obj = pod.containers[0];
      expect(c.image).toMatch(/^codegod:/);
      expect(c.livenessProbe.exec.command).toEqual(['node', '/app/dist/scripts/healthcheck.js']);
      expect(c.envFrom).toEqual([{ configMapRef: { name: 'codegod-config' } }]);
      const workspace = (pod.volumes as Obj[]).find((v) => v.name === 'workspace');
      expect(workspace?.persistentVolumeClaim.claimName).toBe('codegod-workspace');
      const mounts = (c.volumeMounts as Obj[]).map((m) => m.mountPath);
      expect(mounts).toEqual(expect.arrayContaining(['/workspace', '/tmp']));
      expect((config.CODEGOD_HEALTH_FILE ?? '').startsWith('/tmp/')).toBe(true);
    }
  });

  it('one Deployment per role, with its AGENT_ROLE and a grace period longer than a task', () => {
    const taskSeconds = Number(config.CODEGOD_TASK_TIMEOUT_MS) / 1000;
    expect(taskSeconds).toBeGreaterThan(0);
    for (const role of ROLES) {
      const d = roleDeployment(role);
      const pod = d.spec.template.spec as Obj;
      const c: Obj = pod.containers[0];
      expect(c.args).toEqual(['codegod', 'worker']);
      expect((c.env as Obj[]).find((e) => e.name === 'AGENT_ROLE')?.value).toBe(role);
      expect(d.spec.selector.matchLabels).toEqual(d.spec.template.metadata.labels);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(taskSeconds);
    }
  });

  it('the orchestrator listens on 0.0.0.0:8080 behind a Service', () => {
    const d = named('Deployment', 'codegod-orchestrator');
    const c: Obj = d.spec.template.spec.containers[0];
    expect(c.args).toEqual(['codegod', 'orchestrator']);
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value]));
    expect(env.CODEGOD_HTTP_HOST).toBe('0.0.0.0');
    // Its own short grace: it hands its goals back and exits within 10 s.
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(15);
    expect(env.CODEGOD_HTTP_PORT).toBe('8080');
    const svc = named('Service', 'codegod-orchestrator');
    expect(svc.spec.selector).toEqual(d.spec.template.metadata.labels);
    expect(svc.spec.ports[0].port).toBe(8080);
  });

  it('the workspace claim is ReadWriteMany', () => {
    expect(named('PersistentVolumeClaim', 'codegod-workspace').spec.accessModes).toEqual(['ReadWriteMany']);
  });
});

describe('redis', () => {
  it('is a StatefulSet with a PVC, AOF everysec and noeviction', () => {
    const sts = named('StatefulSet', 'codegod-redis');
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    const conf = named('ConfigMap', 'codegod-redis-config').data['redis.conf'] as string;
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^appendfsync everysec$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    expect(conf).toMatch(/^dir \/data$/m);
    const mounts = (sts.spec.template.spec.containers[0].volumeMounts as Obj[]).map((m) => m.mountPath);
    expect(mounts).toContain('/data');
  });

  it('is the host in REDIS_URL', () => {
    const svc = named('Service', 'codegod-redis');
    expect(config.REDIS_URL).toBe(`redis://${svc.metadata.name}:6379/0`);
    expect(named('StatefulSet', 'codegod-redis').spec.serviceName).toBe(svc.metadata.name);
  });
});

describe('KEDA', () => {
  const scaledObjects = ofKind('ScaledObject');

  it.each(ROLES.map((r) => [r]))('%s scales its Deployment on its own queue (waiting + active)', (role) => {
    const so = scaledObjects.find((s) => s.spec.scaleTargetRef.name === `codegod-${role}`);
    expect(so, `no ScaledObject targets codegod-${role}`).toBeTruthy();
    expect(so?.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    expect(roleDeployment(role)).toBeTruthy();

    const triggers = so?.spec.triggers as Obj[];
    expect(triggers.map((t) => t.name).sort()).toEqual(['active', 'prioritized', 'wait']);
    for (const t of triggers) {
      expect(t.type).toBe('redis');
      expect(t.metadata.listName).toBe(`codegod:q:${role}:${t.name}`);
      expect(t.metadata.address).toBe('codegod-redis.codegod.svc.cluster.local:6379');
      expect(t.authenticationRef.name).toBe('codegod-redis');
    }
    const modifiers = so?.spec.advanced.scalingModifiers as Obj;
    expect(modifiers.formula.replace(/\s+/g, '')).toBe('wait+prioritized+active');
    expect(modifiers.metricType).toBe('AverageValue');
    expect(modifiers.target).toBe(config.WORKER_CONCURRENCY);
    expect(so?.spec.minReplicaCount).toBeGreaterThanOrEqual(0);
    expect(so?.spec.maxReplicaCount).toBeGreaterThan(so?.spec.minReplicaCount);
  });

  it('has exactly one ScaledObject per role', () => {
    expect(scaledObjects.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(ROLES.map((r) => `codegod-${r}`).sort());
  });

  it('authenticates to Redis with the Redis secret', () => {
    const auth = named('TriggerAuthentication', 'codegod-redis');
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'password', name: 'codegod-redis', key: 'password' }]);
  });
});

describe('network policies', () => {
  const policies = ofKind('NetworkPolicy');
  const selects = (p: Obj, component: string): boolean => {
    const sel = p.spec.podSelector as Obj;
    if (Object.keys(sel).length === 0) return true;
    if (sel.matchLabels?.['app.kubernetes.io/component'] === component) return true;
    return (sel.matchExpressions as Obj[] | undefined)?.some((e) => e.operator === 'In' && e.values.includes(component)) ?? false;
  };

  it('deny everything by default', () => {
    const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress && !p.spec.egress);
    expect(deny?.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
  });

  it('let agents and the orchestrator reach Redis and the LLM', () => {
    for (const component of ['agent', 'orchestrator']) {
      const egress = policies.filter((p) => selects(p, component) && p.spec.egress).flatMap((p) => p.spec.egress as Obj[]);
      const ports = egress.flatMap((rule) => (rule.ports as Obj[]).map((port) => port.port));
      expect(ports, component).toEqual(expect.arrayContaining([6379, 8000, 53]));
    }
    const redisIngress = policies.find((p) => selects(p, 'redis') && p.spec.ingress);
    const from = (redisIngress?.spec.ingress[0].from as Obj[]).find((f) => f.podSelector);
    expect(from?.podSelector.matchExpressions[0].values.sort()).toEqual(['agent', 'orchestrator']);
  });

  it('give only agents (and the model server) a route out, minus private and metadata ranges', () => {
    const internet = policies.filter((p) => (p.spec.egress as Obj[] | undefined)?.some((r) => r.to?.some((t: Obj) => t.ipBlock)));
    const components = internet.map((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/component']).sort();
    expect(components).toEqual(['agent', 'llm']);
    for (const p of internet) {
      const block = p.spec.egress[0].to[0].ipBlock as Obj;
      expect(block.except).toEqual(expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']));
    }
  });
});
