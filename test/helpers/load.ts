import autocannon from 'autocannon';

/** The part of autocannon's result the tests read (its overloaded typings resolve differently across installs). */
export interface LoadResult {
  /** total: answers received; sent: requests written (those in flight when the run stopped included). */
  readonly requests: { readonly total: number; readonly sent: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
}

export interface LoadOptions {
  readonly url: string;
  readonly connections?: number;
  readonly duration?: number;
  readonly amount?: number;
  readonly method?: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Bounded load on a loopback URL (autocannon), resolved with its result. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const run = autocannon as unknown as (o: LoadOptions, cb: (err: unknown, r: LoadResult) => void) => unknown;
    run(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
