import type { TlsMaterial } from '../discovery/http-json.js';

/** What one request to the API server carries: its headers (authorization) and TLS material. */
export interface KubernetesCredentials {
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: TlsMaterial;
}

/** How to reach and authenticate to the API server: from the pod's service account or from a kubeconfig. */
export interface KubernetesAccess {
  readonly server: string;
  /** The namespace the credentials point at, used when the options name none. */
  readonly namespace: string;
  /**
   * The credentials for the next request. Tokens are current at each call: a service account's or a token file's
   * is read again (projected tokens rotate), an exec plugin's is run again once it expired.
   */
  credentials(signal: AbortSignal): Promise<KubernetesCredentials>;
  /** The server answered 401: drop cached exec credentials, so the next call runs the plugin again (as kubectl). */
  rejected(): void;
}
