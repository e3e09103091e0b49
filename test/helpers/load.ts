import autocannon from 'autocannon';

// @types/autocannon is an `export =` namespace, which verbatimModuleSyntax cannot name; derive the two types instead.
type Options = Parameters<typeof autocannon>[0];
type Callback = NonNullable<Parameters<typeof autocannon>[1]>;
export type LoadResult = NonNullable<Parameters<Callback>[1]>;

/** Bounded load on a loopback URL (autocannon), resolved with its result. */
export function runLoad(options: Options): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
