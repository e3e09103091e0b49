import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { RateLimitStoreConfig } from '../policies/rate-limiter.js';
import type { ScalingConfig } from './scaling-config.js';

/**
 * The validated, normalized, deep-frozen configuration. routes.schema.json describes the YAML; these types describe
 * what the loader hands to the runtime after defaults, parsing of addresses and plugin option checks.
 */

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxUriBytes: number;
  readonly maxHeaders: number;
  readonly maxBodyBytes: number;
  readonly drainGraceMs: number;
  readonly trustedProxies: readonly string[];
  readonly requestIdHeader: string;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogConfig {
  readonly level: LogLevel;
  readonly access: boolean;
  /** The access line: `json`, `combined`, or a template of `{field}`s (proxy/access-line-format.ts). */
  readonly accessFormat: string;
  /** Log file path (relative to the routes file); none = stdout. SIGUSR2 reopens it; changing it needs a restart. */
  readonly file?: string;
}

/** The gateway's spans (gateway/tracing/) and W3C trace context at the edge (proxy/trace-context.ts). */
export interface TracingConfig {
  /** Record spans and export them over OTLP/HTTP. */
  readonly spans: boolean;
  /** The collector's OTLP/HTTP traces URL; null: the OTEL_EXPORTER_OTLP_* environment variables, else localhost:4318. */
  readonly endpoint: string | null;
  /** Ended spans waiting for export; more are dropped and counted. */
  readonly maxQueueSize: number;
  /** Create a traceparent for requests that arrive without a valid one. */
  readonly createTraceparent: boolean;
  /** Share of the traces the gateway starts that are sampled (0..1); a request's own traceparent decides for its trace. */
  readonly sampleRatio: number;
}

export type BalancerName = 'round-robin' | 'weighted-round-robin' | 'random' | 'least-request' | 'p2c' | 'consistent-hash';

export interface RetryConfig {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly statuses: readonly number[];
  readonly methods: readonly string[];
  readonly idempotencyKeyHeader: string | null;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly bufferBodyBytes: number;
  readonly budget: { readonly ratio: number; readonly minPerSecond: number; readonly windowMs: number };
}

export interface BreakerConfig {
  readonly enabled: boolean;
  readonly consecutiveFailures: number;
  readonly failureRatio?: { readonly threshold: number; readonly windowMs: number; readonly minimumRps: number };
  readonly halfOpenAfterMs: number;
  readonly maxHalfOpenAfterMs: number;
}

export interface OutlierConfig {
  readonly enabled: boolean;
  readonly consecutive5xx: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
}

export interface HealthCheckConfig {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly expectStatus: readonly number[];
}

export interface DiscoveryConfig {
  readonly type: string;
  /** The plugin's options, checked against its schema; opaque to core. */
  readonly options: Readonly<Record<string, unknown>>;
  /** The routes file's directory, against which the plugin resolves relative paths in its options. */
  readonly baseDir: string;
  /** A stable key of type + options + baseDir: equal keys share one discovery watch across reloads. */
  readonly key: string;
}

/** How the gateway speaks to a service's endpoints: HTTP/1.1, or HTTP/2 (over TLS by ALPN, h2c on http:// endpoints). */
export type UpstreamProtocol = 'http1' | 'h2';

/**
 * TLS to a service's https:// endpoints (gateway/tls/read-upstream-tls.ts reads and checks its files at load). The
 * server's certificate is always verified: against the default CAs plus `caPem`, for `serverName` when set.
 */
export interface UpstreamTlsConfig {
  /** Absolute paths, as the file names them relative to itself. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly serverName?: string;
  /** The PEM text that was checked: what connections use, so a file that changes afterwards changes nothing. */
  readonly caPem?: string;
  readonly certPem?: string;
  readonly keyPem?: string;
}

export interface ServiceConfig {
  readonly name: string;
  readonly discovery: DiscoveryConfig;
  readonly balancer: BalancerName;
  readonly timeoutMs: number;
  readonly maxSocketsPerEndpoint: number;
  readonly idleSocketTimeoutMs: number;
  readonly warmTimeoutMs: number;
  /** 'preserve', 'endpoint' or a fixed Host value. */
  readonly hostHeader: string;
  /** consistent-hash key source: `header:NAME`, `cookie:NAME` or `client-ip`. */
  readonly hashOn?: string;
  readonly slowStartMs: number;
  /** As set; null: each route derives its own from its deadline (RouteConfig.tryTimeoutMs). */
  readonly tryTimeoutMs: number | null;
  readonly connectTimeoutMs: number;
  readonly protocol: UpstreamProtocol;
  /** null: https:// endpoints are verified against the default CAs, for the Host sent upstream. */
  readonly tls: UpstreamTlsConfig | null;
  readonly retry: RetryConfig;
  readonly circuitBreaker: BreakerConfig;
  readonly outlierDetection: OutlierConfig;
  readonly bulkhead: { readonly maxConcurrent: number; readonly maxQueue: number };
  readonly healthCheck: HealthCheckConfig | null;
  /** Autoscaling (docs/scaling.md); null when the service is not scaled by the gateway. */
  readonly scaling: ScalingConfig | null;
}

export interface RouteMatch {
  /** Lower-cased exact hosts and `*.suffix` wildcards; empty means any host. */
  readonly hosts: readonly string[];
  readonly path?: string;
  readonly exactPath?: string;
  readonly pathRegex?: string;
  /** Upper-case methods; empty means any method. */
  readonly methods: readonly string[];
  /** Lower-cased header names to exact values. */
  readonly headers: Readonly<Record<string, string>>;
}

/** What keeps a client on its side of a split: a cookie's or a header's value (lower-case header name). */
export interface StickyBy {
  readonly from: 'cookie' | 'header';
  readonly name: string;
}

/** One side of a route's split: the service, its weight, and the route's timeouts as that service sets them. */
export interface SplitSide {
  readonly service: string;
  readonly weight: number;
  readonly timeoutMs: number;
  readonly tryTimeoutMs: number;
}

export interface RouteConfig {
  readonly name: string;
  /** Position in routes.yaml, the last tie-breaker between equally specific routes. */
  readonly index: number;
  readonly match: RouteMatch;
  /** The service; with a split, the first side's (each side is compiled as a route of its own service). */
  readonly service: string;
  /** A canary split between services (routing/service-split.ts); null: every request goes to `service`. */
  readonly split?: readonly SplitSide[] | null;
  readonly stickyBy?: StickyBy | null;
  readonly stripPrefix: boolean;
  readonly replacePrefix?: string;
  readonly websocket: boolean;
  /** The deadline of a request, retries included; also bounds a WebSocket handshake. */
  readonly timeoutMs: number;
  /** Per try: the service's tryTimeoutMs, else derived from timeoutMs (config/try-timeout.ts). */
  readonly tryTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** Names of top-level policies, run in this order before forwarding (docs/policies.md); checked to exist. */
  readonly policies: readonly string[];
}

/** A named policy (docs/policies.md): its kind and the options its kind loaded (files read, values checked). */
export interface PolicyConfig {
  readonly name: string;
  readonly kind: string;
  /** What the kind's `load` made of the options: plain data, opaque to core. */
  readonly options: unknown;
}

export type { RateLimitStoreConfig } from '../policies/rate-limiter.js';

/** Where the admin listener's bearer token comes from (exactly one of the two); the token itself never enters the config. */
export interface AdminAuthConfig {
  /** A file holding the token (relative to the routes file); re-read on every reload, so rotating it needs no restart. */
  readonly tokenFile?: string;
  /** An environment variable holding the token. */
  readonly tokenEnv?: string;
}

/** A certificate and its key as read and checked at load (gateway/tls/read-certificates.ts). */
export interface TlsCertificate {
  /** Absolute paths (the file names them relative to itself). */
  readonly cert: string;
  readonly key: string;
  /** The PEM text that was checked: what the listener serves, so a file that changes afterwards changes nothing. */
  readonly certPem: string;
  readonly keyPem: string;
  /** DNS subjectAltNames, lower-case: exact names and `*.` wildcards. */
  readonly names: readonly string[];
  /** SHA-256 fingerprint of the leaf certificate, for logs. */
  readonly fingerprint: string;
  /** ISO time after which the leaf certificate is no longer valid. */
  readonly validTo: string;
}

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export type AcmeChallengeType = 'http-01' | 'tls-alpn-01';

/** Certificates ordered and renewed from an ACME CA (gateway/tls/acme-renewal.ts, docs/tls.md). */
export interface AcmeConfig {
  /** The CA's directory URL (https). */
  readonly directory: string;
  readonly email: string | null;
  /** Lower-case DNS names, all on the one certificate ordered; the first names its storage directory. */
  readonly domains: readonly string[];
  /** Absolute path: account key, certificates, challenges, the order lock (acme-storage.ts). */
  readonly storage: string;
  /** Absolute path of PEM CA certificates trusted for the CA's HTTPS; null: Node's roots. */
  readonly caFile: string | null;
  /** In order of preference. */
  readonly challenges: readonly AcmeChallengeType[];
  /** Backoff between failed orders. */
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
}

/** The HTTPS listener (docs/tls.md). */
export interface TlsConfig {
  readonly listen: ListenAddress;
  /**
   * In file order; the first is the default for clients without SNI or with a name none covers. May be empty with
   * `acme`, whose certificate the listener adds from the storage directory once one is there.
   */
  readonly certificates: readonly TlsCertificate[];
  /** null without `tls.acme`. */
  readonly acme: AcmeConfig | null;
  readonly minVersion: TlsVersion;
  /** ALPN offers h2 (then http/1.1): HTTP/2 to clients on this listener. Restart to change. */
  readonly http2: boolean;
  readonly redirectHttp: boolean;
  /** The Strict-Transport-Security value sent on HTTPS answers; null: none. */
  readonly hsts: string | null;
}

/** Several gateways as one fleet (docs/fleet.md, gateway/fleet/). */
export interface FleetConfig {
  readonly name: string;
  readonly etcd: {
    readonly endpoints: readonly string[];
    readonly auth?: { readonly username: string; readonly password: string };
    /** Absolute paths. */
    readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
    readonly dialTimeoutMs: number;
    readonly requestTimeoutMs: number;
  };
  /** This gateway's name in the fleet (default hostname-pid). */
  readonly instance: string;
  readonly leaseTtlS: number;
}

export interface GatewayConfig {
  readonly file: string;
  /**
   * sha256 of the file's bytes (and, with `tls:`, of the certificates and keys it names, so a reload picks up files
   * rotated on disk), shown by the admin API; equal hashes make a reload a no-op.
   */
  readonly hash: string;
  readonly listen: ListenAddress;
  readonly admin: ListenAddress | null;
  /** Required when `admin` is not a loopback address. */
  readonly adminAuth: AdminAuthConfig | null;
  readonly server: ServerLimits;
  /** The HTTPS listener; null when the file has no `tls:`. */
  readonly tls: TlsConfig | null;
  readonly log: LogConfig;
  readonly tracing: TracingConfig;
  /** null without `fleet:` (the gateway scales alone). */
  readonly fleet: FleetConfig | null;
  readonly services: ReadonlyMap<string, ServiceConfig>;
  readonly routes: readonly RouteConfig[];
  /** Named policies, by name; routes refer to them. */
  readonly policies: ReadonlyMap<string, PolicyConfig>;
  /** Where rateLimit policies keep their buckets; null: in the gateway itself (the primary with --workers). */
  readonly rateLimitStore: RateLimitStoreConfig | null;
  /** The plugins this config was validated against: the built-ins plus the modules under `plugins:`. */
  readonly plugins: PluginRegistry;
}

