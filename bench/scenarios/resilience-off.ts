import { routesFile } from './routes-file.js';
import type { Scenario } from './scenario.js';
import { smallKeepalive } from './small-keepalive.js';

/**
 * small-keepalive with every resilience policy turned off (no retries, breakers, outlier detection; a bulkhead so
 * large it never binds): run beside small-keepalive, the gap between the two gantry/direct ratios is what the
 * default policies cost on the hot path.
 */
export const resilienceOff: Scenario = {
  ...smallKeepalive,
  name: 'resilience-off',
  summary: `${smallKeepalive.summary}; retries, breakers and outlier detection off`,
  routesYaml: (upstream) => routesFile('resilience-off', upstream, {
    serviceLines: `    retry: { attempts: 0 }
    circuitBreaker: { enabled: false }
    outlierDetection: { enabled: false }
`,
  }),
};
