import { join } from 'node:path';
import { nativeSystem } from './native-server.js';

/**
 * HAProxy in HTTP mode with 1 thread, reusing idle upstream connections across client connections
 * (`http-reuse always`), one server. It logs every request (httplog format) to stdout, which goes to a file: HAProxy
 * has no file logger of its own, and stdout is its documented alternative to syslog in a container.
 */
export const haproxy = nativeSystem({
  name: 'haproxy',
  binary: 'haproxy',
  aptPackage: 'haproxy',
  versionArgs: ['-v'],
  versionPattern: /HA-?Proxy version (\S+)/,
  describe: 'nbthread 1, http-reuse always',
  accessLog: (dir) => `access log on (option httplog), stdout to ${join(dir, 'stdout-stderr.log')}`,
  args: (_dir, configFile) => ['-f', configFile, '-db'],
  config: (_dir, port, ctx) => `# Written by bench/systems/haproxy.ts
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
