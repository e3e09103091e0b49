import t from 'tap';
import { mergedTrafficAndHealth, type EndpointStatus, type TrafficAndHealthSnapshot } from '../../gateway/admin/traffic-and-health.js';
import { GatewayMetrics } from '../../gateway/admin/metrics.js';
import { GatewayErrorWindow } from '../../gateway/admin/gateway-error-window.js';
import type { EndpointState } from '../../gateway/upstream/endpoint-state.js';

const base: EndpointStatus = { inFlight: 0, health: 'healthy', breaker: 'closed', ejected: false, ewmaMs: null, changedAt: null };
const worker = (status: Partial<EndpointStatus>): TrafficAndHealthSnapshot => ({ bucketMs: 5000, size: 60, traffic: [], endpoints: [['svc', 'http://127.0.0.1:1', { ...base, ...status }]], policies: [], gatewayErrors: new Uint32Array(0) });
const endpoint = { address: 'http://127.0.0.1:1' } as EndpointState;

t.test('an endpoint across workers: in-flight summed, the worst health, breaker and ejection any worker sees, EWMA averaged', async (t) => {
  const fallback = new GatewayMetrics({ current: () => undefined, version: 'test' });
  const merged = mergedTrafficAndHealth([
    worker({ inFlight: 2, breaker: 'half-open', ewmaMs: 10, changedAt: 100 }),
    worker({ inFlight: 3, breaker: 'open', health: 'unhealthy', changedAt: 300 }),
    worker({ inFlight: 1, ejected: true, ewmaMs: 30, changedAt: 200 }),
  ], fallback);
  t.same(merged.endpoint('svc', endpoint), { inFlight: 6, health: 'unhealthy', breaker: 'open', ejected: true, ewmaMs: 20, changedAt: 300 });
  t.same(mergedTrafficAndHealth([worker({}), worker({ breaker: 'isolated' })], fallback).endpoint('svc', endpoint).breaker, 'isolated', 'isolated is the furthest from closed');
  t.same(mergedTrafficAndHealth([worker({ inFlight: 1 }), worker({ inFlight: 1 })], fallback).endpoint('svc', endpoint), { ...base, inFlight: 2 }, 'all well: healthy, closed, no EWMA yet');
});

t.test('policy decisions across workers: allowed and each reason summed', async (t) => {
  const fallback = new GatewayMetrics({ current: () => undefined, version: 'test' });
  const tallies = (allowed: number, refused: Record<string, number>): TrafficAndHealthSnapshot => ({ bucketMs: 5000, size: 60, traffic: [], endpoints: [], policies: [{ policy: 'keys', kind: 'apiKey', allowed, refused }], gatewayErrors: new Uint32Array(0) });
  const merged = mergedTrafficAndHealth([tallies(3, { missing: 1 }), tallies(4, { missing: 2, invalid: 5 })], fallback);
  t.same(merged.policies(), [{ policy: 'keys', kind: 'apiKey', allowed: 7, refused: { missing: 3, invalid: 5 } }]);
});

t.test('the gateway\'s own answers across workers: each code summed, the most frequent first', async (t) => {
  const fallback = new GatewayMetrics({ current: () => undefined, version: 'test' });
  const answers = (codes: ('GW_ERR_NO_ROUTE' | 'GW_ERR_NO_ENDPOINT')[]): TrafficAndHealthSnapshot => {
    const w = new GatewayErrorWindow(5000, 60, () => 1_000_000);
    for (const code of codes) w.record(code);
    return { bucketMs: 5000, size: 60, traffic: [], endpoints: [], policies: [], gatewayErrors: w.totals() };
  };
  const merged = mergedTrafficAndHealth([answers(['GW_ERR_NO_ROUTE', 'GW_ERR_NO_ENDPOINT']), answers(['GW_ERR_NO_ROUTE'])], fallback);
  t.same(merged.gatewayErrors(), [{ code: 'GW_ERR_NO_ROUTE', status: 404, count: 2 }, { code: 'GW_ERR_NO_ENDPOINT', status: 503, count: 1 }]);
});
