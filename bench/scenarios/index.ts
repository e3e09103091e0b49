import type { Scenario } from './scenario.js';
import { resilienceOff } from './resilience-off.js';
import { smallKeepalive } from './small-keepalive.js';

/** Every scenario, in the order a plain `npm run bench` runs them. */
export const scenarios: readonly Scenario[] = [smallKeepalive, resilienceOff];
