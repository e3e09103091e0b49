import { routingTableScenario } from './routing-table.js';

/**
 * 10 000 routes (5 000 prefix routes for any host, 5 000 host + prefix routes over 100 hosts). Issue 8's target: at
 * most 10 % fewer req/s than routes-10, which the runner computes when both run in one invocation.
 */
export const routes10k = routingTableScenario('routes-10k', 10_000, '10 000 routes, host + prefix mix');
