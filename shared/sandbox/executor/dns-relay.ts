import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

/** A client's upstream socket is closed after this long without a query. */
const IDLE_MS = 30_000;

/**
 * The resolver a task's commands must be given through a relay: the first IPv4 nameserver of
 * resolv.conf when it is a loopback address (Docker's 127.0.0.11, systemd-resolved's
 * 127.0.0.53), which the sandbox's network namespace cannot see. Null when the sandbox can
 * reach the nameserver itself, or there is none.
 */
export function loopbackResolver(resolvConf: string): string | null {
  for (const line of resolvConf.split('\n')) {
    const [key, address] = line.trim().split(/\s+/);
    if (key !== 'nameserver' || address === undefined || !isIPv4(address)) continue;
    return address.startsWith('127.') ? address : null;
  }
  return null;
}

/** resolv.conf for the sandbox: its nameserver is the relay, reached as 127.0.0.1:53; search and options kept. */
export function sandboxResolvConf(resolvConf: string): string {
  const kept = resolvConf.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return ['nameserver 127.0.0.1', ...kept, ''].join('\n');
}

export function readResolvConf(path = '/etc/resolv.conf'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * A UDP relay on this process's loopback to one resolver: pasta maps the sandbox's port 53 on
 * its loopback to it (`-U 53:<port>`), so a task's commands resolve names through the
 * container's resolver while every other port of the host's loopback stays out of reach.
 * Each client address gets its own upstream socket, so answers go back to whoever asked.
 */
export class DnsRelay {
  private readonly upstreams = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();

  private constructor(
    private readonly socket: Socket,
    private readonly resolver: string,
    private readonly resolverPort: number,
    readonly port: number,
  ) {}

  static async start(resolver: string, resolverPort = 53): Promise<DnsRelay> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const relay = new DnsRelay(socket, resolver, resolverPort, socket.address().port);
    socket.on('message', (query, client) => relay.forward(query, client));
    // A refused send (the client gone) must not end the worker.
    socket.on('error', () => undefined);
    return relay;
  }

  private forward(query: Buffer, client: RemoteInfo): void {
    const key = `${client.address}:${client.port}`;
    let upstream = this.upstreams.get(key);
    if (upstream === undefined) {
      const socket = createSocket('udp4');
      socket.on('message', (answer) => this.socket.send(answer, client.port, client.address));
      socket.on('error', () => this.drop(key));
      upstream = { socket, timer: setTimeout(() => this.drop(key), IDLE_MS).unref() };
      this.upstreams.set(key, upstream);
    } else {
      upstream.timer.refresh();
    }
    upstream.socket.send(query, this.resolverPort, this.resolver);
  }

  private drop(key: string): void {
    const upstream = this.upstreams.get(key);
    if (upstream === undefined) return;
    this.upstreams.delete(key);
    clearTimeout(upstream.timer);
    upstream.socket.close();
  }

  close(): void {
    for (const key of [...this.upstreams.keys()]) this.drop(key);
    this.socket.close();
  }
}
