/** Label value for requests that matched no route (route and service names must start with a letter or digit). */
export const NO_ROUTE = '_none';
/** Label value for a service name the loaded configs never had: a caller bug, kept from growing the series. */
export const UNKNOWN_SERVICE = '_unknown';
// Reasons are short words chosen by code; anything else becomes `other`, so a label can never carry client input.
const REASON = /^[a-z][a-z0-9-]{0,31}$/;

export function boundedReason(reason: string): string {
  return REASON.test(reason) ? reason : 'other';
}

/**
 * The service names any loaded config had: a `service` label takes one of them or UNKNOWN_SERVICE, so the label's
 * values are bounded by the configs, whoever reports.
 */
export class KnownServices {
  readonly #names = new Set<string>();

  add(names: Iterable<string>): void {
    for (const name of names) this.#names.add(name);
  }

  label(name: string): string {
    return this.#names.has(name) ? name : UNKNOWN_SERVICE;
  }
}
