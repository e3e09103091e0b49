import { join } from 'node:path';
import { nativeSystem } from './native-server.js';

/**
 * nginx as a reverse proxy the way its docs tune one for upstream keep-alive: 1 worker process, an `upstream` block
 * with `keepalive`, HTTP/1.1 and an empty Connection header to the upstream. Everything it writes (pid, error log,
 * access log, temp files) stays in its own directory. Keep-alive request caps are lifted on both sides (nginx closes a
 * connection after 1 000 requests by default; none of the other proxies does).
 */
export const nginx = nativeSystem({
  name: 'nginx',
  binary: 'nginx',
  aptPackage: 'nginx',
  versionArgs: ['-v'],
  versionPattern: /nginx\/(\S+)/,
  describe: '1 worker, upstream keepalive 1024, proxy_http_version 1.1, Connection ""',
  accessLog: (dir) => `access log on, buffered 64 KiB, to ${join(dir, 'access.log')}`,
  args: (dir, configFile) => ['-p', `${dir}/`, '-c', configFile, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
  config: (dir, port, ctx) => `# Written by bench/systems/nginx.ts
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events {
  worker_connections ${Math.max(4096, 4 * ctx.scenario.connections)};
}
http {
  access_log ${join(dir, 'access.log')} combined buffer=64k flush=1s;
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
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
});
