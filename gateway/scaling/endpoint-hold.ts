import type { Logger } from 'pino';
import type { LoadRecorder } from '../signals/load-recorder.js';
import type { ServiceCall } from '../resilience/service-call.js';
import type { RequestHold } from '../resilience/service-pipeline.js';
import type { ServiceRuntime } from '../resilience/service-policy.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';

/** Retry-After (s) on a 503 from the hold: an instance that is starting is usually seconds away. */
const RETRY_AFTER_S = 1;

interface Held {
  readonly ex: ServiceCall;
  readonly resume: () => void;
  readonly giveUp: (retryAfterS: number) => void;
  readonly timer: NodeJS.Timeout;
  readonly onClose: () => void;
}

interface Queue {
  readonly service: string;
  readonly pool: UpstreamPool;
  readonly held: Set<Held>;
  readonly unsubscribe: () => void;
}

/**
 * Scale from zero: a request for a scaled service that has no ready endpoint waits here instead of failing. The
 * queue is bounded (`scaling.hold.maxQueue`), so is each wait (`scaling.hold.timeoutMs`, then 503
 * GW_ERR_NO_ENDPOINT with Retry-After); the first endpoint the pool gets releases every waiting request in arrival
 * order; a client that leaves is dropped from the queue at once. Holding a request asks the scaling loop to act now.
 */
export class EndpointHold implements RequestHold {
  readonly #queues = new Map<UpstreamPool, Queue>();

  constructor(
    private readonly load: LoadRecorder,
    private readonly wake: (service: string) => void,
    private readonly log: Logger,
  ) {}

  #closed = false;

  /** May requests for this service wait for an endpoint? (It is scaled by the gateway and its hold is not off.) */
  accepts(service: ServiceRuntime): boolean {
    if (this.#closed) return false;
    const scaling = service.config.scaling;
    return scaling !== null && scaling.hold.maxQueue > 0;
  }

  hold(ex: ServiceCall, service: ServiceRuntime, resume: () => void, giveUp: (retryAfterS: number) => void): void {
    const pool = service.pool;
    if (pool.endpoints.length > 0) return resume();
    const name = service.config.name;
    const { maxQueue, timeoutMs } = (service.config.scaling as NonNullable<ServiceRuntime['config']['scaling']>).hold;
    let queue = this.#queues.get(pool);
    if (queue === undefined) {
      const q: Queue = { service: name, pool, held: new Set(), unsubscribe: pool.onUpdate(() => this.#release(q)) };
      queue = q;
      this.#queues.set(pool, q);
    }
    if (queue.held.size >= maxQueue) {
      this.wake(name);
      return giveUp(RETRY_AFTER_S);
    }
    const q = queue;
    const held: Held = {
      ex, resume, giveUp,
      timer: setTimeout(() => {
        if (!this.#drop(q, held)) return;
        this.log.warn({ service: name, reqId: ex.requestId, waitedMs: timeoutMs, event: 'hold-timeout' }, 'no endpoint became ready in time: 503');
        giveUp(RETRY_AFTER_S);
      }, timeoutMs),
      onClose: () => { this.#drop(q, held); },
    };
    q.held.add(held);
    ex.res.once('close', held.onClose);
    // Keep the body unread while waiting: a data listener added meanwhile (the chunked-body counter) must not drain it.
    ex.req.pause();
    this.load.waiting(name, 1);
    if (q.held.size === 1) this.log.info({ service: name, event: 'hold' }, 'no ready endpoint: holding requests until one is ready');
    this.wake(name);
  }

  #drop(q: Queue, held: Held): boolean {
    if (!q.held.delete(held)) return false;
    clearTimeout(held.timer);
    held.ex.res.off('close', held.onClose);
    this.load.waiting(q.service, -1);
    if (q.held.size === 0) this.#forget(q);
    return true;
  }

  #forget(q: Queue): void {
    if (this.#queues.get(q.pool) !== q) return;
    this.#queues.delete(q.pool);
    q.unsubscribe();
  }

  #release(q: Queue): void {
    if (q.pool.endpoints.length === 0) return;
    const released = [...q.held];
    this.log.info({ service: q.service, event: 'hold-released', requests: released.length }, 'an endpoint is ready: forwarding the held requests');
    for (const held of released) {
      this.#drop(q, held);
      if (held.ex.closed) continue;
      held.resume();
      // A buffered body is read by listeners forward() just attached; a streamed one is resumed by the upstream
      // client once it sends it (resuming it here would let the data flow before anything sends it on).
      const ex = held.ex;
      if (ex.body !== ex.req && ex.req.isPaused()) ex.req.resume();
    }
  }

  /** Shutdown: every held request gets its 503 now, and later ones at once. */
  close(): void {
    this.#closed = true;
    for (const q of [...this.#queues.values()]) {
      for (const held of [...q.held]) {
        this.#drop(q, held);
        if (!held.ex.closed) held.giveUp(RETRY_AFTER_S);
      }
      this.#forget(q);
    }
  }
}
