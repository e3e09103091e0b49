/**
 * Anchor: fast-gateway (restana + fast-proxy-lite, keep-alive agent by default) with one catch-all route to the
 * upstream, every other option at its default, as its README shows it.
 *
 *   node dist/bench/anchors/fast-gateway.js http://127.0.0.1:UPSTREAM_PORT
 */
import gateway from 'fast-gateway';
import type { Server } from 'node:http';
import { serveOnLoopback } from '../serve-on-loopback.js';

const target = process.argv[2];
if (!target) throw new Error('usage: fast-gateway.js TARGET_URL');
// prefix '' + pathRegex '/*': every path, forwarded unchanged (the prefix that fast-gateway strips is empty).
const app = gateway({ routes: [{ prefix: '', pathRegex: '/*', target }] });
serveOnLoopback(app.getServer() as Server);
