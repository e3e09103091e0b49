import { readFileSync } from 'node:fs';
import http from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { ReloadOutcome } from '../runtime/reloader.js';
import type { RuntimeSnapshot } from '../runtime/runtime-snapshot.js';
import { bearerMatches } from './admin-auth.js';
import { configView, reloadResultView, routesView, scalingView, servicesView, statsView } from './admin-views.js';
import type { ScalingView } from '../scaling/scaling-control.js';
import type { FleetView } from '../fleet/fleet-scaling.js';
import type { GatewayMetrics } from './metrics.js';
import type { Exposition } from './request-series.js';
import type { TrafficAndHealth } from './traffic-and-health.js';

export interface AdminState {
  /** Config loaded and warm, the data listener bound, and not draining. */
  ready(): boolean;
  draining(): boolean;
  generation(): number;
}

export interface AdminApi extends AdminState {
  current(): RuntimeSnapshot | undefined;
  readonly metrics: GatewayMetrics;
  /** The scaling loop's decisions (with --workers, the primary's), for /admin/scaling and /admin/stats. */
  readonly scaling: ScalingView;
  /** The fleet this gateway belongs to (`fleet:`), for /admin/fleet; null outside a fleet. */
  readonly fleet?: FleetView | null;
  /** /admin/services and /admin/stats: this gateway's traffic and health, or with --workers the whole cluster's. */
  trafficAndHealth(): Promise<TrafficAndHealth>;
  /** GET /metrics: this gateway's, or with --workers the whole cluster's (cluster-metrics.ts). */
  exposeMetrics(): Promise<Exposition>;
  /** The same as SIGHUP. */
  reload(): Promise<ReloadOutcome>;
  /** The bearer token everything but /healthz and /readyz requires; null when none is configured (loopback only). */
  token(): string | null;
  readonly version: string;
  readonly startedAt: number;
  readonly log: Logger;
  readonly now?: () => number;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;
interface Endpoint { readonly open?: boolean; readonly methods: Readonly<Record<string, Handler>> }

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
// The dashboard runs only its own files: no inline script or style, no third-party origin, no framing.
const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function json(res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, ...extra, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: http.ServerResponse, status: number, error: string, message: string, extra: Record<string, string> = {}): void {
  json(res, status, { error, message }, extra);
}

interface Asset { readonly type: string; readonly body: Buffer }

/** Where the page carries its first state: a JSON data block, which no browser runs as script (CSP has no say). */
const INITIAL_STATE = '<script id="initial-state" type="application/json">';

/** The dashboard's files, read once at start (the build copies them next to this module). */
function loadDashboard(): Map<string, Asset> | Error {
  const dir = new URL('./dashboard/', import.meta.url);
  try {
    return new Map<string, Asset>([
      ['/dashboard', { type: 'text/html; charset=utf-8', body: readFileSync(new URL('index.html', dir)) }],
      ['/dashboard/app.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('app.js', dir)) }],
      ['/dashboard/style.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('style.css', dir)) }],
    ]);
  } catch (err) {
    return err as Error;
  }
}

/** The page with `state` in its data block; `<` escaped, so no value can close the block or open a comment. */
function withInitialState(page: Buffer, state: unknown): Buffer {
  if (state === null) return page;
  const html = page.toString('utf8');
  const at = html.indexOf(INITIAL_STATE) + INITIAL_STATE.length;
  if (at < INITIAL_STATE.length) return page;
  return Buffer.from(`${html.slice(0, at)}${JSON.stringify(state).replace(/</g, '\\u003c')}${html.slice(at)}`);
}

/** A Host a browser only sends for this machine: DNS rebinding cannot reach an unauthenticated admin listener. */
function isLocalHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || isIP(name) !== 0;
}

/** Whether a browser sent this state-changing request from another site (no CORS preflight protects a plain POST). */
function crossSite(req: http.IncomingMessage): boolean {
  if (req.headers['sec-fetch-site'] === 'cross-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

/**
 * The admin listener: separate from the data plane, so no data-plane request can ever reach it. /healthz and
 * /readyz are open (probes carry no token); everything else needs the bearer token when one is configured.
 */
export function createAdminServer(api: AdminApi): http.Server {
  const now = api.now ?? Date.now;
  const dashboard = loadDashboard();
  const withSnapshot = (view: (s: RuntimeSnapshot) => unknown): Handler => (_req, res) => {
    const s = api.current();
    if (!s) return fail(res, 503, 'not_ready', 'no config is loaded');
    json(res, 200, view(s));
  };
  // The views of what each process counts for itself: with --workers, summed over the cluster first (traffic-and-health.ts).
  const withTrafficAndHealth = (view: (s: RuntimeSnapshot, live: TrafficAndHealth) => unknown): Handler => async (_req, res) => {
    if (!api.current()) return fail(res, 503, 'not_ready', 'no config is loaded');   // nothing to gather for
    const live = await api.trafficAndHealth();
    const s = api.current();
    if (!s) return fail(res, 503, 'not_ready', 'no config is loaded');
    json(res, 200, view(s, live));
  };
  const readyView = () => {
    const ready = api.ready();
    return { status: ready ? 'ready' : api.draining() ? 'draining' : 'not-ready', generation: api.generation() };
  };
  /**
   * What the dashboard's first poll would fetch, for the page to draw before any request of its own. Only without
   * adminAuth: the page itself is open, and its data must not be.
   */
  const initialState = async (): Promise<unknown> => {
    if (api.token() !== null || !api.current()) return null;
    const live = await api.trafficAndHealth();
    const s = api.current();
    if (!s) return null;
    return {
      config: configView(s, api.metrics, api), routes: routesView(s), services: servicesView(s, live),
      stats: statsView(s, api.metrics, api.scaling, live, { nowMs: now(), startedAt: api.startedAt }), ready: readyView(),
    };
  };
  const asset = (path: string): Handler => async (_req, res) => {
    if (dashboard instanceof Error) return fail(res, 500, 'dashboard_missing', `the dashboard files are missing (${dashboard.message}); npm run build copies them`);
    const file = dashboard.get(path) as Asset;
    const body = path === '/dashboard' ? withInitialState(file.body, await initialState()) : file.body;
    res.writeHead(200, {
      ...SECURITY_HEADERS, 'cache-control': 'no-cache', 'content-type': file.type, 'content-length': body.length,
      'content-security-policy': DASHBOARD_CSP,
    });
    res.end(body);
  };

  const endpoints = new Map<string, Endpoint>([
    ['/healthz', { open: true, methods: { GET: (_req, res) => json(res, 200, { status: 'ok' }) } }],
    ['/readyz', {
      open: true,
      methods: {
        GET: (_req, res) => {
          const view = readyView();
          json(res, view.status === 'ready' ? 200 : 503, view);
        },
      },
    }],
    ['/metrics', {
      methods: {
        GET: async (_req, res) => {
          const { contentType, chunks } = await api.exposeMetrics();
          res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': contentType });
          // Chunk by chunk with backpressure: with 10 000 routes the text is 15 MB (request-series.ts says why).
          for await (const chunk of chunks) {
            if (res.destroyed) return;
            if (!res.write(chunk)) await new Promise((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
          }
          res.end();
        },
      },
    }],
    ['/admin/config', { methods: { GET: withSnapshot((s) => configView(s, api.metrics, api)) } }],
    ['/admin/routes', { methods: { GET: withSnapshot(routesView) } }],
    ['/admin/services', { methods: { GET: withTrafficAndHealth(servicesView) } }],
    ['/admin/scaling', { methods: { GET: (_req, res) => json(res, 200, scalingView(api.metrics, api.scaling)) } }],
    ['/admin/fleet', {
      methods: {
        GET: (_req, res) => (api.fleet ? json(res, 200, api.fleet.fleetStatus()) : fail(res, 404, 'not_in_a_fleet', 'this gateway has no fleet: block')),
      },
    }],
    ['/admin/stats', { methods: { GET: withTrafficAndHealth((s, live) => statsView(s, api.metrics, api.scaling, live, { nowMs: now(), startedAt: api.startedAt })) } }],
    ['/admin/reload', {
      methods: {
        POST: async (req, res) => {
          req.resume();   // a body, if any, means nothing: the reload reads the file, like SIGHUP
          api.log.info({ event: 'admin-reload', peer: req.socket.remoteAddress }, 'reload requested through the admin API');
          const { status, body } = reloadResultView(await api.reload());
          json(res, status, body);
        },
      },
    }],
    ['/', { open: true, methods: { GET: (_req, res) => { res.writeHead(302, { ...SECURITY_HEADERS, location: '/dashboard' }); res.end(); } } }],
    ['/dashboard', { open: true, methods: { GET: asset('/dashboard') } }],
    ['/dashboard/app.js', { open: true, methods: { GET: asset('/dashboard/app.js') } }],
    ['/dashboard/style.css', { open: true, methods: { GET: asset('/dashboard/style.css') } }],
  ]);

  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const endpoint = endpoints.get(path);
    if (!endpoint) return fail(res, 404, 'not_found', `no admin endpoint ${path.slice(0, 100)}`);
    const method = req.method === 'HEAD' ? 'GET' : (req.method as string);
    const handler = endpoint.methods[method];
    if (!handler) return fail(res, 405, 'method_not_allowed', `use ${Object.keys(endpoint.methods).join(', ')}`, { allow: Object.keys(endpoint.methods).join(', ') });

    const token = api.token();
    if (!endpoint.open) {
      if (token !== null && !bearerMatches(req.headers.authorization, token)) {
        return fail(res, 401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <token>)', { 'www-authenticate': 'Bearer realm="gantry-admin"' });
      }
      if (token === null && !isLocalHostHeader(req.headers.host)) {
        return fail(res, 403, 'forbidden', 'without adminAuth the admin API answers only requests addressed to localhost or an IP address');
      }
    }
    if (method !== 'GET' && crossSite(req)) return fail(res, 403, 'forbidden', 'cross-site requests are refused');

    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        api.log.error({ err, event: 'admin-error', path }, 'admin request failed');
        if (!res.headersSent) fail(res, 500, 'internal', (err as Error)?.message ?? 'internal error');
        else res.destroy();
      });
  });
}
