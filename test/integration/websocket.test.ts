import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { startGateway } from '../helpers/gateway-under-test.js';
import { openWebSocket, startWebSocketEcho } from '../helpers/websocket.js';

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
  const upstreamSocketClosed = new Promise<void>((resolve) => {
    up.server.on('close', resolve);
    const check = setInterval(async () => {
      const count = await new Promise<number>((r) => up.server.getConnections((_e, n) => r(n)));
      if (count === 0) { clearInterval(check); resolve(); }
    }, 20);
    setTimeout(() => clearInterval(check), 2000);
  });
  ws.socket.destroy();
  await upstreamSocketClosed;
  const count = await new Promise<number>((r) => up.server.getConnections((_e, n) => r(n)));
  t.equal(count, 0);
});

t.test('a WebSocket upgrade on a route without websocket: true is refused and nothing is tunnelled', async (t) => {
  const up = await startWebSocketEcho();
  const gw = await startGateway(yaml(up.port));
  t.teardown(async () => { await gw.close(); await up.close(); });
  const ws = await openWebSocket(gw.port, '/plain');
  t.match(ws.head, /^HTTP\/1\.1 400 /);
  t.match(ws.head, /GW_ERR_UPGRADE_NOT_ALLOWED|connection: close/i);
  t.equal(up.upgrades.length, 0);
});

t.test('an upstream that refuses the upgrade or is down gives an answer on the socket, never a crash (row 31)', async (t) => {
  const dead = net.createServer();
  dead.listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const port = (dead.address() as net.AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const gw = await startGateway(yaml(port));
  t.teardown(() => gw.close());
  const ws = await openWebSocket(gw.port, '/ws');
  t.match(ws.head, /^HTTP\/1\.1 502 /);

  const resetting = net.createServer((s) => s.destroy());
  resetting.listen(0, '127.0.0.1');
  await once(resetting, 'listening');
  const gw2 = await startGateway(yaml((resetting.address() as net.AddressInfo).port));
  t.teardown(async () => { await gw2.close(); await new Promise((r) => resetting.close(r)); });
  const ws2 = await openWebSocket(gw2.port, '/ws');
  t.match(ws2.head, /^HTTP\/1\.1 502 /);
  const ok = await fetch(`${gw2.url}/nothing`).then((r) => r.status);
  t.equal(ok, 404, 'the gateway still serves');
});
