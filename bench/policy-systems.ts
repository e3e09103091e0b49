/**
 * What a route's policies (docs/policies.md) cost per request, for `npm run bench:instructions`: the plain gantry
 * system's route with one policy added. gantry-jwt verifies a bearer token signed once at start against a local JWKS
 * server (bench/jwks-server.ts; the key set is fetched during the warm-up, so the counted requests verify with a
 * cached key); gantry-rate-limit keeps a local GCRA bucket per client address, with a limit no run reaches.
 */

/** A policy on the bench route: its `policies:` entry, and what every request carries for it. */
export interface BenchPolicy {
  /** The entry under `policies:`, named `bench-policy`. */
  readonly yaml: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function jwtPolicy(jwksUrl: string, token: string): BenchPolicy {
  return {
    yaml: `jwt: { jwksUrl: "${jwksUrl}", issuer: "https://idp.bench/", audience: bench, algorithms: [RS256], claimsToHeaders: { sub: x-user-id } }`,
    headers: { authorization: `Bearer ${token}` },
  };
}

export const rateLimitPolicy: BenchPolicy = { yaml: 'rateLimit: { requests: 1000000000, per: 1h }', headers: {} };

/** The bench route of bench/scenarios/scenario.ts's routesYaml, with the policy listed. */
export function withPolicy(yaml: string, policy: BenchPolicy): string {
  return `${yaml.replace('    service: upstream\n', '    service: upstream\n    policies: [bench-policy]\n')}policies:\n  bench-policy: { ${policy.yaml} }\n`;
}
