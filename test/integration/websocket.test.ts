import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { startGateway } from '../helpers/gateway-under-test.js';
import { waitFor } from '../helpers/capture-log.js';
import { openWebSocket, startWebSocketEcho, webSocketHandshake, type HandshakeAnswer } from '../helpers/websocket.js';

function yaml(port: number): string {
  return `listen: 127.0.0.1:0
services:
  ws: { discovery: { type: static, endpoints: ["http://127.0.0.1:${port}"] } }
routes:
  - { match: { path: /ws }, service: ws, websocket: true, stripPrefix: true }
  - { match: { path: /plain }, service: ws }
`;
}

t.test('a WebSocket round trip through the gateway on a route that allows it', async (t) => {
  const up = await startWebSocketEcho();
  const gw = await startGateway(yaml(up.port));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const ws = await openWebSocket(gw.port, '/ws/chat');
  t.match(ws.head, /^HTTP\/1\.1 101 /);
  t.match(ws.head, /sec-websocket-accept: /i);
  t.equal(await ws.send('hello'), 'echo:hello');
  t.equal(await ws.send('again'), 'echo:again');
  t.equal(up.upgrades[0]?.['x-forwarded-for'], '127.0.0.1');
  t.match(String(up.upgrades[0]?.upgrade), /websocket/i);
  ws.socket.destroy();
});

t.test('closing the client side closes the upstream side of the tunnel', async (t) => {
  const up = await startWebSocketEcho();
  const gw = await startGateway(yaml(up.port));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const ws = await openWebSocket(gw.port, '/ws');
  await ws.send('x');
  const upstreamConnections = () => new Promise<number>((r) => up.server.getConnections((_e, n) => r(n)));
  t.equal(await upstreamConnections(), 1, 'the open tunnel holds one upstream connection');
  ws.socket.destroy();
  await t.resolves(waitFor(async () => (await upstreamConnections()) === 0, 2000, 'the upstream connection closed', 20), 'the upstream side closes within 2 s');
});

t.test('a WebSocket upgrade on a route without websocket: true is refused and nothing is tunnelled', async (t) => {
  const up = await startWebSocketEcho();
  const gw = await startGateway(yaml(up.port));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const answer = await webSocketHandshake(gw.port, '/plain', { 'x-request-id': 'ws-plain-1' });
  if ('socket' in answer) answer.socket.destroy();
  t.equal(answer.status, 400);
  t.same([answer.headers['x-request-id'], answer.headers.connection], ['ws-plain-1', 'close'], 'the request id, and close');
  t.same(refusal(answer), { error: 'GW_ERR_UPGRADE_NOT_ALLOWED', request_id: 'ws-plain-1' }, 'the gateway\'s error code and the request id');
  t.equal(up.upgrades.length, 0);
});

/** The error code and request id of the gateway's JSON answer to a handshake; empty for a 101 or a body not JSON. */
function refusal(answer: HandshakeAnswer): { error?: unknown; request_id?: unknown } {
  if (!('body' in answer)) return {};
  try {
    const { error, request_id } = JSON.parse(answer.body) as { error?: unknown; request_id?: unknown };
    return { error, request_id };
  } catch {
    return {};
  }
}

/** A TCP upstream that does `onRequest` with each connection once the handshake's head has arrived. */
async function rawUpstream(onRequest: (s: net.Socket) => void): Promise<{ port: number; closed: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let closed = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => { sockets.delete(s); closed++; });
    let head = '';
    s.on('data', (c: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += c.toString('latin1');
      if (head.includes('\r\n\r\n')) onRequest(s);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port, closed: () => closed,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

t.test('every failed handshake gets an answer with its request id, and frees the endpoint (row 31)', async (t) => {
  const dead = net.createServer();
  dead.listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const resetting = await rawUpstream((s) => s.destroy());
  const garbage = await rawUpstream((s) => s.end('NOT HTTP AT ALL\r\n\r\n'));
  const silent = await rawUpstream(() => {});
  // A refusal with a chunked body: relayed as the upstream's answer, framed again for the client.
  const refusing = await rawUpstream((s) => s.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nx-upstream: yes\r\n'
    + 'transfer-encoding: chunked\r\n\r\n7\r\ngo away\r\n0\r\n\r\n'));
  const names = { refused: deadPort, resetting: resetting.port, garbage: garbage.port, silent: silent.port, refusing: refusing.port };
  const gw = await startGateway(`listen: 127.0.0.1:0
services:
${Object.entries(names).map(([name, port]) => `  ${name}: { discovery: { type: static, endpoints: ["http://127.0.0.1:${port}"] } }`).join('\n')}
routes:
${Object.keys(names).map((name) => `  - { match: { path: /${name} }, service: ${name}, websocket: true${name === 'silent' ? ', timeoutMs: 300' : ''} }`).join('\n')}
`);
  t.teardown(async () => { await gw.close(); for (const u of [resetting, garbage, silent, refusing]) await u.close(); });
  const inFlight = (service: string) => gw.gateway.current().services.get(service)!.pool.endpoints[0]!.inFlight;

  for (const [service, status, code] of [
    ['refused', 502, 'GW_ERR_UPSTREAM_CONNECT'],
    ['resetting', 502, 'GW_ERR_UPSTREAM_RESET'],
    ['garbage', 502, 'GW_ERR_UPSTREAM_BAD_RESPONSE'],
    ['silent', 504, 'GW_ERR_UPSTREAM_TIMEOUT'],
  ] as const) {
    const answer = await webSocketHandshake(gw.port, `/${service}`, { 'x-request-id': `ws-${service}` });
    if ('socket' in answer) answer.socket.destroy();
    t.equal(answer.status, status, service);
    t.same([answer.headers['x-request-id'], answer.headers.connection], [`ws-${service}`, 'close'], `${service}: the request id`);
    t.same(refusal(answer), { error: code, request_id: `ws-${service}` }, `${service}: ${code}`);
    await waitFor(() => inFlight(service) === 0, 2000, `${service}: the endpoint's slot freed`);
  }
  await waitFor(() => silent.closed() === 1, 2000, 'the silent upstream\'s connection closed by the deadline');

  const refused = await webSocketHandshake(gw.port, '/refusing', { 'x-request-id': 'ws-refusing' });
  t.match(refused, { status: 403, body: 'go away', headers: { 'x-request-id': 'ws-refusing', 'x-upstream': 'yes', connection: 'close' } });
  await waitFor(() => inFlight('refusing') === 0, 2000, 'refusing: the endpoint\'s slot freed');
  t.equal((await fetch(`${gw.url}/nothing`)).status, 404, 'the gateway still serves');
});

t.test('an open tunnel does not hold its config generation: a reload that drops its endpoint disposes of the old pool', async (t) => {
  const a = await startWebSocketEcho();
  const b = await startWebSocketEcho();
  const gw = await startGateway(yaml(a.port));
  t.teardown(async () => { await gw.close(); await a.close(); await b.close(); });
  const oldPool = gw.gateway.current().services.get('ws')!.pool;
  const endpoint = oldPool.endpoints[0]!;
  const ws = await openWebSocket(gw.port, '/ws');
  t.equal(await ws.send('before'), 'echo:before');
  t.equal(endpoint.inFlight, 1, 'the open tunnel counts in flight on its endpoint');

  await gw.rewrite(yaml(b.port));
  t.equal((await gw.gateway.reload()).result, 'applied');
  await waitFor(() => oldPool.endpoints.length === 0, 3000, 'the retired generation\'s pool closed');
  t.equal(await ws.send('after'), 'echo:after', 'the tunnel still carries frames');
  t.equal(endpoint.inFlight, 1, 'and still counts on the endpoint it was opened to');

  ws.socket.destroy();
  await waitFor(() => endpoint.inFlight === 0, 2000, 'the slot freed when the tunnel closed');
  const next = await openWebSocket(gw.port, '/ws');
  t.equal(await next.send('new'), 'echo:new');
  t.equal(b.upgrades.length, 1, 'a new tunnel goes to the new endpoint');
  next.socket.destroy();
});
