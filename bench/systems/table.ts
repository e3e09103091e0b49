import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TlsClient } from '../scenarios/scenario.js';
import { direct, gantrySystem, nativeSystem, nodePeer, packageVersion as v, type System } from './system.js';

const gantry = gantrySystem('gantry', 'Gantry, 1 process, on the proxy CPU like every other proxy', true);

/**
 * The multi-worker pair. 2 cores shared with the upstream and the load generator leave a second worker little room:
 * both run unpinned (CPUs 0 and 1, where the upstream and the load generator are pinned to CPU 1), so compare
 * gantry-Nw with gantry-unpinned (same placement, 1 process), not with gantry.
 */
const gantryUnpinned = gantrySystem('gantry-unpinned', 'Gantry, 1 process, unpinned (every CPU): the baseline for gantry-Nw', false);
const gantryWorkers = (workers: number) => gantrySystem(`gantry-${workers}w`, `Gantry with --workers ${workers}, unpinned (every CPU): compare with gantry-unpinned`, false, workers);

/** `http2 on` is nginx 1.25.1's; before it, `http2` is a parameter of `listen` (deprecated since). */
function nginxHttp2(version: string): { listen: string; directive: string } {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  const on = major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));
  return on ? { listen: ' ssl', directive: '\n    http2 on;' } : { listen: ' ssl http2', directive: '' };
}

/**
 * In a TLS scenario: nginx's own count of the requests made on a resumed TLS session (its access log's last field,
 * $ssl_session_reused), which checks the client: none in tls-handshakes, nearly all in tls-resumed.
 */
async function nginxSessionNotes(dir: string, client: TlsClient | undefined): Promise<{ notes: string[]; warnings: string[] }> {
  if (client === undefined) return { notes: [], warnings: [] };
  let lines = 0;
  let resumed = 0;
  const rl = createInterface({ input: createReadStream(join(dir, 'access.log'), { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    lines++;
    if (line.endsWith(' r')) resumed++;
  }
  const n = (x: number) => x.toLocaleString('en-US');
  const note = `nginx access log: ${n(resumed)} of ${n(lines)} requests on a resumed TLS session`;
  const warnings: string[] = [];
  if (client === 'new-sessions' && resumed > 0) warnings.push(`${note}: not every handshake was a full one`);
  if (client === 'resumed-sessions' && resumed < 0.9 * lines) warnings.push(`${note}: the client did not resume most of its sessions`);
  return { notes: [note], warnings };
}

/**
 * nginx as its docs tune a reverse proxy for upstream keep-alive: 1 worker process, an `upstream` block with
 * `keepalive`, HTTP/1.1 and an empty Connection header to the upstream. Everything it writes stays in its own
 * directory. The keep-alive request caps are lifted on both sides (nginx closes a connection after 1 000 requests by
 * default; none of the other proxies does; on HTTP/2 keepalive_requests caps the streams of a connection). In a TLS
 * scenario it listens with TLS 1.2 and 1.3 (1.22's default has no 1.3), HTTP/2, the run's certificate and a shared
 * session cache, and logs whether each request's session was resumed.
 */
const nginx = nativeSystem({
  name: 'nginx', binary: 'nginx', aptPackage: 'nginx', versionPattern: /nginx\/(\S+)/, tls: true,
  describe: '1 worker, upstream keepalive 1024, proxy_http_version 1.1, Connection ""',
  accessLog: (dir) => `access log on, buffered 64 KiB, to ${join(dir, 'access.log')}`,
  args: (dir, configFile) => ['-p', `${dir}/`, '-c', configFile, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
  logNotes: (dir, ctx) => nginxSessionNotes(dir, ctx.scenario.tls),
  config: (dir, port, ctx, version) => {
    const h2 = nginxHttp2(version);
    const tls = ctx.tls === null ? '' : `${h2.directive}
    ssl_certificate ${ctx.tls.cert};
    ssl_certificate_key ${ctx.tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;`;
    return `# Written by bench/systems/table.ts
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events {
  worker_connections ${Math.max(4096, 4 * ctx.scenario.connections)};
}
http {
  log_format combined_tls '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $ssl_protocol $ssl_session_reused';
  access_log ${join(dir, 'access.log')} ${ctx.tls === null ? 'combined' : 'combined_tls'} buffer=64k flush=1s;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:${ctx.upstreamPort};
    keepalive 1024;
    keepalive_requests 1000000;
    keepalive_timeout 30s;
  }
  server {
    listen 127.0.0.1:${port}${ctx.tls === null ? '' : h2.listen};${tls}
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  },
});

/**
 * HAProxy in HTTP mode with 1 thread, reusing idle upstream connections across client connections
 * (`http-reuse always`), one server. It logs every request (httplog) to stdout, which goes to a file: HAProxy has no
 * file logger of its own, and stdout is its documented alternative to syslog in a container.
 */
const haproxy = nativeSystem({
  name: 'haproxy', binary: 'haproxy', aptPackage: 'haproxy', versionPattern: /HA-?Proxy version (\S+)/, tls: false,
  describe: 'nbthread 1, http-reuse always',
  accessLog: (dir) => `access log on (option httplog), stdout to ${join(dir, 'stdout-stderr.log')}`,
  args: (_dir, configFile) => ['-f', configFile, '-db'],
  config: (_dir, port, ctx) => `# Written by bench/systems/table.ts
global
  nbthread 1
  maxconn ${Math.max(4096, 4 * ctx.scenario.connections)}
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
frontend bench
  bind 127.0.0.1:${port}
  default_backend bench_upstream
backend bench_upstream
  http-reuse always
  server upstream 127.0.0.1:${ctx.upstreamPort}
`,
});

const bareUndici = nodePeer('bare-undici', ['undici'],
  `undici ${v('undici')} Pool.dispatch, the same ~15-line proxy on the client Gantry forwards with (not a default system)`);

/** The systems a plain `npm run bench` runs, in the order of every round. */
const defaultSystems: readonly System[] = [
  direct,
  gantry,
  nginx,
  haproxy,
  nodePeer('bare-http-proxy', ['http-proxy'], `http-proxy ${v('http-proxy')} web() with a keep-alive agent, ~15 lines, no routing or logging`),
  nodePeer('fast-gateway', ['fast-gateway'], `fast-gateway ${v('fast-gateway')}, one catch-all route, defaults (keep-alive agent)`),
  nodePeer('express', ['express', 'http-proxy-middleware'], `express ${v('express')} + http-proxy-middleware ${v('http-proxy-middleware')} with a keep-alive agent`),
];

/** The names --systems takes, for --help and error messages. */
export const systemNames = `${defaultSystems.map((s) => s.name).join(', ')}, bare-undici, gantry-unpinned, gantry-Nw (N workers)`;

function byName(name: string): System {
  const known = [...defaultSystems, bareUndici, gantryUnpinned].find((s) => s.name === name);
  if (known) return known;
  const workers = /^gantry-(\d+)w$/.exec(name);
  if (workers && Number(workers[1]) >= 2) return gantryWorkers(Number(workers[1]));
  throw new Error(`no system "${name}"; there are: ${systemNames}`);
}

/**
 * The systems of this run: `--systems a,b,c` (default: all of defaultSystems), plus, with `--workers N`, the pair
 * gantry-unpinned and gantry-Nw. direct always runs, first: every ratio is taken against it.
 */
export function selectSystems(list: string | undefined, workers: number | undefined): System[] {
  const chosen = list === undefined ? [...defaultSystems] : list.split(',').map((n) => n.trim()).filter(Boolean).map(byName);
  if (workers !== undefined) chosen.push(gantryUnpinned, gantryWorkers(workers));
  const unique = new Map<string, System>([[direct.name, direct]]);
  for (const s of chosen) unique.set(s.name, s);
  return [...unique.values()];
}
