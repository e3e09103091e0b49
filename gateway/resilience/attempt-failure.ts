import type { ErrorCode } from '../errors.js';
import type { ServiceCall } from './service-call.js';

/** How one attempt failed before a response head arrived. `cancelled`: the gateway stopped it (client gone, body too large). */
export type AttemptFailureKind = 'connect' | 'connect-timeout' | 'tls' | 'reset' | 'timeout' | 'bad-response' | 'broken-circuit' | 'cancelled';

const KIND_CODE: Record<AttemptFailureKind, ErrorCode> = {
  'connect': 'GW_ERR_UPSTREAM_CONNECT',
  'connect-timeout': 'GW_ERR_UPSTREAM_TIMEOUT',
  'tls': 'GW_ERR_UPSTREAM_TLS',
  'reset': 'GW_ERR_UPSTREAM_RESET',
  'timeout': 'GW_ERR_UPSTREAM_TIMEOUT',
  'bad-response': 'GW_ERR_UPSTREAM_BAD_RESPONSE',
  'broken-circuit': 'GW_ERR_NO_ENDPOINT',
  'cancelled': 'GW_ERR_UPSTREAM_RESET',
};

/** An attempt's failure, carrying what the retry decision needs. */
export class AttemptFailure extends Error {
  readonly code: ErrorCode;
  /** The request whose try failed, for the retry policy's predicates (set by the service pipeline). */
  call: ServiceCall | undefined = undefined;

  constructor(
    readonly kind: AttemptFailureKind,
    /** True when no byte of the request reached the upstream: safe to retry for any method. */
    readonly nothingSent: boolean,
    options: { cause?: unknown } = {},
  ) {
    super(`upstream attempt failed: ${kind}`, options);
    this.name = 'AttemptFailure';
    this.code = KIND_CODE[kind];
  }
}

/** A failure the gateway itself decided (a timer, an open circuit, a cancel), not one read off a socket. */
export function failure(kind: AttemptFailureKind): AttemptFailure {
  return new AttemptFailure(kind, kind === 'connect-timeout' || kind === 'broken-circuit');
}
