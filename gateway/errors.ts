/**
 * Every error the gateway answers with, in one table: a stable code, the HTTP status, the gRPC status a gRPC call gets
 * instead (HTTP 200 with `grpc-status`, proxy/grpc-call.ts) and the message a client sees. Clients and tests check
 * `code`, never the message. docs/errors.md documents each code (a test keeps them in step).
 *
 * gRPC statuses: 4 DEADLINE_EXCEEDED, 8 RESOURCE_EXHAUSTED, 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE.
 */
export const ERRORS = {
  GW_ERR_BAD_REQUEST: { status: 400, grpc: 13, message: 'malformed request' },
  GW_ERR_BAD_HOST: { status: 400, grpc: 13, message: 'missing, duplicate or invalid Host header' },
  GW_ERR_BAD_PATH: { status: 400, grpc: 13, message: 'invalid request path' },
  GW_ERR_BAD_FRAMING: { status: 400, grpc: 13, message: 'invalid message framing' },
  GW_ERR_REQUEST_TIMEOUT: { status: 408, grpc: 4, message: 'the request was not received in time' },
  GW_ERR_NO_ROUTE: { status: 404, grpc: 12, message: 'no route matches this request' },
  GW_ERR_ACME_CHALLENGE_UNKNOWN: { status: 404, grpc: 5, message: 'no pending ACME challenge has this token' },
  GW_ERR_METHOD_NOT_ALLOWED: { status: 405, grpc: 12, message: 'method not allowed on this route' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, grpc: 8, message: 'request body too large' },
  GW_ERR_URI_TOO_LONG: { status: 414, grpc: 8, message: 'request target too long' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, grpc: 8, message: 'request head too large' },
  GW_ERR_TOO_MANY_HEADERS: { status: 431, grpc: 8, message: 'too many request headers' },
  GW_ERR_UPGRADE_NOT_ALLOWED: { status: 400, grpc: 12, message: 'protocol upgrade not allowed on this route' },
  GW_ERR_HTTPS_REQUIRED: { status: 400, grpc: 13, message: 'this port speaks HTTPS: the request was sent as plain HTTP' },
  GW_ERR_VERSION_NOT_SUPPORTED: { status: 505, grpc: 12, message: 'HTTP version not supported' },
  GW_ERR_UNAUTHORIZED: { status: 401, grpc: 16, message: 'missing or invalid credentials' },
  GW_ERR_FORBIDDEN: { status: 403, grpc: 7, message: 'a policy of this route refuses this client' },
  GW_ERR_RATE_LIMITED: { status: 429, grpc: 8, message: 'too many requests' },
  GW_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, grpc: 14, message: 'the rate-limit store cannot be reached' },
  GW_ERR_AUTH_UNAVAILABLE: { status: 503, grpc: 14, message: 'the service that vouches for credentials cannot be reached' },
  GW_ERR_AUTH_TIMEOUT: { status: 504, grpc: 4, message: 'the service that vouches for credentials did not answer in time' },
  GW_ERR_NO_ENDPOINT: { status: 503, grpc: 14, message: 'no healthy endpoint for this service' },
  GW_ERR_OVERLOADED: { status: 503, grpc: 8, message: 'the service is at its concurrency limit' },
  GW_ERR_UPSTREAM_CONNECT: { status: 502, grpc: 14, message: 'could not connect to the upstream' },
  GW_ERR_UPSTREAM_RESET: { status: 502, grpc: 14, message: 'the upstream closed the connection before answering' },
  GW_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, grpc: 13, message: 'the upstream sent an invalid response' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, grpc: 4, message: 'the upstream did not answer in time' },
  GW_ERR_UPSTREAM_TLS: { status: 502, grpc: 14, message: 'the TLS handshake with the upstream failed' },
  GW_ERR_INTERNAL: { status: 500, grpc: 13, message: 'internal gateway error' },
} as const satisfies Record<string, { status: number; grpc: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code; `cause` keeps the low-level error (a socket error, a parser error). */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds for a Retry-After header, when retrying later can help. */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, options: { cause?: unknown; detail?: string; retryAfterS?: number } = {}) {
    super(options.detail ?? ERRORS[code].message, { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retryAfterS = options.retryAfterS;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** A problem found in routes.yaml, located at file:line:col and a YAML path such as `routes[2].match.path`. */
export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly path: string;
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** The whole set of problems of one config file: loading refuses the file and keeps the old config. */
export class ConfigError extends Error {
  readonly code = 'GW_ERR_CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options: { cause?: unknown } = {}) {
    super(`invalid config: ${problems.map(formatProblem).join('; ')}`, options);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}
