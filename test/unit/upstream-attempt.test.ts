import t from 'tap';
import type { Exchange } from '../../gateway/proxy/exchange.js';
import { Attempt } from '../../gateway/proxy/upstream-attempt.js';
import type { EndpointState } from '../../gateway/upstream/endpoint-state.js';

/** undici's controller for one dispatch, as the attempt sees it: the raw head, pause/resume and abort. */
function controller(rawHeaders: Buffer[], calls: string[] = []) {
  let paused = false;
  return {
    rawHeaders,
    get paused() { return paused; },
    get aborted() { return false; },
    reason: null,
    pause: () => { paused = true; calls.push('pause'); },
    resume: () => { paused = false; calls.push('resume'); },
    abort: () => { calls.push('abort'); },
  };
}

/** An attempt whose head arrives with `status`: did it ask for the early relay, and did it pause the connection? */
function head(status: number, relayFinal: boolean) {
  const calls: string[] = [];
  let resolved = 0;
  const hooks = { answered: () => { calls.push('answered'); }, failed: () => { calls.push('failed'); } };
  const owner = { relayFinal: () => { calls.push('relayFinal'); return relayFinal; }, released: () => {} };
  const a = new Attempt({} as Exchange, {} as EndpointState, 0, () => { resolved++; }, () => {}, hooks, owner);
  const c = controller([Buffer.from('content-type'), Buffer.from('text/plain')]);
  a.onResponseStart(c, status, {}, 'OK');
  return { a, calls, goOn: !c.paused, resolved };
}

t.test('an answer below 500 is relayed from the parser callback, without pausing the connection', async (t) => {
  for (const status of [200, 204, 301, 404, 499]) {
    const { a, calls, goOn, resolved } = head(status, true);
    t.same(calls, ['answered', 'relayFinal'], `${status}: health recorded, then relayed at once`);
    t.equal(goOn, true, `${status}: the parser goes on to the body`);
    t.ok(a.relayed && a.relaying, `${status}: the body flows to the client`);
    t.equal(resolved, 1, `${status}: the policy chain still gets the answer`);
  }
});

t.test('a 5xx waits for the policies (it may be retried); a refused early relay does too', async (t) => {
  for (const status of [500, 502, 503, 504]) {
    const { a, calls, goOn, resolved } = head(status, true);
    t.same(calls, ['answered'], `${status}: health recorded, not relayed from the callback`);
    t.equal(goOn, false, `${status}: the connection is paused until relay or drop`);
    t.notOk(a.relaying);
    t.equal(resolved, 1);
  }
  const refused = head(200, false);   // the request was already settled (deadline) or the client left
  t.equal(refused.goOn, false);
  t.notOk(refused.a.relayed);
  t.notOk(refused.a.relaying);
});

t.test('a failed try: classified, the endpoint released once, the pipeline and the caller told the same failure', async (t) => {
  const seen: { pipeline?: string; caller?: string; released: number } = { released: 0 };
  const hooks = { answered: () => {}, failed: (_a: unknown, f: { kind: string }) => { seen.pipeline = f.kind; } };
  const owner = { relayFinal: () => true, released: () => { seen.released++; } };
  const a = new Attempt({} as Exchange, {} as EndpointState, 0, () => {}, (f) => { seen.caller = f.kind; }, hooks, owner);
  a.onResponseError(controller([]), Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
  a.cancel();   // the client leaving afterwards changes nothing
  a.timeOut();
  t.same(seen, { pipeline: 'connect', caller: 'connect', released: 1 });
  t.ok(a.done);
});

t.test('an error after a bodiless head (HEAD, 204, 304) ends the relayed answer; after any other head it cuts it', async (t) => {
  for (const [method, status, outcome] of [['GET', 304, 'end'], ['GET', 204, 'end'], ['HEAD', 200, 'end'], ['GET', 200, 'destroy']] as const) {
    const seen: string[] = [];
    const ex = {
      req: { method, complete: true },
      res: { writableEnded: false, end: () => { seen.push('end'); }, destroy: () => { seen.push('destroy'); } },
    } as unknown as Exchange;
    const hooks = { answered: () => {}, failed: () => { seen.push('failed'); } };
    const owner = { relayFinal: () => true, released: () => { seen.push('released'); } };
    const a = new Attempt(ex, {} as EndpointState, 0, () => {}, () => {}, hooks, owner);
    const c = controller([Buffer.from('content-length'), Buffer.from('5')]);
    a.onResponseStart(c, status, {}, 'X');
    // A length check against the Content-Length a bodiless answer carries, or the connection lost right after it.
    a.onResponseError(c, Object.assign(new Error('Response body length does not match content-length header'), { code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' }));
    t.same(seen, [outcome, 'released'], `${method} ${status}: ${outcome}`);
    t.equal(a.broken, outcome === 'destroy', `${method} ${status}: broken only when a body was due`);
  }
});
