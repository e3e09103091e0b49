/**
 * docs/bad-inputs.md row 33: an upstream that answers with broken HTTP. The client gets the gateway's 502, none of the
 * upstream's bytes, and the upstream connection is discarded.
 * Raw bytes over a socket to the gateway running in-process (test/helpers/bad-inputs.ts), and what the recording
 * upstreams received.
 */
import t from 'tap';
import { assertGatewayError, BROKEN, only, startBadInputGateways } from '../helpers/bad-inputs.js';
import { waitFor } from '../helpers/capture-log.js';

const { send, raw } = await startBadInputGateways();

t.test('row 33: answers 502 with the gateway error to a malformed upstream response and discards that connection', async (t) => {
  for (const path of Object.keys(BROKEN)) {
    const before = raw.connections.length;
    const r = await send(`GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`, 3000);
    const res = only(r);
    assertGatewayError(t, res, 502, 'GW_ERR_UPSTREAM_BAD_RESPONSE');
    t.equal(r.text.indexOf('HTTP/1.1', 1), -1, `${path}: nothing of the upstream's bytes reaches the client`);
    t.equal(raw.connections.length, before + 1, `${path}: a new upstream connection, not a reused one`);
    await t.resolves(waitFor(() => raw.connections.slice(before).every((c) => c.closed), 5000, `${path}: the upstream connection closed`), `${path}: the upstream connection is discarded`);
  }
});
