import t from 'tap';
import { GatewayErrorWindow, gatewayErrorCounts } from '../../gateway/admin/gateway-error-window.js';

t.test('counts each code over the window, and forgets a bucket once it is older than the window', async (t) => {
  let now = 10_000;
  const w = new GatewayErrorWindow(1000, 3, () => now);
  w.record('GW_ERR_NO_ROUTE');
  now += 1000;
  w.record('GW_ERR_NO_ROUTE');
  w.record('GW_ERR_UPSTREAM_TIMEOUT');
  t.same(gatewayErrorCounts([w.totals()]), [{ code: 'GW_ERR_NO_ROUTE', status: 404, count: 2 }, { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 504, count: 1 }]);
  now += 2000;   // the first bucket is now 3 buckets old: out of a 3-bucket window
  t.same(gatewayErrorCounts([w.totals()]), [{ code: 'GW_ERR_NO_ROUTE', status: 404, count: 1 }, { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 504, count: 1 }]);
  w.record('GW_ERR_NO_ROUTE');   // reuses the first bucket's ring position: its old count is cleared
  t.same(gatewayErrorCounts([w.totals()]), [{ code: 'GW_ERR_NO_ROUTE', status: 404, count: 2 }, { code: 'GW_ERR_UPSTREAM_TIMEOUT', status: 504, count: 1 }]);
  now += 10_000;
  t.same(gatewayErrorCounts([w.totals()]), [], 'nothing in the window');
});
