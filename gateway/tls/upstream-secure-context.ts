import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls';
import type { UpstreamTlsConfig } from '../config/gateway-config.js';

// One context per service's tls block (a frozen config object), shared by every endpoint and connection: building
// one parses the whole default CA list (about 150 certificates), which is work for a config load, not a connection.
const contexts = new WeakMap<UpstreamTlsConfig, SecureContext>();

/**
 * The client-side TLS context for a service's https:// endpoints: the default CAs (Node's bundle, plus
 * NODE_EXTRA_CA_CERTS, plus the system's with --use-system-ca) and the service's CA file, and the client
 * certificate for mTLS. Node's `ca` option replaces the defaults, so they are listed again beside the CA file.
 */
export function upstreamSecureContext(tls: UpstreamTlsConfig): SecureContext {
  let context = contexts.get(tls);
  if (context === undefined) {
    context = createSecureContext({
      ca: tls.caPem === undefined ? undefined : [...getCACertificates('default'), tls.caPem],
      cert: tls.certPem,
      key: tls.keyPem,
    });
    contexts.set(tls, context);
  }
  return context;
}
