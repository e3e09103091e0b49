import http from 'node:http';

export interface AdminState {
  /** Config loaded and warm, and not draining. */
  ready(): boolean;
  draining(): boolean;
  generation(): number;
}

type AdminRoute = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** The admin listener: separate from the data plane, so no data-plane request can ever reach it. */
export function createAdminServer(state: AdminState): http.Server {
  const routes = new Map<string, AdminRoute>([
    ['GET /healthz', (_req, res) => json(res, 200, { status: 'ok' })],
    ['GET /readyz', (_req, res) => {
      const ready = state.ready();
      json(res, ready ? 200 : 503, { status: ready ? 'ready' : state.draining() ? 'draining' : 'not-ready', generation: state.generation() });
    }],
  ]);
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = routes.get(`${method} ${path}`);
    if (route) return route(req, res);
    json(res, 404, { error: 'not found' });
  });
}
