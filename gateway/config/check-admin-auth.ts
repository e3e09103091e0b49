import { isIP } from 'node:net';
import type { AdminAuthConfig, ListenAddress } from './gateway-config.js';
import type { YamlPath } from './yaml-source.js';

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x) and localhost: an admin listener there is reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (h.startsWith('::ffff:')) return isLoopbackHost(h.slice(7));
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * The admin listener answers config, routes and a reload: beyond loopback it needs a bearer token, from exactly one
 * source. Returns problems as [YAML path, message].
 */
export function checkAdminAuth(admin: ListenAddress | null, auth: AdminAuthConfig | null): [YamlPath, string][] {
  const problems: [YamlPath, string][] = [];
  if (auth && (auth.tokenFile === undefined) === (auth.tokenEnv === undefined)) {
    problems.push([['adminAuth'], 'set exactly one of tokenFile and tokenEnv']);
  }
  if (admin && !auth && !isLoopbackHost(admin.host)) {
    problems.push([['admin'], `the admin listener on ${admin.host} is reachable beyond this host: set adminAuth.tokenFile or adminAuth.tokenEnv (a bearer token), or bind it to 127.0.0.1`]);
  }
  return problems;
}
