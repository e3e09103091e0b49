import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startAnnouncedServer } from '../targets.js';
import { NO_NOTES, type System } from './system.js';

const require = createRequire(import.meta.url);

/** A Node peer: bench/anchors/FILE.js started with the upstream's URL, on the proxy CPU. No access log. */
function nodeAnchor(name: string, file: string, packages: readonly string[], summary: string): System {
  return {
    name, kind: 'node', summary, pinned: true,
    unavailable() {
      const missing = packages.filter((p) => { try { require.resolve(p); return false; } catch { return true; } });
      return missing.length ? `not installed (${missing.join(', ')}); npm install` : null;
    },
    async start(ctx) {
      const script = fileURLToPath(new URL(`../anchors/${file}.js`, import.meta.url));
      const s = await startAnnouncedServer(ctx.group, name, script, [`http://127.0.0.1:${ctx.upstreamPort}`], ctx.cpu, ctx.maxLifetimeS);
      return {
        child: s.child, port: s.port,
        setup: `\`node dist/bench/anchors/${file}.js\`; no access log`,
        ready: async () => {},
        async finish(group) { await group.stop(s.child); return NO_NOTES; },
      };
    },
  };
}

function version(pkg: string): string {
  try { return (require(`${pkg}/package.json`) as { version: string }).version; } catch { return '?'; }
}

export const bareHttpProxy = nodeAnchor('bare-http-proxy', 'bare-http-proxy', ['http-proxy'],
  `http-proxy ${version('http-proxy')} web() with a keep-alive agent, ~15 lines, no routing or logging`);
export const bareUndici = nodeAnchor('bare-undici', 'bare-undici', ['undici'],
  `undici ${version('undici')} Pool.dispatch, the same ~15-line proxy on the client Gantry forwards with (not a default system)`);
export const fastGateway = nodeAnchor('fast-gateway', 'fast-gateway', ['fast-gateway'],
  `fast-gateway ${version('fast-gateway')}, one catch-all route, defaults (keep-alive agent)`);
export const expressProxy = nodeAnchor('express', 'express-http-proxy-middleware', ['express', 'http-proxy-middleware'],
  `express ${version('express')} + http-proxy-middleware ${version('http-proxy-middleware')} with a keep-alive agent`);
