import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../errors.js';
import type { Duplex } from 'node:stream';
import type { AnswerBodyFilter, AnswerEdit, PolicyExchange } from '../policies/policy.js';
import type { CompiledRoute } from '../routing/compiled-route.js';
import { ServiceCall } from '../resilience/service-call.js';
import type { Generation } from '../runtime/snapshot-holder.js';
import { isHttp2Request, type InspectedRequest } from './inspect-request.js';

/** Links req and res to their exchange, for listeners that only get req or res as `this`. */
export const EXCHANGE = Symbol('gantry.exchange');

export type WithExchange<T> = T & { [EXCHANGE]?: Exchange };

/**
 * One request's journey: what it matched, where it went, how it ended. One object per request, with every field
 * declared up front so V8 keeps a single shape; the access log line is written from it when the response closes.
 */
export class Exchange extends ServiceCall implements InspectedRequest, PolicyExchange {
  declare readonly req: WithExchange<IncomingMessage>;
  declare readonly res: WithExchange<ServerResponse>;
  readonly startMs = performance.now();
  /** W3C trace id passed on or created ('' when none): logged so a trace finds its access-log line. */
  traceId = '';
  host = '';
  hostHeader = '';
  /** Normalized path, before any rewrite: what was matched and what the access log shows. */
  path = '';
  /** The query (`?…`, or ''), as received: the text access formats write it after the path. */
  search = '';
  route: CompiledRoute | undefined = undefined;
  /** Who the request is from, as a policy of its route established it (docs/policies.md); '' when none did. */
  consumer = '';
  /** Fields a policy sets on the answer (PolicyExchange.answerHeaders); null on a route whose policies set none. */
  answerHeaders: string[] | null = null;
  /** Edits a policy makes to the answer's head (PolicyExchange.answerEdits); null on a route whose policies make none. */
  answerEdits: AnswerEdit[] | null = null;
  /** A policy's transform of the upstream's answer body (PolicyExchange.answerBody); null on most routes. */
  answerBody: AnswerBodyFilter | null = null;
  /** Where the upstream's body is written when a filter took it (piped on to `res`); null: straight to `res`. */
  sink: Duplex | null = null;
  errorCode: ErrorCode | undefined = undefined;
  status = 0;
  /** Response body bytes relayed to the client. */
  bytes = 0;
  /** Request body bytes seen, for the limit on chunked bodies. */
  bodyBytes = 0;
  /** Close the client connection after this response (draining, or an unread body). */
  closeAfter = false;
  /** The duration as first read after the close, in hundredths of a millisecond; -1 before. */
  closedHundredths = -1;
  /** An HTTP/2 request (Node's Http2ServerRequest/Response behind the IncomingMessage/ServerResponse types). */
  readonly http2: boolean;
  /**
   * An HTTP/2 request's connection (its session's socket), for the access line: `req.socket` stands in for the stream,
   * and the stream no longer knows its session once it has closed.
   */
  readonly http2Socket: TLSSocket | undefined = undefined;
  /** Behind `signal`: made only when a policy that waits asks for it. */
  #client: AbortController | undefined = undefined;

  constructor(
    req: WithExchange<IncomingMessage>,
    res: WithExchange<ServerResponse>,
    readonly generation: Generation | undefined,
  ) {
    super(req, res);
    this.http2 = isHttp2Request(req);
    if (this.http2) this.http2Socket = (req as unknown as Http2ServerRequest).stream.session?.socket as TLSSocket | undefined;
    req[EXCHANGE] = this;
    res[EXCHANGE] = this;
  }

  /** Aborts when the client goes (PolicyExchange.signal): made on first read, so requests that never wait pay nothing. */
  get signal(): AbortSignal {
    if (this.#client === undefined) {
      this.#client = new AbortController();
      if (this.closed) this.#client.abort();
    }
    return this.#client.signal;
  }

  /** The client went (the response closed): what waits on `signal` stops. */
  clientGone(): void {
    this.#client?.abort();
  }

  /** Time since the request arrived, in whole hundredths of a millisecond (the access log writes it from these). */
  durationHundredths(): number {
    if (this.closedHundredths >= 0) return this.closedHundredths;
    const h = Math.round((performance.now() - this.startMs) * 100);
    // Metrics, load signals and the access log each read it once the exchange closed: one clock read serves all
    // three, and they agree (callgrind: a performance.now() is about 0.2k instructions).
    if (this.closed) this.closedHundredths = h;
    return h;
  }

  durationMs(): number {
    return this.durationHundredths() / 100;
  }
}
