import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { DnsRelay, loopbackResolver, sandboxResolvConf } from '../../shared/sandbox/executor/dns-relay.js';
import { routeInterface } from '../../shared/sandbox/executor/outbound-interface.js';

// /proc/net/route of an agent container on three networks (addresses little-endian hex):
// default via 172.20.0.1 on eth1 (egress), 172.19.0.0/16 on eth0, 172.20.0.0/16 on eth1,
// 172.21.0.0/24 on eth2, and a down route that must be ignored.
const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t010014AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth1\t000014AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth2\t000015AC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth3\t000115AC\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

describe('the interface a task’s connections leave through', () => {
  it('is the default route’s without a host', () => {
    expect(routeInterface(ROUTES)).toBe('eth1');
  });

  it('is the longest matching prefix’s for an address; the default route for one no network holds', () => {
    expect(routeInterface(ROUTES, '172.19.4.2')).toBe('eth0');
    expect(routeInterface(ROUTES, '172.21.0.9')).toBe('eth2');
    expect(routeInterface(ROUTES, '172.21.1.9')).toBe('eth1');
    expect(routeInterface(ROUTES, '198.51.100.7')).toBe('eth1');
  });

  it('is none when no route is up', () => {
    expect(routeInterface(ROUTES.split('\n').filter((l) => !l.startsWith('eth1')).join('\n'), '198.51.100.7')).toBeNull();
    expect(routeInterface(ROUTES.split('\n')[0]!)).toBeNull();
  });
});

describe('DNS for a task’s commands', () => {
  it('needs a relay only when the first IPv4 nameserver is on loopback', () => {
    expect(loopbackResolver('nameserver 127.0.0.11\noptions ndots:0\n')).toBe('127.0.0.11');
    expect(loopbackResolver('# generated\nnameserver ::1\nnameserver 127.0.0.53\n')).toBe('127.0.0.53');
    expect(loopbackResolver('nameserver 10.0.0.2\nnameserver 127.0.0.1\n')).toBeNull();
    expect(loopbackResolver('')).toBeNull();
  });

  it('gives the sandbox the relay as its nameserver, keeping search and options', () => {
    expect(sandboxResolvConf('nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0\n')).toBe('nameserver 127.0.0.1\nsearch corp.example\noptions ndots:0\n');
  });

  it('relays each query to the resolver and each answer back to whoever asked', async () => {
    // A resolver on loopback (127.0.0.1:53 needs privileges, so the relay is pointed at a port).
    const resolver = createSocket('udp4');
    await new Promise<void>((r) => resolver.bind(0, '127.0.0.1', r));
    resolver.on('message', (query, from) => resolver.send(Buffer.concat([Buffer.from('answer:'), query]), from.port, from.address));
    const relay = await DnsRelay.start('127.0.0.1', resolver.address().port);
    const ask = async (text: string) => {
      const client = createSocket('udp4');
      const answer = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
      client.send(text, relay.port, '127.0.0.1');
      const got = await answer;
      client.close();
      return got;
    };
    try {
      expect(await Promise.all([ask('one'), ask('two')])).toEqual(['answer:one', 'answer:two']);
    } finally {
      relay.close();
      resolver.close();
    }
  });
});
