/**
 * The routes.yaml every scenario gives Gantry: listen on 127.0.0.1:0 (the runner reads the port from the "started"
 * line), access log on, one static service `upstream`, every other setting at its default. `serviceLines` are added
 * to the service (indented 4 spaces); `routeLines` replace the single route `/bench`.
 */
export function routesFile(scenario: string, upstream: string, extra: { serviceLines?: string; routeLines?: string } = {}): string {
  return `# Written by bench/scenarios/${scenario}.ts
listen: 127.0.0.1:0
admin: 127.0.0.1:0
server:
  drainGraceMs: 2000
log:
  level: info
  access: true
services:
  upstream:
    discovery:
      type: static
      endpoints: [${JSON.stringify(upstream)}]
${extra.serviceLines ?? ''}routes:
${extra.routeLines ?? `  - name: bench
    match: { path: /bench }
    service: upstream
`}`;
}
