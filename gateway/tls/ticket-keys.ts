import { hkdfSync, randomBytes } from 'node:crypto';

/** How long one set of session-ticket keys encrypts new tickets. */
export const TICKET_KEY_PERIOD_MS = 12 * 60 * 60 * 1000;

/** Where a cluster primary hands its workers the secret their ticket keys derive from (read once, then removed). */
export const TICKET_SECRET_ENV = 'GANTRY_TICKET_SECRET';

/** A fresh secret (one process), or the one the cluster primary passed (every worker derives the same keys). */
export function ticketSecret(env: NodeJS.ProcessEnv = process.env): Buffer {
  const passed = env[TICKET_SECRET_ENV];
  // Read once: a child process a plugin starts must not inherit it.
  delete env[TICKET_SECRET_ENV];
  return passed && /^[0-9a-f]{64}$/.test(passed) ? Buffer.from(passed, 'hex') : randomBytes(32);
}

/** The 48 bytes Node's setTicketKeys takes (name, HMAC and AES keys) for the period that holds `nowMs`. */
export function ticketKeysAt(secret: Buffer, nowMs: number): Buffer {
  const period = Math.floor(nowMs / TICKET_KEY_PERIOD_MS);
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `gantry session tickets ${period}`, 48));
}

/**
 * Rotates the session-ticket keys at every period boundary, derived from one secret and the period's number: workers
 * that share the secret share the keys (a client resumes on whichever worker the kernel gives its next connection),
 * with no messages between them. Node's server holds one key set, so a ticket issued just before a rotation cannot
 * be resumed after it: that client makes a full handshake, nothing fails.
 */
export class TicketKeyRotation {
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly secret: Buffer, private readonly apply: (keys: Buffer) => void, private readonly now: () => number = Date.now) {}

  /** The keys for now; they are applied again at each period's start until `stop`. */
  current(): Buffer {
    return ticketKeysAt(this.secret, this.now());
  }

  start(): void {
    const now = this.now();
    this.#timer = setTimeout(() => {
      this.apply(this.current());
      this.start();
    }, TICKET_KEY_PERIOD_MS - (now % TICKET_KEY_PERIOD_MS) + 1);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
