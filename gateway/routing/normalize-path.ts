/** The request target split once into the path that is matched *and* forwarded, and the untouched query. */
export interface NormalizedTarget {
  readonly path: string;
  /** `?…` or '' */
  readonly search: string;
}

// Anything that may need work: a percent sign, a backslash, a dot-segment candidate or an empty segment.
const NEEDS_WORK = /[%\\]|\/\.|\/\//;
const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39)
    || code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e;
}

/**
 * Normalizes an origin-form target (RFC 3986 §6.2.2): decodes percent-encoded unreserved characters (so `/%61dmin`
 * is `/admin`), upper-cases the remaining escapes, merges `//`, removes dot-segments. Returns null (answer 400) for an
 * encoded `/`, `\` or NUL, an encoded dot-segment, a raw backslash, a fragment or a malformed escape: each is a known
 * way to make the router and the upstream see different paths.
 */
export function normalizeTarget(url: string): NormalizedTarget | null {
  if (url.charCodeAt(0) !== 0x2f || url.includes('#')) return null;
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const search = q < 0 ? '' : url.slice(q);
  if (!NEEDS_WORK.test(rawPath)) return { path: rawPath, search };
  if (rawPath.includes('\\')) return null;

  const out: string[] = [];
  const parts = rawPath.split('/');
  const last = parts.length - 1;
  for (let i = 1; i <= last; i++) {
    const raw = parts[i] as string;
    let seg = raw;
    let encodedDot = false;
    if (raw.includes('%')) {
      seg = '';
      for (let j = 0; j < raw.length; j++) {
        const ch = raw[j] as string;
        if (ch !== '%') { seg += ch; continue; }
        const hex = raw.slice(j + 1, j + 3);
        if (!HEX.test(hex)) return null;
        const code = parseInt(hex, 16);
        if (code === 0x2f || code === 0x5c || code === 0) return null;
        if (isUnreserved(code)) {
          seg += String.fromCharCode(code);
          if (code === 0x2e) encodedDot = true;
        } else {
          seg += `%${hex.toUpperCase()}`;
        }
        j += 2;
      }
    }
    if (seg === '.' || seg === '..') {
      if (encodedDot) return null;
      if (seg === '..') out.pop();
      if (i === last) out.push('');   // "/a/b/.." is the directory "/a/"
      continue;
    }
    if (seg === '' && i !== last) continue;   // merge "//"
    out.push(seg);
  }
  return { path: `/${out.join('/')}`, search };
}
