// Host = uri-host [ ":" port ] (RFC 9110 §7.2): a bracketed IP literal or a reg-name, with an optional numeric port.
// Userinfo, paths, lists ("a, b") and empty values are refused.
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?$/;

// Clients send a handful of distinct Host values, so the normalized form is cached (bounded: a flood of random
// hosts only resets the cache).
const cache = new Map<string, string | null>();
const CACHE_LIMIT = 1024;

/** The routing key of a Host value: lower-case, without port or trailing dot. null when the value is invalid. */
export function parseHost(value: string): string | null {
  let host = cache.get(value);
  if (host !== undefined) return host;
  const m = HOST.exec(value);
  if (!m) {
    host = null;
  } else {
    host = (m[1] as string).toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (host === '' || host.startsWith('.')) host = null;
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(value, host);
  return host;
}
