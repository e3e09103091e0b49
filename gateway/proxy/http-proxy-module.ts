import { createRequire } from 'node:module';
import util from 'node:util';
import type HttpProxy from 'http-proxy';

type Extend = (target: object, source: unknown) => object;

/** What Node's util._extend does: copies the source's own enumerable properties onto the target. */
function extend(target: object, source: unknown): object {
  if (source === null || typeof source !== 'object') return target;
  for (const key of Object.keys(source)) (target as Record<string, unknown>)[key] = (source as Record<string, unknown>)[key];
  return target;
}

/**
 * http-proxy 1.18.1, loaded with `extend` above in place of Node's util._extend. Why: http-proxy takes util._extend
 * when it is loaded and calls it for every WebSocket tunnel, and from Node 22 on that call prints DEP0060 to stderr
 * (http-proxy issue 1715; the fixes were never merged). A Node that removes the API would break every tunnel.
 * Node's own util._extend is put back at once; nothing else sees the swap.
 */
function loadHttpProxy(): typeof HttpProxy {
  const nodeUtil = util as unknown as { _extend?: Extend };
  const nodes = nodeUtil._extend;
  nodeUtil._extend = extend;
  try {
    return createRequire(import.meta.url)('http-proxy') as typeof HttpProxy;
  } finally {
    if (nodes === undefined) delete nodeUtil._extend;
    else nodeUtil._extend = nodes;
  }
}

export const httpProxy = loadHttpProxy();
