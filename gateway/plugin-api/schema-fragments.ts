import { canonicalAddress, type Endpoint } from './discovery.js';

/**
 * JSON-Schema pieces that several plugins' `optionsSchema` share, so the same option means the same thing (and is
 * checked the same way) in every plugin.
 */

export const schemeSchema = { enum: ['http', 'https'], default: 'http', description: 'Scheme of the endpoints.' } as const;

export const metadataSchema = {
  type: 'object',
  propertyNames: { minLength: 1, maxLength: 128 },
  additionalProperties: { type: 'string', maxLength: 1024 },
} as const;

export const weightSchema = { type: 'integer', minimum: 1, maximum: 1000 } as const;

/** An endpoint written by hand: a URL, or `{ url, weight, metadata }`. */
export const endpointEntrySchema = {
  oneOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: { url: { type: 'string', minLength: 1 }, weight: weightSchema, metadata: metadataSchema },
    },
  ],
} as const;

export type EndpointEntry = string | { url: string; weight?: number; metadata?: Record<string, string> };

/** Turns a hand-written entry into an Endpoint; throws (with a message fit for a config problem) on a bad URL. */
export function endpointFromEntry(entry: EndpointEntry): Endpoint {
  if (typeof entry === 'string') return { address: canonicalAddress(entry), weight: 1 };
  const e: Endpoint = { address: canonicalAddress(entry.url), weight: entry.weight ?? 1 };
  return entry.metadata ? { ...e, metadata: entry.metadata } : e;
}

/** Files for a TLS client: PEM CA bundle, client certificate and key (mutual TLS). Read when the plugin starts. */
export const tlsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    caFile: { type: 'string', minLength: 1 },
    certFile: { type: 'string', minLength: 1 },
    keyFile: { type: 'string', minLength: 1 },
  },
  dependencies: { certFile: ['keyFile'], keyFile: ['certFile'] },
} as const;

export interface TlsFiles { caFile?: string; certFile?: string; keyFile?: string }

/** The same files as file names (PluginContext.resolvePath: relative to the routes file). */
export function resolveTlsFiles(tls: TlsFiles, resolvePath: (path: string) => string): TlsFiles {
  const out: TlsFiles = {};
  if (tls.caFile) out.caFile = resolvePath(tls.caFile);
  if (tls.certFile) out.certFile = resolvePath(tls.certFile);
  if (tls.keyFile) out.keyFile = resolvePath(tls.keyFile);
  return out;
}

/** `http(s)://host:port` of a registry's API (etcd, Consul): no path, no credentials. */
export const apiUrlSchema = { type: 'string', pattern: '^https?://[^/?#@]+/?$' } as const;
