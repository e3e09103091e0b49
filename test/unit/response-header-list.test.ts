import t from 'tap';
import { responseHeaderList } from '../../gateway/proxy/forwarded-headers.js';

const raw = (...pairs: string[]): Buffer[] => pairs.map((s) => Buffer.from(s, 'latin1'));

t.test('keeps case, order and repeated fields; drops the hop-by-hop ones', async (t) => {
  t.same(responseHeaderList(raw(
    'Content-Type', 'text/plain', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Set-Cookie', 'a=1',
    'Transfer-Encoding', 'chunked', 'Set-Cookie', 'b=2', 'Proxy-Authenticate', 'Basic', 'X-Up', 'é',
  )), ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Up', 'é']);
});

t.test('drops the headers a Connection value names, in any case and with spaces, but never the framing', async (t) => {
  t.same(responseHeaderList(raw(
    'X-Secret', '1', 'Connection', 'close,  X-SECRET ,x-other, content-length', 'X-Other', '2', 'Content-Length', '3', 'Close', 'c', 'X-Kept', '4',
  )), ['Content-Length', '3', 'X-Kept', '4']);
});

t.test('Connection: keep-alive (or other hop-by-hop names) names nothing else: every other header stays', async (t) => {
  for (const connection of ['keep-alive', 'Keep-Alive', 'keep-alive, upgrade', ' Upgrade ,TE']) {
    t.same(responseHeaderList(raw('Date', 'x', 'Connection', connection, 'Content-Length', '2', 'X-Up', 'y')),
      ['Date', 'x', 'Content-Length', '2', 'X-Up', 'y'], connection);
  }
});

t.test('every hop-by-hop name goes in any case; other names of the same lengths stay', async (t) => {
  const hop = ['TE', 'Trailer', 'UPGRADE', 'keep-ALIVE', 'Proxy-Connection', 'transfer-encoding', 'Proxy-Authenticate'];
  const kept = ['X-', 'Trailes', 'X-Upgra', 'Keep-Alivx', 'Proxy-Connectio2', 'Transfer-Encodin_', 'Proxy-Authenticat3', 'X-Fine'];
  const pairs = [...hop, ...kept].flatMap((name, i) => [name, String(i)]);
  t.same(responseHeaderList(raw(...pairs)), kept.flatMap((name, i) => [name, String(hop.length + i)]));
});
