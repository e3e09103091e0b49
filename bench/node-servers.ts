/**
 * The Node servers the benchmarks start as processes: the upstream every system stands in front of, and the Node
 * peers Gantry is compared with. Each listens on 127.0.0.1 port 0, prints one JSON line {"port":N} on stdout, and
 * exits on SIGTERM or SIGINT after closing its connections (within 1 s).
 *
 *   node dist/bench/node-servers.js upstream [BODY_BYTES=100]
 *   node dist/bench/node-servers.js upstream-tls BODY_BYTES CERT_FILE KEY_FILE   (direct in the TLS scenarios)
 *   node dist/bench/node-servers.js PEER http://127.0.0.1:UPSTREAM_PORT     (PEER: a key of `peers` below)
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

/**
 * The upstream: every request gets 200 and the same BODY_BYTES-byte body, with Content-Length, over keep-alive. A
 * request with a body is read to the end first and answered with `x-received-bytes`, so the runner can check that a
 * proxy passed the body on.
 */
function upstream(bodyBytes: number): http.Server {
  const server = http.createServer(answer(bodyBytes));
  // Longer than any proxy here keeps an idle upstream connection (nginx: keepalive_timeout 30s in its config; Node
  // agents follow the Keep-Alive: timeout=65 header this sends, minus 1 s). Otherwise an upstream closing an idle
  // connection just as a proxy reuses it would cost that proxy an error now and then (Node's default is 5 s).
  server.keepAliveTimeout = 65_000;
  return server;
}

/**
 * The same answers over TLS, HTTP/2 and HTTP/1.1 (ALPN): direct in the TLS scenarios, what a Node server that
 * terminates TLS itself and forwards nothing can do.
 */
function upstreamTls(bodyBytes: number, certFile: string, keyFile: string): http2.Http2SecureServer {
  return http2.createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), allowHTTP1: true }, answer(bodyBytes) as never);
}

function answer(bodyBytes: number): http.RequestListener {
  if (!Number.isInteger(bodyBytes) || bodyBytes < 0) throw new Error(`body size must be a non-negative integer, got ${bodyBytes}`);
  const body = Buffer.alloc(bodyBytes, 'x');
  const headers = { 'content-type': 'text/plain', 'content-length': String(bodyBytes) };
  return (req, res) => {
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
      // No body (every GET here): answer at once, so the GET numbers do not pay for the POST scenario's bookkeeping.
      req.resume();
      res.writeHead(200, headers);
      res.end(body);
      return;
    }
    let received = 0;
    req.on('data', (chunk: Buffer) => { received += chunk.length; });
    req.on('end', () => {
      res.writeHead(200, { ...headers, 'x-received-bytes': String(received) });
      res.end(body);
    });
  };
}

/** Response headers undici refuses in a request, or Node frames again in a response. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer']);

/**
 * The Node peers, each as a user of the package would write it, with no routing, logging or resilience beyond the
 * package's defaults. Imported on demand, so a missing package fails only its own peer.
 */
const peers: Record<string, (target: string) => Promise<http.Server>> = {
  // The ~15 lines anyone would write with http-proxy and a keep-alive agent.
  async 'bare-http-proxy'(target) {
    const { default: httpProxy } = await import('http-proxy');
    const proxy = httpProxy.createProxyServer({ target, agent: new http.Agent({ keepAlive: true }) });
    proxy.on('error', (_err, _req, res) => {
      if ('writeHead' in res && !res.headersSent) res.writeHead(502);
      res.end();
    });
    return http.createServer((req, res) => proxy.web(req, res));
  },

  // The same bare proxy on undici's Pool.dispatch, the client Gantry forwards with: what the upstream client alone
  // costs, and the reference of the instructions target. It drops hop-by-hop headers and relays the body with
  // backpressure; nothing else.
  async 'bare-undici'(target) {
    const { Pool } = await import('undici');
    const pool = new Pool(target, { connections: 256 });
    return http.createServer((req, res) => {
      const headers: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (!HOP.has(req.rawHeaders[i]!.toLowerCase())) headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      }
      const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
      pool.dispatch({ method: req.method as 'GET', path: req.url!, headers, body: bodyless ? null : req }, {
        onRequestStart() {},
        onResponseStart(controller, status) {
          const raw = controller.rawHeaders as Buffer[];
          const out: string[] = [];
          for (let i = 0; i < raw.length; i += 2) {
            const name = raw[i]!.toString('latin1');
            if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1]!.toString('latin1'));
          }
          res.writeHead(status, out);
        },
        onResponseData(controller, chunk) {
          if (res.write(chunk)) return;
          controller.pause();
          res.once('drain', () => controller.resume());
        },
        onResponseEnd() { res.end(); },
        onResponseError() {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        },
      });
    });
  },

  // fast-gateway 5 (restana + fast-proxy-lite, keep-alive by default), one catch-all route as its README shows it:
  // prefix '' + pathRegex '/*' forwards every path unchanged.
  async 'fast-gateway'(target) {
    const { default: gateway } = await import('fast-gateway');
    return gateway({ routes: [{ prefix: '', pathRegex: '/*', target }] }).getServer() as http.Server;
  },

  // express 5 + http-proxy-middleware 4, given the bare proxy's keep-alive agent: without one, http-proxy sends
  // `Connection: close`, and the run would measure connection set-up rather than the framework.
  async express(target) {
    const [{ default: express }, { createProxyMiddleware }] = await Promise.all([import('express'), import('http-proxy-middleware')]);
    const app = express();
    app.use(createProxyMiddleware({ target, agent: new http.Agent({ keepAlive: true }) }));
    return http.createServer(app);
  },
};

function serveOnLoopback(server: http.Server | http2.Http2SecureServer): void {
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    if ('closeAllConnections' in server) server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** An OTLP/HTTP collector stand-in for bench:instructions' traced systems: takes every export, keeps nothing. */
function otlpSink(): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
}

const [which, arg] = process.argv.slice(2);
if (which === 'otlp-sink') {
  serveOnLoopback(otlpSink());
} else if (which === 'upstream') {
  serveOnLoopback(upstream(Number(arg ?? 100)));
} else if (which === 'upstream-tls') {
  const [cert, key] = process.argv.slice(4);
  if (!cert || !key) throw new Error('usage: node-servers.js upstream-tls BODY_BYTES CERT_FILE KEY_FILE');
  serveOnLoopback(upstreamTls(Number(arg), cert, key));
} else {
  const peer = which === undefined ? undefined : peers[which];
  if (!peer || !arg) throw new Error(`usage: node-servers.js upstream [BODY_BYTES] | node-servers.js PEER UPSTREAM_URL; peers: ${Object.keys(peers).join(', ')}`);
  serveOnLoopback(await peer(arg));
}
