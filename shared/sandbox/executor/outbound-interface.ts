import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

/** An IPv4 address of /proc/net/route (little-endian hex) as a number. */
function routeAddress(hex: string): number {
  const n = Number.parseInt(hex, 16);
  return (((n & 0xff) << 24) | ((n >>> 8 & 0xff) << 16) | ((n >>> 16 & 0xff) << 8) | (n >>> 24 & 0xff)) >>> 0;
}

function dotted(ip: string): number {
  return ip.split('.').reduce((n, octet) => ((n << 8) | Number(octet)) >>> 0, 0);
}

/**
 * The interface the kernel's main table sends `ip` through (longest prefix), from the text of
 * /proc/net/route; with no address, the default route's. Null when no route matches.
 */
export function routeInterface(routes: string, ip?: string): string | null {
  const target = ip === undefined ? undefined : dotted(ip);
  let best: { iface: string; bits: number } | null = null;
  for (const line of routes.split('\n').slice(1)) {
    const [iface, destination, , flags, , , , mask] = line.trim().split(/\s+/);
    if (iface === undefined || destination === undefined || mask === undefined || flags === undefined) continue;
    // RTF_UP
    if ((Number.parseInt(flags, 16) & 1) === 0) continue;
    const m = routeAddress(mask);
    const bits = m.toString(2).replace(/0/g, '').length;
    if (target === undefined ? bits !== 0 : ((target & m) >>> 0) !== routeAddress(destination)) continue;
    if (best === null || bits > best.bits) best = { iface, bits };
  }
  return best?.iface ?? null;
}

/**
 * The interface a task's connections may leave through: the one that reaches `host` (a name
 * or an IPv4 address), or the default route's. Throws a readable error when there is none.
 */
export async function outboundInterface(host: string | undefined, routeFile = '/proc/net/route'): Promise<string> {
  const routes = readFileSync(routeFile, 'utf8');
  if (host === undefined) {
    const iface = routeInterface(routes);
    if (iface === null) throw new Error('no default route: set CODEGOD_SANDBOX_OUTBOUND to a host whose interface commands may use, or CODEGOD_SANDBOX_NETWORK=off');
    return iface;
  }
  let ip = host;
  if (!isIPv4(host)) {
    try {
      ip = (await lookup(host, { family: 4 })).address;
    } catch {
      throw new Error(`CODEGOD_SANDBOX_OUTBOUND=${host} does not resolve to an IPv4 address`);
    }
  }
  const iface = routeInterface(routes, ip);
  if (iface === null) throw new Error(`no route to CODEGOD_SANDBOX_OUTBOUND=${host} (${ip})`);
  return iface;
}
