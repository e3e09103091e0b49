/**
 * A policy plugin (docs/policies.md, "Policy plugins"): requests must name an API version the route serves.
 *
 *   plugins: [./api-version.mjs]
 *   policies:
 *     versioned: { apiVersion: { versions: ["2025-01", "2026-06"], default: "2026-06" } }
 *
 * A request without `api-version` gets the default; one naming a version not listed is answered 400 at the edge.
 * The upstream gets the version in `x-api-version`, the client sees it on every answer.
 */
export default {
  kind: 'policy',
  type: 'apiVersion',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['versions'],
    properties: {
      versions: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}$' } },
      default: { type: 'string' },
    },
  },
  check(options) {
    if (options.default !== undefined && !options.versions.includes(options.default)) {
      return [[['default'], `"${options.default}" is not one of the versions`]];
    }
    return [];
  },
  create(options, ctx) {
    const versions = new Set(options.versions);
    ctx.log.debug({ versions: options.versions }, 'apiVersion policy ready');
    return {
      onRequest(request) {
        const asked = request.headers['api-version'] ?? options.default;
        if (typeof asked !== 'string' || !versions.has(asked)) {
          const body = JSON.stringify({ error: 'unsupported-api-version', supported: options.versions });
          return { status: 400, headers: ['content-type', 'application/json'], body };
        }
        request.headers['api-version'] = undefined;
        request.headers['x-api-version'] = asked;
        return undefined;
      },
      onAnswer(headers, request) {
        headers.push('api-version', request.headers['x-api-version'] ?? 'none');
      },
    };
  },
};
