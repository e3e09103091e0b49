/**
 * Anchor: express 5 with http-proxy-middleware 3 in front of the upstream, given the same keep-alive agent as the
 * bare http-proxy anchor (without one, http-proxy sends `Connection: close` and opens a connection per request,
 * which would measure connection set-up rather than the framework).
 *
 *   node dist/bench/anchors/express-http-proxy-middleware.js http://127.0.0.1:UPSTREAM_PORT
 */
import express from 'express';
import http from 'node:http';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { serveOnLoopback } from '../serve-on-loopback.js';

const app = express();
app.use(createProxyMiddleware({ target: process.argv[2], agent: new http.Agent({ keepAlive: true }) }));
serveOnLoopback(http.createServer(app));
