import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
const t0 = performance.now();
const args = ['--unshare-all', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink','usr/sbin','/sbin', '--ro-bind', '/etc', '/etc', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--info-fd', '3', '--block-fd', '4', '--', 'sh', '-c', 'ip -br addr 2>/dev/null || cat /proc/net/dev; python3 -c "import urllib.request as u; print(u.urlopen(\'https://registry.npmjs.org/zod\', timeout=5).status)"; python3 -c "import urllib.request as u; print(u.urlopen(\'http://127.0.0.1:18777/\', timeout=2).status)" 2>&1 | tail -1; getent hosts 10.0.2.2; python3 -c "import socket; s=socket.create_connection((\'10.255.255.53\',53),2); print(\'dns tcp ok\')"'];
const b = spawn('bwrap', args, { stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'pipe'], uid: 65534, gid: 65534 });
let info = '';
b.stdio[3].on('data', (d) => {
  info += d;
  const m = /"child-pid": (\d+)/.exec(info);
  if (!m || b._started) return;
  b._started = true;
  const t1 = performance.now();
  const p = spawn('pasta', ['--runas', '0', '--config-net', '-q', '-f', '-T', 'none', '-U', 'none', '--no-map-gw', m[1]], { stdio: ['ignore', 'inherit', 'inherit'] });
  // wait for pasta readiness: poll the namespace for a non-lo interface
  const poll = () => {
    import('node:fs').then(({ readFileSync }) => {
      const dev = readFileSync(`/proc/${m[1]}/net/route`, 'utf8');
      if (dev.split('\n').length > 2) { console.log('pasta ready ms', (performance.now() - t1).toFixed(1), 'total', (performance.now() - t0).toFixed(1)); b.stdio[4].end('x'); }
      else setTimeout(poll, 2);
    });
  };
  poll();
  b.on('exit', (c) => { console.log('bwrap exit', c); p.kill(); });
});
