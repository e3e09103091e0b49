import { canonicalAddress, type DiscoveryPlugin, type DiscoveryUpdate, type Endpoint } from '../../gateway/plugin-api/index.js';

type StaticEntry = string | { url: string; weight?: number };
interface StaticOptions { endpoints: StaticEntry[] }

function toEndpoint(entry: StaticEntry): Endpoint {
  if (typeof entry === 'string') return { address: canonicalAddress(entry), weight: 1 };
  return { address: canonicalAddress(entry.url), weight: entry.weight ?? 1 };
}

/** Endpoints written in routes.yaml. They change only with the file, so a watch is one reset and then silence. */
export const staticDiscovery: DiscoveryPlugin<StaticOptions> = {
  kind: 'discovery',
  type: 'static',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['endpoints'],
    properties: {
      endpoints: {
        type: 'array',
        minItems: 1,
        items: {
          oneOf: [
            { type: 'string', minLength: 1 },
            {
              type: 'object',
              additionalProperties: false,
              required: ['url'],
              properties: { url: { type: 'string', minLength: 1 }, weight: { type: 'integer', minimum: 1, maximum: 1000 } },
            },
          ],
        },
      },
    },
  },
  check(options) {
    const problems: [(string | number)[], string][] = [];
    const seen = new Set<string>();
    options.endpoints.forEach((entry, i) => {
      try {
        const { address } = toEndpoint(entry);
        if (seen.has(address)) problems.push([['endpoints', i], `duplicate endpoint ${address}`]);
        seen.add(address);
      } catch (err) {
        problems.push([['endpoints', i], `invalid endpoint URL: ${(err as Error).message}`]);
      }
    });
    return problems;
  },
  create(options) {
    const endpoints = Object.freeze(options.endpoints.map(toEndpoint));
    return {
      async *watch(_service: string, signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
        yield { kind: 'reset', endpoints };
        if (signal.aborted) return;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      },
      async close() {},
    };
  },
};
