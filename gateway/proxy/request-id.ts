import { randomUUID } from 'node:crypto';

// A passed-on id is kept only if it is short and harmless in logs and headers.
const VALID = /^[A-Za-z0-9._:@+=/-]{1,128}$/;

/** The client's (or an upstream proxy's) request id when valid, else a new UUID. */
export function requestIdFrom(value: string | string[] | undefined): string {
  return typeof value === 'string' && VALID.test(value) ? value : randomUUID();
}
