import { connections1k } from './connections-1k.js';
import { largeResponse } from './large-response.js';
import { pacedLatency } from './paced-latency.js';
import { post1k } from './post-1k.js';
import { resilienceOff } from './resilience-off.js';
import { routes10 } from './routes-10.js';
import { routes10k } from './routes-10k.js';
import type { Scenario } from './scenario.js';
import { smallKeepalive } from './small-keepalive.js';

/** Every scenario, in the order a plain `npm run bench` runs them (routes-10 right before routes-10k, its baseline). */
export const scenarios: readonly Scenario[] = [smallKeepalive, pacedLatency, resilienceOff, largeResponse, post1k, routes10, routes10k, connections1k];
