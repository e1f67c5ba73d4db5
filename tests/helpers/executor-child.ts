/**
 * A stand-in worker for the executor's fault tests: opens a task's sandbox under the isolation
 * named by its arguments, starts a command that leaves a setsid daemon and keeps running, prints
 * `ready` and waits to be killed. Arguments: workspace root, build id, daemon marker.
 */
import type { AuditSink } from '../../shared/telemetry/audit.js';
import { detectIsolation, } from '../../shared/sandbox/executor/isolation.js';
import type { IsolationOptions } from '../../shared/options.js';
import { Sandbox } from '../../shared/sandbox/sandbox.js';

const [root, buildId, marker] = process.argv.slice(2) as [string, string, string];
const settings: IsolationOptions = { mode: 'namespaces', network: 'on', pids: 256, memoryMb: 1024, cpuSeconds: 60, bwrap: 'bwrap', pasta: 'pasta', hide: [] };
const sink: AuditSink = { record: async () => undefined };
const sandbox = await Sandbox.forBuild({ root, buildId, sink, isolation: await detectIsolation(settings) });
const script = `setsid sh -c 'sleep ${marker} & exit 0'; sleep ${marker}`;
void sandbox.run({ command: `echo ${Buffer.from(script).toString('base64')} | base64 -d | sh`, shell: true, timeoutMs: 600_000 });
await new Promise((r) => setTimeout(r, 1_500));
process.stdout.write('ready\n');
setInterval(() => undefined, 60_000);
