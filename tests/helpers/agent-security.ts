import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './processes.js';

type Obj = Record<string, any>;

/** `docker run` flags of the role agents' security settings, from the compose file. */
export function roleAgentSecurity(scratch: string): string[] {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.agents.yml'), 'utf8'), { merge: true }) as Obj;
  const svc = compose.services['backend-agent'] as Obj;
  const resolve = (v: string) => v.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');
  const flags = ['--user', '10001:10001', '--read-only', '--tmpfs', '/tmp:rw,nosuid,nodev,size=256m,mode=1777'];
  for (const cap of svc.cap_drop as string[]) flags.push('--cap-drop', cap);
  for (const opt of (svc.security_opt as string[]).map(resolve)) {
    flags.push('--security-opt', opt.startsWith('seccomp=') ? `seccomp=${join(ROOT, opt.slice('seccomp='.length))}` : opt);
  }
  for (const device of (svc.devices as string[]).map(resolve)) {
    const [, target] = device.split(':');
    flags.push('--device', `${tunDevice(scratch)}:${target}`);
  }
  return flags;
}

/**
 * pasta opens /dev/net/tun as the non-root agent: the node must be 0666 (udev's default on
 * most distributions). Where the host keeps it 0600, a 0666 node of the same device stands in,
 * as CODEGOD_TUN_DEVICE does in the compose file.
 */
function tunDevice(scratch: string): string {
  if ((statSync('/dev/net/tun').mode & 0o666) === 0o666) return '/dev/net/tun';
  const node = join(scratch, 'tun');
  try {
    statSync(node);
  } catch {
    const r = spawnSync('mknod', ['-m', '0666', node, 'c', '10', '200'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mknod ${node}: ${r.stderr}`);
  }
  return node;
}
