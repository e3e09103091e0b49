import { routingTableScenario } from './routing-table.js';

/** The 10-route baseline for routes-10k: the same shape, a thousand times smaller. */
export const routes10 = routingTableScenario('routes-10', 10, '10 routes, host + prefix mix');
