import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { deleteUnset, prepareUpstreamHeaders } from '../../gateway/proxy/forwarded-headers.js';

const FACTS = { peer: '10.0.0.9', trustedProxies: null, clientHost: 'api.example', requestIdHeader: 'x-request-id', requestId: 'r-1' };

/** A headers object as Node's parser makes one: plain properties added in order. */
function parsed(pairs: Record<string, string>): Record<string, string | undefined> {
  const h: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(pairs)) h[name] = value;
  return h;
}

t.test('hop-by-hop headers, those Connection names and forged forwarding headers are unset; ours are set', async (t) => {
  const h = parsed({
    host: 'api.example', connection: 'keep-alive, X-Secret', 'keep-alive': 'timeout=5', 'x-secret': 's', te: 'trailers',
    'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', accept: '*/*', 'content-length': '0',
  });
  prepareUpstreamHeaders(h, FACTS);
  const kept = Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined));
  t.same(kept, {
    host: 'api.example', accept: '*/*', 'content-length': '0',
    'x-forwarded-for': '10.0.0.9', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'api.example', 'x-request-id': 'r-1',
  });
  for (const name of ['connection', 'keep-alive', 'x-secret', 'te', 'forwarded']) t.equal(h[name], undefined, name);
  deleteUnset(h);
  t.same(Object.keys(h).sort(), Object.keys(kept).sort(), 'deleteUnset leaves only the headers that are set');
});

t.test('the headers object keeps its fast properties with a client that sends Connection: keep-alive', async (t) => {
  // %HasFastProperties needs --allow-natives-syntax, so the check runs in a child process.
  const module = fileURLToPath(new URL('../../gateway/proxy/forwarded-headers.js', import.meta.url));
  const script = `
    const { prepareUpstreamHeaders } = await import(${JSON.stringify(module)});
    const h = {}; h.host = 'a'; h.connection = 'keep-alive'; h.accept = '*/*'; h['x-forwarded-for'] = '6.6.6.6';
    prepareUpstreamHeaders(h, ${JSON.stringify(FACTS)});
    process.stdout.write(String(%HasFastProperties(h)));`;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(out, 'true');
});
