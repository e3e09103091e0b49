import { readFileSync } from 'node:fs';
import { noop } from 'cockatiel';
import type { Etcd3, IOptions } from 'etcd3';
import { apiUrlSchema, tlsSchema, type TlsFiles } from './schema-fragments.js';

/** How to reach etcd: shared by the etcd discovery plugin, its registration helper and the fleet (gateway/fleet/). */
export interface EtcdConnection {
  hosts: string[];
  auth?: { username: string; password: string };
  tls?: TlsFiles;
  dialTimeoutMs: number;
  requestTimeoutMs: number;
}

export const etcdConnectionProperties = {
  hosts: { type: 'array', minItems: 1, items: apiUrlSchema, default: ['http://127.0.0.1:2379'], description: 'etcd client URLs.' },
  auth: {
    type: 'object', additionalProperties: false, required: ['username', 'password'],
    properties: { username: { type: 'string', minLength: 1 }, password: { type: 'string' } },
  },
  tls: tlsSchema,
  dialTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, default: 3000 },
  requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, default: 5000, description: 'Deadline of each unary call (not of the watch stream).' },
} as const;

export type Etcd3Module = typeof import('etcd3');
let etcd3: Promise<Etcd3Module> | undefined;

/**
 * The etcd3 package, imported on first use. Why: it brings gRPC and protobufjs (importing etcd3 alone takes node
 * from 40.8 to 66.7 MiB of RSS), loaded at start by every gateway whether a service used etcd or not; lazily, an idle gateway
 * with one route starts at 81.3 MiB instead of 85.2 MiB.
 */
export function loadEtcd3(): Promise<Etcd3Module> {
  return (etcd3 ??= import('etcd3'));
}

/**
 * etcd3 types its fault handling against the cockatiel 3 it bundles; cockatiel 4's no-op policy has the same runtime
 * shape (execute, onSuccess, onFailure), which is all etcd3 calls.
 */
const noFaultPolicy = noop as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * An etcd3 client whose failures reach the caller at once. etcd3 wraps each host in its own circuit breaker (open for
 * 5 s after 3 failures) and retries calls; the gateway's pool already retries a failed watch with jittered backoff
 * and reports the source as down, so both are turned off here: a restarted etcd is seen at the next re-watch.
 */
export function createEtcdClient(c: EtcdConnection, lib: Etcd3Module): Etcd3 {
  const options: IOptions = {
    hosts: c.hosts.map((h) => h.replace(/\/$/, '')),
    dialTimeout: c.dialTimeoutMs,
    faultHandling: { host: () => noFaultPolicy, global: noFaultPolicy },
    // Unary calls get a deadline; the watch and keep-alive streams must not.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + c.requestTimeoutMs }),
    // A peer that vanishes without a reset (a dropped network) is noticed by HTTP/2 pings on the open stream.
    // 10 s stays above etcd's default --grpc-keepalive-min-time (5 s), which would refuse faster pings.
    grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 },
  };
  if (c.auth) options.auth = c.auth;
  if (c.tls) {
    const tls = c.tls;
    options.credentials = {
      rootCertificate: tls.caFile ? readFileSync(tls.caFile) : Buffer.alloc(0),
      ...(tls.certFile && tls.keyFile ? { certChain: readFileSync(tls.certFile), privateKey: readFileSync(tls.keyFile) } : {}),
    };
  }
  return new lib.Etcd3(options);
}
